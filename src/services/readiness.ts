// /readyz's checks: the process is not stopping (draining after SIGTERM), the database answers and
// takes writes (and has not lately refused one for lack of disk), it has every migration in sql/,
// and sending is not stopped (Mailjet refused the API key).
import { migrationsApplied } from '../db/migrate.js';
import type { Pool } from '../db/pool.js';
import { databaseReadOnly } from '../db/read-only.js';

export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

export interface ReadinessDeps {
  pool: Pool;
  /** The newest migration in sql/. */
  expectedMigration: number;
  /** Why sending is stopped, or undefined (the send gate's state). */
  sendingStopped: () => string | undefined;
  /** Why the database cannot write for lack of disk, or undefined (services/out-of-disk.ts). */
  outOfDisk: () => string | undefined;
  /** Whether the drain (SIGTERM) has begun: then nothing else is asked (http/drain.ts). */
  draining: () => boolean;
}

/** The one check of a draining process: a balancer stops sending it requests, which it refuses by now. */
const DRAINING: Readiness = {
  ready: false,
  checks: {
    stopping: {
      ok: false,
      detail: 'jetpost is stopping (draining): it finishes the requests and Mailjet calls in flight and takes no new ones; send them to another replica',
    },
  },
};

export function createReadiness({ pool, expectedMigration, sendingStopped, outOfDisk, draining }: ReadinessDeps): () => Promise<Readiness> {
  return async (): Promise<Readiness> => {
    if (draining()) {
      return DRAINING;
    }
    const blocked = sendingStopped();
    const mailjetCheck = blocked === undefined ? { ok: true } : { ok: false, detail: `sending stopped: ${blocked}` };
    try {
      const applied = await migrationsApplied(pool, expectedMigration);
      const readOnly = await databaseReadOnly(pool);
      const full = outOfDisk();
      return {
        ready: applied && !readOnly && full === undefined && mailjetCheck.ok,
        checks: {
          database: readOnly
            ? { ok: false, detail: 'the database takes no writes (a standby, or default_transaction_read_only is on): point DATABASE_URL at the primary' }
            : full === undefined
              ? { ok: true }
              : { ok: false, detail: full },
          migrations: applied ? { ok: true } : { ok: false, detail: 'the database is behind sql/' },
          mailjet: mailjetCheck,
        },
      };
    } catch (error) {
      return { ready: false, checks: { database: { ok: false, detail: (error as Error).message }, mailjet: mailjetCheck } };
    }
  };
}
