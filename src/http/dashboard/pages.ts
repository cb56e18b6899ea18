// The dashboard's pages: plain server-rendered HTML. Every value from the database goes through
// `html`, which escapes it; links and forms point at absolute /dashboard paths.
import { type App, type AppWebhook, WEBHOOK_PAUSE_ENDS_BY_ITSELF, type WebhookPause } from '../../domain/app.js';
import {
  type JobDetail,
  type JobListRow,
  type JobSearchField,
  type Overview,
  shownTimeline,
  THROUGHPUT_MINUTES,
  TIMELINE_LIMIT,
  type TimelineEntry,
} from '../../domain/dashboard.js';
import { OMITTED_EVENTS_COUNTED } from '../../domain/event.js';
import type { AdminJobRow } from '../../domain/job.js';
import { fitInTurns, PAGE_BYTES } from '../../domain/page-budget.js';
import type { Suppression } from '../../domain/suppression.js';
import type { DeliveryRow, DeliveryStatus } from '../../domain/webhook-delivery.js';
import { EVENTS_PER_JOB } from '../../services/jobs.js';
import { type Html, html, type HtmlValue, jsonScript } from './html.js';
import { CSRF_FIELD, type DashboardVisitor, LOGIN_PATH } from './session.js';

export const ASSETS_PATH = '/dashboard/assets';

type Section = 'overview' | 'jobs' | 'failed' | 'suppressions' | 'apps';

const SECTIONS: Array<[Section, string, string]> = [
  ['overview', 'Overview', '/dashboard'],
  ['jobs', 'Jobs', '/dashboard/jobs'],
  ['failed', 'Failed', '/dashboard/failed'],
  ['suppressions', 'Suppressions', '/dashboard/suppressions'],
  ['apps', 'Apps & webhooks', '/dashboard/apps'],
];

/** What a redirect after an action tells the next page (a fixed text per code: nothing is reflected). */
export const NOTICES = {
  requeued: 'The job is queued again.',
  'not-requeued': 'Nothing was re-queued: the job is no longer failed.',
  'suppression-added': 'The address is suppressed.',
  'suppression-removed': 'The address is no longer suppressed.',
  'suppression-absent': 'The address was not suppressed.',
  redelivered: 'The delivery is due again: the dispatcher will post it shortly.',
} as const;
export type NoticeCode = keyof typeof NOTICES;

export function isNoticeCode(value: unknown): value is NoticeCode {
  return typeof value === 'string' && Object.hasOwn(NOTICES, value);
}

function time(date: Date | null): Html {
  return date ? html`<time datetime="${date.toISOString()}">${date.toISOString().replace('T', ' ').slice(0, 19)}</time>` : html`<span class="muted">—</span>`;
}

function status(value: string): Html {
  return html`<span class="status status-${value}">${value}</span>`;
}

function query(params: Record<string, string | undefined>): string {
  const defined = Object.entries(params).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== '');
  return defined.length === 0 ? '' : `?${new URLSearchParams(defined).toString()}`;
}

function csrf(visitor: DashboardVisitor): Html {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${visitor.csrf}">`;
}

interface PageOptions {
  visitor?: DashboardVisitor;
  section?: Section;
  scripts?: string[];
  styles?: string[];
}

function page(title: string, body: HtmlValue, options: PageOptions = {}): string {
  const nav = options.visitor
    ? html`<header>
<span class="brand">jetpost</span>
${SECTIONS.map(([section, label, href]) => html`<a href="${href}"${options.section === section ? html` aria-current="page"` : ''}>${label}</a>`)}
<form class="inline" method="post" action="/dashboard/logout">${csrf(options.visitor)}<button type="submit">Log out</button></form>
</header>`
    : html`<header><span class="brand">jetpost</span></header>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${title} · jetpost</title>
<link rel="icon" href="data:,">
${(options.styles ?? []).map((file) => html`<link rel="stylesheet" href="${ASSETS_PATH}/${file}">`)}
<link rel="stylesheet" href="${ASSETS_PATH}/dashboard.css">
</head>
<body>
${nav}
<main>
${body}
</main>
${(options.scripts ?? []).map((file) => html`<script src="${ASSETS_PATH}/${file}"></script>`)}
</body>
</html>
`.text;
}

