// Scenarios 4b and 4c: Mailjet's grouped callbacks at volume. One POST carries 100,000 events (4b),
// and three POSTs of 9,000 events each about the same messages arrive at once (4c). Every event must
// be stored and applied, answered 200, with no lock-table exhaustion ("out of shared memory") and
// no lost update. The messages are written straight into the database as accepted by Mailjet, so
// the scenario measures the callback alone; a tenth of the events name messages jetpost does not
// know (other software on the same Mailjet account), which are kept aside.
import { readFileSync } from 'node:fs';

import { expect } from 'chai';

import type { Pool } from '../../src/db/pool.js';
import { seedAcceptedMessages } from '../support/accepted-messages.js';
import { recordFigures, reportFiguresAfterRun } from '../support/faults/figures.js';
import { type FaultHarness, useFaultHarness } from '../support/faults/harness.js';
import { type JetpostProcess } from '../support/faults/jetpost-process.js';
import { metric } from '../support/faults/jobs.js';
import { byScale, FAULT_SCALE } from '../support/faults/scale.js';
import { EVENTS_PASSWORD, EVENTS_USER } from '../support/faults/simulator.js';
import { seconds } from '../support/faults/wait.js';

reportFiguresAfterRun();

// Before the fix, one advisory lock per MessageID in one transaction exhausted PostgreSQL's lock
// table (the test cluster's holds between 10,000 and 20,000 locks): 40,000 events name 22,000
// messages, and three concurrent callbacks of 9,000 events hold 7,200 locks each at once.
const SIZE = byScale({
  fast: { events: 40_000, eventsPerPost: 9_000 },
  full: { events: 100_000, eventsPerPost: 9_000 },
});
/**
 * Scenario 4e: large callbacks at once, beyond EVENTS_BODY_BUDGET. At full scale, four of 100,000
 * events (30 MB each) with the default budget (64 MB: two at a time); at fast scale, four of 10,000
 * (3 MB) with a 4 MB limit and so budget (one at a time), so that the others wait or are refused.
 */
const LARGE = byScale({
  fast: { posts: 4, events: 10_000, env: { EVENTS_BODY_LIMIT: '4mb' } as Record<string, string> },
  full: { posts: 4, events: 100_000, env: {} as Record<string, string> },
});
const CONCURRENT_POSTS = ['sent', 'open', 'click'] as const;
/** Above 2^53, as Mailjet's are; message i of the scenario has MessageID FIRST_MESSAGE_ID + i. */
const FIRST_MESSAGE_ID = 576460765503091475n;
/** Unknown to jetpost: far from the scenario's own ids. */
const FOREIGN_MESSAGE_ID = 1152921504606846976n;

interface Receipt {
  received: number;
  stored: number;
  duplicates: number;
  unmatched: number;
  rejected: number;
}

/** One event as Mailjet writes it (raw 64-bit MessageID), with the fields Mailjet sends along. */
function eventText(type: 'sent' | 'open' | 'click', message: bigint, email: string, time: number): string {
  const common = `"event":"${type}","time":${time},"MessageID":${message},"Message_GUID":"","email":"${email}","mj_campaign_id":7257,"mj_contact_id":${Number(message % 100_000n)},"customcampaign":"","CustomID":"","Payload":""`;
  switch (type) {
    case 'sent':
      return `{${common},"mj_message_id":"${message}","smtp_reply":"sent (250 2.0.0 OK 1433333948 fa5si855896wjc.199 - gsmtp)"}`;
    case 'open':
      return `{${common},"ip":"192.0.2.1","geo":"FR","agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"}`;
    case 'click':
      return `{${common},"url":"https://example.com/welcome","ip":"192.0.2.1","geo":"FR","agent":"Mozilla/5.0 (X11; Linux x86_64)"}`;
  }
}

