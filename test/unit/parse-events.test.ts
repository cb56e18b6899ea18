import { expect } from 'chai';

import {
  eventDetails,
  type MailjetEvent,
  MAX_EVENT_DEPTH,
  MAX_EVENT_LENGTH,
  type ParsedBody,
  type ParsedEvents,
  parseEventBody,
  parseEventBodyInSteps,
} from '../../src/domain/event-parse.js';

// Bodies are written as text: a MessageID above 2^53 must reach the parser as a raw JSON integer
// literal, exactly as Mailjet sends it (JSON.stringify of a JS number would already have rounded it).
const SENT = `{"event":"sent","time":1433333949,"MessageID":576460765503091475,"Message_GUID":"1ab23cd4-e567-8901-b234-56789cdef012","email":"a@example.com","mj_campaign_id":7257,"mj_contact_id":4,"customcampaign":"","mj_message_id":"576460765503091475","smtp_reply":"sent (250 2.0.0 OK)","CustomID":"jetpost-42","Payload":""}`;
const BOUNCE = `{"event":"bounce","time":1430812195,"MessageID":9223372036854775807,"Message_GUID":"2bc34de5-f678-9012-c345-67890def0123","email":"b@example.com","mj_campaign_id":0,"mj_contact_id":0,"customcampaign":"","CustomID":"jetpost-43","Payload":"","blocked":false,"hard_bounce":true,"error_related_to":"recipient","error":"user unknown","comment":"Host or domain name not found"}`;
const CLICK = `{"event":"click","time":1433334653,"MessageID":19421777835146490,"Message_GUID":"","email":"c@example.com","mj_campaign_id":7272,"mj_contact_id":4,"customcampaign":"","CustomID":"","Payload":"","url":"https://mailjet.com","ip":"127.0.0.1","geo":"FR","agent":"Mozilla/5.0"}`;

function parsed(text: string): Extract<ParsedEvents, { ok: true }> {
  const result = parseEventBody(text);
  if (!result.ok) {
    throw new Error(`expected the body to parse, got: ${result.reason}`);
  }
  return result;
}

function only(text: string): MailjetEvent {
  const { events, rejected } = parsed(text);
  expect(rejected).to.deep.equal([]);
  expect(events).to.have.length(1);
  return events[0]!;
}

/** One event with the given fields, as JSON text; `extra` is raw JSON members appended verbatim. */
function eventText(fields: Record<string, unknown>, extra = ''): string {
  const base = JSON.stringify({ event: 'open', time: 1700000000, email: 'a@example.com', ...fields });
  return extra ? `${base.slice(0, -1)},${extra}}` : base;
}

function dedupeKeyOf(text: string): string {
  return only(text).dedupeKey;
}

