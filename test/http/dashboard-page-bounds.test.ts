// Dashboard pages stay within PAGE_BYTES of HTML whatever the database holds, and say what they
// left out. Before, the job page bounded only its events, and in bytes of JSON: HTML escaping makes
// an `&` five bytes and a `"` six, so 500 clicks on links full of `&` made a 10 MB page; its status
// changes had no bound at all (50 recipients whose changes carry 15,000-character details made
// 22 MB), and a job with more than 500 changes did not say it showed only the first 500. The apps
// page listed every app (10,000 apps: 8 MB).
import { expect } from 'chai';

import { PAGE_BYTES } from '../../src/domain/page-budget.js';
import { makeJob, recipientIds } from '../factories.js';
import { type DashboardClient, dashboardClient } from '../support/dashboard-client.js';
import { startTestService, type TestService } from '../support/service.js';

const DAY_AGO = Date.now() - 24 * 3600 * 1000;

describe('dashboard pages of a hostile database', function () {
  this.timeout(300_000);

  let service: TestService;
  let client: DashboardClient;

  before(async () => {
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0' } });
    client = await dashboardClient(service);
  });

  after(async () => {
    await service?.stop();
  });

  /** The page, checked to be whole and within PAGE_BYTES. */
  async function boundedPage(path: string): Promise<string> {
    const { res, text } = await client.get(path);
    expect(res.status, path).to.equal(200);
    expect(text).to.match(/<\/html>\n$/);
    expect(Buffer.byteLength(text), `${path}: bytes`).to.be.at.most(PAGE_BYTES);
    return text;
  }

  /** `count` clicks for the job's first recipient, one a second from a day ago, the nth on link n followed by `&`s up to 10,000 characters. */
  async function ampersandClicks(jobId: string, count: number): Promise<void> {
    const [recipientId] = await recipientIds(service.jetpost.pool, jobId);
    await service.jetpost.pool.query(
      `insert into email_events (dedupe_key, event_type, occurred_at, recipient_id, job_id, payload)
       select $2::text || '-amp-' || n, 'click', to_timestamp($3::double precision / 1000) + n * interval '1 second', $1, $2::bigint,
         jsonb_build_object('event', 'click', 'url', left('https://example.com/' || n || '/?' || repeat('&', 10000), 10000))
       from generate_series(1, $4::int) n`,
      [recipientId, jobId, DAY_AGO, count],
    );
  }

  /**
   * For each recipient of the job, `perRecipient` status changes whose details are as large as an
   * event can make them (a 10,000-character url, 1,000-character agent, error, comment, source, geo),
   * all quotes and `<`s: one second apart from a day ago.
   */
  async function fatChanges(jobId: string, perRecipient: number): Promise<void> {
    await service.jetpost.pool.query(
      `insert into status_changes (app_id, job_id, recipient_id, old_status, new_status, details, created_at)
       select j.app_id, j.id, r.id, 'sent', 'opened',
         jsonb_build_object('event', 'opened', 'occurred_at', 'then', 'url', repeat('"', 10000), 'agent', repeat('<', 1000),
           'error', repeat('"', 1000), 'comment', repeat('"', 1000), 'source', repeat('"', 1000), 'geo', repeat('"', 1000)),
         to_timestamp($2::double precision / 1000) + (r.position * $3::int + n) * interval '1 second'
       from email_send_jobs j
       join email_recipients r on r.job_id = j.id
       cross join generate_series(1, $3::int) n
       where j.id = $1::bigint
       order by r.position, n`,
      [jobId, DAY_AGO, perRecipient],
    );
  }

  const fiftyRecipients = () => Array.from({ length: 50 }, (_, n) => `recipient-${n}-${'x'.repeat(40)}@example.org`);
  const rows = (text: string, kind: string) => text.match(new RegExp(`<tr data-kind="${kind}">`, 'g'))?.length ?? 0;

  it("when a job has 500 clicks on 10,000-character links full of '&' (10 MB of HTML), then its page holds the latest that fit in 2 MiB and says how many earlier ones it leaves out, and where they are", async () => {
    const jobId = await makeJob(service.jetpost.pool, { appId: service.appId });
    await ampersandClicks(jobId, 500);

    const text = await boundedPage(`/dashboard/jobs/${jobId}`);

    const shown = [...text.matchAll(/url: https:\/\/example\.com\/(\d+)\//g)].map((match) => Number(match[1]));
    expect(shown.length).to.be.within(30, 50);
    expect(rows(text, 'event')).to.equal(shown.length);
    expect(shown).to.deep.equal(Array.from({ length: shown.length }, (_, index) => 501 - shown.length + index));
    expect(text).to.include(
      `<p id="events-omitted">${500 - shown.length} earlier Mailjet events are not shown: the timeline holds the latest ${shown.length} (at most 500, and as many as fit in a page of 2 MiB).</p>`,
    );
    const schema = service.config.database.schema;
    expect(text).to.include(
      `The whole history is kept in the database: <code>select * from ${schema}.status_changes where job_id = ${jobId} order by id</code> and <code>select * from ${schema}.email_events where job_id = ${jobId} order by occurred_at, id</code>. <code>GET /status/${jobId}</code>, with its app's API key, answers its latest 100 events.`,
    );
  });

  it('when 50 recipients each have 5 status changes with 15,000-character details of quotes (22 MB of HTML), then the page holds the first that fit in 2 MiB and says how many later ones it leaves out', async () => {
    const jobId = await makeJob(service.jetpost.pool, { appId: service.appId, to: fiftyRecipients() });
    await fatChanges(jobId, 5);

    const text = await boundedPage(`/dashboard/jobs/${jobId}`);

    const shown = rows(text, 'status');
    expect(shown).to.be.within(15, 30);
    expect(text).to.include(
      `<p id="changes-omitted">${250 - shown} later status changes are not shown: the timeline holds the first ${shown} (at most 500, and as many as fit in a page of 2 MiB).</p>`,
    );
    expect(text).to.not.include('id="events-omitted"');
    // Every recipient is still listed, with its status.
    expect(text.match(/<td class="wrap">recipient-\d+-x+@example\.org<\/td>/g)).to.have.length(50 + shown);
  });

  it('when a job has both, then its page holds some of each, taken in turns', async () => {
    const jobId = await makeJob(service.jetpost.pool, { appId: service.appId, to: fiftyRecipients() });
    await fatChanges(jobId, 5);
    await ampersandClicks(jobId, 500);

    const text = await boundedPage(`/dashboard/jobs/${jobId}`);

    const [changes, events] = [rows(text, 'status'), rows(text, 'event')];
    expect(changes).to.be.within(5, 20);
    expect(events).to.be.within(5, 30);
    expect(text).to.include(`<p id="changes-omitted">${250 - changes} later status changes are not shown: the timeline holds the first ${changes} `);
    expect(text).to.include(`<p id="events-omitted">${500 - events} earlier Mailjet events are not shown: the timeline holds the latest ${events} `);
  });

  it('when a job has 1,200 status changes (requeued again and again), then its page holds the first 500 and says 700 later ones are not shown', async () => {
    const jobId = await makeJob(service.jetpost.pool, { appId: service.appId });
    await service.jetpost.pool.query(
      `insert into status_changes (app_id, job_id, old_status, new_status, details, created_at)
       select j.app_id, j.id, 'processing', 'failed', jsonb_build_object('error', 'attempt ' || n), to_timestamp($2::double precision / 1000) + n * interval '1 second'
       from email_send_jobs j
       cross join generate_series(1, 1200) n
       where j.id = $1::bigint`,
      [jobId, DAY_AGO],
    );

    const text = await boundedPage(`/dashboard/jobs/${jobId}`);

    expect(rows(text, 'status')).to.equal(500);
    expect(text).to.include('error: attempt 500<').and.not.include('error: attempt 501<');
    expect(text).to.include(
      '<p id="changes-omitted">700 later status changes are not shown: the timeline holds the first 500 (at most 500, and as many as fit in a page of 2 MiB).</p>',
    );
  });

  it('when there are 10,000 apps with 100-character names (8 MB of rows), then the apps page holds those that fit in 2 MiB and says how many it leaves out and where to list them all, and the other pages filter by app name', async () => {
    await service.jetpost.pool.query(
      `insert into apps (name)
       select 'app-' || lpad(n::text, 5, '0') || '-' || repeat('x', 90)
       from generate_series(1, 10000) n`,
    );

    const text = await boundedPage('/dashboard/apps');

    const shown = text.match(/<tr data-app="/g)?.length ?? 0;
    expect(shown).to.be.within(2_000, 9_000);
    const { rows: counted } = await service.jetpost.pool.query<{ apps: number }>('select count(*)::int as apps from apps');
    const left = counted[0]!.apps - shown;
    expect(text).to.include(
      `<p class="muted" id="rows-omitted">${left.toLocaleString('en-US')} more apps are not shown: a page holds at most 2 MiB. npm run admin -- apps list (or GET /admin/apps) lists them all.</p>`,
    );
    // The app filter of the list pages, a list of every app, was 2.2 MB of options on its own.
    const appName = (await service.jetpost.pool.query<{ name: string }>('select name from apps where id = $1', [service.appId])).rows[0]!.name;
    for (const path of ['/dashboard/jobs', '/dashboard/failed', `/dashboard/suppressions?app=${appName}`, `/dashboard/jobs?app=${appName}`]) {
      const page = await boundedPage(path);
      expect(page, path).to.not.include('<option value="app-');
      expect(page, path).to.match(/<label>app<input type="text" name="app" value="[^"]*"/);
    }
    expect(await boundedPage(`/dashboard/jobs?app=${appName}`)).to.include(`<input type="text" name="app" value="${appName}" placeholder="every app"`);
  });
});
