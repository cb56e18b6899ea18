// The dispatcher's statements with a backlog: an app whose receiver is down has a hundred thousand
// deliveries pending, not yet due (backed off, its app throttled), beside a few apps with fresh ones
// and 5,000 apps with webhooks and nothing pending. The claim and the look-up of the next due time
// run on every turn of every replica's dispatcher: each must touch a bounded number of pages, not
// walk the backlog (a million pending took 3.5 s, past the statement timeout, on every idle turn),
// nor probe every app (5,000 apps took 20,000 pages and 31 ms a claim).
import { expect } from 'chai';

import { claimDueDeliveries, nextDeliveryAt } from '../../src/db/webhook-deliveries-repo.js';
import { makeApp, makeJob } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { planner, planShape } from '../support/plans.js';

const BACKLOG = 100_000;
const IDLE_APPS = 5_000;
/** A probe of a few apps' indexes reads tens of pages; the backlog's index alone is hundreds, a probe of every app's thousands. */
const PAGE_BUDGET = 200;

describe('the webhook dispatcher’s statements with a backlog of 100,000 pending deliveries and 5,000 idle apps', function () {
  // Seeding 100,000 deliveries on a loaded 2-core machine.
  this.timeout(300_000);

  let db: TestDatabase;
  let backlogged: string;

  before(async () => {
    db = await createTestDatabase();
    backlogged = (await makeApp(db.pool)).id;
    const jobId = await makeJob(db.pool, { appId: backlogged });
    await db.pool.query(
      `with changes as (
         insert into status_changes (app_id, job_id, old_status, new_status)
         select $1::bigint, $2::bigint, 'sent', 'opened' from generate_series(1, $3::int)
         returning id, app_id
       )
       insert into webhook_deliveries (change_id, app_id, url, attempts, next_attempt_at)
       select id, app_id, 'https://hooks.example.com/down', 3, now() + interval '1 hour' + id * interval '1 millisecond' from changes`,
      [backlogged, jobId, BACKLOG],
    );
    await db.pool.query(
      `update apps set webhook_url = 'https://hooks.example.com/down', webhook_secret = 'whsec_test', webhook_throttled_until = now() + interval '10 minutes' where id = $1`,
      [backlogged],
    );
    for (let i = 0; i < 3; i++) {
      const app = await makeApp(db.pool);
      const job = await makeJob(db.pool, { appId: app.id });
      await db.pool.query(`update apps set webhook_url = 'https://hooks.example.com/up', webhook_secret = 'whsec_test' where id = $1`, [app.id]);
      await db.pool.query(
        `with c as (insert into status_changes (app_id, job_id, old_status, new_status) values ($1::bigint, $2::bigint, 'processing', 'accepted') returning id, app_id)
         insert into webhook_deliveries (change_id, app_id, url, next_attempt_at) select id, app_id, 'https://hooks.example.com/up', now() + interval '5 minutes' from c`,
        [app.id, job],
      );
    }
    await db.pool.query(
      `insert into apps (name, webhook_url, webhook_secret)
       select 'idle-' || g, 'https://hooks.example.com/idle', 'whsec_test' from generate_series(1, $1::int) g`,
      [IDLE_APPS],
    );
    await db.pool.query('analyze apps, webhook_deliveries, status_changes');
  });

  after(async () => {
    await db?.drop();
  });

  const statements: Array<[string, (q: Parameters<typeof nextDeliveryAt>[0]) => Promise<unknown>]> = [
    ['the next due time', (q) => nextDeliveryAt(q, { perApp: 4, inFlight: new Map() })],
    ['the claim', (q) => claimDueDeliveries(q, { limit: 20, perApp: 4, inFlight: new Map(), lockMs: 25_000 })],
  ];

  for (const [name, run] of statements) {
    it(`${name}: at most ${PAGE_BUDGET} pages, however long the backlog and however many apps are idle`, async () => {
      const { db: explaining, runs } = planner(db.pool);
      await run(explaining);
      expect(runs.length, 'statements run').to.be.above(0);
      for (const { nodes, pages } of runs) {
        expect(pages, `pages touched by ${planShape(nodes)}`).to.be.at.most(PAGE_BUDGET);
      }
    });
  }

  it('when the backlog is throttled and the others are due later, then the next due time is the earliest of the others', async () => {
    const at = await nextDeliveryAt(db.pool, { perApp: 4, inFlight: new Map() });
    const { rows } = await db.pool.query<{ at: Date }>(`select min(next_attempt_at) as at from webhook_deliveries where app_id <> $1`, [backlogged]);

    expect(at?.getTime()).to.equal(rows[0]!.at.getTime());
  });
});

