// The hash stored with an Idempotency-Key is of the request as read (services/jobs.ts, requestHash):
// a request sent again after an upgrade must hash as it did, or it would be refused as reusing its
// key with another body. These are the hashes earlier releases computed for these bodies.
import { expect } from 'chai';

import { createQueueRequestParser } from '../../src/http/schemas.js';
import { requestHash } from '../../src/services/jobs.js';

const parse = createQueueRequestParser(() => new Date('2030-01-01T00:00:00Z'));

describe('request hash', () => {
  it('when a body is read, then it hashes as earlier releases hashed it, whatever the order of its fields', () => {
    const single = {
      text: 'x',
      to: [{ name: 'B', email: 'b@example.com' }, 'c@example.com'],
      cc: { email: 'd@example.com', name: 'D' },
      bcc: ['e@example.com'],
      from: { name: 'A', email: 'a@example.com' },
      subject: 'Hi',
      custom_id: 'c1',
      metadata: { k: 1 },
      send_at: '2030-01-02T00:00:00Z',
      priority: 2,
      headers: { 'X-A': 'b' },
      html: '<p>',
      reply_to: 'r@example.com',
      track_opens: 'enabled',
      sandbox: true,
    };
    const bulk = {
      messages: [
        { to: 'b@example.com', template_id: 5, variables: { a: [1, 2] }, template_language: true, campaign: 'c', deduplicate_campaign: true },
        { from: 'a@example.com', to: 'b@example.com', text: 'y', attachments: [{ filename: 'a.txt', content_type: 'text/plain', content: 'aGk=' }] },
      ],
    };

    expect(requestHash(parse(single, undefined).jobs)).to.equal('ba3846006bf2b6bed657ab8cd5de7bc5d0196e88428a3f7251bc77c0e0232db4');
    expect(requestHash(parse(bulk, undefined).jobs)).to.equal('7b344311f4ee3688ce869f49926046689c0af5ef532d5fcc83ebc20e5392cc49');
  });
});
