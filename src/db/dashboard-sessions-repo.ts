// ended_dashboard_sessions: the dashboard sessions a logout ended before their expiry (sql/40_…).
import { query, type Queryable } from './pool.js';

// The rows past their expiry go in the same statement: the table holds only sessions a token could
// still stand for. A second logout of the same session changes nothing.
const END_SESSION = `
  with pruned as (
    delete from ended_dashboard_sessions
    where expires_at <= $3::timestamptz
  )
  insert into ended_dashboard_sessions (session_id, expires_at)
  values ($1::text, $2::timestamptz)
  on conflict (session_id) do nothing`;

/** Records a session as ended until its expiry; `now` is the clock the session was checked with. */
export async function endSession(db: Queryable, sessionId: string, expiresAt: Date, now: Date): Promise<void> {
  await query(db, END_SESSION, [sessionId, expiresAt, now]);
}

const FIND_ENDED = `
  select 1
  from ended_dashboard_sessions
  where session_id = $1::text`;

export async function isSessionEnded(db: Queryable, sessionId: string): Promise<boolean> {
  return (await query(db, FIND_ENDED, [sessionId])).length > 0;
}