describe('parseEventBody', () => {
  it('when the body is a Version 2 array, then every event is parsed in order with its fields', () => {
    const { events, rejected } = parsed(`[${SENT},${BOUNCE},${CLICK}]`);

    expect(rejected).to.deep.equal([]);
    expect(events.map((event) => event.type)).to.deep.equal(['sent', 'bounce', 'click']);
    const [sent, bounce, click] = events;
    expect(sent).to.deep.include({
      type: 'sent',
      occurredAt: new Date(1433333949 * 1000),
      messageId: '576460765503091475',
      messageUuid: '1ab23cd4-e567-8901-b234-56789cdef012',
      email: 'a@example.com',
      customId: 'jetpost-42',
      hardBounce: undefined,
    });
    expect(bounce).to.deep.include({ type: 'bounce', messageId: '9223372036854775807', hardBounce: true, customId: 'jetpost-43' });
    // Empty Message_GUID and CustomID mean "none".
    expect(click).to.deep.include({ type: 'click', messageId: '19421777835146490', messageUuid: undefined, customId: undefined });
  });

  it('when the body is a Version 1 bare object, then it is one event', () => {
    const event = only(SENT);

    expect(event.type).to.equal('sent');
    expect(event.messageId).to.equal('576460765503091475');
  });

  it('when MessageID is a raw 18–19 digit JSON literal, then it survives exactly as a string, also in raw', () => {
    for (const id of ['576460765503091475', '1234567890987654321', '9223372036854775807', '9007199254740993']) {
      const event = only(eventText({}, `"MessageID":${id}`));
      expect(event.messageId, id).to.equal(id);
      expect(event.raw['MessageID'], id).to.equal(id);
    }
  });

  it('when MessageID is a small JSON number, then it becomes a string', () => {
    const event = only(eventText({ MessageID: 123456 }));

    expect(event.messageId).to.equal('123456');
    expect(event.raw['MessageID']).to.equal('123456');
  });

  it('when MessageID is a JSON string, then it is kept as that string', () => {
    expect(only(eventText({ MessageID: '576460765503091475' })).messageId).to.equal('576460765503091475');
  });

  it('when an event has no MessageID but a Message_GUID, then it is accepted with the GUID', () => {
    const event = only(eventText({ Message_GUID: 'cb927469-36fd-4c02-bce4-0d199929a207' }));

    expect(event.messageId).to.equal(undefined);
    expect(event.messageUuid).to.equal('cb927469-36fd-4c02-bce4-0d199929a207');
  });

  it('when an event has neither MessageID nor Message_GUID (or only the sandbox 0 and ""), then it is rejected with a path', () => {
    for (const text of [eventText({}), eventText({ MessageID: 0, Message_GUID: '' })]) {
      const { events, rejected } = parsed(text);
      expect(events, text).to.deep.equal([]);
      expect(rejected, text).to.have.length(1);
      expect(rejected[0]!.index).to.equal(0);
      expect(rejected[0]!.issues.map((issue) => issue.path)).to.include('MessageID');
    }
  });

  it('when a MessageID is a 64-bit unsigned integer past 2^63-1, then the event is rejected saying which MessageIDs are kept', () => {
    for (const id of ['9223372036854775808', '18446744073709551615']) {
      const { events, rejected } = parsed(eventText({}, `"MessageID":${id}`));
      expect(events, id).to.deep.equal([]);
      expect(rejected[0]!.issues, id).to.deep.equal([
        { path: 'MessageID', message: 'an integer from 0 to 9223372036854775807 (a larger MessageID is not stored)' },
      ]);
    }
  });

  it('when some events of an array are invalid, then they are rejected with their index and path while the valid ones are kept', () => {
    const body = [
      SENT,
      eventText({ event: 'delivered', MessageID: 1 }),
      BOUNCE,
      eventText({ email: undefined, MessageID: 2 }),
      eventText({ MessageID: 3 }, '"time":1700000000.5'),
      eventText({ MessageID: 4, time: '1700000000' }),
      eventText({ MessageID: 5, email: '' }),
      CLICK,
    ];

    const { events, rejected } = parsed(`[${body.join(',')}]`);

    expect(events.map((event) => event.type)).to.deep.equal(['sent', 'bounce', 'click']);
    expect(rejected.map((entry) => [entry.index, entry.issues.map((issue) => issue.path)])).to.deep.equal([
      [1, ['event']],
      [3, ['email']],
      [4, ['time']],
      [5, ['time']],
      [6, ['email']],
    ]);
    for (const entry of rejected) {
      expect(entry.issues[0]!.message).to.be.a('string').and.not.equal('');
    }
  });

  it('when the body is not JSON, then ok is false with a reason', () => {
    for (const text of ['', 'not json', '{"event":"sent",', '{"a":1} trailing', "{'event':'sent'}", `[${SENT},${SENT.slice(0, 40)}`]) {
      const result = parseEventBody(text);
      expect(result.ok, JSON.stringify(text)).to.equal(false);
      expect(result).to.have.property('reason').that.is.a('string');
    }
  });

  it('when the body is a JSON string, number, null or boolean, then it is one rejected element with its source', () => {
    for (const text of ['"sent"', '576460765503091475', '42', 'null', 'true']) {
      const { events, rejected } = parsed(text);
      expect(events, text).to.deep.equal([]);
      expect(
        rejected.map((entry) => [entry.index, entry.kind, entry.source]),
        text,
      ).to.deep.equal([[0, 'not-an-object', text]]);
    }
  });

  it('when an array contains a non-object, then that element is rejected and the events are kept', () => {
    for (const [text, source] of [
      [`[${SENT},1]`, '1'],
      [`[${SENT},"x"]`, '"x"'],
      [`[${SENT},null]`, 'null'],
      [`[${SENT},[${CLICK}]]`, `[${CLICK}]`],
    ]) {
      const { events, rejected } = parsed(text!);
      expect(
        events.map((event) => event.type),
        text,
      ).to.deep.equal(['sent']);
      expect(
        rejected.map((entry) => [entry.index, entry.kind, entry.source]),
        text,
      ).to.deep.equal([[1, 'not-an-object', source]]);
    }
  });

  it('when a field that identifies or classifies an event holds NUL or an unpaired surrogate, then the event is rejected naming the field', () => {
    const bad = [
      [eventText({ MessageID: 1, email: 'a\u0000@example.com' }), 'email', 'a NUL character'],
      [eventText({ MessageID: 2, Message_GUID: 'guid\ud800' }), 'Message_GUID', 'an unpaired surrogate'],
      [eventText({ MessageID: '3\u0000' }), 'MessageID', 'a NUL character'],
      [eventText({ MessageID: 4, event: 'open\u0000' }), 'event', 'a NUL character'],
      // Raw, not escaped: the text holds no backslash at all.
      [eventText({ MessageID: 5 }).replace('a@example.com', 'a\ud800@example.com'), 'email', 'an unpaired surrogate'],
    ] as const;

    const { events, rejected } = parsed(`[${SENT},${bad.map(([text]) => text).join(',')},${CLICK}]`);

    expect(events.map((event) => event.type)).to.deep.equal(['sent', 'click']);
    expect(rejected.map((entry) => [entry.index, entry.kind, entry.issues[0]!.path])).to.deep.equal(bad.map(([, path], i) => [i + 1, 'unstorable-text', path]));
    for (const [i, entry] of rejected.entries()) {
      expect(entry.issues[0]!.message).to.contain(bad[i]![2]);
      expect(entry.source).to.equal(bad[i]![0]);
    }
  });

  it('when any other string or field name holds NUL or an unpaired surrogate, then the event is kept with each written as its escape', () => {
    const bounce = BOUNCE.replace('"error":"user unknown"', '"error":"550 user\\u0000 unknown\\u0000"').replace(
      '"comment":"Host or domain name not found"',
      // Raw lone surrogates, then escaped ones, and two names that are the same once escaped.
      '"comment":"\ud800 raw \udc00","extra":{"list":["ok","\\udfff"],"na\\u0000me":1,"na\\\\u0000me":2}',
    );

    const event = only(bounce);

    expect([event.type, event.messageId, event.email, event.hardBounce]).to.deep.equal(['bounce', '9223372036854775807', 'b@example.com', true]);
    expect(event.raw['error']).to.equal('550 user\\u0000 unknown\\u0000');
    expect(event.raw['comment']).to.equal('\\ud800 raw \\udc00');
    // The escaped name gives way to the field that already had it.
    expect(event.raw['extra']).to.deep.equal({ list: ['ok', '\\udfff'], 'na\\u0000me': 2 });
    // The same text, the same key: Mailjet's retry of the event is a duplicate.
    expect(only(bounce).dedupeKey).to.equal(event.dedupeKey);
  });

  it('when escapes lengthen a field past its limit, then the field is cut and says so', () => {
    const event = only(eventText({ MessageID: 1 }, `"agent":"${'\\u0000'.repeat(200)}"`));

    expect(event.raw['agent']).to.equal('\\u0000'.repeat(167).slice(0, 1000));
    expect(event.raw['jetpost_truncated']).to.deep.equal({ agent: 1200 });
  });

  it('when a paired surrogate (an emoji) is in an event, then the event is kept as it is', () => {
    expect(only(eventText({ MessageID: 1 }, '"agent":"Mozilla \\ud83d\\ude00 😀"')).raw['agent']).to.equal('Mozilla 😀 😀');
  });

  it('when a field is nested 5,000 deep or an event is larger than 256 KiB, then that event is rejected and the others kept', () => {
    const deep = eventText({ MessageID: 1 }, `"extra":${'['.repeat(5000)}${']'.repeat(5000)}`);
    const huge = eventText({ MessageID: 2, agent: 'x'.repeat(MAX_EVENT_LENGTH) });

    const { events, rejected } = parsed(`[${SENT},${deep},${huge},${CLICK}]`);

    expect(events.map((event) => event.type)).to.deep.equal(['sent', 'click']);
    expect(rejected.map((entry) => [entry.index, entry.kind])).to.deep.equal([
      [1, 'too-deep'],
      [2, 'too-large'],
    ]);
    expect(rejected[0]!.source).to.equal(deep);
    expect(rejected[0]!.issues[0]!.message).to.contain(String(MAX_EVENT_DEPTH));
  });

  it('when the body is an empty array, then it is ok with no events', () => {
    expect(parseEventBody('[]')).to.deep.equal({ ok: true, events: [], rejected: [] });
  });

  it('when a __proto__ key is in the body, then it cannot pollute any prototype', () => {
    const texts = [
      eventText({ MessageID: 1 }, '"__proto__":{"polluted":"yes"}'),
      `[${eventText({ MessageID: 1 }, '"nested":{"__proto__":{"polluted":"yes"}}')}]`,
      eventText({ MessageID: 1 }, '"constructor":{"prototype":{"polluted":"yes"}}'),
    ];
    for (const text of texts) {
      const result = parseEventBody(text);
      expect(({} as Record<string, unknown>)['polluted'], text).to.equal(undefined);
      expect((Object.prototype as unknown as Record<string, unknown>)['polluted'], text).to.equal(undefined);
      if (result.ok) {
        for (const event of result.events) {
          expect(Object.getPrototypeOf(event.raw)).to.equal(Object.prototype);
          expect((event.raw as Record<string, unknown>)['polluted']).to.equal(undefined);
        }
      }
    }
  });

  it('when an event is parsed, then raw is a plain object with every received field, nested ones too', () => {
    const event = only(eventText({ MessageID: 1, extra: { inner: [1, { deep: true }] } }));

    expect(Object.getPrototypeOf(event.raw)).to.equal(Object.prototype);
    const extra = event.raw['extra'] as { inner: [number, { deep: boolean }] };
    expect(Object.getPrototypeOf(extra)).to.equal(Object.prototype);
    expect(Object.getPrototypeOf(extra.inner[1])).to.equal(Object.prototype);
    expect(event.raw).to.deep.equal({ event: 'open', time: 1700000000, email: 'a@example.com', MessageID: '1', extra: { inner: [1, { deep: true }] } });
  });

  it('when the email has upper-case letters, then the event carries it lower-cased', () => {
    expect(only(eventText({ MessageID: 1, email: 'Ada@Example.COM' })).email).to.equal('ada@example.com');
  });
});

