// Scenario 7: a dripping webhook receiver. App A's receiver drips its answer's head (status line
// and headers) one byte a second, for ever (a 2xx head with a dripping body is delivered: the head
// is the answer); app B's answers at once. A has more deliveries due than A may have in
// flight. B's deliveries must all be delivered meanwhile, without waiting for A's deadline; A's
// are cut at WEBHOOK_TIMEOUT_MS and retried later; SIGTERM during the drip ends jetpost within
// SHUTDOWN_TIMEOUT_MS and a few seconds, leaving the cut deliveries due (not delivered); a
// restart delivers every one once A's receiver answers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { expect } from 'chai';

import type { Pool } from '../../src/db/pool.js';
import { parseTargetPolicy } from '../../src/domain/target-policy.js';
import { setAppWebhook } from '../../src/services/webhooks.js';
import { messageTo } from '../factories.js';
import { recordFigures, reportFiguresAfterRun } from '../support/faults/figures.js';
import { useFaultHarness } from '../support/faults/harness.js';
import { queueMessages } from '../support/faults/jobs.js';
import { byScale, FAULT_SCALE } from '../support/faults/scale.js';
import { seconds, waitForExit, waitUntil } from '../support/faults/wait.js';

reportFiguresAfterRun();

const SIZE = byScale({
  fast: { slow: 12, other: 20, slots: 8, timeoutMs: 6_000, shutdownMs: 3_000 },
  full: { slow: 40, other: 200, slots: 16, timeoutMs: 10_000, shutdownMs: 5_000 },
});
/** A has more deliveries due than there are slots (WEBHOOK_BATCH_SIZE), and may hold this many of them. */
const PER_APP = 4;
/** What "a few seconds" past SHUTDOWN_TIMEOUT_MS may take: closing the pool and the process's own exit. */
const EXIT_MARGIN_MS = 5_000;

interface Receiver {
  server: Server;
  url: string;
  mode: 'drip' | 'prompt';
  /** Every request: event id, attempt, when it arrived and when jetpost closed it. */
  calls: Array<{ deliveryId: string; attempt: number; at: number; closedAt?: number }>;
  open: number;
  mostOpen: number;
}

async function receiver(mode: Receiver['mode']): Promise<Receiver> {
  const hook: Receiver = { server: createServer(), url: '', mode, calls: [], open: 0, mostOpen: 0 };
  hook.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      const call: Receiver['calls'][number] = {
        deliveryId: String(req.headers['webhook-id']),
        attempt: Number(req.headers['jetpost-delivery-attempt']),
        at: Date.now(),
      };
      hook.calls.push(call);
      if (hook.mode === 'prompt') {
        res.writeHead(204).end();
        return;
      }
      hook.open += 1;
      hook.mostOpen = Math.max(hook.mostOpen, hook.open);
      // Below the HTTP layer, so that the head itself drips (an endless header).
      res.socket!.write('HTTP/1.1 200 OK\r\nx-padding: ');
      const timer = setInterval(() => res.socket?.write('.'), 1_000);
      res.on('close', () => {
        call.closedAt = Date.now();
        clearInterval(timer);
        hook.open -= 1;
      });
    });
  });
  await new Promise<void>((resolve) => hook.server.listen(0, '127.0.0.1', resolve));
  hook.url = `http://127.0.0.1:${(hook.server.address() as AddressInfo).port}/hooks`;
  return hook;
}

interface DeliveryRow {
  status: string;
  attempts: number;
  last_error: string | null;
  locked: boolean;
  latency_ms: number | null;
}

async function deliveries(pool: Pool, appId: string): Promise<DeliveryRow[]> {
  const { rows } = await pool.query<DeliveryRow>(
    `select status, attempts, last_error, coalesce(locked_until > now(), false) as locked,
       (extract(epoch from delivered_at - created_at) * 1000)::int as latency_ms
     from webhook_deliveries where app_id = $1 order by id`,
    [appId],
  );
  return rows;
}

function describeDeliveries(rows: readonly DeliveryRow[]): string {
  const counts = new Map<string, number>();
  for (const row of rows) {
    counts.set(row.status, (counts.get(row.status) ?? 0) + 1);
  }
  return [...counts].map(([status, count]) => `${status} ${count}`).join(', ') || 'none';
}

