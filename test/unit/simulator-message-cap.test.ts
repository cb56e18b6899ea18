// The simulator keeps the last maxMessages messages: a dev run left sending grew without end (450 MiB
// at 100,000 messages with callbacks down). A forgotten message answers as Mailjet's for a message it
// no longer lists, and its events still waiting go with it.
import { expect } from 'chai';

import { createSimulator } from '../../src/simulator/server.js';
import { mailjetMessage } from '../factories.js';
import { call, eventsOf, rawIds, send, simulatorKit } from '../support/simulator-kit.js';

const { startSimulator, startReceiver, closeAll } = simulatorKit();

describe('simulator: messages kept', () => {
  afterEach(closeAll);

  it('when more messages are accepted than maxMessages, then the oldest are forgotten: none found by CustomID, 404 by id, counted in /_sim/messages', async () => {
    const simulator = await startSimulator({ maxMessages: 3 });
    const ids: string[] = [];
    for (const customId of ['job-1', 'job-2', 'job-1', 'job-3', 'job-4']) {
      ids.push(...rawIds((await send(simulator, { Messages: [mailjetMessage(`${customId}@example.com`, { CustomID: customId })] })).text));
    }

    const lookUp = async (customId: string) => JSON.parse((await call(simulator, `/v3/REST/message?CustomID=${customId}`)).text) as Record<string, unknown>;
    expect(simulator.messages.map((message) => message.customId)).to.deep.equal(['job-1', 'job-3', 'job-4']);
    expect(simulator.droppedMessages()).to.equal(2);
    expect(await lookUp('job-2')).to.deep.equal({ Count: 0, Data: [], Total: 0 });
    // job-1 was sent twice: only its second copy is still listed.
    expect(rawIds((await call(simulator, '/v3/REST/message?CustomID=job-1')).text, 'ID')).to.deep.equal([ids[2]]);
    expect((await call(simulator, `/v3/REST/message/${ids[0]}`)).status).to.equal(404);
    expect((await call(simulator, `/v3/REST/message/${ids[1]}`)).status).to.equal(404);
    expect(rawIds((await call(simulator, `/v3/REST/message/${ids[4]}`)).text, 'ID')).to.deep.equal([ids[4]]);
    const state = JSON.parse((await call(simulator, '/_sim/messages')).text) as { messages: unknown[]; droppedMessages: number };
    expect(state.messages).to.have.length(3);
    expect(state.droppedMessages).to.equal(2);
  });

  it('when the receiver is down and messages are forgotten, then their waiting events are given up: only the kept messages’ events wait and arrive', async () => {
    const receiver = await startReceiver();
    receiver.status = 500;
    const simulator = await startSimulator({ callbackUrl: receiver.url, maxMessages: 2 });
    for (const customId of ['job-1', 'job-2', 'job-3', 'job-4']) {
      await send(simulator, { Messages: [mailjetMessage(`${customId}@example.com`, { CustomID: customId })] });
    }
    await simulator.flushEvents();

    // sent and open for each of the two messages kept; none of the two forgotten ones.
    expect(simulator.pendingEvents()).to.equal(4);
    receiver.status = 200;
    receiver.deliveries.length = 0;
    await simulator.flushEvents();
    expect([...new Set(eventsOf(receiver.deliveries).map((event) => event.CustomID))].sort()).to.deep.equal(['job-3', 'job-4']);
    expect(simulator.pendingEvents()).to.equal(0);
  });

  it('when a messages snapshot is held while the oldest are forgotten, then the snapshot keeps its content', async () => {
    const simulator = await startSimulator({ maxMessages: 2 });
    await send(simulator, { Messages: [mailjetMessage('a@example.com', { CustomID: 'job-1' })] });
    await send(simulator, { Messages: [mailjetMessage('b@example.com', { CustomID: 'job-2' })] });
    const held = simulator.messages;

    await send(simulator, { Messages: [mailjetMessage('c@example.com', { CustomID: 'job-3' })] });

    expect(held.map((message) => message.customId)).to.deep.equal(['job-1', 'job-2']);
    expect(simulator.messages.map((message) => message.customId)).to.deep.equal(['job-2', 'job-3']);
  });

  it('when calls and look-ups pass maxMessages, then their logs keep the last ones, the calls within maxMessages CustomIDs', async () => {
    const simulator = await startSimulator({ maxMessages: 3 });
    await send(simulator, { Messages: [mailjetMessage('a@example.com', { CustomID: 'job-1' }), mailjetMessage('b@example.com', { CustomID: 'job-2' })] });
    await send(simulator, { Messages: [mailjetMessage('c@example.com', { CustomID: 'job-3' }), mailjetMessage('d@example.com', { CustomID: 'job-4' })] });
    await send(simulator, { Messages: [mailjetMessage('e@example.com', { CustomID: 'job-5' })] });
    for (const customId of ['job-1', 'job-2', 'job-3', 'job-4']) {
      await call(simulator, `/v3/REST/message?CustomID=${customId}`);
    }

    expect(simulator.sendCallLog().map((logged) => logged.customIds)).to.deep.equal([['job-3', 'job-4'], ['job-5']]);
    expect(simulator.sendCalls()).to.equal(3);
    expect(simulator.lookupLog().map((lookup) => lookup.customId)).to.deep.equal(['job-2', 'job-3', 'job-4']);
  });

  it('when more new addresses come than maxMessages, then the oldest contact is forgotten: back, it gets a new id, never another’s', async () => {
    const simulator = await startSimulator({ maxMessages: 2 });
    for (const address of ['a', 'b', 'a', 'c', 'a']) {
      await send(simulator, { Messages: [mailjetMessage(`${address}@example.com`)] });
    }

    // a was contact 1 (its second message too); forgotten when c came, it is back as 4.
    const contacts = simulator.messages.map((message) => `${message.recipients[0]!.email} ${message.recipients[0]!.contactId}`);
    expect(contacts).to.deep.equal(['c@example.com 3', 'a@example.com 4']);
  });

  it('when campaigns reach more addresses than maxMessages, then the oldest are forgotten: DeduplicateCampaign lets one back, a campaign with none left gets a new id', async () => {
    const simulator = await startSimulator({ maxMessages: 2 });
    const sends: string[] = [];
    for (const [address, campaign] of [
      ['a', 'news'],
      ['a', 'news'],
      ['b', 'other'],
      ['c', 'other'],
      ['a', 'news'],
    ] as const) {
      await send(simulator, { Messages: [mailjetMessage(`${address}@example.com`, { CustomCampaign: campaign, DeduplicateCampaign: true })] });
      const { campaignId, recipients } = simulator.messages.at(-1)!;
      sends.push(`${address} ${campaignId} ${recipients[0]!.blockedFor ? 'blocked' : 'sent'}`);
    }

    // news remembered a for its second send; b and c then took the two places, so news forgot a and
    // itself, and came back as campaign 3.
    expect(sends).to.deep.equal(['a 1 sent', 'a 1 blocked', 'b 2 sent', 'c 2 sent', 'a 3 sent']);
  });

  it('when maxMessages is not a positive integer, then the simulator is not made', () => {
    for (const maxMessages of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => createSimulator({ maxMessages }), String(maxMessages)).to.throw(RangeError, /maxMessages must be a positive integer/);
    }
  });
});
