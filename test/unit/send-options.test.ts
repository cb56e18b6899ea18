// The Send API options of POST /queue, from the request to Mailjet's fields: each option maps to its
// v3.1 field on its own message, the app's custom_id rides in the CustomID after jetpost's job id,
// sandbox jobs never share a call with real ones, and the combinations Mailjet refuses are refused
// at enqueue with a message that says what to do.
import { expect } from 'chai';

import type { ClaimedJob } from '../../src/domain/job.js';
import {
  customIdForJob,
  jobIdFromCustomId,
  type MailjetMessage,
  type MailjetSendBody,
  sendBodyJson,
  toMailjetMessage,
} from '../../src/domain/mailjet-payload.js';
import type { MessageContent } from '../../src/domain/message.js';
import type { RecipientRow } from '../../src/domain/recipient.js';
import { planCalls } from '../../src/domain/send-plan.js';
import { parseQueueRequest } from '../../src/http/schemas.js';
import { claimedJob, message, pendingRecipient } from '../factories.js';

/** A job as a consumer claims it. */
function claimed(id: string, content: MessageContent, customId: string | null = null): ClaimedJob {
  return claimedJob({ id, content, customId });
}

function recipientOf(job: ClaimedJob, email = `to-${job.id}@example.com`): RecipientRow {
  return pendingRecipient(job, email);
}

/** The Mailjet message a POST /queue body becomes, as job `id`. */
function mapped(body: Record<string, unknown>, id = '42') {
  const [job] = parseQueueRequest(body, undefined).jobs;
  return toMailjetMessage({ id, customId: job!.customId, content: job!.content, recipients: job!.recipients });
}

/** The field errors POST /queue answers for `body`. */
function refusal(body: unknown): Array<{ path: string; message: string }> {
  try {
    parseQueueRequest(body, undefined);
  } catch (error) {
    return (error as { fields: Array<{ path: string; message: string }> }).fields;
  }
  throw new Error('the body was accepted');
}

describe('POST /queue Send API options → Mailjet v3.1 fields', () => {
  it('when every option is given, then each maps to its Mailjet field', () => {
    const out = mapped(
      message({
        track_opens: 'enabled',
        track_clicks: 'disabled',
        campaign: 'spring-sale',
        deduplicate_campaign: true,
        event_payload: '{"order":42}',
        url_tags: 'utm_source=jetpost&utm_medium=email',
        monitoring_category: 'billing',
        mailjet_priority: 2,
        priority: 1,
        custom_id: 'order-42',
      }),
    );

    expect(out).to.deep.include({
      TrackOpens: 'enabled',
      TrackClicks: 'disabled',
      CustomCampaign: 'spring-sale',
      DeduplicateCampaign: true,
      EventPayload: '{"order":42}',
      URLTags: 'utm_source=jetpost&utm_medium=email',
      MonitoringCategory: 'billing',
      Priority: 2,
      CustomID: 'jetpost-42:order-42',
    });
  });

  it("when jetpost's claim-order priority is given without mailjet_priority, then Mailjet gets no Priority", () => {
    expect(mapped(message({ priority: 3 }))).not.to.have.property('Priority');
  });

  it('when no option is given, then none of their Mailjet fields appears', () => {
    const out = mapped(message());

    for (const field of [
      'TrackOpens',
      'TrackClicks',
      'CustomCampaign',
      'DeduplicateCampaign',
      'EventPayload',
      'URLTags',
      'MonitoringCategory',
      'Priority',
      'TemplateErrorReporting',
      'TemplateErrorDeliver',
    ]) {
      expect(out, field).not.to.have.property(field);
    }
  });

  it('when template error options are given with a template, then they map and turn the template language on', () => {
    const out = mapped({ to: 'ada@example.org', template_id: 4242, template_error_reporting: 'templates@example.com', template_error_deliver: false });

    expect(out).to.deep.include({
      TemplateID: 4242,
      TemplateLanguage: true,
      TemplateErrorReporting: { Email: 'templates@example.com' },
      TemplateErrorDeliver: false,
    });
  });

  it('when tracking is account_default, then it is passed as such (Mailjet decides)', () => {
    expect(mapped(message({ track_opens: 'account_default', track_clicks: 'account_default' }))).to.deep.include({
      TrackOpens: 'account_default',
      TrackClicks: 'account_default',
    });
  });
});

describe("the CustomID: jetpost's job id, then the app's custom_id", () => {
  it('when the app gives a custom_id, then the CustomID carries both and the job id comes back out of it', () => {
    const customId = customIdForJob('9223372036854775807', 'order:42/ü');

    expect(customId).to.equal('jetpost-9223372036854775807:order:42/ü');
    expect(jobIdFromCustomId(customId)).to.equal('9223372036854775807');
  });

  it('when the app gives none, then the CustomID is jetpost-<job id> as before', () => {
    expect(customIdForJob('42', null)).to.equal('jetpost-42');
    expect(jobIdFromCustomId('jetpost-42')).to.equal('42');
  });

  it("when an app's own custom_id looks like jetpost's, then the job id is still the one in front", () => {
    expect(jobIdFromCustomId(customIdForJob('5', 'jetpost-99'))).to.equal('5');
  });
});