/**
 * What a page's frame, measured with no row of its lists shown, may grow by once rows are shown: the
 * counts in its notices, an "Older" link with the search in it (at most 254 characters, escaped).
 */
const PAGE_SLACK_BYTES = 8 * 1024;

const MIB = 1024 * 1024;

/** A list of a bounded page: its rows in the order they are kept (the first is kept first). */
interface PageList {
  count: number;
  row(index: number): Html;
}

/**
 * A page of at most PAGE_BYTES, however large its lists' rows: `body(shown)` renders it with, of each
 * list, its first `shown[i]` rows. The frame (the body with no row shown, its notices saying every
 * row is left out) is measured first, and the lists' rows share what it leaves, in turns
 * (fitInTurns). The rows it reaches are rendered once: `row` should return what `body` shows (cachedRows).
 */
function boundedPage(title: string, lists: readonly PageList[], body: (shown: readonly number[]) => HtmlValue, options: PageOptions): string {
  const frameBytes = Buffer.byteLength(page(title, body(lists.map(() => 0)), options));
  const shown = fitInTurns(
    lists.map((list) => ({ count: list.count, bytesOf: (index: number) => Buffer.byteLength(list.row(index).text) })),
    PAGE_BYTES - frameBytes - PAGE_SLACK_BYTES,
  );
  return page(title, body(shown), options);
}

/** A row renderer that renders each row once, however often it is asked. */
function cachedRows<T extends object>(render: (row: T) => Html): (row: T) => Html {
  const rendered = new WeakMap<T, Html>();
  return (row) => {
    let done = rendered.get(row);
    if (done === undefined) {
      done = render(row);
      rendered.set(row, done);
    }
    return done;
  };
}

/**
 * A page of one list within PAGE_BYTES (boundedPage): `body(rows, after)` gets the rows that fit, and
 * what follows them: the notice of those left out, and `older(shown)`, the link to the rows after the
 * first `shown`.
 */
function listPage<T extends object>(
  title: string,
  list: {
    rows: readonly T[];
    /** What the rows are, and where to see those left out. */
    what: string;
    rest: string;
    row: (row: T) => Html;
    older: (shown: number) => HtmlValue;
  },
  body: (rows: Html[], older: HtmlValue) => HtmlValue,
  options: PageOptions,
): string {
  const rowOf = cachedRows(list.row);
  return boundedPage(
    title,
    [{ count: list.rows.length, row: (index) => rowOf(list.rows[index]!) }],
    ([shown = 0]) => {
      const left = list.rows.length - shown;
      const omitted =
        left > 0 &&
        html`<p class="muted" id="rows-omitted">${left.toLocaleString('en-US')} more ${list.what} are not shown: a page holds at most ${PAGE_BYTES / MIB} MiB. ${list.rest}</p>`;
      return body(list.rows.slice(0, shown).map(rowOf), html`${omitted}${list.older(shown)}`);
    },
    options,
  );
}

const OLDER_GOES_ON = '"Older" goes on from the last one shown.';

/** The row an "Older" link starts after: the last one shown, when some were left out or the page is full. */
function olderThan<T>(rows: readonly T[], shown: number, full: boolean): T | undefined {
  return shown < rows.length || full ? rows[shown - 1] : undefined;
}

function notice(code: NoticeCode | undefined): HtmlValue {
  return code && html`<p class="notice" role="status">${NOTICES[code]}</p>`;
}

function olderLink(path: string, params: Record<string, string | undefined>): Html {
  return html`<p class="pager"><a href="${path}${query(params)}" rel="next">Older →</a></p>`;
}

/**
 * Past this many apps, the app filter is a text field for the name rather than a list of every app:
 * 10,000 apps with 100-character names made 2.2 MB of options, past PAGE_BYTES before any row.
 */
const APPS_LISTED_IN_FILTER = 500;

