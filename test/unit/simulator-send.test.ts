import { expect } from 'chai';

import { scenarioFor } from '../../src/simulator/callbacks.js';
import { createCampaigns } from '../../src/simulator/campaigns.js';
import { createFaults, parseFaultSettings } from '../../src/simulator/faults.js';
import { toJson } from '../../src/simulator/json.js';
import { createRandom } from '../../src/simulator/random.js';
import { createMessageIdSequence, processSend, type SendContext, type SendReply } from '../../src/simulator/send.js';

interface ErrorEntry {
  Status: string;
  Errors: Array<{ ErrorCode: string; ErrorRelatedTo: string[] }>;
}

function context(overrides: Partial<SendContext> = {}): SendContext {
  let next = 1n;
  return {
    identify: () => ({ messageId: next++, messageUuid: 'uuid', contactId: 1 }),
    errorId: () => 'error-id',
    messageError: undefined,
    accountTracking: { opens: true, clicks: true },
    monitoringCategoryExists: () => true,
    campaign: createCampaigns(1000).campaign,
    receivedAt: new Date(0),
    ...overrides,
  };
}

function sendOne(message: Record<string, unknown>, overrides: Partial<SendContext> = {}): SendReply {
  return processSend(JSON.stringify({ Messages: [message] }), context(overrides));
}

/** The error codes of the first message entry, with what each relates to. */
function errorsOf(reply: SendReply): string[] {
  const [entry] = (reply.body as { Messages: ErrorEntry[] }).Messages;
  return (entry?.Errors ?? []).map((error) => `${error.ErrorCode} ${error.ErrorRelatedTo.join(',')}`);
}

const VALID = { From: { Email: 'app@example.com' }, To: [{ Email: 'a@example.com' }], TextPart: 'Hello' };

describe('simulator send validation (processSend)', () => {
  it('when Messages is missing, empty or not a list of objects, then the matching global error', () => {
    const codeOf = (text: string): unknown => (processSend(text, context()).body as { ErrorCode: string }).ErrorCode;

    expect(codeOf('{}')).to.equal('mj-0003');
    expect(codeOf('{"Messages":[]}')).to.equal('mj-0007');
    expect(codeOf('{"Messages":[1]}')).to.equal('mj-0002');
    expect(codeOf('[]')).to.equal('mj-0002');
  });

  it('when a message breaks a rule, then its error entry names the code and the property', () => {
    expect(errorsOf(sendOne({ ...VALID, From: undefined }))).to.deep.equal(['mj-0003 From']);
    expect(errorsOf(sendOne({ ...VALID, To: undefined }))).to.deep.equal(['mj-0005 To']);
    expect(errorsOf(sendOne({ ...VALID, To: [] }))).to.deep.equal(['mj-0007 To']);
    expect(errorsOf(sendOne({ ...VALID, Cc: [{ Email: 'nope' }] }))).to.deep.equal(['mj-0013 Cc[0].Email']);
    expect(errorsOf(sendOne({ ...VALID, TextPart: undefined }))).to.deep.equal(['send-0003 HTMLPart,TextPart,TemplateID']);
    expect(errorsOf(sendOne({ ...VALID, Subject: 's'.repeat(256) }))).to.deep.equal(['mj-0006 Subject']);
    expect(errorsOf(sendOne({ ...VALID, Headers: { 'X-Custom': '1', 'reply-to': 'x', From: 'x' } }))).to.deep.equal(['send-0011 Headers["From"]']);
  });

  it('when a message uses a TemplateID, then it needs neither From nor a text part, and it has a link to click', () => {
    const reply = sendOne({ To: VALID.To, TemplateID: 42 });

    expect(reply.status).to.equal(200);
    expect(reply.accepted[0]).to.include({ templateId: 42, clickUrl: 'https://www.example.com/' });
  });

  it('when Globals are given, then they fill what a message leaves out', () => {
    const reply = processSend(JSON.stringify({ Globals: { From: VALID.From, TextPart: 'x' }, Messages: [{ To: VALID.To }] }), context());

    expect(reply.status).to.equal(200);
    expect(reply.accepted[0]?.from).to.equal('app@example.com');
  });

  it('when a TemplateLanguage part is full of unclosed or default-valued variables, then it is still read in one pass', () => {
    // A backtracking regular expression took quadratic time on these and held the simulator for minutes.
    const parts = { TemplateLanguage: true, TextPart: '{{var:'.repeat(200_000), HTMLPart: `{{var:a:${'{{var:b:'.repeat(200_000)}}}` };

    const reply = sendOne({ ...VALID, ...parts, Subject: '{{var:x:1}} {{var:name}}', Variables: { name: 'Ada' } });

    expect(reply.status).to.equal(200);
    expect(reply.accepted[0]?.templateError).to.equal(undefined);
    expect(sendOne({ ...VALID, ...parts, Subject: '{{var:name}}' }).accepted[0]?.templateError).to.match(/Subject: variable "name"/);
  });

  it('when a recipient matches messageErrorPattern, then the message is an error entry for that address', () => {
    const reply = sendOne(
      { ...VALID, Bcc: [{ Email: 'fail-me@example.com' }] },
      { messageError: { matches: (email) => /^fail/.test(email), code: 'mj-0013' } },
    );

    expect(reply.status).to.equal(400);
    expect(errorsOf(reply)).to.deep.equal(['mj-0013 Bcc[0].Email']);
    expect(reply.accepted).to.deep.equal([]);
  });
});

