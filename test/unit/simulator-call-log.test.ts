// The simulator's per-call log and look-up log: what the fault suite counts duplicates and saved
// re-sends with.
import { expect } from 'chai';

import { customIdsOf } from '../../src/simulator/send.js';
import { createSimulator, type Simulator } from '../../src/simulator/server.js';
import { mailjetMessage } from '../factories.js';

const cleanups: Array<() => Promise<void>> = [];

async function startSimulator(): Promise<Simulator> {
  const simulator = createSimulator({ seed: 11, apiKey: 'key', apiSecret: 'secret', flushIntervalMs: 60_000 });
  cleanups.push(() => simulator.close());
  await simulator.listen(0);
  return simulator;
}

const AUTH = `Basic ${Buffer.from('key:secret').toString('base64')}`;

async function send(simulator: Simulator, body: unknown, signal?: AbortSignal, authorization = AUTH): Promise<number> {
  const response = await fetch(`${simulator.url}/v3.1/send`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization },
    body: JSON.stringify(body),
    ...(signal === undefined ? {} : { signal }),
  });
  await response.text();
  return response.status;
}

describe('Mailjet simulator: call and look-up logs', () => {
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  });

  it("when nextCalls asks for 503 or 401 (keys revoked mid-drain), then the call gets a gateway's HTML 503 or Mailjet's 401, and nothing is accepted", async () => {
    const simulator = await startSimulator();
    simulator.faults.set({ nextCalls: ['503', '401'] });

    const answers: Array<{ status: number; type: string | null; text: string }> = [];
    for (const customId of ['job-1', 'job-2']) {
      const response = await fetch(`${simulator.url}/v3.1/send`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: AUTH },
        body: JSON.stringify({ Messages: [mailjetMessage('a@example.com', { CustomID: customId })] }),
      });
      answers.push({ status: response.status, type: response.headers.get('content-type'), text: await response.text() });
    }

    expect(answers.map(({ status, type }) => [status, type])).to.deep.equal([
      [503, 'text/html'],
      [401, 'application/json; charset=utf-8'],
    ]);
    expect(JSON.parse(answers[1]!.text)).to.include({ ErrorCode: 'mj-0015', StatusCode: 401 });
    expect(simulator.sendCallLog().map(({ outcome, status, accepted }) => ({ outcome, status, accepted }))).to.deep.equal([
      { outcome: '503', status: 503, accepted: [] },
      { outcome: '401', status: 401, accepted: [] },
    ]);
  });

  it('when calls are answered ok, 500, 429, held or 401, then each is logged with its CustomIDs and what was accepted', async () => {
    const simulator = await startSimulator();
    simulator.faults.set({ nextCalls: ['ok', '500', '429', 'timeout'], timeoutAccepts: true });

    expect(
      await send(simulator, {
        Messages: [
          mailjetMessage('a@example.com', { CustomID: 'job-1' }),
          mailjetMessage('not-an-address', { CustomID: 'job-2' }),
          mailjetMessage('c@example.com'),
        ],
      }),
    ).to.equal(400);
    expect(await send(simulator, { Messages: [mailjetMessage('d@example.com', { CustomID: 'job-3' })] })).to.equal(500);
    expect(await send(simulator, { Globals: { CustomID: 'job-g' }, Messages: [mailjetMessage('e@example.com')] })).to.equal(429);
    const held = await send(simulator, { Messages: [mailjetMessage('f@example.com', { CustomID: 'job-4' })] }, AbortSignal.timeout(300)).then(
      () => 'answered',
      () => 'no answer',
    );
    expect(held).to.equal('no answer');
    expect(await send(simulator, { Messages: [mailjetMessage('g@example.com', { CustomID: 'job-5' })] }, undefined, 'Basic bm86bm8=')).to.equal(401);

    const log = simulator.sendCallLog().map(({ outcome, status, customIds, accepted }) => ({ outcome, status, customIds, accepted }));
    expect(log).to.deep.equal([
      { outcome: 'ok', status: 400, customIds: ['job-1', 'job-2', ''], accepted: ['job-1', ''] },
      { outcome: '500', status: 500, customIds: ['job-3'], accepted: [] },
      { outcome: '429', status: 429, customIds: ['job-g'], accepted: [] },
      { outcome: 'timeout', status: undefined, customIds: ['job-4'], accepted: ['job-4'] },
      { outcome: 'unauthorized', status: 401, customIds: [], accepted: [] },
    ]);
    expect(simulator.sendCallLog().every((call) => call.at instanceof Date)).to.equal(true);
    expect(simulator.sendCalls()).to.equal(5);
  });

  it('when messages are looked up by CustomID, then each look-up is logged with the rows it found, and reset() forgets both logs', async () => {
    const simulator = await startSimulator();
    await send(simulator, { Messages: [{ ...mailjetMessage('a@example.com', { CustomID: 'job-1' }), Cc: [{ Email: 'b@example.com' }] }] });

    for (const customId of ['job-1', 'job-9']) {
      const response = await fetch(`${simulator.url}/v3/REST/message?CustomID=${customId}`, { headers: { authorization: AUTH } });
      expect(response.status).to.equal(200);
      await response.text();
    }
    await (await fetch(`${simulator.url}/v3/REST/message`, { headers: { authorization: AUTH } })).text();

    expect(simulator.lookupLog().map(({ customId, status, found }) => ({ customId, status, found }))).to.deep.equal([
      { customId: 'job-1', status: 200, found: 2 },
      { customId: 'job-9', status: 200, found: 0 },
    ]);
    const before = simulator.sendCallLog();
    simulator.reset();
    expect(simulator.sendCallLog()).to.deep.equal([]);
    expect(simulator.lookupLog()).to.deep.equal([]);
    expect(before).to.have.length(1);
  });

  it('when lookupErrorRatio is 1, then a look-up by CustomID is a 500 and logged as failed, while a listing without CustomID still answers', async () => {
    const simulator = await startSimulator();
    await send(simulator, { Messages: [mailjetMessage('a@example.com', { CustomID: 'job-1' })] });
    simulator.faults.set({ lookupErrorRatio: 1 });

    const lookup = await fetch(`${simulator.url}/v3/REST/message?CustomID=job-1`, { headers: { authorization: AUTH } });
    const listing = await fetch(`${simulator.url}/v3/REST/message`, { headers: { authorization: AUTH } });

    expect(lookup.status).to.equal(500);
    expect(JSON.parse(await lookup.text())).to.include({ StatusCode: 500 });
    expect(listing.status).to.equal(200);
    await listing.text();
    expect(simulator.lookupLog().map(({ customId, status, found }) => ({ customId, status, found }))).to.deep.equal([
      { customId: 'job-1', status: 500, found: 0 },
    ]);
    expect(() => simulator.faults.set({ lookupErrorRatio: 2 })).to.throw(RangeError, /lookupErrorRatio/);
  });

  it('when a body is not a JSON object with Messages, then customIdsOf finds no CustomID', () => {
    expect(customIdsOf('{"Messages": [')).to.deep.equal([]);
    expect(customIdsOf('[1]')).to.deep.equal([]);
    expect(customIdsOf('{"Messages": [1, {"CustomID": 7}, {"CustomID": "x"}]}')).to.deep.equal(['', '', 'x']);
  });
});
