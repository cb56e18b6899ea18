import { expect } from 'chai';

import { type AppError, type FieldError, ValidationError } from '../../src/domain/errors.js';
import { parseJobId, parseQueueRequest, parseStatusLookup, type QueueRequest } from '../../src/http/schemas.js';

const MINIMAL = { from: 'app@example.com', to: 'a@example.com', text: 'Hello' };
const DAY_MS = 24 * 3600 * 1000;

/** The ValidationError `run` throws (failing the test when it throws nothing or something else). */
function validationError(run: () => unknown): ValidationError {
  try {
    run();
  } catch (error) {
    expect(error).to.be.instanceOf(ValidationError);
    return error as ValidationError;
  }
  expect.fail('expected a ValidationError');
}

/** The field paths a queue request is rejected with. */
function rejectedPaths(body: unknown, headerKey?: string): string[] {
  const error = validationError(() => parseQueueRequest(body, headerKey));
  expect(error.status).to.equal(400);
  expect(error.fields?.length ?? 0).to.be.above(0);
  return (error.fields as FieldError[]).map((field) => field.path);
}

function fieldsOf(run: () => unknown): FieldError[] {
  return validationError(run).fields ?? [];
}

function accepted(body: unknown, headerKey?: string): QueueRequest {
  return parseQueueRequest(body, headerKey);
}

const addresses = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, index) => `${prefix}${index}@example.com`);

