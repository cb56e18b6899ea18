// POST /queue with input an outside tester tried (issue 8, items 7 and 8): text PostgreSQL cannot
// store, nesting deep enough to overflow a recursive walk, attachments of ordinary size, messages
// Mailjet would refuse for their size, and addresses RFC 5321/6531 allow. Every answer is a 202
// whose stored job reads back exactly as sent, or a 4xx naming the field; never a 5xx.
import { randomBytes } from 'node:crypto';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';

import { expect } from 'chai';

import { createBus } from '../../src/bus.js';
import { notifyChannels } from '../../src/db/notify.js';
import { createQueueRequestParser } from '../../src/http/schemas.js';
import { createJobService } from '../../src/services/jobs.js';
import { TEST_SCHEMA } from '../support/database.js';
import { parseAnswer, rawRequest } from '../support/raw-request.js';
import { ADMIN_KEY, startTestService, type TestService } from '../support/service.js';

interface Problem {
  status: number;
  detail: string;
  errors?: Array<{ path: string; message: string }>;
}

const MINIMAL = { from: 'app@example.com', to: 'a@example.com', text: 'Hello' };
const MiB = 1024 * 1024;

/** A value nested `depth` levels deep: {"a":{"a":…1}} or [[…1]]. */
function nested(depth: number, kind: 'object' | 'array'): unknown {
  let value: unknown = 1;
  for (let level = 0; level < depth; level += 1) {
    value = kind === 'object' ? { a: value } : [value];
  }
  return value;
}