/** The app filter of a list page: a choice among the apps, or the app's name when there are too many to list. */
function appFilter(apps: readonly App[], selected: string | undefined, anyLabel: string | null): Html {
  if (apps.length > APPS_LISTED_IN_FILTER) {
    return html`<label>app<input type="text" name="app" value="${selected ?? ''}"${anyLabel === null ? html` required` : html` placeholder="${anyLabel}"`} size="24"></label>`;
  }
  return html`<label>app<select name="app">${anyLabel === null ? '' : html`<option value="">${anyLabel}</option>`}${apps.map(
    (app) => html`<option value="${app.name}"${app.name === selected ? html` selected` : ''}>${app.name}</option>`,
  )}</select></label>`;
}

export function loginPage(options: { next: string; problem?: string | undefined; enabled: boolean }): string {
  const body = options.enabled
    ? html`<section class="login">
<h1>Log in to the jetpost dashboard</h1>
${options.problem && html`<p class="problem" role="alert">${options.problem}</p>`}
<form method="post" action="${LOGIN_PATH}">
<input type="hidden" name="next" value="${options.next}">
<label>Admin key (ADMIN_API_KEY)<input type="password" name="key" autocomplete="current-password" required autofocus></label>
<button class="primary" type="submit">Log in</button>
</form>
</section>`
    : html`<section class="login">
<h1>The dashboard is off</h1>
<p class="problem" role="alert">${options.problem ?? 'Set ADMIN_API_KEY to use the dashboard.'}</p>
</section>`;
  return page('Log in', body);
}

export function errorPage(
  statusCode: number,
  message: string,
  fields: ReadonlyArray<{ path: string; message: string }>,
  visitor: DashboardVisitor | undefined,
): string {
  return page(
    `Error ${statusCode}`,
    html`<h1>Error ${statusCode}</h1>
<div class="problem" role="alert"><p>${message}</p>${fields.length > 0 ? html`<ul>${fields.map((field) => html`<li><code>${field.path}</code>: ${field.message}</li>`)}</ul>` : ''}</div>
<p><a href="/dashboard">Back to the overview</a></p>`,
    visitor ? { visitor } : {},
  );
}

export function overviewPage(visitor: DashboardVisitor, overview: Overview): string {
  const enqueued = overview.throughput.reduce((sum, minute) => sum + minute.enqueued, 0);
  const accepted = overview.throughput.reduce((sum, minute) => sum + minute.accepted, 0);
  const chartData = overview.throughput.map((minute) => ({ minute: minute.minute.getTime(), enqueued: minute.enqueued, accepted: minute.accepted }));
  const body = html`<h1>Overview</h1>
<h2>Queue depth by status</h2>
<table id="queue-depth">
<thead><tr><th>status</th><th class="number">jobs</th></tr></thead>
<tbody>
${overview.depth.map(
  (row) =>
    html`<tr data-status="${row.status}"><td>${status(row.status)}</td><td class="number">${row.jobs.toLocaleString('en')}${row.capped ? '+' : ''}</td></tr>`,
)}
</tbody>
</table>
<p class="muted" id="jobs-kept">${
    overview.approximateJobs === null
      ? 'Jobs kept in all: not estimated yet (PostgreSQL has not analysed the table).'
      : `Jobs kept in all: about ${overview.approximateJobs.toLocaleString('en')} (PostgreSQL's estimate).`
  }</p>
<h2>Throughput over the last hour</h2>
<p id="throughput-summary">In the last ${THROUGHPUT_MINUTES} minutes: <strong>${enqueued.toLocaleString('en')}</strong> jobs enqueued, <strong>${accepted.toLocaleString('en')}</strong> accepted by Mailjet.</p>
<div id="throughput-chart" role="img" aria-label="Jobs enqueued and accepted per minute over the last hour"></div>
${jsonScript('throughput-data', chartData)}`;
  return page('Overview', body, { visitor, section: 'overview', scripts: ['uPlot.iife.min.js', 'dashboard.js'], styles: ['uPlot.min.css'] });
}

const SEARCH_FIELDS: Array<[JobSearchField | '', string]> = [
  ['', 'any (guess)'],
  ['job_id', 'job id'],
  ['custom_id', 'custom_id'],
  ['recipient', 'recipient address'],
];

function jobRow(job: JobListRow): Html {
  return html`<tr>
<td><a href="/dashboard/jobs/${job.id}">${job.id}</a></td>
<td>${job.appName}</td>
<td>${status(job.status)}</td>
<td class="wrap">${job.recipient}${job.recipientCount > 1 ? html` <span class="muted">+${job.recipientCount - 1}</span>` : ''}</td>
<td class="wrap">${job.customId}</td>
<td>${time(job.createdAt)}</td>
<td class="number">${job.attempts}</td>
<td class="wrap">${job.lastError}</td>
</tr>`;
}

export function jobsPage(
  visitor: DashboardVisitor,
  view: { apps: readonly App[]; rows: readonly JobListRow[]; q: string | undefined; field: JobSearchField | undefined; app: string | undefined; limit: number },
): string {
  const older = (shown: number) => {
    const last = olderThan(view.rows, shown, view.rows.length === view.limit);
    return last && olderLink('/dashboard/jobs', { q: view.q, by: view.field, app: view.app, before: last.id });
  };
  return listPage(
    'Jobs',
    { rows: view.rows, what: 'jobs', rest: OLDER_GOES_ON, row: jobRow, older },
    (rows, after) => html`<h1>Jobs</h1>
<form class="filters" method="get" action="/dashboard/jobs" role="search">
<label>Find<input type="search" name="q" value="${view.q ?? ''}" placeholder="job id, custom_id or recipient address" size="40"></label>
<label>by<select name="by">${SEARCH_FIELDS.map(([value, label]) => html`<option value="${value}"${(view.field ?? '') === value ? html` selected` : ''}>${label}</option>`)}</select></label>
${appFilter(view.apps, view.app, 'every app')}
<button class="primary" type="submit">Search</button>
</form>
${
  view.rows.length === 0
    ? html`<p class="muted">No job found.</p>`
    : html`<table id="jobs">
<thead><tr><th>job</th><th>app</th><th>status</th><th>recipient</th><th>custom_id</th><th>created</th><th class="number">attempts</th><th>last error</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
}
${after}`,
    { visitor, section: 'jobs' },
  );
}

