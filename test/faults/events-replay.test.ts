// Scenario 4: Mailjet delivers every event twice and in shuffled order, all of a message's events
// at once (so a click may come before its sent, often before jetpost has recorded the send). The
// final status of every job and recipient, and the event history, must equal those of a second,
// identical run whose events arrive once and in order.
import { expect } from 'chai';

import { scenarioFor } from '../../src/simulator/callbacks.js';
import type { FaultSettings, SimulatorOptions } from '../../src/simulator/server.js';
import { messageTo } from '../factories.js';
import { recordFigures, reportFiguresAfterRun } from '../support/faults/figures.js';
import { type FaultHarness, useFaultHarness } from '../support/faults/harness.js';
import { describeCounts, metric, queueMessages, statusCounts, waitForJobs } from '../support/faults/jobs.js';
import { byScale, FAULT_SCALE } from '../support/faults/scale.js';
import { sentTwice } from '../support/faults/simulator.js';
import { seconds, waitUntil } from '../support/faults/wait.js';

reportFiguresAfterRun();

const COPIES = byScale({ fast: 4, full: 40 });
/** Local parts by the simulator's scenario table; "reader" gets sent, open (and click with a link). */
const KINDS = ['reader', 'bounce', 'softbounce', 'spam', 'unsub', 'blocked'] as const;
const LINK = '<p>Hello <a href="https://example.com/welcome">welcome</a></p>';

/** Single-recipient jobs of every kind (readers with and without a link), and jobs with three recipients. */
function messages(): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let index = 0; index < COPIES; index += 1) {
    for (const kind of KINDS) {
      out.push(messageTo(`${kind}-${index}@example.com`, { html: LINK }));
    }
    out.push(messageTo(`reader-text-${index}@example.com`));
    out.push(
      messageTo([`multi-reader-${index}@example.com`], {
        cc: [`multi-${index % 2 === 0 ? 'spam' : 'softbounce'}-${index}@example.com`],
        bcc: [`multi-${index % 2 === 0 ? 'unsub' : 'bounce'}-${index}@example.com`],
        html: LINK,
      }),
    );
  }
  return out;
}

/** The documented outcome of each kind, for the in-order run. */
const EXPECTED_RECIPIENT_STATUS: Record<string, string> = {
  reader: 'clicked',
  'reader-text': 'opened',
  bounce: 'bounced',
  softbounce: 'sent',
  spam: 'spam',
  unsub: 'unsubscribed',
  blocked: 'blocked',
};

interface RunResult {
  /** address → "job <status> / recipient <status> / events <types, sorted>" */
  byAddress: Map<string, string>;
  recipientStatus: Map<string, string>;
  events: number;
  duplicatesDropped: number;
  arrivedBeforeSend: number;
  jobs: Record<string, number>;
}

