// Property-based fuzzing of POST /events with hostile callback bodies: NUL characters and unpaired
// surrogates (as JSON escapes) in any value or key, fields nested up to 6,000 deep, fields of up to
// 300 KB, wrong types, non-objects, valid and invalid events mixed, and now and then a batch of
// thousands. Every body is answered without a 5xx; a JSON body is a 200 whose receipt counts each
// element right; every valid event of a mixed batch is stored, exactly as sent; a body that is not
// JSON is a 400 and stores no event; what was stored before the fuzzing is unchanged after it.
// `npm test` runs a small sample; `npm run test:faults` (FAULT_SCALE=full) runs 10,000 bodies.
import { expect } from 'chai';
import fc from 'fast-check';

import { byScale, FAULT_SCALE } from '../support/faults/scale.js';
import { EVENTS_PASSWORD, EVENTS_USER, startTestService, type TestService } from '../support/service.js';

const RUNS = byScale({ fast: 500, full: 10_000 });
const AUTH = `Basic ${Buffer.from(`${EVENTS_USER}:${EVENTS_PASSWORD}`).toString('base64')}`;
/** The limits of src/domain/event-parse.ts, restated: the oracle must not borrow them from the code under test. */
const MAX_DEPTH = 32;
const MAX_LENGTH = 256 * 1024;
const TYPES = ['sent', 'open', 'click', 'bounce', 'blocked', 'spam', 'unsub'] as const;

/** Each valid event gets a MessageID of its own (above 2^53), so its row can be found and compared. */
let nextMessageId = 2n ** 60n;

interface Element {
  /** JSON text of the element, as sent. */
  text: string;
  /** For a valid event: its MessageID and the payload it must be stored with. */
  valid?: { messageId: string; payload: Record<string, unknown> };
}

/** What a value becomes once parsed losslessly: integers written with more than 15 digits are strings. */
function lossless(value: unknown): unknown {
  if (typeof value === 'number') {
    // As written in JSON: -0 is 0, and long integers are strings.
    const written = JSON.stringify(value);
    return /^-?\d{16,}$/.test(written) ? written : (JSON.parse(written) as number);
  }
  if (Array.isArray(value)) {
    return value.map(lossless);
  }
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, lossless(inner)]));
  }
  return value;
}

/** Extra fields Mailjet might add: any JSON (printable text), under keys that are not Mailjet's own. */
const extraFields = fc.dictionary(
  fc
    .string({ minLength: 1, maxLength: 12 })
    .map((key) => `x_${key}`)
    .filter((key) => key !== 'x___proto__'),
  fc.jsonValue({ maxDepth: 3 }).filter((value) => !JSON.stringify(value).includes('"__proto__"')),
  { maxKeys: 4 },
);

const validEvent: fc.Arbitrary<() => Element> = fc
  .record({
    event: fc.constantFrom(...TYPES),
    time: fc.integer({ min: 0, max: 4_000_000_000 }),
    email: fc.emailAddress(),
    Message_GUID: fc.oneof(fc.uuid(), fc.constant('')),
    agent: fc.string({ maxLength: 100, unit: 'grapheme' }),
    hard_bounce: fc.boolean(),
    extra: extraFields,
  })
  // The MessageID is drawn when the body is built, so that shrinking never reuses one.
  .map(({ extra, ...fields }) => () => {
    const messageId = String(nextMessageId++);
    const payload = { ...fields, ...extra };
    return {
      text: `{"MessageID":${messageId},${JSON.stringify(payload).slice(1)}`,
      valid: { messageId, payload: { MessageID: messageId, ...(lossless(payload) as object) } },
    };
  });

/** A JSON string escape for a character PostgreSQL refuses or would alter. */
const unstorable = fc.constantFrom('\\u0000', '\\ud800', '\\udbff', '\\udc00', '\\udfff', 'a\\u0000b', '\\ud83d', '\\ude00\\ud83d');