function requeueForm(visitor: DashboardVisitor, jobId: string, back: string): Html {
  return html`<form class="inline" method="post" action="/dashboard/failed/requeue">${csrf(visitor)}<input type="hidden" name="job_id" value="${jobId}"><input type="hidden" name="back" value="${back}"><button type="submit">Requeue</button></form>`;
}

function timelineRow(entry: TimelineEntry): Html {
  return html`<tr data-kind="${entry.kind}"><td>${time(entry.at)}</td><td>${entry.kind === 'event' ? 'Mailjet event' : entry.kind === 'status' ? 'status' : 'created'}</td><td class="wrap">${entry.recipient ?? html`<span class="muted">the job</span>`}</td><td>${entry.what}</td><td class="wrap">${entry.detail}</td></tr>`;
}

/** "1,000 or more" when a read counted up to its cap (`read` of them), else the count. */
function omittedCount(total: number, read: number): string {
  return `${total.toLocaleString('en-US')}${read >= OMITTED_EVENTS_COUNTED ? ' or more' : ''}`;
}

/** What a job's timeline leaves out, and where the whole history is. */
function timelineOmitted(detail: JobDetail, shown: ReturnType<typeof shownTimeline>, changesShown: number, eventsShown: number): HtmlValue {
  if (shown.changesOmitted === 0 && shown.eventsOmitted === 0) {
    return '';
  }
  const within = `at most ${TIMELINE_LIMIT}, and as many as fit in a page of ${PAGE_BYTES / MIB} MiB`;
  const id = detail.job.id;
  return html`<div class="muted" id="timeline-omitted">
${shown.changesOmitted > 0 ? html`<p id="changes-omitted">${omittedCount(shown.changesOmitted, detail.changesOmitted)} later status changes are not shown: the timeline holds the first ${changesShown.toLocaleString('en-US')} (${within}).</p>` : ''}
${shown.eventsOmitted > 0 ? html`<p id="events-omitted">${omittedCount(shown.eventsOmitted, detail.eventsOmitted)} earlier Mailjet events are not shown: the timeline holds the latest ${eventsShown.toLocaleString('en-US')} (${within}).</p>` : ''}
<p id="whole-history">The whole history is kept in the database: <code>select * from ${detail.schema}.status_changes where job_id = ${id} order by id</code> and <code>select * from ${detail.schema}.email_events where job_id = ${id} order by occurred_at, id</code>. <code>GET /status/${id}</code>, with its app's API key, answers its latest ${EVENTS_PER_JOB} events.</p>
</div>`;
}

