// replica_heartbeats: one row per running process, with the fingerprints of the settings replicas
// must share (sql/43_…, services/replica-settings.ts).
import type { SettingPrints } from '../domain/replica-settings.js';
import { query, type Queryable } from './pool.js';

export interface ReplicaBeat {
  readonly replicaId: string;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: Date;
  readonly settings: SettingPrints;
  /** The server pid of its LISTEN session (undefined: not connected now). */
  readonly listenPid: number | undefined;
}

export interface OtherReplica {
  readonly replicaId: string;
  readonly host: string;
  readonly pid: number;
  readonly settings: SettingPrints;
}

// The rows that stopped beating long ago (a process killed) go in the same statement.
const BEAT = `
  with pruned as (
    delete from replica_heartbeats
    where seen_at < now() - $6::double precision * interval '1 millisecond'
  )
  insert into replica_heartbeats (replica_id, host, pid, started_at, seen_at, settings, listen_pid)
  values ($1::uuid, $2::text, $3::integer, $4::timestamptz, now(), $5::jsonb, $7::integer)
  on conflict (replica_id) do update set seen_at = now(), settings = excluded.settings, listen_pid = excluded.listen_pid`;

/** Writes this process's row (again); rows not seen for `forgetAfterMs` are deleted. */
export async function beat(db: Queryable, beat: ReplicaBeat, forgetAfterMs: number): Promise<void> {
  await query(db, BEAT, [beat.replicaId, beat.host, beat.pid, beat.startedAt, JSON.stringify(beat.settings), forgetAfterMs, beat.listenPid ?? null]);
}

const OTHERS = `
  select replica_id::text, host, pid, settings
  from replica_heartbeats
  where replica_id <> $1::uuid
    and seen_at >= now() - $2::double precision * interval '1 millisecond'
    and (listen_pid is null or exists (select from pg_stat_activity a where a.pid = replica_heartbeats.listen_pid))
  order by started_at, replica_id`;

/**
 * The other processes seen within `aliveMs` whose LISTEN session is still open: one killed (kill -9)
 * is gone at once, its session ended with its socket, not three beats later.
 */
export async function otherReplicas(db: Queryable, replicaId: string, aliveMs: number): Promise<OtherReplica[]> {
  const rows = await query(db, OTHERS, [replicaId, aliveMs]);
  return rows.map((row) => ({
    replicaId: row['replica_id'] as string,
    host: row['host'] as string,
    pid: row['pid'] as number,
    settings: row['settings'] as SettingPrints,
  }));
}

const FORGET = `delete from replica_heartbeats where replica_id = $1::uuid`;

export async function forgetReplica(db: Queryable, replicaId: string): Promise<void> {
  await query(db, FORGET, [replicaId]);
}
