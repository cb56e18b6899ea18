// A history of `jobs` jobs written in a few set-based statements (generate_series), the shape a
// busy jetpost accumulates: 30 days of jobs (or `spanMs`) over `apps` apps, one recipient each (an address reused
// by about 20 jobs), a status change and an event per sent job, webhook deliveries and
// suppressions for the first app, a few failed, deferred and queued jobs, the last hour's share of
// them accepted. Used by the dashboard's plan test (test/db/dashboard-plans.test.ts) at 200,000 jobs
// and by bench/dashboard.ts at 1,000,000.
import type { Queryable } from '../src/db/pool.js';

export interface SeededHistory {
  appIds: string[];
  appNames: string[];
  /** The app with one job in 5,000: a page of its jobs must not walk everyone's. */
  rareAppId: string;
  /** A job with a recipient, a change and an event; an address with several jobs; a custom_id. */
  sampleJobId: string;
  sampleRecipient: string;
  sampleCustomId: string;
  /** A job id in the middle of the table: a page "before" it. */
  middleJobId: string;
}

const INSERT_APPS = `
  insert into apps (name)
  select $1 || '-' || i
  from generate_series(1, $2::int) as i
  returning id::text, name`;

// The last app is rare (one job in 5,000), the others share the rest. Statuses by position: every 1000th failed, every 997th deferred, the newest 200 queued, the rest
// sent. Jobs are spread evenly over the last $4 (30 days by default), the newest now.
const INSERT_JOBS = `
  insert into email_send_jobs (
    app_id, status, message, custom_id, priority, run_at, attempts, max_attempts, recipient_count,
    created_at, updated_at, accepted_at, last_error
  )
  select case when g % 5000 = 1 then ($1::bigint[])[array_length($1::bigint[], 1)] else ($1::bigint[])[1 + g % (array_length($1::bigint[], 1) - 1)] end,
    s.status,
    '{"from":{"email":"app@example.com"},"subject":"Seeded","text":"Hello"}'::jsonb,
    'order-' || g,
    0,
    s.created_at,
    case when s.status = 'queued' then 0 else 1 end,
    3,
    1,
    s.created_at,
    s.created_at,
    case when s.status = 'sent' then s.created_at + interval '1 second' end,
    case when s.status = 'failed' then 'Mailjet refused the message (seeded)' when s.status = 'deferred' then 'Mailjet 503 (seeded)' end
  from generate_series(1, $2::int) as g
  cross join lateral (
    select case when g % 1000 = 0 then 'failed' when g % 997 = 0 then 'deferred' when g > $2 - 200 then 'queued' else 'sent' end as status,
      $3::timestamptz - (($2 - g) * (make_interval(secs => $4::double precision / 1000) / $2)) as created_at
  ) as s`;

const INSERT_RECIPIENTS = `
  insert into email_recipients (job_id, position, kind, email, status, mailjet_message_id, updated_at)
  select j.id, 0, 'to', 'user' || (j.id % ($2::bigint / 20 + 1)) || '@example.org',
    case j.status when 'sent' then 'sent' when 'failed' then 'failed' else 'pending' end,
    case when j.status = 'sent' then 576460765503091475 + j.id end,
    j.updated_at
  from email_send_jobs j
  where j.app_id = any($1::bigint[])`;

const INSERT_CHANGES = `
  insert into status_changes (app_id, job_id, recipient_id, old_status, new_status, created_at)
  select j.app_id, j.id, null, 'processing', 'accepted', j.accepted_at
  from email_send_jobs j
  where j.app_id = any($1::bigint[])
    and j.status = 'sent'`;

const INSERT_EVENTS = `
  insert into email_events (dedupe_key, event_type, occurred_at, mailjet_message_id, email, recipient_id, job_id, payload, received_at)
  select 'seed-' || r.id, 'sent', r.updated_at + interval '2 seconds', r.mailjet_message_id, r.email, r.id, r.job_id, '{}'::jsonb, r.updated_at + interval '3 seconds'
  from email_recipients r
  join email_send_jobs j on j.id = r.job_id
  where j.app_id = any($1::bigint[])
    and r.status = 'sent'`;

const INSERT_DELIVERIES = `
  insert into webhook_deliveries (change_id, app_id, url, status, attempts, next_attempt_at, created_at, delivered_at, last_status_code)
  select c.id, c.app_id, 'https://hooks.example.org/jetpost', 'delivered', 1, c.created_at, c.created_at, c.created_at, 200
  from status_changes c
  where c.app_id = $1::bigint`;

// What the processes that enqueued and sent these jobs would have counted (services/throughput.ts),
// for the day the table keeps.
const INSERT_THROUGHPUT = `
  insert into throughput_minutes (minute, enqueued, accepted)
  select minute, sum(enqueued), sum(accepted)
  from (
    select date_trunc('minute', created_at) as minute, 1 as enqueued, 0 as accepted
    from email_send_jobs
    where created_at >= $1::timestamptz - interval '1 day'
    union all
    select date_trunc('minute', accepted_at), 0, 1
    from email_send_jobs
    where accepted_at >= $1::timestamptz - interval '1 day'
  ) as counted
  group by minute`;

const INSERT_SUPPRESSIONS = `
  insert into suppressions (app_id, email, reason, detail)
  select $1::bigint, 'bounced' || i || '@example.org', 'hard_bounce', 'seeded'
  from generate_series(1, 2000) as i`;

/** Writes the history (in the caller's transaction or not) and analyses the tables, as autovacuum would have. */
export async function seedDashboardHistory(
  db: Queryable,
  options: { jobs: number; apps: number; prefix: string; now: Date; /** Over how long the jobs spread, the newest now (default 30 days). */ spanMs?: number },
): Promise<SeededHistory> {
  const apps = (await db.query<{ id: string; name: string }>(INSERT_APPS, [options.prefix, options.apps])).rows;
  const appIds = apps.map((app) => app.id);
  await db.query(INSERT_JOBS, [appIds, options.jobs, options.now, options.spanMs ?? 30 * 24 * 3600 * 1000]);
  await db.query(INSERT_RECIPIENTS, [appIds, options.jobs]);
  await db.query(INSERT_CHANGES, [appIds]);
  await db.query(INSERT_EVENTS, [appIds]);
  await db.query(INSERT_DELIVERIES, [appIds[0]]);
  await db.query(INSERT_SUPPRESSIONS, [appIds[0]]);
  await db.query(INSERT_THROUGHPUT, [options.now]);
  await db.query('analyze apps, email_send_jobs, email_recipients, status_changes, email_events, webhook_deliveries, suppressions, throughput_minutes');
  const sample = (
    await db.query<{ job_id: string; email: string; custom_id: string }>(
      `select r.job_id::text, r.email, j.custom_id
       from email_send_jobs j
       join email_recipients r on r.job_id = j.id
       where j.app_id = any($1::bigint[]) and j.status = 'sent'
       order by j.id desc
       limit 1 offset 500`,
      [appIds],
    )
  ).rows[0]!;
  const middle = (
    await db.query<{ id: string }>('select j.id::text as id from email_send_jobs j where j.app_id = any($1::bigint[]) order by j.id limit 1 offset $2', [
      appIds,
      Math.floor(options.jobs / 2),
    ])
  ).rows[0]!;
  return {
    appIds,
    appNames: apps.map((app) => app.name),
    rareAppId: appIds.at(-1)!,
    sampleJobId: sample.job_id,
    sampleRecipient: sample.email,
    sampleCustomId: sample.custom_id,
    middleJobId: middle.id,
  };
}
