// Property-based fuzzing of the two routes the outside world feeds: POST /queue (apps) and
// POST /events (Mailjet, or anyone who finds the URL). Thousands of generated bodies, content types
// and headers: never a 5xx, the process stays up, and what was stored before is unchanged after.
// POST /queue gets two properties: any body at all, and hostile messages (NUL, lone surrogates,
// deep nesting, sizes at the caps, odd addresses, bulk mixes), where every 202 must read back from
// the database exactly as sent and every refusal must store nothing. `npm test` runs a sample;
// FAULT_SCALE=full (npm run test:faults) runs 10,000 POST /queue bodies.
import { expect } from 'chai';
import fc from 'fast-check';

import { recordFigures, reportFiguresAfterRun } from '../support/faults/figures.js';
import { byScale } from '../support/faults/scale.js';
import { seconds } from '../support/faults/wait.js';
import { EVENTS_PASSWORD, EVENTS_USER, startTestService, type TestService } from '../support/service.js';

reportFiguresAfterRun();

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 1500);
const QUEUE_RUNS = Number(process.env['FUZZ_RUNS'] ?? byScale({ fast: 1500, full: 5000 }));
const HOSTILE_RUNS = Number(process.env['FUZZ_RUNS'] ?? byScale({ fast: 200, full: 5000 }));

/** Printable ASCII only: what an HTTP header can carry. */
const headerText = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 });
const address = fc.oneof(fc.emailAddress(), fc.string({ maxLength: 40 }), fc.constant('a@b'), fc.constant('x\r\nBcc: victim@example.com'));
const addressValue = fc.oneof(address, fc.record({ email: address, name: fc.option(fc.string({ maxLength: 300 }), { nil: undefined }) }), fc.jsonValue());
const messageLike = fc.record(
  {
    from: addressValue,
    to: fc.oneof(addressValue, fc.array(addressValue, { maxLength: 60 })),
    cc: fc.array(addressValue, { maxLength: 5 }),
    bcc: fc.array(addressValue, { maxLength: 5 }),
    subject: fc.oneof(fc.string({ maxLength: 300 }), fc.constant('Hi\r\nBcc: x@example.com')),
    text: fc.string({ maxLength: 200 }),
    html: fc.string({ maxLength: 200 }),
    template_id: fc.oneof(fc.integer(), fc.double(), fc.string()),
    variables: fc.jsonValue(),
    headers: fc.dictionary(fc.string({ maxLength: 20 }), fc.oneof(fc.string({ maxLength: 50 }), fc.jsonValue())),
    attachments: fc.array(
      fc.record({ filename: fc.string(), content_type: fc.string(), content: fc.string(), content_id: fc.string() }, { requiredKeys: [] }),
      { maxLength: 3 },
    ),
    custom_id: fc.oneof(fc.string({ maxLength: 300 }), fc.integer()),
    metadata: fc.jsonValue(),
    send_at: fc.oneof(
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.string(),
      fc.integer(),
    ),
    priority: fc.oneof(fc.integer({ min: -5, max: 10 }), fc.string()),
    idempotency_key: fc.oneof(headerText, fc.integer()),
    track_opens: fc.oneof(fc.constantFrom('account_default', 'disabled', 'enabled'), fc.string({ maxLength: 20 }), fc.jsonValue()),
    track_clicks: fc.oneof(fc.constantFrom('account_default', 'disabled', 'enabled'), fc.string({ maxLength: 20 }), fc.jsonValue()),
    campaign: fc.oneof(fc.string({ maxLength: 300 }), fc.jsonValue()),
    deduplicate_campaign: fc.oneof(fc.boolean(), fc.jsonValue()),
    event_payload: fc.oneof(fc.string({ maxLength: 300 }), fc.jsonValue()),
    url_tags: fc.oneof(fc.string({ maxLength: 300 }), fc.jsonValue()),
    monitoring_category: fc.oneof(fc.string({ maxLength: 300 }), fc.jsonValue()),
    mailjet_priority: fc.oneof(fc.integer({ min: -5, max: 10 }), fc.double(), fc.jsonValue()),
    template_error_reporting: addressValue,
    template_error_deliver: fc.oneof(fc.boolean(), fc.jsonValue()),
    sandbox: fc.oneof(fc.boolean(), fc.constant('true'), fc.jsonValue()),
    [`x${'y'.repeat(3)}`]: fc.jsonValue(),
  },
  { requiredKeys: [] },
);
const queueBody = fc.oneof(
  messageLike.map((m) => JSON.stringify(m)),
  fc.array(messageLike, { maxLength: 4 }).map((messages) => JSON.stringify({ messages })),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.constant('{"to":'),
  fc.constant(''),
);
const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'application/merge-patch+json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  '',
  'application/json; charset=made-up',
);

