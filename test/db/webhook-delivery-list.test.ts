// GET /admin/apps/{app}/webhook/deliveries, `webhooks deliveries` and the dashboard's deliveries
// page with a status: a page looks through a window of LIST_WINDOW of the app's deliveries, and
// following next_before still reaches every delivery of the status, down to the oldest, and then ends.
import { expect } from 'chai';

import { listDeliveries } from '../../src/db/webhook-deliveries-repo.js';
import { LIST_WINDOW } from '../../src/domain/page.js';
import type { DeliveryStatus } from '../../src/domain/webhook-delivery.js';
import { makeApp, makeJob } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

describe('listing webhook deliveries of one status', function () {
  // 12,500 deliveries written on a loaded 2-core machine.
  this.timeout(300_000);

  const DELIVERIES = Math.round(2.5 * LIST_WINDOW);
  let db: TestDatabase;
  let appId: string;
  let otherAppId: string;
  let ids: { oldest: string; middle: string; newest: string };

  before(async () => {
    db = await createTestDatabase();
    appId = (await makeApp(db.pool)).id;
    otherAppId = (await makeApp(db.pool)).id;
    const jobId = await makeJob(db.pool, { appId });
    // Delivered, but for three failed ones: the newest, one in the middle and the oldest, two windows apart.
    const { rows } = await db.pool.query<{ id: string }>(
      `with changes as (
         insert into status_changes (app_id, job_id, old_status, new_status)
         select $1::bigint, $2::bigint, 'sent', 'opened' from generate_series(1, $3::int)
         returning id, app_id
       )
       insert into webhook_deliveries (change_id, app_id, url, status, attempts, delivered_at)
       select id, app_id, 'https://hooks.example.com/x', 'delivered', 1, now() from changes order by id
       returning id::text`,
      [appId, jobId, DELIVERIES],
    );
    const sorted = rows.map((row) => row.id).sort((a, b) => Number(a) - Number(b));
    ids = { oldest: sorted[0]!, middle: sorted[Math.floor(sorted.length / 2)]!, newest: sorted.at(-1)! };
    await db.pool.query(`update webhook_deliveries set status = 'failed', delivered_at = null where id = any($1::bigint[])`, [
      [ids.oldest, ids.middle, ids.newest],
    ]);
    // Another app's failed delivery, newer than all of them: never on this app's pages.
    const otherJob = await makeJob(db.pool, { appId: otherAppId });
    await db.pool.query(
      `with c as (insert into status_changes (app_id, job_id, old_status, new_status) values ($1::bigint, $2::bigint, 'sent', 'opened') returning id, app_id)
       insert into webhook_deliveries (change_id, app_id, url, status) select id, app_id, 'https://hooks.example.com/y', 'failed' from c`,
      [otherAppId, otherJob],
    );
    await db.pool.query('analyze webhook_deliveries, status_changes');
  });

  after(async () => {
    await db?.drop();
  });

  /** Every page from the newest, following nextBefore, as the API's clients, the CLI and the dashboard do. */
  async function allPages(status: DeliveryStatus | undefined, limit: number) {
    const pages: Array<{ deliveries: string[]; nextBefore: string | null }> = [];
    let before: string | undefined;
    do {
      const page = await listDeliveries(db.pool, appId, { status, before, limit });
      pages.push({ deliveries: page.deliveries.map((delivery) => delivery.id), nextBefore: page.nextBefore });
      before = page.nextBefore ?? undefined;
    } while (before !== undefined && pages.length < 100);
    return pages;
  }

  it('when a status is rare, then each page looks through one window, and the pages reach its oldest delivery, then end', async () => {
    const pages = await allPages('failed', 50);

    expect(pages.flatMap((page) => page.deliveries)).to.deep.equal([ids.newest, ids.middle, ids.oldest]);
    // Each page looked through one window at most: 12,500 deliveries take three.
    expect(pages).to.have.length(3);
    expect(pages.at(-1)!.nextBefore).to.equal(null);
  });

  it('when no delivery has the status, then the pages end after the oldest with none', async () => {
    const pages = await allPages('pending', 1000);

    expect(pages.flatMap((page) => page.deliveries)).to.deep.equal([]);
    expect(pages.at(-1)!.nextBefore).to.equal(null);
  });

  it('when no status is given, then full pages follow one another down to the oldest delivery, each after the last one of the page before', async () => {
    const pages = await allPages(undefined, 1000);
    const listed = pages.flatMap((page) => page.deliveries);

    expect(listed).to.have.length(DELIVERIES);
    expect(listed[0]).to.equal(ids.newest);
    expect(listed.at(-1)).to.equal(ids.oldest);
    expect(pages[0]!.nextBefore).to.equal(pages[0]!.deliveries.at(-1));
    expect(pages.at(-1)!.nextBefore).to.equal(null);
  });
});
