// Replicas on one database started with different settings: the one that starts second says so at
// once, a warning naming the setting and the other replica (a secret compared by hash, never shown),
// and its /metrics counts the difference. The same settings say nothing; a stopped replica's row goes.
import os from 'node:os';

import { expect } from 'chai';
import pg from 'pg';

import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { capturingLogger } from '../support/log.js';
import { isolateNetwork, restoreNetwork } from '../support/mailjet-nock.js';
import { eventually, startTestService, type TestService } from '../support/service.js';

const OTHER_MAILJET_KEY = 'another-account-key-5d1f0c';

function replicaWarnings(lines: string[]): Array<Record<string, unknown>> {
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['component'] === 'replicas');
}

async function differing(service: TestService): Promise<string[]> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  return text.split('\n').filter((line) => line.startsWith('jetpost_replica_settings_differing{'));
}

describe('replicas with different settings', () => {
  let db: TestDatabase;
  let services: TestService[] = [];

  beforeEach(async () => {
    isolateNetwork();
    db = await createTestDatabase();
  });

  afterEach(async () => {
    for (const service of services) {
      await service.stop();
    }
    services = [];
    await db.drop();
    restoreNetwork();
  });

  it('when a second replica starts with the same settings, then it warns of nothing and counts no difference', async () => {
    services.push(await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } }));
    const second = capturingLogger('info');
    const b = await startTestService({ db, env: { WORKER_CONCURRENCY: '0' }, log: second.log });
    services.push(b);
    expect(replicaWarnings(second.lines())).to.deep.equal([]);
    expect(await differing(b)).to.deep.equal([]);
  });

  it('when a second replica starts with another MAX_ATTEMPTS and another Mailjet key, then at its start it warns of each, naming the other replica, shows no key, and its /metrics counts them; once it stops, its heartbeat row is gone', async () => {
    const a = await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } });
    services.push(a);
    const second = capturingLogger('info');
    const b = await startTestService({ db, env: { WORKER_CONCURRENCY: '0', MAX_ATTEMPTS: '3', MAILJET_API_KEY: OTHER_MAILJET_KEY }, log: second.log });
    services.push(b);

    const warnings = replicaWarnings(second.lines());
    const replica = `${os.hostname()} (pid ${process.pid})`;
    expect(warnings.map((line) => [line['level'], line['setting'], line['replica']])).to.have.deep.members([
      ['warn', 'MAX_ATTEMPTS', replica],
      ['warn', 'MAILJET_API_KEY', replica],
    ]);
    const attempts = warnings.find((line) => line['setting'] === 'MAX_ATTEMPTS')!;
    expect(attempts['message']).to.include(`MAX_ATTEMPTS is 3 here and 8 on the replica ${replica}`);
    const key = warnings.find((line) => line['setting'] === 'MAILJET_API_KEY')!;
    expect(key['message']).to.include('MAILJET_API_KEY differs from that of the replica').and.include('compared by hash');
    expect(second.lines().join('\n')).to.not.include(OTHER_MAILJET_KEY);
    const { rows } = await db.pool.query<{ settings: string }>('select settings::text from replica_heartbeats');
    expect(rows).to.have.length(2);
    expect(rows.map((row) => row.settings).join('\n')).to.not.include(OTHER_MAILJET_KEY);

    expect(await differing(b)).to.have.members([
      'jetpost_replica_settings_differing{setting="MAILJET_API_KEY"} 1',
      'jetpost_replica_settings_differing{setting="MAX_ATTEMPTS"} 1',
    ]);

    await b.stop();
    services = [a];
    const { rows: left } = await db.pool.query<{ n: number }>('select count(*)::int as n from replica_heartbeats');
    expect(left[0]!.n).to.equal(1);
  });

  it('when a replica with other settings was killed (kill -9: its row stays, its LISTEN session is gone), then a replica started in its place neither warns of it nor counts it', async () => {
    const a = await startTestService({ db, env: { WORKER_CONCURRENCY: '0', MAX_ATTEMPTS: '3' } });
    // The killed process's row: a's, under an id of its own, naming a LISTEN session that has ended.
    const session = new pg.Client({ connectionString: db.url });
    await session.connect();
    const endedPid = (session as pg.Client & { processID: number }).processID;
    await session.end();
    await db.pool.query(
      `insert into replica_heartbeats (replica_id, host, pid, started_at, seen_at, settings, listen_pid)
       select gen_random_uuid(), host, 99999, started_at, now(), settings, $1 from replica_heartbeats`,
      [endedPid],
    );
    await a.stop();
    const second = capturingLogger('info');
    const b = await startTestService({ db, env: { WORKER_CONCURRENCY: '0' }, log: second.log });
    services.push(b);

    expect(replicaWarnings(second.lines())).to.deep.equal([]);
    expect(await differing(b)).to.deep.equal([]);
  });

  it('when a replica starts, then its first beat already names its live LISTEN session', async () => {
    // What each replica's first beat (its row's insert) wrote, kept aside by a trigger of the test's.
    await db.pool.query(`
      create table first_beats (listen_pid integer);
      create function keep_first_beat() returns trigger language plpgsql as $$
      begin
        insert into first_beats values (new.listen_pid);
        return null;
      end $$;
      create trigger keep_first_beat after insert on replica_heartbeats for each row execute function keep_first_beat();`);
    services.push(await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } }));
    const { rows } = await db.pool.query<{ listen_pid: number | null; live: boolean }>(
      'select listen_pid, exists (select from pg_stat_activity a where a.pid = f.listen_pid) as live from first_beats f',
    );
    expect(rows).to.have.length(1);
    expect(rows[0]!.listen_pid, 'the LISTEN session in the first beat').to.not.equal(null);
    expect(rows[0]!.live).to.equal(true);
  });

  it("when two replicas differ, then each one's row names its live LISTEN session, and the difference is still counted", async () => {
    services.push(await startTestService({ db, env: { WORKER_CONCURRENCY: '0', MAX_ATTEMPTS: '3' } }));
    const b = await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } });
    services.push(b);
    // Written from the first beat, at start.
    await eventually(
      async () => {
        const { rows } = await db.pool.query<{ live: boolean }>(
          'select exists (select from pg_stat_activity a where a.pid = h.listen_pid) as live from replica_heartbeats h',
        );
        return rows.length === 2 && rows.every((row) => row.live) ? true : undefined;
      },
      30_000,
      'both rows naming a live LISTEN session',
    );
    expect(await differing(b)).to.deep.equal(['jetpost_replica_settings_differing{setting="MAX_ATTEMPTS"} 1']);
  });
});