describe('SandboxMode is per call: planCalls packs sandbox jobs apart', () => {
  it('when sandbox and real jobs are claimed together, then no call mixes them and each call says its SandboxMode', () => {
    const jobs = Array.from({ length: 7 }, (_, index) =>
      claimed(String(index + 1), { from: { email: 'app@example.com' }, text: 'Hi', ...(index % 2 === 0 ? { sandbox: true } : {}) }),
    );
    const rows = new Map(jobs.map((job) => [job.id, [recipientOf(job)]]));

    const calls = planCalls(jobs, rows);

    expect(calls.map((call) => [call.sandbox, call.jobs.map((job) => job.id)])).to.deep.equal([
      [false, ['2', '4', '6']],
      [true, ['1', '3', '5', '7']],
    ]);
    expect(JSON.parse(sendBodyJson(calls[1]!.messageJson, calls[1]!.sandbox))).to.have.property('SandboxMode', true);
    expect(JSON.parse(sendBodyJson(calls[0]!.messageJson, calls[0]!.sandbox))).not.to.have.property('SandboxMode');
  });

  it('when jobs with different options share a call, then each message keeps its own options and CustomID', () => {
    const first = claimed('1', { from: { email: 'app@example.com' }, text: 'Hi', track_opens: 'disabled', campaign: 'a' }, 'order-1');
    const second = claimed('2', { from: { email: 'app@example.com' }, text: 'Hi', mailjet_priority: 3 });
    const [call] = planCalls(
      [first, second],
      new Map([
        [first.id, [recipientOf(first)]],
        [second.id, [recipientOf(second)]],
      ]),
    );

    const messages = call!.messageJson.map((json) => JSON.parse(json) as MailjetMessage);
    expect(messages).to.have.length(2);
    expect(messages[0]).to.deep.include({ TrackOpens: 'disabled', CustomCampaign: 'a', CustomID: 'jetpost-1:order-1' });
    expect(messages[0]).not.to.have.property('Priority');
    expect(messages[1]).to.deep.include({ Priority: 3, CustomID: 'jetpost-2' });
    expect(messages[1]).not.to.have.property('TrackOpens');
  });

  it("when a call's body is built from its messages' JSON, then it is byte for byte the JSON of the body object Mailjet gets", () => {
    const jobs = ['1', '2'].map((id) => claimed(id, { from: { email: 'app@example.com', name: 'Zoë "Z"' }, text: 'Grüße\n\u2028', sandbox: id === '2' }));
    const calls = planCalls(jobs, new Map(jobs.map((job) => [job.id, [recipientOf(job)]])));
    const objects = jobs.map((job) =>
      toMailjetMessage({ id: job.id, content: job.content, recipients: [{ kind: 'to', email: recipientOf(job).email, name: undefined }] }),
    );

    const bodies: MailjetSendBody[] = [{ Messages: [objects[0]!] }, { Messages: [objects[1]!], SandboxMode: true }];

    expect(calls.map((call) => sendBodyJson(call.messageJson, call.sandbox))).to.deep.equal(bodies.map((body) => JSON.stringify(body)));
  });
});

describe('POST /queue refuses what Mailjet would refuse, in plain words', () => {
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['html with a template', message({ text: undefined, html: '<p>x</p>', template_id: 1 }), 'html', /give either template_id or html.*send-0004/],
    ['text with a template', message({ template_id: 1 }), 'text', /give either template_id or text/],
    ['template_error_deliver without a template', message({ template_error_deliver: true }), 'template_error_deliver', /give template_id too/],
    ['template_error_reporting without a template', message({ template_error_reporting: 'x@example.com' }), 'template_error_reporting', /give template_id too/],
    [
      'template errors with the template language off',
      { to: 'a@example.org', template_id: 1, template_language: false, template_error_deliver: true },
      'template_error_deliver',
      /template_language.*send-0016/,
    ],
    ['deduplicate_campaign without campaign', message({ deduplicate_campaign: true }), 'deduplicate_campaign', /give campaign too.*send-0012/],
    ['track_opens "yes"', message({ track_opens: 'yes' }), 'track_opens', /must be one of "account_default", "disabled", "enabled"/],
    ['track_clicks true', message({ track_clicks: true }), 'track_clicks', /must be one of/],
    ['mailjet_priority 4', message({ mailjet_priority: 4 }), 'mailjet_priority', /a whole number from 0 to 3/],
    ['mailjet_priority "2"', message({ mailjet_priority: '2' }), 'mailjet_priority', /must be a number, not a string/],
    ['url_tags of 100,000 characters', message({ url_tags: 'a=1&'.repeat(25_000) }), 'url_tags', /at most 256 characters/],
    ['url_tags with a space', message({ url_tags: 'a=b c' }), 'url_tags', /printable ASCII without spaces/],
    ['url_tags with a leading ?', message({ url_tags: '?a=1' }), 'url_tags', /without a leading \?/],
    ['a NUL in campaign', message({ campaign: 'spring\u0000' }), 'campaign', /NUL/],
    ['a line break in campaign', message({ campaign: 'a\r\nb' }), 'campaign', /line breaks/],
    ['a 256-character campaign', message({ campaign: 'c'.repeat(256) }), 'campaign', /at most 255 characters/],
    ['event_payload as an object', message({ event_payload: { order: 42 } }), 'event_payload', /must be a string, not an object/],
    ['event_payload above 8 KiB', message({ event_payload: 'p'.repeat(8193) }), 'event_payload', /at most 8192 bytes/],
    ['an empty monitoring_category', message({ monitoring_category: '' }), 'monitoring_category', /must not be empty/],
    ['sandbox "true"', message({ sandbox: 'true' }), 'sandbox', /must be true or false, not a string/],
    [
      'template_error_reporting that is not an address',
      { to: 'a@example.org', template_id: 1, template_error_reporting: 7 },
      'template_error_reporting',
      /must be an address/,
    ],
  ];
  for (const [name, body, path, wording] of cases) {
    it(`when ${name}, then ${path} is named with what is expected`, () => {
      const errors = refusal(body);
      expect(
        errors.map((error) => error.path),
        JSON.stringify(errors),
      ).to.include(path);
      expect(errors.find((error) => error.path === path)!.message).to.match(wording);
    });
  }

  it('when a message in a bulk request mixes sandbox and real messages, then it is accepted (they are packed apart)', () => {
    const { jobs } = parseQueueRequest({ messages: [message({ sandbox: true }), message(), message({ sandbox: false })] }, undefined);

    expect(jobs.map((job) => job.content.sandbox)).to.deep.equal([true, undefined, false]);
  });
});

