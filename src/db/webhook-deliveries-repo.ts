// webhook_deliveries: the outbox of status changes to POST to apps' webhook URLs.
import { LIST_WINDOW, nextBefore } from '../domain/page.js';
import type { WebhookBacklog } from '../domain/queue-figures.js';
import type { RecordedChange } from '../domain/status-change.js';
import type { DeliveryOutcome, DeliveryPage, DeliveryRow, DeliveryStatus, DueDelivery } from '../domain/webhook-delivery.js';
import { planByIndexOrder } from './capped-counts.js';
import { listWindow } from './list-window.js';
import { type PreparedStatement, query, type Queryable } from './pool.js';
import { CHANGE_COLUMNS, toStatusChange } from './status-changes-repo.js';

// One delivery per change of an app that has a webhook subscribed to the change's type (null: to
// every type), to the URL it has now; none while the webhook is disabled (its receiver said 410 Gone).
const INSERT_DELIVERIES_TEXT = `
  insert into webhook_deliveries (change_id, app_id, url)
  select c.id, c.app_id, a.webhook_url
  from unnest($1::bigint[], $2::bigint[], $3::text[]) as c(id, app_id, type)
  join apps a on a.id = c.app_id
  where a.webhook_url is not null
    and a.webhook_disabled_at is null
    and (a.webhook_event_types is null or c.type = any(a.webhook_event_types))
  order by c.id`;
const INSERT_DELIVERIES: PreparedStatement = { name: 'webhook_deliveries_insert', text: INSERT_DELIVERIES_TEXT };

// The app's pending delivery attempted last, as near as the table tells: a failed attempt puts the
// delivery's next attempt after its backoff, later than those of the deliveries never attempted
// (due since they were made). Read backwards on (app_id, next_attempt_at, id) where pending.
const LAST_FAILED_ATTEMPT = `
  select last_status_code, last_error
  from webhook_deliveries
  where app_id = $1::bigint
    and status = 'pending'
    and last_error is not null
  order by next_attempt_at desc, id desc
  limit 1`;

/** What the last failed attempt among the app's pending deliveries got: an HTTP status (null: no answer) and the error recorded. */
export async function findLastFailedAttempt(db: Queryable, appId: string): Promise<{ statusCode: number | null; error: string } | undefined> {
  const [row] = await query(db, LAST_FAILED_ATTEMPT, [appId]);
  return row && { statusCode: (row['last_status_code'] as number | null) ?? null, error: String(row['last_error']) };
}

/** Queues the deliveries of these changes (in the caller's transaction); returns how many. */
export async function insertDeliveries(tx: Queryable, changes: readonly RecordedChange[]): Promise<number> {
  if (changes.length === 0) {
    return 0;
  }
  const result = await tx.query(INSERT_DELIVERIES, [changes.map((c) => c.id), changes.map((c) => c.appId), changes.map((c) => c.type)]);
  return result.rowCount ?? 0;
}

// This dispatcher's deliveries in flight, by app (ids in `ids`, counts in `counts`; joined as `f`),
// and how many more of app `a`'s it may have in flight: `perApp` minus those, or only one, alone in
// flight, while the app's deliveries follow a pause (webhook_throttled_until is set, until an answer
// ends it: apps-repo.ts): a receiver that is still down or overloaded costs one attempt a pause, not
// one per slot. The claim and the look-up of the next due time hold apps to the same room.
const inFlightFrom = (ids: string, counts: string) => `in_flight as (
    select app_id, count
    from unnest(${ids}::bigint[], ${counts}::integer[]) as f(app_id, count)
  )`;
const appRoom = (perApp: string) => `greatest(0, case when a.webhook_throttled_until is null then ${perApp}::integer else 1 end - coalesce(f.count, 0))`;

// The apps that have pending deliveries no dispatcher holds, each with the time of its earliest
// such delivery, found by skipping through the index of pending deliveries (sql/6_…) from one app
// to the next: a step per such app, however long its backlog (and past the few deliveries of it in
// flight), and none for the apps that have none. Going over the apps table instead cost a probe of
// that index per app on every turn: with 5,000 apps, most of them idle, and a million pending
// deliveries, 20,000 pages a claim and 16,000 a look-up of the next due time.
const PENDING_APPS = `pending_apps (app_id, first_at) as (
    (
      select d.app_id, d.next_attempt_at
      from webhook_deliveries d
      where d.status = 'pending'
        and (d.locked_until is null or d.locked_until < now())
      order by d.app_id, d.next_attempt_at, d.id
      limit 1
    )
    union all
    select n.app_id, n.next_attempt_at
    from pending_apps p
    cross join lateral (
      select d.app_id, d.next_attempt_at
      from webhook_deliveries d
      where d.status = 'pending'
        and (d.locked_until is null or d.locked_until < now())
        and d.app_id > p.app_id
      order by d.app_id, d.next_attempt_at, d.id
      limit 1
    ) n
  )`;