/** Events about messages first … first + count - 1 of the scenario, of one type, and `foreign` about unknown ones. */
function events(type: 'sent' | 'open' | 'click', count: number, foreign: number, time: number, first = 0): string[] {
  const out: string[] = [];
  for (let n = first; n < first + count; n += 1) {
    out.push(eventText(type, FIRST_MESSAGE_ID + BigInt(n), `reader-${n}@example.com`, time));
  }
  for (let n = 0; n < foreign; n += 1) {
    out.push(eventText(type, FOREIGN_MESSAGE_ID + BigInt(n), `someone-${n}@example.org`, time));
  }
  return out;
}

async function postEvents(child: JetpostProcess, body: string): Promise<{ status: number; receipt: Receipt | string; ms: number }> {
  const started = performance.now();
  const res = await fetch(`${child.url}/events`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${EVENTS_USER}:${EVENTS_PASSWORD}`).toString('base64')}`, 'content-type': 'application/json' },
    body,
  });
  const text = await res.text();
  return { status: res.status, receipt: res.status === 200 ? (JSON.parse(text) as Receipt) : text.slice(0, 500), ms: performance.now() - started };
}

/** The most memory the process has held so far (VmHWM, Linux), in MB; undefined elsewhere. */
function peakRssMb(pid: number): number | undefined {
  try {
    const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

async function recipientStatuses(pool: Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ status: string; n: number }>('select status, count(*)::int as n from email_recipients group by status');
  return Object.fromEntries(rows.map((row) => [row.status, row.n]));
}

/** Posts `body` until it is answered 200, as Mailjet retries a 503 (quickly here: every 200 ms). */
async function postUntilStored(child: JetpostProcess, body: string): Promise<{ receipt: Receipt; refusals: number; ms: number }> {
  const started = performance.now();
  for (let refusals = 0; ; refusals += 1) {
    const result = await postEvents(child, body);
    if (result.status === 200) {
      return { receipt: result.receipt as Receipt, refusals, ms: performance.now() - started };
    }
    expect(result.status, JSON.stringify(result.receipt)).to.equal(503);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function start(harness: FaultHarness, name: string, messages: number, env: Record<string, string> = {}): Promise<{ pool: Pool; child: JetpostProcess }> {
  const db = await harness.database();
  const { appId } = await harness.app(db.pool);
  await seedAcceptedMessages(db.pool, appId, messages, FIRST_MESSAGE_ID);
  const port = await harness.port();
  const simulator = await harness.simulator(port);
  // No consumers: nothing to send, and the callback is all that runs. No callback rate limit either;
  // the default body limit (64 MB) takes the 30 MB of 100,000 events.
  const child = await harness.jetpost({
    name,
    port,
    databaseUrl: db.url,
    simulator,
    env: { WORKER_CONCURRENCY: '0', EVENTS_RATE_LIMIT: '0', ...env },
  });
  return { pool: db.pool, child };
}

describe(`faults: Mailjet callbacks at volume (${FAULT_SCALE})`, function () {
  this.timeout(byScale({ fast: 180_000, full: 900_000 }));
  const harness = useFaultHarness();

  it(`when one grouped POST carries ${SIZE.events} events, then 200 once every one is stored and applied, and its retry finds them all`, async () => {
    const started = Date.now();
    // 45% of the events are "sent" and 45% "open" of as many messages; 10% name unknown messages.
    const messages = Math.round(SIZE.events * 0.45);
    const foreign = SIZE.events - 2 * messages;
    const { pool, child } = await start(harness, 'jetpost-events-volume', messages);
    const all = [...events('open', messages, foreign, 1_700_000_100), ...events('sent', messages, 0, 1_700_000_000)];
    const body = `[${all.join(',')}]`;

    const first = await postEvents(child, body);
    const retry = await postEvents(child, body);

    const rate = (ms: number) => `${Math.round(SIZE.events / (ms / 1000))} events/s`;
    const rssMb = (await metric(child, 'process_resident_memory_bytes')) / 1024 / 1024;
    const peakMb = peakRssMb(child.pid);
    recordFigures(
      `4b one POST of ${SIZE.events} events (${(body.length / 1024 / 1024).toFixed(1)} MB)`,
      `status ${first.status}, ${(first.ms / 1000).toFixed(1)} s, ${rate(first.ms)}`,
      `retry ${retry.status}, ${(retry.ms / 1000).toFixed(1)} s, ${rate(retry.ms)}`,
      `RSS ${rssMb.toFixed(0)} MB${peakMb === undefined ? '' : `, peak ${peakMb.toFixed(0)} MB`}`,
      seconds(started),
    );
    expect(first.status, JSON.stringify(first.receipt)).to.equal(200);
    expect(first.receipt).to.deep.equal({ received: SIZE.events, stored: SIZE.events, duplicates: 0, unmatched: foreign, rejected: 0 });
    expect(retry.status, JSON.stringify(retry.receipt)).to.equal(200);
    expect(retry.receipt).to.deep.equal({ received: SIZE.events, stored: 0, duplicates: SIZE.events, unmatched: 0, rejected: 0 });
    const { rows } = await pool.query<{ stored: number; unmatched: number }>(
      'select count(*)::int as stored, count(*) filter (where recipient_id is null)::int as unmatched from email_events',
    );
    expect(rows[0]).to.deep.equal({ stored: SIZE.events, unmatched: foreign });
    expect(await recipientStatuses(pool)).to.deep.equal({ opened: messages });
    // Each message was heard as sent, then opened: both steps, in order, though "open" came first in the body.
    const changes = await pool.query<{ steps: string; n: number }>(
      `select steps, count(*)::int as n
       from (select string_agg(new_status, ',' order by id) as steps from status_changes group by recipient_id) per_recipient
       group by steps`,
    );
    expect(changes.rows).to.deep.equal([{ steps: 'sent,opened', n: messages }]);
  });

  it(`when ${CONCURRENT_POSTS.length} POSTs of ${SIZE.eventsPerPost} events arrive at once, partly about the same messages, then all are 200 and no update is lost`, async () => {
    const started = Date.now();
    // Each callback: 80% about messages of its own, 10% about messages all three share (with higher
    // MessageIDs, so each callback gets to its own ones first), 10% about unknown messages.
    const foreign = Math.round(SIZE.eventsPerPost / 10);
    const shared = Math.round(SIZE.eventsPerPost / 10);
    const own = SIZE.eventsPerPost - shared - foreign;
    const posts = CONCURRENT_POSTS.length;
    const { pool, child } = await start(harness, 'jetpost-events-concurrent', posts * own + shared);
    const bodies = CONCURRENT_POSTS.map((type, i) => {
      const time = 1_700_000_000 + i * 100;
      const mine = events(type, own, 0, time, i * own);
      const common = events(type, shared, foreign, time, posts * own);
      return `[${[...mine, ...common].join(',')}]`;
    });

    const results = await Promise.all(bodies.map((body) => postEvents(child, body)));

    const slowest = Math.max(...results.map((result) => result.ms));
    recordFigures(
      `4c ${posts} concurrent POSTs of ${SIZE.eventsPerPost} events`,
      `statuses ${results.map((result) => result.status).join(' ')}`,
      `slowest ${(slowest / 1000).toFixed(1)} s, ${Math.round((posts * SIZE.eventsPerPost) / (slowest / 1000))} events/s together`,
      seconds(started),
    );
    for (const result of results) {
      expect(result.status, JSON.stringify(result.receipt)).to.equal(200);
      expect(result.receipt).to.deep.equal({ received: SIZE.eventsPerPost, stored: SIZE.eventsPerPost, duplicates: 0, unmatched: foreign, rejected: 0 });
    }
    // Each callback's own messages end where its event leads; the shared ones end clicked, whatever the order of commits.
    expect(await recipientStatuses(pool)).to.deep.equal({ sent: own, opened: own, clicked: own + shared });
    const { rows } = await pool.query<{ unmatched: number }>('select count(*)::int as unmatched from email_events where recipient_id is null');
    expect(rows[0]!.unmatched).to.equal(posts * foreign);
  });

  it(`when ${LARGE.posts} POSTs of ${LARGE.events} events arrive at once, beyond EVENTS_BODY_BUDGET, then each is stored once, answered 200 at once or after retries of a 503`, async () => {
    const started = Date.now();
    // Each callback: 45% "sent" and 45% "open" about messages of its own, 10% about unknown messages
    // (distinct across callbacks by their time).
    const messages = Math.round(LARGE.events * 0.45);
    const foreign = LARGE.events - 2 * messages;
    const { pool, child } = await start(harness, 'jetpost-events-budget', LARGE.posts * messages, LARGE.env);
    const bodies = Array.from({ length: LARGE.posts }, (_, i) => {
      const time = 1_700_000_000 + i * 1_000;
      return `[${[...events('open', messages, foreign, time + 100, i * messages), ...events('sent', messages, 0, time, i * messages)].join(',')}]`;
    });

    const results = await Promise.all(bodies.map((body) => postUntilStored(child, body)));

    const peakMb = peakRssMb(child.pid);
    const refusals = results.reduce((sum, result) => sum + result.refusals, 0);
    recordFigures(
      `4e ${LARGE.posts} concurrent POSTs of ${LARGE.events} events (${(bodies[0]!.length / 1024 / 1024).toFixed(1)} MB each)`,
      `503 answers ${refusals}`,
      `slowest ${(Math.max(...results.map((result) => result.ms)) / 1000).toFixed(1)} s`,
      peakMb === undefined ? 'peak RSS unknown' : `peak ${peakMb.toFixed(0)} MB`,
      seconds(started),
    );
    for (const result of results) {
      expect(result.receipt).to.deep.equal({ received: LARGE.events, stored: LARGE.events, duplicates: 0, unmatched: foreign, rejected: 0 });
    }
    const { rows } = await pool.query<{ stored: number; unmatched: number }>(
      'select count(*)::int as stored, count(*) filter (where recipient_id is null)::int as unmatched from email_events',
    );
    expect(rows[0]).to.deep.equal({ stored: LARGE.posts * LARGE.events, unmatched: LARGE.posts * foreign });
    expect(await recipientStatuses(pool)).to.deep.equal({ opened: LARGE.posts * messages });
  });

  it('when SIGTERM arrives while callbacks of 100 events share transactions, then jetpost exits 0, and every callback answered 200 is stored and applied', async () => {
    const started = Date.now();
    const callbacks = 400;
    const { pool, child } = await start(harness, 'jetpost-events-sigterm', callbacks * 100);
    const bodies = Array.from({ length: callbacks }, (_, i) => `[${events('sent', 100, 0, 1_700_000_000, i * 100).join(',')}]`);
    let next = 0;
    const answered: number[] = [];
    // 8 posters, as Mailjet's callbacks arrive; SIGTERM once the first few are answered.
    const posters = Array.from({ length: 8 }, async () => {
      while (next < bodies.length) {
        const index = next++;
        const result = await postEvents(child, bodies[index]!).catch(() => ({ status: 0 }));
        if (result.status === 200 && answered.push(index) === 20) {
          child.signal('SIGTERM');
        }
      }
    });

    await Promise.all(posters);
    const exit = await child.exited;

    recordFigures(`4d SIGTERM among ${callbacks} callbacks of 100`, `answered 200 ${answered.length}`, `exit ${JSON.stringify(exit)}`, seconds(started));
    expect(exit, `exit of jetpost after SIGTERM: ${child.output().slice(-5).join(' | ')}`).to.deep.equal({ code: 0, signal: null });
    expect(answered.length).to.be.at.least(20);
    const { rows } = await pool.query<{ n: number }>(
      `select count(*)::int as n from email_recipients
       where status = 'sent' and (mailjet_message_id - $1::bigint) / 100 = any($2::bigint[])`,
      [FIRST_MESSAGE_ID.toString(), answered],
    );
    expect(rows[0]!.n).to.equal(answered.length * 100);
  });
});
