// Headers a message may not carry. The simulator keeps Mailjet's rule (its documented send-0011
// list); jetpost's own rule (domain/mailjet-payload.ts) may be stricter but never looser: a header
// Mailjet refuses must be refused by POST /queue at once, not queued only to fail at every attempt.
import { expect } from 'chai';

import { FORBIDDEN_HEADERS } from '../../src/domain/mailjet-payload.js';
import { parseQueueRequest } from '../../src/http/schemas.js';
import { FORBIDDEN_HEADERS as MAILJET_FORBIDDEN_HEADERS } from '../../src/simulator/send.js';
import { mailjetMessage } from '../factories.js';
import { send, simulatorKit } from '../support/simulator-kit.js';

/** Mailjet's documentation of Headers in the Send API v3.1 ("use the dedicated property"), restated. */
const DOCUMENTED = [
  'From',
  'Sender',
  'Subject',
  'To',
  'Cc',
  'Bcc',
  'Return-Path',
  'Delivered-To',
  'DKIM-Signature',
  'DomainKey-Status',
  'Received-SPF',
  'Authentication-Results',
  'Received',
  'X-Mailjet-Prio',
  'X-Mailjet-Debug',
  'User-Agent',
  'X-Mailer',
  'X-MJ-CustomID',
  'X-MJ-EventPayload',
  'X-MJ-Vars',
  'X-MJ-TemplateErrorDeliver',
  'X-MJ-TemplateErrorReporting',
  'X-MJ-TemplateLanguage',
  'X-Mailjet-TrackOpen',
  'X-Mailjet-TrackClick',
  'X-MJ-TemplateID',
  'X-MJ-WorkflowID',
  'X-Feedback-Id',
  'X-Mailjet-Segmentation',
  'List-Id',
  'X-MJ-MID',
  'X-MJ-ErrorMessage',
  'Date',
  'X-CSA-Complaints',
  'Message-Id',
  'X-Mailjet-Campaign',
  'X-MJ-StatisticsContactsListID',
];

/** Which of `headers` the simulator refuses with send-0011: one call, one message per header. */
async function simulatorRefuses(headers: readonly string[]): Promise<string[]> {
  const simulator = await kit.startSimulator();
  const answer = await send(simulator, { Messages: headers.map((name) => mailjetMessage('a@example.com', { Headers: { [name]: 'x' } })) });
  const entries = (JSON.parse(answer.text) as { Messages: Array<{ Errors?: Array<{ ErrorCode: string }> }> }).Messages;
  return headers.filter((_, index) => entries[index]?.Errors?.some((error) => error.ErrorCode === 'send-0011'));
}

function jetpostRefuses(header: string): boolean {
  try {
    parseQueueRequest({ from: 'app@example.com', to: 'a@example.com', text: 'x', headers: { [header]: 'x' } }, undefined);
    return false;
  } catch {
    return true;
  }
}

const kit = simulatorKit();

describe('forbidden headers', () => {
  afterEach(() => kit.closeAll());

  it("when the simulator checks Headers, then it refuses exactly Mailjet's documented list (send-0011)", async () => {
    expect([...MAILJET_FORBIDDEN_HEADERS].sort()).to.deep.equal(DOCUMENTED.map((name) => name.toLowerCase()).sort());
    expect(await simulatorRefuses([...DOCUMENTED, 'X-Campaign-Owner'])).to.deep.equal(DOCUMENTED);
  });

  it('when a message sets a header Mailjet refuses, in any case, then POST /queue refuses it too', () => {
    const mailjets = [...MAILJET_FORBIDDEN_HEADERS];

    expect(mailjets.filter((name) => !FORBIDDEN_HEADERS.has(name))).to.deep.equal([]);
    expect(mailjets.filter((name) => !jetpostRefuses(name) || !jetpostRefuses(name.toUpperCase()))).to.deep.equal([]);
    expect(jetpostRefuses('X-Campaign-Owner')).to.equal(false);
  });
});