// Claims due deliveries for a while (lockMs) so that other replicas skip them; a dispatcher that
// dies leaves them to be retried when the lock runs out. App by app: each app gets at most its room
// (above), so that an app whose receiver is slow, however long its backlog, holds only a few of the
// `limit` slots; an app whose deliveries are paused (its receiver said it is overloaded, or could not
// be reached) gets none until then. Across apps, the apps take turns: an app's next delivery goes
// before another app's second one in flight (a backlog's deliveries, all due for long, would
// otherwise go before every other app's, and a few slow receivers with backlogs would take every
// slot). Within a turn, the deliveries of apps whose receivers answer go before the lone attempts
// after a pause (many dead receivers, each tried again after its pause with its oldest delivery,
// would otherwise take the slots first), and then the longest due go first.
//
// Only the `limit` apps whose earliest due delivery comes first in that order are probed: an app's
// later deliveries come after its first, so no other app's can be among the `limit` claimed. Locking
// each app's room of deliveries first, then keeping `limit` of them, locked 4 rows of every app with
// deliveries due (5,000 apps: 20,000 rows, 96,000 pages and a quarter of a second a claim).
const CLAIM_DUE = `
  with recursive ${inFlightFrom('$3', '$4')},
  ${PENDING_APPS},
  due_apps as (
    select a.id, a.webhook_throttled_until is not null as probe, coalesce(f.count, 0) as in_flight, ${appRoom('$2')} as room
    from pending_apps p
    join apps a on a.id = p.app_id
    left join in_flight f on f.app_id = a.id
    -- Its earliest pending delivery no dispatcher holds is not due: none is.
    where p.first_at <= now()
      and (a.webhook_throttled_until is null or a.webhook_throttled_until <= now())
      and ${appRoom('$2')} > 0
    -- Its earliest due delivery's place in the order below: its turn is its in-flight count plus one.
    order by in_flight, probe, p.first_at, a.id
    limit $1
  ),
  candidates as (
    select d.id, d.next_attempt_at, t.probe,
      row_number() over (partition by t.id order by d.next_attempt_at, d.id) + t.in_flight as turn
    from due_apps t
    cross join lateral (
      select d.id, d.next_attempt_at
      from webhook_deliveries d
      where d.app_id = t.id
        and d.status = 'pending'
        and d.next_attempt_at <= now()
        and (d.locked_until is null or d.locked_until < now())
      order by d.next_attempt_at, d.id
      limit t.room
      for update of d skip locked
    ) d
  ),
  due as (
    select id
    from candidates
    order by turn, probe, next_attempt_at, id
    limit $1
  ),
  claimed as (
    update webhook_deliveries d
    set locked_until = now() + make_interval(secs => $5::double precision / 1000),
      attempts = d.attempts + 1
    from due
    where d.id = due.id
    returning d.id, d.app_id, d.change_id, d.attempts, d.created_at
  )
  select claimed.id as delivery_id, claimed.app_id, claimed.attempts, claimed.created_at as delivery_created_at,
    a.webhook_url, a.webhook_secret, a.webhook_disabled_reason, a.webhook_throttled_until is not null as probe,
    case when a.webhook_throttled_until is null then 0 else a.webhook_pauses end as webhook_pauses,
    array(
      select s.secret
      from webhook_previous_secrets s
      where s.app_id = a.id
        and s.expires_at > now()
      order by s.id desc
    ) as previous_secrets,
    ${CHANGE_COLUMNS}
  from claimed
  join apps a on a.id = claimed.app_id
  join status_changes c on c.id = claimed.change_id
  join email_send_jobs j on j.id = c.job_id
  left join email_recipients r on r.id = c.recipient_id
  order by claimed.id`;

/** The deliveries this dispatcher has in flight, and how many of one app it may have. */
export interface AppRoom {
  /** Deliveries of one app in flight at most, those already in flight (`inFlight`) included. */
  perApp: number;
  /** This dispatcher's deliveries in flight, by app id. */
  inFlight: ReadonlyMap<string, number>;
}

export interface ClaimOptions extends AppRoom {
  /** Deliveries to claim at most. */
  limit: number;
  /** How long the claim holds, in ms. */
  lockMs: number;
}

export async function claimDueDeliveries(db: Queryable, options: ClaimOptions): Promise<DueDelivery[]> {
  const rows = await query(db, CLAIM_DUE, [options.limit, options.perApp, [...options.inFlight.keys()], [...options.inFlight.values()], options.lockMs]);
  return rows.map((row) => {
    const secret = row['webhook_secret'] as string | null;
    return {
      id: String(row['delivery_id']),
      appId: String(row['app_id']),
      url: (row['webhook_url'] as string | null) ?? null,
      disabledReason: (row['webhook_disabled_reason'] as string | null) ?? null,
      secrets: secret === null ? [] : [secret, ...(row['previous_secrets'] as string[])],
      attempts: Number(row['attempts']),
      probe: row['probe'] === true,
      pauses: Number(row['webhook_pauses']),
      createdAt: row['delivery_created_at'] as Date,
      change: toStatusChange(row),
    };
  });
}

