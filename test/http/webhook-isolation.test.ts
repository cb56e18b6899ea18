// A slow webhook receiver against the dispatcher: its deliveries are cut at WEBHOOK_TIMEOUT_MS and
// retried (a 2xx head whose body drips is delivered, once), it holds at most
// WEBHOOK_CONCURRENCY_PER_APP slots however long its backlog, other apps' deliveries go on
// meanwhile, silent receivers of more apps than there are slots do not hold up a healthy app's
// deliveries, and a stop ends in time and leaves the cut deliveries due again.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';

import { expect } from 'chai';

import { makeApp } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { isolateNetwork, mockMailjetSend, restoreNetwork } from '../support/mailjet-nock.js';
import { ADMIN_KEY, eventually, startTestService, type TestService } from '../support/service.js';

interface Receiver {
  server: Server;
  url: string;
  /**
   * 'drip': its head (status line and headers) a byte every 100 ms, for as long as the connection
   * stays open; 'drip-body': 200 headers at once, then its body a byte every 100 ms.
   */
  mode: 'drip' | 'drip-body' | 'prompt';
  /** Event id and attempt of every request, in arrival order. */
  calls: Array<{ deliveryId: string; attempt: number }>;
  /** Requests whose connection is still open. */
  open: number;
  /** The most that were open at once. */
  mostOpen: number;
}

async function receiver(mode: Receiver['mode']): Promise<Receiver> {
  const hook: Receiver = { server: createServer(), url: '', mode, calls: [], open: 0, mostOpen: 0 };
  hook.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      hook.calls.push({ deliveryId: String(req.headers['webhook-id']), attempt: Number(req.headers['jetpost-delivery-attempt']) });
      if (hook.mode === 'prompt') {
        res.writeHead(204).end();
        return;
      }
      hook.open += 1;
      hook.mostOpen = Math.max(hook.mostOpen, hook.open);
      let timer: NodeJS.Timeout;
      if (hook.mode === 'drip-body') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.flushHeaders();
        timer = setInterval(() => res.write('.'), 100);
      } else {
        // Below the HTTP layer, so that the head itself comes slowly (an endless header).
        res.socket!.write('HTTP/1.1 200 OK\r\nx-padding: ');
        timer = setInterval(() => res.socket?.write('.'), 100);
      }
      res.on('close', () => {
        clearInterval(timer);
        hook.open -= 1;
      });
    });
  });
  await new Promise<void>((resolve) => hook.server.listen(0, '127.0.0.1', resolve));
  hook.url = `http://127.0.0.1:${(hook.server.address() as AddressInfo).port}/hooks`;
  return hook;
}

/** A receiver that accepts connections and never answers, nor closes them. */
interface SilentReceiver {
  server: TcpServer;
  url: string;
  sockets: Set<Socket>;
  accepted: number;
  /** Connections closed (by jetpost: none is closed here while the test runs). */
  closed: number;
}

