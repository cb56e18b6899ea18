import { expect } from 'chai';

import { CALLBACK_EVENT_TYPES, createMailjetClient } from '../../src/mailjet/client.js';
import { createSimulator, type Simulator } from '../../src/simulator/server.js';

describe('registering the event callback (against the simulator)', () => {
  let simulator: Simulator;

  afterEach(async () => {
    await simulator?.close();
  });

  it('when run twice, then every event type points at the URL once, grouped, and the second run updates in place', async () => {
    simulator = createSimulator({ apiKey: 'key', apiSecret: 'secret' });
    const baseUrl = await simulator.listen(0, '127.0.0.1');
    const mailjet = createMailjetClient({ apiKey: 'key', apiSecret: 'secret', baseUrl, timeoutMs: 2_000 });

    const first = await mailjet.registerEventCallback('https://u:p@jetpost.example.com/events');
    const second = await mailjet.registerEventCallback('https://u:p2@jetpost.example.com/events');

    expect(first.map((r) => r.action)).to.deep.equal(CALLBACK_EVENT_TYPES.map(() => 'created'));
    expect(second.map((r) => r.action)).to.deep.equal(CALLBACK_EVENT_TYPES.map(() => 'updated'));
    const listed = (await (
      await fetch(`${baseUrl}/v3/REST/eventcallbackurl?Limit=100`, { headers: { authorization: `Basic ${Buffer.from('key:secret').toString('base64')}` } })
    ).json()) as { Data: Array<{ EventType: string; Url: string; Version: number }> };
    expect(listed.Data).to.have.length(7);
    expect(listed.Data.every((row) => row.Url === 'https://u:p2@jetpost.example.com/events' && row.Version === 2)).to.equal(true);
  });
});