export function jobPage(visitor: DashboardVisitor, detail: JobDetail, noticeCode: NoticeCode | undefined): string {
  const { job, changes, events } = detail;
  const rowOf = cachedRows(timelineRow);
  // Changes are kept from the first, events from the latest (what the reads kept too).
  const lists = [
    { count: changes.length, row: (index: number) => rowOf(changes[index]!) },
    { count: events.length, row: (index: number) => rowOf(events[events.length - 1 - index]!) },
  ];
  const body = ([changesShown = 0, eventsShown = 0]: readonly number[]) => {
    const shown = shownTimeline(detail, changesShown, eventsShown);
    return html`<h1>Job ${job.id}</h1>
${notice(noticeCode)}
<dl class="fields" id="job">
<dt>status</dt><dd>${status(job.status)} ${job.status === 'failed' ? requeueForm(visitor, job.id, 'job') : ''}</dd>
<dt>app</dt><dd>${job.appName}</dd>
<dt>subject</dt><dd id="subject">${detail.subject ?? html`<span class="muted">(from the template)</span>`}</dd>
<dt>from</dt><dd>${detail.from}</dd>
<dt>custom_id</dt><dd>${job.customId}</dd>
<dt>metadata</dt><dd><code>${job.metadata === null ? '' : JSON.stringify(job.metadata)}</code></dd>
<dt>priority</dt><dd>${job.priority}</dd>
<dt>created</dt><dd>${time(job.createdAt)}</dd>
<dt>send_at</dt><dd>${time(job.sendAt)}</dd>
<dt>next run</dt><dd>${time(job.runAt)}</dd>
<dt>attempts</dt><dd>${job.attempts} of ${job.maxAttempts}${job.outcomeUnknown ? " (the last one's outcome is unknown: Mailjet is asked before a resend)" : ''}</dd>
<dt>accepted</dt><dd>${time(job.acceptedAt)}</dd>
<dt>last error</dt><dd>${job.lastError}</dd>
</dl>
<h2>Recipients</h2>
<table id="recipients">
<thead><tr><th>kind</th><th>address</th><th>name</th><th>status</th><th>Mailjet MessageID</th><th>updated</th></tr></thead>
<tbody>
${detail.recipients.map(
  (r) =>
    html`<tr><td>${r.kind}</td><td class="wrap">${r.email}</td><td class="wrap">${r.name}</td><td>${status(r.status)}</td><td class="mono">${r.messageId}</td><td>${time(r.updatedAt)}</td></tr>`,
)}
</tbody>
</table>
<h2>Timeline</h2>
${timelineOmitted(detail, shown, changesShown, eventsShown)}
<table id="timeline">
<thead><tr><th>when</th><th>what</th><th>recipient</th><th>change or event</th><th>detail</th></tr></thead>
<tbody>
${shown.entries.map(rowOf)}
</tbody>
</table>`;
  };
  return boundedPage(`Job ${job.id}`, lists, body, { visitor, section: 'jobs' });
}

