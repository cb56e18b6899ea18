// POST /queue is served without express's router (http/direct-route.ts) when its request line is
// exactly "POST /queue"; with a query string, express's router serves the same route. Each request
// here goes both ways and the two answers must be the same (status, headers, body), as must the
// request log line and the metrics they leave: the direct path is a shortcut, never another API.
import { expect } from 'chai';

import { messageTo } from '../factories.js';
import { capturingLogger } from '../support/log.js';
import { isolateNetwork, restoreNetwork } from '../support/mailjet-nock.js';
import { startTestService, type TestService } from '../support/service.js';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The request, named in a failure's diff. */
  what?: string;
}

/** What may differ between two answers to the same request: the clock, and the ids of new jobs. */
function comparable(res: Response, body: string): Answer {
  const varying = new Set(['date', 'ratelimit', 'retry-after', 'etag']);
  const ids = (text: string) => text.replace(/\d{1,20}/g, 'N');
  return {
    status: res.status,
    headers: Object.fromEntries([...res.headers].map(([name, value]) => [name, varying.has(name) ? name : ids(value)])),
    body: ids(body),
  };
}

describe('POST /queue served directly answers as express serves it', function () {
  this.timeout(120_000);
  let service: TestService | undefined;

  beforeEach(() => isolateNetwork());
  afterEach(async () => {
    await service?.stop();
    service = undefined;
    restoreNetwork();
  });

  it('when the same requests go to /queue and to /queue?via=express, then the answers, log lines and metrics are the same', async () => {
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
        ['express', '/queue?via=express'],
      ] as const) {
        const res = await service.request('POST', path, options(way));
        answers[way].push({ ...comparable(res, await res.text()), what });
      }
    }
    // The budget (22) is spent by now: both ways are refused alike.
    for (const [way, path] of [
      ['direct', '/queue'],
      ['express', '/queue?via=express'],
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
});