describe('parseEventBody of over-long optional texts', () => {
  it('when CustomID, Payload, url, error or error_related_to is longer than its limit, then the event is kept, the text cut to the limit and its length as received recorded', () => {
    const event = only(
      eventText({
        event: 'bounce',
        MessageID: 1,
        CustomID: 'c'.repeat(1001),
        Payload: 'p'.repeat(100_001),
        url: 'u'.repeat(10_001),
        error: 'e'.repeat(5000),
        error_related_to: 'r'.repeat(1000),
        comment: 'kept whole',
      }),
    );

    expect(event.customId).to.equal('c'.repeat(1000));
    expect(event.raw).to.deep.include({
      CustomID: 'c'.repeat(1000),
      Payload: 'p'.repeat(100_000),
      url: 'u'.repeat(10_000),
      error: 'e'.repeat(1000),
      error_related_to: 'r'.repeat(1000),
      comment: 'kept whole',
      jetpost_truncated: { CustomID: 1001, Payload: 100_001, url: 10_001, error: 5000 },
    });
  });

  it('when an open carries a 20,000-character agent, ip, geo, smtp_reply, comment, source or unknown field, then each is cut to 1,000 with its length as received', () => {
    const long = (letter: string) => letter.repeat(20_000);
    const event = only(
      eventText({
        MessageID: 1,
        agent: long('a'),
        ip: long('i'),
        geo: long('g'),
        smtp_reply: long('s'),
        comment: long('c'),
        source: long('o'),
        customcampaign: long('k'),
        mj_list_id: long('9'),
        unknown_field: long('x'),
        short_unknown: 'kept whole',
      }),
    );

    expect(event.raw).to.deep.include({
      agent: 'a'.repeat(1000),
      ip: 'i'.repeat(1000),
      geo: 'g'.repeat(1000),
      smtp_reply: 's'.repeat(1000),
      comment: 'c'.repeat(1000),
      source: 'o'.repeat(1000),
      customcampaign: 'k'.repeat(1000),
      mj_list_id: '9'.repeat(1000),
      unknown_field: 'x'.repeat(1000),
      short_unknown: 'kept whole',
    });
    expect(event.raw['jetpost_truncated']).to.deep.equal({
      agent: 20_000,
      ip: 20_000,
      geo: 20_000,
      smtp_reply: 20_000,
      comment: 20_000,
      source: 20_000,
      customcampaign: 20_000,
      mj_list_id: 20_000,
      unknown_field: 20_000,
    });
    expect(JSON.stringify(event.raw).length).to.be.below(11_000);
  });

  it('when a field that is no string is longer than 1,000 characters as JSON, then it is kept as its JSON text cut, and a short one as it came', () => {
    const big = { list: Array.from({ length: 5000 }, (_, index) => index) };
    const event = only(eventText({ MessageID: 1, geo: big, extra: { inner: [1, { deep: true }] }, mj_list_id: 123456789 }));

    expect(event.raw['geo']).to.equal(JSON.stringify(big).slice(0, 1000));
    expect(event.raw['extra']).to.deep.equal({ inner: [1, { deep: true }] });
    expect(event.raw['mj_list_id']).to.equal(123456789);
    expect(event.raw['jetpost_truncated']).to.deep.equal({ geo: JSON.stringify(big).length });
    expect(eventDetails(event.raw)).to.deep.equal({
      geo: JSON.stringify(big).slice(0, 1000),
      mj_list_id: 123456789,
      truncated: { geo: JSON.stringify(big).length },
    });
  });

  it('when nothing is cut, then a jetpost_truncated the event came with is dropped, and one cut replaces it', () => {
    expect(only(eventText({ MessageID: 1, url: 'https://example.com', jetpost_truncated: { url: 'forged' } })).raw).not.to.have.property('jetpost_truncated');
    expect(only(eventText({ MessageID: 1, url: 'u'.repeat(10_001), jetpost_truncated: { error: 7 } })).raw['jetpost_truncated']).to.deep.equal({ url: 10_001 });
  });

  it('when the same over-long click comes again, then it has the same key, and a click whose link differs only past the cut has another', () => {
    const long = (tail: string) => eventText({ event: 'click', MessageID: 1, url: `${'u'.repeat(20_000)}${tail}` });

    expect(dedupeKeyOf(long('a'))).to.equal(dedupeKeyOf(long('a')));
    expect(dedupeKeyOf(long('a'))).not.to.equal(dedupeKeyOf(long('b')));
  });

  it('when a Message_GUID is longer than 100 characters, then the event is still rejected: a key is never cut', () => {
    const { events, rejected } = parsed(eventText({ MessageID: 1, Message_GUID: 'g'.repeat(101) }));

    expect(events).to.deep.equal([]);
    expect(rejected.map((entry) => entry.issues.map((issue) => issue.path))).to.deep.equal([['Message_GUID']]);
  });
});