// ---- hostile messages for POST /queue --------------------------------------------------------

const MiB = 1024 * 1024;
/** Code units of every kind: NUL, lone surrogate halves, pairs, line breaks, any BMP unit, any code point. */
const hostileUnit = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '\u0000',
      '\ud800',
      '\udbff',
      '\udc00',
      '\udfff',
      '\ud83d\ude00',
      '\u00e9',
      '\u202e',
      '\ufeff',
      '\u2028',
      '"',
      '\\',
      '<',
      '\r\n',
      'a',
      ' ',
    ),
  },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit)) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);
const hostileText = fc.oneof(
  { weight: 9, arbitrary: fc.string({ unit: hostileUnit, minLength: 1, maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constant('__proto__') },
);
/** Printable text in any script: what a well-behaved app sends. */
const cleanText = (maxLength: number) => fc.string({ unit: 'grapheme', maxLength });

const ATEXT_AND_WORSE = [..."abcXYZ019!#$%&'*+-/=?^_`{|}~.", '\u00e9', '\u7528', '\u044f', ' ', '"', '@', '(', ',', '\u0000', '\ud800', '\u00a0'];
const domainLabel = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'abz09-_'), maxLength: 66 }),
  fc.constantFrom(
    'example',
    'xn--p1ai',
    'b\u00fccher',
    '\u043f\u0440\u0438\u043c\u0435\u0440',
    '\u0440\u0444',
    'xn--zz',
    '\u4f8b\u5b50',
    'com',
    '123',
    '[127.0.0.1]',
    'EXAMPLE',
  ),
);
/** Addresses at the edges of RFC 5321/6531: odd but valid, and clearly not. */
const oddAddress = fc.oneof(
  fc
    .tuple(fc.string({ unit: fc.constantFrom(...ATEXT_AND_WORSE), maxLength: 70 }), fc.array(domainLabel, { minLength: 1, maxLength: 4 }))
    .map(([local, labels]) => `${local}@${labels.join('.')}`),
  fc.constantFrom(
    'user@example.xn--p1ai',
    'o&reilly@example.com',
    'user=tag@example.com',
    'j\u00f6rg@b\u00fccher.de',
    '"quoted"@example.com',
    'user@[127.0.0.1]',
    'a@b',
    'a..b@example.com',
    'user@localhost',
    `${'l'.repeat(64)}@example.com`,
    `${'l'.repeat(65)}@example.com`,
  ),
  fc.emailAddress(),
);
const cleanAddress = fc.constantFrom(
  'a@example.com',
  'b@example.org',
  'o&reilly@example.com',
  'user=tag@example.xn--p1ai',
  'j\u00f6rg@b\u00fccher.de',
  '\u043f\u043e\u0447\u0442\u0430@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444',
);
const withName = (email: string) => fc.oneof(fc.constant(email), fc.record({ email: fc.constant(email), name: cleanText(30) }, { requiredKeys: ['email'] }));
const addressOf = (email: fc.Arbitrary<string>) => email.chain(withName);
/** Distinct addresses: a repeated one is refused, which the other classes cover. */
const addressesOf = (email: fc.Arbitrary<string>, maxLength: number) =>
  fc.uniqueArray(email, { minLength: 1, maxLength, selector: (address) => address.toLowerCase() }).chain((emails) => fc.tuple(...emails.map(withName)));

