// throughput_minutes: jobs enqueued and accepted per minute, added to by every process (sql/38_…).
import type { ThroughputMinute } from '../domain/dashboard.js';
import { query, type Queryable } from './pool.js';

// Each minute once, in minute order (concurrent additions from other processes never deadlock). The
// rows past a day go in the same statement: the table holds about 1,440 rows.
const ADD_COUNTS = `
  with pruned as (
    delete from throughput_minutes
    where minute < now() - interval '1 day'
  )
  insert into throughput_minutes (minute, enqueued, accepted)
  select c.minute, c.enqueued, c.accepted
  from unnest($1::timestamptz[], $2::bigint[], $3::bigint[]) as c(minute, enqueued, accepted)
  order by c.minute
  on conflict (minute) do update
    set enqueued = throughput_minutes.enqueued + excluded.enqueued,
      accepted = throughput_minutes.accepted + excluded.accepted`;

/** Adds counts of distinct minutes to what the table holds. */
export async function addMinuteCounts(db: Queryable, counts: readonly ThroughputMinute[]): Promise<void> {
  await query(db, ADD_COUNTS, [counts.map((c) => c.minute), counts.map((c) => c.enqueued), counts.map((c) => c.accepted)]);
}

const READ_COUNTS = `
  select minute, enqueued, accepted
  from throughput_minutes
  where minute >= $1::timestamptz
  order by minute`;

/** The minutes from `since` on that have counts. */
export async function readMinuteCounts(db: Queryable, since: Date): Promise<ThroughputMinute[]> {
  const rows = await query(db, READ_COUNTS, [since]);
  return rows.map((row) => ({ minute: row['minute'] as Date, enqueued: Number(row['enqueued']), accepted: Number(row['accepted']) }));
}
