// Slow clients with the callback credentials against Mailjet's own callbacks (http/body-budget.ts):
// each states the whole EVENTS_BODY_BUDGET and sends its body slowly, either above HTTP_BODY_MIN_RATE
// (never cut by it) or below it, connecting again each time it is cut, so that they take turns.
// A callback that came whole with its headers gets in beside them at once; a larger one, arriving at
// a normal pace, gets in once the slow body holding the room is cut for it (EVENTS_BODY_MIN_RATE).
// Outcomes only, never time.
import { expect } from 'chai';

import { seedAcceptedMessages } from '../support/accepted-messages.js';
import { eventText } from '../support/mailjet-events.js';
import { sampleValue } from '../support/prometheus-text.js';
import { type RawRequest, rawRequest } from '../support/raw-request.js';
import { EVENTS_PASSWORD, EVENTS_USER, eventually, startTestService, type TestService } from '../support/service.js';

/** EVENTS_BODY_LIMIT (1mb), and so the budget: what each slow client states. */
const LIMIT = 1024 * 1024;
/** HTTP_BODY_MIN_RATE and its window: at least 200 bytes in each second. */
const PACE = { HTTP_BODY_IDLE_TIMEOUT_MS: '300000', HTTP_BODY_MIN_RATE: '200', HTTP_BODY_MIN_RATE_WINDOW_MS: '1000', EVENTS_BODY_LIMIT: '1mb' };
const FIRST_MESSAGE_ID = 576460765503091475n;
/** The messages the large callback is about: its body (about 250 KB) cannot come whole with its headers. */
const LARGE_CALLBACK_EVENTS = 1_000;

