import { expect } from 'chai';

import { toIdString } from '../../src/domain/mailjet-ids.js';
import { type CallOutcome, classifySendResponse, type MessageOutcome, type SendResponse } from '../../src/domain/mailjet-outcome.js';
import { parseRetryAfter } from '../../src/domain/retry-policy.js';

const NOW = new Date('2030-01-01T12:00:00Z');

function response(status: number | null, body: unknown, extra: Partial<SendResponse> = {}): SendResponse {
  return { status, body, description: `Mailjet ${status ?? 'network error'}`, ...extra };
}

function success(customId: string, to: Array<[string, unknown]>, cc: Array<[string, unknown]> = []): Record<string, unknown> {
  const entry = ([email, id]: [string, unknown]) => ({
    Email: email,
    MessageUUID: `uuid-${email}`,
    MessageID: id,
    MessageHref: `https://api.mailjet.com/v3/REST/message/${String(id)}`,
  });
  return { Status: 'success', CustomID: customId, To: to.map(entry), Cc: cc.map(entry), Bcc: [] };
}

function error(statusCode: number, code = 'mj-0013', message = 'invalid email'): Record<string, unknown> {
  return {
    Status: 'error',
    Errors: [{ ErrorIdentifier: 'e-1', ErrorCode: code, StatusCode: statusCode, ErrorMessage: message, ErrorRelatedTo: ['To[0].Email'] }],
  };
}

/** The CustomIDs of a call of `count` messages: jetpost-1, jetpost-2… */
const ids = (count: number) => Array.from({ length: count }, (_, index) => `jetpost-${index + 1}`);

function messagesOf(outcome: CallOutcome): ReadonlyArray<MessageOutcome | undefined> {
  expect(outcome.kind).to.equal('per-message');
  return (outcome as Extract<CallOutcome, { kind: 'per-message' }>).messages;
}