describe('eventDetails', () => {
  it('when the event had texts cut, then the details name the cut ones among them, and ignore a marker that is not a length past the limit', () => {
    expect(eventDetails({ url: 'u', Payload: 'p', jetpost_truncated: { url: 10_001, Payload: 100_001 } })).to.deep.equal({
      url: 'u',
      truncated: { url: 10_001 },
    });
    expect(eventDetails({ url: 'u', error: 'e', jetpost_truncated: { url: 'forged', error: 7 } })).to.deep.equal({ url: 'u', error: 'e' });
    expect(eventDetails({ url: 'u', jetpost_truncated: 'forged' })).to.deep.equal({ url: 'u' });
    expect(eventDetails({ agent: 'a', comment: 'c', Payload: 'p', jetpost_truncated: { agent: 1001, comment: 1000, Payload: 100_001 } })).to.deep.equal({
      agent: 'a',
      comment: 'c',
      truncated: { agent: 1001 },
    });
  });
});

describe('parseEventBody dedupeKey', () => {
  // Written by hand so the id stays a raw literal; key order and email case vary between the copies.
  const original = `{"event":"click","time":1700000000,"MessageID":576460765503091475,"email":"a@example.com","url":"https://example.com/a"}`;
  const reordered = `{"url":"https://example.com/a","email":"A@Example.com","MessageID":576460765503091475,"time":1700000000,"event":"click","geo":"FR"}`;

  it('when the same event is delivered twice, then both copies have the same key', () => {
    const { events } = parsed(`[${original},${original}]`);

    expect(events).to.have.length(2);
    expect(events[0]!.dedupeKey).to.equal(events[1]!.dedupeKey);
    expect(events[0]!.dedupeKey).to.match(/^[0-9a-f]{64}$/);
  });

  it('when the same event comes with another key order, email case or extra fields, then the key is the same', () => {
    expect(dedupeKeyOf(reordered)).to.equal(dedupeKeyOf(original));
  });

  it('when the time, type, url, MessageID (even by one above 2^53) or email differs, then the key differs', () => {
    const key = dedupeKeyOf(original);
    const variants = [
      original.replace('1700000000', '1700000001'),
      original.replace('"click"', '"open"'),
      original.replace('https://example.com/a', 'https://example.com/b'),
      original.replace('576460765503091475', '576460765503091476'),
      original.replace('a@example.com', 'b@example.com'),
    ];
    const keys = variants.map(dedupeKeyOf);

    for (const [index, other] of keys.entries()) {
      expect(other, variants[index]).not.to.equal(key);
    }
    expect(new Set(keys).size).to.equal(keys.length);
  });
});

