import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { expect } from 'chai';

import type { Simulator } from '../../src/simulator/server.js';
import { mailjetMessage } from '../factories.js';
import { call, eventsOf, send, simulatorKit } from '../support/simulator-kit.js';

const { startSimulator, startReceiver, closeAll } = simulatorKit();
/** Mailjet's 24 h retry window shrunk to 200 ms (and its 30 s interval to about 0.07 ms). */
const WINDOW_OF_200_MS = (24 * 60 * 60 * 1000) / 200;
/** Waits comfortably past the 200 ms window: only a lower bound matters, so a slow machine only waits longer. */
const PAST_THE_WINDOW_MS = 300;

interface Row {
  ID: number;
  EventType: string;
  IsBackup: boolean;
  Status: string;
  Url: string;
}

async function register(simulator: Simulator, body: Record<string, unknown>): Promise<number> {
  const created = await call(simulator, '/v3/REST/eventcallbackurl', { method: 'POST', body: JSON.stringify({ Version: 2, ...body }) });
  expect(created.status, created.text).to.equal(201);
  return (JSON.parse(created.text) as { Data: Row[] }).Data[0]?.ID ?? 0;
}

async function statuses(simulator: Simulator): Promise<string[]> {
  const listed = JSON.parse((await call(simulator, '/v3/REST/eventcallbackurl?Limit=100')).text) as { Data: Row[] };
  return listed.Data.map((row) => `${row.EventType}${row.IsBackup ? ' backup' : ''} ${row.Status}`);
}