/** A message a careful app would send: usually valid (a repeated address or a long subject is not). */
const cleanMessage = fc.record(
  {
    from: addressOf(cleanAddress),
    to: addressesOf(cleanAddress, 3),
    cc: addressOf(fc.constantFrom('cc@example.com', 'copy+1@example.org')),
    subject: cleanText(60),
    text: cleanText(200),
    html: cleanText(200).map((text) => `<p>${text}</p>`),
    custom_id: cleanText(40).filter((id) => id.length > 0),
    metadata: fc.dictionary(cleanText(10), fc.jsonValue({ maxDepth: 3, stringUnit: 'grapheme' }), { maxKeys: 4 }),
    headers: fc.dictionary(fc.constantFrom('X-Campaign', 'X-Tag', 'List-Unsubscribe'), cleanText(40), { maxKeys: 2 }),
    attachments: fc.array(
      fc.record({
        filename: cleanText(20).map((name) => `${name}.bin`),
        content_type: fc.constant('application/octet-stream'),
        content: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes).toString('base64')),
      }),
      { maxLength: 2 },
    ),
    priority: fc.integer({ min: 0, max: 3 }),
  },
  { requiredKeys: ['from', 'to', 'text'] },
);

type Message = Record<string, unknown>;

/** Where a hostile string goes: every kind of text field a message has, keys included. */
const TEXT_TARGETS = [
  'subject',
  'text',
  'html',
  'custom_id',
  'from.name',
  'to.name',
  'filename',
  'metadata.key',
  'metadata.value',
  'variables.value',
  'headers.value',
  'idempotency_key',
  'campaign',
  'event_payload',
  'url_tags',
  'monitoring_category',
] as const;

function withText(message: Message, target: (typeof TEXT_TARGETS)[number], text: string, unique: string): Message {
  switch (target) {
    case 'from.name':
      return { ...message, from: { email: 'app@example.com', name: text } };
    case 'to.name':
      return { ...message, to: { email: 'hostile@example.com', name: text } };
    case 'filename':
      return { ...message, attachments: [{ filename: text, content_type: 'text/plain', content: 'QQ==' }] };
    case 'metadata.key':
      return { ...message, metadata: { [text]: 1 } };
    case 'metadata.value':
      return { ...message, metadata: { deep: [{ value: text }] } };
    case 'variables.value':
      return { ...message, variables: { list: [text] } };
    case 'headers.value':
      return { ...message, headers: { 'X-Hostile': text } };
    case 'idempotency_key':
      // Unique per run: a replay would answer jobs this test deletes after checking them.
      return { ...message, idempotency_key: `${unique}${text}` };
    default:
      return { ...message, [target]: text };
  }
}

function nestedValue(depth: number, kind: 'object' | 'array', leaf: unknown): unknown {
  let value = leaf;
  for (let level = 0; level < depth; level += 1) {
    value = kind === 'object' ? { a: value } : [value];
  }
  return value;
}

/** Runs of the same few characters: sizes at the caps without megabytes of random data per run. */
const sized = (length: number, unit: string) => unit.repeat(Math.ceil(length / unit.length)).slice(0, length);

const SIZE_CASES = fc.oneof(
  // html or text about its 5 MiB cap, in 1- or 2-byte characters.
  fc
    .record({ field: fc.constantFrom('html', 'text'), bytes: fc.integer({ min: 5 * MiB - 4, max: 5 * MiB + 4 }), unit: fc.constantFrom('h', '\u00e9') })
    .map(({ field, bytes, unit }) => (message: Message) => ({ ...message, [field]: sized(Math.floor(bytes / Buffer.byteLength(unit)), unit) })),
  // Attachments adding up to about the 14 MiB message limit, in 1 to 50 files.
  fc
    .record({ count: fc.integer({ min: 1, max: 50 }), base64: fc.integer({ min: 14 * MiB - 4096, max: 14 * MiB + 64 }) })
    .map(({ count, base64 }) => (message: Message) => {
      const each = Math.floor(base64 / count / 4) * 4;
      const content = sized(each, 'QUJD');
      return {
        ...message,
        attachments: Array.from({ length: count }, (_, i) => ({ filename: `f${i}.bin`, content_type: 'application/octet-stream', content })),
      };
    }),
  // An ordinary big attachment (the 4 MB PDF).
  fc.integer({ min: 3 * MiB, max: 6 * MiB }).map((bytes) => (message: Message) => ({
    ...message,
    attachments: [{ filename: 'report.pdf', content_type: 'application/pdf', content: sized(Math.ceil(bytes / 3) * 4, 'JVBE') }],
  })),
);