// Every app has deliveries due: the claim must not lock a room's worth of every app's deliveries to
// keep `limit` of them (5,000 apps with 20 due each: 20,000 rows locked, 96,000 pages a claim).
describe('the webhook claim when each of 5,000 apps has deliveries due', function () {
  this.timeout(300_000);

  const APPS = 5_000;
  const DUE_EACH = 5;
  const LIMIT = 20;
  const PER_APP = 4;
  /** A step of the skip through the pending index per app (about 4 pages each), and the claim of 20. */
  const CLAIM_PAGE_BUDGET = 30_000;

  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase();
    await db.pool.query(
      `insert into apps (name, webhook_url, webhook_secret)
       select 'busy-' || g, 'https://hooks.example.com/busy', 'whsec_test' from generate_series(1, $1::int) g`,
      [APPS],
    );
    await db.pool.query(
      `with jobs as (
         insert into email_send_jobs (app_id, status, message, max_attempts, recipient_count, accepted_at)
         select id, 'accepted', '{"from":{"email":"app@example.com"},"subject":"busy","text":"hi"}'::jsonb, 8, 1, now()
         from apps
         returning id, app_id
       ),
       changes as (
         insert into status_changes (app_id, job_id, old_status, new_status)
         select app_id, id, 'processing', 'accepted' from jobs, generate_series(1, $1::int)
         returning id, app_id
       )
       insert into webhook_deliveries (change_id, app_id, url, next_attempt_at)
       select id, app_id, 'https://hooks.example.com/busy', now() - id * interval '1 millisecond' from changes`,
      [DUE_EACH],
    );
    await db.pool.query('analyze apps, webhook_deliveries, status_changes');
  });

  after(async () => {
    await db?.drop();
  });

  it(`the claim locks at most its ${LIMIT} apps' room of deliveries, and touches at most ${CLAIM_PAGE_BUDGET} pages`, async () => {
    const { db: explaining, runs } = planner(db.pool);
    await claimDueDeliveries(explaining, { limit: LIMIT, perApp: PER_APP, inFlight: new Map(), lockMs: 25_000 });

    expect(runs).to.have.length(1);
    const { nodes, pages } = runs[0]!;
    const locked = nodes
      .filter((node) => node['Node Type'] === 'LockRows')
      .reduce((sum, node) => sum + (node['Actual Rows'] ?? 0) * (node['Actual Loops'] ?? 1), 0);
    expect(locked, `rows locked by ${planShape(nodes)}`).to.be.at.most(LIMIT * PER_APP);
    expect(pages, `pages touched by ${planShape(nodes)}`).to.be.at.most(CLAIM_PAGE_BUDGET);
  });

  it('the claim takes the longest due delivery of each of the 20 apps whose deliveries are the longest due', async () => {
    // Unclaimed ones: the claim explained above has run.
    const { rows: firsts } = await db.pool.query<{ id: string; app_id: string }>(
      `select id::text, app_id::text
       from (
         select distinct on (app_id) id, app_id, next_attempt_at
         from webhook_deliveries
         where locked_until is null
         order by app_id, next_attempt_at, id
       ) f
       order by next_attempt_at, id
       limit $1`,
      [LIMIT],
    );

    const claimed = await claimDueDeliveries(db.pool, { limit: LIMIT, perApp: PER_APP, inFlight: new Map(), lockMs: 25_000 });

    expect(claimed.map((delivery) => delivery.id).sort()).to.deep.equal(firsts.map((row) => row.id).sort());
    expect(claimed.map((delivery) => delivery.appId).sort()).to.deep.equal(firsts.map((row) => row.app_id).sort());
  });
});
