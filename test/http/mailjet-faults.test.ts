// How the consumers treat Mailjet's failures (nock): a 429 slows every consumer, a 401 stops sending
// without spending attempts, a timeout is reconciled by CustomID instead of sent twice, an expired
// lease is reaped, and a graceful stop releases what it did not send.
import { expect } from 'chai';
import nock from 'nock';

import { claimJobs } from '../../src/db/jobs-repo.js';
import { notify, notifyChannels } from '../../src/db/notify.js';
import { makeJob, messageTo } from '../factories.js';
import { dashboardClient } from '../support/dashboard-client.js';
import { TEST_SCHEMA } from '../support/database.js';
import { capturingLogger } from '../support/log.js';
import { eventText } from '../support/mailjet-events.js';
import { isolateNetwork, restoreNetwork, type SendCall, sendResponseText } from '../support/mailjet-nock.js';
import { ADMIN_KEY, eventually, MAILJET_TEST_ORIGIN, startTestService, type TestService } from '../support/service.js';

async function queue(service: TestService, addresses: string[], messages = addresses.map((to) => messageTo(to))): Promise<string[]> {
  const res = await service.request('POST', '/queue', { body: { messages } });
  expect(res.status).to.equal(202);
  return ((await res.json()) as { jobs: Array<{ job_id: string }> }).jobs.map((job) => job.job_id);
}

async function jobRows(
  service: TestService,
): Promise<Array<{ id: string; status: string; attempts: number; outcome_unknown: boolean; last_error: string | null }>> {
  const { rows } = await service.db.pool.query('select id::text, status, attempts, outcome_unknown, last_error from email_send_jobs order by id');
  return rows;
}

async function allAccepted(service: TestService, count: number): Promise<void> {
  await eventually(
    async () => {
      const rows = await jobRows(service);
      return rows.length === count && rows.every((row) => row.status === 'accepted') ? true : undefined;
    },
    15_000,
    `${count} jobs accepted`,
  );
}

const success = (call: SendCall) => sendResponseText(call).text;