describe('POST /events among slow clients that state the whole budget', function () {
  this.timeout(180_000);
  let service: TestService;
  let requests: RawRequest[] = [];
  let stopped = false;
  let dripping: Promise<unknown>[] = [];
  /** The status lines of the answers the slow clients got. */
  let answers: string[] = [];
  /** The parts each slow client has written, by its index. */
  let parts: number[] = [];

  async function start(env: Record<string, string>, messages: number): Promise<void> {
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', ...PACE, ...env } });
    await seedAcceptedMessages(service.db.pool, service.appId, messages, FIRST_MESSAGE_ID);
  }

  afterEach(async () => {
    stopped = true;
    requests.forEach(({ socket }) => socket.destroy());
    await Promise.all(dripping);
    requests = [];
    dripping = [];
    answers = [];
    parts = [];
    stopped = false;
    await service?.stop();
  });

  const metric = async (name: string) => sampleValue(await (await fetch(`${service.url}/metrics`)).text(), name, {}) ?? 0;

  /**
   * A slow client: states LIMIT bytes and writes `size` of them every `everyMs`, until it is answered;
   * then, if `again`, it connects again, until the test is over.
   */
  async function slowClient(index: number, size: number, everyMs: number, again: boolean, from?: string): Promise<void> {
    parts[index] = 0;
    const auth = Buffer.from(`${EVENTS_USER}:${EVENTS_PASSWORD}`).toString('base64');
    do {
      const request = rawRequest(
        service.url,
        'POST',
        '/events',
        {
          Authorization: `Basic ${auth}`,
          'Content-Type': 'application/json',
          'Content-Length': String(LIMIT),
          ...(from === undefined ? {} : { 'X-Forwarded-For': from }),
        },
        '[',
      );
      requests.push(request);
      let answered = false;
      void request.answer.then((answer) => {
        answered = true;
        if (answer !== '') {
          answers.push(answer.slice(0, answer.indexOf('\r\n')));
        }
      });
      while (!answered && !stopped) {
        await new Promise((resolve) => setTimeout(resolve, everyMs));
        request.socket.write(' '.repeat(size));
        parts[index]! += 1;
      }
    } while (again && !stopped);
  }

  /** Waits until `count` slow clients are sending, one holding the whole budget and others waiting for it. */
  async function atBudget(count: number): Promise<void> {
    await eventually(
      async () => {
        const [inUse, waiting] = [await metric('jetpost_events_budget_in_use_bytes'), await metric('jetpost_events_budget_waiting')];
        return inUse === LIMIT && waiting >= 1 && parts.length === count && parts.every((written) => written >= 2) ? true : undefined;
      },
      30_000,
      `${count} slow clients at the budget`,
    );
  }

  /** Posts `count` "sent" events of the seeded messages as one callback: 200, each stored. */
  async function mailjetCallbackIsStored(count: number): Promise<void> {
    const events = Array.from({ length: count }, (_, n) => eventText('sent', String(FIRST_MESSAGE_ID + BigInt(n)), `reader-${n}@example.com`, 1_700_000_000));
    const answer = await service.postEvents(`[${events.join(',')}]`);
    expect(answer.status, await answer.clone().text()).to.equal(200);
    expect(await answer.json()).to.deep.include({ received: count, stored: count });
    const { rows } = await service.db.pool.query<{ n: number }>(`select count(*)::int as n from email_events`);
    expect(rows[0]!.n).to.equal(count);
  }

  it('when twenty slow clients send above HTTP_BODY_MIN_RATE and keep the budget, then a Mailjet callback that came whole is admitted at once, answered 200 and stored', async () => {
    // No EVENTS_BODY_MIN_RATE: the body holding the budget keeps it, whoever waits (the worst case).
    // Mailjet's callback may wait 3 s for room: the slow clients ahead of it would take half an hour.
    await start({ EVENTS_BODY_MIN_RATE: '0', EVENTS_BODY_WAIT_MS: '3000' }, 3);
    // 50 bytes every 100 ms: 500 bytes a second, 2.5 times the rate; 1 MB would take half an hour.
    const count = 20;
    dripping = Array.from({ length: count }, (_, index) => slowClient(index, 50, 100, false));
    await atBudget(count);

    await mailjetCallbackIsStored(3);
  });

  it('when six slow clients send below HTTP_BODY_MIN_RATE, taking turns as each is cut and connects again, then a Mailjet callback among them is admitted, answered 200 and stored', async () => {
    // Mailjet's callback may wait half a window: behind the slow clients that hold the budget a
    // window each in turn, it would be refused (as they are, when they have waited as long).
    await start({ EVENTS_BODY_WAIT_MS: '500' }, 3);
    // A byte every 100 ms: 10 bytes a second, a twentieth of the rate: each is cut once a window is judged.
    dripping = [0, 1, 2, 3, 4, 5].map((index) => slowClient(index, 1, 100, true));
    // They have taken turns: as many cut as there are of them.
    await eventually(async () => (answers.length >= 6 ? true : undefined), 60_000, 'six slow clients cut');
    await atBudget(6);

    await mailjetCallbackIsStored(3);
    // The slow clients were cut all the while (408), or refused after waiting their turn (503), never let through.
    expect(answers.filter((line) => !/^HTTP\/1\.1 (408|503) /.test(line))).to.deep.equal([]);
  });

  it('when three slow clients send above HTTP_BODY_MIN_RATE but below EVENTS_BODY_MIN_RATE, connecting again when cut, then a large Mailjet callback arriving at a normal pace gets their room, answered 200 and stored', async () => {
    // It may wait 60 s: long enough for the slow clients ahead of it to be cut, a window each, on a
    // loaded host; far shorter than they would hold the budget each if they kept it (half an hour).
    await start({ EVENTS_BODY_WAIT_MS: '60000' }, LARGE_CALLBACK_EVENTS);
    dripping = [0, 1, 2].map((index) => slowClient(index, 50, 100, true));
    await atBudget(3);

    await mailjetCallbackIsStored(LARGE_CALLBACK_EVENTS);
    // Those holding the room it waited for were cut (503, Mailjet retries), not let through.
    expect(answers.length).to.be.greaterThan(0);
    expect(answers.filter((line) => !line.startsWith('HTTP/1.1 503 '))).to.deep.equal([]);
  });

  it('when eight slow clients from one address, each cut for its pace and connecting again, fill the queue, then a large callback from another address goes ahead of them: answered 200 and stored', async () => {
    // In the order of arrival, behind the seven that wait, each holding the budget a window (1 s)
    // before it is cut, it would wait 7 s, and be refused after 2.5; ahead of them, one window.
    await start({ EVENTS_BODY_WAIT_MS: '2500', TRUST_PROXY: 'loopback' }, LARGE_CALLBACK_EVENTS);
    const count = 8;
    dripping = Array.from({ length: count }, (_, index) => slowClient(index, 50, 100, true, '203.0.113.77'));
    // Each has been cut once: the address has shown its pace.
    await eventually(async () => (answers.length >= count ? true : undefined), 60_000, `${count} slow clients cut`);
    await atBudget(count);

    await mailjetCallbackIsStored(LARGE_CALLBACK_EVENTS);
    expect(answers.filter((line) => !line.startsWith('HTTP/1.1 503 '))).to.deep.equal([]);
  });
});
