import { expect } from 'chai';
import fc from 'fast-check';

import {
  countRecipients,
  customIdForJob,
  jobIdFromCustomId,
  MAX_RECIPIENTS_PER_CALL,
  messageBytes,
  type PackableMessage,
  packCalls,
  queuedMessageBytes,
  queuedMessageBytesAtMost,
  type SendableJob,
  toMailjetMessage,
} from '../../src/domain/mailjet-payload.js';
import type { MessageContent, Recipient } from '../../src/domain/message.js';

function job(content: MessageContent, recipients: Recipient[] = [{ kind: 'to', email: 'a@example.com' }], id = '42'): SendableJob {
  return { id, content, recipients };
}

/** `count` one-recipient messages of `bytes` bytes each. */
function small(count: number, bytes = 1000): PackableMessage[] {
  return Array.from({ length: count }, () => ({ recipients: 1, bytes }));
}

/** Every index 0..n-1 exactly once and in order: packing never drops, repeats or reorders messages. */
function expectOrderedCover(calls: number[][], count: number): void {
  expect(calls.flat()).to.deep.equal(Array.from({ length: count }, (_, index) => index));
}

describe('toMailjetMessage', () => {
  it('when every field is given, then each one maps to its Mailjet property', () => {
    const message = toMailjetMessage(
      job(
        {
          from: { email: 'app@example.com', name: 'The App' },
          reply_to: { email: 'support@example.com', name: 'Support' },
          subject: 'Your receipt',
          text: 'Thanks',
          html: '<p>Thanks</p><img src="cid:logo">',
          headers: { 'X-Campaign': 'spring' },
          attachments: [
            { filename: 'receipt.pdf', content_type: 'application/pdf', content: 'JVBERi0=' },
            { filename: 'logo.png', content_type: 'image/png', content: 'iVBORw==', content_id: 'logo' },
          ],
        },
        [
          { kind: 'to', email: 'to1@example.com', name: 'To One' },
          { kind: 'to', email: 'to2@example.com' },
          { kind: 'cc', email: 'cc@example.com', name: 'Cee' },
          { kind: 'bcc', email: 'bcc@example.com' },
        ],
        '1234567890123456789',
      ),
    );

    expect(message).to.deep.equal({
      From: { Email: 'app@example.com', Name: 'The App' },
      To: [{ Email: 'to1@example.com', Name: 'To One' }, { Email: 'to2@example.com' }],
      Cc: [{ Email: 'cc@example.com', Name: 'Cee' }],
      Bcc: [{ Email: 'bcc@example.com' }],
      ReplyTo: { Email: 'support@example.com', Name: 'Support' },
      Subject: 'Your receipt',
      TextPart: 'Thanks',
      HTMLPart: '<p>Thanks</p><img src="cid:logo">',
      Headers: { 'X-Campaign': 'spring' },
      Attachments: [{ ContentType: 'application/pdf', Filename: 'receipt.pdf', Base64Content: 'JVBERi0=' }],
      InlinedAttachments: [{ ContentType: 'image/png', Filename: 'logo.png', Base64Content: 'iVBORw==', ContentID: 'logo' }],
      CustomID: 'jetpost-1234567890123456789',
    });
  });

  it('when only from, one recipient and text are given, then no optional property is present', () => {
    const message = toMailjetMessage(job({ from: { email: 'app@example.com' }, text: 'Hi' }));

    expect(message).to.deep.equal({
      From: { Email: 'app@example.com' },
      To: [{ Email: 'a@example.com' }],
      TextPart: 'Hi',
      CustomID: 'jetpost-42',
    });
    // Absent, not present-and-undefined: Mailjet rejects null/typed-wrong properties.
    for (const key of [
      'Cc',
      'Bcc',
      'ReplyTo',
      'Subject',
      'HTMLPart',
      'TemplateID',
      'TemplateLanguage',
      'Variables',
      'Headers',
      'Attachments',
      'InlinedAttachments',
    ]) {
      expect(message, key).not.to.have.property(key);
    }
  });

  it('when an address has an empty name, then Name is left out', () => {
    const message = toMailjetMessage(job({ from: { email: 'app@example.com', name: '' }, text: 'Hi' }, [{ kind: 'to', email: 'a@example.com', name: '' }]));

    expect(message.From).to.deep.equal({ Email: 'app@example.com' });
    expect(message.To).to.deep.equal([{ Email: 'a@example.com' }]);
  });

  it('when a template is used with variables, then TemplateLanguage defaults to true', () => {
    const message = toMailjetMessage(job({ template_id: 1234, variables: { name: 'Ada', total: '12.50' } }));

    expect(message.TemplateID).to.equal(1234);
    expect(message.TemplateLanguage).to.equal(true);
    expect(message.Variables).to.deep.equal({ name: 'Ada', total: '12.50' });
    expect(message).not.to.have.property('From');
  });

  it('when a template is used without variables, then TemplateLanguage is false', () => {
    const message = toMailjetMessage(job({ template_id: 1234 }));

    expect(message.TemplateID).to.equal(1234);
    expect(message.TemplateLanguage).to.equal(false);
    expect(message).not.to.have.property('Variables');
  });

  it('when variables or template_language: true come with text or html and no template, then TemplateLanguage is on (it was left out, and {{var:…}} went out as written)', () => {
    const inline = toMailjetMessage(job({ html: '<p>Hi {{var:name}}</p>', variables: { name: 'Ada' } }));
    expect(inline).to.deep.include({ HTMLPart: '<p>Hi {{var:name}}</p>', TemplateLanguage: true, Variables: { name: 'Ada' } });
    expect(toMailjetMessage(job({ text: 'Hi {{var:name:"you"}}', template_language: true })).TemplateLanguage).to.equal(true);
    expect(toMailjetMessage(job({ text: 'Hi', variables: { a: 1 }, template_language: false }))).not.to.have.property('TemplateLanguage');
  });

  it('when template_language is given explicitly, then it wins over the default', () => {
    expect(toMailjetMessage(job({ template_id: 1, variables: { a: 1 }, template_language: false })).TemplateLanguage).to.equal(false);
    expect(toMailjetMessage(job({ template_id: 1, template_language: true })).TemplateLanguage).to.equal(true);
  });

  it('when headers is an empty object, then Headers is left out', () => {
    expect(toMailjetMessage(job({ from: { email: 'app@example.com' }, text: 'x', headers: {} }))).not.to.have.property('Headers');
  });

  it('when only inline attachments are given, then Attachments is left out and InlinedAttachments keeps their order', () => {
    const message = toMailjetMessage(
      job({
        from: { email: 'app@example.com' },
        html: '<img src="cid:a"><img src="cid:b">',
        attachments: [
          { filename: 'a.png', content_type: 'image/png', content: 'AAAA', content_id: 'a' },
          { filename: 'b.png', content_type: 'image/png', content: 'BBBB', content_id: 'b' },
        ],
      }),
    );

    expect(message).not.to.have.property('Attachments');
    expect(message.InlinedAttachments?.map((attachment) => attachment.ContentID)).to.deep.equal(['a', 'b']);
  });
});