/** One message of a hostile class, or a clean one. */
const hostileMessage = fc.oneof(
  { weight: 3, arbitrary: cleanMessage },
  {
    weight: 4,
    arbitrary: fc
      .tuple(cleanMessage, fc.constantFrom(...TEXT_TARGETS), hostileText, fc.uuid())
      .map(([message, target, text, unique]) => withText(message, target, text, unique)),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        cleanMessage,
        fc.constantFrom('metadata', 'variables', 'extra'),
        fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(100, 2000)),
        fc.constantFrom('object' as const, 'array' as const),
        fc.oneof(fc.constant(1), hostileText),
      )
      .map(([message, field, depth, kind, leaf]) => ({ ...message, [field]: { a: nestedValue(depth - 1, kind, leaf) } })),
  },
  { weight: 1, arbitrary: fc.tuple(cleanMessage, SIZE_CASES).map(([message, resize]) => resize(message)) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(cleanMessage, addressesOf(oddAddress, 3), fc.option(addressOf(oddAddress), { nil: undefined }))
      .map(([message, to, replyTo]) => ({ ...message, to, ...(replyTo === undefined ? {} : { reply_to: replyTo }) })),
  },
);
/** Raw bodies nested far deeper than JSON.stringify could write: in metadata, variables, an address, an unknown field. */
const DEEP = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
const deepRawBody = fc
  .constantFrom('metadata', 'variables', 'to', 'extra', 'messages')
  .map((field) =>
    field === 'messages'
      ? `{"messages":[${DEEP}]}`
      : `{"from":"app@example.com",${field === 'to' ? '' : '"to":"a@example.com",'}"text":"x","${field}":${DEEP}}`,
  );
const hostileBody = fc.oneof(
  { weight: 6, arbitrary: hostileMessage.map((message) => JSON.stringify(message)) },
  { weight: 3, arbitrary: fc.array(hostileMessage, { minLength: 2, maxLength: 5 }).map((messages) => JSON.stringify({ messages })) },
  { weight: 1, arbitrary: deepRawBody },
);

interface StoredJob {
  message: unknown;
  custom_id: string | null;
  metadata: unknown;
  recipients: Array<{ kind: string; email: string; name: string | null }>;
}

/** What a message must read back as, derived from the request alone: addresses given as strings become {email}. */
function expectedStored(message: Message): StoredJob {
  const address = (value: unknown) => (typeof value === 'string' ? { email: value } : value);
  const list = (value: unknown) => (value === undefined ? [] : Array.isArray(value) ? value : [value]).map(address) as Array<{ email: string; name?: string }>;
  const content: Message = {};
  for (const field of [
    'subject',
    'text',
    'html',
    'template_id',
    'template_language',
    'variables',
    'headers',
    'attachments',
    'campaign',
    'event_payload',
    'url_tags',
    'monitoring_category',
  ]) {
    if (message[field] !== undefined) {
      content[field] = message[field];
    }
  }
  for (const field of ['from', 'reply_to']) {
    if (message[field] !== undefined) {
      content[field] = address(message[field]);
    }
  }
  return {
    message: content,
    custom_id: (message['custom_id'] as string | undefined) ?? null,
    metadata: message['metadata'] ?? null,
    recipients: (['to', 'cc', 'bcc'] as const).flatMap((kind) => list(message[kind]).map((r) => ({ kind, email: r.email, name: r.name ?? null }))),
  };
}

/** A Mailjet-like event, its MessageID written as raw JSON text of any size or shape. */
const eventText = fc
  .record(
    {
      event: fc.oneof(fc.constantFrom('sent', 'open', 'click', 'bounce', 'blocked', 'spam', 'unsub'), fc.string({ maxLength: 10 })),
      time: fc.oneof(fc.integer({ min: -10, max: 4_000_000_000 }), fc.double(), fc.string({ maxLength: 12 })),
      email: fc.oneof(fc.emailAddress(), fc.string({ maxLength: 20 })),
      Message_GUID: fc.oneof(fc.uuid(), fc.string({ maxLength: 40 })),
      hard_bounce: fc.oneof(fc.boolean(), fc.string({ maxLength: 5 })),
      url: fc.string({ maxLength: 60 }),
      CustomID: fc.oneof(fc.constant('jetpost-1'), fc.string({ maxLength: 20 })),
      extra: fc.jsonValue(),
    },
    { requiredKeys: [] },
  )
  .chain((fields) =>
    fc
      .oneof(
        fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String),
        fc.constantFrom('-1', '1.5', '1e30', '"576460765503091475"', 'null', '0', '18446744073709551616'),
      )
      .map((id) => {
        const rest = JSON.stringify(fields).slice(1);
        return `{"MessageID":${id}${rest === '}' ? '' : ','}${rest}`;
      }),
  );
