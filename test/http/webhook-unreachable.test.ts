// Webhook receivers that give no answer at all, on real local sockets: a port nothing listens on
// (connection refused) and a server that accepts and never answers (cut at WEBHOOK_TIMEOUT_MS). As
// with a 503, the app's deliveries pause after the attempt, one goes alone after the pause, and once
// the receiver answers, every delivery arrives, each once. The pause is long (WEBHOOK_RETRY_BASE_MS):
// where a test needs it over, it moves it to now in the database rather than wait. Another app's
// delivery, queued after each step, shows that the dispatcher has claimed again since.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { expect } from 'chai';

import { type MadeApp, makeApp } from '../factories.js';
import { isolateNetwork, mockMailjetSend, restoreNetwork } from '../support/mailjet-nock.js';
import { ADMIN_KEY, eventually, startTestService, type TestService } from '../support/service.js';

interface Receiver {
  server: Server;
  /** 'silent': takes the request and never answers; 'answer': 204. */
  mode: 'silent' | 'answer';
  /** webhook-id of every request answered 204. */
  answered: string[];
}

function receiver(mode: Receiver['mode']): Receiver {
  const hook: Receiver = { server: createServer(), mode, answered: [] };
  hook.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      if (hook.mode === 'answer') {
        hook.answered.push(String(req.headers['webhook-id']));
        res.writeHead(204).end();
      }
    });
  });
  return hook;
}

async function listen(hook: Receiver, port = 0): Promise<number> {
  await new Promise<void>((resolve) => hook.server.listen(port, '127.0.0.1', resolve));
  return (hook.server.address() as AddressInfo).port;
}

async function close(hook: Receiver): Promise<void> {
  hook.server.closeAllConnections();
  await new Promise((resolve) => hook.server.close(resolve));
}

interface AppDeliveries {
  attempts: number[];
  errors: Array<string | null>;
  statuses: string[];
  /** Whether the app's deliveries are paused now. */
  paused: boolean;
}

