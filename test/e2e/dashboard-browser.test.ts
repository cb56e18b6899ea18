// /dashboard in a real browser (Debian's chromium, driven by playwright-core): log in, find a
// message by its recipient, read its timeline, requeue a failed job, add and remove a suppression,
// redeliver a webhook, log out; nothing loads from elsewhere or is refused by the page's
// Content-Security-Policy. A screenshot of each page goes to test/artifacts/dashboard/ (git-ignored).
import fs from 'node:fs/promises';
import path from 'node:path';

import { expect } from 'chai';
import type { Page } from 'playwright-core';

import { PACKAGE_ROOT } from '../../src/paths.js';
import { makeJob } from '../factories.js';
import { type Browser, launchChromium, skipWithoutChromium, watchPage } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventText } from '../support/mailjet-events.js';
import { isolateNetwork, mockMailjetSend, restoreNetwork } from '../support/mailjet-nock.js';
import { ADMIN_KEY, eventually, startTestService, type TestService } from '../support/service.js';

export const SCREENSHOTS_DIR = path.join(PACKAGE_ROOT, 'test', 'artifacts', 'dashboard');

const RECIPIENT = 'grace.hopper@example.org';

describe('/dashboard in a browser', function () {
  // Two service starts, a browser, and a dozen pages on a loaded 2-core machine.
  this.timeout(240_000);

  let db: TestDatabase | undefined;
  let service: TestService | undefined;
  let browser: Browser | undefined;

  before(function () {
    skipWithoutChromium(this);
  });

  afterEach(async () => {
    await browser?.close();
    browser = undefined;
    await service?.stop();
    service = undefined;
    await db?.drop();
    db = undefined;
    restoreNetwork();
  });

  /**
   * History made the way it happens: a message queued, accepted by Mailjet (nock), then delivered and
   * opened (its events posted to /events), its status changes posted to the app's webhook (a closed
   * port: the deliveries stay pending). Then the consumers stop, so that a requeued job stays queued.
   */
  async function history(shared: TestDatabase): Promise<{ jobId: string; appName: string }> {
    isolateNetwork();
    mockMailjetSend();
    const sender = await startTestService({
      db: shared,
      env: { WORKER_CONCURRENCY: '1', WEBHOOK_ALLOWED_TARGETS: '127.0.0.1', WEBHOOK_RETRY_BASE_MS: '600000' },
    });
    try {
      const appName = (await sender.jetpost.pool.query<{ name: string }>('select name from apps where id = $1', [sender.appId])).rows[0]!.name;
      const webhook = await sender.request('PUT', `/admin/apps/${appName}/webhook`, { key: ADMIN_KEY, body: { url: 'http://127.0.0.1:9/hooks' } });
      expect(webhook.status).to.equal(200);
      const queued = await sender.request('POST', '/queue', {
        body: { from: 'billing@example.com', to: [{ email: RECIPIENT, name: 'Grace' }], subject: 'Your invoice <#42>', text: 'Hello', custom_id: 'invoice-42' },
      });
      const { job_id: jobId } = (await queued.json()) as { job_id: string };
      const messageId = await eventually(async () => {
        const { rows } = await sender.jetpost.pool.query<{ id: string | null }>(
          'select mailjet_message_id::text as id from email_recipients where job_id = $1',
          [jobId],
        );
        return rows[0]?.id ?? undefined;
      });
      const now = Math.floor(Date.now() / 1000);
      const events = await sender.postEvents(
        `[${eventText('sent', messageId, RECIPIENT, now)},${eventText('open', messageId, RECIPIENT, now + 5, { agent: 'Mozilla' })}]`,
      );
      expect(events.status).to.equal(200);
      return { jobId, appName };
    } finally {
      await sender.stop();
    }
  }

  async function screenshot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: path.join(SCREENSHOTS_DIR, `${name}.png`), fullPage: true });
  }

  it('logs in, finds a message by recipient, shows its timeline, requeues a failed job, adds and removes a suppression, redelivers a webhook', async () => {
    await fs.mkdir(SCREENSHOTS_DIR, { recursive: true });
    db = await createTestDatabase();
    const { jobId, appName } = await history(db);
    service = await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } });
    const failedId = await makeJob(service.jetpost.pool, {
      appId: service.appId,
      status: 'failed',
      lastError: 'Mailjet refused the message: "To[0].Email" is not valid',
      customId: 'welcome-7',
    });

    browser = await launchChromium();
    const { page } = browser;
    const origin = new URL(service.url).origin;
    const { elsewhere, failed, complaints } = watchPage(page, origin);

    // Log in: the dashboard sends the visitor to the form first.
    await page.goto(`${service.url}/dashboard`);
    expect(new URL(page.url()).pathname).to.equal('/dashboard/login');
    await screenshot(page, 'login');
    await page.getByLabel('Admin key (ADMIN_API_KEY)').fill(ADMIN_KEY);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${service.url}/dashboard`);
    const cookies = await browser.context.cookies();
    expect(cookies.map((c) => [c.name, c.httpOnly, c.sameSite, c.path])).to.deep.equal([['jetpost_dashboard', true, 'Strict', '/dashboard']]);

    // Overview: the queue depth and the chart, drawn by the page's script.
    await page.locator('#throughput-chart[data-drawn="true"] canvas').waitFor();
    expect(await page.locator('#queue-depth tr[data-status="failed"] td.number').innerText()).to.equal('1');
    // The sender's job, enqueued and accepted by the service that stopped (its counts written at its
    // stop); the failed job is written by the factory, which no process counts.
    expect(await page.locator('#throughput-summary').innerText()).to.match(/1 jobs enqueued, 1 accepted by Mailjet/);
    await screenshot(page, 'overview');

    // Find the message by its recipient (in another case) and open its timeline.
    await page.getByRole('link', { name: 'Jobs' }).click();
    await page.getByLabel('Find').fill(RECIPIENT.toUpperCase());
    await page.getByRole('button', { name: 'Search' }).click();
    await page.locator(`#jobs a[href="/dashboard/jobs/${jobId}"]`).waitFor();
    expect(await page.locator('#jobs tbody tr').count()).to.equal(1);
    await screenshot(page, 'jobs');
    await page.locator(`#jobs a[href="/dashboard/jobs/${jobId}"]`).click();
    await page.waitForURL(`${service.url}/dashboard/jobs/${jobId}`);
    expect(await page.locator('#subject').innerText()).to.equal('Your invoice <#42>');
    expect(await page.locator('#recipients').innerText())
      .to.include(RECIPIENT)
      .and.include('opened');
    const timeline = await page.locator('#timeline tbody tr').allInnerTexts();
    expect(timeline.map((row) => row.split('\t')[3])).to.include.members([
      'queued',
      'processing → accepted',
      'sent',
      'accepted → sent',
      'open',
      'sent → opened',
    ]);
    await screenshot(page, 'job');

    // Requeue the failed job: it goes back to queued (no consumer runs here).
    await page.getByRole('link', { name: 'Failed' }).click();
    const row = page.locator(`#failed tr[data-job="${failedId}"]`);
    expect(await row.innerText()).to.include('is not valid');
    await screenshot(page, 'failed');
    await row.getByRole('button', { name: 'Requeue' }).click();
    await page.getByRole('status').filter({ hasText: 'The job is queued again.' }).waitFor();
    expect(await page.locator(`#failed tr[data-job="${failedId}"]`).count()).to.equal(0);
    const { rows } = await service.jetpost.pool.query<{ status: string; attempts: number }>('select status, attempts from email_send_jobs where id = $1', [
      failedId,
    ]);
    expect(rows[0]).to.deep.equal({ status: 'queued', attempts: 0 });

    // Add a suppression, then remove it.
    await page.goto(`${service.url}/dashboard/suppressions?app=${encodeURIComponent(appName)}`);
    await page.getByLabel('address').fill('No.More@Example.org');
    await page.getByLabel('note').fill('asked by phone');
    await page.getByRole('button', { name: 'Suppress' }).click();
    await page.getByRole('status').filter({ hasText: 'The address is suppressed.' }).waitFor();
    const suppressed = page.locator('#suppressions tr[data-email="no.more@example.org"]');
    expect(await suppressed.innerText())
      .to.include('manual')
      .and.include('asked by phone');
    await screenshot(page, 'suppressions');
    await suppressed.getByRole('button', { name: 'Remove' }).click();
    await page.getByRole('status').filter({ hasText: 'no longer suppressed' }).waitFor();
    expect(await page.locator('#suppressions tr[data-email="no.more@example.org"]').count()).to.equal(0);

    // Apps, and the app's webhook deliveries: redeliver one.
    await page.getByRole('link', { name: 'Apps & webhooks' }).click();
    await page.locator(`#apps tr[data-app="${appName}"]`).waitFor();
    await screenshot(page, 'apps');
    await page.locator(`#apps tr[data-app="${appName}"]`).getByRole('link', { name: 'webhook deliveries' }).click();
    const deliveries = page.locator('#deliveries tbody tr');
    expect(await deliveries.count()).to.be.above(0);
    await screenshot(page, 'deliveries');
    await deliveries.first().getByRole('button', { name: 'Redeliver' }).click();
    await page.getByRole('status').filter({ hasText: 'The delivery is due again' }).waitFor();

    // Log out: the session is gone, the dashboard asks for the key again.
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/dashboard\/login$/);
    expect(await browser.context.cookies()).to.deep.equal([]);
    await page.goto(`${service.url}/dashboard/failed`);
    expect(new URL(page.url()).pathname).to.equal('/dashboard/login');

    expect(elsewhere, 'requests to another origin').to.deep.equal([]);
    expect(failed, 'failed requests').to.deep.equal([]);
    expect(complaints, 'errors in the page (CSP violations among them)').to.deep.equal([]);
  });
});
