// An app's use of jetpost through orval's fetch client, with its zod schemas checking the body first.
// Type-checked by test/contract/client-generators.test.ts and run against a live jetpost.
import { getJob, lookUpJobs, queueMessages, type QueueMessages409, type QueueMessagesBody } from './orval/client.js';
import { queueMessagesBody } from './orval/zod.js';

/** A problem's status is a number: the 409 of a reused Idempotency-Key is 409, not '409'. */
export const KEY_REUSED_STATUS: QueueMessages409['status'] = 409;

/** `baseUrl` is built in: orval's fetch client is generated with the service's URL. */
export async function run(_baseUrl: string, apiKey: string): Promise<{ messageIds: Array<string | null>; changes: number }> {
  const init = { headers: { authorization: `Bearer ${apiKey}` } };
  const body: QueueMessagesBody = {
    from: 'billing@example.com',
    to: [{ email: 'ada@example.org', name: 'Ada' }],
    subject: 'Your invoice',
    text: 'Hello',
    metadata: { invoice: 42, tags: ['a', 'b'], nested: { ok: true } },
    variables: { first_name: 'Ada', items: [{ sku: 'X', qty: 2 }] },
  };
  queueMessagesBody.parse(body);

  const queued = await queueMessages(body, init);
  if (queued.status !== 202 || !('job_id' in queued.data)) {
    throw new Error(`POST /queue: ${queued.status} ${JSON.stringify(queued.data)}`);
  }

  const job = await getJob(queued.data.job_id, init);
  if (job.status !== 200) {
    throw new Error(`GET /status/{job_id}: ${job.status} ${JSON.stringify(job.data)}`);
  }
  const messageIds: Array<string | null> = job.data.recipients.map((recipient) => recipient.message_id);

  let after = '0';
  let changes = 0;
  for (;;) {
    const page = await lookUpJobs({ after, limit: 100 }, init);
    if (page.status !== 200 || !('changes' in page.data)) {
      throw new Error(`GET /status?after: ${page.status} ${JSON.stringify(page.data)}`);
    }
    changes += page.data.changes.length;
    const cursor: string = page.data.next_cursor;
    if (page.data.changes.length < 100) {
      return { messageIds, changes };
    }
    after = cursor;
  }
}