describe('classifySendResponse', () => {
  it('when Mailjet answers 200 with all successes, then every message is accepted with its recipients and exact MessageIDs', () => {
    const body = {
      Messages: [
        success('jetpost-1', [['a@example.com', '576460765503091475']], [['c@example.com', '9223372036854775807']]),
        success('jetpost-2', [['b@example.com', 1234]]),
      ],
    };

    const messages = messagesOf(classifySendResponse(response(200, body), ids(2), NOW));

    expect(messages).to.deep.equal([
      {
        kind: 'accepted',
        recipients: [
          { kind: 'to', email: 'a@example.com', messageId: '576460765503091475', messageUuid: 'uuid-a@example.com' },
          { kind: 'cc', email: 'c@example.com', messageId: '9223372036854775807', messageUuid: 'uuid-c@example.com' },
        ],
      },
      { kind: 'accepted', recipients: [{ kind: 'to', email: 'b@example.com', messageId: '1234', messageUuid: 'uuid-b@example.com' }] },
    ]);
  });

  it('when a recipient entry carries a MessageID already rounded (an unsafe JS number), then the message is unresolved (looked up), not recorded with a wrong id', () => {
    const body = {
      Messages: [
        success('jetpost-1', [
          ['b@example.com', '576460765503091475'],
          ['a@example.com', 576460765503091500],
        ]),
      ],
    };

    const [message] = messagesOf(classifySendResponse(response(200, body), ids(1), NOW));

    expect(message).to.deep.equal({ kind: 'unresolved', reason: 'its To[1] entry has no usable MessageID and address' });
  });

  it('when a success entry has a MessageID missing, null, negative, not a number or above 2^63-1, then the message is unresolved, not accepted without it', () => {
    for (const id of [undefined, null, -1, '-1', 'abc', '1e3', 1.5, '18446744073709551616', '', {}, true]) {
      const body = { Messages: [success('jetpost-1', [['a@example.com', id]])] };
      const [message] = messagesOf(classifySendResponse(response(200, body), ids(1), NOW));
      expect(message, JSON.stringify(id)).to.deep.equal({ kind: 'unresolved', reason: 'its To[0] entry has no usable MessageID and address' });
    }
    // A 64-bit unsigned id that a bigint cannot hold: the reason names it.
    for (const id of ['9223372036854775808', '18446744073709551615']) {
      const body = { Messages: [success('jetpost-1', [['a@example.com', id]])] };
      const [message] = messagesOf(classifySendResponse(response(200, body), ids(1), NOW));
      expect(message).to.deep.equal({ kind: 'unresolved', reason: `its To[0] entry has MessageID ${id}, past 2^63-1, the largest jetpost stores` });
    }
    const noEmail = { Messages: [{ Status: 'success', CustomID: 'jetpost-1', To: [{ MessageID: '576460765503091475' }] }] };
    expect(messagesOf(classifySendResponse(response(200, noEmail), ids(1), NOW))[0]).to.deep.include({ kind: 'unresolved' });
  });

  it('when a success entry has a MessageUUID the database could not keep as it came (NUL, an unpaired surrogate, too long), then the message is unresolved; none or an empty one is fine', () => {
    const withUuid = (uuid: unknown) => ({
      Messages: [{ Status: 'success', CustomID: 'jetpost-1', Cc: [{ Email: 'a@example.com', MessageID: '576460765503091475', MessageUUID: uuid }] }],
    });
    for (const uuid of ['u\u0000x', 'u\ud800x', 'x'.repeat(256)]) {
      expect(messagesOf(classifySendResponse(response(200, withUuid(uuid)), ids(1), NOW))[0], JSON.stringify(uuid)).to.deep.equal({
        kind: 'unresolved',
        reason: 'its Cc[0] entry has a MessageUUID that cannot be stored',
      });
    }
    for (const [uuid, kept] of [
      [undefined, ''],
      ['', ''],
      ['cb927469-36fd-4c02-bce4-0d199929a207', 'cb927469-36fd-4c02-bce4-0d199929a207'],
      ['\ud83d\ude00'.repeat(10), '\ud83d\ude00'.repeat(10)],
    ]) {
      expect(messagesOf(classifySendResponse(response(200, withUuid(uuid)), ids(1), NOW))[0], JSON.stringify(uuid)).to.deep.equal({
        kind: 'accepted',
        recipients: [{ kind: 'cc', email: 'a@example.com', messageId: '576460765503091475', messageUuid: kept }],
      });
    }
  });

  it("when two recipients of one answer (of one message or two) share a MessageID, then their messages are unresolved; SandboxMode's MessageID 0 for all is not a repeat", () => {
    const repeated = { Messages: [success('jetpost-1', [['a@example.com', '576460765503091475']], [['b@example.com', '576460765503091475']])] };
    expect(messagesOf(classifySendResponse(response(200, repeated), ids(1), NOW))[0]).to.deep.equal({
      kind: 'unresolved',
      reason: 'its answer gives MessageID 576460765503091475 to more than one recipient',
    });
    const acrossMessages = {
      Messages: [
        success('jetpost-1', [['a@example.com', '576460765503091475']]),
        success('jetpost-2', [['b@example.com', '576460765503091476']]),
        success('jetpost-3', [['c@example.com', '576460765503091475']]),
      ],
    };
    expect(messagesOf(classifySendResponse(response(200, acrossMessages), ids(3), NOW)).map((message) => message?.kind)).to.deep.equal([
      'unresolved',
      'accepted',
      'unresolved',
    ]);
    const sandbox = { Messages: [success('jetpost-1', [['a@example.com', 0]], [['b@example.com', 0]])] };
    expect(messagesOf(classifySendResponse(response(200, sandbox), ids(1), NOW, true))[0]).to.deep.include({ kind: 'accepted' });
  });

  it('when a call not in SandboxMode is answered MessageID 0 (no message has it), then its message is unresolved: looked up, never recorded without an id', () => {
    const body = { Messages: [success('jetpost-1', [['a@example.com', 0]])] };
    expect(messagesOf(classifySendResponse(response(200, body), ids(1), NOW, false))[0]).to.deep.equal({
      kind: 'unresolved',
      reason: "its To[0] entry has MessageID 0, SandboxMode's, in a call not in SandboxMode",
    });
  });

  it('when Mailjet answers a mixed 400, then successes and errors come back in input order and a 4xx error is permanent', () => {
    const body = {
      Messages: [success('jetpost-1', [['a@example.com', '576460765503091475']]), error(400), success('jetpost-3', [['c@example.com', '576460765503091477']])],
    };

    const messages = messagesOf(classifySendResponse(response(400, body), ids(3), NOW));

    expect(messages.map((message) => message?.kind)).to.deep.equal(['accepted', 'rejected', 'accepted']);
    expect(messages[1]).to.deep.equal({ kind: 'rejected', transient: false, error: 'mj-0013: invalid email' });
  });

  it('when a message entry has several errors, then it is transient only if every StatusCode is 500 or more', () => {
    const twoErrors = (a: number, b: number) => ({
      Status: 'error',
      Errors: [
        { ErrorCode: 'x-1', StatusCode: a, ErrorMessage: 'first' },
        { ErrorCode: 'x-2', StatusCode: b, ErrorMessage: 'second' },
      ],
    });
    const body = { Messages: [twoErrors(500, 503), twoErrors(500, 400), twoErrors(400, 400)] };

    const messages = messagesOf(classifySendResponse(response(400, body), ids(3), NOW));

    expect(messages.map((message) => message?.kind === 'rejected' && message.transient)).to.deep.equal([true, false, false]);
    expect(messages[1]).to.deep.include({ error: 'x-1: first; x-2: second' });
  });

  it('when an entry has no Status, or one that is neither "success" nor "error", then that message is unknown (maybe sent: looked up), not rejected', () => {
    for (const status of [undefined, 'queued', 'Success', 'ERROR', 1]) {
      const body = { Messages: [{ ...success('jetpost-1', [['a@example.com', '576460765503091475']]), Status: status }, error(400)] };
      for (const code of [200, 400]) {
        expect(
          messagesOf(classifySendResponse(response(code, body), ids(2), NOW)).map((message) => message?.kind),
          `${String(status)} ${code}`,
        ).to.deep.equal([undefined, 'rejected']);
      }
    }
  });

  it('when an error entry has no Errors list, then it is a permanent rejection with a reason', () => {
    const [message] = messagesOf(classifySendResponse(response(400, { Messages: [{ Status: 'error' }] }), ids(1), NOW));

    expect(message).to.deep.equal({ kind: 'rejected', transient: false, error: 'Mailjet rejected the message without a reason' });
  });

  it('when Mailjet answers 403 with Messages (sender not authorised), then outcomes are read per message', () => {
    const body = { Messages: [error(403, 'send-0008', 'From is not an authorised sender')] };

    const messages = messagesOf(classifySendResponse(response(403, body), ids(1), NOW));

    expect(messages).to.deep.equal([{ kind: 'rejected', transient: false, error: 'send-0008: From is not an authorised sender' }]);
  });

  it('when Mailjet answers 429 with Retry-After: 7, then the call is transient with 7000 ms and Mailjet sent nothing', () => {
    expect(classifySendResponse(response(429, '<html>Too Many Requests</html>', { retryAfter: '7' }), ids(3), NOW)).to.deep.equal({
      kind: 'transient',
      error: 'Mailjet 429',
      retryAfterMs: 7000,
      outcomeUnknown: false,
      rateLimited: true,
    });
  });

  it('when Mailjet answers 429 with Retry-After as an HTTP date, then the delay runs until that date', () => {
    const outcome = classifySendResponse(response(429, {}, { retryAfter: 'Tue, 01 Jan 2030 12:00:30 GMT' }), ids(1), NOW);

    expect(outcome).to.deep.include({ kind: 'transient', retryAfterMs: 30_000, outcomeUnknown: false });
  });

  it('when Mailjet answers 429 without Retry-After, then the call is transient with no retryAfterMs', () => {
    const outcome = classifySendResponse(response(429, {}), ids(1), NOW);

    expect(outcome).to.deep.equal({ kind: 'transient', error: 'Mailjet 429', outcomeUnknown: false, rateLimited: true });
    expect(outcome).not.to.have.property('retryAfterMs');
  });

  it('when Mailjet answers 500, 502 or 503, then the call is transient and its outcome unknown', () => {
    for (const status of [500, 502, 503]) {
      expect(classifySendResponse(response(status, { ErrorIdentifier: 'x', StatusCode: status }), ids(2), NOW), String(status)).to.deep.equal({
        kind: 'transient',
        error: `Mailjet ${status}`,
        outcomeUnknown: true,
      });
    }
  });

  it('when there was no answer (network error or timeout), then the call is transient and its outcome unknown', () => {
    const outcome = classifySendResponse(response(null, undefined, { networkCode: 'ECONNABORTED', description: 'timeout of 15000ms exceeded' }), ids(2), NOW);

    expect(outcome).to.deep.equal({ kind: 'transient', error: 'timeout of 15000ms exceeded', outcomeUnknown: true });
  });

  it('when there was no answer and no connection was made (refused, DNS, TLS handshake), then the call is a plain transient failure, never sent', () => {
    const description = 'Mailjet unreachable (ECONNREFUSED): never sent: connect ECONNREFUSED 127.0.0.1:1';
    const outcome = classifySendResponse(response(null, undefined, { networkCode: 'ECONNREFUSED', neverSent: true, description }), ids(2), NOW);

    expect(outcome).to.deep.equal({ kind: 'transient', error: description, outcomeUnknown: false });
  });

  it('when Mailjet answers 401, then the call is unauthorized', () => {
    const outcome = classifySendResponse(response(401, { ErrorCode: 'mj-0015', StatusCode: 401, ErrorMessage: 'bad credentials' }), ids(1), NOW);

    expect(outcome).to.deep.equal({ kind: 'unauthorized', error: 'Mailjet 401' });
  });

  it('when Mailjet answers a global 400 without Messages, then the call is permanent', () => {
    const outcome = classifySendResponse(response(400, { ErrorCode: 'mj-0002', StatusCode: 400, ErrorMessage: 'Malformed JSON' }), ids(5), NOW);

    expect(outcome).to.deep.equal({ kind: 'permanent', error: 'Mailjet 400' });
  });

  it('when the answer is a redirect (a MAILJET_BASE_URL on http://, a proxy), then nothing was sent and the call is retried, not failed for good', () => {
    for (const status of [301, 302, 307, 308]) {
      const outcome = classifySendResponse(response(status, '<html>Moved</html>'), ids(2), NOW);

      expect(outcome, String(status)).to.deep.include({ kind: 'transient', outcomeUnknown: false });
      expect(outcome.kind === 'transient' && outcome.error, String(status)).to.contain('MAILJET_BASE_URL');
    }
  });

  it('when Mailjet answers 2xx without Messages, then the call is transient with its outcome unknown', () => {
    for (const body of [{}, '', { Messages: 'nope' }, null]) {
      const outcome = classifySendResponse(response(200, body), ids(1), NOW);
      expect(outcome, JSON.stringify(body)).to.deep.include({ kind: 'transient', outcomeUnknown: true });
    }
  });

  it('when Mailjet returns fewer result entries than messages, then only the ones naming their message count and the others are unknown (maybe sent)', () => {
    const body = { Messages: [success('jetpost-2', [['b@example.com', '576460765503091475']])] };

    const messages = messagesOf(classifySendResponse(response(200, body), ids(3), NOW));

    expect(messages).to.have.length(3);
    expect(messages[0]).to.equal(undefined);
    expect(messages[1]?.kind).to.equal('accepted');
    expect(messages[2]).to.equal(undefined);
  });

  it('when Mailjet returns more result entries than messages, then only one outcome per message is kept', () => {
    const body = { Messages: [success('jetpost-1', [['a@example.com', '1']]), success('jetpost-2', [['b@example.com', '2']])] };

    expect(messagesOf(classifySendResponse(response(200, body), ids(1), NOW))).to.deep.equal([
      { kind: 'accepted', recipients: [{ kind: 'to', email: 'a@example.com', messageId: '1', messageUuid: 'uuid-a@example.com' }] },
    ]);
  });

  it('when Mailjet returns the entries out of order, then each success goes to the message its CustomID names and the errors, which name none, are unknown', () => {
    const body = { Messages: [success('jetpost-3', [['c@example.com', '3']]), error(400), success('jetpost-1', [['a@example.com', '1']])] };

    const messages = messagesOf(classifySendResponse(response(400, body), ids(3), NOW));

    expect(messages).to.deep.equal([
      { kind: 'accepted', recipients: [{ kind: 'to', email: 'a@example.com', messageId: '1', messageUuid: 'uuid-a@example.com' }] },
      undefined,
      { kind: 'accepted', recipients: [{ kind: 'to', email: 'c@example.com', messageId: '3', messageUuid: 'uuid-c@example.com' }] },
    ]);
  });

  it('when two success entries name the same message, or an entry is not an object, then those messages are unknown', () => {
    const twice = { Messages: [success('jetpost-1', [['a@example.com', '1']]), success('jetpost-1', [['a@example.com', '2']])] };
    expect(messagesOf(classifySendResponse(response(200, twice), ids(2), NOW))).to.deep.equal([undefined, undefined]);

    const notObject = { Messages: [null, success('jetpost-2', [['b@example.com', '2']])] };
    expect(messagesOf(classifySendResponse(response(200, notObject), ids(2), NOW))[0]).to.equal(undefined);
  });

  it('when Mailjet answers 403 without Messages, then the call is retried later, nothing sent, and sending is not stopped for every app', () => {
    const outcome = classifySendResponse(response(403, { ErrorCode: 'send-0008', StatusCode: 403, ErrorMessage: 'forbidden' }), ids(2), NOW);

    expect(outcome).to.deep.equal({
      kind: 'transient',
      error: 'Mailjet 403: check that the sender is validated for the Mailjet account',
      outcomeUnknown: false,
    });
  });
});