describe('webhook receivers that give no answer', function () {
  // Service starts and waits on a shared 2-core machine: generous, never a speed check.
  this.timeout(90_000);
  let service: TestService | undefined;
  const hooks: Receiver[] = [];

  beforeEach(() => isolateNetwork());
  afterEach(async () => {
    await service?.stop();
    service = undefined;
    for (const hook of hooks.splice(0)) {
      await close(hook);
    }
    restoreNetwork();
  });

  function hook(mode: Receiver['mode']): Receiver {
    const created = receiver(mode);
    hooks.push(created);
    return created;
  }

  async function setWebhook(s: TestService, appId: string, url: string): Promise<void> {
    const { rows } = await s.db.pool.query('select name from apps where id = $1', [appId]);
    const res = await s.request('PUT', `/admin/apps/${rows[0].name as string}/webhook`, { key: ADMIN_KEY, body: { url } });
    expect(res.status, await res.clone().text()).to.equal(200);
  }

  async function queue(s: TestService, key: string, count: number): Promise<void> {
    const messages = Array.from({ length: count }, (_, index) => ({ from: 'app@example.com', to: `r${index}@example.com`, text: 'hi' }));
    const res = await s.request('POST', '/queue', { body: { messages }, key });
    expect(res.status, await res.clone().text()).to.equal(202);
  }

  async function appDeliveries(s: TestService, appId: string): Promise<AppDeliveries> {
    const { rows } = await s.db.pool.query<{ attempts: number; last_error: string | null; status: string; paused: boolean }>(
      `select d.attempts, d.last_error, d.status, coalesce(a.webhook_throttled_until > now(), false) as paused
       from webhook_deliveries d join apps a on a.id = d.app_id where d.app_id = $1 order by d.id`,
      [appId],
    );
    return {
      attempts: rows.map((r) => r.attempts),
      errors: rows.map((r) => r.last_error),
      statuses: rows.map((r) => r.status),
      paused: rows[0]?.paused ?? false,
    };
  }

  /**
   * Queues a message of the other app and waits for its delivery: the dispatcher has claimed since
   * this was called, so whatever it would have claimed of the first app by then, it has.
   */
  async function otherDelivered(s: TestService, other: MadeApp, count: number): Promise<void> {
    await queue(s, other.key, 1);
    await eventually(
      async () => ((await appDeliveries(s, other.id)).statuses.filter((status) => status === 'delivered').length === count ? true : undefined),
      20_000,
      `the other app's delivery ${count}`,
    );
  }

  /** Ends the app's pause and its deliveries' own backoff now, as the clock would in 10 minutes. */
  async function pauseOver(s: TestService, appId: string): Promise<void> {
    await s.db.pool.query('update apps set webhook_throttled_until = now() where id = $1', [appId]);
    await s.db.pool.query(`update webhook_deliveries set next_attempt_at = now() where app_id = $1 and status = 'pending'`, [appId]);
  }

  const kinds: Array<{ kind: string; error: RegExp; down: () => Promise<{ port: number; up: () => Promise<Receiver> }> }> = [
    {
      kind: 'refuses connections (nothing listens on its port)',
      error: /ECONNREFUSED/,
      async down() {
        // A port that was free a moment ago, and that nothing listens on now.
        const probe = receiver('answer');
        const port = await listen(probe);
        await close(probe);
        return {
          port,
          async up() {
            const back = hook('answer');
            await listen(back, port);
            return back;
          },
        };
      },
    },
    {
      kind: 'accepts and never answers',
      error: /^no complete answer within 2000 ms$/,
      async down() {
        const silent = hook('silent');
        const port = await listen(silent);
        return {
          port,
          async up() {
            silent.mode = 'answer';
            return silent;
          },
        };
      },
    },
  ];

  for (const { kind, error, down } of kinds) {
    it(`when the receiver ${kind}, then the app pauses after one attempt, one goes alone after the pause, and once it answers all arrive, each once`, async () => {
      mockMailjetSend();
      const dead = await down();
      // Four of an app at once, a pause of 10 minutes at least, and a deadline a loaded machine's prompt answer keeps.
      service = await startTestService({
        env: {
          WEBHOOK_ALLOWED_TARGETS: '127.0.0.1',
          WEBHOOK_CONCURRENCY_PER_APP: '4',
          WEBHOOK_RETRY_BASE_MS: '600000',
          WEBHOOK_RETRY_MAX_MS: '600000',
          WEBHOOK_TIMEOUT_MS: '2000',
        },
      });
      const s = service;
      const other = await makeApp(s.jetpost.pool);
      const prompt = hook('answer');
      await setWebhook(s, other.id, `http://127.0.0.1:${await listen(prompt)}/hooks`);
      await setWebhook(s, s.appId, `http://127.0.0.1:${dead.port}/hooks`);

      // The first delivery finds the receiver down: the app pauses.
      await queue(s, s.apiKey, 1);
      const first = await eventually(async () => {
        const rows = await appDeliveries(s, s.appId);
        return rows.errors[0] ? rows : undefined;
      });
      expect(first.errors[0]).to.match(error);
      expect(first.paused, 'paused after the first attempt').to.equal(true);

      // Two more of the app's are not attempted during the pause, while the other app's go.
      await queue(s, s.apiKey, 2);
      await eventually(async () => ((await appDeliveries(s, s.appId)).attempts.length === 3 ? true : undefined), 20_000, 'three deliveries');
      await otherDelivered(s, other, 1);
      expect((await appDeliveries(s, s.appId)).attempts).to.deep.equal([1, 0, 0]);

      // After the pause, one of the three goes alone; it finds the receiver down, and the app pauses again.
      await pauseOver(s, s.appId);
      await otherDelivered(s, other, 2);
      const probed = await eventually(async () => {
        const rows = await appDeliveries(s, s.appId);
        return rows.paused ? rows : undefined;
      });
      expect(
        probed.attempts.reduce((sum, n) => sum + n),
        'attempts in all: one before the pause, one after',
      ).to.equal(2);

      // The receiver is back: after the pause, the first answer ends it, and the rest go.
      const back = await dead.up();
      await pauseOver(s, s.appId);
      await otherDelivered(s, other, 3);
      const final = await eventually(
        async () => {
          const rows = await appDeliveries(s, s.appId);
          return rows.statuses.every((status) => status === 'delivered') ? rows : undefined;
        },
        20_000,
        "the app's three deliveries",
      );
      expect(final.paused).to.equal(false);
      expect(back.answered).to.have.length(3);
      expect(new Set(back.answered).size, 'each delivery once').to.equal(3);
      const { rows } = await s.db.pool.query('select webhook_throttled_until from apps where id = $1', [s.appId]);
      expect(rows[0].webhook_throttled_until, 'the pause is over: the app is back to four at a time').to.equal(null);
    });
  }
});