async function silentReceiver(): Promise<SilentReceiver> {
  const silent: SilentReceiver = { server: createTcpServer(), url: '', sockets: new Set(), accepted: 0, closed: 0 };
  silent.server.on('connection', (socket) => {
    silent.accepted += 1;
    silent.sockets.add(socket);
    socket.resume();
    socket.on('error', () => {});
    socket.on('close', () => {
      silent.closed += 1;
      silent.sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => silent.server.listen(0, '127.0.0.1', resolve));
  silent.url = `http://127.0.0.1:${(silent.server.address() as AddressInfo).port}`;
  return silent;
}

interface DeliveryFacts {
  app_id: string;
  status: string;
  attempts: number;
  last_error: string | null;
  locked: boolean;
  due_now: boolean;
}

async function deliveries(db: TestDatabase, appId: string): Promise<DeliveryFacts[]> {
  const { rows } = await db.pool.query<DeliveryFacts>(
    `select app_id::text, status, attempts, last_error, coalesce(locked_until > now(), false) as locked, next_attempt_at <= now() as due_now
     from webhook_deliveries where app_id = $1 order by id`,
    [appId],
  );
  return rows;
}

describe('webhook delivery isolation', function () {
  // Two service starts and waits on a shared 2-core machine: generous, never a speed check.
  this.timeout(90_000);
  let db: TestDatabase | undefined;
  const services: TestService[] = [];
  const receivers: Receiver[] = [];
  const silentReceivers: SilentReceiver[] = [];

  beforeEach(() => isolateNetwork());
  afterEach(async () => {
    for (const service of services.splice(0)) {
      await service.stop();
    }
    for (const hook of receivers.splice(0)) {
      hook.server.closeAllConnections();
      await new Promise((resolve) => hook.server.close(resolve));
    }
    for (const silent of silentReceivers.splice(0)) {
      silent.sockets.forEach((socket) => socket.destroy());
      await new Promise((resolve) => silent.server.close(resolve));
    }
    await db?.drop();
    db = undefined;
    restoreNetwork();
  });

  async function start(env: Record<string, string>): Promise<TestService> {
    db ??= await createTestDatabase();
    const service = await startTestService({ db, env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1', ...env } });
    services.push(service);
    return service;
  }

  async function hook(mode: Receiver['mode']): Promise<Receiver> {
    const created = await receiver(mode);
    receivers.push(created);
    return created;
  }

  async function setWebhook(service: TestService, appId: string, url: string): Promise<void> {
    const { rows } = await service.db.pool.query('select name from apps where id = $1', [appId]);
    const res = await service.request('PUT', `/admin/apps/${rows[0].name as string}/webhook`, { key: ADMIN_KEY, body: { url } });
    expect(res.status, await res.clone().text()).to.equal(200);
  }

  async function queue(service: TestService, key: string, count: number): Promise<void> {
    const messages = Array.from({ length: count }, (_, index) => ({ from: 'app@example.com', to: `r${index}@example.com`, text: 'hi' }));
    const res = await service.request('POST', '/queue', { body: { messages }, key });
    expect(res.status, await res.clone().text()).to.equal(202);
  }

  it('when a receiver sends 200 headers and then drips its body, then the delivery is delivered in one attempt, not cut and sent again', async () => {
    mockMailjetSend();
    const slow = await hook('drip-body');
    // The deadline is short: waiting for the body would cut the delivery and send it again.
    const service = await start({ WEBHOOK_TIMEOUT_MS: '1500', WEBHOOK_RETRY_BASE_MS: '100', WEBHOOK_RETRY_MAX_MS: '200' });
    await setWebhook(service, service.appId, slow.url);

    await queue(service, service.apiKey, 1);

    const [row] = await eventually(
      async () => {
        const rows = await deliveries(service.db, service.appId);
        return rows.length === 1 && rows[0]!.status !== 'pending' ? rows : undefined;
      },
      15_000,
      'the delivery settled',
    );
    expect(row).to.deep.include({ status: 'delivered', attempts: 1, last_error: null });
    await eventually(async () => (slow.open === 0 ? true : undefined), 15_000, 'the dripping connection closed');
    expect(slow.calls.map((call) => call.attempt)).to.deep.equal([1]);
  });

  it('when a receiver drips its status line and headers, then the delivery is cut at WEBHOOK_TIMEOUT_MS and retried, never delivered', async () => {
    mockMailjetSend();
    const slow = await hook('drip');
    const service = await start({ WEBHOOK_TIMEOUT_MS: '1500', WEBHOOK_RETRY_BASE_MS: '100', WEBHOOK_RETRY_MAX_MS: '200' });
    await setWebhook(service, service.appId, slow.url);

    await queue(service, service.apiKey, 1);

    await eventually(async () => (slow.calls.some((call) => call.attempt >= 2) ? true : undefined), 15_000, 'a second attempt');
    const [first, second] = slow.calls;
    expect(second!.deliveryId, 'the retry repeats the same change').to.equal(first!.deliveryId);
    const [row] = await deliveries(service.db, service.appId);
    expect(row).to.deep.include({ status: 'pending' });
    expect(row!.attempts).to.be.at.least(2);
    expect(row!.last_error).to.equal('no complete answer within 1500 ms');
  });

  it("when a replica stops with a delivery in flight, then another replica's idle dispatcher delivers it at once, not at its idle check", async () => {
    mockMailjetSend();
    const slow = await hook('drip');
    const a = await start({ WEBHOOK_TIMEOUT_MS: '60000', SHUTDOWN_TIMEOUT_MS: '1000' });
    await setWebhook(a, a.appId, slow.url);
    await queue(a, a.apiKey, 1);
    await eventually(async () => (slow.calls.length > 0 ? true : undefined), 15_000, 'replica A attempting the delivery');
    // Replica B finds nothing to claim (A holds it) and sleeps: far longer than the test.
    await start({ IDLE_CHECK_MS: '600000' });

    slow.mode = 'prompt';
    services.splice(services.indexOf(a), 1);
    await a.stop();

    const [row] = await eventually(
      async () => {
        const rows = await deliveries(db!, a.appId);
        return rows[0]?.status === 'delivered' ? rows : undefined;
      },
      30_000,
      'the delivery delivered by replica B',
    );
    expect(row).to.deep.include({ status: 'delivered', attempts: 2 });
    expect(slow.calls.map((call) => call.attempt)).to.deep.equal([1, 2]);
  });

  it('when one app has a dripping receiver and more deliveries due than there are slots, then it holds at most its share, another app is delivered meanwhile, and stop cuts the drips and leaves them due', async () => {
    mockMailjetSend();
    const slow = await hook('drip');
    const fast = await hook('prompt');
    // The deadline is longer than the test: only isolation lets the other app's deliveries through.
    const env = { WEBHOOK_TIMEOUT_MS: '120000', WEBHOOK_BATCH_SIZE: '4', WEBHOOK_CONCURRENCY_PER_APP: '2', SHUTDOWN_TIMEOUT_MS: '1000' };
    const service = await start(env);
    const other = await makeApp(service.jetpost.pool);
    await setWebhook(service, service.appId, slow.url);
    await setWebhook(service, other.id, fast.url);

    await queue(service, service.apiKey, 8);
    await eventually(
      async () => ((await deliveries(service.db, service.appId)).length === 8 && slow.open >= 2 ? true : undefined),
      15_000,
      'the slow app’s deliveries in flight',
    );
    await queue(service, other.key, 3);

    const delivered = await eventually(
      async () => {
        const rows = await deliveries(service.db, other.id);
        return rows.length === 3 && rows.every((row) => row.status === 'delivered') ? rows : undefined;
      },
      15_000,
      'the other app’s three deliveries',
    );
    expect(delivered.map((row) => row.attempts)).to.deep.equal([1, 1, 1]);
    expect(slow.mostOpen, 'the slow app’s deliveries in flight at once (WEBHOOK_CONCURRENCY_PER_APP)').to.equal(2);
    expect(new Set(fast.calls.map((call) => call.deliveryId)).size).to.equal(3);

    // SHUTDOWN_TIMEOUT_MS is 1 s: the drips are cut then, however long WEBHOOK_TIMEOUT_MS is.
    await service.jetpost.stop();

    const afterStop = await deliveries(service.db, service.appId);
    expect(
      afterStop.filter((row) => row.status !== 'pending'),
      'slow deliveries not pending',
    ).to.deep.equal([]);
    const cut = afterStop.filter((row) => row.attempts > 0);
    expect(cut).to.have.length(2);
    for (const row of cut) {
      expect(row).to.deep.include({ locked: false, due_now: true });
      expect(row.last_error).to.match(/^cut short: jetpost stopped/);
    }

    // Once the receiver answers, the next start delivers every one of them: cut short is not lost.
    slow.mode = 'prompt';
    const restarted = await start({ WEBHOOK_TIMEOUT_MS: '5000' });
    const final = await eventually(
      async () => {
        const rows = await deliveries(restarted.db, service.appId);
        return rows.every((row) => row.status === 'delivered') ? rows : undefined;
      },
      15_000,
      'the slow app’s deliveries after the restart',
    );
    expect(final).to.have.length(8);
  });

  it('when more apps than there are slots have silent receivers, then a healthy app queued after them is delivered while their calls are still open', async function () {
    // Waits on a shared 2-core machine; without the fix, the healthy app would wait for the timeouts.
    this.timeout(300_000);
    mockMailjetSend();
    const silent = await silentReceiver();
    silentReceivers.push(silent);
    const healthy = await hook('prompt');
    // The deadline is longer than the wait below: only calls that stop holding their slots let the healthy app through.
    const service = await start({ WEBHOOK_TIMEOUT_MS: '240000', WEBHOOK_BATCH_SIZE: '2', WEBHOOK_CONCURRENCY_PER_APP: '2' });
    const silentApps = await Promise.all(Array.from({ length: 6 }, () => makeApp(service.jetpost.pool)));
    for (const [index, app] of silentApps.entries()) {
      await setWebhook(service, app.id, `${silent.url}/app-${index}`);
    }
    await setWebhook(service, service.appId, healthy.url);

    for (const app of silentApps) {
      await queue(service, app.key, 1);
    }
    await eventually(
      async () => {
        const { rows } = await service.db.pool.query('select count(*)::int as n from webhook_deliveries where app_id = any($1::bigint[])', [
          silentApps.map((app) => app.id),
        ]);
        return rows[0].n === 6 && silent.accepted >= 2 ? true : undefined;
      },
      30_000,
      'the silent apps’ deliveries queued, two of them in flight',
    );
    // Due after every silent app's delivery: the claim's order alone puts them last.
    await queue(service, service.apiKey, 2);

    await eventually(
      async () => {
        const rows = await deliveries(service.db, service.appId);
        return rows.length === 2 && rows.every((row) => row.status === 'delivered') ? true : undefined;
      },
      150_000,
      'the healthy app’s two deliveries',
    );
    expect(silent.closed, 'silent calls ended (timed out) before the healthy app was delivered').to.equal(0);
    await eventually(async () => (silent.accepted === 6 ? true : undefined), 30_000, 'every silent app’s call open');
    expect(silent.closed).to.equal(0);
    expect(new Set(healthy.calls.map((call) => call.deliveryId)).size).to.equal(2);
  });
});
