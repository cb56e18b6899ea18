// The whole path over real HTTP: jetpost's API, its consumers, the Mailjet simulator's Send API, and
// the simulator's event callbacks back into /events. Nothing is mocked.
import { expect } from 'chai';

import { eventually, startTestService, type TestService } from '../support/service.js';

interface JobJson {
  status: string;
  recipients: Array<{ email: string; status: string; message_id: string | null }>;
  events: Array<{ type: string }>;
}

describe('end to end: jetpost and the Mailjet simulator', () => {
  let service: TestService;

  afterEach(async () => {
    await service?.stop();
  });

  async function waitFor(jobId: string, status: string): Promise<JobJson> {
    return eventually(async () => {
      const job = (await (await service.request('GET', `/status/${jobId}`)).json()) as JobJson;
      return job.status === status ? job : undefined;
    }, 15_000, `job ${jobId} to reach ${status}`);
  }

  it('when a message is queued, then it reaches sent and then opened by callbacks alone', async () => {
    service = await startTestService({ mailjet: 'simulator' });

    const res = await service.request('POST', '/queue', {
      body: { from: 'app@example.com', to: { email: 'reader@example.com', name: 'Reader' }, subject: 'Welcome', text: 'Hello' },
    });
    expect(res.status).to.equal(202);
    const { job_id } = (await res.json()) as { job_id: string };

    const sent = await waitFor(job_id, 'sent');
    expect(sent.recipients[0]!.message_id).to.match(/^\d{18,19}$/);
    const opened = await waitFor(job_id, 'opened');
    expect(opened.events.map((e) => e.type)).to.deep.equal(['sent', 'open']);
    // The simulator holds the same id the Send API returned: every digit survived both ways.
    const simulated = service.jetpost.simulator!.messages.flatMap((m) => m.recipients.map((r) => r.messageId.toString()));
    expect(simulated).to.include(opened.recipients[0]!.message_id);
  });

  it('when the address hard-bounces, then the job ends bounced', async () => {
    service = await startTestService({ mailjet: 'simulator' });

    const res = await service.request('POST', '/queue', { body: { from: 'app@example.com', to: 'bounce@example.com', text: 'Hello' } });
    const { job_id } = (await res.json()) as { job_id: string };

    const job = await waitFor(job_id, 'bounced');
    expect(job.recipients[0]!.status).to.equal('bounced');
  });
});