describe('POST /queue validation messages say what is expected', () => {
  it('when to is missing, then "to is required: one address or a list of them"', () => {
    expect(refusal({ from: 'a@example.com', text: 'x' })).to.deep.equal([{ path: 'to', message: 'to is required: one address or a list of them' }]);
  });

  it('when cc, bcc or to is null (an absent field written as None), then the refusal is of the field, not of its first item', () => {
    for (const field of ['to', 'cc', 'bcc']) {
      expect(refusal({ from: 'a@example.com', to: 'b@example.com', text: 'x', [field]: null }), field).to.deep.equal([
        { path: field, message: `${field} is one address or a list of them, not null: leave it out when there is none` },
      ]);
    }
  });

  it("when to is a single address string, then it is accepted (the README's own example)", () => {
    const [job] = parseQueueRequest({ from: 'a@example.com', to: 'you@example.com', text: 'x' }, undefined).jobs;

    expect(job!.recipients).to.deep.equal([{ kind: 'to', email: 'you@example.com' }]);
  });

  it("when values have the wrong type or range, then no message is zod's raw text", () => {
    const errors = refusal({
      messages: [
        message({ priority: 9, subject: 's'.repeat(300), metadata: [1], attachments: {}, template_language: 'yes', cc: [{}] }),
        message({ to: [], custom_id: '', priority: 1.5 }),
      ],
    });

    expect(errors.length).to.be.above(6);
    for (const error of errors) {
      expect(error.message, error.path).not.to.match(/Invalid input|Too big|Too small|expected \w+ to|received/);
    }
    expect(errors).to.deep.include({ path: 'messages.0.priority', message: 'a whole number from 0 to 3' });
    expect(errors).to.deep.include({ path: 'messages.0.subject', message: 'must have at most 255 characters' });
    expect(errors).to.deep.include({ path: 'messages.1.to', message: 'to must hold at least one address' });
    expect(errors).to.deep.include({ path: 'messages.1.priority', message: 'must be a whole number, not a number with a fraction' });
  });

  it('when template_id is 0, a header name holds a line break, or the Idempotency-Key header is empty or too long, then each message states the rule', () => {
    const mailjetTemplate = 'a Mailjet template id: a whole number from 1 to 2147483647';
    expect(refusal({ to: 'a@example.com', template_id: 0 })).to.deep.equal([{ path: 'template_id', message: mailjetTemplate }]);
    expect(refusal({ to: 'a@example.com', template_id: 2 ** 31 })).to.deep.equal([{ path: 'template_id', message: mailjetTemplate }]);
    const [header] = refusal(message({ headers: { 'X-Note\r\nBcc': 'v' } }));
    expect(header).to.deep.include({ path: 'headers.X-Note\r\nBcc' });
    expect(header!.message).to.match(/^has a key that is not valid: a header name is 1 to 100 letters, digits and .* \(no spaces, colons or line breaks\)$/);

    const headerKeyRefusal = (key: string) => {
      try {
        parseQueueRequest(message({}), key);
      } catch (error) {
        return (error as { fields: Array<{ path: string; message: string }> }).fields;
      }
      throw new Error('the key was accepted');
    };
    expect(headerKeyRefusal('')).to.deep.equal([{ path: 'Idempotency-Key', message: 'must not be empty' }]);
    expect(headerKeyRefusal('k'.repeat(256))).to.deep.equal([{ path: 'Idempotency-Key', message: 'must have at most 255 characters' }]);
  });
});
