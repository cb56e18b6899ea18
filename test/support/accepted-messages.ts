// Seeds accepted one-recipient jobs straight into the tables, many at once, for tests of event
// callbacks at volume: message i goes to reader-i@example.com with MessageID firstMessageId + i.
import type { Pool } from '../../src/db/pool.js';

export async function seedAcceptedMessages(pool: Pool, appId: string, count: number, firstMessageId: bigint): Promise<void> {
  await pool.query(
    `with jobs as (
       insert into email_send_jobs (app_id, status, message, max_attempts, recipient_count, accepted_at)
       select $1::bigint, 'accepted', '{"from":{"email":"app@example.com"},"subject":"volume","text":"hi"}'::jsonb, 8, 1, now()
       from generate_series(1, $2::int)
       returning id
     ),
     numbered as (
       select id, row_number() over (order by id) - 1 as n
       from jobs
     )
     insert into email_recipients (job_id, position, kind, email, status, mailjet_message_id, mailjet_message_uuid)
     select id, 0, 'to', 'reader-' || n || '@example.com', 'accepted', $3::bigint + n, 'uuid-' || n
     from numbered`,
    [appId, count, firstMessageId.toString()],
  );
}