// Only the claim that made the attempt may record it: its attempt number is its token (every claim
// counts one more) and a redelivery clears the claim. A dispatcher whose claim lapsed and was taken
// by another, or was redelivered meanwhile, records nothing (zero rows) instead of overwriting.
const SETTLE = `
  update webhook_deliveries
  set status = $2,
    next_attempt_at = coalesce($3, next_attempt_at),
    last_status_code = $4,
    last_error = $5,
    delivered_at = case when $2 = 'delivered' then now() else delivered_at end,
    locked_until = null
  where id = $1::bigint
    and attempts = $6
    and locked_until is not null
  returning id`;

/** Records an attempt's outcome; false when the claim (`delivery.attempts`) is no longer the one held. */
export async function settleDelivery(db: Queryable, delivery: Pick<DueDelivery, 'id' | 'attempts'>, outcome: DeliveryOutcome): Promise<boolean> {
  const status = outcome.kind === 'retry' ? 'pending' : outcome.kind;
  const rows = await query(db, SETTLE, [
    delivery.id,
    status,
    outcome.kind === 'retry' ? outcome.nextAttemptAt : null,
    outcome.statusCode,
    outcome.kind === 'delivered' ? null : outcome.error,
    delivery.attempts,
  ]);
  return rows.length > 0;
}

// At most `$3` at once, through the app's pending index: the caller's transaction must end within
// the statement timeout even for an app with a backlog of millions. Deliveries left pending, and
// those being attempted (claimed), fail as they are claimed (the dispatcher finds the webhook
// disabled) or settle on their own.
const FAIL_PENDING = `
  update webhook_deliveries
  set status = 'failed',
    last_error = $2
  where id in (
    select id
    from webhook_deliveries
    where app_id = $1::bigint
      and status = 'pending'
      and (locked_until is null or locked_until < now())
    limit $3
  )
    -- Again on the row as locked: a claim may have taken it since the sub-select read it.
    and status = 'pending'
    and (locked_until is null or locked_until < now())`;

/** How many of a disabled webhook's pending deliveries fail at once; the rest fail as they are claimed. */
const FAIL_PENDING_AT_ONCE = 1_000;

/** Fails up to FAIL_PENDING_AT_ONCE of the app's pending deliveries that no dispatcher holds; returns how many. */
export async function failPendingDeliveries(db: Queryable, appId: string, error: string): Promise<number> {
  return (await db.query(FAIL_PENDING, [appId, error, FAIL_PENDING_AT_ONCE])).rowCount ?? 0;
}

// Apps without room (above) are left out: the dispatcher has as many of theirs in flight as it
// may. A paused app's deliveries are due when its pause ends at the earliest. The earliest pending
// delivery no dispatcher holds of each app comes with the step that finds the app (above): a
// backlog of a million not yet due costs one step, where a min() over all of them ran past the
// statement timeout on every idle turn. A claim that lapses (its dispatcher died) is found by the
// idle check.
const NEXT_DUE = `
  with recursive ${inFlightFrom('$2', '$3')},
  ${PENDING_APPS}
  select min(greatest(p.first_at, a.webhook_throttled_until)) as at
  from pending_apps p
  join apps a on a.id = p.app_id
  left join in_flight f on f.app_id = a.id
  where ${appRoom('$1')} > 0`;

/** When the next delivery of an app with room falls due (null: none). */
export async function nextDeliveryAt(db: Queryable, room: AppRoom): Promise<Date | null> {
  const [row] = await query(db, NEXT_DUE, [room.perApp, [...room.inFlight.keys()], [...room.inFlight.values()]]);
  return (row?.['at'] as Date | null) ?? null;
}

const DELIVERY_COLUMNS = `d.id, d.change_id, c.job_id, c.new_status, d.status, d.attempts, d.next_attempt_at, d.last_status_code,
    d.last_error, d.created_at, d.delivered_at`;

// Through the app's index by id (sql/4_…, webhook_deliveries_app_id_idx).
const LIST_FOR_APP = `
  select ${DELIVERY_COLUMNS}
  from webhook_deliveries d
  join status_changes c on c.id = d.change_id
  where d.app_id = $1::bigint
    and ($3::bigint is null or d.id < $3)
  order by d.id desc
  limit $2`;