describe('Mailjet simulator: callback retries and suspension', () => {
  afterEach(closeAll);

  it('when a callback fails, then it is tried again after 30 s divided by timeScale, not at the next flush', async () => {
    const receiver = await startReceiver();
    const unscaledReceiver = await startReceiver();
    receiver.answers.push(503);
    unscaledReceiver.answers.push(503);
    // timeScale 1 000: every 30 ms. At scale 1 (Mailjet's 30 s) the retry does not come due during this test.
    const scaled = await startSimulator({ callbackUrl: receiver.url, callbackRetryDelayMs: undefined, timeScale: 1000 });
    const unscaled = await startSimulator({ callbackUrl: unscaledReceiver.url, callbackRetryDelayMs: undefined });

    await send(scaled, { Messages: [mailjetMessage('a@example.com')] });
    await send(unscaled, { Messages: [mailjetMessage('b@example.com')] });
    await Promise.all([scaled.flushEvents(), unscaled.flushEvents()]);
    await sleep(100);
    await Promise.all([scaled.flushEvents(), unscaled.flushEvents()]);

    expect(receiver.deliveries).to.have.length(2);
    expect(receiver.deliveries[1]?.body).to.equal(receiver.deliveries[0]?.body);
    expect(scaled.pendingEvents()).to.equal(0);
    expect(unscaledReceiver.deliveries).to.have.length(1);
    expect(unscaled.pendingEvents()).to.equal(2);
  });

  it('when registered URLs keep failing for the whole window, then their events are given up, the rows go dead and the backup takes over until a PUT revives them', async () => {
    const primary = await startReceiver();
    const backup = await startReceiver();
    primary.status = 503;
    const simulator = await startSimulator({ timeScale: WINDOW_OF_200_MS });
    const sentId = await register(simulator, { EventType: 'sent', Url: primary.url });
    await register(simulator, { EventType: 'open', Url: primary.url });
    await register(simulator, { EventType: 'sent', Url: backup.url, IsBackup: true });

    await send(simulator, { Messages: [mailjetMessage('first@example.com')] });
    await simulator.flushEvents();
    expect(await statuses(simulator)).to.deep.equal(['sent alive', 'open alive', 'sent backup alive']);
    expect(simulator.pendingEvents()).to.equal(2);

    await sleep(PAST_THE_WINDOW_MS);
    await simulator.flushEvents();
    expect(await statuses(simulator)).to.deep.equal(['sent dead', 'open dead', 'sent backup alive']);
    expect(simulator.pendingEvents()).to.equal(0);
    expect(backup.deliveries).to.have.length(0);

    await send(simulator, { Messages: [mailjetMessage('second@example.com')] });
    await simulator.flushEvents();
    const deliveredToPrimary = primary.deliveries.length;
    expect(eventsOf(backup.deliveries).map((event) => `${String(event.event)} ${String(event.email)}`)).to.deep.equal(['sent second@example.com']);

    primary.status = 200;
    const revived = await call(simulator, `/v3/REST/eventcallbackurl/${sentId}`, { method: 'PUT', body: JSON.stringify({ Url: primary.url }) });
    await send(simulator, { Messages: [mailjetMessage('third@example.com')] });
    await simulator.flushEvents();

    expect(JSON.parse(revived.text)).to.deep.nested.include({ 'Data[0].Status': 'alive' });
    expect(deliveredToPrimary).to.be.at.least(2);
    expect(eventsOf(primary.deliveries.slice(deliveredToPrimary)).map((event) => `${String(event.event)} ${String(event.email)}`)).to.deep.equal([
      'sent third@example.com',
    ]);
  });

  it('when the default callback URL keeps failing for the window, then it is suspended until setCallbackUrl is called again', async () => {
    const receiver = await startReceiver();
    receiver.status = 500;
    const simulator = await startSimulator({ callbackUrl: receiver.url, timeScale: WINDOW_OF_200_MS });

    await send(simulator, { Messages: [mailjetMessage('a@example.com')] });
    await simulator.flushEvents();
    expect(simulator.callbackUrlStatus()).to.equal('alive');
    await sleep(PAST_THE_WINDOW_MS);
    await simulator.flushEvents();
    expect(simulator.callbackUrlStatus()).to.equal('dead');

    await send(simulator, { Messages: [mailjetMessage('b@example.com')] });
    await simulator.flushEvents();
    const whileDead = receiver.deliveries.length;
    await simulator.flushEvents();

    receiver.status = 200;
    simulator.setCallbackUrl(receiver.url);
    await send(simulator, { Messages: [mailjetMessage('c@example.com')] });
    await simulator.flushEvents();

    expect(simulator.callbackUrlStatus()).to.equal('alive');
    expect(eventsOf(receiver.deliveries.slice(whileDead)).map((event) => event.email)).to.deep.equal(['c@example.com', 'c@example.com']);
    expect(eventsOf(receiver.deliveries).map((event) => event.email)).not.to.include('b@example.com');
  });

  it('when a URL succeeds between failures, then the window starts again from the next failure', async () => {
    const receiver = await startReceiver();
    receiver.answers.push(503);
    const simulator = await startSimulator({ callbackUrl: receiver.url, timeScale: WINDOW_OF_200_MS });

    await send(simulator, { Messages: [mailjetMessage('a@example.com')] });
    await simulator.flushEvents();
    await sleep(PAST_THE_WINDOW_MS);
    await simulator.flushEvents();
    receiver.answers.push(503);
    await send(simulator, { Messages: [mailjetMessage('b@example.com')] });
    await simulator.flushEvents();

    expect(simulator.callbackUrlStatus()).to.equal('alive');
    expect(simulator.pendingEvents()).to.equal(2);
    expect(eventsOf(receiver.deliveries).map((event) => event.email)).to.deep.equal([
      'a@example.com',
      'a@example.com',
      'a@example.com',
      'a@example.com',
      'b@example.com',
      'b@example.com',
    ]);
  });

  it('when a PUT gives a row a new URL while its old URL is failing, then the late failure does not suspend the row', async () => {
    // The old URL holds each POST until released, so the PUT lands while a delivery is in flight.
    const held: Array<() => void> = [];
    const oldUrl = createServer((_req, res) => held.push(() => res.writeHead(503).end()));
    await new Promise<void>((resolve) => oldUrl.listen(0, '127.0.0.1', resolve));
    const newUrl = await startReceiver();
    const simulator = await startSimulator({ timeScale: WINDOW_OF_200_MS });
    const id = await register(simulator, { EventType: 'sent', Url: `http://127.0.0.1:${(oldUrl.address() as AddressInfo).port}/events` });
    const answerHeld = async (count: number): Promise<void> => {
      while (held.length < count) {
        await sleep(5);
      }
      held.shift()?.();
    };

    try {
      await send(simulator, { Messages: [mailjetMessage('a@example.com')] });
      await Promise.all([simulator.flushEvents(), answerHeld(1)]);
      await sleep(PAST_THE_WINDOW_MS);
      const lateFlush = simulator.flushEvents();
      while (held.length < 1) {
        await sleep(5);
      }
      await call(simulator, `/v3/REST/eventcallbackurl/${id}`, { method: 'PUT', body: JSON.stringify({ Url: newUrl.url }) });
      await Promise.all([lateFlush, answerHeld(1)]);
      await send(simulator, { Messages: [mailjetMessage('b@example.com')] });
      await simulator.flushEvents();
    } finally {
      await new Promise((resolve) => {
        oldUrl.close(resolve);
        oldUrl.closeAllConnections();
      });
    }

    expect(await statuses(simulator)).to.deep.equal(['sent alive']);
    expect(eventsOf(newUrl.deliveries).map((event) => event.email)).to.deep.equal(['b@example.com']);
  });

  it('when timeScale is not a positive number, then createSimulator throws a RangeError', async () => {
    for (const timeScale of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      await startSimulator({ timeScale }).then(
        () => expect.fail(`timeScale ${timeScale} was accepted`),
        (error: unknown) =>
          expect(error)
            .to.be.instanceOf(RangeError)
            .with.property('message')
            .that.matches(/timeScale/),
      );
    }
  });
});
