// POST /queue and POST /events are served without express's router (http/direct-route.ts) when the
// request line is exactly "POST /queue" or "POST /events"; with a query string, express's router
// serves the same route. Each request here goes both ways and the two answers must be the same
// (status, headers, body), as must the request log line and the metrics they leave: the direct path
// is a shortcut, never another API.
import { expect } from 'chai';

import { messageTo } from '../factories.js';
import { capturingLogger } from '../support/log.js';
import { isolateNetwork, restoreNetwork } from '../support/mailjet-nock.js';
import { EVENTS_PASSWORD, EVENTS_USER, startTestService, type TestService } from '../support/service.js';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The request, named in a failure's diff. */
  what?: string;
}

/**
 * What may differ between two answers to the same request: the clock, and the ids of new jobs (an
 * answer that names none, as /events', is compared digit for digit but for its retry delay).
 */
function comparable(res: Response, body: string, ids: (text: string) => string = (text) => text.replace(/\d{1,20}/g, 'N')): Answer {
  const varying = new Set(['date', 'ratelimit', 'retry-after']);
  return {
    status: res.status,
    headers: Object.fromEntries([...res.headers].map(([name, value]) => [name, varying.has(name) ? name : ids(value)])),
    body: ids(body),
  };
}

/** An /events answer: no ids in it, only the retry delay of a 429 may vary. */
const callbackAnswer = (text: string) => text.replace(/retry in \d+ s/, 'retry in N s');

