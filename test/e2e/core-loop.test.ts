// The whole path over real HTTP: jetpost's API (through the generated client an app would use,
// clients/typescript), its consumers, the Mailjet simulator's Send API, and the simulator's event
// callbacks back into /events. Nothing is mocked.
import { expect } from 'chai';

import { createJetpostClient, type JetpostClient, type Job, type Message } from '../../clients/typescript/index.js';
import { eventually, startTestService, type TestService } from '../support/service.js';

describe('end to end: jetpost and the Mailjet simulator', () => {
  let service: TestService;
  let client: JetpostClient;

  afterEach(async () => {
    await service?.stop();
  });

  async function start(): Promise<void> {
    service = await startTestService({ mailjet: 'simulator' });
    client = createJetpostClient({ baseUrl: service.url, apiKey: service.apiKey });
  }

  async function queue(message: Message): Promise<string> {
    const { data, error, response } = await client.POST('/queue', { body: message });
    expect(response.status, JSON.stringify(error)).to.equal(202);
    if (data === undefined || !('job_id' in data)) {
      throw new Error(`a single message answers one job, not ${JSON.stringify(data)}`);
    }
    return data.job_id;
  }

  async function waitFor(jobId: string, status: Job['status']): Promise<Job> {
    return eventually(
      async () => {
        const { data } = await client.GET('/status/{job_id}', { params: { path: { job_id: jobId } } });
        return data?.status === status ? data : undefined;
      },
      15_000,
      `job ${jobId} to reach ${status}`,
    );
  }

  it('when a message is queued, then it reaches sent and then opened by callbacks alone', async () => {
    await start();

    const job_id = await queue({
      from: 'app@example.com',
      to: { email: 'reader@example.com', name: 'Reader' },
      subject: 'Welcome',
      text: 'Hello',
      metadata: { user: 42, plan: ['pro'] },
    });

    const sent = await waitFor(job_id, 'sent');
    expect(sent.metadata).to.deep.equal({ user: 42, plan: ['pro'] });
    expect(sent.recipients[0]!.message_id).to.match(/^\d{18,19}$/);
    const opened = await waitFor(job_id, 'opened');
    expect(opened.events.map((e) => e.type)).to.deep.equal(['sent', 'opened']);
    // The simulator holds the same id the Send API returned: every digit survived both ways.
    const simulated = service.jetpost.simulator!.messages.flatMap((m) => m.recipients.map((r) => r.messageId.toString()));
    expect(simulated).to.include(opened.recipients[0]!.message_id);
  });

  it('when Mailjet refuses the keys mid-drain and the probe after 30 s gets a 503, then a later probe goes and the message is sent once', async function () {
    // Two probe waits of 30 s: sending stops on the 401, the first probe gets the 503, the second goes through.
    this.timeout(180_000);
    await start();
    const simulator = service.jetpost.simulator!;
    simulator.faults.set({ nextCalls: ['401', '503'] });

    const job_id = await queue({ from: 'app@example.com', to: 'noevents@example.com', text: 'Hello' });
    const stopped = await eventually(async () => {
      const res = await fetch(`${service.url}/readyz`);
      return res.status === 503 ? ((await res.json()) as { checks: { mailjet: { detail: string } } }) : undefined;
    });
    const accepted = await eventually(
      async () => {
        const { data } = await client.GET('/status/{job_id}', { params: { path: { job_id } } });
        return data?.status === 'accepted' ? data : undefined;
      },
      150_000,
      `job ${job_id} accepted after the probes`,
    );

    expect(stopped.checks.mailjet.detail).to.contain('401');
    expect(simulator.sendCallLog().map((call) => [call.outcome, call.accepted.length])).to.deep.equal([
      ['401', 0],
      ['503', 0],
      ['ok', 1],
    ]);
    // The 401 refunded its attempt; the 503 (it may have sent it) was looked up before the third call.
    expect(accepted.attempts).to.equal(2);
    expect((await fetch(`${service.url}/readyz`)).status).to.equal(200);
  });

  it('when the address hard-bounces, then the job ends bounced', async () => {
    await start();

    const job_id = await queue({ from: 'app@example.com', to: 'bounce@example.com', text: 'Hello' });

    const job = await waitFor(job_id, 'bounced');
    expect(job.recipients[0]!.status).to.equal('bounced');
  });
});
