import { request } from 'node:http';

import { expect } from 'chai';

import { createSimulator } from '../../src/simulator/server.js';
import { mailjetMessage } from '../factories.js';
import { type Answer, basic, call, eventsOf, IMMEDIATE, rawIds, send, simulatorKit } from '../support/simulator-kit.js';

const TWO_TO_53 = 2n ** 53n;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const { startSimulator, startReceiver, closeAll } = simulatorKit();

describe('Mailjet simulator', () => {
  afterEach(closeAll);

  describe('POST /v3.1/send', () => {
    it('when the messages are valid, then 200 with one MessageID above 2^53 per recipient, written as a raw integer', async () => {
      const simulator = await startSimulator();

      const answer = await send(simulator, { Messages: [mailjetMessage('a@example.com', { Cc: [{ Email: 'b@example.com' }], CustomID: 'job-1' })] });

      expect(answer.status).to.equal(200);
      expect(answer.text).not.to.match(/"MessageID":"/);
      const ids = rawIds(answer.text);
      expect(ids).to.have.length(2);
      for (const id of ids) {
        expect(id).to.have.length.of.at.least(17);
        expect(BigInt(id) > TWO_TO_53).to.equal(true);
      }
      const [entry] = (JSON.parse(answer.text) as { Messages: Array<Record<string, Array<Record<string, unknown>>>> }).Messages;
      expect(entry?.Status).to.equal('success');
      expect(entry?.CustomID).to.equal('job-1');
      expect(entry?.To?.[0]?.MessageUUID).to.match(UUID_V4);
      expect(entry?.To?.[0]?.MessageHref).to.equal(`https://api.mailjet.com/v3/REST/message/${ids[0]}`);
      expect(entry?.Bcc).to.deep.equal([]);
      const recorded = simulator.messages[0]?.recipients.map((recipient) => [recipient.kind, recipient.messageId.toString()]);
      expect(recorded).to.deep.equal([
        ['to', ids[0]],
        ['cc', ids[1]],
      ]);
      expect(simulator.sendCalls()).to.equal(1);
    });

    it('when a call has 51 recipients, then a global 400 send-0015 and nothing is recorded', async () => {
      const simulator = await startSimulator();
      const messages = Array.from({ length: 51 }, (_, index) => mailjetMessage(`user${index}@example.com`));

      const answer = await send(simulator, { Messages: messages });

      expect(answer.status).to.equal(400);
      const body = JSON.parse(answer.text) as Record<string, unknown>;
      expect(body).to.include({ ErrorCode: 'send-0015', StatusCode: 400, ErrorMessage: 'Total number of recipients exceeded. Max allowed - 50' });
      expect(body).not.to.have.property('Messages');
      expect(simulator.messages).to.have.length(0);
    });

    it('when an address repeats within a message, then it counts once toward the 50', async () => {
      const simulator = await startSimulator();
      const messages = Array.from({ length: 50 }, (_, index) => mailjetMessage(`user${index}@example.com`, { Bcc: [{ Email: `USER${index}@example.com` }] }));

      expect((await send(simulator, { Messages: messages })).status).to.equal(200);
    });

    it('when one message of a batch is invalid, then 400 with the success and the error entry in input order', async () => {
      const simulator = await startSimulator();

      const answer = await send(simulator, { Messages: [mailjetMessage('ok@example.com'), mailjetMessage('not-an-address')] });

      expect(answer.status).to.equal(400);
      const body = JSON.parse(answer.text) as { Messages: Array<{ Status: string; Errors?: Array<Record<string, unknown>> }> };
      expect(body.Messages.map((entry) => entry.Status)).to.deep.equal(['success', 'error']);
      expect(body.Messages[1]?.Errors?.[0]).to.include({ ErrorCode: 'mj-0013', StatusCode: 400 });
      expect(body.Messages[1]?.Errors?.[0]?.ErrorRelatedTo).to.deep.equal(['To[0].Email']);
      expect(rawIds(answer.text)).to.have.length(1);
      expect(simulator.messages.map((accepted) => accepted.recipients[0]?.email)).to.deep.equal(['ok@example.com']);
    });

    it('when SandboxMode is true, then the usual shape with MessageID 0 and nothing recorded or called back', async () => {
      const simulator = await startSimulator();

      const answer = await send(simulator, { SandboxMode: true, Messages: [mailjetMessage('a@example.com')] });

      expect(answer.status).to.equal(200);
      expect(rawIds(answer.text)).to.deep.equal(['0']);
      expect(answer.text).to.include('"MessageUUID":""');
      expect(simulator.messages).to.have.length(0);
      expect(simulator.pendingEvents()).to.equal(0);
    });

    it('when the body is not JSON, then a global 400 mj-0002', async () => {
      const simulator = await startSimulator();

      const answer = await send(simulator, '{"Messages": [');

      expect(answer.status).to.equal(400);
      expect(JSON.parse(answer.text)).to.include({ ErrorCode: 'mj-0002', StatusCode: 400 });
    });

    it('when the body is over 15 MB, then 413 with an HTML page', async () => {
      const simulator = await startSimulator();

      const answer = await send(simulator, { Messages: [mailjetMessage('a@example.com', { TextPart: 'x'.repeat(16 * 1024 * 1024) })] });

      expect(answer.status).to.equal(413);
      expect(answer.headers.get('content-type')).to.equal('text/html');
      expect(answer.text).to.match(/^<html><head><title>413 Request Entity Too Large<\/title>/);
      expect(simulator.sendCalls()).to.equal(1);
    });

    it('when the same seed is used twice, then the same MessageIDs come back', async () => {
      const first = await startSimulator({ seed: 42 });
      const second = await startSimulator({ seed: 42 });
      const body = { Messages: [mailjetMessage('a@example.com')] };

      expect(rawIds((await send(first, body)).text)).to.deep.equal(rawIds((await send(second, body)).text));
    });
  });

  describe('faults', () => {
    it('when nextCalls is ["429"], then the first call gets an HTML 429 with Retry-After and the next is accepted', async () => {
      const simulator = await startSimulator();
      simulator.faults.set({ nextCalls: ['429'], retryAfterSeconds: 3 });
      const body = { Messages: [mailjetMessage('a@example.com')] };

      const limited = await send(simulator, body);
      const accepted = await send(simulator, body);

      expect(limited.status).to.equal(429);
      expect(limited.headers.get('retry-after')).to.equal('3');
      expect(limited.text).to.match(/^<html><head><title>429 Too Many Requests<\/title>/);
      expect(accepted.status).to.equal(200);
      expect(simulator.messages).to.have.length(1);
      expect(simulator.sendCalls()).to.equal(2);
    });

    it('when a call times out, then the client gets no answer and its messages are still accepted', async () => {
      const simulator = await startSimulator();
      simulator.faults.set({ nextCalls: ['timeout'] });

      const attempt = fetch(`${simulator.url}/v3.1/send`, {
        method: 'POST',
        body: JSON.stringify({ Messages: [mailjetMessage('a@example.com')] }),
        signal: AbortSignal.timeout(100),
      });

      const error = await attempt.then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      expect(error).to.be.instanceOf(Error).with.property('name', 'TimeoutError');
      expect(simulator.messages).to.have.length(1);
    });

    it('when faults are posted to /_sim/faults, then they apply and a bad setting is a 400', async () => {
      const simulator = await startSimulator();
      const post = (settings: unknown): Promise<Answer> => call(simulator, '/_sim/faults', { method: 'POST', body: JSON.stringify(settings) });

      expect((await post({ rateLimitRatio: 2 })).status).to.equal(400);
      expect((await post({ messageErrorPattern: '^reject' })).status).to.equal(200);
      const answer = await send(simulator, { Messages: [mailjetMessage('keep@example.com'), mailjetMessage('reject@example.com')] });

      expect(answer.status).to.equal(400);
      expect((JSON.parse(answer.text) as { Messages: Array<{ Status: string }> }).Messages.map((entry) => entry.Status)).to.deep.equal(['success', 'error']);
      expect(JSON.parse((await call(simulator, '/_sim/faults')).text)).to.deep.equal({ messageErrorPattern: '^reject' });
    });
  });

  describe('POST /_sim/faults', () => {
    it('when messageErrorPattern could backtrack for minutes, then it is a 400 naming it, and the simulator goes on answering', async () => {
      const simulator = await startSimulator();

      const answer = await call(simulator, '/_sim/faults', { method: 'POST', body: JSON.stringify({ messageErrorPattern: '(a+)+$' }) });

      expect(answer.status).to.equal(400);
      expect((JSON.parse(answer.text) as { ErrorMessage: string }).ErrorMessage).to.match(/^messageErrorPattern is refused: a repeated group holds/);
      expect(JSON.parse((await call(simulator, '/_sim/faults')).text)).to.deep.equal({});
      // Accepted, the pattern held the event loop (this test's too) for hours on this address.
      expect((await send(simulator, { Messages: [mailjetMessage(`${'a'.repeat(40)}!@example.com`)] })).status).to.equal(200);
    });
  });

  describe('a request target that is no URL', () => {
    it('when the request line names "http://[bad", then 400, not a 500', async () => {
      const simulator = await startSimulator();
      const { hostname, port } = new URL(simulator.url!);

      const status = await new Promise<number | undefined>((resolve, reject) => {
        request({ hostname, port, path: 'http://[bad', method: 'GET' }, (res) => {
          res.resume();
          resolve(res.statusCode);
        })
          .on('error', reject)
          .end();
      });

      expect(status).to.equal(400);
    });
  });

  describe('basic auth', () => {
    it('when apiKey and apiSecret are set, then a call without the right credentials gets 401 mj-0015', async () => {
      const simulator = await startSimulator({ apiKey: 'key', apiSecret: 'secret' });
      const body = { Messages: [mailjetMessage('a@example.com')] };

      const missing = await send(simulator, body);
      const wrong = await send(simulator, body, { authorization: basic('key', 'nope') });
      const right = await send(simulator, body, { authorization: basic('key', 'secret') });

      for (const denied of [missing, wrong]) {
        expect(denied.status).to.equal(401);
        expect(JSON.parse(denied.text)).to.include({ ErrorCode: 'mj-0015', StatusCode: 401 });
      }
      expect(right.status).to.equal(200);
      expect((await call(simulator, '/v3/REST/eventcallbackurl')).status).to.equal(401);
      expect((await call(simulator, '/_sim/health')).status).to.equal(200);
      expect(simulator.messages).to.have.length(1);
    });
  });

  describe('GET /v3/REST/message', () => {
    it('when looked up by CustomID or by id, then each recipient with its raw ID and the status its events reached', async () => {
      const receiver = await startReceiver();
      const simulator = await startSimulator({ callbackUrl: receiver.url });
      const [id] = rawIds((await send(simulator, { Messages: [mailjetMessage('a@example.com', { CustomID: 'job-9' })] })).text);
      await simulator.flushEvents();

      const byCustomId = await call(simulator, '/v3/REST/message?CustomID=job-9&ShowCustomID=true&ShowContactAlt=true');
      const byId = await call(simulator, `/v3/REST/message/${id}`);
      const unknown = await call(simulator, '/v3/REST/message/576460752303423488');

      expect(rawIds(byCustomId.text, 'ID')).to.deep.equal([id]);
      expect(JSON.parse(byCustomId.text)).to.deep.include({ Count: 1, Total: 1 });
      expect((JSON.parse(byCustomId.text) as { Data: unknown[] }).Data[0]).to.include({
        CustomID: 'job-9',
        Status: 'opened',
        ContactAlt: 'a@example.com',
      });
      expect(rawIds(byId.text, 'ID')).to.deep.equal([id]);
      expect(unknown.status).to.equal(404);
      expect(JSON.parse(unknown.text)).to.deep.equal({ ErrorInfo: '', ErrorMessage: 'Object not found', StatusCode: 404 });
    });
  });

  describe('/v3/REST/eventcallbackurl', () => {
    it('when the same EventType and IsBackup are registered twice, then the second POST is a 400 MJ18', async () => {
      const simulator = await startSimulator();
      const register = (body: unknown): Promise<Answer> => call(simulator, '/v3/REST/eventcallbackurl', { method: 'POST', body: JSON.stringify(body) });

      const created = await register({ EventType: 'sent', Url: 'http://127.0.0.1:9/events', Version: 2 });
      const duplicate = await register({ EventType: 'sent', Url: 'http://127.0.0.1:9/other' });
      const backup = await register({ EventType: 'sent', Url: 'http://127.0.0.1:9/backup', IsBackup: true });

      expect(created.status).to.equal(201);
      expect(JSON.parse(created.text)).to.deep.equal({
        Count: 1,
        Data: [{ APIKeyID: 1, EventType: 'sent', ID: 1, IsBackup: false, Status: 'alive', Url: 'http://127.0.0.1:9/events', Version: 2 }],
        Total: 1,
      });
      expect(duplicate.status).to.equal(400);
      expect(JSON.parse(duplicate.text)).to.deep.equal({
        ErrorInfo: '',
        ErrorMessage: 'MJ18 A EventCallbackURL resource with value "7|false" for EventType|Backup already exists.',
        StatusCode: 400,
      });
      expect(backup.status).to.equal(201);
    });

    it('when a URL is registered, updated and deleted, then events follow the registration and its Version', async () => {
      const registered = await startReceiver();
      const fallback = await startReceiver();
      const simulator = await startSimulator({ callbackUrl: fallback.url });
      const created = await call(simulator, '/v3/REST/eventcallbackurl', {
        method: 'POST',
        body: JSON.stringify({ EventType: 'sent', Url: 'http://127.0.0.1:9/unused' }),
      });
      const id = (JSON.parse(created.text) as { Data: Array<{ ID: number }> }).Data[0]?.ID;
      const updated = await call(simulator, `/v3/REST/eventcallbackurl/${id}`, { method: 'PUT', body: JSON.stringify({ Url: registered.url }) });

      await send(simulator, { Messages: [mailjetMessage('a@example.com')] });
      await simulator.flushEvents();

      expect(JSON.parse(updated.text)).to.deep.include({ Count: 1 });
      expect(registered.deliveries.map((delivery) => (JSON.parse(delivery.body) as { event: string }).event)).to.deep.equal(['sent']);
      expect(eventsOf(fallback.deliveries).map((event) => event.event)).to.deep.equal(['open']);
      expect((await call(simulator, `/v3/REST/eventcallbackurl/${id}`, { method: 'DELETE' })).status).to.equal(204);
      expect((await call(simulator, `/v3/REST/eventcallbackurl/${id}`)).status).to.equal(404);
    });
  });

  describe('event callbacks', () => {
    it('when the callback URL embeds credentials, then sent and open arrive as one grouped array with Basic auth', async () => {
      const receiver = await startReceiver();
      const callbackUrl = receiver.url.replace('http://', 'http://hook:s3cret@');
      const simulator = await startSimulator({ callbackUrl });
      const answer = await send(simulator, { Messages: [mailjetMessage('a@example.com', { CustomID: 'job-2', EventPayload: '{"k":1}' })] });
      const [id] = rawIds(answer.text);

      await simulator.flushEvents();

      expect(receiver.deliveries).to.have.length(1);
      const [delivery] = receiver.deliveries;
      expect(delivery?.headers.authorization).to.equal(basic('hook', 's3cret'));
      expect(delivery?.headers['content-type']).to.equal('application/json');
      expect(rawIds(delivery?.body ?? '')).to.deep.equal([id, id]);
      const events = JSON.parse(delivery?.body ?? '') as Array<Record<string, unknown>>;
      expect(events.map((event) => event.event)).to.deep.equal(['sent', 'open']);
      expect(events[0]).to.include({ email: 'a@example.com', CustomID: 'job-2', Payload: '{"k":1}', mj_message_id: id, customcampaign: '' });
      expect(events[0]?.Message_GUID).to.match(UUID_V4);
      expect(events[1]).to.include.keys('ip', 'geo', 'agent');
      expect(simulator.pendingEvents()).to.equal(0);
    });

    it('when the address contains "bounce", then only a hard bounce for user unknown is sent', async () => {
      const receiver = await startReceiver();
      const simulator = await startSimulator({ callbackUrl: receiver.url });
      await send(simulator, { Messages: [mailjetMessage('bounce-me@example.com', { HTMLPart: '<a href="https://example.com/">x</a>' })] });

      await simulator.flushEvents();

      const events = eventsOf(receiver.deliveries);
      expect(events).to.have.length(1);
      expect(events[0]).to.include({ event: 'bounce', hard_bounce: true, error_related_to: 'recipient', error: 'user unknown' });
      expect(simulator.messages[0]?.recipients[0]?.status).to.equal('hardbounced');
    });

    it('when grouped is false and the HTML has a link, then sent, open and click arrive one bare object per POST', async () => {
      const receiver = await startReceiver();
      const simulator = await startSimulator({ callbackUrl: receiver.url, grouped: false });
      await send(simulator, { Messages: [mailjetMessage('a@example.com', { HTMLPart: '<a href="https://example.com/offer">go</a>' })] });

      await simulator.flushEvents();

      const bodies = receiver.deliveries.map((delivery) => JSON.parse(delivery.body) as Record<string, unknown>);
      expect(bodies.map((body) => body.event)).to.deep.equal(['sent', 'open', 'click']);
      expect(bodies[2]).to.include({ url: 'https://example.com/offer' });
    });

    it('when the receiver answers anything but 200, then the events are delivered again on a later flush', async () => {
      const receiver = await startReceiver();
      receiver.answers.push(503);
      const simulator = await startSimulator({ callbackUrl: receiver.url });
      await send(simulator, { Messages: [mailjetMessage('a@example.com')] });

      await simulator.flushEvents();
      expect(simulator.pendingEvents()).to.equal(2);
      await simulator.flushEvents();

      expect(receiver.deliveries.map((delivery) => delivery.body)).to.have.length(2);
      expect(receiver.deliveries[1]?.body).to.equal(receiver.deliveries[0]?.body);
      expect(simulator.pendingEvents()).to.equal(0);
    });

    it('when 1,100 events are due at once, then they go out as grouped POSTs of at most 1,000, every one delivered', async () => {
      const receiver = await startReceiver();
      const simulator = await startSimulator({ callbackUrl: receiver.url });
      // 11 calls of 50 one-recipient messages without a link: sent and open each.
      for (let call = 0; call < 11; call++) {
        await send(simulator, { Messages: Array.from({ length: 50 }, (_, index) => mailjetMessage(`user${call}-${index}@example.com`)) });
      }

      await simulator.flushEvents();

      const sizes = receiver.deliveries.map((delivery) => (JSON.parse(delivery.body) as unknown[]).length);
      expect(sizes).to.deep.equal([1000, 100]);
      expect(simulator.pendingEvents()).to.equal(0);
    });

    it('when the first grouped POST of a backlog fails, then the rest is not posted to that URL in the same flush and all are retried', async () => {
      const receiver = await startReceiver();
      receiver.answers.push(500);
      const simulator = await startSimulator({ callbackUrl: receiver.url });
      for (let call = 0; call < 11; call++) {
        await send(simulator, { Messages: Array.from({ length: 50 }, (_, index) => mailjetMessage(`user${call}-${index}@example.com`)) });
      }

      await simulator.flushEvents();
      // The refused POST held the first 1,000; the other 100 waited with them.
      expect(receiver.deliveries.map((delivery) => (JSON.parse(delivery.body) as unknown[]).length)).to.deep.equal([1000]);
      expect(simulator.pendingEvents()).to.equal(1100);
      await simulator.flushEvents();

      expect(eventsOf(receiver.deliveries.slice(1))).to.have.length(1100);
      expect(simulator.pendingEvents()).to.equal(0);
    });

    it('when the flush timer runs, then due events arrive without flushEvents()', async () => {
      const receiver = await startReceiver();
      await startSimulator({ callbackUrl: receiver.url, flushIntervalMs: 10 }).then((simulator) =>
        send(simulator, { Messages: [mailjetMessage('a@example.com')] }),
      );

      // No deadline of its own: on a loaded machine the timer may run late; the test's timeout bounds the wait.
      while (eventsOf(receiver.deliveries).length < 2) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }

      expect(eventsOf(receiver.deliveries).map((event) => event.event)).to.have.members(['sent', 'open']);
    });
  });

  describe('close()', () => {
    it('when a call is held and a delivery hangs, then close() ends both and leaves no server, socket or timer', async () => {
      // After a turn, so mocha's own timeout timer for this test is in the baseline.
      await new Promise((resolve) => setImmediate(resolve));
      const before = process.getActiveResourcesInfo();
      const receiver = await startReceiver();
      receiver.answers.push(0);
      const simulator = createSimulator({ ...IMMEDIATE, flushIntervalMs: 10, callbackUrl: receiver.url });
      await simulator.listen(0);
      await send(simulator, { Messages: [mailjetMessage('a@example.com')] });
      simulator.faults.set({ nextCalls: ['timeout'] });
      const held = fetch(`${simulator.url}/v3.1/send`, { method: 'POST', body: JSON.stringify({ Messages: [mailjetMessage('b@example.com')] }) });
      const hanging = simulator.flushEvents();
      while (receiver.deliveries.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }

      await simulator.close();
      await receiver.close();

      const error = await held.then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      expect(error).to.be.instanceOf(TypeError);
      await hanging;
      expect(simulator.url).to.equal(undefined);
      await new Promise((resolve) => setImmediate(resolve));
      const count = (resources: string[], type: string): number => resources.filter((resource) => resource === type).length;
      const after = process.getActiveResourcesInfo();
      for (const type of ['TCPServerWrap', 'TCPSocketWrap', 'Timeout']) {
        expect(count(after, type), type).to.be.at.most(count(before, type));
      }
    });
  });
});
