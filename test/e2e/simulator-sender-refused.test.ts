// jetpost against the simulator's 403 send-0008, the most common production error: the refused
// message fails for good with Mailjet's reason, while the message sent in the same call goes on.
import { expect } from 'chai';

import { eventually, startTestService, type TestService } from '../support/service.js';

interface JobJson {
  status: string;
  last_error: string | null;
}

describe('end to end: a sender Mailjet does not authorize', () => {
  let service: TestService;

  afterEach(async () => {
    await service?.stop();
  });

  it('when one message of a call has an unauthorized From, then it ends failed with send-0008 and the other is sent', async () => {
    service = await startTestService({ mailjet: 'simulator' });

    const res = await service.request('POST', '/queue', {
      body: {
        messages: [
          { from: 'unauthorized@example.com', to: 'reader@example.com', text: 'Hello' },
          { from: 'app@example.com', to: 'reader@example.com', text: 'Hello' },
        ],
      },
    });
    expect(res.status).to.equal(202);
    const [refused, sent] = ((await res.json()) as { jobs: Array<{ job_id: string }> }).jobs.map((job) => job.job_id);

    const status = async (jobId: string | undefined): Promise<JobJson> => (await (await service.request('GET', `/status/${jobId}`)).json()) as JobJson;
    const [refusedJob, sentJob] = await eventually(
      async () => {
        const jobs = await Promise.all([status(refused), status(sent)]);
        return jobs[0].status === 'failed' && ['sent', 'opened'].includes(jobs[1].status) ? jobs : undefined;
      },
      15_000,
      'the refused job to fail and the other to be sent',
    );

    expect(refusedJob.last_error).to.include('send-0008').and.include('"unauthorized@example.com" is not an authorized sender');
    expect(sentJob.last_error).to.equal(null);
    const calls = service.jetpost.simulator!.sendCallLog();
    expect(calls.map((call) => call.status)).to.include(403);
  });
});