describe('customIdForJob / jobIdFromCustomId', () => {
  it('when a job id goes through CustomID and back, then it comes back unchanged', () => {
    for (const id of ['1', '42', '9223372036854775807']) {
      expect(jobIdFromCustomId(customIdForJob(id))).to.equal(id);
    }
  });

  it('when the CustomID was not written by jetpost, then no job id is found', () => {
    for (const foreign of [undefined, '', 'job-42', 'jetpost-', 'jetpost-abc', 'jetpost-42x', 'xjetpost-42', 'jetpost-12345678901234567890', 'JETPOST-42']) {
      expect(jobIdFromCustomId(foreign), String(foreign)).to.equal(undefined);
    }
  });
});

describe('packCalls', () => {
  it('when 120 one-recipient messages are packed, then 3 calls of 50, 50 and 20 in order', () => {
    const calls = packCalls(small(120));

    expect(calls.map((call) => call.length)).to.deep.equal([50, 50, 20]);
    expectOrderedCover(calls, 120);
  });

  it('when exactly 50 one-recipient messages are packed, then one call', () => {
    expect(packCalls(small(50))).to.have.length(1);
  });

  it('when calls may hold at most 3 messages (BATCH_SIZE), then 7 one-recipient messages go in calls of 3, 3 and 1 in order', () => {
    const calls = packCalls(small(7), 50, 1_000_000, 3);

    expect(calls.map((call) => call.length)).to.deep.equal([3, 3, 1]);
    expectOrderedCover(calls, 7);
  });

  it('when messages have many recipients, then no call exceeds 50 recipients and order is kept', () => {
    const sizes = [30, 30, 20, 50, 1, 49, 1, 25, 25, 26, 10, 40, 2, 48, 1, 1];
    const calls = packCalls(sizes.map((recipients) => ({ recipients, bytes: 100 })));

    expectOrderedCover(calls, sizes.length);
    for (const call of calls) {
      expect(call.reduce((sum, index) => sum + sizes[index]!, 0)).to.be.at.most(MAX_RECIPIENTS_PER_CALL);
    }
    // Greedy, in order: 30 | 30+20 | 50 | 1+49 | 1+25 | 25 ... a call is closed only when the next one would not fit.
    expect(calls.slice(0, 5)).to.deep.equal([[0], [1, 2], [3], [4, 5], [6, 7]]);
  });

  it('when messages of random sizes are packed, then every call stays within 50 recipients and calls are not needlessly split', () => {
    // A fixed linear congruential sequence keeps the test deterministic.
    let seed = 7;
    const next = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const sizes = Array.from({ length: 300 }, () => 1 + Math.floor(next() * 50));
    const calls = packCalls(sizes.map((recipients) => ({ recipients, bytes: 10 })));

    expectOrderedCover(calls, sizes.length);
    const totals = calls.map((call) => call.reduce((sum, index) => sum + sizes[index]!, 0));
    totals.forEach((total, callIndex) => {
      expect(total).to.be.at.most(50);
      const following = calls[callIndex + 1];
      if (following) {
        // The next call's first message did not fit in this one.
        expect(total + sizes[following[0]!]!).to.be.above(50);
      }
    });
  });

  it('when the byte cap is reached before the recipient cap, then the call is split by bytes', () => {
    const calls = packCalls(small(10, 400), 50, 1000);

    expect(calls).to.deep.equal([
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
      [8, 9],
    ]);
  });

  it('when the default byte cap (14 MB) would be exceeded by 5 MB messages, then they are split 2 per call', () => {
    const calls = packCalls(small(5, 5 * 1024 * 1024));

    expect(calls).to.deep.equal([[0, 1], [2, 3], [4]]);
  });

  it('when a single message is over the recipient limit, then it gets a call of its own', () => {
    const calls = packCalls([
      { recipients: 1, bytes: 10 },
      { recipients: 80, bytes: 10 },
      { recipients: 1, bytes: 10 },
    ]);

    expect(calls).to.deep.equal([[0], [1], [2]]);
  });

  it('when a single message is over the byte limit, then it gets a call of its own', () => {
    const calls = packCalls(
      [
        { recipients: 1, bytes: 10 },
        { recipients: 1, bytes: 5000 },
        { recipients: 1, bytes: 10 },
      ],
      50,
      1000,
    );

    expect(calls).to.deep.equal([[0], [1], [2]]);
  });

  it('when there are no messages, then there are no calls', () => {
    expect(packCalls([])).to.deep.equal([]);
  });
});

