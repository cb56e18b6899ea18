// Headers a message may not carry. The simulator keeps Mailjet's rule (its documented send-0011
// list); jetpost's own rule (domain/mailjet-payload.ts) may be stricter but never looser: a header
// Mailjet refuses must be refused by POST /queue at once, not queued only to fail at every attempt.
import { expect } from 'chai';

import { FORBIDDEN_HEADERS } from '../../src/domain/mailjet-payload.js';
import { parseQueueRequest } from '../../src/http/schemas.js';
import { toJson } from '../../src/simulator/json.js';
import { FORBIDDEN_HEADERS as MAILJET_FORBIDDEN_HEADERS, processSend } from '../../src/simulator/send.js';

/** Mailjet's documentation of Headers in the Send API v3.1 ("use the dedicated property"), restated. */
const DOCUMENTED = [
  'From', 'Sender', 'Subject', 'To', 'Cc', 'Bcc', 'Return-Path', 'Delivered-To', 'DKIM-Signature', 'DomainKey-Status',
  'Received-SPF', 'Authentication-Results', 'Received', 'X-Mailjet-Prio', 'X-Mailjet-Debug', 'User-Agent', 'X-Mailer',
  'X-MJ-CustomID', 'X-MJ-EventPayload', 'X-MJ-Vars', 'X-MJ-TemplateErrorDeliver', 'X-MJ-TemplateErrorReporting',
  'X-MJ-TemplateLanguage', 'X-Mailjet-TrackOpen', 'X-Mailjet-TrackClick', 'X-MJ-TemplateID', 'X-MJ-WorkflowID',
  'X-Feedback-Id', 'X-Mailjet-Segmentation', 'List-Id', 'X-MJ-MID', 'X-MJ-ErrorMessage', 'Date', 'X-CSA-Complaints',
  'Message-Id', 'X-Mailjet-Campaign', 'X-MJ-StatisticsContactsListID',
];

function simulatorRefuses(header: string): boolean {
  const body = { Messages: [{ From: { Email: 'app@example.com' }, To: [{ Email: 'a@example.com' }], TextPart: 'x', Headers: { [header]: 'x' } }] };
  const reply = processSend(JSON.stringify(body), {
    identify: () => ({ messageId: 1n, messageUuid: 'uuid', contactId: 1 }),
    errorId: () => 'error-id',
    messageErrorPattern: undefined,
    receivedAt: new Date(0),
  });
  return toJson(reply.body).includes('send-0011');
}

function jetpostRefuses(header: string): boolean {
  try {
    parseQueueRequest({ from: 'app@example.com', to: 'a@example.com', text: 'x', headers: { [header]: 'x' } }, undefined);
    return false;
  } catch {
    return true;
  }
}

describe('forbidden headers', () => {
  it("when the simulator checks Headers, then it refuses exactly Mailjet's documented list (send-0011)", () => {
    expect([...MAILJET_FORBIDDEN_HEADERS].sort()).to.deep.equal(DOCUMENTED.map((name) => name.toLowerCase()).sort());
    expect(DOCUMENTED.filter((name) => !simulatorRefuses(name))).to.deep.equal([]);
    expect(simulatorRefuses('X-Campaign-Owner')).to.equal(false);
  });

  it('when a message sets a header Mailjet refuses, in any case, then POST /queue refuses it too', () => {
    const mailjets = [...MAILJET_FORBIDDEN_HEADERS];

    expect(mailjets.filter((name) => !FORBIDDEN_HEADERS.has(name))).to.deep.equal([]);
    expect(mailjets.filter((name) => !jetpostRefuses(name) || !jetpostRefuses(name.toUpperCase()))).to.deep.equal([]);
    expect(jetpostRefuses('X-Campaign-Owner')).to.equal(false);
  });
});
