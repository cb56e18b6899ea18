import { expect } from 'chai';

import type { Simulator } from '../../src/simulator/server.js';
import { mailjetMessage } from '../factories.js';
import { type Answer, call, eventsOf, rawIds, type Receiver, send, simulatorKit } from '../support/simulator-kit.js';

interface ErrorDetail {
  ErrorIdentifier: string;
  ErrorCode: string;
  StatusCode: number;
  ErrorMessage: string;
  ErrorRelatedTo: string[];
}

interface Entry {
  Status: string;
  Errors?: ErrorDetail[];
}

const { startSimulator, startReceiver, closeAll } = simulatorKit();
const LINK = '<p><a href="https://example.com/offer">offer</a></p>';

/** Each message entry as "success" or its error codes joined by commas. */
function outcomes(answer: Answer): string[] {
  const { Messages: entries } = JSON.parse(answer.text) as { Messages: Entry[] };
  return entries.map((entry) => entry.Errors?.map((error) => `${error.ErrorCode} ${error.ErrorRelatedTo.join(',')}`).join('; ') ?? entry.Status);
}

function firstError(answer: Answer): ErrorDetail | undefined {
  return (JSON.parse(answer.text) as { Messages: Entry[] }).Messages.find((entry) => entry.Errors)?.Errors?.[0];
}

/** Sends the messages, flushes, and answers the events delivered as "type email" lines. */
async function eventLines(simulator: Simulator, receiver: Receiver, messages: Array<Record<string, unknown>>): Promise<string[]> {
  const answer = await send(simulator, { Messages: messages });
  expect(answer.status, answer.text).to.equal(200);
  await simulator.flushEvents();
  return eventsOf(receiver.deliveries.splice(0)).map((event) => `${String(event.event)} ${String(event.email)}`);
}