function percentile(values: readonly number[], share: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))] ?? 0;
}

describe(`faults: a dripping webhook receiver (${FAULT_SCALE})`, function () {
  this.timeout(byScale({ fast: 120_000, full: 600_000 }));
  const harness = useFaultHarness();
  const receivers: Receiver[] = [];

  afterEach(async () => {
    for (const hook of receivers.splice(0)) {
      hook.server.closeAllConnections();
      await new Promise((resolve) => hook.server.close(resolve));
    }
  });

  it(`when app A's receiver drips 1 byte/s with ${SIZE.slow} deliveries due, then app B's ${SIZE.other} are delivered meanwhile, A's are cut at WEBHOOK_TIMEOUT_MS and retried, and SIGTERM ends jetpost in time without losing them`, async () => {
    const started = Date.now();
    const db = await harness.database();
    const slowApp = await harness.app(db.pool);
    const otherApp = await harness.app(db.pool);
    const slow = await receiver('drip');
    const prompt = await receiver('prompt');
    receivers.push(slow, prompt);
    const policy = parseTargetPolicy('127.0.0.1');
    const { rows: names } = await db.pool.query<{ id: string; name: string }>('select id::text, name from apps where id = any($1::bigint[])', [
      [slowApp.appId, otherApp.appId],
    ]);
    const nameOf = (appId: string) => names.find((row) => row.id === appId)!.name;
    await setAppWebhook(db.pool, policy, nameOf(slowApp.appId), { url: slow.url, rotateSecret: false });
    await setAppWebhook(db.pool, policy, nameOf(otherApp.appId), { url: prompt.url, rotateSecret: false });

    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const env = {
      WEBHOOK_ALLOWED_TARGETS: '127.0.0.1',
      WEBHOOK_TIMEOUT_MS: String(SIZE.timeoutMs),
      WEBHOOK_BATCH_SIZE: String(SIZE.slots),
      WEBHOOK_CONCURRENCY_PER_APP: String(PER_APP),
      WEBHOOK_RETRY_BASE_MS: '1000',
      WEBHOOK_RETRY_MAX_MS: '2000',
      SHUTDOWN_TIMEOUT_MS: String(SIZE.shutdownMs),
    };
    const first = await harness.jetpost({ name: 'jetpost-1', port, databaseUrl: db.url, simulator, env });

    // "noevents" addresses: one change (accepted) per job, so one delivery per job.
    await queueMessages(
      first.url,
      slowApp.key,
      Array.from({ length: SIZE.slow }, (_, index) => messageTo(`noevents-slow-${index}@example.com`)),
    );
    await waitUntil('app A’s receiver to hold deliveries', () => slow.open > 0, { timeoutMs: 30_000, watch: [first] });

    await queueMessages(
      first.url,
      otherApp.key,
      Array.from({ length: SIZE.other }, (_, index) => messageTo(`noevents-other-${index}@example.com`)),
    );
    const other = await waitUntil(
      `app B’s ${SIZE.other} deliveries`,
      async () => {
        const rows = await deliveries(db.pool, otherApp.appId);
        return rows.length === SIZE.other && rows.every((row) => row.status === 'delivered') ? rows : undefined;
      },
      { timeoutMs: 60_000, watch: [first], progress: async () => describeDeliveries(await deliveries(db.pool, otherApp.appId)) },
    );
    const slowWhenOtherDone = await deliveries(db.pool, slowApp.appId);
    const latencies = other.map((row) => row.latency_ms ?? 0);

    // A's first deliveries are cut at the deadline and scheduled again (attempted after the restart below).
    // The receiver's own view of the cut (its socket closed) is waited for too: this process may read
    // jetpost's record of the cut before it handles the socket's close.
    const cut = await waitUntil(
      'one of app A’s deliveries cut at the deadline, and its connection seen closed by the receiver',
      async () => {
        const rows = await deliveries(db.pool, slowApp.appId);
        const recorded = rows.some((row) => row.status === 'pending' && row.last_error === `no complete answer within ${SIZE.timeoutMs} ms`);
        return recorded && slow.calls.some((call) => call.closedAt !== undefined) ? rows : undefined;
      },
      { timeoutMs: SIZE.timeoutMs + 30_000, watch: [first] },
    );
    const cutCall = slow.calls.find((call) => call.closedAt !== undefined)!;
    const cutSeen = Date.now();

    // SIGTERM while A's receiver holds connections. A connection the receiver still counts open may be
    // one jetpost has just cut at its deadline (the receiver sees the close later): on a loaded host
    // the signal then found nothing in flight. A call that came after the cut was seen has most of its
    // WEBHOOK_TIMEOUT_MS ahead.
    await waitUntil(
      'app A’s receiver to hold a delivery that began after the cut',
      () => slow.calls.some((call) => call.closedAt === undefined && call.at >= cutSeen),
      { timeoutMs: SIZE.timeoutMs + 30_000, watch: [first] },
    );
    const signalled = Date.now();
    first.signal('SIGTERM');
    const exit = await waitForExit(first, SIZE.shutdownMs + 30_000);
    const exitMs = Date.now() - signalled;
    const afterStop = await deliveries(db.pool, slowApp.appId);

    // A's receiver answers now: a restart delivers every one of A's deliveries.
    slow.mode = 'prompt';
    const second = await harness.jetpost({ name: 'jetpost-2', port, databaseUrl: db.url, simulator, env });
    const final = await waitUntil(
      `app A’s ${SIZE.slow} deliveries after the restart`,
      async () => {
        const rows = await deliveries(db.pool, slowApp.appId);
        return rows.length === SIZE.slow && rows.every((row) => row.status === 'delivered') ? rows : undefined;
      },
      { timeoutMs: 60_000, watch: [second], progress: async () => describeDeliveries(await deliveries(db.pool, slowApp.appId)) },
    );

    recordFigures(
      `7 dripping webhook receiver, A ${SIZE.slow} due, B ${SIZE.other}`,
      `B delivered ${other.length}/${SIZE.other} while A dripped: latency p50 ${percentile(latencies, 0.5)} ms, max ${Math.max(...latencies)} ms (A's deadline ${SIZE.timeoutMs} ms)`,
      `A in flight at most ${slow.mostOpen} (per app ${PER_APP})`,
      `A's first attempt cut after ${((cutCall.closedAt! - cutCall.at) / 1000).toFixed(1)} s, ${cut.filter((row) => row.last_error !== null).length} cut before SIGTERM`,
      `SIGTERM mid-drip: exit code ${exit.code} after ${exitMs} ms (SHUTDOWN_TIMEOUT_MS ${SIZE.shutdownMs})`,
      `A after restart delivered ${final.length}/${SIZE.slow}`,
      seconds(started),
    );
    expect(Math.max(...latencies), 'B’s slowest delivery, ms: under A’s deadline, so it never waited for a slot A held').to.be.below(SIZE.timeoutMs);
    expect(
      other.every((row) => row.attempts === 1),
      'B’s deliveries each in one attempt',
    ).to.equal(true);
    expect(
      slowWhenOtherDone.filter((row) => row.status === 'delivered'),
      'A’s deliveries marked delivered while dripping',
    ).to.deep.equal([]);
    expect(slow.mostOpen, 'A’s deliveries in flight at once').to.be.at.most(PER_APP);
    expect(exit, 'exit after SIGTERM').to.deep.equal({ code: 0, signal: null });
    expect(exitMs, 'ms from SIGTERM to exit').to.be.below(SIZE.shutdownMs + EXIT_MARGIN_MS);
    expect(
      afterStop.filter((row) => row.status !== 'pending'),
      'A’s deliveries not pending after the stop',
    ).to.deep.equal([]);
    expect(
      afterStop.filter((row) => row.locked),
      'A’s deliveries still claimed after the stop',
    ).to.deep.equal([]);
    expect(
      afterStop.some((row) => row.last_error?.startsWith('cut short: jetpost stopped')),
      'a delivery cut short by the stop',
    ).to.equal(true);
    expect(new Set(slow.calls.filter((call) => call.at > signalled).map((call) => call.deliveryId)).size, 'A’s changes delivered after the restart').to.equal(
      SIZE.slow,
    );
    // The ones cut before SIGTERM were attempted again: once cut, once (at least) after.
    expect(final.filter((row) => row.attempts >= 2).length, 'A’s deliveries attempted more than once').to.be.at.least(
      cut.filter((row) => row.last_error !== null).length,
    );
  });
});