describe('POST /queue: input that must be stored exactly or refused with a 4xx', function () {
  this.timeout(120_000);
  let service: TestService;

  before(async () => {
    // No consumers: a stored job stays exactly as the request made it.
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', QUEUE_RATE_LIMIT: '0' } });
  });

  after(async () => {
    await service?.stop();
  });

  async function post(body: unknown): Promise<{ status: number; json: unknown; type: string | null }> {
    const res = await service.request('POST', '/queue', {
      rawBody: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
    const text = await res.text();
    return { status: res.status, json: text === '' ? undefined : JSON.parse(text), type: res.headers.get('content-type') };
  }

  /** Posts the body, expects a 400 problem, and returns the field paths it names. */
  async function refusedPaths(body: unknown): Promise<string[]> {
    const answer = await post(body);
    expect(answer.status, JSON.stringify(answer.json)).to.equal(400);
    expect(answer.type).to.match(/^application\/problem\+json/);
    return ((answer.json as Problem).errors ?? []).map((error) => error.path);
  }

  async function storedJob(
    jobId: string,
  ): Promise<{ message: Record<string, unknown>; custom_id: string | null; metadata: unknown; recipients: Array<{ email: string; name: string | null }> }> {
    const { rows } = await service.db.pool.query('select message, custom_id, metadata from email_send_jobs where id = $1', [jobId]);
    const recipients = await service.db.pool.query('select email, name from email_recipients where job_id = $1 order by position', [jobId]);
    return { ...rows[0], recipients: recipients.rows };
  }

  async function jobCount(): Promise<number> {
    const { rows } = await service.db.pool.query('select count(*)::int as n from email_send_jobs');
    return rows[0].n;
  }

  describe('an empty body', () => {
    it('when the body is empty, sent chunked or with Content-Length: 0, then both answer the same 400 saying so, and nothing is stored', async () => {
      const before = await jobCount();
      const answers = [];
      for (const framing of [{ 'Content-Length': '0' }, { 'Transfer-Encoding': 'chunked' }]) {
        const headers = { Authorization: `Bearer ${service.apiKey}`, 'Content-Type': 'application/json', ...framing };
        const body = 'Transfer-Encoding' in framing ? '0\r\n\r\n' : '';
        const res = parseAnswer(await rawRequest(service.url, 'POST', '/queue', headers, body).answer);
        answers.push({ status: res.status, type: res.headers.get('content-type'), problem: (await res.json()) as Problem });
      }
      expect(answers[0]!.status).to.equal(400);
      expect(answers[0]!.type).to.match(/^application\/problem\+json/);
      expect(answers[0]!.problem.detail).to.match(/^the request body is empty/);
      expect(answers[1]).to.deep.equal(answers[0]);
      expect(await jobCount()).to.equal(before);
    });
  });

  describe('a body in another charset than UTF-8', () => {
    const latin1 = Buffer.from(JSON.stringify({ ...MINIMAL, subject: 'jos\u00e9' }), 'latin1');
    /** The answer to the Latin-1 bytes as a POST /queue of this Content-Type (written as bytes: rawRequest writes text as UTF-8). */
    async function postLatin1(contentType: string): Promise<Response> {
      const headers = { Authorization: `Bearer ${service.apiKey}`, 'Content-Type': contentType, 'Content-Length': String(latin1.length) };
      const request = rawRequest(service.url, 'POST', '/queue', headers);
      request.socket.write(latin1);
      return parseAnswer(await request.answer);
    }

    it('when Latin-1 bytes come as charset=latin1, ISO-8859-1 or windows-1252, then 415 names the charset and says to send UTF-8; nothing is stored', async () => {
      const before = await jobCount();
      for (const charset of ['latin1', 'ISO-8859-1', 'windows-1252']) {
        const res = await postLatin1(`application/json; charset=${charset}`);
        expect(res.status, charset).to.equal(415);
        const problem = (await res.json()) as Problem & { type: string };
        expect(problem.type).to.equal('https://jetpost.dev/problems/unsupported-encoding');
        expect(problem.detail, charset).to.contain(`"${charset.toLowerCase()}"`);
        expect(problem.detail, charset).to.match(/send it in UTF-8/);
      }
      expect(await jobCount()).to.equal(before);
    });

    it('when a body comes as charset=utf8 (UTF8, no hyphen), then 415 says to write the name utf-8, not to send it in UTF-8; nothing is stored', async () => {
      const before = await jobCount();
      for (const charset of ['utf8', 'UTF8']) {
        const res = await service.request('POST', '/queue', {
          rawBody: JSON.stringify(MINIMAL),
          headers: { 'Content-Type': `application/json; charset=${charset}` },
        });
        expect(res.status, charset).to.equal(415);
        const problem = (await res.json()) as Problem & { type: string };
        expect(problem.type).to.equal('https://jetpost.dev/problems/unsupported-encoding');
        expect(problem.detail, charset).to.contain('write it "utf-8"');
      }
      expect(await jobCount()).to.equal(before);
    });

    it('when Latin-1 bytes come as application/json, then 400 says they are not UTF-8 and to convert them, not to name a charset (which would be a 415)', async () => {
      const res = await postLatin1('application/json');
      expect(res.status).to.equal(400);
      expect(((await res.json()) as Problem).detail).to.match(/not valid UTF-8.*convert/);
    });
  });

  describe('item 7: text PostgreSQL cannot store', () => {
    it('when text, html, subject, a name, a filename, custom_id or metadata holds a NUL, then 400 names the field', async () => {
      const attachment = { filename: 'a\u0000.txt', content_type: 'text/plain', content: 'QQ==' };
      expect(await refusedPaths({ ...MINIMAL, text: 'a\u0000b' })).to.deep.equal(['text']);
      expect(await refusedPaths({ ...MINIMAL, html: '<p>\u0000</p>' })).to.deep.equal(['html']);
      expect(await refusedPaths({ ...MINIMAL, subject: 'Hi\u0000' })).to.include('subject');
      expect(await refusedPaths({ ...MINIMAL, to: { email: 'a@example.com', name: 'A\u0000' } })).to.include('to.name');
      expect(await refusedPaths({ ...MINIMAL, attachments: [attachment] })).to.include('attachments.0.filename');
      expect(await refusedPaths({ ...MINIMAL, custom_id: 'c\u0000' })).to.include('custom_id');
      expect(await refusedPaths({ ...MINIMAL, metadata: { note: 'x\u0000y' } })).to.deep.equal(['metadata.note']);
      expect(await refusedPaths({ ...MINIMAL, metadata: { deep: [{ 'k\u0000': 1 }] } })).to.deep.equal(['metadata.deep.0.k\u0000']);
      expect(await refusedPaths({ to: 'a@example.com', template_id: 1, variables: { list: ['ok', '\u0000'] } })).to.deep.equal(['variables.list.1']);
      expect(await refusedPaths({ ...MINIMAL, headers: { 'X-Note': '\u0000' } })).to.include('headers.X-Note');
    });

    it('when a string holds an unpaired surrogate, then 400 names the field (it would be stored altered, or not at all)', async () => {
      expect(await refusedPaths({ ...MINIMAL, subject: 'Hi \ud800' })).to.deep.equal(['subject']);
      expect(await refusedPaths({ ...MINIMAL, text: 'end \udfff' })).to.deep.equal(['text']);
      expect(await refusedPaths({ ...MINIMAL, html: '\udc00<p>x</p>' })).to.deep.equal(['html']);
      expect(await refusedPaths({ ...MINIMAL, custom_id: 'order-\ud83d' })).to.deep.equal(['custom_id']);
      expect(await refusedPaths({ ...MINIMAL, to: { email: 'a@example.com', name: 'Ada \udead' } })).to.deep.equal(['to.name']);
      expect(await refusedPaths({ ...MINIMAL, attachments: [{ filename: 'r\ud800.pdf', content_type: 'application/pdf', content: 'QQ==' }] })).to.deep.equal([
        'attachments.0.filename',
      ]);
      expect(await refusedPaths({ ...MINIMAL, metadata: { '\ud800': 'key' } })).to.deep.equal(['metadata.\ud800']);
      expect(await refusedPaths({ ...MINIMAL, idempotency_key: 'k\ud800' })).to.include('idempotency_key');
      expect(await jobCount()).to.equal(0);
    });

    it('when a lone surrogate is refused, then a lookup by the custom_id the app meant still works once it is sent correctly', async () => {
      expect(await refusedPaths({ ...MINIMAL, custom_id: 'order-\ud83d' })).to.deep.equal(['custom_id']);
      const ok = await post({ ...MINIMAL, custom_id: 'order-\ud83d\ude00' });
      expect(ok.status).to.equal(202);
      const res = await service.request('GET', `/status?custom_id=${encodeURIComponent('order-\ud83d\ude00')}`);
      const { jobs } = (await res.json()) as { jobs: Array<{ job_id: string; custom_id: string }> };
      expect(jobs.map((job) => job.custom_id)).to.deep.equal(['order-\ud83d\ude00']);
    });

    it('when metadata or headers have a key named __proto__, then 400 (validation would have dropped it silently)', async () => {
      const minimal = JSON.stringify(MINIMAL).slice(0, -1);
      expect(await refusedPaths(`${minimal},"metadata":{"__proto__":{"x":1},"a":2}}`)).to.deep.equal(['metadata.__proto__']);
      expect(await refusedPaths(`${minimal},"headers":{"__proto__":"v"}}`)).to.deep.equal(['headers.__proto__']);
    });

    it('when the body is not valid UTF-8 (Latin-1 bytes sent as JSON), then 400 rather than storing U+FFFD in their place', async () => {
      const latin1 = Buffer.concat([Buffer.from('{"from":"app@example.com","to":"a@example.com","text":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
      const before = await jobCount();
      for (const path of ['/queue', '/admin/apps']) {
        const res = await fetch(`${service.url}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${path === '/queue' ? service.apiKey : ADMIN_KEY}`, 'content-type': 'application/json' },
          body: latin1,
        });
        expect(res.status, path).to.equal(400);
        expect(((await res.json()) as Problem).detail).to.match(/not valid UTF-8/);
      }
      expect(await jobCount()).to.equal(before);
      const utf8 = await service.request('POST', '/queue', {
        rawBody: '{"from":"app@example.com","to":"a@example.com","text":"caf\u00e9 \ud83d\ude00"}',
        headers: { 'content-type': 'application/json; charset=utf-8' },
      });
      expect(utf8.status).to.equal(202);
    });

    it('when a bulk request has one message with a NUL, then the whole request is refused naming it, and nothing is stored', async () => {
      const before = await jobCount();
      const paths = await refusedPaths({ messages: [MINIMAL, { ...MINIMAL, text: 'x\u0000' }, MINIMAL] });
      expect(paths).to.deep.equal(['messages.1.text']);
      expect(await jobCount()).to.equal(before);
    });

    it('when text, html, names and metadata hold emoji, accents, RTL marks and other valid Unicode, then they are stored exactly', async () => {
      const text = 'caf\u00e9 \ud83d\udc4b \u202eevil\u202c \u00a0 \ufeff \u{10ffff} \uffff end';
      const body = {
        ...MINIMAL,
        to: { email: 'a@example.com', name: 'Zo\u00eb \ud83d\ude80' },
        subject: 'S\u00fcbject \ud83d\udce8',
        text,
        html: `<p>${text}</p>`,
        custom_id: 'c-\ud83d\ude00',
        metadata: { '\ud83d\udd11': ['\u00e9', { nested: '\ud83c\udf0d' }] },
      };
      const answer = await post(body);
      expect(answer.status).to.equal(202);
      const stored = await storedJob((answer.json as { job_id: string }).job_id);
      expect(stored.message).to.deep.include({ subject: body.subject, text: body.text, html: body.html });
      expect(stored.custom_id).to.equal(body.custom_id);
      expect(stored.metadata).to.deep.equal(body.metadata);
      expect(stored.recipients).to.deep.equal([{ email: 'a@example.com', name: body.to.name }]);
    });
  });

  describe('item 7: nesting', () => {
    it('when metadata is nested 10,000 deep or variables 5,000 deep, then 400 at the field, not a stack overflow', async () => {
      // Written as text: JSON.stringify itself overflows on such values.
      const deepObject = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
      const deepArray = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;
      const minimal = JSON.stringify(MINIMAL).slice(0, -1);
      expect(await refusedPaths(`${minimal},"metadata":${deepObject(10_000)}}`)).to.deep.equal(['metadata']);
      expect(await refusedPaths(`{"to":"a@example.com","template_id":1,"variables":{"a":${deepArray(5_000)}}}`)).to.deep.equal(['variables']);
      expect(await refusedPaths(`{"messages":[${JSON.stringify(MINIMAL)},${minimal},"metadata":{"a":${deepArray(10_000)}}}]}`)).to.deep.equal([
        'messages.1.metadata',
      ]);
    });

    it('when metadata nests 32 levels, then it is accepted and stored exactly; 33 levels is refused', async () => {
      const answer = await post({ ...MINIMAL, metadata: { a: nested(31, 'object') } });
      expect(answer.status, JSON.stringify(answer.json)).to.equal(202);
      expect((await storedJob((answer.json as { job_id: string }).job_id)).metadata).to.deep.equal({ a: nested(31, 'object') });
      expect(await refusedPaths({ ...MINIMAL, metadata: { a: nested(32, 'array') } })).to.deep.equal(['metadata']);
    });

    it('when any field of the body (an unknown one, an address) is nested a million deep, then 400, not a 5xx', async () => {
      const deep = `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`;
      for (const raw of [
        `{"from":"app@example.com","to":"a@example.com","text":"x","extra":${deep}}`,
        `{"from":"app@example.com","to":${deep},"text":"x"}`,
        `{"messages":${deep}}`,
        deep,
      ]) {
        const answer = await post(raw);
        expect(answer.status, raw.slice(0, 60)).to.equal(400);
      }
    });
  });

  describe('header values: one line of RFC 5322, 998 octets', () => {
    for (const [what, unit, bytes] of [
      ['ASCII', 'a', 1],
      ['é (2 bytes of UTF-8)', '\u00e9', 2],
      ['€ (3 bytes)', '\u20ac', 3],
      ['😀 (4 bytes, 2 UTF-16 units)', '\u{1f600}', 4],
    ] as const) {
      it(`when a header value of ${what} is 998 bytes of UTF-8, then it is taken; one byte more, and 400 names the header and says it counts bytes`, async () => {
        const fill = (total: number) => unit.repeat(Math.floor(total / bytes)) + 'a'.repeat(total % bytes);
        expect(Buffer.byteLength(fill(998))).to.equal(998);

        const taken = await post({ ...MINIMAL, headers: { 'X-Note': fill(998) } });
        const refused = await post({ ...MINIMAL, headers: { 'X-Note': fill(999) } });

        expect(taken.status, JSON.stringify(taken.json)).to.equal(202);
        expect(refused.status).to.equal(400);
        const errors = (refused.json as Problem).errors ?? [];
        expect(errors.map((error) => error.path)).to.deep.equal(['headers.X-Note']);
        expect(errors[0]!.message).to.match(/at most 998 bytes of UTF-8.*999/);
      });
    }
  });

  describe('attachment filenames', () => {
    const attach = (filename: string) => ({
      ...MINIMAL,
      attachments: [
        { filename: 'ok.txt', content_type: 'text/plain', content: 'aGk=' },
        { filename, content_type: 'text/plain', content: 'aGk=' },
      ],
    });

    for (const [what, names, says] of [
      ['a path (RFC 2183: a receiver keeps only its last part)', ['../x', 'a/b', 'C:\\x', '/etc/passwd', '..\\..\\boot.ini', 'x/'], /not a path/],
      ['only dots or spaces (no file)', ['.', '..', '...', ' ', ' . '], /only dots and spaces/],
      [
        'a NUL, a control character or a line break',
        ['a\u0000b', 'a\u0007b', 'a\tb', 'a\nb', 'a\r\nContent-Type: text/html'],
        /line breaks or control characters/,
      ],
      ['1,000 characters', ['n'.repeat(996) + '.pdf'], /255/],
      [
        'disguised by a bidirectional override or isolate',
        ['invoice\u202Efdp.exe', 'a\u202Ab.txt', 'a\u202Db.txt', 'photo\u2067gpj.exe\u2069'],
        /bidirectional override or isolate/,
      ],
    ] as const) {
      it(`when an attachment's filename is ${what}, then 400 names that attachment, and nothing is stored`, async () => {
        const before = await jobCount();
        for (const name of names) {
          const answer = await post(attach(name));
          expect(answer.status, JSON.stringify(name)).to.equal(400);
          const errors = (answer.json as Problem).errors ?? [];
          // A NUL is also text PostgreSQL cannot store: a second error, for the same field.
          expect([...new Set(errors.map((error) => error.path))], JSON.stringify(name)).to.deep.equal(['attachments.1.filename']);
          expect(errors.map((error) => error.message).join('; '), JSON.stringify(name)).to.match(says);
        }
        expect(await jobCount()).to.equal(before);
      });
    }

    it('when an attachment has a filename in another script, with spaces, an emoji, a leading dot or two dots inside, then it is taken and stored as given (a right-to-left name, a right-to-left mark too)', async () => {
      for (const name of [
        'Facture été 2026.pdf',
        'חשבונית.pdf',
        'فاتورة\u200F.pdf',
        '請求書 (コピー).pdf',
        'my file.txt',
        'résumé 😀.pdf',
        '.bashrc',
        'a..b.txt',
        'x'.repeat(251) + '.pdf',
      ]) {
        const answer = await post(attach(name));
        expect(answer.status, JSON.stringify(answer.json)).to.equal(202);
        const stored = await storedJob((answer.json as { job_id: string }).job_id);
        expect((stored.message['attachments'] as Array<{ filename: string }>)[1]!.filename).to.equal(name);
      }
    });
  });

  describe('line breaks in one-line fields (header injection)', () => {
    it('when a subject, a name, a header value, a campaign, a custom_id, a monitoring category or a filename holds U+2028 or U+2029, then 400 names it, and nothing is stored', async () => {
      const before = await jobCount();
      const attachment = { filename: 'a.txt', content_type: 'text/plain', content: 'aGk=' };
      for (const separator of ['\u2028', '\u2029']) {
        const line = `Hi${separator}Bcc: victim@example.com`;
        for (const [extra, path] of [
          [{ subject: line }, 'subject'],
          [{ from: { email: 'app@example.com', name: line } }, 'from.name'],
          [{ reply_to: { email: 'r@example.com', name: line } }, 'reply_to.name'],
          [{ to: [{ email: 'a@example.com', name: line }] }, 'to.0.name'],
          [{ headers: { 'X-Tag': line } }, 'headers.X-Tag'],
          [{ campaign: line }, 'campaign'],
          [{ custom_id: line }, 'custom_id'],
          [{ monitoring_category: line }, 'monitoring_category'],
          [{ attachments: [{ ...attachment, filename: line }] }, 'attachments.0.filename'],
        ] as const) {
          const answer = await post({ ...MINIMAL, ...extra });
          expect(answer.status, path).to.equal(400);
          expect((answer.json as Problem).errors, path).to.deep.equal([{ path, message: 'must not contain line breaks or control characters' }]);
        }
      }
      expect(await jobCount()).to.equal(before);
      // A custom_id stored with one before they were refused can still be looked up.
      const lookUp = await service.request('GET', `/status?custom_id=${encodeURIComponent('a\u2028b')}`);
      expect(lookUp.status).to.equal(200);
    });
  });

  describe('objects with more fields than any valid message has', () => {
    const fields = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, index) => [`f${index}`, 1]));

    it('when a message, an address, an attachment or a bulk request brings 300,000 fields, then one 400 names the object and its count, and nothing is stored', async () => {
      const before = await jobCount();
      const attachment = { filename: 'a.txt', content_type: 'text/plain', content: 'aGk=' };
      for (const [body, path, count] of [
        [{ ...MINIMAL, ...fields(300_000) }, '', 300_003],
        [{ ...MINIMAL, from: { email: 'app@example.com', ...fields(300_000) } }, 'from', 300_001],
        [{ ...MINIMAL, attachments: [{ ...attachment, ...fields(300_000) }] }, 'attachments.0', 300_003],
        [{ ...MINIMAL, metadata: { order: fields(300_000) } }, 'metadata.order', 300_000],
        [{ messages: [MINIMAL, { ...MINIMAL, ...fields(300_000) }] }, 'messages.1', 300_003],
        [{ messages: [MINIMAL], ...fields(300_000) }, '', 300_001],
      ] as const) {
        const answer = await post(body);
        expect(answer.status, path).to.equal(400);
        // One problem, not zod's list of unknown fields (named up to 10, the rest counted) after it read every one.
        expect((answer.json as Problem).errors, path).to.deep.equal([
          { path, message: `has ${count} fields: no object of a valid message has more than 16384` },
        ]);
      }
      expect(await jobCount()).to.equal(before);
    });

    it('when metadata or variables have more fields or items than their size allows, then 400 at the field says so, without measuring it', async () => {
      const answer = await post({ ...MINIMAL, metadata: fields(3000) });
      expect((answer.json as Problem).errors).to.deep.equal([
        { path: 'metadata', message: 'metadata must be at most 8192 bytes as JSON: it alone has 3000 fields' },
      ]);
      const list = await post({ ...MINIMAL, text: undefined, template_id: 1, variables: { a: { b: Array.from({ length: 40_000 }, () => 0) } } });
      expect((list.json as Problem).errors).to.deep.equal([
        { path: 'variables', message: 'variables must be at most 65536 bytes as JSON: a.b alone has 40000 items' },
      ]);
      // At the bounds, only the size decides: 2,048 fields of 4 bytes would fit, these take more.
      expect((await post({ ...MINIMAL, metadata: fields(2048) })).json).to.deep.include({
        errors: [{ path: 'metadata', message: 'metadata must be at most 8192 bytes as JSON' }],
      });
    });
  });

  describe('item 7: attachments and message size', () => {
    it('when a 4 MB PDF is attached (5.3 MB of base64), then 202 and its content is stored exactly', async () => {
      const content = randomBytes(4_000_000).toString('base64');
      const answer = await post({ ...MINIMAL, attachments: [{ filename: 'report.pdf', content_type: 'application/pdf', content }] });
      expect(answer.status, JSON.stringify(answer.json)).to.equal(202);
      const stored = await storedJob((answer.json as { job_id: string }).job_id);
      expect((stored.message['attachments'] as Array<{ content: string }>)[0]!.content === content).to.equal(true);
    });

    it('when attachment content is not base64 (bad characters, bad padding, bad length), then 400 at its content', async () => {
      for (const content of ['not base64!', 'QUJD=', 'QUI', 'Q===', '=QUJ', 'QU=D', `${'A'.repeat(4_000_000)}*`]) {
        const paths = await refusedPaths({ ...MINIMAL, attachments: [{ filename: 'a.bin', content_type: 'application/octet-stream', content }] });
        expect(paths, content.slice(0, 20)).to.deep.equal(['attachments.0.content']);
      }
    });

    it('when an attachment is base64 as `base64` writes it (lines of 76), or a data: URL, or its content type has parameters, then the 400 says what to change', async () => {
      const wrapped = Buffer.alloc(120, 7)
        .toString('base64')
        .replace(/(.{76})/g, '$1\n');
      const messages = async (attachment: Record<string, string>) =>
        ((await post({ ...MINIMAL, attachments: [{ filename: 'a.bin', content_type: 'application/octet-stream', ...attachment }] })).json as Problem).errors;
      for (const content of [wrapped, 'data:text/plain;base64,SGVsbG8h']) {
        const [error] = (await messages({ content }))!;
        expect(error!.path).to.equal('attachments.0.content');
        expect(error!.message, content.slice(0, 10)).to.match(content.startsWith('data:') ? /no data: URL prefix/ : /no line breaks or spaces \(base64 -w0\)/);
      }
      const [typeError] = (await messages({ content_type: 'text/plain; charset=utf-8', content: 'SGVsbG8h' }))!;
      expect(typeError).to.deep.equal({
        path: 'attachments.0.content_type',
        message: 'a MIME type such as application/pdf, without parameters (no "; charset=…")',
      });
    });

    it('when text and html are empty strings and there is no template_id, then 400 at the empty part saying Mailjet refuses it, rather than a 202 and a job failed at Mailjet (send-0003)', async () => {
      const empty = { from: 'app@example.com', to: 'a@example.com', custom_id: 'no content' };
      expect(await refusedPaths({ ...empty, text: '' })).to.deep.equal(['text']);
      expect(await refusedPaths({ ...empty, html: '' })).to.deep.equal(['html']);
      expect(await refusedPaths({ ...empty, text: '', html: '' })).to.deep.equal(['text']);
      const answer = await post({ ...empty, text: '' });
      expect((answer.json as Problem).errors?.[0]?.message).to.match(/^text and html are empty: .*send-0003/);
      const { rows } = await service.db.pool.query(`select count(*)::int as n from email_send_jobs where custom_id = 'no content'`);
      expect(rows[0].n).to.equal(0);
      // One part with content is enough, the other may be empty.
      expect((await post({ ...empty, custom_id: 'some content', text: '', html: '<b>x</b>' })).status).to.equal(202);
    });

    it('when an attachment is empty (an empty file: content ""), then 400 at its content saying Mailjet refuses it, rather than a 202 and a job failed at Mailjet (mj-0012)', async () => {
      for (const extra of [{}, { content_id: 'logo' }]) {
        const res = await service.request('POST', '/queue', {
          body: {
            ...MINIMAL,
            html: '<b>x</b>',
            custom_id: 'empty attachment',
            attachments: [{ filename: 'empty.txt', content_type: 'text/plain', content: '', ...extra }],
          },
        });
        expect(res.status).to.equal(400);
        const problem = (await res.json()) as { errors: Array<{ path: string; message: string }> };
        expect(problem.errors).to.deep.equal([
          { path: 'attachments.0.content', message: 'must not be empty: Mailjet refuses an empty attachment (mj-0012); leave an empty file out' },
        ]);
      }
      const { rows } = await service.db.pool.query(`select count(*)::int as n from email_send_jobs where custom_id = 'empty attachment'`);
      expect(rows[0].n).to.equal(0);
    });

    it('when 50 attachments add up to 14.3 MiB (19 MB as base64), then 413 states the limit, and nothing is stored', async () => {
      const before = await jobCount();
      const content = randomBytes(Math.floor((14.3 * MiB) / 50)).toString('base64');
      const attachments = Array.from({ length: 50 }, (_, i) => ({ filename: `part-${i}.bin`, content_type: 'application/octet-stream', content }));
      const answer = await post({ ...MINIMAL, attachments });
      expect(answer.status).to.equal(413);
      expect(answer.type).to.match(/^application\/problem\+json/);
      const problem = answer.json as Problem;
      expect(problem.detail).to.match(/14 MiB|14,680,064/);
      expect(problem.errors?.map((error) => error.path)).to.deep.equal(['']);
      expect(await jobCount()).to.equal(before);
    });

    it('when a 19 MB html comes, then it is refused at html with its cap stated', async () => {
      const answer = await post({ ...MINIMAL, html: `<p>${'x'.repeat(19_000_000)}</p>` });
      expect(answer.status).to.equal(400);
      const [error] = (answer.json as Problem).errors ?? [];
      expect(error?.path).to.equal('html');
      expect(error?.message).to.match(/5 MiB/);
    });

    it('when html and text are within their caps but the message with its attachments is over the limit, then 413 names the message in a bulk request', async () => {
      const html = 'h'.repeat(5 * MiB);
      const content = randomBytes(3 * MiB).toString('base64');
      const big = { ...MINIMAL, text: 't'.repeat(5 * MiB), html, attachments: [{ filename: 'a.bin', content_type: 'application/octet-stream', content }] };
      const answer = await post({ messages: [MINIMAL, big] });
      expect(answer.status).to.equal(413);
      expect((answer.json as Problem).errors?.map((error) => error.path)).to.deep.equal(['messages.1']);
    });

    it('when a message is just under the limit, then 202 (the limit is on the message as Mailjet receives it)', async () => {
      const content = randomBytes(10 * MiB).toString('base64');
      const answer = await post({ ...MINIMAL, attachments: [{ filename: 'big.bin', content_type: 'application/octet-stream', content }] });
      expect(answer.status, JSON.stringify(answer.json)?.slice(0, 300)).to.equal(202);
    });
  });

  describe('item 7: the other routes that store or look up text', () => {
    it('when a suppression note holds an unpaired surrogate or a NUL, then 400 names it and nothing is stored altered', async () => {
      const { rows } = await service.db.pool.query('select name from apps where id = $1', [service.appId]);
      const path = `/admin/apps/${rows[0].name}/suppressions`;
      for (const note of ['note \ud800', 'note \u0000']) {
        const res = await service.request('POST', path, { body: { email: 'x@example.com', note }, key: ADMIN_KEY });
        expect(res.status).to.equal(400);
        expect(((await res.json()) as Problem).errors?.map((error) => error.path)).to.include('note');
      }
      const stored = await service.db.pool.query('select count(*)::int as n from suppressions');
      expect(stored.rows[0].n).to.equal(0);
    });

    it('when a status look-up by custom_id holds a NUL or a suppression is removed by an address with one, then 400', async () => {
      expect((await service.request('GET', '/status?custom_id=a%00b')).status).to.equal(400);
      const { rows } = await service.db.pool.query('select name from apps where id = $1', [service.appId]);
      expect((await service.request('DELETE', `/admin/apps/${rows[0].name}/suppressions/a%00@example.com`, { key: ADMIN_KEY })).status).to.equal(400);
    });

    it('when a query string holds a malformed percent escape (%ZZ, a lone %, bytes not UTF-8), then 400 problem+json naming the parameter, on the status look-up, the feed and the admin listings', async () => {
      const { rows } = await service.db.pool.query('select name from apps where id = $1', [service.appId]);
      const cases: [string, string, string | undefined][] = [
        ['/status?custom_id=%ZZ', 'custom_id', undefined],
        ['/status?custom_id=100%', 'custom_id', undefined],
        ['/status?custom_id=%FF', 'custom_id', undefined],
        ['/status?custom_id=a&custom_id=%E2%82', 'custom_id', undefined],
        ['/status?after=1.%2', 'after', undefined],
        ['/admin/jobs?status=failed&app=%ZZ', 'app', ADMIN_KEY],
        [`/admin/apps/${rows[0].name}/suppressions?after=%ZZ`, 'after', ADMIN_KEY],
      ];
      for (const [path, parameter, key] of cases) {
        const res = await service.request('GET', path, key ? { key } : {});
        expect(res.status, path).to.equal(400);
        expect(res.headers.get('content-type'), path).to.match(/^application\/problem\+json/);
        expect(
          ((await res.json()) as Problem).errors?.map((error) => error.path),
          path,
        ).to.deep.equal([parameter]);
      }
      // A % written as %25 is the character itself: looked up, not refused.
      expect((await service.request('GET', '/status?custom_id=%25ZZ')).status).to.equal(200);
    });

    // Before: Express's own words, "Failed to decode param '%ZZ'", which say neither where nor what to send.
    it('when a path holds a malformed percent escape (%ZZ, a lone %, bytes not UTF-8), then 400 problem+json saying how to encode it', async () => {
      const { rows } = await service.db.pool.query('select name from apps where id = $1', [service.appId]);
      for (const [method, path, key] of [
        ['GET', '/status/%ZZ', undefined],
        ['GET', '/status/1%', undefined],
        ['GET', `/admin/apps/%E2%82/suppressions`, ADMIN_KEY],
        ['DELETE', `/admin/apps/${rows[0].name}/suppressions/a%FF@example.com`, ADMIN_KEY],
      ] as const) {
        const res = await service.request(method, path, key ? { key } : {});
        expect(res.status, path).to.equal(400);
        expect(res.headers.get('content-type'), path).to.match(/^application\/problem\+json/);
        expect(((await res.json()) as Problem).detail, path).to.match(/path has a malformed percent escape: encode "%" as %25, and text as UTF-8/);
      }
    });
  });

  describe('item 8: addresses as RFC 5321/6531 and Mailjet accept them', () => {
    const valid = [
      'user@example.xn--p1ai',
      "o'reilly@example.com",
      'o&reilly@example.com',
      'user=tag@example.com',
      'user+tag@example.com',
      '!#$%&*+-/=?^_`{|}~@example.com',
      'j\u00f6rg@b\u00fccher.de',
      '\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a',
      '\u043f\u043e\u0447\u0442\u0430@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444',
      'a@sub.domain-with-hyphen.example.com',
      `${'l'.repeat(64)}@example.com`,
    ];
    for (const email of valid) {
      it(`when the address is ${email}, then 202 and it is stored exactly`, async () => {
        const answer = await post({ ...MINIMAL, from: email, to: email, reply_to: email });
        expect(answer.status, JSON.stringify(answer.json)).to.equal(202);
        const stored = await storedJob((answer.json as { job_id: string }).job_id);
        expect(stored.recipients).to.deep.equal([{ email, name: null }]);
        expect(stored.message['from']).to.deep.equal({ email });
      });
    }

    it('when the address is clearly invalid, then 400 at its email', async () => {
      const invalid = [
        'plain',
        '@example.com',
        'user@',
        'user@localhost',
        'user@@example.com',
        '.user@example.com',
        'user.@example.com',
        'us..er@example.com',
        'us er@example.com',
        'user@exa mple.com',
        'user@-example.com',
        'user@example-.com',
        'user@example..com',
        'user@example.com.',
        'user@example.123',
        'user@exa_mple.com',
        'user@[127.0.0.1]',
        'user@xn--zz.com',
        '"quoted"@example.com',
        'a\r\nBcc: victim@example.com',
        'user@example.com\n',
        `${'l'.repeat(65)}@example.com`,
        `user@${'d'.repeat(64)}.com`,
        `${'l'.repeat(60)}@${`${'d'.repeat(60)}.`.repeat(4)}com`,
      ];
      for (const email of invalid) {
        expect(await refusedPaths({ ...MINIMAL, to: email }), email).to.deep.equal(['to.0.email']);
      }
    });

    it('when an address holds a bidi override, a zero-width, control or other invisible character, in any field, then 400 names the field and the character as \\uXXXX, and nothing is stored', async () => {
      const before = await jobCount();
      const cases: Array<[string, string | [string, string], string, string]> = [
        ['to', 'ad\u202emin@example.com', '\u202e', '\\u202e'],
        ['to', 'a\u200b@example.com', '\u200b', '\\u200b'],
        ['to', ['b@example.com', '\ufeffa@example.com'], '\ufeff', '\\ufeff'],
        ['cc', 'a\u2067b@example.com', '\u2067', '\\u2067'],
        ['bcc', 'a\u00adb@example.com', '\u00ad', '\\u00ad'],
        ['from', 'adm\u200ein@example.com', '\u200e', '\\u200e'],
        ['reply_to', 'a\u0007@example.com', '\u0007', '\\u0007'],
        // In the domain, IDNA would drop a variation selector: example.com under another spelling.
        ['to', 'a@exa\ufe0fmple.com', '\ufe0f', '\\ufe0f'],
        // A tag character, beyond U+FFFF: its two halves, as JSON writes it.
        ['to', 'a\u{e0041}@example.com', '\u{e0041}', '\\udb40\\udc41'],
      ];
      for (const [field, value, character, escaped] of cases) {
        const answer = await post({ ...MINIMAL, [field]: value });
        expect(answer.status, escaped).to.equal(400);
        const problem = answer.json as Problem;
        const list = field === 'to' || field === 'cc' || field === 'bcc';
        const path = `${field}${list ? `.${Array.isArray(value) ? value.length - 1 : 0}` : ''}.email`;
        expect(
          (problem.errors ?? []).map((error) => error.path),
          escaped,
        ).to.deep.equal([path]);
        expect(problem.errors![0]!.message, escaped).to.include(`cannot contain ${escaped}`);
        // Never the character itself: it would do in the answer what it did in the address.
        expect(`${problem.detail} ${problem.errors![0]!.message}`, escaped).not.to.include(character);
      }
      expect(await jobCount()).to.equal(before);

      // The admin API's suppressions take addresses by the same rule.
      const { rows } = await service.db.pool.query('select name from apps where id = $1', [service.appId]);
      const suppressions = `/admin/apps/${rows[0].name}/suppressions`;
      const added = await service.request('POST', suppressions, { body: { email: 'ad\u202emin@example.com' }, key: ADMIN_KEY });
      expect(added.status).to.equal(400);
      expect(((await added.json()) as Problem).errors).to.deep.equal([
        {
          path: 'email',
          message: 'not a valid email address: cannot contain \\u202e (a control character, an invisible one, or one that changes the direction of text)',
        },
      ]);
      expect((await service.request('DELETE', `${suppressions}/a%E2%80%8B@example.com`, { key: ADMIN_KEY })).status).to.equal(400);
    });

    it('when a bulk request mixes the newly accepted addresses, then every message is queued', async () => {
      const answer = await post({ messages: ['user@example.xn--p1ai', 'o&reilly@example.com', 'user=tag@example.com'].map((to) => ({ ...MINIMAL, to })) });
      expect(answer.status, JSON.stringify(answer.json)).to.equal(202);
      expect((answer.json as { jobs: unknown[] }).jobs).to.have.length(3);
    });
  });

  describe('a compressed body', () => {
    const json = Buffer.from(JSON.stringify(MINIMAL));

    async function postEncoded(encoding: string, body: Buffer): Promise<{ status: number; problem: Problem }> {
      const res = await fetch(`${service.url}/queue`, {
        method: 'POST',
        headers: { authorization: `Bearer ${service.apiKey}`, 'content-type': 'application/json', 'content-encoding': encoding },
        body,
      });
      return { status: res.status, problem: (await res.json()) as Problem };
    }

    it('when a body is gzip, deflate or br as its Content-Encoding says, then 202', async () => {
      for (const [encoding, body] of [
        ['gzip', gzipSync(json)],
        ['deflate', deflateSync(json)],
        ['br', brotliCompressSync(json)],
      ] as const) {
        expect((await postEncoded(encoding, body)).status, encoding).to.equal(202);
      }
    });

    it('when the Content-Encoding is one jetpost does not decode (compress, two codings, two headers), then 415 naming it and the encodings it takes, and nothing is stored', async () => {
      const before = await jobCount();
      for (const encoding of ['compress', 'gzip, gzip', 'zstd']) {
        const answer = await postEncoded(encoding, gzipSync(json));
        expect(answer.status, encoding).to.equal(415);
        expect(answer.problem.detail, encoding).to.contain(`"${encoding}"`);
        expect(answer.problem.detail, encoding).to.match(/gzip, deflate or br/);
      }
      expect(await jobCount()).to.equal(before);
    });

    it('when a body is not what its Content-Encoding says (plain, cut short, another encoding), then 400 naming the encoding and what to send, and nothing is stored', async () => {
      const before = await jobCount();
      for (const [encoding, body] of [
        ['gzip', json],
        ['gzip', gzipSync(json).subarray(0, 20)],
        ['deflate', gzipSync(json)],
        ['br', gzipSync(json)],
      ] as const) {
        const answer = await postEncoded(encoding, body);
        expect(answer.status, encoding).to.equal(400);
        expect(answer.problem.detail, encoding).to.match(
          new RegExp(`^the request body is not valid ${encoding} data, as its Content-Encoding says it is \\(.+\\): send it`),
        );
      }
      expect(await jobCount()).to.equal(before);
    });
  });

  describe('a bulk request with very many problems', () => {
    it('when 499 of 500 messages have 50 bad addresses each, then the 400 lists the problems of the first messages only, about 100, and says where it stopped; unknown fields are named up to 10 and counted', async () => {
      const bad = { from: 'app@example.com', to: Array.from({ length: 50 }, (_, i) => `bad${i}@@x`), text: 't' };
      const answer = await post({ messages: [MINIMAL, ...Array<unknown>(499).fill(bad)] });
      expect(answer.status).to.equal(400);
      const problem = answer.json as Problem;
      expect(problem.errors).to.have.length(100);
      expect(new Set(problem.errors!.map((error) => error.path.split('.').slice(0, 2).join('.')))).to.deep.equal(new Set(['messages.1', 'messages.2']));
      expect(problem.detail).to.equal(
        'the request is not valid: see errors, which list the problems of messages 0 to 2 only; the 497 after were not checked: fix these and send it again',
      );

      const unknown = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`field${i}`, i]));
      for (const [body, at] of [
        [{ ...MINIMAL, ...unknown }, ''],
        [{ messages: [{ ...MINIMAL, ...unknown }] }, 'messages.0'],
      ] as const) {
        const errors = ((await post(body)).json as Problem).errors!;
        expect(errors.slice(0, 10).map((error) => error.message)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `unknown field "field${i}"`));
        expect(errors.slice(10)).to.deep.equal([{ path: at, message: 'and 4990 more unknown fields' }]);
      }
    });
  });

  describe('a retry whose send_at has left the window since', () => {
    // Only the window's lower end moves past a stored send_at: 24 hours back, as time goes by.
    const HOUR_MS = 3600 * 1000;
    const ago = (hours: number) => new Date(Date.now() - hours * HOUR_MS).toISOString();

    /** Stores `body` under `key` as POST /queue did `hoursAgo` hours ago, when its send_at was within the window. */
    async function storedEarlier(body: Record<string, unknown>, key: string, hoursAgo: number): Promise<string[]> {
      const then = () => new Date(Date.now() - hoursAgo * HOUR_MS);
      const jobs = createJobService({
        pool: service.db.pool,
        channels: notifyChannels(TEST_SCHEMA),
        maxAttempts: 3,
        wakeLocal: () => undefined,
        bus: createBus(),
      });
      const request = createQueueRequestParser(then)(body, key);
      expect(request.refusal).to.equal(undefined);
      return (await jobs.enqueue(service.appId, request.jobs, key)).jobs.map((job) => job.id);
    }

    async function postKeyed(body: unknown, key?: string): Promise<{ status: number; replayed: string | null; json: Record<string, unknown> }> {
      const res = await service.request('POST', '/queue', { body, headers: key === undefined ? {} : { 'idempotency-key': key } });
      return { status: res.status, replayed: res.headers.get('idempotent-replayed'), json: (await res.json()) as Record<string, unknown> };
    }

    it('when a request stored with send_at 23 hours ago (meaning now) comes again 2 hours later with its Idempotency-Key, then its job is answered, not a 400; as a new request it is still a 400', async () => {
      const body = { ...MINIMAL, send_at: ago(25) };
      const [jobId] = await storedEarlier(body, 'late-single', 2);
      const before = await jobCount();

      const retry = await postKeyed(body, 'late-single');
      expect(retry.status, JSON.stringify(retry.json)).to.equal(202);
      expect(retry.replayed).to.equal('true');
      expect(retry.json['job_id']).to.equal(jobId);

      for (const [what, answer] of [
        ['without a key', await postKeyed(body)],
        ['with another key', await postKeyed(body, 'late-single-new')],
        ['another body under the key', await postKeyed({ ...body, text: 'Other' }, 'late-single')],
      ] as const) {
        expect(answer.status, what).to.equal(400);
        expect((answer.json as unknown as Problem).errors, what).to.deep.equal([
          { path: 'send_at', message: 'must be within the next 30 days (or the last 24 hours, meaning now)' },
        ]);
      }
      expect(await jobCount()).to.equal(before);
    });

    it('when a bulk request with send_at 21 hours ago comes again 5 hours later, its key in the body field idempotency_key, then its jobs are answered', async () => {
      const body = { messages: [{ ...MINIMAL, send_at: ago(26) }, MINIMAL], idempotency_key: 'late-behind' };
      const jobIds = await storedEarlier(body, 'late-behind', 5);

      const retry = await postKeyed(body);
      expect(retry.status, JSON.stringify(retry.json)).to.equal(202);
      expect(retry.replayed).to.equal('true');
      expect((retry.json['jobs'] as Array<{ job_id: string }>).map((job) => job.job_id)).to.deep.equal(jobIds);
    });
  });
});
