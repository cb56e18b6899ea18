// The hashes stored with an Idempotency-Key (domain/request-hash.ts). The hash as sent must stay as
// earlier releases computed it: a request sent again after an upgrade would otherwise be refused as
// reusing its key with another body. The sorted one must not depend on the order of any object's keys.
import { expect } from 'chai';

import { isSameRequest, requestHashes } from '../../src/domain/request-hash.js';
import { createQueueRequestParser } from '../../src/http/schemas.js';

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

    expect(requestHashes(parse(single, undefined).jobs).asSent).to.equal('ba3846006bf2b6bed657ab8cd5de7bc5d0196e88428a3f7251bc77c0e0232db4');
    expect(requestHashes(parse(bulk, undefined).jobs).asSent).to.equal('7b344311f4ee3688ce869f49926046689c0af5ef532d5fcc83ebc20e5392cc49');
  });

  it('when the keys of metadata, variables and headers come in another order, at any depth, then the sorted hash is the same and the hash as sent differs', () => {
    const hashes = (body: string) => requestHashes(parse(JSON.parse(body) as object, undefined).jobs);
    const a = hashes(
      '{"to":"b@example.com","template_id":5,"variables":{"b":{"y":[{"q":1,"p":2}],"x":1},"a":1,"10":1,"9":1},"metadata":{"k":1,"j":{"constructor":1,"a":2}},"headers":{"X-B":"2","X-A":"1"}}',
    );
    const b = hashes(
      '{"to":"b@example.com","template_id":5,"variables":{"9":1,"a":1,"b":{"x":1,"y":[{"p":2,"q":1}]},"10":1},"metadata":{"j":{"a":2,"constructor":1},"k":1},"headers":{"X-A":"1","X-B":"2"}}',
    );
    const other = hashes(
      '{"to":"b@example.com","template_id":5,"variables":{"9":1,"a":1,"b":{"x":1,"y":[{"p":2,"q":1}]},"10":1},"metadata":{"j":{"a":2},"k":1},"headers":{"X-A":"1","X-B":"2"}}',
    );

    expect(a.asSent).to.not.equal(b.asSent);
    expect(a.sorted).to.equal(b.sorted);
    expect(isSameRequest({ requestHash: a.asSent, sortedRequestHash: a.sorted }, b)).to.equal(true);
    expect(other.sorted).to.not.equal(b.sorted);
    expect(isSameRequest({ requestHash: a.asSent, sortedRequestHash: a.sorted }, other)).to.equal(false);
  });

  it('when the keys are already in order, then the sorted hash is the hash as sent (and is not stored apart)', () => {
    const { asSent, sorted } = requestHashes(
      parse({ to: 'b@example.com', text: 'x', from: 'a@example.com', metadata: { a: { b: 1, c: [{ d: 1, e: 2 }] }, f: 1 } }, undefined).jobs,
    );

    expect(sorted).to.equal(asSent);
  });
});