export function failedPage(
  visitor: DashboardVisitor,
  view: { apps: readonly App[]; rows: readonly AdminJobRow[]; app: string | undefined; limit: number; notice: NoticeCode | undefined },
): string {
  const row = (job: AdminJobRow) =>
    html`<tr data-job="${job.id}"><td><a href="/dashboard/jobs/${job.id}">${job.id}</a></td><td>${job.appName}</td><td class="wrap">${job.customId}</td><td>${time(job.updatedAt)}</td><td class="number">${job.attempts}</td><td class="wrap">${job.lastError}</td><td>${requeueForm(visitor, job.id, 'failed')}</td></tr>`;
  const older = (shown: number) => {
    const last = olderThan(view.rows, shown, view.rows.length === view.limit);
    return last && olderLink('/dashboard/failed', { app: view.app, before: last.id });
  };
  return listPage(
    'Failed jobs',
    { rows: view.rows, what: 'jobs', rest: OLDER_GOES_ON, row, older },
    (rows, after) => html`<h1>Failed jobs</h1>
${notice(view.notice)}
<p class="muted">Jobs that were never accepted by Mailjet: a permanent error, every address suppressed, or attempts exhausted. Requeueing gives a job a fresh set of attempts.</p>
<form class="filters" method="get" action="/dashboard/failed">
${appFilter(view.apps, view.app, 'every app')}
<button type="submit">Show</button>
</form>
${
  view.rows.length === 0
    ? html`<p class="muted">No failed job.</p>`
    : html`<table id="failed">
<thead><tr><th>job</th><th>app</th><th>custom_id</th><th>failed</th><th class="number">attempts</th><th>reason</th><th></th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
}
${after}`,
    { visitor, section: 'failed' },
  );
}

export function suppressionsPage(
  visitor: DashboardVisitor,
  view: { apps: readonly App[]; app: string | undefined; rows: readonly Suppression[]; limit: number; notice: NoticeCode | undefined },
): string {
  const row = (suppression: Suppression) =>
    html`<tr data-email="${suppression.email}"><td class="wrap">${suppression.email}</td><td>${suppression.reason}</td><td class="wrap">${suppression.detail}</td><td>${time(suppression.createdAt)}</td><td><form class="inline" method="post" action="/dashboard/suppressions/remove">${csrf(visitor)}<input type="hidden" name="app" value="${view.app}"><input type="hidden" name="email" value="${suppression.email}"><button type="submit">Remove</button></form></td></tr>`;
  const older = (shown: number) => {
    const last = olderThan(view.rows, shown, view.rows.length === view.limit);
    return last && olderLink('/dashboard/suppressions', { app: view.app, after: last.email });
  };
  return listPage(
    'Suppressions',
    { rows: view.rows, what: 'addresses', rest: OLDER_GOES_ON, row, older },
    (rows, after) => html`<h1>Suppressions</h1>
${notice(view.notice)}
<p class="muted">Addresses an app does not send to: hard bounces, spam complaints and unsubscribes reported by Mailjet, and addresses added here.</p>
${
  view.app === undefined
    ? html`<p class="muted">No app yet.</p>`
    : html`<form class="filters" method="get" action="/dashboard/suppressions">
${appFilter(view.apps, view.app, null)}
<button type="submit">Show</button>
</form>
<h2>Add an address for ${view.app}</h2>
<form class="filters" method="post" action="/dashboard/suppressions" id="add-suppression">
${csrf(visitor)}<input type="hidden" name="app" value="${view.app}">
<label>address<input type="email" name="email" required size="32"></label>
<label>note<input type="text" name="note" maxlength="500" size="32"></label>
<button class="primary" type="submit">Suppress</button>
</form>
<h2>Suppressed addresses of ${view.app}</h2>
${
  view.rows.length === 0
    ? html`<p class="muted">None.</p>`
    : html`<table id="suppressions">
<thead><tr><th>address</th><th>reason</th><th>detail</th><th>since</th><th></th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
}
${after}`
}`,
    { visitor, section: 'suppressions' },
  );
}

