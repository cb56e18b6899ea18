// A receiver that closes a kept-alive connection just as jetpost reuses it (its idle timeout firing
// as the call is written: the classic keep-alive race). Nothing of an answer came, so nothing says
// the receiver is down: the call goes again at once on a new connection, as one attempt, and the
// app's deliveries are not paused. Here the receiver drops every second call on a connection.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import { expect } from 'chai';

import { capturingLogger } from '../support/log.js';
import { isolateNetwork, mockMailjetSend, restoreNetwork } from '../support/mailjet-nock.js';
import { sampleValue } from '../support/prometheus-text.js';
import { ADMIN_KEY, eventually, startTestService, type TestService } from '../support/service.js';

describe('webhook receivers that close a kept-alive connection as it is reused', function () {
  this.timeout(90_000);
  let service: TestService | undefined;
  let server: Server | undefined;

  beforeEach(() => isolateNetwork());
  afterEach(async () => {
    await service?.stop();
    service = undefined;
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
    restoreNetwork();
  });

  for (const [how, drop] of [
    ['a FIN', (socket: Socket) => socket.destroy()],
    ['a reset', (socket: Socket) => socket.resetAndDestroy()],
  ] as const) {
    it(`when the receiver drops a reused connection with ${how} before answering, then the call goes again at once on a new one: delivered in one attempt, no pause`, async () => {
      mockMailjetSend();
      const calls = new Map<Socket, number>();
      const answered: string[] = [];
      let dropped = 0;
      server = createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          const call = (calls.get(req.socket) ?? 0) + 1;
          calls.set(req.socket, call);
          if (call === 2) {
            dropped += 1;
            drop(req.socket);
            return;
          }
          answered.push(String(req.headers['webhook-id']));
          res.writeHead(204).end();
        });
      });
      server.keepAliveTimeout = 60_000;
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      const logs = capturingLogger('info');
      service = await startTestService({
        log: logs.log,
        // One delivery at a time, so that each finds the connection the last one left.
        env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1', WEBHOOK_CONCURRENCY_PER_APP: '1', WEBHOOK_BATCH_SIZE: '1' },
      });
      const s = service;
      const { rows: apps } = await s.db.pool.query('select name from apps where id = $1', [s.appId]);
      const put = await s.request('PUT', `/admin/apps/${apps[0].name as string}/webhook`, {
        key: ADMIN_KEY,
        body: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, event_types: ['accepted'] },
      });
      expect(put.status, await put.clone().text()).to.equal(200);

      // Until a delivery has found a reused connection (a connection idle for 5 s is closed by either side, on a loaded host).
      let messages = 0;
      for (let message = 1; message <= 3 || (dropped === 0 && message <= 10); message += 1) {
        messages = message;
        const res = await s.request('POST', '/queue', { body: { messages: [{ from: 'app@example.com', to: `r${message}@example.com`, text: 'hi' }] } });
        expect(res.status, await res.clone().text()).to.equal(202);
        await eventually(
          async () => {
            const { rows } = await s.db.pool.query(`select count(*)::int as n from webhook_deliveries where status <> 'pending' or last_error is not null`);
            return rows[0].n === message ? true : undefined;
          },
          30_000,
          `delivery ${message} attempted`,
        );
      }

      const { rows } = await s.db.pool.query<{ id: string; status: string; attempts: number; last_error: string | null; paused: boolean }>(
        `select d.id::text, d.status, d.attempts, d.last_error, coalesce(a.webhook_throttled_until > now(), false) as paused
         from webhook_deliveries d join apps a on a.id = d.app_id order by d.id`,
      );
      expect(dropped, 'calls the receiver dropped on a reused connection').to.be.above(0);
      expect(rows.map((row) => [row.status, row.attempts, row.last_error, row.paused])).to.deep.equal(
        Array.from({ length: messages }, () => ['delivered', 1, null, false]),
      );
      expect(answered.sort()).to.deep.equal(rows.map((row) => row.id).sort());
      // Not an attempt of its own, so the log alone tells of it: one line per call made again,
      // naming the app and the webhook-id, with neither the secret nor the body.
      const again = logs
        .lines()
        .filter((line) => line.includes('kept-alive webhook connection'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(again.map((line) => [line['app'], line['attempts']])).to.deep.equal(Array.from({ length: dropped }, () => [s.appId, 1]));
      expect(again.every((line) => rows.some((row) => row.id === line['delivery']))).to.equal(true);
      expect(again.every((line) => typeof line['error'] === 'string' && line['error'] !== '')).to.equal(true);
      expect(JSON.stringify(again)).not.to.match(/whsec_|new_status|r\d+@example\.com/);
      const metrics = await (await s.request('GET', '/metrics', { key: null })).text();
      expect(sampleValue(metrics, 'jetpost_webhook_deliveries_total', { outcome: 'delivered' })).to.equal(messages);
      expect(sampleValue(metrics, 'jetpost_webhook_deliveries_total', { outcome: 'retry' }) ?? 0).to.equal(0);
    });
  }
});