/** Hostile elements of at most a few KB. */
const smallHostileEvent: fc.Arbitrary<() => Element> = fc.oneof(
  // NUL or an unpaired surrogate in a value or a key, at any depth: in the address the event is
  // kept aside; anywhere else it is stored with the character written as its escape, which is the
  // JSON escape sent, read as plain text.
  fc.tuple(fc.constantFrom('email', 'agent', 'Payload', 'url', 'x_key', 'nested'), unstorable, fc.boolean()).map(([field, bad, inKey]) => () => {
    const value = field === 'nested' ? `{"a":["ok",{"b":"${bad}"}]}` : `"x${bad}y"`;
    const member = inKey ? `"k${bad}":1` : `"${field}":${value}`;
    const messageId = String(nextMessageId++);
    const text = `{"event":"open","time":1700000000,"MessageID":${messageId},"email":"a@example.com",${member}}`;
    if (field === 'email' && !inKey) {
      return { text: text.replace('"email":"a@example.com",', '') };
    }
    const stored = inKey ? { [`k${bad}`]: 1 } : { [field]: field === 'nested' ? { a: ['ok', { b: bad }] } : `x${bad}y` };
    return { text, valid: { messageId, payload: { event: 'open', time: 1700000000, MessageID: messageId, email: 'a@example.com', ...stored } } };
  }),
  // Nested beyond the limit, in a field or as the whole element.
  fc.tuple(fc.integer({ min: MAX_DEPTH, max: 6000 }), fc.boolean()).map(([depth, whole]) => () => {
    const nesting = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    return { text: whole ? nesting : `{"event":"open","time":1,"MessageID":${nextMessageId++},"email":"a@example.com","x":${nesting}}` };
  }),
  // Wrong or missing required fields.
  fc
    .record(
      {
        event: fc.oneof(fc.constantFrom('delivered', 'SENT', ''), fc.integer()),
        time: fc.oneof(
          fc.string({ maxLength: 5 }),
          fc.double({ min: 0.1, max: 10, noNaN: true }).filter((t) => !Number.isInteger(t)),
          // Not a time at all (any whole number is one, however far from now: src/domain/event-time.ts).
          fc.constantFrom(null, true),
        ),
        email: fc.oneof(fc.constant(''), fc.integer(), fc.constant(null)),
        MessageID: fc.oneof(fc.constant(-1), fc.constant('abc'), fc.constant(0), fc.constant('1e3')),
      },
      { requiredKeys: [] },
    )
    .filter((fields) => Object.keys(fields).length > 0)
    .map((fields) => () => ({ text: JSON.stringify({ event: 'open', time: 1, email: 'a@example.com', MessageID: 1, ...fields }) })),
  // Not an event object.
  fc
    .oneof(
      fc.jsonValue({ maxDepth: 2 }).filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)),
      fc.constant([]),
    )
    .map((value) => () => ({
      text: JSON.stringify(value),
    })),
);

/** Any hostile element, including one that makes the event larger than the limit. */
const hostileEvent: fc.Arbitrary<() => Element> = fc.oneof(
  { weight: 9, arbitrary: smallHostileEvent },
  {
    weight: 1,
    arbitrary: fc.integer({ min: MAX_LENGTH, max: 300_000 }).map((size) => () => ({
      text: `{"event":"click","time":1,"MessageID":${nextMessageId++},"email":"a@example.com","agent":"${'x'.repeat(size)}"}`,
    })),
  },
);

/** A body as a list of element makers: mostly small mixed batches, now and then thousands of events. */
const batch = fc.oneof(
  { weight: 60, arbitrary: fc.array(fc.oneof(validEvent, hostileEvent), { minLength: 0, maxLength: 12 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 1000, max: 2500 }), validEvent, smallHostileEvent)
      .map(([size, valid, hostile]) => Array.from({ length: size }, (_, i) => (i % 10 === 9 ? hostile : valid))),
  },
);

type Body = { kind: 'array' | 'single'; elements: Element[] } | { kind: 'not-json'; text: string; messageIds: string[] };

