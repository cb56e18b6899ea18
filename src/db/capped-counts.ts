// The capped counts /metrics and the dashboard's overview read (jobs by queue status, pending webhook
// deliveries) are each the first `cap` entries of a partial index, read in that index's order and
// stopped by a LIMIT: bounded however long the backlog. Left to its costs, the planner read some of
// them otherwise whenever its statistics were off: a Seq Scan of a status it took for much of the
// table (through the history written before the backlog), a bitmap of every row of the status before
// any LIMIT applied (a table never analysed), or, with statistics from before the backlog, a status
// through another index that holds it among others (a walk of the backlog, past the statement
// timeout, to count a few scheduled jobs among a million queued). Without sequential scans, bitmaps
// and sorts, the one plan left for each count is its index read in order.
import { query, type Queryable } from './pool.js';

const PLAN_BY_INDEX_ORDER = `
  select set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)`;

/** For the rest of the transaction `tx` (set_config's is_local: it must be one, or the settings end with this statement). */
export async function planByIndexOrder(tx: Queryable): Promise<void> {
  await query(tx, PLAN_BY_INDEX_ORDER);
}