describe('Mailjet failures (nock)', () => {
  let service: TestService;
  /** Runs after the service stops: a test that restarts the service on the same database drops it here. */
  let afterStop: (() => Promise<void>) | undefined;

  beforeEach(() => isolateNetwork());
  afterEach(async () => {
    await service?.stop();
    await afterStop?.();
    afterStop = undefined;
    restoreNetwork();
  });

  it('when Mailjet answers 429 with Retry-After, then no consumer of the process calls again before it has passed, and the throttled job keeps its attempt', async () => {
    const callStarts: number[] = [];
    /** Calls answered only once every consumer is in one, so that none is on its way when the 429 lands. */
    const held: Array<{ throttle: boolean; answer: () => void; customId: string }> = [];
    /** When the 429 was handed to the consumer (unset while the calls are held). */
    const pause: { throttledAt?: number } = {};
    type Reply = (error: Error | null, result: [number, string, Record<string, string>]) => void;
    nock(MAILJET_TEST_ORIGIN)
      .post('/v3.1/send')
      .reply((_uri: string, body: nock.Body, reply: Reply) => {
        callStarts.push(Date.now());
        const customId = (body as SendCall).Messages[0]!.CustomID;
        held.push({
          throttle: true,
          customId,
          answer: () => reply(null, [429, '<html><body>Too Many Requests</body></html>', { 'content-type': 'text/html', 'retry-after': '1' }]),
        });
      })
      .post('/v3.1/send')
      .times(10)
      .reply((_uri: string, body: nock.Body, reply: Reply) => {
        callStarts.push(Date.now());
        const answer = () => reply(null, [200, success(body as SendCall), { 'content-type': 'application/json' }]);
        if (pause.throttledAt === undefined) {
          held.push({ throttle: false, customId: (body as SendCall).Messages[0]!.CustomID, answer });
        } else {
          answer();
        }
      });
    // The held calls must not time out: this test is about the 429 alone.
    service = await startTestService({ env: { WORKER_CONCURRENCY: '3', BATCH_SIZE: '1', MAILJET_TIMEOUT_MS: '60000' } });

    await queue(service, ['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com']);
    await eventually(async () => (held.length === 3 ? true : undefined), 15_000, 'each of the 3 consumers in a call');
    const throttled = held.find((call) => call.throttle)!;
    const throttledAt = Date.now();
    pause.throttledAt = throttledAt;
    throttled.answer();
    // The consumer pauses the gate before it records the job deferred: once the row says so, the
    // pause is in force, and only then may the other consumers finish their calls and claim more.
    const throttledJob = throttled.customId.replace(/^jetpost-/, '');
    await eventually(
      async () => ((await jobRows(service)).find((row) => row.id === throttledJob)?.status === 'deferred' ? true : undefined),
      15_000,
      'the throttled job deferred',
    );
    for (const call of held.filter((candidate) => !candidate.throttle)) {
      call.answer();
    }
    await allAccepted(service, 4);

    // No call was on its way when the 429 came: none may start before Retry-After has passed.
    const later = callStarts.filter((at) => at > throttledAt);
    const startedDuringPause = later.filter((at) => at - throttledAt < 950);
    expect(startedDuringPause).to.deep.equal([]);
    // Mailjet sent nothing: the throttled job was sent again on the same attempt, as every other one.
    const rows = await jobRows(service);
    expect(rows.map((row) => row.attempts)).to.deep.equal([1, 1, 1, 1]);
  });

  it('when Mailjet answers 401, then sending stops, /readyz says why, and no attempt is spent', async () => {
    let calls = 0;
    nock(MAILJET_TEST_ORIGIN)
      .persist()
      .post('/v3.1/send')
      .reply(() => {
        calls += 1;
        return [
          401,
          '{"ErrorIdentifier":"x","ErrorCode":"mj-0015","StatusCode":401,"ErrorMessage":"API key authentication/authorization failure"}',
          { 'content-type': 'application/json' },
        ];
      });
    service = await startTestService({ env: { WORKER_CONCURRENCY: '3', BATCH_SIZE: '1' } });

    await queue(service, ['a@example.com', 'b@example.com', 'c@example.com']);
    const ready = await eventually(async () => {
      const res = await fetch(`${service.url}/readyz`);
      return res.status === 503 ? ((await res.json()) as { checks: { mailjet: { ok: boolean; detail: string } } }) : undefined;
    });
    // A consumer that claimed a job after the 401 holds it at the closed gate (its attempt counted
    // while it holds it); stopping releases what was not sent, so what is left is what the 401 did.
    await service.jetpost.stop();

    expect(ready.checks.mailjet.ok).to.equal(false);
    expect(ready.checks.mailjet.detail).to.contain('401');
    // Only the first call (and at most the calls already past the gate) reached Mailjet.
    expect(calls).to.be.at.most(3);
    const rows = await jobRows(service);
    expect(rows.every((row) => row.attempts === 0)).to.equal(true);
    expect(rows.filter((row) => row.status === 'deferred').length).to.equal(calls);
  });

  it('when a send times out but Mailjet did send it, then the next attempt finds it by CustomID and does not send it again', async () => {
    let sends = 0;
    let lookups = 0;
    let sentCall: SendCall | undefined;
    nock(MAILJET_TEST_ORIGIN)
      .post('/v3.1/send')
      .delay(1_500)
      .reply((_uri: string, body: nock.Body) => {
        sends += 1;
        sentCall = body as SendCall;
        return [200, success(sentCall), { 'content-type': 'application/json' }];
      })
      .get('/v3/REST/message')
      .query(true)
      .reply((uri: string) => {
        lookups += 1;
        const customId = new URL(uri, MAILJET_TEST_ORIGIN).searchParams.get('CustomID');
        expect(customId).to.equal(sentCall?.Messages[0]?.CustomID);
        return [
          200,
          `{"Count":1,"Data":[{"ID":576460765503099999,"UUID":"u-timeout","CustomID":"${customId}","ContactAlt":"slow@example.com","Status":"sent"}],"Total":1}`,
          { 'content-type': 'application/json' },
        ];
      });
    service = await startTestService({ env: { MAILJET_TIMEOUT_MS: '500', WORKER_CONCURRENCY: '1' } });

    const [jobId] = await queue(service, ['slow@example.com']);
    await allAccepted(service, 1);

    expect(sends).to.equal(1);
    expect(lookups).to.equal(1);
    const view = (await (await service.request('GET', `/status/${jobId}`)).json()) as { attempts: number; recipients: Array<{ message_id: string }> };
    expect(view.recipients[0]!.message_id).to.equal('576460765503099999');
    expect((await jobRows(service))[0]!.outcome_unknown).to.equal(false);
  });

  it('when a send got a 5xx and Mailjet did send it, then the app cannot cancel the deferred job (409, saying why) and it ends accepted, not cancelled', async () => {
    let sends = 0;
    nock(MAILJET_TEST_ORIGIN)
      .post('/v3.1/send')
      .reply(() => {
        sends += 1;
        return [500, '{"ErrorMessage":"Internal Server Error"}', { 'content-type': 'application/json' }];
      })
      .get('/v3/REST/message')
      .query(true)
      .reply((uri: string) => {
        const customId = new URL(uri, MAILJET_TEST_ORIGIN).searchParams.get('CustomID');
        return [
          200,
          `{"Count":1,"Data":[{"ID":576460765503099998,"UUID":"u-500","CustomID":"${customId}","ContactAlt":"maybe@example.com","Status":"sent"}],"Total":1}`,
          { 'content-type': 'application/json' },
        ];
      });
    // The retry waits long enough for the cancel to find the job deferred.
    service = await startTestService({ env: { WORKER_CONCURRENCY: '1', RETRY_BASE_MS: '600000', RETRY_JITTER: '0' } });
    const [jobId] = await queue(service, ['maybe@example.com']);
    await eventually(async () => ((await jobRows(service))[0]?.status === 'deferred' ? true : undefined), 15_000, 'the job deferred after the 500');

    const cancel = await service.request('DELETE', `/queue/${jobId}`);

    expect(cancel.status).to.equal(409);
    const problem = (await cancel.json()) as { type: string; detail: string };
    expect(problem.type).to.equal('https://jetpost.dev/problems/job-not-cancellable');
    expect(problem.detail).to.contain('Mailjet may already have it');
    expect((await jobRows(service))[0]).to.deep.include({ status: 'deferred', outcome_unknown: true });
    // Due now: its look-up finds what Mailjet did with it.
    await service.db.pool.query('update email_send_jobs set run_at = now() where id = $1', [jobId]);
    await notify(service.db.pool, notifyChannels(TEST_SCHEMA).jobs);
    await allAccepted(service, 1);
    expect(sends).to.equal(1);
  });

  for (const [what, baseUrl] of [
    ['nothing listens on its port (a real closed port)', 'http://127.0.0.1:1'],
    ["its host name does not resolve (a real DNS look-up of a '.invalid' name)", 'https://api.mailjet.invalid'],
  ] as const) {
    it(`when Mailjet cannot be reached because ${what}, then the job is retried without a look-up and fails saying it was never sent`, async () => {
      // Real connections: the closed port and the resolver answer, not nock.
      nock.enableNetConnect(/^(127\.0\.0\.1|api\.mailjet\.invalid):\d+$/);
      service = await startTestService({ env: { MAILJET_BASE_URL: baseUrl, MAX_ATTEMPTS: '2', WORKER_CONCURRENCY: '1' } });

      await queue(service, ['nowhere@example.com']);
      const row = await eventually(async () => (await jobRows(service)).find((job) => job.status === 'failed'), 15_000, 'the job failed');

      expect(row.attempts).to.equal(2);
      expect(row.outcome_unknown).to.equal(false);
      expect(row.last_error).to.match(/^gave up after 2 attempts: Mailjet unreachable \((ECONNREFUSED|ENOTFOUND|EAI_AGAIN)\): never sent: /);
      const metrics = await (await service.request('GET', '/metrics', { key: null })).text();
      // Nothing to look up: the calls never left.
      expect(metrics).not.to.match(/^jetpost_mailjet_lookups_total\{/m);
      expect(metrics).to.match(/^jetpost_mailjet_requests_total\{class="network"\} 2$/m);
    });
  }

  it("when the database refuses a call's results for their data (a MessageUUID a constraint refuses), then each job gets its own or a minimal record, a reason with NUL is kept escaped and cut, and the consumer goes on", async () => {
    const calls: SendCall[] = [];
    nock(MAILJET_TEST_ORIGIN)
      .post('/v3.1/send')
      .reply((_uri: string, body: nock.Body) => {
        const call = body as SendCall;
        calls.push(call);
        // A hostile answer: a long reason with NUL, escaped and cut before it is stored, and a MessageUUID
        // that the check added below refuses (SQLSTATE 23514), standing in for whatever the database may
        // still refuse once Mailjet's answer is checked (a NUL in a MessageUUID is: see below).
        const [good, , oddUuid] = call.Messages.map((message) => message.CustomID);
        return [
          400,
          `{"Messages":[` +
            `{"Status":"success","CustomID":"${good}","To":[{"Email":"good@example.com","MessageUUID":"u-good","MessageID":576460765503090001}]},` +
            `{"Status":"error","Errors":[{"ErrorCode":"mj-0013","StatusCode":400,"ErrorMessage":"bad\\u0000reason ${'x'.repeat(5000)}","ErrorRelatedTo":["To[0].Email"]}]},` +
            `{"Status":"success","CustomID":"${oddUuid}","To":[{"Email":"odd@example.com","MessageUUID":"u-refused","MessageID":576460765503090003}]}]}`,
          { 'content-type': 'application/json' },
        ];
      })
      .post('/v3.1/send')
      .reply((_uri: string, body: nock.Body) => {
        calls.push(body as SendCall);
        return [200, success(body as SendCall), { 'content-type': 'application/json' }];
      });
    const { log, lines } = capturingLogger('warn');
    service = await startTestService({ log, env: { WORKER_CONCURRENCY: '1' } });
    await service.db.pool.query("alter table email_recipients add constraint refuses_one_uuid check (mailjet_message_uuid <> 'u-refused')");

    const [good, refused, oddUuid] = await queue(service, ['good@example.com', 'refused@example.com', 'odd@example.com']);
    await eventually(async () => ((await jobRows(service)).every((row) => row.status === 'accepted' || row.status === 'failed') ? true : undefined), 15_000);
    const [later] = await queue(service, ['later@example.com']);
    await eventually(async () => ((await jobRows(service)).find((row) => row.id === later)?.status === 'accepted' ? true : undefined), 15_000);

    expect(calls.map((call) => call.Messages.length)).to.deep.equal([3, 1]);
    const rows = new Map((await jobRows(service)).map((row) => [row.id, row]));
    expect(rows.get(good!)).to.deep.include({ status: 'accepted', last_error: null });
    expect(rows.get(oddUuid!)).to.deep.include({ status: 'accepted', outcome_unknown: false });
    expect(rows.get(refused!)).to.deep.include({ status: 'failed', outcome_unknown: false });
    const refusedError = rows.get(refused!)!.last_error!;
    expect(refusedError.startsWith('mj-0013: bad\\u0000reason xxx')).to.equal(true);
    expect(refusedError).to.have.length(2001).and.match(/x…$/);
    const { rows: recipients } = await service.db.pool.query(
      'select job_id::text, status, mailjet_message_id::text as message_id, mailjet_message_uuid as message_uuid from email_recipients order by job_id',
    );
    expect(recipients.slice(0, 3)).to.deep.equal([
      { job_id: good, status: 'accepted', message_id: '576460765503090001', message_uuid: 'u-good' },
      { job_id: refused, status: 'failed', message_id: null, message_uuid: null },
      { job_id: oddUuid, status: 'accepted', message_id: '576460765503090003', message_uuid: null },
    ]);
    const errors = lines()
      .map((line) => JSON.parse(line) as { level: string; message: string; jobs?: string[]; error?: string })
      .filter((line) => line.level === 'error');
    expect(errors.map((line) => [line.message.split(';')[0], line.jobs])).to.deep.equal([
      ["the database refused this job's accepted result for its data", [oddUuid]],
    ]);
  });

  for (const [what, entry, found] of [
    ['a MessageID that is not a number', (email: string) => `{"Email":"${email}","MessageUUID":"u-1","MessageID":"abc"}`, true],
    ['a MessageID above 2^63-1', (email: string) => `{"Email":"${email}","MessageUUID":"u-1","MessageID":9223372036854775808}`, true],
    ["SandboxMode's MessageID 0 to a call not in SandboxMode", (email: string) => `{"Email":"${email}","MessageUUID":"","MessageID":0}`, true],
    ['an address that matches none sent', () => '{"Email":"someone-else@example.com","MessageUUID":"u-1","MessageID":576460765503091111}', false],
  ] as const) {
    it(`when Mailjet answers success with ${what}, then the job is never sent again: it is looked up by CustomID${found ? ' and gets the real MessageID' : ', and fails explained when the look-up does not find it'}`, async () => {
      let sends = 0;
      let lookups = 0;
      nock(MAILJET_TEST_ORIGIN)
        .post('/v3.1/send')
        .times(5)
        .reply((_uri: string, body: nock.Body) => {
          sends += 1;
          const message = (body as SendCall).Messages[0]!;
          return [
            200,
            `{"Messages":[{"Status":"success","CustomID":"${message.CustomID}","To":[${entry(message.To[0]!.Email)}],"Cc":[],"Bcc":[]}]}`,
            { 'content-type': 'application/json' },
          ];
        })
        .get('/v3/REST/message')
        .query(true)
        .times(5)
        .reply((uri: string) => {
          lookups += 1;
          const customId = new URL(uri, MAILJET_TEST_ORIGIN).searchParams.get('CustomID');
          const data = found ? `[{"ID":576460765503092222,"UUID":"u-found","CustomID":"${customId}","ContactAlt":"odd@example.com","Status":"sent"}]` : '[]';
          return [200, `{"Count":${found ? 1 : 0},"Data":${data},"Total":${found ? 1 : 0}}`, { 'content-type': 'application/json' }];
        });
      service = await startTestService({ env: { WORKER_CONCURRENCY: '1', MAX_ATTEMPTS: '3' } });

      const [jobId] = await queue(service, ['odd@example.com']);
      const row = await eventually(async () => (await jobRows(service)).find((job) => job.status === 'accepted' || job.status === 'failed'), 15_000);

      expect(sends).to.equal(1);
      expect(lookups).to.equal(1);
      const view = (await (await service.request('GET', `/status/${jobId}`)).json()) as { recipients: Array<{ message_id: string | null; status: string }> };
      if (found) {
        expect(row).to.deep.include({ status: 'accepted', outcome_unknown: false });
        expect(view.recipients[0]).to.deep.include({ message_id: '576460765503092222', status: 'accepted' });
      } else {
        expect(row).to.deep.include({ status: 'failed', outcome_unknown: true });
        expect(row.last_error).to.equal(
          'Mailjet accepted it, but its answer names an address that matches none sent: it is looked up by CustomID for its MessageIDs, never sent again; ' +
            "the look-up did not find it, so its recipients' ids are unknown: it may well have been delivered (a re-queue looks it up first)",
        );
      }
    });
  }

  it('when Mailjet refuses a call of several messages as too large (413, an HTML page), then they go again in smaller calls, in the same attempt; one message alone that large fails', async () => {
    const calls: string[][] = [];
    nock(MAILJET_TEST_ORIGIN)
      .persist()
      .post('/v3.1/send')
      .reply((_uri: string, body: nock.Body) => {
        const call = body as SendCall;
        calls.push(call.Messages.map((message) => message.To[0]!.Email));
        // As a proxy on the way might: no body of more than two messages, and none to huge@.
        return call.Messages.length > 2 || call.Messages.some((message) => message.To[0]!.Email === 'huge@example.com')
          ? [413, '<html><body><h1>413 Request Entity Too Large</h1></body></html>', { 'content-type': 'text/html' }]
          : [200, success(call), { 'content-type': 'application/json' }];
      });
    service = await startTestService({ env: { WORKER_CONCURRENCY: '1' } });

    const addresses = ['a@example.com', 'b@example.com', 'c@example.com', 'huge@example.com', 'd@example.com'];
    await queue(service, addresses);
    const rows = await eventually(
      async () => {
        const found = await jobRows(service);
        return found.length === 5 && found.every((row) => row.status === 'accepted' || row.status === 'failed') ? found : undefined;
      },
      15_000,
      'every job settled',
    );

    expect(rows.map((row) => [row.status, row.attempts])).to.deep.equal([
      ['accepted', 1],
      ['accepted', 1],
      ['accepted', 1],
      ['failed', 1],
      ['accepted', 1],
    ]);
    expect(rows[3]!.last_error).to.equal('Mailjet 413: Request failed with status code 413: the message is larger than Mailjet takes');
    expect(calls).to.deep.equal([
      addresses,
      addresses.slice(0, 3),
      addresses.slice(0, 2),
      addresses.slice(2, 3),
      addresses.slice(3),
      ['huge@example.com'],
      ['d@example.com'],
    ]);
  });

  it('when a consumer died holding a job, then the reaper returns it, marked unsure, and it is sent after a look-up', async () => {
    let lookups = 0;
    nock(MAILJET_TEST_ORIGIN)
      .get('/v3/REST/message')
      .query(true)
      .reply(() => {
        lookups += 1;
        return [200, '{"Count":0,"Data":[],"Total":0}', { 'content-type': 'application/json' }];
      })
      .post('/v3.1/send')
      .reply((_uri: string, body: nock.Body) => [200, success(body as SendCall), { 'content-type': 'application/json' }]);
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', LEASE_MS: '1000' } });
    await queue(service, ['orphan@example.com']);
    // A "consumer" of a process that then died: it claims with a short lease and never comes back.
    const [claimed] = await claimJobs(service.db.pool, 'dead-process/0', 1, 200);
    expect(claimed?.status).to.equal('processing');
    const first = service;
    await first.jetpost.stop();
    afterStop = () => first.stop();

    service = await startTestService({ db: first.db, env: { WORKER_CONCURRENCY: '1', LEASE_MS: '1000' } });
    await allAccepted(service, 1);

    expect(lookups).to.equal(1);
    const [row] = await jobRows(service);
    expect(row!.attempts).to.equal(2);
  });

  it('when a consumer died holding a job on its last attempt, then the reaper returns it to be looked up, and Mailjet having it, it is accepted, not failed or sent again', async () => {
    let sends = 0;
    const messageId = '576460765503091475';
    nock(MAILJET_TEST_ORIGIN)
      .persist()
      .get('/v3/REST/message')
      .query(true)
      .reply((uri: string) => {
        const customId = new URL(uri, MAILJET_TEST_ORIGIN).searchParams.get('CustomID');
        return [200, `{"Count":1,"Data":[{"ID":${messageId},"UUID":"u-1","CustomID":"${customId}","ContactAlt":"last-try@example.com"}],"Total":1}`];
      })
      .post('/v3.1/send')
      .reply((_uri: string, body: nock.Body) => {
        sends += 1;
        return [200, success(body as SendCall), { 'content-type': 'application/json' }];
      });
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', LEASE_MS: '1000', MAX_ATTEMPTS: '1' } });
    await queue(service, ['last-try@example.com']);
    // Its only attempt: the process sent it (Mailjet has it) and died before recording the answer.
    const [claimed] = await claimJobs(service.db.pool, 'dead-process/0', 1, 200);
    expect([claimed?.attempts, claimed?.maxAttempts]).to.deep.equal([1, 1]);
    const first = service;
    await first.jetpost.stop();
    afterStop = () => first.stop();

    service = await startTestService({ db: first.db, env: { WORKER_CONCURRENCY: '1', LEASE_MS: '1000', MAX_ATTEMPTS: '1' } });
    await allAccepted(service, 1);

    expect(sends, 'calls to Mailjet').to.equal(0);
    const [row] = await jobRows(service);
    expect(row!.attempts).to.equal(1);
    const { rows } = await service.db.pool.query('select mailjet_message_id::text as id from email_recipients');
    expect(rows).to.deep.equal([{ id: messageId }]);
  });

  /** Mailjet answers a send with a 500 (its outcome unknown), then the look-ups as `lookUps` say, in turn, each once. */
  function failedSendThenLookUps(lookUps: Array<(scope: nock.Interceptor) => nock.Scope>): { sends: () => number; lookUps: () => number } {
    let sends = 0;
    let asked = 0;
    nock(MAILJET_TEST_ORIGIN)
      .post('/v3.1/send')
      .reply(() => {
        sends += 1;
        return [500, '{"ErrorMessage":"Internal Server Error"}', { 'content-type': 'application/json' }];
      });
    for (const answer of lookUps) {
      answer(
        nock(MAILJET_TEST_ORIGIN)
          .get('/v3/REST/message')
          .query(() => {
            asked += 1;
            return true;
          }),
      );
    }
    return { sends: () => sends, lookUps: () => asked };
  }

  const found = (email: string) => (scope: nock.Interceptor) =>
    scope.reply((uri: string) => {
      const customId = new URL(uri, MAILJET_TEST_ORIGIN).searchParams.get('CustomID');
      return [200, `{"Count":1,"Data":[{"ID":576460765503099997,"UUID":"u-back","CustomID":"${customId}","ContactAlt":"${email}"}],"Total":1}`];
    });
  const unanswered503 = (scope: nock.Interceptor) => scope.reply(503, '<html><body>Service Unavailable</body></html>', { 'content-type': 'text/html' });

  it("when Mailjet's look-ups fail (5xx, an HTML page, a timeout, a reset) more times than the job has attempts, then they spend none, nothing is sent on them, and the job is accepted once a look-up answers", async () => {
    const mailjet = failedSendThenLookUps([
      unanswered503,
      (scope) => scope.reply(500, '{"ErrorIdentifier":"x"}', { 'content-type': 'application/json' }),
      (scope) => scope.reply(200, '<html>maintenance</html>', { 'content-type': 'text/html' }),
      (scope) => scope.delay(2_000).reply(200, '{"Count":0,"Data":[],"Total":0}'),
      (scope) => scope.replyWithError({ code: 'ECONNRESET', message: 'socket hang up' }),
      unanswered503,
      found('outage@example.com'),
    ]);
    service = await startTestService({
      env: { WORKER_CONCURRENCY: '1', MAX_ATTEMPTS: '2', RETRY_BASE_MS: '20', RETRY_MAX_MS: '100', RETRY_JITTER: '0', MAILJET_TIMEOUT_MS: '500' },
    });

    const [jobId] = await queue(service, ['outage@example.com']);
    const row = await eventually(
      async () => (await jobRows(service)).find((job) => job.status === 'accepted' || job.status === 'failed'),
      30_000,
      'the job settled',
    );

    expect(row, row.last_error ?? '').to.deep.include({ id: jobId, status: 'accepted', attempts: 2, outcome_unknown: false });
    expect(mailjet.sends(), 'sends').to.equal(1);
    expect(mailjet.lookUps(), 'look-ups').to.equal(7);
    const { rows } = await service.db.pool.query('select lookup_failing_since from email_send_jobs');
    expect(rows).to.deep.equal([{ lookup_failing_since: null }]);
  });

  it("when Mailjet's look-up fails, then the job waits deferred, and /status and the dashboard say why and until when; a job whose look-ups stay unanswered past LOOKUP_RETRY_WINDOW_MS ends failed, outcome unknown, never sent again", async () => {
    const mailjet = failedSendThenLookUps([unanswered503, unanswered503, unanswered503]);
    service = await startTestService({
      env: { WORKER_CONCURRENCY: '1', MAX_ATTEMPTS: '5', RETRY_BASE_MS: '600000', RETRY_JITTER: '0', LOOKUP_RETRY_WINDOW_MS: '60000' },
    });
    const [jobId] = await queue(service, ['window@example.com']);
    const due = async () => {
      await service.db.pool.query('update email_send_jobs set run_at = now() where id = $1', [jobId]);
      await notify(service.db.pool, notifyChannels(TEST_SCHEMA).jobs);
    };
    await eventually(async () => ((await jobRows(service))[0]?.status === 'deferred' ? true : undefined), 15_000, 'deferred after the 500');
    await due();
    await eventually(async () => (mailjet.lookUps() === 1 && (await jobRows(service))[0]?.status === 'deferred' ? true : undefined), 15_000, 'the look-up');

    const view = (await (await service.request('GET', `/status/${jobId}`)).json()) as { status: string; attempts: number; last_error: string };
    expect(view).to.deep.include({ status: 'deferred', attempts: 1 });
    expect(view.last_error).to.match(
      /^Mailjet 500: .*; its look-up by CustomID has not been answered since \S+ \(Mailjet 503.*\): it is looked up again, never sent before a look-up answers, and given up on \(outcome unknown\) if none has by \S+$/,
    );
    const dashboard = await dashboardClient(service);
    expect((await dashboard.get(`/dashboard/jobs/${jobId}`)).text).to.contain('has not been answered since');

    // A second unanswered look-up within the window keeps the first one's time.
    await due();
    await eventually(async () => (mailjet.lookUps() === 2 && (await jobRows(service))[0]?.status === 'deferred' ? true : undefined), 15_000, 'the 2nd look-up');
    const since = async () => (await service.db.pool.query('select lookup_failing_since from email_send_jobs')).rows[0].lookup_failing_since as Date;
    const first = await since();
    expect((await jobRows(service))[0]!.last_error).to.contain(`since ${first.toISOString()} `);
    // Past the window, the next unanswered look-up gives up on it.
    await service.db.pool.query("update email_send_jobs set lookup_failing_since = lookup_failing_since - interval '1 minute'");
    await due();
    const row = await eventually(async () => (await jobRows(service)).find((job) => job.status === 'failed'), 15_000, 'failed past the window');

    expect(row).to.deep.include({ outcome_unknown: true, attempts: 2 });
    expect(row.last_error).to.match(
      /could not be asked, so it may have been delivered: Mailjet 500: .*has not been answered since \S+ \(Mailjet 503.*\), LOOKUP_RETRY_WINDOW_MS and more$/,
    );
    expect(mailjet.sends(), 'sends').to.equal(1);
    expect(mailjet.lookUps()).to.equal(3);
  });

  it('when the service stops while a batch is being sent, then the call in flight is recorded and the rest is released unsent', async () => {
    let callsReceived = 0;
    nock(MAILJET_TEST_ORIGIN)
      .persist()
      .post('/v3.1/send')
      .delay(800)
      .reply((_uri: string, body: nock.Body) => {
        // nock calls this when the request arrives; the answer goes out 800 ms later.
        callsReceived += 1;
        return [200, success(body as SendCall), { 'content-type': 'application/json' }];
      });
    service = await startTestService({ env: { WORKER_CONCURRENCY: '1' } });
    // Three jobs of 30 recipients: one batch, three calls (50 recipients at most per call).
    const res = await service.request('POST', '/queue', {
      body: {
        messages: [0, 1, 2].map((i) => messageTo(`a${i}@example.com`, { cc: Array.from({ length: 29 }, (_, j) => `cc${i}-${j}@example.com`) })),
      },
    });
    expect(res.status).to.equal(202);
    // Stop once the first call is in flight: a stop between the claim and the call (a loaded machine
    // is slow there) would rightly release all three unsent, which is not what this test is about.
    await eventually(async () => (callsReceived > 0 ? true : undefined));

    await service.jetpost.stop();

    const rows = await jobRows(service);
    expect(rows.map((row) => row.status)).to.deep.equal(['accepted', 'queued', 'queued']);
    expect(rows.map((row) => row.attempts)).to.deep.equal([1, 0, 0]);
  });
});

describe('acceptances whose ids do not cover every row (nock)', () => {
  let service: TestService;

  beforeEach(() => isolateNetwork());
  afterEach(async () => {
    await service?.stop();
    restoreNetwork();
  });

  type View = { status: string; last_error: string | null; recipients: Array<{ email: string; status: string; message_id: string | null }> };
  const view = async (jobId: string) => (await (await service.request('GET', `/status/${jobId}`)).json()) as View;
  const recipientsOf = (found: View) => found.recipients.map((r) => [r.email, r.status, r.message_id]);

  /**
   * A send that times out (Mailjet took it), then look-ups answering `lookUps[n]` (the last one from
   * then on) as the addresses Mailjet has, each address with its own MessageID (numbered as first seen).
   */
  function timeoutThenLookUps(lookUps: string[][]): { sends: () => number; lookups: () => number } {
    let sends = 0;
    let lookups = 0;
    const ids = new Map<string, string>();
    const idOf = (email: string) => ids.get(email) ?? ids.set(email, `57646076550309${String(ids.size).padStart(4, '0')}`).get(email)!;
    nock(MAILJET_TEST_ORIGIN)
      .post('/v3.1/send')
      .delay(1_500)
      .reply((_uri: string, body: nock.Body) => {
        sends += 1;
        return [200, success(body as SendCall), { 'content-type': 'application/json' }];
      })
      .get('/v3/REST/message')
      .query(true)
      .times(10)
      .reply((uri: string) => {
        const customId = new URL(uri, MAILJET_TEST_ORIGIN).searchParams.get('CustomID');
        const emails = lookUps[Math.min(lookups, lookUps.length - 1)]!;
        lookups += 1;
        const data = emails.map((email) => ({
          ID: idOf(email),
          UUID: `u-${email}`,
          CustomID: customId,
          ContactAlt: email,
        }));
        const text = JSON.stringify({ Count: data.length, Data: data, Total: data.length }).replace(/"ID":"(\d+)"/g, '"ID":$1');
        return [200, text, { 'content-type': 'application/json' }];
      });
    return { sends: () => sends, lookups: () => lookups };
  }

  /**
   * Mailjet answering each send (after `sendDelayMs`) and each look-up by CustomID with `messageId`
   * for the message's one recipient; a look-up names `lookedUpEmail`.
   */
  function givingMessageId(
    messageId: string,
    { sendDelayMs = 0, lookedUpEmail }: { sendDelayMs?: number; lookedUpEmail: string },
  ): { sends: () => number; lookups: () => number } {
    let sends = 0;
    let lookups = 0;
    nock(MAILJET_TEST_ORIGIN)
      .post('/v3.1/send')
      .times(3)
      .delay(sendDelayMs)
      .reply((_uri: string, body: nock.Body) => {
        sends += 1;
        const message = (body as SendCall).Messages[0]!;
        const email = message.To[0]!.Email;
        return [
          200,
          `{"Messages":[{"Status":"success","CustomID":"${message.CustomID}","To":[{"Email":"${email}","MessageUUID":"u-${email}","MessageID":${messageId}}],"Cc":[],"Bcc":[]}]}`,
          { 'content-type': 'application/json' },
        ];
      })
      .get('/v3/REST/message')
      .query(true)
      .times(5)
      .reply((uri: string) => {
        lookups += 1;
        const customId = new URL(uri, MAILJET_TEST_ORIGIN).searchParams.get('CustomID');
        return [
          200,
          `{"Count":1,"Data":[{"ID":${messageId},"UUID":"u-${lookedUpEmail}","CustomID":"${customId}","ContactAlt":"${lookedUpEmail}"}],"Total":1}`,
          { 'content-type': 'application/json' },
        ];
      });
    return { sends: () => sends, lookups: () => lookups };
  }

  /** POST /queue refuses an address given twice (400): such rows can only be written around it, as here. */
  async function jobWithAddressTwice(kinds: ['to', 'to' | 'cc']): Promise<string> {
    const jobId = await makeJob(service.db.pool, { appId: service.appId, to: ['twice@example.com', 'Twice@example.com'] });
    await service.db.pool.query('update email_recipients set kind = $2 where id = (select max(id) from email_recipients where job_id = $1)', [jobId, kinds[1]]);
    await notify(service.db.pool, notifyChannels(TEST_SCHEMA).jobs);
    return jobId;
  }

  const settled = (jobId: string) =>
    eventually(
      async () => {
        const found = await view(jobId);
        return found.status === 'processing' || found.status === 'deferred' || found.status === 'queued' ? undefined : found;
      },
      15_000,
      'the job settled',
    );

  it("when Mailjet gives a job a MessageID another job's recipient holds, then it is not bound twice: its events keep reaching the first, an error says so, and the second is looked up, never resent, and ends failed saying why", async () => {
    const taken = '576460765503098888';
    // Mailjet's index gives the same id again.
    const mailjet = givingMessageId(taken, { lookedUpEmail: 'second@example.com' });
    const { log, lines } = capturingLogger('warn');
    service = await startTestService({ env: { WORKER_CONCURRENCY: '1' }, log });
    const [first] = await queue(service, ['first@example.com']);
    expect((await settled(first!)).status).to.equal('accepted');

    const [second] = await queue(service, ['second@example.com']);
    const found = await settled(second!);

    expect([mailjet.sends(), mailjet.lookups()], 'sends, look-ups').to.deep.equal([2, 1]);
    expect(found.status).to.equal('failed');
    expect(found.last_error).to.equal(
      `Mailjet accepted it, but its answer gives MessageID ${taken} (held by job ${first}) that a recipient of another job holds already: ` +
        'it stays with that recipient, so second@example.com cannot have it; their outcome is unknown (they may well have been delivered) and no event can reach them',
    );
    expect(recipientsOf(found)).to.deep.equal([['second@example.com', 'failed', null]]);
    const { rows } = await service.db.pool.query<{ outcome_unknown: boolean }>('select outcome_unknown from email_send_jobs where id = $1', [second]);
    expect(rows[0]!.outcome_unknown, 'a re-queue looks it up first').to.equal(true);
    const errors = lines().filter((line) => line.includes('hold already'));
    expect(errors, 'error lines').to.have.length(2);
    expect(JSON.parse(errors[0]!)).to.deep.include({ level: 'error', held: [{ job: second, messageId: taken, heldByJob: first }] });

    // Its events reach the job that had it first.
    expect((await service.postEvents(`[${eventText('sent', taken, 'first@example.com', 1_764_000_000)}]`)).status).to.equal(200);
    expect(recipientsOf(await view(first!))).to.deep.equal([['first@example.com', 'sent', taken]]);
    expect((await view(second!)).status).to.equal('failed');
  });

  for (const how of ['its answer gives', 'the send times out and its look-up gives'] as const) {
    it(`when ${how} a MessageID past 2^63-1, then it is sent once, never again, and ends failed, outcome unknown, saying why`, async () => {
      const huge = '18446744073709551615';
      const mailjet = givingMessageId(huge, { sendDelayMs: how === 'its answer gives' ? 0 : 1_500, lookedUpEmail: 'big@example.com' });
      service = await startTestService({ env: { MAILJET_TIMEOUT_MS: '500', WORKER_CONCURRENCY: '1' } });
      const [jobId] = await queue(service, ['big@example.com']);

      const found = await settled(jobId!);
      expect(mailjet.sends(), 'sends').to.equal(1);
      expect(mailjet.lookups(), 'look-ups').to.equal(how === 'its answer gives' ? 1 : 2);
      expect(found.status).to.equal('failed');
      expect(found.last_error).to.equal(
        `Mailjet has the message, but its look-up gives MessageID ${huge}, past 2^63-1, the largest jetpost stores: it may well have been delivered, and no event can reach it`,
      );
      expect(recipientsOf(found)).to.deep.equal([['big@example.com', 'failed', null]]);
      const { rows } = await service.db.pool.query<{ outcome_unknown: boolean }>('select outcome_unknown from email_send_jobs where id = $1', [jobId]);
      expect(rows[0]!.outcome_unknown, 'a re-queue looks it up first').to.equal(true);
    });
  }

  // Dropped as "no usable id", such a row made the job look unsent, and it was sent again: a row
  // under the job's own CustomID says Mailjet took it, whatever its ID.
  // A number past 2^53 not written as an integer has lost digits: the error shows it in exponent form.
  for (const [id, shown] of [
    ['-5', '-5'],
    ['18446744073709551616', '18446744073709551616'],
    ['5.764607655030915e17', '5.764607655030915e+17'],
    ['"576460765503090000x"', '576460765503090000x'],
    ['null', 'null'],
  ] as const) {
    it(`when the send times out and its look-up gives the job's CustomID with MessageID ${id}, then it is sent once, never again, and ends failed, outcome unknown`, async () => {
      const mailjet = givingMessageId(id, { sendDelayMs: 1_500, lookedUpEmail: 'odd-id@example.com' });
      service = await startTestService({ env: { MAILJET_TIMEOUT_MS: '500', WORKER_CONCURRENCY: '1' } });
      const [jobId] = await queue(service, ['odd-id@example.com']);

      const found = await settled(jobId!);
      expect(mailjet.sends(), 'sends').to.equal(1);
      expect(found.status).to.equal('failed');
      expect(found.last_error).to.equal(
        `Mailjet has the message, but its look-up gives MessageID ${shown}, not a 64-bit integer: it may well have been delivered, and no event can reach it`,
      );
      const { rows } = await service.db.pool.query<{ outcome_unknown: boolean }>('select outcome_unknown from email_send_jobs where id = $1', [jobId]);
      expect(rows[0]!.outcome_unknown, 'a re-queue looks it up first').to.equal(true);
    });
  }

  // Mailjet may write an address in another Unicode form than it was sent (here composed, sent
  // decomposed). Such a row matched no address, the job looked unsent, and it was sent again.
  it("when the send times out and its look-up gives the job's CustomID with an address that matches none sent, then it is never sent again", async () => {
    const sent = 'jose\u0301@example.com';
    const mailjet = givingMessageId('576460765503095555', { sendDelayMs: 1_500, lookedUpEmail: 'josé@example.com' });
    service = await startTestService({ env: { MAILJET_TIMEOUT_MS: '500', WORKER_CONCURRENCY: '1' } });
    const [one] = await queue(service, [sent]);

    const found = await settled(one!);
    expect(mailjet.sends(), 'sends').to.equal(1);
    expect(found.status).to.equal('accepted');
    expect(recipientsOf(found)).to.deep.equal([[sent, 'accepted', '576460765503095555']]);
  });

  it('when one address is given in To and Cc and Mailjet answers it once, then both rows get its MessageID, none stays pending', async () => {
    nock(MAILJET_TEST_ORIGIN)
      .post('/v3.1/send')
      .reply((_uri: string, body: nock.Body) => {
        const message = (body as SendCall).Messages[0]!;
        return [
          200,
          `{"Messages":[{"Status":"success","CustomID":"${message.CustomID}","To":[{"Email":"twice@example.com","MessageUUID":"u-twice","MessageID":576460765503093333}],"Cc":[],"Bcc":[]}]}`,
          { 'content-type': 'application/json' },
        ];
      });
    service = await startTestService({ env: { WORKER_CONCURRENCY: '1' } });
    const jobId = await jobWithAddressTwice(['to', 'cc']);

    const found = await settled(jobId!);
    expect(found.status).to.equal('accepted');
    expect(recipientsOf(found)).to.deep.equal([
      ['twice@example.com', 'accepted', '576460765503093333'],
      ['Twice@example.com', 'accepted', '576460765503093333'],
    ]);
  });

  it('when one address is given twice in To and the look-up finds it once, then both rows get its MessageID', async () => {
    const double = timeoutThenLookUps([['twice@example.com']]);
    service = await startTestService({ env: { MAILJET_TIMEOUT_MS: '500', WORKER_CONCURRENCY: '1' } });
    const jobId = await jobWithAddressTwice(['to', 'to']);

    const found = await settled(jobId!);
    expect([double.sends(), double.lookups()]).to.deep.equal([1, 1]);
    expect(found.status).to.equal('accepted');
    expect(recipientsOf(found)).to.deep.equal([
      ['twice@example.com', 'accepted', '576460765503090000'],
      ['Twice@example.com', 'accepted', '576460765503090000'],
    ]);
  });

  it('when the look-up finds only some addresses at first, then it is looked up again after a backoff, never resent, and gets them all', async () => {
    const double = timeoutThenLookUps([['a@example.com'], ['a@example.com', 'b@example.com']]);
    service = await startTestService({ env: { MAILJET_TIMEOUT_MS: '500', WORKER_CONCURRENCY: '1' } });
    const [jobId] = await queue(service, [], [messageTo('a@example.com', { cc: ['b@example.com'] })]);

    const found = await settled(jobId!);
    expect([double.sends(), double.lookups()]).to.deep.equal([1, 2]);
    expect(found).to.deep.include({ status: 'accepted', last_error: null });
    expect(recipientsOf(found)).to.deep.equal([
      ['a@example.com', 'accepted', '576460765503090000'],
      ['b@example.com', 'accepted', '576460765503090001'],
    ]);
  });

  it('when the look-ups never find some addresses, then the job is accepted with the others and those end failed, their outcome unknown, in /status and the changes', async () => {
    const double = timeoutThenLookUps([['a@example.com']]);
    service = await startTestService({ env: { MAILJET_TIMEOUT_MS: '500', WORKER_CONCURRENCY: '1' } });
    const [jobId] = await queue(service, [], [messageTo('a@example.com', { cc: ['b@example.com'] })]);

    const found = await settled(jobId!);
    expect([double.sends(), double.lookups()]).to.deep.equal([1, 2]);
    const error =
      'Mailjet accepted it, but its look-up found 1 of the 2 addresses sent: the last look-up gave no MessageID for b@example.com, ' +
      'so their outcome is unknown (they may well have been delivered) and no event can reach them';
    expect(found).to.deep.include({ status: 'accepted', last_error: error });
    expect(recipientsOf(found)).to.deep.equal([
      ['a@example.com', 'accepted', '576460765503090000'],
      ['b@example.com', 'failed', null],
    ]);
    // The changes feed carries what the webhook delivers: the recipient's change, with the error.
    const feed = (await (await service.request('GET', '/status?after=0')).json()) as {
      changes: Array<{ type: string; recipient: string | null; old_status: string; details: { error?: string } | null }>;
    };
    expect(feed.changes.map((change) => [change.type, change.recipient, change.old_status, change.details?.error ?? null])).to.deep.equal([
      ['accepted', null, 'processing', null],
      ['failed', 'b@example.com', 'pending', error],
    ]);
  });

  it('when each look-up finds a different address, then the ids of both look-ups are recorded: never resent, none left pending', async () => {
    const double = timeoutThenLookUps([['a@example.com'], ['b@example.com']]);
    service = await startTestService({ env: { MAILJET_TIMEOUT_MS: '500', WORKER_CONCURRENCY: '1' } });
    const [jobId] = await queue(service, [], [messageTo('a@example.com', { cc: ['b@example.com'] })]);

    const found = await settled(jobId!);
    expect([double.sends(), double.lookups()]).to.deep.equal([1, 2]);
    expect(found).to.deep.include({ status: 'accepted', last_error: null });
    expect(recipientsOf(found)).to.deep.equal([
      ['a@example.com', 'accepted', '576460765503090000'],
      ['b@example.com', 'accepted', '576460765503090001'],
    ]);
  });

  it('when a later look-up finds fewer addresses than an earlier one, then the ids found earlier are recorded and only the addresses no look-up found are closed', async () => {
    const double = timeoutThenLookUps([['a@example.com', 'b@example.com'], ['a@example.com']]);
    service = await startTestService({ env: { MAILJET_TIMEOUT_MS: '500', WORKER_CONCURRENCY: '1' } });
    const [jobId] = await queue(service, [], [messageTo('a@example.com', { cc: ['b@example.com', 'c@example.com'] })]);

    const found = await settled(jobId!);
    expect([double.sends(), double.lookups()]).to.deep.equal([1, 2]);
    expect(found.status).to.equal('accepted');
    expect(found.last_error).to.contain('its look-up found 2 of the 3 addresses sent: the last look-up gave no MessageID for c@example.com,');
    expect(recipientsOf(found)).to.deep.equal([
      ['a@example.com', 'accepted', '576460765503090000'],
      ['b@example.com', 'accepted', '576460765503090001'],
      ['c@example.com', 'failed', null],
    ]);
  });

  it('when a replica of a release before sql/32_ deferred a job Mailjet accepted without usable ids (its error says so, no mark), then a look-up that does not find it leaves it unknown, and a re-queue looks it up before sending', async () => {
    const order: string[] = [];
    nock(MAILJET_TEST_ORIGIN)
      .get('/v3/REST/message')
      .query(true)
      .times(3)
      .reply(() => {
        order.push('look-up');
        return [200, '{"Count":0,"Data":[],"Total":0}', { 'content-type': 'application/json' }];
      })
      .post('/v3.1/send')
      .reply((_uri: string, body: nock.Body) => {
        order.push('send');
        return [200, success(body as SendCall), { 'content-type': 'application/json' }];
      });
    service = await startTestService({ env: { WORKER_CONCURRENCY: '1' } });
    // As that release's settlement wrote it: attempts spent, outcome unknown, the wording, accepted_unresolved left at its default.
    const lastError =
      'Mailjet accepted it, but its answer names an address that matches none sent: it is looked up by CustomID for its MessageIDs, never sent again';
    const jobId = await makeJob(service.db.pool, { appId: service.appId, to: ['old@example.com'] });
    await service.db.pool.query(
      `update email_send_jobs set status = 'deferred', attempts = max_attempts, outcome_unknown = true, last_error = $2, run_at = now() where id = $1`,
      [jobId, lastError],
    );
    await notify(service.db.pool, notifyChannels(TEST_SCHEMA).jobs);

    const failed = await settled(jobId);
    expect(failed.status).to.equal('failed');
    expect(failed.last_error).to.equal(
      `${lastError}; the look-up did not find it, so its recipients' ids are unknown: it may well have been delivered (a re-queue looks it up first)`,
    );
    expect((await jobRows(service)).map((row) => row.outcome_unknown)).to.deep.equal([true]);

    const res = await service.request('POST', '/admin/jobs/requeue', { body: { job_ids: [jobId] }, key: ADMIN_KEY });
    expect(await res.json()).to.deep.equal({ requeued: [jobId] });
    expect((await settled(jobId)).status).to.equal('accepted');
    expect(order).to.deep.equal(['look-up', 'look-up', 'send']);
  });

  it('when a success gives a MessageUUID the database cannot store (a NUL), then the job is looked up for its ids, not recorded with it', async () => {
    let lookups = 0;
    nock(MAILJET_TEST_ORIGIN)
      .post('/v3.1/send')
      .reply((_uri: string, body: nock.Body) => {
        const message = (body as SendCall).Messages[0]!;
        return [
          200,
          `{"Messages":[{"Status":"success","CustomID":"${message.CustomID}","To":[{"Email":"odd@example.com","MessageUUID":"u\\u0000odd","MessageID":576460765503090003}]}]}`,
          { 'content-type': 'application/json' },
        ];
      })
      .get('/v3/REST/message')
      .query(true)
      .reply((uri: string) => {
        lookups += 1;
        const customId = new URL(uri, MAILJET_TEST_ORIGIN).searchParams.get('CustomID');
        return [
          200,
          `{"Count":1,"Data":[{"ID":576460765503090003,"UUID":"u-odd","CustomID":"${customId}","ContactAlt":"odd@example.com"}],"Total":1}`,
          { 'content-type': 'application/json' },
        ];
      });
    const { log, lines } = capturingLogger('warn');
    service = await startTestService({ log, env: { WORKER_CONCURRENCY: '1' } });
    const [jobId] = await queue(service, ['odd@example.com']);

    const found = await settled(jobId!);
    expect(lookups).to.equal(1);
    expect(found.status).to.equal('accepted');
    const { rows } = await service.db.pool.query(
      'select mailjet_message_id::text as id, mailjet_message_uuid as uuid from email_recipients where job_id = $1',
      [jobId],
    );
    expect(rows).to.deep.equal([{ id: '576460765503090003', uuid: 'u-odd' }]);
    // Never refused by the database: no minimal record.
    expect(lines().filter((line) => (JSON.parse(line) as { level: string }).level === 'error')).to.deep.equal([]);
  });
});