const body: fc.Arbitrary<() => Body> = fc.oneof(
  { weight: 8, arbitrary: batch.map((makers) => () => ({ kind: 'array' as const, elements: makers.map((make) => make()) })) },
  {
    weight: 2,
    // Version 1: one bare element (an element that is itself an array would be read as a grouped body).
    arbitrary: fc.oneof(validEvent, hostileEvent).map((make) => () => {
      const element = make();
      return { kind: element.text.startsWith('[') ? ('array' as const) : ('single' as const), elements: [element] };
    }),
  },
  // Cut short, a raw NUL, or text after the array: not JSON, whatever events it holds.
  {
    weight: 1,
    arbitrary: fc.tuple(batch, fc.constantFrom('cut', 'raw-nul', 'trailing')).map(([makers, damage]) => () => {
      const elements = makers.map((make) => make());
      const whole = `[${elements.map((e) => e.text).join(',')}]`;
      const text = damage === 'cut' ? whole.slice(0, -1) : damage === 'trailing' ? `${whole} ,` : whole.replace('[', '["\u0000",');
      return { kind: 'not-json' as const, text, messageIds: elements.flatMap((e) => (e.valid ? [e.valid.messageId] : [])) };
    }),
  },
);

function textOf(made: Body): string {
  if (made.kind === 'not-json') {
    return made.text;
  }
  return made.kind === 'single' ? made.elements[0]!.text : `[${made.elements.map((e) => e.text).join(',')}]`;
}

describe(`fuzzing POST /events with hostile callbacks (${FAULT_SCALE}: ${RUNS} bodies)`, function () {
  this.timeout(byScale({ fast: 120_000, full: 1_800_000 }));
  let service: TestService;
  let seeded: unknown[];

  const storedPayloads = async (messageIds: readonly string[]) =>
    new Map(
      (
        await service.db.pool.query<{ id: string; payload: Record<string, unknown> }>(
          'select mailjet_message_id::text as id, payload from email_events where mailjet_message_id = any($1::bigint[])',
          [messageIds],
        )
      ).rows.map((row) => [row.id, row.payload]),
    );
  const seededRows = async () =>
    (await service.db.pool.query('select * from email_events where mailjet_message_id < $1::bigint order by id', [String(2n ** 60n)])).rows;

  before(async () => {
    // No consumers, no rate limit: every request is parsed and nothing else writes.
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', EVENTS_RATE_LIMIT: '0' } });
    const res = await service.postEvents(
      '[{"event":"open","time":1700000000,"MessageID":576460765503091475,"email":"seed@example.com","agent":"seed \\ud83d\\ude00"}]',
    );
    expect(res.status).to.equal(200);
    seeded = await seededRows();
    expect(seeded).to.have.length(1);
  });

  after(async () => {
    await service?.stop();
  });

  it('when generated callbacks arrive, then none gets a 5xx, each element is counted right, and every valid event is stored exactly', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(body, async (make) => {
        const made = make();
        const text = textOf(made);
        const res = await fetch(`${service.url}/events`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json' }, body: text });
        const answer = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const context = `${res.status} for ${text.slice(0, 300)}: ${answer.slice(0, 300)}`;
        expect(res.status, context).to.be.below(500);
        if (made.kind === 'not-json') {
          expect(res.status, context).to.equal(400);
          expect((await storedPayloads(made.messageIds)).size, 'events stored from a body that is not JSON').to.equal(0);
          return;
        }
        const valid = made.elements.flatMap((e) => (e.valid ? [e.valid] : []));
        expect(res.status, context).to.equal(200);
        expect(JSON.parse(answer), context).to.deep.equal({
          received: made.elements.length,
          stored: valid.length,
          duplicates: 0,
          unmatched: valid.length,
          rejected: made.elements.length - valid.length,
        });
        const stored = await storedPayloads(valid.map((v) => v.messageId));
        for (const event of valid) {
          const payload = stored.get(event.messageId);
          expect(
            payload,
            `stored payload of MessageID ${event.messageId}: ${JSON.stringify(payload)?.slice(0, 500)}, sent ${JSON.stringify(event.payload).slice(0, 500)}`,
          ).to.deep.equal(event.payload);
        }
      }),
      { numRuns: RUNS },
    );
    process.stdout.write(`      events fuzz: ${RUNS} bodies, answers ${JSON.stringify(Object.fromEntries(statuses))}\n`);
  });

  it('after the fuzzing, the process still serves and what was stored before is unchanged', async () => {
    expect((await fetch(`${service.url}/healthz`)).status).to.equal(200);
    expect(({} as Record<string, unknown>)['polluted']).to.equal(undefined);
    expect(await seededRows()).to.deep.equal(seeded);
  });
});
