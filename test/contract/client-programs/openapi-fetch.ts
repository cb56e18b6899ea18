// An app's use of jetpost through openapi-typescript's types and openapi-fetch (default options).
// Type-checked by test/contract/client-generators.test.ts and run against a live jetpost.
import createClient from 'openapi-fetch';

import type { paths } from './openapi-typescript/schema.js';

export async function run(baseUrl: string, apiKey: string): Promise<{ messageIds: Array<string | null>; changes: number }> {
  const client = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${apiKey}` } });

  // Free-form metadata and variables, and no priority: each must compile.
  const queued = await client.POST('/queue', {
    body: {
      from: 'billing@example.com',
      to: [{ email: 'ada@example.org', name: 'Ada' }],
      subject: 'Your invoice',
      text: 'Hello',
      metadata: { invoice: 42, tags: ['a', 'b'], nested: { ok: true } },
      variables: { first_name: 'Ada', items: [{ sku: 'X', qty: 2 }] },
    },
  });
  if (queued.data === undefined || !('job_id' in queued.data)) {
    throw new Error(`POST /queue: ${JSON.stringify(queued.error)}`);
  }

  const job = await client.GET('/status/{job_id}', { params: { path: { job_id: queued.data.job_id } } });
  if (job.data === undefined) {
    throw new Error(`GET /status/{job_id}: ${JSON.stringify(job.error)}`);
  }
  const messageIds: Array<string | null> = job.data.recipients.map((recipient) => recipient.message_id);

  let after = '0';
  let changes = 0;
  for (;;) {
    const page = await client.GET('/status', { params: { query: { after, limit: 100 } } });
    if (page.data === undefined || !('changes' in page.data)) {
      throw new Error(`GET /status?after: ${JSON.stringify(page.error)}`);
    }
    changes += page.data.changes.length;
    const cursor: string = page.data.next_cursor;
    if (page.data.changes.length < 100) {
      return { messageIds, changes };
    }
    after = cursor;
  }
}