describe('the routes served directly answer as express serves them', function () {
  this.timeout(120_000);
  let service: TestService | undefined;

  beforeEach(() => isolateNetwork());
  afterEach(async () => {
    await service?.stop();
    service = undefined;
    restoreNetwork();
  });

  it('when the same requests go to /queue and to /queue? (an empty query string: POST /queue takes no parameter), then the answers, log lines and metrics are the same', async () => {
    const logs = capturingLogger('http');
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', QUEUE_BODY_LIMIT: '2kb', QUEUE_RATE_LIMIT: '22' }, log: logs.log });
    const json = { 'content-type': 'application/json' };
    type Way = 'direct' | 'express';
    // Each way its own Idempotency-Key: the second use of one is a replay, which is answered apart.
    const requests: Array<{ what: string; options: (way: Way) => Parameters<TestService['request']>[2] }> = [
      { what: 'one message', options: () => ({ body: messageTo('a@example.com') }) },
      { what: 'a bulk', options: () => ({ body: { messages: [messageTo('a@example.com'), messageTo('b@example.com')] } }) },
      { what: 'no key', options: () => ({ body: messageTo('a@example.com'), key: null }) },
      { what: 'an unknown key', options: () => ({ body: messageTo('a@example.com'), key: 'jp_unknown' }) },
      { what: 'text/plain', options: () => ({ rawBody: 'hello', headers: { 'content-type': 'text/plain' } }) },
      {
        what: 'a vendor JSON type',
        options: () => ({ rawBody: JSON.stringify(messageTo('a@example.com')), headers: { 'content-type': 'application/vnd.a+json' } }),
      },
      { what: 'an empty body', options: () => ({ rawBody: '', headers: json }) },
      { what: 'malformed JSON', options: () => ({ rawBody: '{"to":', headers: json }) },
      { what: 'a body over QUEUE_BODY_LIMIT', options: () => ({ body: messageTo('a@example.com', { text: 'x'.repeat(4096) }) }) },
      { what: 'a charset other than UTF-8', options: () => ({ rawBody: '{}', headers: { 'content-type': 'application/json; charset=iso-8859-1' } }) },
      { what: 'an invalid message', options: () => ({ body: { to: 'not an address' } }) },
      { what: 'an Idempotency-Key', options: (way) => ({ body: messageTo('a@example.com'), headers: { 'idempotency-key': `key-${way}` } }) },
      {
        what: 'the same Idempotency-Key with another body',
        options: (way) => ({ body: messageTo('b@example.com'), headers: { 'idempotency-key': `key-${way}` } }),
      },
    ];
    const answers: Record<Way, Answer[]> = { direct: [], express: [] };
    for (const { what, options } of requests) {
      for (const [way, path] of [
        ['direct', '/queue'],
        ['express', '/queue?'],
      ] as const) {
        const res = await service.request('POST', path, options(way));
        answers[way].push({ ...comparable(res, await res.text()), what });
      }
    }
    // The budget (22) is spent by now: both ways are refused alike.
    for (const [way, path] of [
      ['direct', '/queue'],
      ['express', '/queue?'],
    ] as const) {
      const res = await service.request('POST', path, { body: messageTo('a@example.com') });
      answers[way].push(comparable(res, await res.text()));
    }
    expect(answers.direct.map((answer) => answer.status)).to.deep.equal([202, 202, 401, 401, 415, 202, 400, 400, 413, 415, 400, 202, 409, 429]);
    expect(answers.express).to.deep.equal(answers.direct);

    // Every answer was logged as the route /queue, half of them each way: the lines come in pairs.
    const lines = logs
      .lines()
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line['component'] === 'http' && line['route'] === '/queue')
      .map((line) => `${String(line['method'])} ${String(line['status'])} ${String(line['app'])}`);
    expect(lines).to.have.length(answers.direct.length * 2);
    expect(lines.filter((_, index) => index % 2 === 0)).to.deep.equal(lines.filter((_, index) => index % 2 === 1));
    const metrics = await fetch(`${service.url}/metrics`).then((res) => res.text());
    expect(metrics).to.include('jetpost_http_requests_total{method="POST",route="/queue",status="202"} 8');
  });
  it('when the same callbacks go to /events and to /events?via=express, then the answers, log lines and metrics are the same', async () => {
    const logs = capturingLogger('http');
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', EVENTS_BODY_LIMIT: '2kb', EVENTS_RATE_LIMIT: '28' }, log: logs.log });
    type Way = 'direct' | 'express';
    const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    const callback = (headers: Record<string, string> = {}) => ({
      'content-type': 'application/json',
      authorization: basic(EVENTS_USER, EVENTS_PASSWORD),
      ...headers,
    });
    // Each way its own MessageIDs: the second copy of an event is a duplicate, which is answered apart.
    const event = (way: Way, n: number, extra = '') =>
      `{"event":"open","time":1700000000,"MessageID":${way === 'direct' ? 1 : 2}942177783514${String(n).padStart(4, '0')},"email":"a@example.com"${extra}}`;
    const requests: Array<{ what: string; options: (way: Way) => Parameters<TestService['request']>[2] }> = [
      { what: 'a group of events', options: (way) => ({ key: null, rawBody: `[${event(way, 1)},${event(way, 2)}]`, headers: callback() }) },
      { what: 'one event, not in an array', options: (way) => ({ key: null, rawBody: event(way, 3), headers: callback() }) },
      { what: 'the same events again', options: (way) => ({ key: null, rawBody: `[${event(way, 1)},${event(way, 2)}]`, headers: callback() }) },
      {
        what: 'an event with an escaped NUL in a field of its own, and a good one',
        options: (way) => ({ key: null, rawBody: `[${event(way, 4, ',"x":"\\u0000"')},${event(way, 5)}]`, headers: callback() }),
      },
      {
        what: 'a MessageID past 64 bits',
        options: () => ({
          key: null,
          rawBody: '[{"event":"open","time":1700000000,"MessageID":99999999999999999999999,"email":"a@b.c"}]',
          headers: callback(),
        }),
      },
      { what: 'no credentials', options: (way) => ({ key: null, rawBody: `[${event(way, 6)}]`, headers: { 'content-type': 'application/json' } }) },
      {
        what: 'a wrong password',
        options: (way) => ({ key: null, rawBody: `[${event(way, 7)}]`, headers: callback({ authorization: basic(EVENTS_USER, 'wrong') }) }),
      },
      { what: 'text/plain', options: (way) => ({ key: null, rawBody: `[${event(way, 8)}]`, headers: callback({ 'content-type': 'text/plain' }) }) },
      {
        what: 'JSON with a charset',
        options: (way) => ({ key: null, rawBody: `[${event(way, 9)}]`, headers: callback({ 'content-type': 'application/json; charset=utf-8' }) }),
      },
      {
        what: 'an unknown charset (read as UTF-8 all the same)',
        options: (way) => ({ key: null, rawBody: `[${event(way, 10)}]`, headers: callback({ 'content-type': 'application/json; charset=bogus' }) }),
      },
      {
        what: 'an unknown content encoding',
        options: (way) => ({ key: null, rawBody: `[${event(way, 13)}]`, headers: callback({ 'content-encoding': 'bogus' }) }),
      },
      { what: 'a byte order mark', options: (way) => ({ key: null, rawBody: `\uFEFF[${event(way, 11)}]`, headers: callback() }) },
      { what: 'malformed JSON', options: () => ({ key: null, rawBody: '[{"event":', headers: callback() }) },
      { what: 'an empty body', options: () => ({ key: null, rawBody: '', headers: callback() }) },
      { what: 'an empty array', options: () => ({ key: null, rawBody: '[]', headers: callback() }) },
      {
        what: 'a body over EVENTS_BODY_LIMIT',
        options: (way) => ({ key: null, rawBody: `[${event(way, 12, `,"Payload":"${'x'.repeat(4096)}"`)}]`, headers: callback() }),
      },
    ];
    const answers: Record<Way, Answer[]> = { direct: [], express: [] };
    for (const { what, options } of requests) {
      for (const [way, path] of [
        ['direct', '/events'],
        ['express', '/events?via=express'],
      ] as const) {
        const res = await service.request('POST', path, options(way));
        answers[way].push({ ...comparable(res, await res.text(), callbackAnswer), what });
      }
    }
    // The budget (28) is spent by now (the refused credentials spend none of it): both ways are refused alike.
    for (const [way, path] of [
      ['direct', '/events'],
      ['express', '/events?via=express'],
    ] as const) {
      const res = await service.request('POST', path, { key: null, rawBody: '[]', headers: callback() });
      answers[way].push(comparable(res, await res.text(), callbackAnswer));
    }
    expect(answers.direct.map((answer) => answer.status)).to.deep.equal([200, 200, 200, 200, 200, 401, 401, 200, 200, 200, 415, 200, 400, 400, 200, 413, 429]);
    expect(answers.express).to.deep.equal(answers.direct);
    const stored = await service.db.pool.query<{ n: number }>('select count(*)::int as n from email_events');
    // Nine each way, among them the one whose own field "x" holds a NUL (stored with it written as its escape).
    expect(stored.rows[0]!.n).to.equal(2 * 9);

    const lines = logs
      .lines()
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line['component'] === 'http' && line['route'] === '/events')
      .map((line) => `${String(line['method'])} ${String(line['status'])}`);
    expect(lines).to.have.length(answers.direct.length * 2);
    expect(lines.filter((_, index) => index % 2 === 0)).to.deep.equal(lines.filter((_, index) => index % 2 === 1));
    const metrics = await fetch(`${service.url}/metrics`).then((res) => res.text());
    expect(metrics).to.include('jetpost_http_requests_total{method="POST",route="/events",status="200"} 20');
  });
});