describe('parseQueueRequest', () => {
  it('when a minimal message (from, to as a string, text) comes, then it becomes one job with a "to" recipient', () => {
    const request = accepted(MINIMAL);

    expect(request.bulk).to.equal(false);
    expect(request.idempotencyKey).to.equal(undefined);
    expect(request.jobs).to.have.length(1);
    const [job] = request.jobs;
    expect(job?.recipients).to.deep.equal([{ email: 'a@example.com', kind: 'to' }]);
    expect(job?.content).to.deep.include({ from: { email: 'app@example.com' }, text: 'Hello' });
    expect(job?.priority).to.equal(0);
    expect(job?.sendAt).to.equal(undefined);
  });

  it('when to, cc and bcc are given as strings, objects and lists, then recipients keep their order, names and kind', () => {
    const [job] = accepted({
      ...MINIMAL,
      to: [{ email: 'a@example.com', name: 'Ada' }, 'b@example.com'],
      cc: 'c@example.com',
      bcc: { email: 'd@example.com', name: 'Dee' },
    }).jobs;

    expect(job?.recipients).to.deep.equal([
      { email: 'a@example.com', name: 'Ada', kind: 'to' },
      { email: 'b@example.com', kind: 'to' },
      { email: 'c@example.com', kind: 'cc' },
      { email: 'd@example.com', name: 'Dee', kind: 'bcc' },
    ]);
  });

  it('when every optional field is valid, then each reaches the job', () => {
    const sendAt = new Date(Date.now() + 2 * DAY_MS);
    const [job] = accepted({
      ...MINIMAL,
      reply_to: { email: 'help@example.com', name: 'Help' },
      subject: 'Receipt',
      html: '<p>Hello</p>',
      headers: { 'X-Campaign': 'spring' },
      attachments: [{ filename: 'r.pdf', content_type: 'application/pdf', content: 'JVBERi0xLjQ=' }],
      custom_id: 'order-17',
      metadata: { order: 17 },
      send_at: sendAt.toISOString(),
      priority: 3,
    }).jobs;

    expect(job?.content).to.deep.include({
      reply_to: { email: 'help@example.com', name: 'Help' },
      subject: 'Receipt',
      html: '<p>Hello</p>',
      headers: { 'X-Campaign': 'spring' },
      attachments: [{ filename: 'r.pdf', content_type: 'application/pdf', content: 'JVBERi0xLjQ=' }],
    });
    expect(job?.customId).to.equal('order-17');
    expect(job?.metadata).to.deep.equal({ order: 17 });
    expect(job?.sendAt?.getTime()).to.equal(sendAt.getTime());
    expect(job?.priority).to.equal(3);
  });

  it('when a template is used, then from and text may be left out', () => {
    const [job] = accepted({ to: 'a@example.com', template_id: 4242, variables: { name: 'Ada' } }).jobs;

    expect(job?.content).to.deep.include({ template_id: 4242, variables: { name: 'Ada' } });
    expect(job?.content.from).to.equal(undefined);
  });

  it('when {messages: [...]} comes, then it is a bulk request with one job per message in order', () => {
    const request = accepted({ messages: [MINIMAL, { ...MINIMAL, to: 'b@example.com' }, { ...MINIMAL, to: 'c@example.com' }], idempotency_key: 'batch-1' });

    expect(request.bulk).to.equal(true);
    expect(request.idempotencyKey).to.equal('batch-1');
    expect(request.jobs.map((job) => job.recipients[0]?.email)).to.deep.equal(['a@example.com', 'b@example.com', 'c@example.com']);
  });

  it('when a bulk message is invalid, then the path leads to it by index', () => {
    expect(rejectedPaths({ messages: [MINIMAL, { ...MINIMAL, to: 'not-an-address' }] })).to.deep.equal(['messages.1.to.0.email']);
    expect(rejectedPaths({ messages: [] })).to.deep.equal(['messages']);
  });

  it('when the body is not an object, then it is a ValidationError', () => {
    for (const body of [null, [], 'text', 42]) {
      expect(rejectedPaths(body), JSON.stringify(body)).to.deep.equal(['']);
    }
  });

  it('when an unknown field (a typo) is given, then it is rejected naming the field', () => {
    const [field] = fieldsOf(() => parseQueueRequest({ ...MINIMAL, subjet: 'Hello' }, undefined));

    expect(field?.message).to.include('subjet');
  });

  it('when an unknown field (a typo) is given, then its path is the field itself', () => {
    expect(rejectedPaths({ ...MINIMAL, subjet: 'Hello' })).to.deep.equal(['subjet']);
    expect(rejectedPaths({ messages: [{ ...MINIMAL, subjet: 'Hello' }] })).to.deep.equal(['messages.0.subjet']);
  });

  it('when an address is invalid, then the path points at its email', () => {
    expect(rejectedPaths({ ...MINIMAL, to: 'nope' })).to.deep.equal(['to.0.email']);
    expect(rejectedPaths({ ...MINIMAL, to: ['a@example.com', { email: 'still nope' }] })).to.deep.equal(['to.1.email']);
    expect(rejectedPaths({ ...MINIMAL, cc: 'x@' })).to.deep.equal(['cc.0.email']);
    expect(rejectedPaths({ ...MINIMAL, from: 'app' })).to.deep.equal(['from.email']);
  });

  it('when to is empty or missing, then it is rejected at to', () => {
    expect(rejectedPaths({ ...MINIMAL, to: [] })).to.deep.equal(['to']);
    expect(rejectedPaths({ from: 'app@example.com', text: 'x' })).to.deep.equal(['to']);
  });

  it('when a subject, name or header value holds CR or LF, then it is rejected (no header injection)', () => {
    expect(rejectedPaths({ ...MINIMAL, subject: 'Hi\r\nBcc: victim@example.com' })).to.deep.equal(['subject']);
    expect(rejectedPaths({ ...MINIMAL, subject: 'Hi\nthere' })).to.deep.equal(['subject']);
    expect(rejectedPaths({ ...MINIMAL, from: { email: 'app@example.com', name: 'App\r\nBcc: x@example.com' } })).to.deep.equal(['from.name']);
    expect(rejectedPaths({ ...MINIMAL, to: { email: 'a@example.com', name: 'A\nB' } })).to.deep.equal(['to.0.name']);
    expect(rejectedPaths({ ...MINIMAL, headers: { 'X-Note': 'a\r\nBcc: x@example.com' } })).to.deep.equal(['headers.X-Note']);
  });

  it('when a header is one Mailjet or jetpost sets, then it is rejected whatever its case', () => {
    expect(rejectedPaths({ ...MINIMAL, headers: { Subject: 'x' } })).to.deep.equal(['headers.Subject']);
    expect(rejectedPaths({ ...MINIMAL, headers: { 'X-MJ-CustomID': 'x' } })).to.deep.equal(['headers.X-MJ-CustomID']);
    expect(rejectedPaths({ ...MINIMAL, headers: { 'x-mj-customid': 'x', bcc: 'y' } })).to.have.members(['headers.x-mj-customid', 'headers.bcc']);
  });

  it('when a header is given twice in different case, then the repeat is rejected naming the first; distinct names are accepted', () => {
    const fields = fieldsOf(() => parseQueueRequest({ ...MINIMAL, headers: { 'X-Tag': 'a', 'x-tag': 'b', 'X-TAG': 'c', 'X-Other': 'd' } }, undefined));
    expect(fields.map((field) => field.path)).to.deep.equal(['headers.x-tag', 'headers.X-TAG']);
    expect(fields[0]!.message).to.match(/^the same header as X-Tag \(header names are compared case-insensitively\)/);
    expect(accepted({ ...MINIMAL, headers: { 'X-Tag': 'a', 'X-Tags': 'b' } }).jobs[0]?.content.headers).to.deep.equal({ 'X-Tag': 'a', 'X-Tags': 'b' });
  });

  it('when a header name is not a token, then it is rejected', () => {
    expect(rejectedPaths({ ...MINIMAL, headers: { 'Bad Name': 'x' } })).to.deep.equal(['headers.Bad Name']);
  });

  it('when there are more than 50 recipients over to, cc and bcc, then it is rejected; exactly 50 is accepted', () => {
    expect(rejectedPaths({ ...MINIMAL, to: addresses('t', 20), cc: addresses('c', 20), bcc: addresses('b', 11) })).to.deep.equal(['to']);
    expect(rejectedPaths({ ...MINIMAL, to: addresses('t', 51) })).to.deep.equal(['to']);
    expect(accepted({ ...MINIMAL, to: addresses('t', 20), cc: addresses('c', 20), bcc: addresses('b', 10) }).jobs[0]?.recipients).to.have.length(50);
  });

  it('when to holds a million addresses or headers a thousand names, then it is refused at the field by its count', () => {
    const [to] = fieldsOf(() => parseQueueRequest({ ...MINIMAL, to: addresses('t', 1_000_000) }, undefined));
    expect(to).to.deep.equal({ path: 'to', message: "at most 50 recipients (Mailjet's limit)" });
    const headers = Object.fromEntries(Array.from({ length: 1000 }, (_, index) => [`X-H${index}`, 'v']));
    expect(rejectedPaths({ ...MINIMAL, headers })).to.deep.equal(['headers']);
  });

  it('when html or text is above 5 MiB as UTF-8, then it is refused at the field; exactly 5 MiB is accepted', () => {
    expect(rejectedPaths({ ...MINIMAL, html: '\u00e9'.repeat(2.5 * 1024 * 1024 + 1) })).to.deep.equal(['html']);
    expect(rejectedPaths({ ...MINIMAL, text: 't'.repeat(5 * 1024 * 1024 + 1) })).to.deep.equal(['text']);
    expect(accepted({ ...MINIMAL, text: 't'.repeat(5 * 1024 * 1024), html: '\u00e9'.repeat(2.5 * 1024 * 1024) }).jobs).to.have.length(1);
  });

  it('when a message is over 14 MiB as sent to Mailjet, then an AppError 413 names it; the limit counts base64 and JSON escaping', () => {
    const attachment = (bytes: number) => [{ filename: 'a.bin', content_type: 'application/octet-stream', content: 'QUJD'.repeat(bytes / 4) }];
    const error = (() => {
      try {
        parseQueueRequest({ messages: [MINIMAL, { ...MINIMAL, attachments: attachment(14 * 1024 * 1024) }] }, undefined);
      } catch (caught) {
        return caught as AppError;
      }
      return undefined;
    })();
    expect(error?.status).to.equal(413);
    expect(error?.code).to.equal('message-too-large');
    expect(error?.fields?.map((field) => field.path)).to.deep.equal(['messages.1']);
    // 5 MiB of quotes is 10 MiB once escaped as JSON: with 4 MiB of attachment, over the limit.
    expect(() => parseQueueRequest({ ...MINIMAL, html: '"'.repeat(5 * 1024 * 1024), attachments: attachment(4 * 1024 * 1024) }, undefined)).to.throw(/14 MiB/);
    expect(accepted({ ...MINIMAL, html: 'h'.repeat(5 * 1024 * 1024), attachments: attachment(4 * 1024 * 1024) }).jobs).to.have.length(1);
  });

  it('when an address appears twice across to and bcc (in any case), then the repeat is rejected', () => {
    expect(rejectedPaths({ ...MINIMAL, to: 'a@example.com', bcc: 'A@Example.com' })).to.deep.equal(['bcc.0.email']);
    expect(rejectedPaths({ ...MINIMAL, to: ['a@example.com', 'b@example.com', 'a@example.com'] })).to.deep.equal(['to.2.email']);
  });

  it('when an address appears twice with its domain once in Unicode and once in its ASCII form (IDNA), then the repeat is rejected: one mailbox', () => {
    expect(rejectedPaths({ ...MINIMAL, to: 'user@bücher.example', cc: 'user@xn--bcher-kva.example' })).to.deep.equal(['cc.0.email']);
    expect(rejectedPaths({ ...MINIMAL, to: ['user@XN--BCHER-KVA.example', 'user@BÜCHER.example'] })).to.deep.equal(['to.1.email']);
    expect(accepted({ ...MINIMAL, to: ['user@bücher.example', 'user@bucher.example'] }).jobs).to.have.length(1);
  });

  // One address as suppressions take it (docs/admin.md, One address): in a local part Σ is σ wherever
  // it stands and ẞ is ß, but ς and ss are other letters; in a domain ẞ is ss.
  it('when an address appears twice by the key of suppressions (ΟΔΟΣ and οδοσ, STRAẞE and straße, a domain STRAẞE and strasse), then the repeat is rejected; ς and ss are other addresses', () => {
    expect(rejectedPaths({ ...MINIMAL, to: ['ΟΔΟΣ@example.gr', 'οδοσ@example.gr'] })).to.deep.equal(['to.1.email']);
    expect(rejectedPaths({ ...MINIMAL, to: 'STRAẞE@example.de', cc: 'straße@example.de' })).to.deep.equal(['cc.0.email']);
    expect(rejectedPaths({ ...MINIMAL, to: 'x@STRAẞE.example', bcc: 'x@strasse.example' })).to.deep.equal(['bcc.0.email']);
    expect(accepted({ ...MINIMAL, to: ['οδος@example.gr', 'ΟΔΟΣ@example.gr', 'strasse@example.de', 'straße@example.de'] }).jobs).to.have.length(1);
  });

  it('when there is no text, html or template_id, then it is rejected at text', () => {
    expect(rejectedPaths({ from: 'app@example.com', to: 'a@example.com', subject: 'Empty' })).to.deep.equal(['text']);
    expect(accepted({ from: 'app@example.com', to: 'a@example.com', html: '<p>x</p>' }).jobs).to.have.length(1);
  });

  it('when there is no from and no template_id, then it is rejected at from', () => {
    expect(rejectedPaths({ to: 'a@example.com', text: 'x' })).to.deep.equal(['from']);
  });

  it('when an attachment is not valid base64, then it is rejected at its content', () => {
    const attachment = (content: string) => ({ ...MINIMAL, attachments: [{ filename: 'a.txt', content_type: 'text/plain', content }] });

    expect(rejectedPaths(attachment('not base64!'))).to.deep.equal(['attachments.0.content']);
    expect(rejectedPaths(attachment('QUJD='))).to.deep.equal(['attachments.0.content']);
    expect(rejectedPaths(attachment('QUI'))).to.deep.equal(['attachments.0.content']);
    expect(accepted(attachment('QUJD')).jobs).to.have.length(1);
    expect(accepted(attachment('QUI=')).jobs).to.have.length(1);
  });

  it('when send_at has no time zone, then it is rejected', () => {
    const local = new Date(Date.now() + 2 * DAY_MS).toISOString().replace('Z', '');

    expect(rejectedPaths({ ...MINIMAL, send_at: local })).to.include('send_at');
    expect(accepted({ ...MINIMAL, send_at: `${local}+00:00` }).jobs[0]?.sendAt).to.be.instanceOf(Date);
  });

  it('when send_at is no date (a leap second, 24:00, 30 February, year 10000), then one problem says so, not also the window it was misread into', () => {
    const year = new Date().getUTCFullYear() + 1;
    for (const sendAt of [
      `${year}-06-30T23:59:60Z`,
      `${year}-01-02T24:00:00Z`,
      `${year}-02-30T00:00:00Z`,
      '10000-01-01T00:00:00Z',
      `+0${year}-01-01T00:00:00Z`,
    ]) {
      expect(
        fieldsOf(() => parseQueueRequest({ ...MINIMAL, send_at: sendAt }, undefined)),
        sendAt,
      ).to.deep.equal([{ path: 'send_at', message: 'an ISO 8601 date-time with a time zone, e.g. 2030-01-01T09:00:00Z' }]);
    }
  });

  it('when send_at is more than 30 days ahead or more than a day behind, then it is rejected', () => {
    expect(rejectedPaths({ ...MINIMAL, send_at: new Date(Date.now() + 31 * DAY_MS).toISOString() })).to.deep.equal(['send_at']);
    expect(rejectedPaths({ ...MINIMAL, send_at: new Date(Date.now() - 2 * DAY_MS).toISOString() })).to.deep.equal(['send_at']);
    expect(accepted({ ...MINIMAL, send_at: new Date(Date.now() + 29 * DAY_MS).toISOString() }).jobs).to.have.length(1);
  });

  it('when custom_id is over 255 characters, then it is rejected; 255 is accepted', () => {
    expect(rejectedPaths({ ...MINIMAL, custom_id: 'x'.repeat(256) })).to.deep.equal(['custom_id']);
    expect(accepted({ ...MINIMAL, custom_id: 'x'.repeat(255) }).jobs[0]?.customId).to.have.length(255);
  });

  it('when metadata is over 8 KB as JSON, then it is rejected', () => {
    expect(rejectedPaths({ ...MINIMAL, metadata: { note: 'x'.repeat(8 * 1024) } })).to.deep.equal(['metadata']);
    expect(accepted({ ...MINIMAL, metadata: { note: 'x'.repeat(8000) } }).jobs).to.have.length(1);
  });

  it('when metadata or variables hold a number JSON.parse cannot keep (1e400, a whole number beyond 2^53), then it is refused at that number', () => {
    // As the route gets them: parsed from the request's text.
    const tooLarge = JSON.parse('{"a":{"b":[1,1e400]}}') as object;
    const longId = JSON.parse('{"order":12345678901234567890}') as object;

    const fields = fieldsOf(() => parseQueueRequest({ ...MINIMAL, metadata: tooLarge }, undefined));
    expect(fields.map((field) => field.path)).to.deep.equal(['metadata.a.b.1']);
    expect(fields[0]!.message).to.match(/would come back as null\): send it as a string/);
    expect(rejectedPaths({ messages: [MINIMAL, { to: 'a@example.com', template_id: 7, variables: longId }] })).to.deep.equal(['messages.1.variables.order']);
    expect(fieldsOf(() => parseQueueRequest({ ...MINIMAL, metadata: longId }, undefined))[0]!.message).to.match(/last digits would be lost/);
    expect(
      accepted({ ...MINIMAL, metadata: { id: Number.MAX_SAFE_INTEGER, min: -Number.MAX_SAFE_INTEGER, ratio: 0.1, tiny: 1.5e-300 } }).jobs[0]?.metadata,
    ).to.deep.equal({
      id: Number.MAX_SAFE_INTEGER,
      min: -Number.MAX_SAFE_INTEGER,
      ratio: 0.1,
      tiny: 1.5e-300,
    });
  });

  it('when priority is outside 0–3 or not an integer, then it is rejected', () => {
    expect(rejectedPaths({ ...MINIMAL, priority: 4 })).to.deep.equal(['priority']);
    expect(rejectedPaths({ ...MINIMAL, priority: -1 })).to.deep.equal(['priority']);
    expect(rejectedPaths({ ...MINIMAL, priority: 1.5 })).to.deep.equal(['priority']);
  });

  it('when the Idempotency-Key header and idempotency_key field differ, then it is rejected', () => {
    expect(rejectedPaths({ ...MINIMAL, idempotency_key: 'key-a' }, 'key-b')).to.deep.equal(['idempotency_key']);
    expect(rejectedPaths({ messages: [MINIMAL], idempotency_key: 'key-a' }, 'key-b')).to.deep.equal(['idempotency_key']);
  });

  it('when the idempotency key comes from the header, the body or both equal, then it is the request key', () => {
    expect(accepted(MINIMAL, 'key-a').idempotencyKey).to.equal('key-a');
    expect(accepted({ ...MINIMAL, idempotency_key: 'key-b' }).idempotencyKey).to.equal('key-b');
    expect(accepted({ ...MINIMAL, idempotency_key: 'key-c' }, 'key-c').idempotencyKey).to.equal('key-c');
  });

  it('when the Idempotency-Key header is blank or has spaces, then it is rejected at Idempotency-Key', () => {
    expect(rejectedPaths(MINIMAL, 'has space')).to.deep.equal(['Idempotency-Key']);
    expect(rejectedPaths(MINIMAL, '')).to.deep.equal(['Idempotency-Key']);
  });

  it('when several fields are wrong, then every problem is listed', () => {
    expect(rejectedPaths({ from: 'nope', to: 'a@example.com', text: 'x', priority: 9, subject: 'a\nb' })).to.have.members([
      'from.email',
      'priority',
      'subject',
    ]);
  });
});