// A status has no index that reads an app's deliveries in id order, so a page of one looks through
// a window of the app's next $5 (LIST_WINDOW) deliveries by id below `before`, never its whole
// history: failed deliveries among millions delivered would otherwise take a walk through all of
// them, past the statement timeout. As the admin's job list does (db/list-window.ts).
const LIST_FOR_APP_IN_WINDOW = `
  with scanned as (
    select id, status
    from webhook_deliveries
    where app_id = $1::bigint
      and ($3::bigint is null or id < $3)
    order by id desc
    limit $5
  )
  select w.deliveries as window_rows, w.lowest as window_lowest, f.*
  from (select count(*)::int as deliveries, min(id)::text as lowest from scanned) as w
  left join lateral (
    select ${DELIVERY_COLUMNS}
    from scanned s
    join webhook_deliveries d on d.id = s.id
    join status_changes c on c.id = d.change_id
    where s.status = $4
    order by s.id desc
    limit $2
  ) as f on true
  order by f.id desc`;

/**
 * The app's deliveries, newest first; `before` pages by delivery id. A page of one status may hold
 * fewer than `limit` deliveries (none, even) and still have a next page: it looked through a window
 * of LIST_WINDOW deliveries only.
 */
export async function listDeliveries(
  db: Queryable,
  appId: string,
  options: { status?: DeliveryStatus | undefined; before?: string | undefined; limit: number },
): Promise<DeliveryPage> {
  const page = [appId, options.limit, options.before ?? null];
  if (options.status === undefined) {
    const deliveries = (await query(db, LIST_FOR_APP, page)).map(toDeliveryRow);
    return { deliveries, nextBefore: nextBefore(deliveries, options.limit) };
  }
  const rows = await query(db, LIST_FOR_APP_IN_WINDOW, [...page, options.status, LIST_WINDOW]);
  const deliveries = rows.filter((row) => row['id'] !== null).map(toDeliveryRow);
  return { deliveries, nextBefore: nextBefore(deliveries, options.limit, listWindow(rows[0])) };
}

function toDeliveryRow(row: Record<string, unknown>): DeliveryRow {
  return {
    id: String(row['id']),
    changeId: String(row['change_id']),
    jobId: String(row['job_id']),
    type: String(row['new_status']),
    status: row['status'] as DeliveryStatus,
    attempts: Number(row['attempts']),
    nextAttemptAt: row['next_attempt_at'] as Date,
    lastStatusCode: row['last_status_code'] === null ? null : Number(row['last_status_code']),
    lastError: (row['last_error'] as string | null) ?? null,
    createdAt: row['created_at'] as Date,
    deliveredAt: (row['delivered_at'] as Date | null) ?? null,
  };
}

// A redelivery starts a fresh retry window: created_at moves to now (the change keeps its own time).
// It also ends any claim on the delivery (see SETTLE). It first locks the change's job (key share,
// which only retention's lock and a delete wait for): retention deletes a job with its deliveries
// once it found none pending under its own lock of the job (jobs-repo.ts, PAST_RETENTION), so a
// redelivery made meanwhile would be answered as done and go with the job. It now waits, and finds
// the delivery gone (a 404), or comes first and keeps the job.
const REDELIVER = `
  with job as (
    select j.id
    from webhook_deliveries d
    join status_changes c on c.id = d.change_id
    join email_send_jobs j on j.id = c.job_id
    where d.id = $1::bigint
      and d.app_id = $2::bigint
    for key share of j
  )
  update webhook_deliveries
  set status = 'pending',
    next_attempt_at = now(),
    created_at = now(),
    locked_until = null
  where id = $1::bigint
    and app_id = $2::bigint
    and exists (select from job)
  returning id`;

/** Makes the app's delivery due again; false when the app has no such delivery. */
export async function redeliver(db: Queryable, appId: string, id: string): Promise<boolean> {
  return (await query(db, REDELIVER, [id, appId])).length > 0;
}

// The first `cap` entries of the index of pending deliveries by due time (sql/4_…), in its order
// (db/capped-counts.ts), like the queue depth's counts; the oldest due delivery is its first entry.
const WEBHOOK_BACKLOG = `
  select
    (select count(*) from (select 1 from webhook_deliveries where status = 'pending' order by next_attempt_at limit $1) s) as pending,
    (select extract(epoch from now() - min(next_attempt_at))::float8
      from webhook_deliveries
      where status = 'pending' and next_attempt_at <= now()) as oldest_due_age_s`;

/** Pending deliveries (up to `cap`) and the oldest due one's wait. In a transaction: the planner settings it makes (planByIndexOrder) last until its end. */
export async function readWebhookBacklog(tx: Queryable, cap: number): Promise<WebhookBacklog> {
  await planByIndexOrder(tx);
  const [row] = await query(tx, WEBHOOK_BACKLOG, [cap]);
  return { pending: Number(row?.['pending'] ?? 0), oldestDueAgeSeconds: Math.max(0, Number(row?.['oldest_due_age_s'] ?? 0)) };
}