describe('Mailjet simulator: Send API options', () => {
  afterEach(closeAll);

  describe('TrackOpens and TrackClicks', () => {
    it('when TrackOpens or TrackClicks is "disabled", then that event is never reported', async () => {
      const receiver = await startReceiver();
      const simulator = await startSimulator({ callbackUrl: receiver.url });

      const lines = await eventLines(simulator, receiver, [
        mailjetMessage('opens-off@example.com', { HTMLPart: LINK, TrackOpens: 'disabled' }),
        mailjetMessage('clicks-off@example.com', { HTMLPart: LINK, TrackClicks: 'disabled' }),
        mailjetMessage('both-on@example.com', { HTMLPart: LINK, TrackOpens: 'enabled', TrackClicks: 'account_default' }),
      ]);

      expect(lines).to.have.members([
        'sent opens-off@example.com',
        'click opens-off@example.com',
        'sent clicks-off@example.com',
        'open clicks-off@example.com',
        'sent both-on@example.com',
        'open both-on@example.com',
        'click both-on@example.com',
      ]);
      const [resource] = (JSON.parse((await call(simulator, '/v3/REST/message?Limit=1')).text) as { Data: unknown[] }).Data;
      expect(resource).to.include({ IsOpenTracked: false, IsClickTracked: true });
    });

    it('when the account does not track by default, then only "enabled" brings opens and clicks back', async () => {
      const receiver = await startReceiver();
      const simulator = await startSimulator({ callbackUrl: receiver.url, accountTracking: { opens: false, clicks: false } });

      const lines = await eventLines(simulator, receiver, [
        mailjetMessage('default@example.com', { HTMLPart: LINK }),
        mailjetMessage('forced@example.com', { HTMLPart: LINK, TrackOpens: 'enabled', TrackClicks: 'enabled' }),
      ]);

      expect(lines).to.have.members(['sent default@example.com', 'sent forced@example.com', 'open forced@example.com', 'click forced@example.com']);
    });

    it('when TrackOpens or TrackClicks has another value, then mj-0005 for that message', async () => {
      const simulator = await startSimulator();

      const answer = await send(simulator, {
        Messages: [
          mailjetMessage('a@example.com', { TrackOpens: 'yes' }),
          mailjetMessage('b@example.com', { TrackClicks: true }),
          mailjetMessage('c@example.com'),
        ],
      });

      expect(answer.status).to.equal(400);
      expect(outcomes(answer)).to.deep.equal(['mj-0005 TrackOpens', 'mj-0005 TrackClicks', 'success']);
      expect(simulator.messages.map((accepted) => accepted.recipients[0]?.email)).to.deep.equal(['c@example.com']);
    });
  });

  describe('CustomCampaign and DeduplicateCampaign', () => {
    it('when messages name a CustomCampaign, then events carry one mj_campaign_id per name, with CustomID and Payload', async () => {
      const receiver = await startReceiver();
      const simulator = await startSimulator({ callbackUrl: receiver.url });
      const spring = { CustomCampaign: 'spring', CustomID: 'job-1', EventPayload: '{"order":7}' };

      await send(simulator, { Messages: [mailjetMessage('a@example.com', spring), mailjetMessage('b@example.com', { CustomCampaign: 'autumn' })] });
      await send(simulator, { Messages: [mailjetMessage('c@example.com', { ...spring, CustomID: 'job-2' }), mailjetMessage('d@example.com')] });
      await simulator.flushEvents();

      const events = eventsOf(receiver.deliveries);
      const campaignOf = (email: string): unknown[] => [...new Set(events.filter((event) => event.email === email).map((event) => event.mj_campaign_id))];
      const [springId] = campaignOf('a@example.com');
      expect(springId).to.be.a('number').above(0);
      expect(campaignOf('c@example.com')).to.deep.equal([springId]);
      expect(campaignOf('b@example.com')).to.have.length(1).and.not.include(springId).and.not.include(0);
      expect(campaignOf('d@example.com')).to.deep.equal([0]);
      for (const event of events.filter((candidate) => candidate.email === 'a@example.com')) {
        expect(event).to.include({ customcampaign: 'spring', CustomID: 'job-1', Payload: '{"order":7}' });
      }
      expect(events.find((event) => event.email === 'd@example.com')).to.include({ customcampaign: '', CustomID: '', Payload: '' });
      const byCustomId = JSON.parse((await call(simulator, '/v3/REST/message?CustomID=job-2')).text) as { Data: unknown[] };
      expect(byCustomId.Data[0]).to.include({ CampaignID: springId });
    });

    it('when DeduplicateCampaign is true and the campaign already reached an address, then that recipient is blocked as a duplicate', async () => {
      const receiver = await startReceiver();
      const simulator = await startSimulator({ callbackUrl: receiver.url });
      const dedupe = { CustomCampaign: 'welcome', DeduplicateCampaign: true };

      await eventLines(simulator, receiver, [mailjetMessage('a@example.com', { CustomCampaign: 'welcome' })]);
      const answer = await send(simulator, {
        Messages: [
          mailjetMessage('A@example.com', { ...dedupe, Cc: [{ Email: 'new@example.com' }] }),
          mailjetMessage('a@example.com', { CustomCampaign: 'other', DeduplicateCampaign: true }),
        ],
      });
      await simulator.flushEvents();

      expect(answer.status).to.equal(200);
      const events = eventsOf(receiver.deliveries);
      expect(events.filter((event) => event.email === 'A@example.com')).to.have.length(1);
      expect(events.find((event) => event.email === 'A@example.com')).to.include({
        event: 'blocked',
        error_related_to: 'mailjet',
        error: 'duplicate in campaign',
      });
      expect(events.filter((event) => event.email === 'new@example.com').map((event) => event.event)).to.deep.equal(['sent', 'open']);
      expect(events.filter((event) => event.email === 'a@example.com').map((event) => event.event)).to.deep.equal(['sent', 'open']);
      expect(simulator.messages[1]?.recipients[0]?.status).to.equal('blocked');
    });

    it('when DeduplicateCampaign is true without a CustomCampaign, then send-0012', async () => {
      const simulator = await startSimulator();

      const answer = await send(simulator, { Messages: [mailjetMessage('a@example.com', { DeduplicateCampaign: true })] });

      expect(outcomes(answer)).to.deep.equal(['send-0012 CustomCampaign,DeduplicateCampaign']);
    });
  });

  describe('URLTags, MonitoringCategory and Priority', () => {
    it('when URLTags is set, then the click reports the link with the tags; over 256 characters is mj-0006', async () => {
      const receiver = await startReceiver();
      const simulator = await startSimulator({ callbackUrl: receiver.url });

      await eventLines(simulator, receiver, [
        mailjetMessage('a@example.com', { HTMLPart: '<a href="https://example.com/p?id=1#top">x</a>', URLTags: 'utm_source=mail&utm_campaign=spring' }),
      ]);
      const tooLong = await send(simulator, { Messages: [mailjetMessage('b@example.com', { URLTags: 'x'.repeat(257) })] });

      expect(simulator.messages[0]?.clickUrl).to.equal('https://example.com/p?id=1&utm_source=mail&utm_campaign=spring#top');
      expect(outcomes(tooLong)).to.deep.equal(['mj-0006 URLTags']);
    });

    it('when MonitoringCategory is not one of the configured categories, then send-0013; a known one is recorded', async () => {
      const simulator = await startSimulator({ monitoringCategories: ['billing'] });

      const answer = await send(simulator, {
        Messages: [mailjetMessage('a@example.com', { MonitoringCategory: 'billing' }), mailjetMessage('b@example.com', { MonitoringCategory: 'nope' })],
      });

      expect(outcomes(answer)).to.deep.equal(['success', 'send-0013 MonitoringCategory']);
      expect(simulator.messages[0]?.monitoringCategory).to.equal('billing');
    });

    it('when Priority is 0 to 3, then it is recorded; another number is mj-0005 and a string mj-0004', async () => {
      const simulator = await startSimulator();

      const answer = await send(simulator, {
        Messages: [
          mailjetMessage('a@example.com', { Priority: 3 }),
          mailjetMessage('b@example.com', { Priority: 4 }),
          mailjetMessage('c@example.com', { Priority: 1.5 }),
          mailjetMessage('d@example.com', { Priority: '2' }),
        ],
      });

      expect(outcomes(answer)).to.deep.equal(['success', 'mj-0005 Priority', 'mj-0005 Priority', 'mj-0004 Priority']);
      expect(simulator.messages.map((accepted) => accepted.priority)).to.deep.equal([3]);
    });
  });

  describe('TemplateLanguage errors', () => {
    const templated = (to: string, extra: Record<string, unknown> = {}): Record<string, unknown> =>
      mailjetMessage(to, { TemplateLanguage: true, TextPart: 'Hello {{var:name}}, see {{var:city:"Paris"}}', ...extra });

    it('when a {{var:…}} without default is not in Variables, then the recipient is blocked unless TemplateErrorDeliver', async () => {
      const receiver = await startReceiver();
      const simulator = await startSimulator({ callbackUrl: receiver.url });

      const lines = await eventLines(simulator, receiver, [
        templated('stopped@example.com', { TemplateErrorReporting: { Email: 'dev@example.com' } }),
        templated('delivered@example.com', { TemplateErrorDeliver: true }),
        templated('fine@example.com', { Variables: { name: 'Ada' } }),
      ]);

      expect(lines).to.have.members([
        'blocked stopped@example.com',
        'sent delivered@example.com',
        'open delivered@example.com',
        'sent fine@example.com',
        'open fine@example.com',
      ]);
      const [stopped, delivered, fine] = simulator.messages;
      expect(stopped?.recipients[0]?.blockedFor).to.deep.equal({ relatedTo: 'content', error: 'error in template language' });
      expect(stopped?.templateErrorReportedTo).to.equal('dev@example.com');
      expect(delivered?.templateError).to.match(/"name" is not defined/);
      expect(fine?.templateError).to.equal(undefined);
    });

    it('when TemplateErrorReporting or TemplateErrorDeliver come without TemplateLanguage true, then send-0016', async () => {
      const simulator = await startSimulator();

      const answer = await send(simulator, {
        Messages: [
          mailjetMessage('a@example.com', { TemplateErrorDeliver: true }),
          mailjetMessage('b@example.com', { TemplateLanguage: false, TemplateErrorReporting: { Email: 'dev@example.com' } }),
          mailjetMessage('c@example.com', { TemplateLanguage: true, TemplateErrorReporting: { Email: 'not-an-address' } }),
        ],
      });

      expect(outcomes(answer)).to.deep.equal(['send-0016 TemplateLanguage', 'send-0016 TemplateLanguage', 'mj-0013 TemplateErrorReporting.Email']);
    });
  });

  describe('SandboxMode', () => {
    it('when SandboxMode is true, then the options are validated, nothing is called back and no campaign remembers the address', async () => {
      const receiver = await startReceiver();
      const simulator = await startSimulator({ callbackUrl: receiver.url });
      const campaign = { CustomCampaign: 'launch', DeduplicateCampaign: true };

      const sandboxed = await send(simulator, {
        SandboxMode: true,
        Messages: [mailjetMessage('a@example.com', campaign), mailjetMessage('b@example.com', { Priority: 9 })],
      });
      await simulator.flushEvents();
      const deliveredBefore = receiver.deliveries.length;
      const lines = await eventLines(simulator, receiver, [mailjetMessage('a@example.com', campaign)]);

      expect(sandboxed.status).to.equal(400);
      expect(outcomes(sandboxed)).to.deep.equal(['success', 'mj-0005 Priority']);
      expect(rawIds(sandboxed.text)).to.deep.equal(['0']);
      expect(deliveredBefore).to.equal(0);
      expect(lines).to.deep.equal(['sent a@example.com', 'open a@example.com']);
    });

    it('when SandboxMode is not a boolean, then a global mj-0004 and nothing is sent', async () => {
      const simulator = await startSimulator();

      const answer = await send(simulator, { SandboxMode: 'true', Messages: [mailjetMessage('a@example.com')] });

      expect(answer.status).to.equal(400);
      expect(JSON.parse(answer.text)).to.include({ ErrorCode: 'mj-0004', StatusCode: 400 });
      expect(simulator.messages).to.have.length(0);
    });
  });
});