const eventsBody = fc.oneof(
  fc.array(eventText, { maxLength: 5 }).map((events) => `[${events.join(',')}]`),
  eventText,
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.constant('[{"__proto__":{"polluted":true},"event":"open","time":1,"MessageID":1,"email":"a@b.c"}]'),
);

/** fast-check's failure report, with the counterexample and the error cut to a readable length. */
function shortReport(details: fc.RunDetails<[string]>): void {
  if (details.failed) {
    const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(
      `property failed after ${details.numRuns} runs (seed ${details.seed}, path ${details.counterexamplePath}): ${error.slice(0, 2000)}\n` +
        `counterexample: ${String(details.counterexample?.[0]).slice(0, 2000)}`,
    );
  }
}

function describeAnswers(answers: ReadonlyMap<number, number>): string {
  return [...answers]
    .sort(([a], [b]) => a - b)
    .map(([status, count]) => `${status} × ${count}`)
    .join(', ');
}

interface Snapshot {
  jobs: unknown[];
  recipients: unknown[];
  events: unknown[];
}

async function snapshot(service: TestService, upTo: { jobs: number; events: number }): Promise<Snapshot> {
  const q = async (sql: string, max: number) => (await service.db.pool.query(sql, [max])).rows;
  return {
    jobs: await q('select * from email_send_jobs where id <= $1 order by id', upTo.jobs),
    recipients: await q('select * from email_recipients where job_id <= $1 order by id', upTo.jobs),
    events: await q('select * from email_events where id <= $1 order by id', upTo.events),
  };
}