describe('simulator MessageIDs and JSON', () => {
  it('when ids are drawn, then they count up from above 2^53 and stay below 2^63', () => {
    const next = createMessageIdSequence(createRandom(1));
    const first = next();

    expect(first > 2n ** 53n && first < 2n ** 63n).to.equal(true);
    expect(next()).to.equal(first + 1n);
  });

  it('when a value holds bigints, then toJson writes them as raw integers and otherwise matches JSON.stringify', () => {
    const value = { id: 576460765503091475n, at: new Date(0), skip: undefined, list: [1, undefined, 'x', null, NaN], nested: { ok: true } };

    expect(toJson(value)).to.equal('{"id":576460765503091475,"at":"1970-01-01T00:00:00.000Z","list":[1,null,"x",null,null],"nested":{"ok":true}}');
    expect(toJson({ ...value, id: 1 })).to.equal(JSON.stringify({ ...value, id: 1 }));
  });
});

describe('simulator event scenarios (scenarioFor)', () => {
  const kinds = (email: string, hasLink = false): string[] => scenarioFor(email, hasLink).map((step) => `${step.kind}@${step.at}`);

  it('when the local part names a scenario, then that scenario; softbounce wins over bounce', () => {
    expect(kinds('a@example.com')).to.deep.equal(['sent@sent', 'open@open']);
    expect(kinds('a@example.com', true)).to.deep.equal(['sent@sent', 'open@open', 'click@click']);
    expect(kinds('softbounce@example.com')).to.deep.equal(['softbounce@sent', 'sent@open']);
    expect(kinds('x.bounce@example.com')).to.deep.equal(['hardbounce@sent']);
    expect(kinds('blocked@example.com')).to.deep.equal(['blocked@sent']);
    expect(kinds('spam@example.com')).to.deep.equal(['sent@sent', 'open@open', 'spam@click']);
    expect(kinds('unsub@example.com')).to.deep.equal(['sent@sent', 'open@open', 'unsub@click']);
    expect(kinds('noevents@example.com')).to.deep.equal([]);
    expect(kinds('a@bounce.example.com')).to.deep.equal(['sent@sent', 'open@open']);
  });
});