describe('parseEventBodyInSteps of a large body', () => {
  function inSteps(text: string): ParsedBody {
    const steps = parseEventBodyInSteps(text);
    for (;;) {
      const step = steps.next();
      if (step.done) {
        return step.value;
      }
    }
  }

  // Over a MiB: more than the body whose events are kept as objects. Element 3 cannot be applied.
  const elements = Array.from({ length: 6000 }, (_, i) =>
    i === 3
      ? '{"event":"open"}'
      : eventText({ MessageID: 1 }, `"n":${i},"big":${576460765503091475n + BigInt(i)},"agent":"${'Mozilla/5.0 '.repeat(8)}"`).replace(
          '"MessageID":1',
          `"MessageID":${576460765503091475n + BigInt(i)}`,
        ),
  );
  const body = `[${elements.join(',')}]`;

  it('when a body is larger than a MiB, then its events are kept as where they are, and each loads as it parses alone, no digit lost', () => {
    expect(body.length).to.be.above(1024 * 1024);
    const result = inSteps(body);
    if (!result.ok) {
      throw new Error(result.reason);
    }

    expect(result.events).to.have.length(5999);
    // Not the parsed objects, nor the rejected elements' issues: a large body must not hold all of them at once.
    expect(result.events.filter((ref) => 'raw' in ref)).to.deep.equal([]);
    expect(result.rejected).to.deep.equal([{ index: 3, kind: 'invalid' }]);
    const rejected = result.loadRejected(result.rejected[0]!);
    expect([rejected.index, rejected.kind, rejected.source]).to.deep.equal([3, 'invalid', '{"event":"open"}']);
    expect(rejected.issues.map((issue) => issue.path)).to.deep.equal(['time', 'email']);
    for (const index of [0, 4, 2999, 5999]) {
      const loaded = result.load(result.events[index - (index > 3 ? 1 : 0)]!);
      expect(loaded, `element ${index}`).to.deep.equal(only(elements[index]!));
      expect(loaded.messageId).to.equal(String(576460765503091475n + BigInt(index)));
      expect(loaded.raw['big']).to.equal(String(576460765503091475n + BigInt(index)));
    }
  });

  it('when a large body holds one element that is not JSON, even the last, then the whole body is not JSON', () => {
    const result = inSteps(`[${elements.join(',')},{"event":tru}]`);

    expect(result).to.deep.equal({ ok: false, tooMany: false, reason: 'the body is not valid JSON: element 6000 is not valid JSON' });
  });

  it('when a body is small, then its events are the parsed objects themselves', () => {
    const result = inSteps(`[${elements.slice(0, 10).join(',')}]`);
    if (!result.ok) {
      throw new Error(result.reason);
    }

    expect(result.events.every((ref) => 'raw' in ref && result.load(ref) === ref)).to.equal(true);
  });
});