async function run(harness: FaultHarness, name: string, options: SimulatorOptions, faults: FaultSettings): Promise<RunResult> {
  const db = await harness.database();
  const { key } = await harness.app(db.pool);
  const port = await harness.port();
  const simulator = await harness.simulator(port, options);
  simulator.faults.set(faults);
  // Small batches: many send calls, each racing the simulator's flush timer on its own.
  const child = await harness.jetpost({ name, port, databaseUrl: db.url, simulator, env: { BATCH_SIZE: '4' } });
  const queued = messages();
  await queueMessages(child.url, key, queued);
  await waitForJobs(db.pool, queued.length, ['accepted', 'sent', 'opened', 'clicked', 'bounced', 'blocked', 'spam', 'unsubscribed'], {
    timeoutMs: 60_000,
    watch: [child],
  });
  expect(sentTwice(simulator), `${name}: messages sent twice`).to.deep.equal([]);
  // Done when every event the simulator produced is stored once and matched to its recipient.
  const expected = simulator.messages.reduce(
    (sum, accepted) => sum + accepted.recipients.reduce((count, recipient) => count + scenarioFor(recipient.email, accepted.clickUrl !== undefined).length, 0),
    0,
  );
  const eventCounts = async () => {
    const { rows } = await db.pool.query<{ stored: number; unmatched: number }>(
      'select count(*)::int as stored, count(*) filter (where recipient_id is null)::int as unmatched from email_events',
    );
    return rows[0]!;
  };
  await waitUntil(
    `${name}: all ${expected} events stored and matched`,
    async () => {
      const counts = await eventCounts();
      return simulator.pendingEvents() === 0 && counts.stored === expected && counts.unmatched === 0;
    },
    {
      timeoutMs: 60_000,
      intervalMs: 100,
      watch: [child],
      progress: async () => `${JSON.stringify(await eventCounts())}, ${simulator.pendingEvents()} pending in the simulator`,
    },
  );
  const { rows } = await db.pool.query<{ email: string; recipient_status: string; job_status: string; events: string | null }>(
    `select r.email, r.status as recipient_status, j.status as job_status,
       (select string_agg(e.event_type, ',' order by e.event_type) from email_events e where e.recipient_id = r.id) as events
     from email_recipients r join email_send_jobs j on j.id = r.job_id`,
  );
  const result: RunResult = {
    byAddress: new Map(rows.map((row) => [row.email, `job ${row.job_status} / recipient ${row.recipient_status} / events ${row.events ?? ''}`])),
    recipientStatus: new Map(rows.map((row) => [row.email, row.recipient_status])),
    events: expected,
    duplicatesDropped: await metric(child, 'jetpost_events_total{fate="duplicate"}'),
    arrivedBeforeSend: await metric(child, 'jetpost_events_total{fate="unmatched"}'),
    jobs: await statusCounts(db.pool),
  };
  await child.kill();
  return result;
}

describe(`faults: Mailjet events twice and shuffled (${FAULT_SCALE})`, function () {
  this.timeout(byScale({ fast: 90_000, full: 600_000 }));
  const harness = useFaultHarness();

  it('when every event arrives twice and out of order, then job and recipient statuses equal those of an in-order, once-only run', async () => {
    const started = Date.now();
    // All of a message's events fall due together, so each flush shuffles sent, open and click (or spam, unsub) of
    // one recipient; and the Send API answers about a flush interval late, so many events arrive before jetpost
    // knows their MessageIDs (kept aside, applied when the send is recorded) and the others after.
    const replayed = await run(
      harness,
      'jetpost-replayed',
      { eventDelaysMs: { sent: 0, open: 0, click: 0 } },
      { duplicateEventRatio: 1, reorderEvents: true, latencyMs: 150 },
    );
    const inOrder = await run(harness, 'jetpost-in-order', {}, {});

    const differences = [...inOrder.byAddress].filter(([address, state]) => replayed.byAddress.get(address) !== state);
    recordFigures(
      `4 events twice + shuffled vs once in order, ${inOrder.byAddress.size} recipients`,
      `events ${replayed.events}: duplicates dropped ${replayed.duplicatesDropped}, before their send was recorded ${replayed.arrivedBeforeSend}`,
      `jobs ${describeCounts(replayed.jobs)}`,
      `addresses differing ${differences.length}`,
      seconds(started),
    );
    expect(replayed.byAddress.size).to.equal(inOrder.byAddress.size);
    expect(differences.map(([address, state]) => `${address}: in order "${state}", replayed "${replayed.byAddress.get(address) ?? 'missing'}"`)).to.deep.equal(
      [],
    );
    expect(replayed.duplicatesDropped, 'duplicates were delivered and dropped').to.be.at.least(replayed.events);
    // And the in-order run itself follows the documented outcomes.
    for (const [address, status] of inOrder.recipientStatus) {
      const kind = address.replace(/^multi-/, '').replace(/-\d+@example\.com$/, '');
      expect(status, address).to.equal(EXPECTED_RECIPIENT_STATUS[kind]);
    }
  });
});
