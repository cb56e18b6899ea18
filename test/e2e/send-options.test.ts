// The Send API options and the app's custom_id, end to end: an app queues through the typed client,
// jetpost sends to the Mailjet simulator, and the simulator's events come back to /events. Checked:
// each message reaches Mailjet with its own options, sandbox messages travel in calls of their own
// and are never delivered, the events Mailjet sends carry the app's custom_id (in the CustomID) and
// event_payload while jetpost still matches them to the job, and a maybe-sent job is found again by
// its CustomID instead of being sent twice.
import { expect } from 'chai';

import { createJetpostClient, type JetpostClient, type Job, type Message } from '../../clients/typescript/index.js';
import { eventually, startTestService, type TestService } from '../support/service.js';

describe('end to end: Send API options and custom_id through the Mailjet simulator', () => {
  let service: TestService;
  let client: JetpostClient;

  afterEach(async () => {
    await service?.stop();
  });

  async function start(env: Record<string, string> = {}): Promise<void> {
    service = await startTestService({ mailjet: 'simulator', env });
    client = createJetpostClient({ baseUrl: service.url, apiKey: service.apiKey });
  }

  async function queueAll(messages: Message[]): Promise<string[]> {
    const { data, error, response } = await client.POST('/queue', { body: { messages } });
    expect(response.status, JSON.stringify(error)).to.equal(202);
    if (data === undefined || !('jobs' in data)) {
      throw new Error(`a bulk request answers jobs, not ${JSON.stringify(data)}`);
    }
    return data.jobs.map((job) => job.job_id);
  }

  async function job(jobId: string): Promise<Job> {
    const { data } = await client.GET('/status/{job_id}', { params: { path: { job_id: jobId } } });
    if (data === undefined) {
      throw new Error(`job ${jobId} not found`);
    }
    return data;
  }

  /**
   * The job once it has `status` and, when given, `events` (their types in any order: Mailjet's
   * times are whole seconds, and an event that had to be retried is stored after later ones).
   */
  async function waitFor(jobId: string, status: Job['status'], events?: readonly string[]): Promise<Job> {
    const expected = events && [...events].sort().join();
    return eventually(
      async () => {
        const found = await job(jobId);
        const types = found.events
          .map((event) => event.type)
          .sort()
          .join();
        return found.status === status && (expected === undefined || types === expected) ? found : undefined;
      },
      20_000,
      `job ${jobId} to reach ${status}`,
    );
  }

  it('when options, a custom_id and a sandbox message are queued together, then each reaches Mailjet as asked and the events come back with the custom_id', async () => {
    await start();

    const [tracked, sandboxed, urgent] = await queueAll([
      {
        from: 'app@example.com',
        to: 'reader-a@example.com',
        subject: 'Spring sale',
        html: '<p><a href="https://shop.example.com/sale">See the sale</a></p>',
        custom_id: 'order-42',
        event_payload: '{"order":42}',
        campaign: 'spring-sale',
        track_opens: 'disabled',
        url_tags: 'utm_source=jetpost',
      },
      { from: 'app@example.com', to: 'reader-b@example.com', subject: 'Dry run', text: 'Hello', custom_id: 'dry-run', sandbox: true },
      { from: 'app@example.com', to: 'reader-c@example.com', subject: 'Now', text: 'Hello', mailjet_priority: 3, priority: 1 },
    ]);

    // Opens are not tracked: the tracked message goes from sent to clicked without an open.
    const clicked = await waitFor(tracked!, 'clicked', ['sent', 'clicked']);
    expect(clicked.custom_id).to.equal('order-42');
    await waitFor(urgent!, 'opened', ['sent', 'opened']);
    // Sandbox: accepted by Mailjet, nothing delivered, no MessageID, no event.
    const dryRun = await waitFor(sandboxed!, 'accepted');
    expect(dryRun.recipients.map((recipient) => [recipient.status, recipient.message_id])).to.deep.equal([['accepted', null]]);

    const simulator = service.jetpost.simulator!;
    const byCustomId = new Map(simulator.messages.map((message) => [message.customId, message]));
    const trackedCustomId = `jetpost-${tracked}:order-42`;
    const sandboxCustomId = `jetpost-${sandboxed}:dry-run`;
    expect(byCustomId.get(trackedCustomId)).to.deep.include({
      eventPayload: '{"order":42}',
      customCampaign: 'spring-sale',
      tracking: { opens: false, clicks: true },
      urlTags: 'utm_source=jetpost',
    });
    expect(byCustomId.get(trackedCustomId)!.priority).to.equal(undefined);
    expect(byCustomId.get(`jetpost-${urgent}`)!.priority).to.equal(3);
    expect(byCustomId.has(sandboxCustomId), 'a sandbox message is not delivered').to.equal(false);
    // The sandbox message travelled in a call of its own.
    const calls = simulator.sendCallLog().filter((call) => call.customIds.length > 0);
    const sandboxCalls = calls.filter((call) => call.customIds.includes(sandboxCustomId));
    expect(sandboxCalls).to.have.length(1);
    expect(sandboxCalls[0]!.customIds).to.deep.equal([sandboxCustomId]);

    // The events Mailjet sent back carry the app's custom_id and event_payload, and were matched to the job.
    const { rows } = await service.jetpost.pool.query<{ custom_id: string; payload: string; event_type: string }>(
      `select payload->>'CustomID' as custom_id, payload->>'Payload' as payload, event_type from email_events where job_id = $1 order by event_type`,
      [tracked],
    );
    expect(rows.map((row) => row.event_type)).to.deep.equal(['click', 'sent']);
    for (const row of rows) {
      expect(row).to.deep.include({ custom_id: trackedCustomId, payload: '{"order":42}' });
    }
  });

  it('when Mailjet accepts a message of an app with a custom_id but never answers, then jetpost finds it by its CustomID and does not send it again', async () => {
    await start({ MAILJET_TIMEOUT_MS: '1000' });
    const simulator = service.jetpost.simulator!;
    simulator.faults.set({ nextCalls: ['timeout'], timeoutAccepts: true });

    const [jobId] = await queueAll([{ from: 'app@example.com', to: 'reader@example.com', subject: 'Once', text: 'Hello', custom_id: 'invoice-7' }]);

    const sent = await waitFor(jobId!, 'opened');
    const customId = `jetpost-${jobId}:invoice-7`;
    expect(sent.recipients[0]!.message_id).to.match(/^\d+$/);
    expect(
      simulator.messages.filter((message) => message.customId === customId),
      'copies Mailjet accepted',
    ).to.have.length(1);
    expect(simulator.lookupLog().map((lookup) => [lookup.customId, lookup.found])).to.deep.include([customId, 1]);
    expect(
      simulator
        .sendCallLog()
        .filter((call) => call.customIds.includes(customId))
        .map((call) => call.outcome),
    ).to.deep.equal(['timeout']);
  });
});