describe('fuzzing POST /queue and POST /events', function () {
  this.timeout(300_000);
  let service: TestService;
  let stored: Snapshot;
  let upTo: { jobs: number; events: number };

  before(async () => {
    // No consumers: the stored jobs must stay exactly as they are; no rate limit: every request is parsed.
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', QUEUE_RATE_LIMIT: '0', EVENTS_RATE_LIMIT: '0' } });
    const seeded = await service.request('POST', '/queue', {
      body: { messages: [1, 2, 3].map((i) => ({ from: 'app@example.com', to: `seed${i}@example.com`, text: 'seed', metadata: { i } })) },
    });
    expect(seeded.status).to.equal(202);
    await service.postEvents('[{"event":"open","time":1700000000,"MessageID":576460765503091475,"email":"seed1@example.com"}]');
    const { rows } = await service.db.pool.query(
      'select (select max(id) from email_send_jobs)::int as jobs, (select max(id) from email_events)::int as events',
    );
    upTo = rows[0];
    stored = await snapshot(service, upTo);
  });

  after(async () => {
    await service?.stop();
  });

  it(`when ${QUEUE_RUNS} generated requests hit POST /queue, then none gets a 5xx`, async () => {
    const started = Date.now();
    const answers = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(queueBody, contentType, fc.option(headerText, { nil: undefined }), fc.boolean(), async (body, type, idempotencyKey, withKey) => {
        const headers: Record<string, string> = {};
        if (type !== '') {
          headers['content-type'] = type;
        }
        if (idempotencyKey !== undefined) {
          headers['idempotency-key'] = idempotencyKey;
        }
        const res = await service.request('POST', '/queue', { rawBody: body, headers, key: withKey ? service.apiKey : 'jp_nope' });
        const text = await res.text();
        answers.set(res.status, (answers.get(res.status) ?? 0) + 1);
        expect(res.status, `${res.status} for ${type} ${body.slice(0, 200)}: ${text.slice(0, 300)}`).to.be.below(500);
      }),
      { numRuns: QUEUE_RUNS },
    );
    recordFigures(`fuzz POST /queue, any body`, `${QUEUE_RUNS} requests`, describeAnswers(answers), seconds(started));
  });

  it(`when ${HOSTILE_RUNS} hostile messages (NUL, lone surrogates, nesting, sizes at the caps, odd addresses, bulk mixes) hit POST /queue, then none gets a 5xx, each 202 reads back exactly as sent, and each refusal stores nothing`, async function () {
    // Megabyte bodies on a shared 2-core machine: a budget that holds when it is busy.
    this.timeout(byScale({ fast: 600_000, full: 3_600_000 }));
    const started = Date.now();
    const answers = new Map<number, number>();
    const pool = service.db.pool;
    const jobCount = async () => (await pool.query('select count(*)::int as n from email_send_jobs')).rows[0].n as number;
    await fc.assert(
      fc.asyncProperty(hostileBody, async (body) => {
        const before = await jobCount();
        const res = await service.request('POST', '/queue', { rawBody: body, headers: { 'content-type': 'application/json' } });
        const text = await res.text();
        answers.set(res.status, (answers.get(res.status) ?? 0) + 1);
        const what = `${res.status} for ${body.slice(0, 300)}: ${text.slice(0, 500)}`;
        expect(res.status, what).to.be.oneOf([202, 400, 413]);
        if (res.status !== 202) {
          expect(res.headers.get('content-type'), what).to.match(/^application\/problem\+json/);
          const problem = JSON.parse(text) as { type: string; errors?: unknown[] };
          // Every refusal names what to fix, but the one for a body over QUEUE_BODY_LIMIT, which is never parsed.
          if (!problem.type.endsWith('/payload-too-large')) {
            expect(problem.errors?.length ?? 0, what).to.be.above(0);
          }
          expect(await jobCount(), `nothing may be stored: ${what}`).to.equal(before);
          return;
        }
        const sent = JSON.parse(body) as Message & { messages?: Message[] };
        const answer = JSON.parse(text) as { job_id?: string; jobs?: Array<{ job_id: string }> };
        const ids = answer.jobs?.map((job) => job.job_id) ?? [answer.job_id!];
        const messages = sent.messages ?? [sent];
        expect(ids, what).to.have.length(messages.length);
        for (const [index, id] of ids.entries()) {
          const [job] = (await pool.query('select message, custom_id, metadata from email_send_jobs where id = $1', [id])).rows;
          const recipients = (await pool.query('select kind, email, name from email_recipients where job_id = $1 order by position', [id])).rows;
          expect({ ...job, recipients }, `job ${index} of ${body.slice(0, 300)}`).to.deep.equal(expectedStored(messages[index]!));
        }
        // Checked: gone again, so that the megabyte-sized ones do not pile up (nothing replays them).
        await pool.query('delete from email_recipients where job_id = any($1::bigint[])', [ids]);
        await pool.query('delete from email_send_jobs where id = any($1::bigint[])', [ids]);
      }),
      // No shrinking, and a report cut short: a failing body may be megabytes.
      { numRuns: HOSTILE_RUNS, endOnFailure: true, reporter: shortReport },
    );
    recordFigures(`fuzz POST /queue, hostile messages`, `${HOSTILE_RUNS} requests`, describeAnswers(answers), seconds(started));
    expect(answers.get(202), 'some hostile-class messages are valid and stored').to.be.above(0);
    expect(answers.get(400), 'most hostile ones are refused').to.be.above(0);
  });

  it(`when ${RUNS} generated callbacks hit POST /events, then none gets a 5xx`, async () => {
    const auth = `Basic ${Buffer.from(`${EVENTS_USER}:${EVENTS_PASSWORD}`).toString('base64')}`;
    await fc.assert(
      fc.asyncProperty(eventsBody, contentType, fc.boolean(), async (body, type, authed) => {
        const headers: Record<string, string> = authed ? { authorization: auth } : { authorization: 'Basic bWFpbGpldDp3cm9uZw==' };
        if (type !== '') {
          headers['content-type'] = type;
        }
        const res = await fetch(`${service.url}/events`, { method: 'POST', headers, body });
        const text = await res.text();
        expect(res.status, `${res.status} for ${body.slice(0, 200)}: ${text.slice(0, 300)}`).to.be.below(500);
      }),
      { numRuns: RUNS },
    );
  });

  it('after the fuzzing, the process still serves and what was stored before is unchanged', async () => {
    expect((await fetch(`${service.url}/healthz`)).status).to.equal(200);
    expect(({} as Record<string, unknown>)['polluted']).to.equal(undefined);
    expect(await snapshot(service, upTo)).to.deep.equal(stored);
  });
});
