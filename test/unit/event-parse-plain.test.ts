import { expect } from 'chai';

import { mailjetEventSchema, plainEventData } from '../../src/domain/event-parse.js';

// plainEventData is the schema's fast path: whenever it takes an event, the schema must take it too
// and make the same of it; whatever the schema refuses, it must leave to the schema.

const BASE: Record<string, unknown> = {
  event: 'sent',
  time: 1433333949,
  MessageID: '576460765503091475',
  Message_GUID: '1ab23cd4-e567-8901-b234-56789cdef012',
  email: 'a@example.com',
  mj_campaign_id: 7257,
  CustomID: 'jetpost-42',
  Payload: '',
  smtp_reply: '250 OK',
};

/** Values each field is tried with: valid ones, boundaries on both sides, and wrong types. */
const TRIED: Record<string, unknown[]> = {
  event: ['sent', 'open', 'click', 'bounce', 'blocked', 'spam', 'unsub', 'Sent', 'opened', '', 1, null, undefined],
  time: [
    0,
    -0,
    1,
    1433333949,
    32503680000,
    32503680001,
    -1,
    1.5,
    '1433333949',
    null,
    true,
    undefined,
    2 ** 53,
    1e300,
    -1e300,
    '10000000000000000',
    '-10000000000000000',
    '0000000000000000012',
    Infinity,
    NaN,
  ],
  MessageID: [
    '576460765503091475',
    '9223372036854775807',
    '9223372036854775808',
    '18446744073709551615',
    '0',
    '00012',
    '',
    '-1',
    '1e3',
    ' 12',
    12,
    0,
    -0,
    -1,
    1.5,
    2 ** 53,
    Number.MAX_SAFE_INTEGER,
    null,
    true,
    [],
    undefined,
  ],
  Message_GUID: ['1ab23cd4-e567-8901-b234-56789cdef012', '', 'x'.repeat(100), 'x'.repeat(101), 12, null, undefined],
  email: ['a@example.com', 'B@Example.COM', '', 'x'.repeat(320), 'x'.repeat(321), 12, null, undefined],
  CustomID: ['', 'jetpost-42', 'x'.repeat(1000), 'x'.repeat(1001), 42, null, undefined],
  Payload: ['', 'x'.repeat(100_000), 'x'.repeat(100_001), {}, null, undefined],
  hard_bounce: [true, false, 'true', 0, null, undefined],
  blocked: [true, false, 1, null, undefined],
  url: ['https://example.com', 'x'.repeat(10_000), 'x'.repeat(10_001), 5, null, undefined],
  error: ['user unknown', 'x'.repeat(1000), 'x'.repeat(1001), false, null, undefined],
  error_related_to: ['recipient', 'x'.repeat(1000), 'x'.repeat(1001), [], null, undefined],
};

function variant(random: () => number): Record<string, unknown> {
  const value: Record<string, unknown> = { ...BASE };
  for (const [field, tried] of Object.entries(TRIED)) {
    // Most fields keep their valid value, so that events near the valid ones are tried most.
    if (random() < 0.25) {
      const pick = tried[Math.floor(random() * tried.length)];
      if (pick === undefined) {
        delete value[field];
      } else {
        value[field] = pick;
      }
    }
  }
  return value;
}

/** A small seeded generator (mulberry32), so a failure can be replayed. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('plainEventData', () => {
  it('when an event is plainly valid, then it is what mailjetEventSchema makes of it, and it leaves every other event to the schema', () => {
    const random = seeded(20261201);
    let taken = 0;
    let refused = 0;
    for (let i = 0; i < 20_000; i += 1) {
      const value = variant(random);
      const parsed = mailjetEventSchema.safeParse(structuredClone(value));
      const plain = plainEventData(structuredClone(value));
      if (plain !== undefined) {
        taken += 1;
        expect(parsed.success, JSON.stringify(value)).to.equal(true);
        expect(plain, JSON.stringify(value)).to.deep.equal(parsed.data);
      } else if (!parsed.success) {
        refused += 1;
      }
    }
    // Both sides were tried: many events taken, many refused.
    expect(taken).to.be.greaterThan(1000);
    expect(refused).to.be.greaterThan(1000);
  });

  it('when a MessageID is a small number or has leading zeros, then it comes back as its canonical decimal string, as the schema gives it', () => {
    expect(plainEventData({ ...BASE, MessageID: 19421777835146 })?.MessageID).to.equal('19421777835146');
    expect(plainEventData({ ...BASE, MessageID: '000123' })?.MessageID).to.equal('123');
  });

  it('when an optional text is longer than jetpost keeps, then it takes the event as the schema does (the parse cuts it after)', () => {
    const long = { ...BASE, url: 'x'.repeat(10_001), error: 'x'.repeat(1001), Payload: 'x'.repeat(100_001) };
    expect(plainEventData(structuredClone(long))).to.deep.equal(mailjetEventSchema.parse(structuredClone(long)));
  });
});