export function appsPage(visitor: DashboardVisitor, apps: ReadonlyArray<App & { activeKeys: number }>): string {
  const row = (app: App & { activeKeys: number }) =>
    html`<tr data-app="${app.name}"><td>${app.name}</td><td>${time(app.createdAt)}</td><td class="number">${app.activeKeys}</td><td><a href="/dashboard/apps/${encodeURIComponent(app.name)}/deliveries">webhook deliveries</a> · <a href="/dashboard/jobs${query({ app: app.name })}">jobs</a> · <a href="/dashboard/suppressions${query({ app: app.name })}">suppressions</a></td></tr>`;
  return listPage(
    'Apps',
    { rows: apps, what: 'apps', rest: 'npm run admin -- apps list (or GET /admin/apps) lists them all.', row, older: () => '' },
    (rows, after) => html`<h1>Apps &amp; webhooks</h1>
${
  apps.length === 0
    ? html`<p class="muted">No app yet: create one with <code>npm run admin -- apps create &lt;name&gt;</code>.</p>`
    : html`<table id="apps">
<thead><tr><th>app</th><th>created</th><th class="number">active keys</th><th></th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
}
${after}`,
    { visitor, section: 'apps' },
  );
}

const DELIVERY_FILTERS: Array<[DeliveryStatus | '', string]> = [
  ['', 'any'],
  ['pending', 'pending'],
  ['delivered', 'delivered'],
  ['failed', 'failed'],
];

/** A pause of the app's deliveries running now: the same figure GET …/webhook and the CLI show. */
function webhookPaused(pause: WebhookPause): Html {
  const last = pause.lastAttempt;
  return html`<p class="problem" id="webhook-paused">Deliveries paused until ${time(pause.until)} (pause ${pause.pausesInRow} in a row)${last ? html`: last attempt ${last.statusCode ?? 'unanswered'}, ${last.error}` : ''}. It ends by itself then: ${WEBHOOK_PAUSE_ENDS_BY_ITSELF}. To try at once, redeliver one of the deliveries below; a new URL (<code>npm run admin -- webhooks set &lt;app&gt; &lt;url&gt;</code>) starts without a pause.</p>`;
}

export function deliveriesPage(
  visitor: DashboardVisitor,
  view: {
    app: string;
    webhook: Pick<AppWebhook, 'url' | 'disabled' | 'pause'> | null;
    rows: readonly DeliveryRow[];
    status: DeliveryStatus | undefined;
    /** Where the older page starts; null on the last page. */
    nextBefore: string | null;
    notice: NoticeCode | undefined;
  },
): string {
  const path = `/dashboard/apps/${encodeURIComponent(view.app)}/deliveries`;
  const row = (d: DeliveryRow) =>
    html`<tr data-delivery="${d.id}"><td>${d.id}</td><td><a href="/dashboard/jobs/${d.jobId}">${d.jobId}</a></td><td>${d.type}</td><td>${status(d.status)}</td><td class="number">${d.attempts}</td><td class="wrap">${d.lastStatusCode}${d.lastError ? html` ${d.lastError}` : ''}</td><td>${time(d.createdAt)}</td><td>${time(d.deliveredAt)}</td><td><form class="inline" method="post" action="${path}/${d.id}/redeliver">${csrf(visitor)}<button type="submit">Redeliver</button></form></td></tr>`;
  // All shown: the list's own next page (past a window of rows that matched nothing, say); else after the last one shown.
  const older = (shown: number) => {
    const before = shown === view.rows.length ? view.nextBefore : (view.rows[shown - 1]?.id ?? null);
    return before !== null && olderLink(path, { status: view.status, before });
  };
  return listPage(
    `Deliveries of ${view.app}`,
    { rows: view.rows, what: 'deliveries', rest: OLDER_GOES_ON, row, older },
    (rows, after) => html`<h1>Webhook deliveries of ${view.app}</h1>
${notice(view.notice)}
<p>Webhook URL: ${view.webhook === null ? html`<span class="muted">none (set one with <code>npm run admin -- webhooks set &lt;app&gt; &lt;url&gt;</code>)</span>` : html`<code>${view.webhook.url}</code>`}</p>
${view.webhook?.disabled ? html`<p class="problem" id="webhook-disabled">Disabled since ${time(view.webhook.disabled.at)}: ${view.webhook.disabled.reason}. Nothing is delivered until the webhook is set again (<code>npm run admin -- webhooks set &lt;app&gt; &lt;url&gt;</code>).</p>` : ''}
${view.webhook?.pause ? webhookPaused(view.webhook.pause) : ''}
<form class="filters" method="get" action="${path}">
<label>status<select name="status">${DELIVERY_FILTERS.map(([value, label]) => html`<option value="${value}"${(view.status ?? '') === value ? html` selected` : ''}>${label}</option>`)}</select></label>
<button type="submit">Show</button>
</form>
${
  view.rows.length === 0
    ? html`<p class="muted">No delivery.</p>`
    : html`<table id="deliveries">
<thead><tr><th>delivery</th><th>job</th><th>change</th><th>status</th><th class="number">attempts</th><th>last answer</th><th>created</th><th>delivered</th><th></th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
}
${after}`,
    { visitor, section: 'apps' },
  );
}