describe('simulator faults', () => {
  it('when nextCalls is queued, then it is consumed before the ratios are rolled', () => {
    const faults = createFaults(createRandom(3));
    faults.set({ nextCalls: ['500', 'timeout'], rateLimitRatio: 1 });

    expect([faults.nextCallOutcome(), faults.nextCallOutcome(), faults.nextCallOutcome()]).to.deep.equal(['500', 'timeout', '429']);
    expect(faults.get().nextCalls).to.deep.equal([]);
  });

  it('when settings are invalid, then parseFaultSettings names the field', () => {
    expect(() => parseFaultSettings({ dropEventRatio: -0.1 })).to.throw(RangeError, /dropEventRatio/);
    expect(() => parseFaultSettings({ nextCalls: ['ok', 'slow'] })).to.throw(RangeError, /nextCalls/);
    expect(() => parseFaultSettings({ messageErrorPattern: '(' })).to.throw(RangeError, /messageErrorPattern/);
    expect(() => parseFaultSettings({ rateLimitRatio: 0.6, serverErrorRatio: 0.6 })).to.throw(RangeError, /must not exceed 1/);
    expect(() => parseFaultSettings({ latency: 5 })).to.throw(RangeError, /unknown fault setting "latency"/);
  });

  it('when messageErrorPattern could backtrack for long, then it is refused naming why; ordinary patterns pass', () => {
    const refusal = (pattern: string): string => {
      try {
        parseFaultSettings({ messageErrorPattern: pattern });
        return 'accepted';
      } catch (error) {
        return (error as Error).message;
      }
    };

    for (const pattern of ['(a+)+$', '(a|ab)*c', '(\\w|\\d)+$', '(?:x*y?)*', '((ab)?c){2,}', '(.*a){12}']) {
      expect(refusal(pattern), pattern).to.match(/^messageErrorPattern is refused: a repeated group holds a quantifier or an alternation/);
    }
    expect(refusal('^(a+)\\1$')).to.match(/^messageErrorPattern is refused: it has a backreference/);
    expect(refusal('(?<n>a)\\k<n>')).to.match(/^messageErrorPattern is refused: it has a backreference/);
    expect(refusal('.*.*.*x')).to.match(/^messageErrorPattern is refused: it has more than 2 repeating quantifiers/);
    for (const pattern of [
      '^fail',
      'reject|fail',
      '@example\\.org$',
      '^[a-z]+@[a-z]+\\.org$',
      '(ab)+',
      '[(|]+x',
      '\\(a+\\)+',
      '(a|b)?c',
      'x{2}y{0,1}',
      '(?<=a)b',
    ]) {
      expect(refusal(pattern), pattern).to.equal('accepted');
    }
  });

  it('when an address is longer than a mail path may be, then messageErrorPattern does not test it', () => {
    const faults = createFaults(createRandom(3));
    faults.set({ messageErrorPattern: '^a' });
    const longest = `${'a'.repeat(64)}@${'b'.repeat(189)}`;

    expect(longest).to.have.length(254);
    expect(faults.messageError()!.matches(longest)).to.equal(true);
    expect(faults.messageError()!.matches(`a${longest}`)).to.equal(false);
  });

  it('when latencyMs is past the longest timer Node holds or retryAfterSeconds is not whole, then refused, not answered at once or sent as "1.5"', () => {
    expect(() => parseFaultSettings({ latencyMs: 2 ** 31 })).to.throw(RangeError, /latencyMs must be a number between 0 and 2147483647/);
    expect(parseFaultSettings({ latencyMs: 2 ** 31 - 1 })).to.deep.equal({ latencyMs: 2 ** 31 - 1 });
    expect(() => parseFaultSettings({ retryAfterSeconds: 1.5 })).to.throw(RangeError, /retryAfterSeconds must be an integer/);
    expect(parseFaultSettings({ retryAfterSeconds: 120 })).to.deep.equal({ retryAfterSeconds: 120 });
  });

  it('when drop and duplicate ratios are 1, then events are dropped, else duplicated', () => {
    const faults = createFaults(createRandom(3));
    faults.set({ dropEventRatio: 1, duplicateEventRatio: 1 });
    expect(faults.eventCopies()).to.equal(0);
    faults.set({ duplicateEventRatio: 1 });
    expect(faults.eventCopies()).to.equal(2);
  });
});