describe('Mailjet simulator: send errors', () => {
  afterEach(closeAll);

  it('when the From local part contains "unauthorized", then 403 with send-0008 in Mailjet\'s words, and the other messages are sent', async () => {
    const simulator = await startSimulator();
    const from = { Email: 'unauthorized@example.com' };

    const answer = await send(simulator, { Messages: [mailjetMessage('a@example.com'), mailjetMessage('b@example.com', { From: from })] });
    const mixed = await send(simulator, { Messages: [mailjetMessage('c@example.com', { From: from }), mailjetMessage('not-an-address')] });

    expect(answer.status).to.equal(403);
    expect(outcomes(answer)).to.deep.equal(['success', 'send-0008 From']);
    const error = firstError(answer);
    expect(error).to.include({
      ErrorCode: 'send-0008',
      StatusCode: 403,
      ErrorMessage: '"unauthorized@example.com" is not an authorized sender email address for your account.',
    });
    expect(error?.ErrorIdentifier).to.be.a('string').with.length(36);
    expect(mixed.status).to.equal(400);
    expect(simulator.messages.map((accepted) => accepted.recipients[0]?.email)).to.deep.equal(['a@example.com']);
  });

  it('when messageErrorCode is set, then a message matching messageErrorPattern fails with that code and its status', async () => {
    const simulator = await startSimulator();
    const body = { Messages: [mailjetMessage('ok@example.com'), mailjetMessage('fail@example.com', { Bcc: [{ Email: 'fail-too@example.com' }] })] };
    const expected = {
      'mj-0005': [400, 'mj-0005 TrackOpens'],
      'mj-0006': [400, 'mj-0006 Subject'],
      'mj-0012': [400, 'mj-0012 To[0].Email; mj-0012 Bcc[0].Email'],
      'mj-0013': [400, 'mj-0013 To[0].Email; mj-0013 Bcc[0].Email'],
      'send-0008': [403, 'send-0008 From'],
    } as const;

    for (const [code, [status, errors]] of Object.entries(expected)) {
      simulator.faults.set({ messageErrorPattern: '^fail', messageErrorCode: code as keyof typeof expected });
      const answer = await send(simulator, body);

      expect(answer.status, code).to.equal(status);
      expect(outcomes(answer), code).to.deep.equal(['success', errors]);
    }
    const rejected = await call(simulator, '/_sim/faults', { method: 'POST', body: JSON.stringify({ messageErrorPattern: 'x', messageErrorCode: 'mj-0099' }) });
    expect(rejected.status).to.equal(400);
    expect(rejected.text).to.include('messageErrorCode must be one of');
    expect(() => simulator.faults.set({ messageErrorCode: 'mj-0005' })).to.throw(RangeError, /needs a messageErrorPattern/);
  });

  it('when an Email, Filename, ContentType or Base64Content is an empty string, then mj-0012 naming it', async () => {
    const simulator = await startSimulator();
    const attachment = { ContentType: 'text/plain', Filename: 'a.txt', Base64Content: 'aGk=' };

    const answer = await send(simulator, {
      Messages: [
        mailjetMessage('a@example.com', { Cc: [{ Email: '' }] }),
        mailjetMessage('b@example.com', { Attachments: [attachment, { ...attachment, Filename: '' }] }),
        mailjetMessage('c@example.com', { InlinedAttachments: [{ ContentType: '', Filename: 'logo.png', Base64Content: '' }] }),
        mailjetMessage('d@example.com', { Attachments: [{ ContentType: 'text/plain', Base64Content: 1 }] }),
        mailjetMessage('e@example.com', { Attachments: [attachment] }),
      ],
    });

    expect(outcomes(answer)).to.deep.equal([
      'mj-0012 Cc[0].Email',
      'mj-0012 Attachments[1].Filename',
      'mj-0012 InlinedAttachments[0].ContentType; mj-0012 InlinedAttachments[0].Base64Content',
      'mj-0003 Attachments[0].Filename; mj-0004 Attachments[0].Base64Content',
      'success',
    ]);
  });

  it('when maxBodyBytes lowers the limit, then a bigger body gets the HTML 413 and the call log says so', async () => {
    const simulator = await startSimulator();
    simulator.faults.set({ maxBodyBytes: 2000 });

    const small = await send(simulator, { Messages: [mailjetMessage('a@example.com', { CustomID: 'small' })] });
    const big = await send(simulator, { Messages: [mailjetMessage('b@example.com', { CustomID: 'big', TextPart: 'x'.repeat(2000) })] });

    expect(small.status).to.equal(200);
    expect(big.status).to.equal(413);
    expect(big.headers.get('content-type')).to.equal('text/html');
    expect(big.text).to.include('413 Request Entity Too Large');
    expect(simulator.sendCallLog().map(({ outcome, status, accepted }) => ({ outcome, status, accepted }))).to.deep.equal([
      { outcome: 'ok', status: 200, accepted: ['small'] },
      { outcome: 'too-large', status: 413, accepted: [] },
    ]);
    expect(() => simulator.faults.set({ maxBodyBytes: 16 * 1024 * 1024 })).to.throw(RangeError, /maxBodyBytes/);
  });
});