describe('parseStatusLookup', () => {
  it('when ids is a comma-separated list, then it becomes the list of job ids', () => {
    expect(parseStatusLookup({ ids: '1, 22,333' })).to.deep.equal({ kind: 'ids', ids: ['1', '22', '333'] });
  });

  it('when custom_id is one value or a repeated parameter, then it becomes a list', () => {
    expect(parseStatusLookup({ custom_id: 'order-17' })).to.deep.equal({ kind: 'custom-ids', customIds: ['order-17'], afterJobId: undefined });
    expect(parseStatusLookup({ custom_id: ['order-17', 'order-18'], after_job_id: '42' })).to.deep.equal({
      kind: 'custom-ids',
      customIds: ['order-17', 'order-18'],
      afterJobId: '42',
    });
  });

  it('when custom_id is repeated more than 100 times, then the refusal says at most 100, not that no form matches', () => {
    const fields = fieldsOf(() => parseStatusLookup({ custom_id: Array.from({ length: 101 }, (_, i) => `order-${i}`) }));
    expect(fields).to.deep.equal([{ path: 'custom_id', message: 'at most 100 custom_id values (the parameter repeated: custom_id=a&custom_id=b)' }]);
  });

  it('when after is given, then it is a feed read from that cursor (empty or 0: the beginning), 100 at a time unless limit says', () => {
    expect(parseStatusLookup({ after: '' })).to.deep.equal({ kind: 'feed', after: { txid: '0', id: '0' }, limit: 100 });
    expect(parseStatusLookup({ after: '812.4567', limit: '25' })).to.deep.equal({ kind: 'feed', after: { txid: '812', id: '4567' }, limit: 25 });
    for (const bad of [
      { after: 'abc' },
      { after: '1.2', ids: '1' },
      { ids: '1', limit: '5' },
      { after: '0', limit: '0' },
      { after: '0', limit: '1e2' },
      { after: '0', limit: '0x10' },
      // Larger than PostgreSQL's xid8 / bigint: refused here rather than failing in the query.
      { after: '99999999999999999999.1' },
      { after: '1.9999999999999999999' },
    ]) {
      expect(() => parseStatusLookup(bad), JSON.stringify(bad)).to.throw(ValidationError);
    }
  });

  it('when both ids and custom_id, or neither, are given, then it is rejected', () => {
    expect(fieldsOf(() => parseStatusLookup({ ids: '1', custom_id: 'x' })).map((field) => field.path)).to.deep.equal(['ids']);
    expect(fieldsOf(() => parseStatusLookup({})).map((field) => field.path)).to.deep.equal(['ids']);
  });

  it('when an id is not a job id, then it is rejected with its position', () => {
    expect(fieldsOf(() => parseStatusLookup({ ids: '1,abc' })).map((field) => field.path)).to.deep.equal(['ids.1']);
    expect(fieldsOf(() => parseStatusLookup({ ids: '0' })).map((field) => field.path)).to.deep.equal(['ids.0']);
  });

  it('when more than 100 ids are asked for, then it is rejected', () => {
    const ids = Array.from({ length: 101 }, (_, index) => String(index + 1)).join(',');

    expect(fieldsOf(() => parseStatusLookup({ ids })).map((field) => field.path)).to.deep.equal(['ids']);
  });
});

describe('parseJobId', () => {
  it('when the id is a positive integer of up to 19 digits, then it is returned', () => {
    expect(parseJobId('42')).to.equal('42');
    expect(parseJobId('9223372036854775807')).to.equal('9223372036854775807');
  });

  it('when the id is not digits, starts with 0 or is too long, then it is a ValidationError', () => {
    for (const value of ['abc', '0', '042', '-1', '12345678901234567890', '', undefined]) {
      validationError(() => parseJobId(value));
    }
  });

  it('when the id is above 2^63-1, then it is a ValidationError that names the largest id (it is digits, so "digits" alone would not say what is wrong)', () => {
    for (const error of [validationError(() => parseJobId('9223372036854775808')), validationError(() => parseStatusLookup({ ids: '9999999999999999999' }))]) {
      expect(error.fields?.map((field) => field.message)).to.deep.equal(['a job id (digits, at most 9223372036854775807)']);
    }
  });
});
