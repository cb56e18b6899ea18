// A step of jetpost's wall clock by an hour, forwards or backwards (an NTP correction, `date -s`),
// while PostgreSQL's now() does not move (a database on another host): nothing waits for the hour,
// nothing is sent twice. Node's side is moved with a fake Date (support/clock-jump.ts); timers and
// performance.now() keep running, as on a real host.
import type { IncomingMessage, Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { expect } from 'chai';
import nock from 'nock';

import { CALLBACK_AUTH_FAILURES } from '../../src/http/rate-limit.js';
import { messageTo } from '../factories.js';
import { installNodeClock, type NodeClock } from '../support/clock-jump.js';
import { isolateNetwork, restoreNetwork, type SendCall, sendResponseText } from '../support/mailjet-nock.js';
import { ADMIN_KEY, EVENTS_USER, eventually, MAILJET_TEST_ORIGIN, startTestService, type TestService } from '../support/service.js';

const HOUR_MS = 3_600_000;

/** Answers every send call, the first `throttled` with a 429; counts the sends of each CustomID. */
function mailjet(throttled = 0): Map<string, number> {
  const sends = new Map<string, number>();
  let calls = 0;
  nock(MAILJET_TEST_ORIGIN)
    .persist()
    .post('/v3.1/send')
    .reply((_uri: string, body: nock.Body) => {
      calls += 1;
      if (calls <= throttled) {
        return [429, 'Too Many Requests', { 'content-type': 'text/plain', 'retry-after': '0' }];
      }
      const call = body as SendCall;
      for (const message of call.Messages) {
        sends.set(message.CustomID, (sends.get(message.CustomID) ?? 0) + 1);
      }
      return [200, sendResponseText(call).text, { 'content-type': 'application/json' }];
    });
  return sends;
}

describe('a step of the wall clock by an hour (the database keeps its own)', () => {
  let service: TestService | undefined;
  let clock: NodeClock;
  let receiver: Server | undefined;

  beforeEach(() => {
    isolateNetwork();
    clock = installNodeClock();
  });
  afterEach(async () => {
    await service?.stop();
    service = undefined;
    await new Promise((resolve) => (receiver ? receiver.close(resolve) : resolve(undefined)));
    receiver = undefined;
    clock.restore();
    restoreNetwork();
  });

  async function queue(count: number): Promise<string[]> {
    const res = await service!.request('POST', '/queue', { body: { messages: Array.from({ length: count }, (_, i) => messageTo(`to-${i}@example.com`)) } });
    expect(res.status, await res.clone().text()).to.equal(202);
    return ((await res.json()) as { jobs: Array<{ job_id: string }> }).jobs.map((job) => job.job_id);
  }

  async function accepted(ids: readonly string[]): Promise<void> {
    await eventually(
      async () => {
        const { rows } = await service!.db.pool.query(`select count(*)::int as n from email_send_jobs where id = any($1::bigint[]) and status = 'accepted'`, [
          ids,
        ]);
        return rows[0].n === ids.length ? true : undefined;
      },
      30_000,
      `${ids.length} jobs accepted`,
    );
  }

  for (const jumpMs of [HOUR_MS, -HOUR_MS]) {
    const way = jumpMs > 0 ? 'forwards' : 'backwards';

    it(`when the clock steps ${way}, then messages queued after it, and a retry after a 429, are sent within seconds, each once`, async () => {
      const sends = mailjet(1);
      // A rate limit: its token bucket must not wait out the hour either.
      service = await startTestService({ env: { MAILJET_RATE_LIMIT: '20' } });
      clock.jump(jumpMs);
      const ids = await queue(3);
      await accepted(ids);
      expect([...sends.values()]).to.deep.equal([1, 1, 1]);
    });

    it(`when the clock steps ${way}, then a webhook the receiver failed once is delivered on its retry, not an hour later`, async () => {
      const calls: number[] = [];
      receiver = createServer((req: IncomingMessage, res) => {
        req.resume();
        req.on('end', () => {
          calls.push(calls.length < 1 ? 500 : 204);
          res.writeHead(calls.at(-1)!).end();
        });
      });
      await new Promise<void>((resolve) => receiver!.listen(0, '127.0.0.1', resolve));
      mailjet();
      service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1', WEBHOOK_RETRY_BASE_MS: '50', WEBHOOK_RETRY_MAX_MS: '200' } });
      const { rows } = await service.db.pool.query('select name from apps where id = $1', [service.appId]);
      const set = await service.request('PUT', `/admin/apps/${rows[0].name as string}/webhook`, {
        key: ADMIN_KEY,
        body: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`, event_types: ['accepted'] },
      });
      expect(set.status, await set.clone().text()).to.equal(200);
      clock.jump(jumpMs);
      await accepted(await queue(1));
      await eventually(async () => (calls.includes(204) ? true : undefined), 30_000, 'the accepted change delivered');
      expect(calls).to.deep.equal([500, 204]);
    });

    it(`when the clock steps ${way}, then a 429 of QUEUE_RATE_LIMIT asks for at most a minute`, async () => {
      service = await startTestService({ env: { QUEUE_RATE_LIMIT: '1' } });
      clock.jump(jumpMs);
      await queue(1);
      const refused = await service.request('POST', '/queue', { body: messageTo('again@example.com') });
      expect(refused.status).to.equal(429);
      expect(Number(refused.headers.get('retry-after'))).to.be.within(1, 60);
      expect(refused.headers.get('ratelimit')).to.match(/t=([0-9]|[1-5][0-9]|60)$/);
    });

    it(`when the clock steps ${way}, then a send_at at an edge of its window is judged on the database's clock, and the minute counted for the dashboard is the database's`, async () => {
      mailjet();
      service = await startTestService();
      clock.jump(jumpMs);
      const { rows } = await service.db.pool.query<{ now: Date }>('select now()');
      const databaseMs = rows[0]!.now.getTime();
      // 30 days ahead and 24 hours behind are the window's edges (http/schemas.ts): half an hour inside the one the step moved towards.
      const sendAt = jumpMs > 0 ? databaseMs - 24 * HOUR_MS + HOUR_MS / 2 : databaseMs + 30 * 24 * HOUR_MS - HOUR_MS / 2;
      const res = await service.request('POST', '/queue', { body: { ...messageTo('edge@example.com'), send_at: new Date(sendAt).toISOString() } });
      expect(res.status, await res.clone().text()).to.equal(202);
      const minutes = await eventually(
        async () => {
          const counted = await service!.db.pool.query<{ off_ms: number }>(
            `select extract(epoch from (now() - minute)) * 1000 as off_ms from throughput_minutes where enqueued > 0`,
          );
          return counted.rows.length > 0 ? counted.rows.map((row) => Number(row.off_ms)) : undefined;
        },
        30_000,
        'the enqueued message counted in throughput_minutes',
      );
      expect(
        minutes.every((offMs) => offMs >= 0 && offMs < 10 * 60_000),
        `minutes counted ${minutes.join(', ')} ms before the database's now`,
      ).to.equal(true);
    });

    it(`when the clock steps ${way}, then the limits on wrong admin keys and wrong callback credentials hold for their minute, not an hour more or less`, async () => {
      service = await startTestService({ env: { WORKER_CONCURRENCY: '0', ADMIN_KEY_FAILURE_LIMIT: '1' } });
      const wrongAdmin = () => service!.request('GET', '/admin/apps', { key: 'wrong-admin-key' });
      const wrongCallback = () => service!.postEvents([], { user: EVENTS_USER, password: 'wrong-password-0123' });
      expect((await wrongAdmin()).status).to.equal(401);
      for (let i = 0; i < CALLBACK_AUTH_FAILURES.perSource; i++) {
        expect((await wrongCallback()).status).to.equal(401);
      }
      clock.jump(jumpMs);
      for (const refused of [await wrongAdmin(), await wrongCallback()]) {
        expect(refused.status, 'the limit is not lifted by a step forwards').to.equal(429);
        expect(Number(refused.headers.get('retry-after')), 'nor held for the hour by a step backwards').to.be.within(1, 60);
      }
    });
  }
});