describe('toIdString', () => {
  it('when an id is a decimal string up to 2^63-1, then it is kept exactly', () => {
    for (const id of ['0', '1', '576460765503091475', '19421777835146490', '1234567890987654321', '9223372036854775807']) {
      expect(toIdString(id)).to.equal(id);
    }
  });

  it('when an id string is above 2^63-1 or too long, then it is rejected', () => {
    expect(toIdString('9223372036854775808')).to.equal(undefined);
    expect(toIdString('18446744073709551615')).to.equal(undefined);
    expect(toIdString('123456789012345678901')).to.equal(undefined);
  });

  it('when an id string is not plain digits, then it is rejected', () => {
    for (const value of ['', '-1', '1.5', '1e18', ' 12', '12 ', '0x10', 'abc']) {
      expect(toIdString(value), JSON.stringify(value)).to.equal(undefined);
    }
  });

  it('when an id is a JS number beyond 2^53, then it is rejected because it has lost digits', () => {
    expect(toIdString(Number('576460765503091475'))).to.equal(undefined);
    expect(toIdString(Number.MAX_SAFE_INTEGER + 1)).to.equal(undefined);
  });

  it('when an id is a safe non-negative integer number, then it becomes its decimal string', () => {
    expect(toIdString(0)).to.equal('0');
    expect(toIdString(70650219165027)).to.equal('70650219165027');
    expect(toIdString(Number.MAX_SAFE_INTEGER)).to.equal('9007199254740991');
  });

  it('when an id is a negative, fractional or non-finite number, then it is rejected', () => {
    for (const value of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(toIdString(value), String(value)).to.equal(undefined);
    }
  });

  it('when an id is a bigint within 0..2^63-1, then it is accepted exactly', () => {
    expect(toIdString(576460765503091475n)).to.equal('576460765503091475');
    expect(toIdString(9223372036854775807n)).to.equal('9223372036854775807');
    expect(toIdString(9223372036854775808n)).to.equal(undefined);
    expect(toIdString(-1n)).to.equal(undefined);
  });

  it('when an id is neither a string, number nor bigint, then it is rejected', () => {
    for (const value of [undefined, null, true, {}, ['1']]) {
      expect(toIdString(value)).to.equal(undefined);
    }
  });
});

describe('parseRetryAfter', () => {
  it('when the header is delta-seconds, then it is returned in milliseconds', () => {
    expect(parseRetryAfter('7', NOW)).to.equal(7000);
    expect(parseRetryAfter('0', NOW)).to.equal(0);
    expect(parseRetryAfter(' 120 ', NOW)).to.equal(120_000);
  });

  it('when the header is an HTTP date, then it is the time from now until that date', () => {
    expect(parseRetryAfter('Tue, 01 Jan 2030 12:01:00 GMT', NOW)).to.equal(60_000);
  });

  it('when the HTTP date is in the past, then the delay is 0', () => {
    expect(parseRetryAfter('Mon, 31 Dec 2029 12:00:00 GMT', NOW)).to.equal(0);
  });

  it('when the header is absent, blank or unreadable, then there is no delay', () => {
    for (const value of [undefined, '', '   ', 'soon', 'later please']) {
      expect(parseRetryAfter(value, NOW), String(value)).to.equal(undefined);
    }
  });
});