describe('countRecipients', () => {
  it('when the same address appears in to, cc and bcc with different case, then it counts once', () => {
    expect(
      countRecipients([
        { kind: 'to', email: 'Ada@Example.com' },
        { kind: 'cc', email: 'ada@example.com' },
        { kind: 'bcc', email: 'ADA@EXAMPLE.COM' },
        { kind: 'to', email: 'bob@example.com' },
      ]),
    ).to.equal(2);
  });

  it('when all addresses differ, then each counts', () => {
    expect(
      countRecipients([
        { kind: 'to', email: 'a@example.com' },
        { kind: 'cc', email: 'b@example.com' },
        { kind: 'bcc', email: 'c@example.com' },
      ]),
    ).to.equal(3);
  });
});

describe('messageBytes', () => {
  it('when a message has multi-byte characters, then its size is counted in UTF-8 bytes', () => {
    const ascii = toMailjetMessage(job({ from: { email: 'app@example.com' }, text: 'aaaa' }));
    const accented = toMailjetMessage(job({ from: { email: 'app@example.com' }, text: 'éééé' }));

    expect(messageBytes(accented) - messageBytes(ascii)).to.equal(4);
  });
});

describe('queuedMessageBytesAtMost', () => {
  // Short strings of the characters JSON makes longest (\u0001 is 6 bytes, " and \\ 2, é 2, an emoji 4).
  const text = fc.string({ unit: fc.constantFrom('\u0001', '"', '\\', '\u00e9', '\ud83d\ude00', 'a', '\n'), maxLength: 6 });
  const address = fc.record({ email: text, name: text }, { requiredKeys: ['email'] });
  const tracking = fc.constantFrom('account_default' as const, 'disabled' as const, 'enabled' as const);
  const content: fc.Arbitrary<MessageContent> = fc.record(
    {
      from: address,
      reply_to: address,
      subject: text,
      text,
      html: text,
      template_id: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      template_language: fc.boolean(),
      variables: fc.dictionary(text, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
      headers: fc.dictionary(fc.constantFrom('X', 'X-Tag'), text, { maxKeys: 2 }),
      attachments: fc.array(
        fc.record(
          { filename: text, content_type: fc.constant('a/b'), content: fc.constant(''), content_id: text },
          { requiredKeys: ['filename', 'content_type', 'content'] },
        ),
        {
          maxLength: 3,
        },
      ),
      track_opens: tracking,
      track_clicks: tracking,
      campaign: text,
      deduplicate_campaign: fc.boolean(),
      event_payload: text,
      url_tags: text,
      monitoring_category: text,
      mailjet_priority: fc.integer({ min: 0, max: 3 }),
      template_error_reporting: address,
      template_error_deliver: fc.boolean(),
      sandbox: fc.boolean(),
    },
    { requiredKeys: [] },
  );
  const recipients = fc.array(
    fc.record({ kind: fc.constantFrom('to' as const, 'cc' as const, 'bcc' as const), email: text, name: text }, { requiredKeys: ['kind', 'email'] }),
    { minLength: 1, maxLength: 4 },
  );

  it('when 3,000 generated messages are measured, then the bound is never below the exact size Mailjet receives', () => {
    fc.assert(
      fc.property(content, recipients, fc.option(text, { nil: undefined }), (message, to, customId) => {
        expect(queuedMessageBytesAtMost(message, to, customId)).to.be.at.least(queuedMessageBytes(message, to, customId));
      }),
      { numRuns: 3000 },
    );
  });

  it('when a message has next to nothing of its own, then the fields Mailjet adds are still within the bound', () => {
    for (const message of [{}, { template_id: 1 }, { text: '' }] as MessageContent[]) {
      const to: Recipient[] = [{ kind: 'to', email: '' }];
      expect(queuedMessageBytesAtMost(message, to), JSON.stringify(message)).to.be.at.least(queuedMessageBytes(message, to));
    }
  });

  it('when a message is small, then the bound is far below the 14 MiB cap (the exact size is not needed)', () => {
    const bound = queuedMessageBytesAtMost({ from: { email: 'app@example.com' }, subject: 'Hi', text: 'Hello' }, [{ kind: 'to', email: 'a@example.com' }]);
    expect(bound).to.be.below(2000);
  });
});
