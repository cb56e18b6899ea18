// The contract: openapi.yaml checked against the running service. Every documented (operation,
// status) is produced by a real request and its answer validated (status documented, Content-Type,
// body schema, headers); nothing undocumented may appear; and the route table the express app serves
// is exactly the spec's paths (derived over HTTP, and listed from src/http/routes/*.ts). The other
// direction too: the calls jetpost makes to an app's webhook are received by a local server and
// validated against the spec's `webhooks` entries (body, headers), and every response those entries
// document is given by the receiver and has the effect documented (delivered or retried).
//
// Each test declares the documented responses it produces (contractIt) and fails unless it produced
// each of them; the coverage test compares those declarations with the spec, so it holds whichever
// tests run, in whatever order. Each test makes the rows it needs (test/factories.ts) or its own
// app, so none depends on another having run. The validating is done by libraries (see
// test/support/openapi-contract.ts).
import { createServer, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';

import { expect } from 'chai';
import nock from 'nock';
import { Webhook } from 'standardwebhooks';

import { API_PROBLEM_CODES } from '../../src/domain/errors.js';
import { CALLBACK_AUTH_FAILURES } from '../../src/http/rate-limit.js';
import { appName as uniqueAppName, type MadeApp, makeApiKey, makeApp, makeJob, makeSuppression, message } from '../factories.js';
import { Contract, formatErrors, type Method, METHODS, type ReceivedCall, type SchemaHolder } from '../support/openapi-contract.js';
import { parseAnswer, rawRequest } from '../support/raw-request.js';
import {
  ADMIN_KEY,
  EVENTS_PASSWORD,
  EVENTS_USER,
  eventually,
  MAILJET_TEST_KEY,
  MAILJET_TEST_ORIGIN,
  MAILJET_TEST_SECRET,
  startTestService,
  type TestService,
} from '../support/service.js';

/** Documented responses no test request can produce, each with the reason. */
const NOT_REPRODUCIBLE: Record<string, string> = {
  'post /queue 500': 'only a defect reaches the catch-all handler; none is triggered on purpose',
  'delete /queue/{job_id} 500': 'only a defect reaches the catch-all handler; none is triggered on purpose',
  'get /status/{job_id} 500': 'only a defect reaches the catch-all handler; none is triggered on purpose',
  'get /status 500': 'only a defect reaches the catch-all handler; none is triggered on purpose',
  'post /events 500': 'only a defect reaches the catch-all handler; none is triggered on purpose',
  'get /metrics 500': 'prom-client would have to throw while collecting; nothing in a test makes it',
};

/** Routes the app serves outside the API contract, each with the reason. */
const OUTSIDE_THE_CONTRACT: Array<[RegExp, string]> = [
  [
    /^\/dashboard(\/|$)/,
    "the operator's dashboard: a browser UI of HTML pages and form posts behind a login, not an API (tested in test/http/dashboard.test.ts and test/e2e/dashboard-browser.test.ts)",
  ],
];

/** Response key (`method template status`, `webhook name method status`) → the tests that declare they produce it. */
const DECLARED = new Map<string, string[]>();

// ---- Mailjet's Send API, doubled by nock --------------------------------------------------------

interface SendCall {
  Messages: Array<{ CustomID: string; To: Array<{ Email: string }>; Cc?: Array<{ Email: string }>; Bcc?: Array<{ Email: string }> }>;
}

/** Above 2^53: a JS number cannot hold these; Mailjet writes them as raw JSON integers. */
let nextMessageId = 576460765503091475n;
const handedOut = new Map<string, string>();

/** A Send API success answer built as text, so that the 64-bit MessageIDs go out digit for digit. */
function sendAnswer(call: SendCall): string {
  const entries = call.Messages.map((message) => {
    const list = (recipients: Array<{ Email: string }> | undefined) =>
      (recipients ?? [])
        .map((recipient) => {
          nextMessageId += 1n;
          const id = nextMessageId.toString();
          const uuid = `00000000-0000-4000-8000-${id.slice(-12)}`;
          handedOut.set(id, uuid);
          return `{"Email":${JSON.stringify(recipient.Email)},"MessageUUID":"${uuid}","MessageID":${id},"MessageHref":"https://api.mailjet.com/v3/REST/message/${id}"}`;
        })
        .join(',');
    return `{"Status":"success","CustomID":${JSON.stringify(message.CustomID)},"To":[${list(message.To)}],"Cc":[${list(message.Cc)}],"Bcc":[${list(message.Bcc)}]}`;
  });
  return `{"Messages":[${entries.join(',')}]}`;
}

// ---- fixtures ----------------------------------------------------------------------------------

/** QUEUE_RATE_LIMIT and EVENTS_RATE_LIMIT of the rate-limited service. */
const RATE_LIMIT = 2;

const ONE_DAY_MS = 24 * 3600 * 1000;
const inDays = (days: number) => new Date(Date.now() + days * ONE_DAY_MS).toISOString();

/** Bodies POST /queue must refuse (400), which the spec's schema refuses too. */
const INVALID_IN_BOTH: Array<[string, unknown]> = [
  ['no to', { from: 'app@example.com', subject: 'x', text: 'y' }],
  ['a bad address', message({ to: 'not-an-address' })],
  ['a quoted local part', message({ to: '"ada lovelace"@example.org' })],
  ['an address literal', message({ to: 'ada@[192.0.2.1]' })],
  ['an empty to list', message({ to: [] })],
  ['an unknown field', message({ subjct: 'typo' })],
  ['no text, html or template_id', { from: 'app@example.com', to: 'ada@example.org', subject: 'x' }],
  ['no from without a template', { to: 'ada@example.org', text: 'y' }],
  ['a 256-character subject', message({ subject: 's'.repeat(256) })],
  ['a line break in the subject', message({ subject: 'a\r\nBcc: evil@example.com' })],
  ['a 201-character name', message({ to: { email: 'ada@example.org', name: 'n'.repeat(201) } })],
  ['an unknown address field', message({ to: { email: 'ada@example.org', nmae: 'Ada' } })],
  ['template_id 0', message({ template_id: 0 })],
  ['template_id 2^31', message({ template_id: 2 ** 31 })],
  ['priority 4', message({ priority: 4 })],
  ['priority 1.5', message({ priority: 1.5 })],
  ['an empty custom_id', message({ custom_id: '' })],
  ['a 256-character custom_id', message({ custom_id: 'c'.repeat(256) })],
  ['send_at without a time zone', message({ send_at: '2030-01-01T09:00:00' })],
  ['send_at without seconds', message({ send_at: '2030-01-01T09:00Z' })],
  ['attachment content that is not base64', message({ attachments: [{ filename: 'a.txt', content_type: 'text/plain', content: 'not base64!' }] })],
  ['an attachment content_type that is not a MIME type', message({ attachments: [{ filename: 'a.pdf', content_type: 'pdf', content: 'QQ==' }] })],
  ['an attachment without filename', message({ attachments: [{ content_type: 'text/plain', content: 'QQ==' }] })],
  ['a content_id with a space', message({ attachments: [{ filename: 'a.png', content_type: 'image/png', content: 'QQ==', content_id: 'a b' }] })],
  ['an attachment filename that is a path', message({ attachments: [{ filename: '../x.pdf', content_type: 'application/pdf', content: 'QQ==' }] })],
  [
    'an attachment filename disguised by a right-to-left override',
    message({ attachments: [{ filename: 'invoice\u202Efdp.exe', content_type: 'application/pdf', content: 'QQ==' }] }),
  ],
  ['an attachment filename that is a Windows path', message({ attachments: [{ filename: 'C:\\x.pdf', content_type: 'application/pdf', content: 'QQ==' }] })],
  ['51 attachments', message({ attachments: Array.from({ length: 51 }, (_, i) => ({ filename: `${i}.txt`, content_type: 'text/plain', content: 'QQ==' })) })],
  ['a header name with a space', message({ headers: { 'Bad Header': 'x' } })],
  ['a line break in a header value', message({ headers: { 'X-Thing': 'a\nb' } })],
  ['a 999-character header value', message({ headers: { 'X-Thing': 'v'.repeat(999) } })],
  ['metadata that is an array', message({ metadata: [1, 2] })],
  ['variables that are a string', message({ template_id: 1, variables: 'x' })],
  ['an idempotency_key with a space', message({ idempotency_key: 'has space' })],
  ['a 256-character idempotency_key', message({ idempotency_key: 'k'.repeat(256) })],
  ['an empty bulk request', { messages: [] }],
  ['501 messages', { messages: Array.from({ length: 501 }, () => message()) }],
  ['an idempotency_key inside a bulk message', { messages: [message({ idempotency_key: 'inner' })] }],
  ['an unknown field beside messages', { messages: [message()], priority: 1 }],
  ['a single message mixed with messages', { ...message(), messages: [message()] }],
  ['track_opens "yes"', message({ track_opens: 'yes' })],
  ['mailjet_priority 4', message({ mailjet_priority: 4 })],
  ['a 257-character url_tags', message({ url_tags: 'u'.repeat(257) })],
  ['url_tags with a space', message({ url_tags: 'a=b c' })],
  ['an empty campaign', message({ campaign: '' })],
  ['a line break in campaign', message({ campaign: 'a\nb' })],
  ['event_payload as an object', message({ event_payload: { order: 42 } })],
  ['sandbox "true"', message({ sandbox: 'true' })],
  ["html with a template (Mailjet's send-0004)", message({ text: undefined, html: '<p>Hi</p>', template_id: 4242 })],
  ['text with a template', message({ template_id: 4242 })],
  ['template_error_deliver without a template', message({ template_error_deliver: true })],
];

/** Bodies POST /queue refuses through rules the spec can only state in words (descriptions). */
const INVALID_BY_DESCRIBED_RULES: Array<[string, unknown]> = [
  [
    '51 recipients over to, cc and bcc',
    message({ to: Array.from({ length: 30 }, (_, i) => `to${i}@example.org`), cc: Array.from({ length: 21 }, (_, i) => `cc${i}@example.org`) }),
  ],
  ['the same address twice (any case)', message({ to: ['ada@example.org'], bcc: ['ADA@example.org'] })],
  ['a header jetpost sets itself', message({ headers: { 'reply-to': 'x@example.org' } })],
  ['send_at more than 30 days ahead', message({ send_at: inDays(31) })],
  ['send_at more than 24 hours ago', message({ send_at: inDays(-2) })],
  ['metadata above 8 KiB as JSON', message({ metadata: { blob: 'm'.repeat(8 * 1024) } })],
  ['variables above 64 KiB as JSON', message({ template_id: 1, variables: { blob: 'v'.repeat(64 * 1024) } })],
  ['metadata nested 33 levels', message({ metadata: JSON.parse(`${'{"a":'.repeat(33)}1${'}'.repeat(33)}`) })],
  ['html above 5 MiB as UTF-8 (in 2-byte characters)', message({ html: '\u00e9'.repeat(2_700_000) })],
  ['a NUL in the text', message({ text: 'a\u0000b' })],
  ['an unpaired surrogate in custom_id', message({ custom_id: 'order-\ud83d' })],
  ["deduplicate_campaign without campaign (Mailjet's send-0012)", message({ deduplicate_campaign: true })],
  [
    "template error options with the template language off (Mailjet's send-0016)",
    { to: 'ada@example.org', template_id: 4242, template_language: false, template_error_deliver: true },
  ],
  ['url_tags with a leading ?', message({ url_tags: '?utm_source=x' })],
  ['event_payload above 8 KiB as UTF-8 (in 2-byte characters)', message({ event_payload: '\u00e9'.repeat(4097) })],
  ['a metadata key named __proto__', JSON.parse(`${JSON.stringify(message()).slice(0, -1)},"metadata":{"__proto__":1}}`)],
  ['a header value of 998 characters that is 1,996 bytes of UTF-8', message({ headers: { 'X-Thing': '\u00e9'.repeat(998) } })],
  ['an attachment filename of only dots', message({ attachments: [{ filename: '..', content_type: 'text/plain', content: 'QQ==' }] })],
];

/** Bodies both the code and the spec accept. */
const VALID: Array<[string, unknown]> = [
  ['a bare address string', message()],
  [
    'addresses RFC 5321/6531 allow',
    message({
      from: 'o&reilly@example.com',
      to: ['user=tag@example.xn--p1ai', 'j\u00f6rg@b\u00fccher.de'],
      reply_to: '\u043f\u043e\u0447\u0442\u0430@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444',
    }),
  ],
  ['html and text of 5 MiB each', message({ text: 't'.repeat(5 * 1024 * 1024), html: 'h'.repeat(5 * 1024 * 1024) })],
  [
    'address objects, cc and bcc',
    message({
      to: [{ email: 'ada@example.org', name: 'Ada' }, 'grace@example.org'],
      cc: 'c@example.org',
      bcc: [{ email: 'b@example.org' }],
      reply_to: { email: 'r@example.org', name: 'R' },
    }),
  ],
  ['a template without from', { to: 'ada@example.org', template_id: 4242, template_language: true, variables: { first_name: 'Ada' } }],
  [
    'html only, with an inline attachment and headers',
    message({
      text: undefined,
      html: '<img src="cid:logo">',
      headers: { 'X-Campaign': 'spring', 'List-Unsubscribe': '<mailto:u@example.com>' },
      attachments: [{ filename: 'logo.png', content_type: 'image/png', content: 'iVBORw0KGgo=', content_id: 'logo' }],
    }),
  ],
  ['every optional field', message({ custom_id: 'order-1', metadata: { order: 1, tags: ['a'] }, priority: 3, send_at: inDays(1) })],
  ['send_at with an offset and fractions', message({ send_at: new Date(Date.now() + 3_600_000).toISOString().replace('Z', '+00:00') })],
  ['a bulk request', { idempotency_key: `bulk-${Date.now()}`, messages: [message(), message({ to: 'grace@example.org' })] }],
  [
    'every Mailjet Send API option',
    message({
      track_opens: 'enabled',
      track_clicks: 'account_default',
      campaign: 'spring-sale',
      deduplicate_campaign: true,
      event_payload: '{"order":42}',
      url_tags: 'utm_source=jetpost&utm_medium=email',
      monitoring_category: 'billing',
      mailjet_priority: 2,
      custom_id: 'order-42',
    }),
  ],
  [
    'a template with its error options',
    {
      to: 'ada@example.org',
      template_id: 4242,
      template_error_reporting: { email: 'templates@example.com', name: 'Templates' },
      template_error_deliver: false,
    },
  ],
  ['sandbox and real messages in one bulk request', { messages: [message({ sandbox: true }), message({ sandbox: false }), message()] }],
];

// ---- the test ----------------------------------------------------------------------------------

describe('openapi.yaml, checked against the running service', function () {
  this.timeout(60_000);

  let contract: Contract;
  let service: TestService;
  /** A second service whose database pool has been closed: the database is "away". */
  let down: TestService;
  /** A third service with rate limits of 2 requests per minute, to reach the 429s. */
  let limited: TestService;

  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  /** What the running test produced: the documented responses, and any answer that is not documented. */
  let seen = new Set<string>();
  let undocumented: string[] = [];

  /**
   * A test that produces the documented responses it declares, each as `method template status…`
   * (`webhook name method status…` for the webhook calls): every answer is checked against the spec
   * as it comes, the test fails unless it produced every response it declares, and the coverage test
   * reads the declarations. Undocumented answers fail the test that got them.
   */
  function contractIt(title: string, declared: readonly string[], test: (this: Mocha.Context) => Promise<void> | void): void {
    const covers = declared.flatMap((entry) => {
      const words = entry.split(' ');
      const operationWords = words[0] === 'webhook' ? 3 : 2;
      const operation = words.slice(0, operationWords).join(' ');
      return words.slice(operationWords).map((status) => `${operation} ${status}`);
    });
    for (const key of covers) {
      DECLARED.set(key, [...(DECLARED.get(key) ?? []), title]);
    }
    it(title, async function () {
      seen = new Set();
      undocumented = [];
      await test.call(this);
      expect(undocumented, 'answers that are not documented').to.deep.equal([]);
      expect(
        covers.filter((key) => !seen.has(key)),
        'documented responses this test declares but did not produce',
      ).to.deep.equal([]);
    });
  }

  /** Checks an answer against the spec, notes it as seen, returns the body. */
  async function checked(method: Method, template: string, res: Response): Promise<unknown> {
    const { key, body, text } = await contract.checkResponse(method, template, res);
    if (key === undefined) {
      undocumented.push(`${method} ${template} ${res.status}: ${text.slice(0, 300)}`);
      expect.fail(`${method} ${template} ${res.status} is not documented; the body was ${text.slice(0, 300)}`);
    }
    seen.add(key);
    return body;
  }

  /** Checks a call jetpost made to a webhook receiver, notes the receiver's answer as seen, returns the body. */
  function checkWebhook(call: ReceivedCall): unknown {
    const { key, body } = contract.checkWebhookCall('statusChange', 'post', call);
    if (key === undefined) {
      undocumented.push(`webhook statusChange post answered ${call.answered}`);
      expect.fail(`webhook statusChange post: the receiver's answer ${call.answered} is not documented`);
    }
    seen.add(key);
    return body;
  }

  /** One request through TestService.request, checked against the spec. */
  async function api(
    method: Method,
    template: string,
    options: { path?: string; body?: unknown; rawBody?: string; headers?: Record<string, string>; key?: string | null; on?: TestService } = {},
  ): Promise<{ res: Response; body: unknown }> {
    const target = options.on ?? service;
    const res = await target.request(method.toUpperCase(), options.path ?? template, options);
    const body = await checked(method, template, res);
    return { res, body };
  }

  /** POST /events with a raw text body (so 64-bit MessageIDs travel as raw JSON integers). */
  async function events(
    text: string,
    options: { auth?: string | null; headers?: Record<string, string>; on?: TestService } = {},
  ): Promise<{ res: Response; body: unknown }> {
    const target = options.on ?? service;
    const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
    const auth = options.auth === undefined ? basic(EVENTS_USER, EVENTS_PASSWORD) : options.auth;
    if (auth !== null) {
      headers['authorization'] = auth;
    }
    const res = await fetch(`${target.url}/events`, { method: 'POST', headers, body: text });
    const body = await checked('post', '/events', res);
    return { res, body };
  }

  /** Where a 400's problems are: a path parameter's are named as the spec names it, as fields are. */
  const errorPaths = (body: unknown) => (body as { errors: Array<{ path: string }> }).errors.map((error) => error.path);

  async function queue(body: unknown, headers: Record<string, string> = {}, key?: string): Promise<{ job_id: string; status: string }> {
    const { res, body: answer } = await api('post', '/queue', { body, headers, ...(key === undefined ? {} : { key }) });
    expect(res.status, JSON.stringify(answer)).to.equal(202);
    return answer as { job_id: string; status: string };
  }

  before(async () => {
    contract = await Contract.load();
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
    nock(MAILJET_TEST_ORIGIN)
      .persist()
      .post('/v3.1/send')
      .basicAuth({ user: MAILJET_TEST_KEY, pass: MAILJET_TEST_SECRET })
      .reply((_uri, requestBody) => {
        const call = (typeof requestBody === 'string' ? JSON.parse(requestBody) : requestBody) as SendCall;
        return [200, sendAnswer(call), { 'content-type': 'application/json' }] as const;
      });
    // Webhooks may reach the test's receiver on 127.0.0.1, and retry within milliseconds. The wrong
    // admin keys the 401s take are not limited there: the limit's 429s are reached on `limited`.
    service = await startTestService({
      env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1', WEBHOOK_RETRY_BASE_MS: '50', WEBHOOK_RETRY_MAX_MS: '200', ADMIN_KEY_FAILURE_LIMIT: '0' },
    });
    down = await startTestService({ env: { WORKER_CONCURRENCY: '0', ADMIN_KEY_FAILURE_LIMIT: '0' } });
    await down.jetpost.pool.end();
    limited = await startTestService({
      env: {
        WORKER_CONCURRENCY: '0',
        QUEUE_RATE_LIMIT: String(RATE_LIMIT),
        EVENTS_RATE_LIMIT: String(RATE_LIMIT),
        ADMIN_KEY_FAILURE_LIMIT: String(RATE_LIMIT),
      },
    });
  });

  after(async () => {
    await service?.stop();
    await down?.stop();
    await limited?.stop();
    nock.cleanAll();
    nock.enableNetConnect();
  });

  describe('the document', () => {
    contractIt('is OpenAPI 3.1.0 with the reusable components the API is described with', [], () => {
      expect(contract.spec.openapi).to.equal('3.1.0');
      expect(contract.documentErrors, 'what the OpenAPI 3.1 schema finds wrong with the document').to.deep.equal([]);
      expect(contract.spec.components.schemas).to.include.keys(
        'Message',
        'BulkRequest',
        'Address',
        'Attachment',
        'QueuedJob',
        'Job',
        'Recipient',
        'Event',
        'MailjetEvent',
        'Problem',
        'ValidationProblem',
        'App',
        'AppKey',
        'CreatedApp',
        'CreatedApiKey',
        'Suppression',
        'SuppressionReason',
        'Change',
        'ChangeStatus',
        'ChangesFeed',
        'FeedCursor',
        'Webhook',
        'WebhookDelivery',
        'DeliveryStatus',
      );
      expect(contract.spec.components.securitySchemes['adminKey']).to.deep.include({ type: 'http', scheme: 'bearer' });
      expect(contract.spec.components.securitySchemes['apiKey']).to.deep.include({ type: 'http', scheme: 'bearer' });
      expect(contract.spec.components.securitySchemes['mailjetBasic']).to.deep.include({ type: 'http', scheme: 'basic' });
    });

    contractIt('describes the statusChange webhook (OpenAPI 3.1 `webhooks`): a POST whose body is the Change the feed returns too', [], () => {
      expect(Object.keys(contract.spec.webhooks ?? {})).to.deep.equal(['statusChange']);
      expect(contract.webhookOperations()).to.deep.equal(['webhook statusChange post']);
      const operation = contract.webhookOperation('statusChange', 'post');
      expect(Object.keys(operation.requestBody?.content ?? {})).to.deep.equal(['application/json']);
      expect(contract.spec.webhooks?.['statusChange']?.post?.requestBody?.content['application/json']?.schema).to.deep.equal({
        $ref: '#/components/schemas/Change',
      });
      const feed = contract.spec.components.schemas['ChangesFeed'] as { properties: { changes: { items: unknown } } };
      expect(feed.properties.changes.items).to.deep.equal({ $ref: '#/components/schemas/Change' });
      expect((operation.parameters ?? []).map((p) => [p.in, p.name, p.required])).to.deep.equal([
        ['header', 'webhook-id', true],
        ['header', 'webhook-timestamp', true],
        ['header', 'webhook-signature', true],
        ['header', 'Jetpost-Delivery-Attempt', true],
        ['header', 'User-Agent', true],
      ]);
      expect(Object.keys(operation.responses).sort()).to.deep.equal(['2XX', 'default']);
      const lookUp = contract.spec.paths['/status']?.get?.responses['200'] as { content?: Record<string, SchemaHolder> };
      expect(lookUp.content?.['application/json']?.schema).to.deep.equal({
        oneOf: [{ $ref: '#/components/schemas/JobList' }, { $ref: '#/components/schemas/ChangesFeed' }],
      });
    });

    contractIt('has schemas that all compile (Ajv 2020, strict) and examples that match them', [], () => {
      for (const name of Object.keys(contract.spec.components.schemas)) {
        contract.componentSchema(name);
      }
      const checkExamples = (where: string, holder: SchemaHolder) => {
        if (holder.schema === undefined) {
          return;
        }
        const validate = contract.validator(holder.schema);
        const examples = [
          ...(holder.example === undefined ? [] : [['example', holder.example] as const]),
          ...Object.entries(holder.examples ?? {}).map(([name, example]) => [name, example.value] as const),
        ];
        for (const [name, value] of examples) {
          expect(validate(value), `${where} example ${name}: ${formatErrors(validate.errors)}`).to.equal(true);
        }
      };
      for (const operationKey of contract.operations()) {
        const [method, template] = operationKey.split(' ') as [Method, string];
        const operation = contract.operation(method, template);
        for (const parameter of operation.parameters ?? []) {
          checkExamples(`${operationKey} parameter ${parameter.name}`, parameter);
        }
        for (const [type, media] of Object.entries(operation.requestBody?.content ?? {})) {
          checkExamples(`${operationKey} request ${type}`, media);
        }
        for (const [status, response] of Object.entries(operation.responses)) {
          for (const [type, media] of Object.entries(response.content ?? {})) {
            checkExamples(`${operationKey} ${status} ${type}`, media);
          }
        }
      }
      for (const operationKey of contract.webhookOperations()) {
        const [, name, method] = operationKey.split(' ') as [string, string, Method];
        const operation = contract.webhookOperation(name, method);
        for (const parameter of operation.parameters ?? []) {
          checkExamples(`${operationKey} parameter ${parameter.name}`, parameter);
        }
        for (const [type, media] of Object.entries(operation.requestBody?.content ?? {})) {
          checkExamples(`${operationKey} request ${type}`, media);
        }
      }
      // Schema-level examples (`examples: [...]` inside a schema) match their schema too.
      for (const [name, schema] of Object.entries(contract.spec.components.schemas as Record<string, { examples?: unknown[] }>)) {
        const validate = contract.componentSchema(name);
        for (const example of Array.isArray(schema.examples) ? schema.examples : []) {
          expect(validate(example), `schema ${name} example ${JSON.stringify(example)}: ${formatErrors(validate.errors)}`).to.equal(true);
        }
      }
    });

    contractIt('gives every job and recipient status of the lifecycle', [], () => {
      const schemas = contract.spec.components.schemas as Record<string, { enum?: string[] }>;
      expect(schemas['JobStatus']?.enum).to.deep.equal([
        'queued',
        'scheduled',
        'processing',
        'deferred',
        'accepted',
        'sent',
        'opened',
        'clicked',
        'unsubscribed',
        'spam',
        'bounced',
        'blocked',
        'failed',
        'cancelled',
      ]);
      expect(schemas['RecipientStatus']?.enum).to.deep.equal([
        'pending',
        'accepted',
        'sent',
        'opened',
        'clicked',
        'unsubscribed',
        'spam',
        'bounced',
        'blocked',
        'failed',
        'cancelled',
        'suppressed',
      ]);
      expect((schemas['SuppressionReason'] as { enum?: string[] }).enum).to.deep.equal(['hard_bounce', 'spam', 'unsubscribed', 'manual']);
      expect(schemas['ChangeStatus']?.enum).to.deep.equal([
        'accepted',
        'sent',
        'opened',
        'clicked',
        'unsubscribed',
        'spam',
        'bounced',
        'blocked',
        'failed',
        'cancelled',
      ]);
      expect(schemas['DeliveryStatus']?.enum).to.deep.equal(['pending', 'delivered', 'failed']);
    });
  });

  describe('POST /queue', () => {
    contractIt('202: one message, with Location and no Idempotent-Replayed; the replay says Idempotent-Replayed: true', ['post /queue 202'], async () => {
      const key = `contract-${Date.now()}`;
      const body = message({ custom_id: 'contract-single' });
      expect(contract.requestSchema('post', '/queue')(body)).to.equal(true);
      const first = await api('post', '/queue', { body, headers: { 'idempotency-key': key } });
      expect(first.res.status).to.equal(202);
      const job = first.body as { job_id: string; status_url: string; custom_id: string };
      expect(job.custom_id).to.equal('contract-single');
      expect(first.res.headers.get('location')).to.equal(job.status_url).and.to.equal(`/status/${job.job_id}`);
      expect(first.res.headers.get('idempotent-replayed')).to.equal(null);

      const replay = await api('post', '/queue', { body, headers: { 'idempotency-key': key } });
      expect(replay.res.status).to.equal(202);
      expect(replay.res.headers.get('idempotent-replayed')).to.equal('true');
      expect((replay.body as { job_id: string }).job_id).to.equal(job.job_id);
    });

    contractIt('202: a bulk request answers {jobs} in order, without Location', ['post /queue 202'], async () => {
      const body = { messages: [message({ custom_id: 'bulk-0' }), message({ custom_id: 'bulk-1' }), message({ custom_id: 'bulk-2' })] };
      const { res, body: answer } = await api('post', '/queue', { body });
      expect(res.status).to.equal(202);
      expect(res.headers.get('location')).to.equal(null);
      expect((answer as { jobs: Array<{ custom_id: string }> }).jobs.map((j) => j.custom_id)).to.deep.equal(['bulk-0', 'bulk-1', 'bulk-2']);
    });

    for (const [name, body] of VALID) {
      contractIt(`202: ${name} (the spec accepts it too)`, ['post /queue 202'], async () => {
        const validate = contract.requestSchema('post', '/queue');
        expect(validate(body), formatErrors(validate.errors)).to.equal(true);
        await queue(body);
      });
    }

    for (const [name, body] of INVALID_IN_BOTH) {
      contractIt(`400: ${name} (the spec refuses it too)`, ['post /queue 400'], async () => {
        expect(contract.requestSchema('post', '/queue')(body), 'the spec should refuse this body').to.equal(false);
        const { res, body: problem } = await api('post', '/queue', { body });
        expect(res.status).to.equal(400);
        expect((problem as { type: string }).type).to.equal('https://jetpost.dev/problems/validation-failed');
      });
    }

    for (const [name, body] of INVALID_BY_DESCRIBED_RULES) {
      contractIt(`400: ${name} (a rule the spec states in its descriptions)`, ['post /queue 400'], async () => {
        const { res, body: problem } = await api('post', '/queue', { body });
        expect(res.status).to.equal(400);
        expect((problem as { errors: unknown[] }).errors).to.have.length.above(0);
      });
    }

    contractIt(
      '400: a bad Idempotency-Key header, a header differing from the field, a non-object body, malformed JSON, an empty body',
      ['post /queue 400'],
      async () => {
        expect((await api('post', '/queue', { body: message(), headers: { 'idempotency-key': 'has space' } })).res.status).to.equal(400);
        expect((await api('post', '/queue', { body: message({ idempotency_key: 'a' }), headers: { 'idempotency-key': 'b' } })).res.status).to.equal(400);
        expect((await api('post', '/queue', { body: [message()] })).res.status).to.equal(400);
        const malformed = await api('post', '/queue', { rawBody: '{"to":', headers: { 'content-type': 'application/json' } });
        expect(malformed.res.status).to.equal(400);
        expect((malformed.body as { type: string }).type).to.equal('https://jetpost.dev/problems/malformed-json');
        // Declared as JSON but empty: said to be empty, not asked for the Content-Type it has.
        const empty = await api('post', '/queue', { rawBody: '', headers: { 'content-type': 'application/json' } });
        expect(empty.res.status).to.equal(400);
        expect(empty.body).to.deep.include({
          type: 'https://jetpost.dev/problems/malformed-json',
          detail: 'the request body is empty: send one message, or {"messages": [...]}, as JSON',
        });
      },
    );

    contractIt(
      '400: a header read as one value sent twice (duplicate-header), an HTTP/1.1 request without Host (malformed-request)',
      ['post /queue 400', 'get /status/{job_id} 400'],
      async () => {
        const body = JSON.stringify(message());
        const twice = rawRequest(
          service.url,
          'POST',
          '/queue',
          {
            Authorization: `Bearer ${service.apiKey}`,
            'Content-Type': 'application/json',
            'Content-Length': String(Buffer.byteLength(body)),
            'Idempotency-Key': 'first',
            'idempotency-key': 'second',
          },
          body,
        );
        const duplicate = await checked('post', '/queue', parseAnswer(await twice.answer));
        expect(duplicate).to.include({ type: 'https://jetpost.dev/problems/duplicate-header', status: 400 });
        const noHost = await new Promise<string>((resolve) => {
          const socket = net.connect(Number(new URL(service.url).port), '127.0.0.1');
          const chunks: Buffer[] = [];
          socket.on('data', (chunk: Buffer) => chunks.push(chunk));
          socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
          socket.on('error', () => {});
          socket.write(`GET /status/1 HTTP/1.1\r\nAuthorization: Bearer ${service.apiKey}\r\nConnection: close\r\n\r\n`);
        });
        const malformed = await checked('get', '/status/{job_id}', parseAnswer(noHost));
        expect(malformed).to.include({ type: 'https://jetpost.dev/problems/malformed-request', status: 400 });
      },
    );

    contractIt('415: a body that is not sent as JSON; 401 before any body is read', ['post /queue 401 415'], async () => {
      const notJson = await api('post', '/queue', { rawBody: JSON.stringify(message()), headers: { 'content-type': 'text/plain' } });
      expect(notJson.res.status).to.equal(415);
      expect((notJson.body as { type: string }).type).to.equal('https://jetpost.dev/problems/unsupported-media-type');
      const anonymous = await api('post', '/queue', { rawBody: '{"to":', headers: { 'content-type': 'application/json' }, key: null });
      expect(anonymous.res.status).to.equal(401);
    });

    contractIt('401: no key, a malformed key, an unknown key', ['post /queue 401'], async () => {
      for (const key of [null, 'not-a-key', `jp_aaaaaaaaaaaa_${'A'.repeat(43)}`]) {
        const { res } = await api('post', '/queue', { body: message(), key });
        expect(res.status).to.equal(401);
      }
    });

    contractIt('409: the same Idempotency-Key with a different body', ['post /queue 409'], async () => {
      const key = `conflict-${Date.now()}`;
      await queue(message(), { 'idempotency-key': key });
      const { res, body } = await api('post', '/queue', { body: message({ subject: 'Another' }), headers: { 'idempotency-key': key } });
      expect(res.status).to.equal(409);
      expect((body as { type: string }).type).to.equal('https://jetpost.dev/problems/idempotency-key-reused');
    });

    contractIt('413: a body above QUEUE_BODY_LIMIT (20 MB)', ['post /queue 413'], async () => {
      const rawBody = JSON.stringify(message({ text: 'x'.repeat(21 * 1024 * 1024) }));
      const { res, body } = await api('post', '/queue', { rawBody, headers: { 'content-type': 'application/json' } });
      expect(res.status).to.equal(413);
      expect((body as { type: string }).type).to.equal('https://jetpost.dev/problems/payload-too-large');
      expect((body as { detail: string }).detail).to.equal('the request body is larger than this endpoint accepts: at most 20971520 bytes (20 MB)');
    });

    contractIt('413: a message above 14 MiB as sent to Mailjet (attachments as base64), named in a bulk request', ['post /queue 413'], async () => {
      const attachment = { filename: 'big.bin', content_type: 'application/octet-stream', content: 'QUJD'.repeat(3.5 * 1024 * 1024) };
      const { res, body } = await api('post', '/queue', { body: { messages: [message(), message({ attachments: [attachment] })] } });
      expect(res.status).to.equal(413);
      expect(body).to.deep.include({ type: 'https://jetpost.dev/problems/message-too-large', status: 413 });
      expect((body as { errors: Array<{ path: string }> }).errors.map((error) => error.path)).to.deep.equal(['messages.1']);
    });

    contractIt('415: a charset other than UTF-8, an unknown Content-Encoding', ['post /queue 415'], async () => {
      const rawBody = JSON.stringify(message());
      expect((await api('post', '/queue', { rawBody, headers: { 'content-type': 'application/json; charset=latin1' } })).res.status).to.equal(415);
      expect((await api('post', '/queue', { rawBody, headers: { 'content-type': 'application/json', 'content-encoding': 'compress' } })).res.status).to.equal(
        415,
      );
    });

    contractIt('503: the database is away', ['post /queue 503'], async () => {
      const { res } = await api('post', '/queue', { body: message(), on: down, key: down.apiKey });
      expect(res.status).to.equal(503);
    });
  });

  describe('rate limits (429)', () => {
    const scheduled = () => message({ send_at: inDays(1) });
    const policy = new RegExp(`^"${RATE_LIMIT}-in-1min"; q=${RATE_LIMIT}; w=60; pk=:[A-Za-z0-9+/]+=*:$`);

    contractIt('POST /queue: counted per app after authentication; 429 with Retry-After, RateLimit and RateLimit-Policy', ['post /queue 429'], async () => {
      for (let used = 1; used <= RATE_LIMIT; used += 1) {
        const { res } = await api('post', '/queue', { body: scheduled(), on: limited, key: limited.apiKey });
        expect(res.status).to.equal(202);
        expect(res.headers.get('ratelimit')).to.match(new RegExp(`^"${RATE_LIMIT}-in-1min"; r=${RATE_LIMIT - used}; t=\\d+$`));
        expect(res.headers.get('ratelimit-policy')).to.match(policy);
      }
      const { res, body } = await api('post', '/queue', { body: scheduled(), on: limited, key: limited.apiKey });
      expect(res.status).to.equal(429);
      expect(body).to.deep.include({ type: 'https://jetpost.dev/problems/rate-limited', title: 'Too Many Requests', status: 429 });
      expect(Number(res.headers.get('retry-after'))).to.be.within(1, 60);
      expect(res.headers.get('ratelimit')).to.match(new RegExp(`^"${RATE_LIMIT}-in-1min"; r=0; t=\\d+$`));
      expect(res.headers.get('ratelimit-policy')).to.match(policy);
      // Refused whatever the body: the limit comes before the body is read.
      expect(
        (await api('post', '/queue', { rawBody: 'not json', headers: { 'content-type': 'text/plain' }, on: limited, key: limited.apiKey })).res.status,
      ).to.equal(429);
      // Not counted before authentication: no key is still a 401.
      expect((await api('post', '/queue', { body: scheduled(), on: limited, key: null })).res.status).to.equal(401);
      // Per app: another app of the same service is not limited.
      const other = await makeApp(limited.db.pool);
      const { res: otherRes } = await api('post', '/queue', { body: scheduled(), on: limited, key: other.key });
      expect(otherRes.status).to.equal(202);
      expect(otherRes.headers.get('ratelimit')).to.match(new RegExp(`^"${RATE_LIMIT}-in-1min"; r=${RATE_LIMIT - 1}; t=\\d+$`));
      expect(otherRes.headers.get('ratelimit-policy'), 'another partition key').to.not.equal(res.headers.get('ratelimit-policy'));
    });

    contractIt(
      'POST /events: counted for the callback credentials after they are checked; wrong credentials spend nothing, and are limited apart',
      ['post /events 429'],
      async () => {
        for (const auth of [null, basic(EVENTS_USER, 'wrong')]) {
          const { res } = await events('[]', { on: limited, auth });
          expect(res.status).to.equal(401);
          expect(res.headers.get('ratelimit'), 'a refused request is not counted').to.equal(null);
        }
        for (let used = 1; used <= RATE_LIMIT; used += 1) {
          const { res } = await events('[]', { on: limited });
          expect(res.status).to.equal(200);
          expect(res.headers.get('ratelimit')).to.match(new RegExp(`^"${RATE_LIMIT}-in-1min"; r=${RATE_LIMIT - used}; t=\\d+$`));
          expect(res.headers.get('ratelimit-policy')).to.match(policy);
        }
        const { res, body } = await events('[]', { on: limited });
        expect(res.status).to.equal(429);
        expect(body).to.deep.include({ type: 'https://jetpost.dev/problems/rate-limited', status: 429 });
        expect(Number(res.headers.get('retry-after'))).to.be.within(1, 60);
        // Wrong credentials are still told so: the caller's budget is not theirs to see or spend.
        expect((await events('[]', { on: limited, auth: basic(EVENTS_USER, 'wrong') })).res.status).to.equal(401);
        // Past CALLBACK_AUTH_FAILURES.perSource failures a minute from one address, a guess is a 429.
        let failure: Response | undefined;
        for (let i = 0; i <= CALLBACK_AUTH_FAILURES.perSource; i += 1) {
          failure = (await events('[]', { on: down, auth: basic(EVENTS_USER, `guess-${i}`) })).res;
        }
        expect(failure!.status).to.equal(429);
        expect(Number(failure!.headers.get('retry-after'))).to.be.within(1, 60);
        expect(failure!.headers.get('ratelimit'), 'failures are not announced').to.equal(null);
      },
    );

    const ADMIN_OPERATIONS = [
      'get /admin/apps 429',
      'post /admin/apps 429',
      'post /admin/apps/{app}/keys 429',
      'delete /admin/apps/{app}/keys/{prefix} 429',
      'get /admin/apps/{app}/suppressions 429',
      'post /admin/apps/{app}/suppressions 429',
      'delete /admin/apps/{app}/suppressions/{email} 429',
      'put /admin/apps/{app}/webhook 429',
      'get /admin/apps/{app}/webhook 429',
      'delete /admin/apps/{app}/webhook 429',
      'post /admin/apps/{app}/webhook/secrets 429',
      'get /admin/apps/{app}/webhook/deliveries 429',
      'post /admin/apps/{app}/webhook/deliveries/{delivery}/redeliver 429',
      'get /admin/jobs 429',
      'post /admin/jobs/requeue 429',
    ];

    contractIt(
      'the admin API: wrong keys limited per source address; past the limit every request from it is a 429 with Retry-After, the right key too',
      ADMIN_OPERATIONS,
      async () => {
        for (let i = 0; i < RATE_LIMIT; i += 1) {
          expect((await api('get', '/admin/apps', { on: limited, key: `wrong-${i}` })).res.status).to.equal(401);
        }
        for (const entry of ADMIN_OPERATIONS) {
          const [method, template] = entry.split(' ') as [Method, string];
          const path = template.replace('{app}', 'app-a').replace('{prefix}', 'abcdefghijkl').replace('{email}', 'a@example.org').replace('{delivery}', '1');
          const { res, body } = await api(method, template, { path, on: limited, key: ADMIN_KEY, ...(method === 'get' ? {} : { body: {} }) });
          expect(res.status, entry).to.equal(429);
          expect(body, entry).to.deep.include({ type: 'https://jetpost.dev/problems/rate-limited', status: 429 });
          expect(Number(res.headers.get('retry-after')), entry).to.be.within(1, 60);
        }
      },
    );

    contractIt('the default limits (600 and 6000 per minute) are announced on every counted answer', [], async () => {
      const queued = await api('post', '/queue', { body: scheduled() });
      expect(queued.res.headers.get('ratelimit-policy')).to.match(/^"600-in-1min"; q=600; w=60; pk=:/);
      const received = await events('[]');
      expect(received.res.headers.get('ratelimit-policy')).to.match(/^"6000-in-1min"; q=6000; w=60; pk=:/);
      // Answers before the limiter carry no RateLimit header: an unauthenticated POST /queue, the other routes.
      expect((await api('post', '/queue', { body: scheduled(), key: null })).res.headers.get('ratelimit')).to.equal(null);
      expect((await api('get', '/healthz', { key: null })).res.headers.get('ratelimit')).to.equal(null);
    });
  });

  describe('GET /status/{job_id}, POST /events', () => {
    type TrackedRecipient = { message_id: string | null; message_uuid: string | null; status: string; kind: string };

    /** A job to Ada, Grace (To) and a Cc, queued and accepted by Mailjet (nock): each recipient has its MessageID. */
    async function trackedJob(): Promise<{ jobId: string; recipients: TrackedRecipient[] }> {
      const { job_id: jobId } = await queue(
        message({ to: [{ email: 'ada@example.org', name: 'Ada' }, 'grace@example.org'], cc: 'cc@example.org', custom_id: 'tracked' }),
      );
      const job = await eventually(
        async () => {
          const { body } = await api('get', '/status/{job_id}', { path: `/status/${jobId}` });
          const view = body as { status: string; recipients: TrackedRecipient[] };
          return view.status === 'accepted' ? view : undefined;
        },
        10_000,
        `job ${jobId} to be accepted`,
      );
      return { jobId, recipients: job.recipients };
    }

    /**
     * Mailjet's grouped callback for a tracked job: six events and one invalid element. One event is
     * about a message jetpost never sent, to an address of this job's own, so that it is new to
     * whichever test posts it first.
     */
    function groupedCallback({ jobId, recipients }: { jobId: string; recipients: TrackedRecipient[] }): string {
      const [ada, grace, cc] = recipients;
      return `[
        {"event":"sent","time":1700000000,"MessageID":${ada!.message_id},"Message_GUID":"${ada!.message_uuid}","email":"ada@example.org","mj_campaign_id":0,"mj_contact_id":4,"customcampaign":"","mj_message_id":"${ada!.message_id}","smtp_reply":"sent (250 2.0.0 OK)","CustomID":"jetpost-${jobId}","Payload":""},
        {"event":"open","time":1700000100,"MessageID":${ada!.message_id},"email":"ada@example.org","ip":"127.0.0.1","geo":"FR","agent":"Mozilla/5.0"},
        {"event":"click","time":1700000200,"MessageID":${ada!.message_id},"email":"ada@example.org","url":"https://example.com/a","ip":"127.0.0.1","geo":"FR","agent":"Mozilla/5.0"},
        {"event":"bounce","time":1700000300,"MessageID":${grace!.message_id},"email":"grace@example.org","blocked":false,"hard_bounce":false,"error_related_to":"domain","error":"greylisted","comment":"451 try later"},
        {"event":"sent","time":1700000400,"Message_GUID":"${cc!.message_uuid}","email":"cc@example.org"},
        {"event":"sent","time":1700000500,"MessageID":9223372036854775807,"email":"stranger-${jobId}@example.org"},
        {"event":"delivered","time":1700000600,"MessageID":1,"email":"x@example.org"}
      ]`;
    }

    contractIt('200: once sent, each recipient carries its 64-bit MessageID as an exact string', ['get /status/{job_id} 200'], async () => {
      const job = await trackedJob();
      expect(job.recipients.map((r) => r.kind)).to.deep.equal(['to', 'to', 'cc']);
      for (const recipient of job.recipients) {
        expect(recipient.status).to.equal('accepted');
        expect(handedOut.has(recipient.message_id!), `${recipient.message_id} was handed out by Mailjet`).to.equal(true);
        expect(BigInt(recipient.message_id!) > 2n ** 53n).to.equal(true);
        expect(recipient.message_uuid).to.equal(handedOut.get(recipient.message_id!));
      }
    });

    contractIt(
      '200 (POST /events): a grouped callback with raw 64-bit MessageIDs, an unknown message and an invalid element',
      ['get /status/{job_id} 200', 'post /events 200'],
      async () => {
        const text = groupedCallback(await trackedJob());
        const validate = contract.requestSchema('post', '/events');
        const parsed = JSON.parse(text) as unknown[];
        expect(validate(parsed.slice(0, 6)), formatErrors(validate.errors)).to.equal(true);
        expect(validate(parsed), 'the spec refuses the invalid element').to.equal(false);
        const { res, body: receipt } = await events(text);
        expect(res.status).to.equal(200);
        expect(receipt).to.deep.equal({ received: 7, stored: 6, duplicates: 0, unmatched: 1, rejected: 1 });
      },
    );

    contractIt(
      '200 (POST /events): one event object (Version 1), already received, is a duplicate',
      ['get /status/{job_id} 200', 'post /events 200'],
      async () => {
        const job = await trackedJob();
        expect((await events(groupedCallback(job))).res.status).to.equal(200);
        const ada = job.recipients[0]!;
        const { res, body: receipt } = await events(`{"event":"open","time":1700000100,"MessageID":${ada.message_id},"email":"ada@example.org"}`);
        expect(res.status).to.equal(200);
        expect(receipt).to.deep.equal({ received: 1, stored: 0, duplicates: 1, unmatched: 0, rejected: 0 });
        expect((await events('[]')).body).to.deep.equal({ received: 0, stored: 0, duplicates: 0, unmatched: 0, rejected: 0 });
      },
    );

    contractIt(
      '200: the job shows per-recipient statuses, the job status rule, and the event history',
      ['get /status/{job_id} 200', 'post /events 200'],
      async () => {
        const tracked = await trackedJob();
        expect((await events(groupedCallback(tracked))).res.status).to.equal(200);
        const { body } = await api('get', '/status/{job_id}', { path: `/status/${tracked.jobId}` });
        const job = body as {
          status: string;
          custom_id: string;
          recipients: Array<{ status: string; message_id: string }>;
          events: Array<{ type: string; message_id: string | null; details: Record<string, unknown> }>;
        };
        expect(job.custom_id).to.equal('tracked');
        expect(job.recipients.map((r) => r.status)).to.deep.equal(['clicked', 'accepted', 'sent']);
        expect(job.status).to.equal('clicked');
        expect(job.events.map((e) => e.type)).to.deep.equal(['sent', 'opened', 'clicked', 'bounced', 'sent']);
        expect(job.events[0]!.message_id).to.equal(job.recipients[0]!.message_id);
        expect(job.events[2]!.details).to.deep.equal({ url: 'https://example.com/a', ip: '127.0.0.1', geo: 'FR', agent: 'Mozilla/5.0' });
        expect(job.events[3]!.details).to.include({ hard_bounce: false, error: 'greylisted' });
      },
    );

    contractIt('400: job ids that are not ids', ['get /status/{job_id} 400'], async () => {
      for (const bad of ['abc', '0', '01', '-1', '12345678901234567890', '9223372036854775808', '9999999999999999999']) {
        const { res, body } = await api('get', '/status/{job_id}', { path: `/status/${bad}` });
        expect(res.status, bad).to.equal(400);
        expect(errorPaths(body), bad).to.deep.equal(['job_id']);
      }
    });

    contractIt('401: no key', ['get /status/{job_id} 401'], async () => {
      const jobId = await makeJob(service.db.pool, { appId: service.appId });
      expect((await api('get', '/status/{job_id}', { path: `/status/${jobId}`, key: null })).res.status).to.equal(401);
    });

    contractIt("404: a job that does not exist, and another app's job", ['get /status/{job_id} 404'], async () => {
      for (const missing of ['987654321', '9223372036854775807']) {
        expect((await api('get', '/status/{job_id}', { path: `/status/${missing}` })).res.status, missing).to.equal(404);
      }
      const jobId = await makeJob(service.db.pool, { appId: service.appId });
      const other = await makeApp(service.db.pool);
      expect((await api('get', '/status/{job_id}', { path: `/status/${jobId}`, key: other.key })).res.status).to.equal(404);
    });

    contractIt('503: the database is away', ['get /status/{job_id} 503'], async () => {
      expect((await api('get', '/status/{job_id}', { path: '/status/1', on: down, key: down.apiKey })).res.status).to.equal(503);
    });

    contractIt('400 (POST /events): not JSON at all (empty, cut short, unbalanced, trailing text)', ['post /events 400'], async () => {
      for (const text of ['{"event":', '', '[{"event":"sent"},', '{"event":"sent"}]', '[1, 2] 3', '{not json}']) {
        const { res, body } = await events(text);
        expect(res.status, text).to.equal(400);
        expect(body, text).to.deep.include({ type: 'https://jetpost.dev/problems/malformed-json', status: 400 });
        expect((body as { detail: string }).detail, text).to.match(/^the body is not valid JSON: /);
      }
    });

    contractIt('200 (POST /events): JSON with no usable event at all is kept aside, not refused', ['post /events 200'], async () => {
      for (const text of [
        '[1, 2]',
        '"sent"',
        '[{"event":"sent"}]',
        '{"event":"sent","time":1,"email":"a@example.org"}',
        '{"event":"sent","time":1,"MessageID":0,"email":"a@example.org"}',
      ]) {
        const { res, body } = await events(text);
        expect(res.status, text).to.equal(200);
        expect((body as { stored: number; rejected: number }).stored, text).to.equal(0);
        expect((body as { stored: number; rejected: number }).rejected, text).to.be.above(0);
      }
    });

    contractIt('401 (POST /events): no credentials, wrong credentials', ['post /events 401'], async () => {
      for (const auth of [null, basic(EVENTS_USER, 'wrong'), basic('someone', EVENTS_PASSWORD), 'Bearer x']) {
        expect((await events('[]', { auth })).res.status).to.equal(401);
      }
    });

    contractIt('413 (POST /events): a body above EVENTS_BODY_LIMIT (64 MB)', ['post /events 413'], async () => {
      // Refused on its Content-Length, before a byte is parsed: what the body holds does not matter.
      expect((await events(' '.repeat(64 * 1024 * 1024 + 1))).res.status).to.equal(413);
    });

    // A charset, known or not, is no reason: the body is read as UTF-8 (http/text-body.ts).
    contractIt('415 (POST /events): an unknown content encoding', ['post /events 415'], async () => {
      expect((await events('[]', { headers: { 'content-encoding': 'nonesuch' } })).res.status).to.equal(415);
      expect((await events('[]', { headers: { 'content-type': 'application/json; charset=nonesuch' } })).res.status).to.equal(200);
    });

    contractIt('503 (POST /events): the database is away', ['post /events 503'], async () => {
      expect((await events('{"event":"open","time":1,"MessageID":576460765503091475,"email":"a@example.org"}', { on: down })).res.status).to.equal(503);
    });
  });

  describe('DELETE /queue/{job_id}', () => {
    contractIt('200: a scheduled job is cancelled; 409: cancelling it again', ['delete /queue/{job_id} 200 409'], async () => {
      const { job_id: jobId, status } = await queue(message({ send_at: inDays(1) }));
      expect(status).to.equal('scheduled');
      const { res, body } = await api('delete', '/queue/{job_id}', { path: `/queue/${jobId}` });
      expect(res.status).to.equal(200);
      const job = body as { status: string; recipients: Array<{ status: string }> };
      expect(job.status).to.equal('cancelled');
      expect(job.recipients.map((r) => r.status)).to.deep.equal(['cancelled']);
      const again = await api('delete', '/queue/{job_id}', { path: `/queue/${jobId}` });
      expect(again.res.status).to.equal(409);
      expect((again.body as { type: string }).type).to.equal('https://jetpost.dev/problems/job-not-cancellable');
    });

    contractIt('400, 401, 404, 503', ['delete /queue/{job_id} 400 401 404 503'], async () => {
      for (const bad of ['abc', '9223372036854775808']) {
        const { res, body } = await api('delete', '/queue/{job_id}', { path: `/queue/${bad}` });
        expect(res.status, bad).to.equal(400);
        expect(errorPaths(body), bad).to.deep.equal(['job_id']);
      }
      expect((await api('delete', '/queue/{job_id}', { path: '/queue/1', key: null })).res.status).to.equal(401);
      expect((await api('delete', '/queue/{job_id}', { path: '/queue/987654321' })).res.status).to.equal(404);
      expect((await api('delete', '/queue/{job_id}', { path: '/queue/1', on: down, key: down.apiKey })).res.status).to.equal(503);
    });
  });

  describe('GET /status (look-up)', () => {
    contractIt('200: by ids (unknown ids are absent), by one or several custom_id', ['get /status 200'], async () => {
      const a = await queue(message({ custom_id: 'lookup-a' }));
      const b = await queue(message({ custom_id: 'lookup-b' }));
      const byIds = await api('get', '/status', { path: `/status?ids=${b.job_id}, ${a.job_id},,987654321` });
      expect(byIds.res.status).to.equal(200);
      expect((byIds.body as { jobs: Array<{ job_id: string }> }).jobs.map((j) => j.job_id)).to.deep.equal([a.job_id, b.job_id]);
      const one = await api('get', '/status', { path: '/status?custom_id=lookup-a' });
      expect((one.body as { jobs: unknown[] }).jobs).to.have.length(1);
      const two = await api('get', '/status', { path: '/status?custom_id=lookup-a&custom_id=lookup-b&custom_id=nothing' });
      expect((two.body as { jobs: unknown[] }).jobs).to.have.length(2);
      const none = await api('get', '/status', { path: '/status?custom_id=nothing' });
      expect(none.body).to.deep.equal({ jobs: [], truncated: false, next_after_job_id: null });
    });

    contractIt(
      '200: a custom_id look-up that more than 100 jobs match says it is truncated, and after_job_id reads the rest page by page',
      ['get /status 200'],
      async () => {
        const app = await makeApp(service.db.pool);
        const sendAt = new Date(Date.parse(inDays(1)));
        const shared: string[] = [];
        for (let i = 0; i < 250; i += 1) {
          shared.push(await makeJob(service.db.pool, { appId: app.id, customId: 'shared', sendAt }));
        }
        const alone = await makeJob(service.db.pool, { appId: app.id, customId: 'alone', sendAt });
        type List = { jobs: Array<{ job_id: string; custom_id: string }>; truncated: boolean; next_after_job_id: string | null };
        const both = (await api('get', '/status', { path: '/status?custom_id=shared&custom_id=alone', key: app.key })).body as List;
        expect(both.jobs).to.have.length(100);
        expect(both.jobs.map((job) => job.custom_id)).to.not.include('alone');
        expect(both).to.deep.include({ truncated: true, next_after_job_id: shared[99] });
        // Page by page, as an app reads them all: every job once, in id order, the last page complete.
        const read: string[] = [];
        let page: List = both;
        for (;;) {
          read.push(...page.jobs.map((job) => job.job_id));
          if (page.next_after_job_id === null) {
            break;
          }
          const path = `/status?custom_id=shared&custom_id=alone&after_job_id=${page.next_after_job_id}`;
          page = (await api('get', '/status', { path, key: app.key })).body as List;
        }
        expect(page.truncated).to.equal(false);
        expect(read).to.deep.equal([...shared, alone]);
        const one = (await api('get', '/status', { path: '/status?custom_id=alone', key: app.key })).body as List;
        expect(one).to.deep.include({ truncated: false, next_after_job_id: null });
        expect(one.jobs.map((job) => job.job_id)).to.deep.equal([alone]);
      },
    );

    contractIt('400: neither, both, an unknown parameter, a bad id, 101 ids, ids given twice', ['get /status 400'], async () => {
      const ids = Array.from({ length: 101 }, (_, i) => i + 1).join(',');
      for (const query of [
        '',
        '?ids=1&custom_id=a',
        '?ids=1&after=5',
        '?ids=1,x',
        '?ids=1,9223372036854775808',
        `?ids=${ids}`,
        '?ids=1&ids=2',
        '?ids=,',
        '?custom_id=',
        '?ids=1&after_job_id=1',
        '?after=0&after_job_id=1',
        '?after_job_id=1',
        '?custom_id=a&after_job_id=0',
        '?custom_id=a&after_job_id=x',
        '?custom_id=a&after_job_id=1&after_job_id=2',
      ]) {
        const { res } = await api('get', '/status', { path: `/status${query}` });
        expect(res.status, query).to.equal(400);
      }
    });

    contractIt(
      '200 to a conditional read (If-None-Match, If-None-Match: *) too, and no ETag to make one with: the spec offers no 304',
      ['get /status/{job_id} 200', 'get /status 200', 'get /admin/apps 200', 'get /healthz 200', 'get /openapi.yaml 200'],
      async () => {
        const { job_id: jobId } = await queue(message());
        for (const [template, path, key] of [
          ['/status/{job_id}', `/status/${jobId}`, service.apiKey],
          ['/status', `/status?ids=${jobId}`, service.apiKey],
          ['/status', '/status?after=0', service.apiKey],
          ['/admin/apps', '/admin/apps', ADMIN_KEY],
          ['/healthz', '/healthz', null],
          ['/openapi.yaml', '/openapi.yaml', null],
        ] as const) {
          const first = await api('get', template, { path, key });
          expect(first.res.headers.get('etag'), path).to.equal(null);
          // Written by hand: fetch asks for a fresh answer (Cache-Control: no-cache) when it sends If-None-Match; curl does not.
          for (const condition of ['W/"1b-0"', '*']) {
            const headers: Record<string, string> = { 'If-None-Match': condition, ...(key === null ? {} : { Authorization: `Bearer ${key}` }) };
            const raw = await rawRequest(service.url, 'GET', path, headers).answer;
            expect(raw.slice(0, raw.indexOf('\r\n')), `${path} ${condition}`).to.equal('HTTP/1.1 200 OK');
            await checked('get', template, parseAnswer(raw));
          }
        }
      },
    );

    contractIt('401, 503', ['get /status 401 503'], async () => {
      expect((await api('get', '/status', { path: '/status?ids=1', key: null })).res.status).to.equal(401);
      expect((await api('get', '/status', { path: '/status?ids=1', on: down, key: down.apiKey })).res.status).to.equal(503);
    });
  });

  describe('admin', () => {
    /** A job of the service's app that failed for good: the newest failed job. */
    const failedJob = () => makeJob(service.db.pool, { appId: service.appId, to: ['dead@example.com'], status: 'failed', lastError: 'mj-0013: invalid' });

    contractIt('GET /admin/jobs 200: the dead-letter list with reasons, paged', ['get /admin/jobs 200'], async () => {
      const failedJobId = await failedJob();
      const { res, body } = await api('get', '/admin/jobs', { key: ADMIN_KEY });
      expect(res.status).to.equal(200);
      const list = body as { jobs: Array<{ job_id: string; last_error: string }>; next_before: string | null };
      expect(list.jobs.map((job) => job.job_id)).to.include(failedJobId);
      expect(list.jobs.find((job) => job.job_id === failedJobId)?.last_error).to.equal('mj-0013: invalid');
      const page = await api('get', '/admin/jobs', { path: '/admin/jobs?status=failed&limit=1', key: ADMIN_KEY });
      expect((page.body as { next_before: string | null }).next_before).to.equal(failedJobId);
    });

    contractIt('GET /admin/jobs 400, 401, 404 (an unknown app), 503', ['get /admin/jobs 400 401 404 503'], async () => {
      for (const query of ['?status=lost', '?limit=0', '?color=red']) {
        expect((await api('get', '/admin/jobs', { path: `/admin/jobs${query}`, key: ADMIN_KEY })).res.status, query).to.equal(400);
      }
      expect((await api('get', '/admin/jobs', { path: '/admin/jobs?app=no-such-app', key: ADMIN_KEY })).res.status).to.equal(404);
      expect((await api('get', '/admin/jobs', { key: null })).res.status).to.equal(401);
      expect((await api('get', '/admin/jobs', { key: service.apiKey })).res.status).to.equal(401);
      expect((await api('get', '/admin/jobs', { key: ADMIN_KEY, on: down })).res.status).to.equal(503);
    });

    contractIt(
      'POST /admin/jobs/requeue 200: the failed job is queued again; 400, 401, 404 (an unknown app), 503',
      ['post /admin/jobs/requeue 200 400 401 404 503'],
      async () => {
        const failedJobId = await failedJob();
        const { res, body } = await api('post', '/admin/jobs/requeue', { body: { job_ids: [failedJobId] }, key: ADMIN_KEY });
        expect(res.status).to.equal(200);
        expect(body).to.deep.equal({ requeued: [failedJobId] });
        const again = await api('post', '/admin/jobs/requeue', { body: { job_ids: [failedJobId] }, key: ADMIN_KEY });
        expect(again.body).to.deep.equal({ requeued: [] });
        for (const bad of [{}, { job_ids: ['1'], all_failed: true }, { job_ids: [] }, { all_failed: false }]) {
          expect((await api('post', '/admin/jobs/requeue', { body: bad, key: ADMIN_KEY })).res.status, JSON.stringify(bad)).to.equal(400);
        }
        expect((await api('post', '/admin/jobs/requeue', { body: { all_failed: true }, key: null })).res.status).to.equal(401);
        expect((await api('post', '/admin/jobs/requeue', { body: { all_failed: true, app: 'no-such-app' }, key: ADMIN_KEY })).res.status).to.equal(404);
        expect((await api('post', '/admin/jobs/requeue', { body: { all_failed: true }, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
      },
    );

    contractIt('POST /admin/jobs/requeue 413 (above 1 MB), 415 (a charset other than UTF-8)', ['post /admin/jobs/requeue 413 415'], async () => {
      const rawBody = JSON.stringify({ job_ids: Array.from({ length: 70_000 }, (_, i) => String(i + 1_000_000_000_000)) });
      expect(rawBody.length).to.be.above(1024 * 1024);
      expect((await api('post', '/admin/jobs/requeue', { rawBody, headers: { 'content-type': 'application/json' }, key: ADMIN_KEY })).res.status).to.equal(413);
      const latin1 = { 'content-type': 'application/json; charset=latin1' };
      expect((await api('post', '/admin/jobs/requeue', { rawBody: '{"all_failed":true}', headers: latin1, key: ADMIN_KEY })).res.status).to.equal(415);
    });

    describe('apps and API keys', () => {
      /** An app made for the test, and its keys in creation order. */
      const appWithKeys = async (): Promise<{ app: MadeApp; appName: string; keys: Array<{ key: string; prefix: string }> }> => {
        const app = await makeApp(service.db.pool);
        return { app, appName: app.name, keys: [{ key: app.key, prefix: app.prefix }] };
      };
      const keyWorks = async (key: string) => {
        const { res } = await api('get', '/status', { path: '/status?ids=1', key });
        return res.status === 200;
      };
      const listed = async (name: string) => {
        const { res, body } = await api('get', '/admin/apps', { key: ADMIN_KEY });
        expect(res.status).to.equal(200);
        return (body as { apps: Array<{ name: string; keys: Array<{ prefix: string; created_at: string; revoked_at: string | null }> }> }).apps.find(
          (app) => app.name === name,
        );
      };

      contractIt(
        'POST /admin/apps 201: the app and its first key, shown once; GET /admin/apps 200 lists it; 409: the name again',
        ['post /admin/apps 201 409', 'get /status 200', 'get /admin/apps 200'],
        async () => {
          const appName = uniqueAppName('contract');
          const keys: Array<{ key: string; prefix: string }> = [];
          const { res, body } = await api('post', '/admin/apps', { body: { name: appName }, key: ADMIN_KEY });
          expect(res.status).to.equal(201);
          const created = body as { app: { name: string; keys: unknown[] }; api_key: string; key_prefix: string };
          expect(created.app.name).to.equal(appName);
          expect(created.api_key.startsWith(`jp_${created.key_prefix}_`)).to.equal(true);
          keys.push({ key: created.api_key, prefix: created.key_prefix });
          expect(await keyWorks(created.api_key)).to.equal(true);
          const app = await listed(appName);
          expect(app?.keys.map((k) => ({ prefix: k.prefix, revoked_at: k.revoked_at }))).to.deep.equal([{ prefix: created.key_prefix, revoked_at: null }]);
          expect(JSON.stringify(app)).to.not.include(created.api_key);

          const again = await api('post', '/admin/apps', { body: { name: appName }, key: ADMIN_KEY });
          expect(again.res.status).to.equal(409);
          expect((again.body as { type: string }).type).to.equal('https://jetpost.dev/problems/app-exists');
        },
      );

      contractIt(
        'POST /admin/apps 400, 401, 413, 415, 503; GET /admin/apps 400, 401, 503',
        ['post /admin/apps 400 401 413 415 503', 'get /admin/apps 400 401 503'],
        async () => {
          const bad: unknown[] = [
            {},
            { name: '' },
            { name: '-starts-with-a-dash' },
            { name: 'has space' },
            { name: 'n'.repeat(101) },
            { name: 42 },
            { name: 'ok', extra: 1 },
            ['ok'],
          ];
          for (const body of bad) {
            const { res, body: problem } = await api('post', '/admin/apps', { body, key: ADMIN_KEY });
            expect(res.status, JSON.stringify(body)).to.equal(400);
            expect((problem as { type: string }).type).to.equal('https://jetpost.dev/problems/validation-failed');
          }
          expect((await api('post', '/admin/apps', { key: ADMIN_KEY })).res.status, 'no body').to.equal(400);
          // A query parameter neither route takes: refused, not ignored.
          expect((await api('post', '/admin/apps', { path: '/admin/apps?name=ok', body: { name: 'by-query' }, key: ADMIN_KEY })).res.status).to.equal(400);
          expect((await api('get', '/admin/apps', { path: '/admin/apps?name=ok', key: ADMIN_KEY })).res.status).to.equal(400);
          expect(
            (await api('post', '/admin/apps', { rawBody: '{"name":', headers: { 'content-type': 'application/json' }, key: ADMIN_KEY })).res.status,
          ).to.equal(400);
          for (const key of [null, service.apiKey, 'x'.repeat(40)]) {
            expect((await api('post', '/admin/apps', { body: { name: 'nobody-sees-this' }, key })).res.status).to.equal(401);
            expect((await api('get', '/admin/apps', { key })).res.status).to.equal(401);
          }
          expect(await listed('nobody-sees-this')).to.equal(undefined);
          const big = JSON.stringify({ name: 'n'.repeat(17 * 1024) });
          expect((await api('post', '/admin/apps', { rawBody: big, headers: { 'content-type': 'application/json' }, key: ADMIN_KEY })).res.status).to.equal(
            413,
          );
          expect(
            (await api('post', '/admin/apps', { rawBody: '{"name":"latin"}', headers: { 'content-type': 'application/json; charset=latin1' }, key: ADMIN_KEY }))
              .res.status,
          ).to.equal(415);
          expect((await api('post', '/admin/apps', { body: { name: 'down-app' }, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
          expect((await api('get', '/admin/apps', { key: ADMIN_KEY, on: down })).res.status).to.equal(503);
        },
      );

      contractIt(
        'POST /admin/apps/{app}/keys 201: a second key, both work; with revoke_others the others are revoked at once',
        ['post /admin/apps/{app}/keys 201'],
        async () => {
          const { appName, keys } = await appWithKeys();
          const path = `/admin/apps/${appName}/keys`;
          const second = await api('post', '/admin/apps/{app}/keys', { path, key: ADMIN_KEY });
          expect(second.res.status).to.equal(201);
          const rotated = second.body as { api_key: string; key_prefix: string; revoked: string[] };
          expect(rotated.revoked).to.deep.equal([]);
          keys.push({ key: rotated.api_key, prefix: rotated.key_prefix });
          expect(await keyWorks(keys[0]!.key)).to.equal(true);
          expect(await keyWorks(keys[1]!.key)).to.equal(true);

          const third = await api('post', '/admin/apps/{app}/keys', { path, body: { revoke_others: true }, key: ADMIN_KEY });
          expect(third.res.status).to.equal(201);
          const revoking = third.body as { api_key: string; key_prefix: string; revoked: string[] };
          expect([...revoking.revoked].sort()).to.deep.equal([keys[0]!.prefix, keys[1]!.prefix].sort());
          keys.push({ key: revoking.api_key, prefix: revoking.key_prefix });
          expect(await keyWorks(keys[0]!.key)).to.equal(false);
          expect(await keyWorks(keys[1]!.key)).to.equal(false);
          expect(await keyWorks(keys[2]!.key)).to.equal(true);
          const app = await listed(appName);
          expect(app?.keys.map((k) => [k.prefix, k.revoked_at === null])).to.deep.equal([
            [keys[0]!.prefix, false],
            [keys[1]!.prefix, false],
            [keys[2]!.prefix, true],
          ]);

          const explicit = await api('post', '/admin/apps/{app}/keys', { path, body: { revoke_others: false }, key: ADMIN_KEY });
          expect(explicit.res.status).to.equal(201);
          keys.push({ key: (explicit.body as { api_key: string }).api_key, prefix: (explicit.body as { key_prefix: string }).key_prefix });
          expect(await keyWorks(keys[2]!.key)).to.equal(true);
        },
      );

      contractIt('POST /admin/apps/{app}/keys 400, 401, 404, 413, 415, 503', ['post /admin/apps/{app}/keys 400 401 404 413 415 503'], async () => {
        const { appName, keys } = await appWithKeys();
        const path = `/admin/apps/${appName}/keys`;
        for (const body of [{ revoke_others: 'yes' }, { revoke_others: null }, { revoke: true }, [true]]) {
          expect((await api('post', '/admin/apps/{app}/keys', { path, body, key: ADMIN_KEY })).res.status, JSON.stringify(body)).to.equal(400);
        }
        for (const name of ['-dash', '.dot', 'n'.repeat(101), 'a%20b']) {
          expect((await api('post', '/admin/apps/{app}/keys', { path: `/admin/apps/${name}/keys`, key: ADMIN_KEY })).res.status, name).to.equal(400);
        }
        expect(
          (await api('post', '/admin/apps/{app}/keys', { path, rawBody: '{', headers: { 'content-type': 'application/json' }, key: ADMIN_KEY })).res.status,
        ).to.equal(400);
        expect((await api('post', '/admin/apps/{app}/keys', { path, key: null })).res.status).to.equal(401);
        expect((await api('post', '/admin/apps/{app}/keys', { path, key: keys[0]!.key })).res.status).to.equal(401);
        const missing = await api('post', '/admin/apps/{app}/keys', { path: '/admin/apps/no-such-app/keys', key: ADMIN_KEY });
        expect(missing.res.status).to.equal(404);
        expect((missing.body as { type: string }).type).to.equal('https://jetpost.dev/problems/not-found');
        const big = JSON.stringify({ revoke_others: false, padding: 'p'.repeat(17 * 1024) });
        expect(
          (await api('post', '/admin/apps/{app}/keys', { path, rawBody: big, headers: { 'content-type': 'application/json' }, key: ADMIN_KEY })).res.status,
        ).to.equal(413);
        expect(
          (
            await api('post', '/admin/apps/{app}/keys', {
              path,
              rawBody: '{}',
              headers: { 'content-type': 'application/json; charset=latin1' },
              key: ADMIN_KEY,
            })
          ).res.status,
        ).to.equal(415);
        expect((await api('post', '/admin/apps/{app}/keys', { path, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
      });

      contractIt(
        'DELETE /admin/apps/{app}/keys/{prefix} 204: the key stops working at once; 404 once revoked, for an unknown key or app',
        ['delete /admin/apps/{app}/keys/{prefix} 204 404'],
        async () => {
          // Four keys: the first two revoked by the third (revoke_others), the fourth added after it.
          const { app, appName, keys } = await appWithKeys();
          keys.push(await makeApiKey(service.db.pool, app));
          keys.push(await makeApiKey(service.db.pool, app, { revokeOthers: true }));
          keys.push(await makeApiKey(service.db.pool, app));
          const target = keys[3]!;
          const template = '/admin/apps/{app}/keys/{prefix}';
          expect(await keyWorks(target.key)).to.equal(true);
          const { res } = await api('delete', template, { path: `/admin/apps/${appName}/keys/${target.prefix}`, key: ADMIN_KEY });
          expect(res.status).to.equal(204);
          expect(await keyWorks(target.key)).to.equal(false);
          expect(await keyWorks(keys[2]!.key)).to.equal(true);
          for (const path of [
            `/admin/apps/${appName}/keys/${target.prefix}`,
            `/admin/apps/${appName}/keys/${keys[0]!.prefix}`,
            `/admin/apps/${appName}/keys/000000000000`,
            `/admin/apps/no-such-app/keys/${keys[2]!.prefix}`,
          ]) {
            const missing = await api('delete', template, { path, key: ADMIN_KEY });
            expect(missing.res.status, path).to.equal(404);
          }
          // Another app's key is not this app's.
          const other = await makeApp(service.db.pool);
          expect((await api('delete', template, { path: `/admin/apps/${appName}/keys/${other.prefix}`, key: ADMIN_KEY })).res.status).to.equal(404);
          expect(await keyWorks(other.key)).to.equal(true);
        },
      );

      contractIt('DELETE /admin/apps/{app}/keys/{prefix} 400, 401, 503', ['delete /admin/apps/{app}/keys/{prefix} 400 401 503'], async () => {
        const {
          appName,
          keys: [live],
        } = await appWithKeys();
        const template = '/admin/apps/{app}/keys/{prefix}';
        for (const [path, parameter] of [
          [`/admin/apps/${appName}/keys/ABCDEFGHIJKL`, 'prefix'],
          [`/admin/apps/${appName}/keys/short`, 'prefix'],
          [`/admin/apps/${appName}/keys/0000000000000`, 'prefix'],
          [`/admin/apps/-dash/keys/${live!.prefix}`, 'app'],
        ] as const) {
          const { res, body } = await api('delete', template, { path, key: ADMIN_KEY });
          expect(res.status, path).to.equal(400);
          expect(errorPaths(body), path).to.deep.equal([parameter]);
        }
        const path = `/admin/apps/${appName}/keys/${live!.prefix}`;
        expect((await api('delete', template, { path, key: null })).res.status).to.equal(401);
        expect((await api('delete', template, { path, key: live!.key })).res.status).to.equal(401);
        expect((await api('delete', template, { path, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
        expect(await keyWorks(live!.key)).to.equal(true);
      });
    });

    describe('suppressions', () => {
      /** An app of the test's own, whose suppression list starts empty. */
      let app: MadeApp;
      let appName: string;
      const list = (query = '', name = appName) =>
        api('get', '/admin/apps/{app}/suppressions', { path: `/admin/apps/${name}/suppressions${query}`, key: ADMIN_KEY });
      const add = (body: unknown, name = appName) =>
        api('post', '/admin/apps/{app}/suppressions', { path: `/admin/apps/${name}/suppressions`, body, key: ADMIN_KEY });
      const remove = (email: string, name = appName) =>
        api('delete', '/admin/apps/{app}/suppressions/{email}', { path: `/admin/apps/${name}/suppressions/${encodeURIComponent(email)}`, key: ADMIN_KEY });
      type Suppression = { email: string; reason: string; detail: string | null; created_at: string };
      type JobView = {
        status: string;
        last_error: string | null;
        recipients: Array<{ email: string; status: string; message_id: string | null }>;
        events: unknown[];
      };
      const settled = (jobId: string, statuses: string[]) =>
        eventually(
          async () => {
            const { body } = await api('get', '/status/{job_id}', { path: `/status/${jobId}`, key: app.key });
            return statuses.includes((body as JobView).status) ? (body as JobView) : undefined;
          },
          10_000,
          `job ${jobId} to be ${statuses.join(' or ')}`,
        );

      const suppress = (email: string, reason?: 'hard_bounce' | 'spam') =>
        makeSuppression(service.db.pool, app.id, email, reason === undefined ? {} : { reason });

      beforeEach(async () => {
        app = await makeApp(service.db.pool);
        appName = app.name;
      });

      contractIt(
        'POST 201: added by hand, lower-cased, reason manual; again: the reason and created_at stay, a new note replaces detail',
        ['post /admin/apps/{app}/suppressions 201'],
        async () => {
          const { res, body } = await add({ email: 'Sup.Manual@Example.org', note: 'asked by phone' });
          expect(res.status).to.equal(201);
          const first = body as Suppression;
          expect(first).to.deep.include({ email: 'sup.manual@example.org', reason: 'manual', detail: 'asked by phone' });
          const again = await add({ email: 'sup.manual@example.org' });
          expect(again.res.status).to.equal(201);
          expect(again.body).to.deep.equal(first);
          const renoted = await add({ email: 'SUP.MANUAL@example.org', note: 'asked again' });
          expect(renoted.body).to.deep.equal({ ...first, detail: 'asked again' });
          const noNote = await add({ email: 'sup.nonote@example.org' });
          expect((noNote.body as Suppression).detail).to.equal(null);
        },
      );

      contractIt(
        "Mailjet's hard bounces, spam complaints and unsubscribes add the address for the app (GET 200 lists them)",
        ['get /status/{job_id} 200', 'post /events 200', 'get /admin/apps/{app}/suppressions 200'],
        async () => {
          const to = ['sup.bounce@example.org', 'sup.spam@example.org', 'sup.unsub@example.org', 'sup.soft@example.org'];
          const { job_id: jobId } = await queue(message({ to }), {}, app.key);
          const job = await settled(jobId, ['accepted']);
          const id = (email: string) => job.recipients.find((r) => r.email === email)!.message_id!;
          const { res } = await events(`[
          {"event":"bounce","time":1700001000,"MessageID":${id(to[0]!)},"email":"${to[0]}","hard_bounce":true,"blocked":false,"error_related_to":"recipient","error":"user unknown"},
          {"event":"spam","time":1700001001,"MessageID":${id(to[1]!)},"email":"${to[1]}","source":"JMRPP"},
          {"event":"unsub","time":1700001002,"MessageID":${id(to[2]!)},"email":"${to[2]}","mj_list_id":1},
          {"event":"bounce","time":1700001003,"MessageID":${id(to[3]!)},"email":"${to[3]}","hard_bounce":false,"error":"greylisted"}
        ]`);
          expect(res.status).to.equal(200);
          const { res: listed, body } = await list('?limit=1000');
          expect(listed.status).to.equal(200);
          const entries = (body as { suppressions: Suppression[]; next_after: string | null }).suppressions;
          const of = (email: string) => entries.find((e) => e.email === email);
          expect(of(to[0]!)).to.deep.include({ reason: 'hard_bounce', detail: 'recipient: user unknown' });
          expect(of(to[1]!)).to.deep.include({ reason: 'spam', detail: 'JMRPP' });
          expect(of(to[2]!)).to.deep.include({ reason: 'unsubscribed', detail: 'unsubscribed through Mailjet' });
          expect(of(to[3]!), 'a soft bounce suppresses nothing').to.equal(undefined);
          // A manual add keeps Mailjet's reason.
          expect((await add({ email: to[0]! })).body).to.deep.include({ reason: 'hard_bounce', detail: 'recipient: user unknown' });
          // Per app: another app's list is its own.
          const other = await makeApp(service.db.pool);
          expect((await list('', other.name)).body).to.deep.equal({ suppressions: [], next_after: null });
        },
      );

      contractIt('GET 200 pages by address with after/next_after', ['get /admin/apps/{app}/suppressions 200'], async () => {
        for (const email of ['sup.manual@example.org', 'sup.nonote@example.org', 'sup.bounce@example.org', 'sup.spam@example.org', 'sup.unsub@example.org']) {
          await suppress(email);
        }
        const all = (await list('?limit=1000')).body as { suppressions: Suppression[]; next_after: string | null };
        expect(all.suppressions.length).to.be.at.least(5).and.below(1000);
        expect(all.next_after).to.equal(null);
        const emails = all.suppressions.map((e) => e.email);
        expect(emails).to.deep.equal([...emails].sort());
        const paged: string[] = [];
        let after: string | null = '';
        for (let pages = 0; after !== null; pages += 1) {
          expect(pages).to.be.below(10);
          const { body } = await list(`?limit=2${after === '' ? '' : `&after=${encodeURIComponent(after.toUpperCase())}`}`);
          const page = body as { suppressions: Suppression[]; next_after: string | null };
          paged.push(...page.suppressions.map((e) => e.email));
          expect(page.next_after).to.equal(page.suppressions.length === 2 ? page.suppressions[1]!.email : null);
          after = page.next_after;
        }
        expect(paged).to.deep.equal(emails);
      });

      contractIt('a suppressed recipient is left out of the send: `suppressed`; with no To left the job fails with "suppressed: …"', [], async () => {
        await suppress('sup.manual@example.org');
        await suppress('sup.bounce@example.org', 'hard_bounce');
        await suppress('sup.spam@example.org', 'spam');
        const partly = await queue(message({ to: 'sup.kept@example.org', bcc: 'SUP.MANUAL@example.org' }), {}, app.key);
        const sent = await settled(partly.job_id, ['accepted']);
        expect(sent.recipients.map((r) => [r.email, r.status])).to.deep.equal([
          ['sup.kept@example.org', 'accepted'],
          ['SUP.MANUAL@example.org', 'suppressed'],
        ]);
        expect(sent.recipients[1]!.message_id).to.equal(null);

        const blocked = await queue(message({ to: ['sup.bounce@example.org', 'sup.spam@example.org'], cc: 'sup.cc@example.org' }), {}, app.key);
        const failed = await settled(blocked.job_id, ['failed']);
        expect(failed.last_error)
          .to.match(/^suppressed: /)
          .and.to.include('sup.bounce@example.org (hard_bounce)')
          .and.to.include('sup.spam@example.org (spam)');
        expect(failed.recipients.map((r) => r.status)).to.deep.equal(['suppressed', 'suppressed', 'failed']);
        expect(failed.recipients.every((r) => r.message_id === null)).to.equal(true);
      });

      contractIt('GET 400, 401, 404, 503', ['get /admin/apps/{app}/suppressions 400 401 404 503'], async () => {
        for (const query of ['?limit=0', '?limit=1001', '?limit=x', '?after=a&after=b', `?after=${'a'.repeat(255)}`, '?before=a']) {
          expect((await list(query)).res.status, query).to.equal(400);
        }
        expect((await list('', '-dash')).res.status).to.equal(400);
        const path = `/admin/apps/${appName}/suppressions`;
        expect((await api('get', '/admin/apps/{app}/suppressions', { path, key: null })).res.status).to.equal(401);
        expect((await api('get', '/admin/apps/{app}/suppressions', { path, key: service.apiKey })).res.status).to.equal(401);
        expect((await list('', 'no-such-app')).res.status).to.equal(404);
        expect((await api('get', '/admin/apps/{app}/suppressions', { path, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
      });

      contractIt('POST 400, 401, 404, 413, 415, 503', ['post /admin/apps/{app}/suppressions 400 401 404 413 415 503'], async () => {
        for (const body of [
          {},
          { email: 'not-an-address' },
          { email: 'a@b' },
          { email: 'sup.x@example.org', note: 'a\nb' },
          { email: 'sup.x@example.org', note: 'n'.repeat(501) },
          { email: 'sup.x@example.org', reason: 'spam' },
        ]) {
          expect((await add(body)).res.status, JSON.stringify(body)).to.equal(400);
        }
        const path = `/admin/apps/${appName}/suppressions`;
        const template = '/admin/apps/{app}/suppressions';
        expect((await api('post', template, { path, key: ADMIN_KEY })).res.status, 'no body').to.equal(400);
        expect((await add({ email: 'sup.x@example.org' }, '-dash')).res.status).to.equal(400);
        expect((await api('post', template, { path, body: { email: 'sup.x@example.org' }, key: null })).res.status).to.equal(401);
        expect((await add({ email: 'sup.x@example.org' }, 'no-such-app')).res.status).to.equal(404);
        const big = JSON.stringify({ email: 'sup.x@example.org', note: 'n'.repeat(17 * 1024) });
        expect((await api('post', template, { path, rawBody: big, headers: { 'content-type': 'application/json' }, key: ADMIN_KEY })).res.status).to.equal(413);
        expect(
          (
            await api('post', template, {
              path,
              rawBody: '{"email":"sup.x@example.org"}',
              headers: { 'content-type': 'application/json; charset=latin1' },
              key: ADMIN_KEY,
            })
          ).res.status,
        ).to.equal(415);
        expect((await api('post', template, { path, body: { email: 'sup.x@example.org' }, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
        expect(((await list('?limit=1000')).body as { suppressions: Suppression[] }).suppressions.map((e) => e.email)).to.not.include('sup.x@example.org');
      });

      contractIt(
        'DELETE 204 (any case): the address is sent to again; 404 when not suppressed or no such app',
        ['delete /admin/apps/{app}/suppressions/{email} 204 404'],
        async () => {
          await suppress('sup.manual@example.org');
          await suppress('sup.nonote@example.org');
          const { res } = await remove('Sup.Manual@EXAMPLE.org');
          expect(res.status).to.equal(204);
          expect(((await list('?limit=1000')).body as { suppressions: Suppression[] }).suppressions.map((e) => e.email)).to.not.include(
            'sup.manual@example.org',
          );
          const { job_id: jobId } = await queue(message({ to: 'sup.manual@example.org' }), {}, app.key);
          expect((await settled(jobId, ['accepted', 'failed'])).recipients.map((r) => r.status)).to.deep.equal(['accepted']);
          const again = await remove('sup.manual@example.org');
          expect(again.res.status).to.equal(404);
          expect((again.body as { type: string }).type).to.equal('https://jetpost.dev/problems/not-found');
          expect((await remove('sup.never@example.org')).res.status).to.equal(404);
          expect((await remove('sup.nonote@example.org', 'no-such-app')).res.status).to.equal(404);
        },
      );

      contractIt('DELETE 400, 401, 503', ['delete /admin/apps/{app}/suppressions/{email} 400 401 503'], async () => {
        await suppress('sup.nonote@example.org');
        for (const email of ['not-an-address', 'a@b', `${'x'.repeat(250)}@example.org`]) {
          const { res, body } = await remove(email);
          expect(res.status, email).to.equal(400);
          expect(errorPaths(body), email).to.deep.equal(['email']);
        }
        expect((await remove('sup.nonote@example.org', '-dash')).res.status).to.equal(400);
        const template = '/admin/apps/{app}/suppressions/{email}';
        const path = `/admin/apps/${appName}/suppressions/sup.nonote@example.org`;
        expect((await api('delete', template, { path, key: null })).res.status).to.equal(401);
        expect((await api('delete', template, { path, key: service.apiKey })).res.status).to.equal(401);
        expect((await api('delete', template, { path, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
        expect(((await list('?limit=1000')).body as { suppressions: Suppression[] }).suppressions.map((e) => e.email)).to.include('sup.nonote@example.org');
      });
    });
  });

  describe('status changes: the feed (GET /status?after), the statusChange webhook and the admin webhook routes', () => {
    type Change = {
      id: string;
      type: string;
      created_at: string;
      job_id: string;
      custom_id: string | null;
      recipient: string | null;
      old_status: string;
      new_status: string;
      details: Record<string, unknown> | null;
      metadata: Record<string, unknown> | null;
    };
    type Feed = { changes: Change[]; next_cursor: string };
    type Delivery = {
      delivery_id: string;
      event_id: string;
      job_id: string;
      type: string;
      status: string;
      attempts: number;
      next_attempt_at: string | null;
      last_status_code: number | null;
      last_error: string | null;
    };
    type JobView = { status: string; last_error: string | null; recipients: Array<{ email: string; message_id: string | null }> };

    const HOOK_PATH = '/jetpost-events';
    /** What the receiver answers: every change is refused twice (500, then a redirect, which is not followed), then taken. */
    const answerFor = (attempt: number, deliveryId: string) => (attempt === 1 ? 500 : attempt === 2 ? 302 : BigInt(deliveryId) % 2n === 0n ? 204 : 200);

    // Each test gets its own receiver and app (beforeEach); a test sets the webhook (hook()) and makes
    // the changes (makeChanges()) it needs itself.
    let receiver: Server;
    let hookUrl: string;
    let calls: ReceivedCall[] = [];
    let appName: string;
    let appKey: string;
    let secret: string;
    /** The app's changes, read from the feed (set by makeChanges). */
    let changes: Change[] = [];

    const webhookPath = (name = appName) => `/admin/apps/${name}/webhook`;
    const putWebhook = (body: unknown, name = appName) => api('put', '/admin/apps/{app}/webhook', { path: webhookPath(name), body, key: ADMIN_KEY });
    const getWebhook = (name = appName) => api('get', '/admin/apps/{app}/webhook', { path: webhookPath(name), key: ADMIN_KEY });
    const deliveries = (query = '', name = appName) =>
      api('get', '/admin/apps/{app}/webhook/deliveries', { path: `${webhookPath(name)}/deliveries${query}`, key: ADMIN_KEY });
    const redeliver = (id: string, name = appName) =>
      api('post', '/admin/apps/{app}/webhook/deliveries/{delivery}/redeliver', { path: `${webhookPath(name)}/deliveries/${id}/redeliver`, key: ADMIN_KEY });
    const feed = async (query: string, key = appKey) => {
      const { res, body } = await api('get', '/status', { path: `/status${query}`, key });
      expect(res.status, `${query}: ${JSON.stringify(body)}`).to.equal(200);
      const validate = contract.componentSchema('ChangesFeed');
      expect(validate(body), `${query} answers a ChangesFeed: ${formatErrors(validate.errors)}`).to.equal(true);
      return body as Feed;
    };
    /** The whole feed from the beginning, once it holds `count` changes (the feed may lag behind running transactions). */
    const feedOf = (count: number, key = appKey) =>
      eventually(
        async () => {
          const page = await feed('?after=0&limit=1000', key);
          return page.changes.length >= count ? page : undefined;
        },
        15_000,
        `${count} changes in the feed`,
      );
    const job = (jobId: string) => api('get', '/status/{job_id}', { path: `/status/${jobId}`, key: appKey }).then(({ body }) => body as JobView);
    const settled = (jobId: string, status: string) =>
      eventually(async () => ((await job(jobId)).status === status ? job(jobId) : undefined), 10_000, `job ${jobId} to be ${status}`);
    /** The change in a call, when the Standard Webhooks library accepts its signature with `key`. */
    const verified = (call: ReceivedCall, key = secret) => new Webhook(key).verify(call.body, call.headers as Record<string, string>);

    beforeEach(async () => {
      const received: ReceivedCall[] = [];
      calls = received;
      changes = [];
      receiver = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          const answered = answerFor(Number(req.headers['jetpost-delivery-attempt']), String(req.headers['webhook-id']));
          received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), answered });
          res.writeHead(answered, answered === 302 ? { location: `${HOOK_PATH}/moved` } : {}).end(answered === 200 ? 'thanks' : '');
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}${HOOK_PATH}`;
      ({ name: appName, key: appKey } = await makeApp(service.db.pool, { name: uniqueAppName('hooked') }));
    });

    afterEach(async () => {
      await new Promise((resolve) => receiver?.close(resolve));
    });

    /** The app's webhook, set to the test's receiver, with a new secret. */
    async function hook(): Promise<void> {
      const { res, body } = await putWebhook({ url: hookUrl, rotate_secret: true });
      expect(res.status).to.equal(200);
      secret = (body as { secret: string }).secret;
    }

    /**
     * Ten changes of the test's app, one of each ChangeStatus: a five-recipient job accepted and moved
     * by one event of each kind, a job cancelled before it was sent, and one that fails (its only
     * address bounced hard: suppressed). Sets `changes` from the feed.
     */
    async function makeChanges(): Promise<{ jobA: string; jobB: string; jobC: string; failed: JobView }> {
      // A five-recipient job, accepted; one event of each kind moves each recipient.
      const to = ['ada@example.org', 'grace@example.org'];
      const { res: queued, body: queuedJob } = await api('post', '/queue', {
        body: message({ to, cc: 'alan@example.org', bcc: ['edsger@example.org', 'barbara@example.org'], custom_id: 'changes-a', metadata: { order: 7 } }),
        key: appKey,
      });
      expect(queued.status).to.equal(202);
      const jobA = (queuedJob as { job_id: string }).job_id;
      const accepted = await settled(jobA, 'accepted');
      const id = (email: string) => accepted.recipients.find((r) => r.email === email)!.message_id!;
      const receipt = await events(`[
        {"event":"sent","time":1893488401,"MessageID":${id('ada@example.org')},"email":"ada@example.org","smtp_reply":"250 OK"},
        {"event":"open","time":1893488402,"MessageID":${id('ada@example.org')},"email":"ada@example.org","ip":"192.0.2.1","geo":"FR","agent":"Mozilla/5.0"},
        {"event":"click","time":1893488403,"MessageID":${id('ada@example.org')},"email":"ada@example.org","url":"https://example.com/a","ip":"192.0.2.1","geo":"FR","agent":"Mozilla/5.0"},
        {"event":"bounce","time":1893488404,"MessageID":${id('grace@example.org')},"email":"grace@example.org","hard_bounce":true,"blocked":false,"error_related_to":"recipient","error":"user unknown"},
        {"event":"spam","time":1893488405,"MessageID":${id('alan@example.org')},"email":"alan@example.org","source":"JMRPP"},
        {"event":"unsub","time":1893488406,"MessageID":${id('edsger@example.org')},"email":"edsger@example.org","mj_list_id":1},
        {"event":"blocked","time":1893488407,"MessageID":${id('barbara@example.org')},"email":"barbara@example.org","error_related_to":"spam","error":"sender blocked"}
      ]`);
      expect(receipt.body).to.deep.include({ received: 7, stored: 7, rejected: 0 });
      // A job cancelled before it was sent, and one that fails (its only address bounced hard: suppressed).
      const { body: scheduledJob } = await api('post', '/queue', { body: message({ send_at: inDays(1), custom_id: 'changes-b' }), key: appKey });
      const jobB = (scheduledJob as { job_id: string }).job_id;
      expect((await api('delete', '/queue/{job_id}', { path: `/queue/${jobB}`, key: appKey })).res.status).to.equal(200);
      const { body: doomedJob } = await api('post', '/queue', { body: message({ to: 'grace@example.org' }), key: appKey });
      const jobC = (doomedJob as { job_id: string }).job_id;
      const failed = await settled(jobC, 'failed');

      changes = (await feedOf(10)).changes;
      return { jobA, jobB, jobC, failed };
    }

    /** Every change delivered (on its third attempt) and recorded so. */
    const allDelivered = () =>
      eventually(
        async () => {
          const rows = ((await deliveries('?limit=1000')).body as { deliveries: Delivery[] }).deliveries;
          return rows.length === changes.length && rows.every((d) => d.status === 'delivered') ? rows : undefined;
        },
        15_000,
        'every delivery settled',
      );

    /** Every change type, as the spec's ChangeStatus lists them. */
    const allTypes = () => (contract.spec.components.schemas['ChangeStatus'] as { enum: string[] }).enum;
    type HookBody = { url: string; secret: string; event_types: string[]; previous_secrets: Array<{ secret: string; expires_at: string }> };
    /** The body of an enabled webhook at hookUrl with no previous secret. */
    const enabledWebhook = (signingSecret: string, eventTypes = allTypes()) => ({
      url: hookUrl,
      secret: signingSecret,
      event_types: eventTypes,
      disabled_at: null,
      disabled_reason: null,
      previous_secrets: [],
      paused: null,
    });

    contractIt(
      'PUT /admin/apps/{app}/webhook 200: the URL and a new secret; the secret and the event types stay when left out, rotate_secret makes a new secret at once; GET 200 shows it',
      ['put /admin/apps/{app}/webhook 200', 'get /admin/apps/{app}/webhook 200'],
      async () => {
        const validate = contract.requestSchema('put', '/admin/apps/{app}/webhook');
        for (const body of [{ url: hookUrl }, { url: hookUrl, rotate_secret: true }, { url: hookUrl, event_types: ['bounced', 'spam'] }]) {
          expect(validate(body), formatErrors(validate.errors)).to.equal(true);
        }
        const first = await putWebhook({ url: `${hookUrl}/old` });
        expect(first.res.status).to.equal(200);
        const made = first.body as HookBody;
        expect(made).to.deep.include({
          url: `${hookUrl}/old`,
          event_types: allTypes(),
          disabled_at: null,
          disabled_reason: null,
          previous_secrets: [],
          paused: null,
        });
        const moved = await putWebhook({ url: hookUrl, rotate_secret: false });
        expect(moved.body).to.deep.equal(enabledWebhook(made.secret));
        // Chosen types are stored once each, in the spec's order, and kept when a later PUT leaves them out.
        const chosen = await putWebhook({ url: hookUrl, event_types: ['bounced', 'spam', 'bounced'] });
        expect(chosen.body).to.deep.equal(enabledWebhook(made.secret, ['spam', 'bounced']));
        expect((await putWebhook({ url: hookUrl })).body).to.deep.include({ event_types: ['spam', 'bounced'] });
        // rotate_secret replaces the secret with no overlap: no previous secret signs.
        const rotated = await putWebhook({ url: hookUrl, rotate_secret: true, event_types: allTypes() });
        expect(rotated.res.status).to.equal(200);
        secret = (rotated.body as HookBody).secret;
        expect(secret).to.not.equal(made.secret);
        const shown = await getWebhook();
        expect(shown.res.status).to.equal(200);
        expect(shown.body).to.deep.equal(enabledWebhook(secret));
        // Disabled as a receiver's 410 Gone disables it: GET shows when and why, and a PUT enables it again.
        await service.db.pool.query("update apps set webhook_disabled_at = now(), webhook_disabled_reason = 'the receiver answered 410 Gone' where name = $1", [
          appName,
        ]);
        const disabled = (await getWebhook()).body as HookBody & { disabled_at: string | null; disabled_reason: string | null };
        expect(Date.parse(disabled.disabled_at ?? '')).to.be.within(Date.now() - 60_000, Date.now() + 60_000);
        expect(disabled.disabled_reason).to.equal('the receiver answered 410 Gone');
        expect((await putWebhook({ url: hookUrl })).body).to.deep.include({ secret, disabled_at: null, disabled_reason: null });
      },
    );

    contractIt(
      'PUT 400: URLs jetpost refuses (not http(s), credentials, port 0, no such host, internal and not allowed), bodies the spec refuses too; 401, 404, 413, 415, 503',
      ['put /admin/apps/{app}/webhook 400 401 404 413 415 503'],
      async () => {
        await hook();
        for (const url of [
          'not a url',
          'ftp://127.0.0.1/x',
          'http://user:password@127.0.0.1/x',
          'http://127.0.0.1:0/x',
          'https://nonexistent.invalid/x',
          'http://10.0.0.1/x',
          'http://169.254.169.254/latest/meta-data',
          'http://[::1]/x',
        ]) {
          const { res, body } = await putWebhook({ url });
          expect(res.status, url).to.equal(400);
          expect(
            (body as { errors: Array<{ path: string }> }).errors.map((e) => e.path),
            url,
          ).to.deep.equal(['url']);
        }
        const validate = contract.requestSchema('put', '/admin/apps/{app}/webhook');
        const refusedTypes = [
          { url: hookUrl, event_types: [] },
          { url: hookUrl, event_types: ['open'] },
          { url: hookUrl, event_types: 'bounced' },
          { url: hookUrl, event_types: ['bounced', null] },
        ];
        for (const body of [
          {},
          { url: '' },
          { url: `http://127.0.0.1/${'x'.repeat(1990)}` },
          { url: hookUrl, rotate_secret: 'yes' },
          { url: hookUrl, secret: 'mine' },
          [hookUrl],
          { url: 42 },
          ...refusedTypes,
        ]) {
          expect(validate(body), `the spec refuses ${JSON.stringify(body).slice(0, 80)}`).to.equal(false);
          expect((await putWebhook(body)).res.status, JSON.stringify(body).slice(0, 80)).to.equal(400);
        }
        // An unknown type name is answered with the valid names; an empty list with what to do instead.
        const unknown = (await putWebhook({ url: hookUrl, event_types: ['bounced', 'open'] })).body as { errors: Array<{ path: string; message: string }> };
        expect(unknown.errors.map((e) => e.path)).to.deep.equal(['event_types.1']);
        expect(unknown.errors[0]!.message).to.contain(allTypes().join(', '));
        const empty = (await putWebhook({ url: hookUrl, event_types: [] })).body as { errors: Array<{ path: string; message: string }> };
        expect(empty.errors[0]!.message).to.contain('remove the webhook');
        const template = '/admin/apps/{app}/webhook';
        const path = webhookPath();
        expect((await api('put', template, { path, key: ADMIN_KEY })).res.status, 'no body').to.equal(400);
        expect((await api('put', template, { path, rawBody: '{"url":', headers: { 'content-type': 'application/json' }, key: ADMIN_KEY })).res.status).to.equal(
          400,
        );
        expect((await putWebhook({ url: hookUrl }, '-dash')).res.status).to.equal(400);
        for (const key of [null, appKey, 'x'.repeat(40)]) {
          expect((await api('put', template, { path, body: { url: hookUrl }, key })).res.status).to.equal(401);
        }
        const missing = await putWebhook({ url: hookUrl }, 'no-such-app');
        expect(missing.res.status).to.equal(404);
        expect((missing.body as { type: string }).type).to.equal('https://jetpost.dev/problems/not-found');
        const big = JSON.stringify({ url: hookUrl, padding: 'p'.repeat(17 * 1024) });
        expect((await api('put', template, { path, rawBody: big, headers: { 'content-type': 'application/json' }, key: ADMIN_KEY })).res.status).to.equal(413);
        expect(
          (
            await api('put', template, {
              path,
              rawBody: JSON.stringify({ url: hookUrl }),
              headers: { 'content-type': 'application/json; charset=latin1' },
              key: ADMIN_KEY,
            })
          ).res.status,
        ).to.equal(415);
        expect((await api('put', template, { path, body: { url: hookUrl }, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
        expect((await getWebhook()).body, 'nothing refused was stored').to.deep.equal(enabledWebhook(secret));
      },
    );

    contractIt(
      'POST /admin/apps/{app}/webhook/secrets 201: a new secret; the old one signs on for the overlap (24 h by default), a second rotation cuts older ones to its own overlap, 0 ends them all',
      ['post /admin/apps/{app}/webhook/secrets 201'],
      async () => {
        await hook();
        const template = '/admin/apps/{app}/webhook/secrets';
        const path = `${webhookPath()}/secrets`;
        const rotate = (body?: unknown) => api('post', template, { path, key: ADMIN_KEY, ...(body === undefined ? {} : { body }) });
        const validate = contract.requestSchema('post', template);
        for (const body of [{}, { overlap_seconds: 0 }, { overlap_seconds: 604800 }]) {
          expect(validate(body), formatErrors(validate.errors)).to.equal(true);
        }
        const hoursFromNow = (at: string) => (Date.parse(at) - Date.now()) / 3_600_000;

        const first = await rotate({ overlap_seconds: 3600 });
        expect(first.res.status).to.equal(201);
        const one = first.body as HookBody;
        expect(one.secret).to.not.equal(secret);
        expect(one).to.deep.include({ url: hookUrl, event_types: allTypes() });
        expect(one.previous_secrets.map((p) => p.secret)).to.deep.equal([secret]);
        expect(hoursFromNow(one.previous_secrets[0]!.expires_at)).to.be.within(0.9, 1.01);

        // Without a body: 24 h for the secret it replaces; the first one keeps its own, earlier end.
        const second = await rotate();
        expect(second.res.status).to.equal(201);
        const two = second.body as HookBody;
        expect(two.previous_secrets.map((p) => p.secret)).to.deep.equal([one.secret, secret]);
        expect(hoursFromNow(two.previous_secrets[0]!.expires_at)).to.be.within(23.9, 24.01);
        expect(two.previous_secrets[1]!.expires_at).to.equal(one.previous_secrets[0]!.expires_at);
        expect((await getWebhook()).body).to.deep.equal(two);

        // An overlap of 0: every previous secret stops at once.
        const third = await rotate({ overlap_seconds: 0 });
        expect(third.res.status).to.equal(201);
        expect((third.body as HookBody).previous_secrets).to.deep.equal([]);
        secret = (third.body as HookBody).secret;
        expect((await getWebhook()).body).to.deep.equal(enabledWebhook(secret));
      },
    );

    contractIt(
      'POST /admin/apps/{app}/webhook/secrets 400, 401, 404 (no such app, an app without a webhook), 413, 415, 503',
      ['post /admin/apps/{app}/webhook/secrets 400 401 404 413 415 503'],
      async () => {
        await hook();
        const template = '/admin/apps/{app}/webhook/secrets';
        const path = `${webhookPath()}/secrets`;
        const validate = contract.requestSchema('post', template);
        for (const body of [{ overlap_seconds: -1 }, { overlap_seconds: 604801 }, { overlap_seconds: 1.5 }, { overlap_seconds: '1h' }, { overlap: 60 }, [60]]) {
          expect(validate(body), `the spec refuses ${JSON.stringify(body)}`).to.equal(false);
          expect((await api('post', template, { path, body, key: ADMIN_KEY })).res.status, JSON.stringify(body)).to.equal(400);
        }
        expect((await api('post', template, { path, rawBody: '{', headers: { 'content-type': 'application/json' }, key: ADMIN_KEY })).res.status).to.equal(400);
        expect((await api('post', template, { path: `${webhookPath('-dash')}/secrets`, key: ADMIN_KEY })).res.status).to.equal(400);
        for (const key of [null, appKey]) {
          expect((await api('post', template, { path, key })).res.status).to.equal(401);
        }
        expect((await api('post', template, { path: `${webhookPath('no-such-app')}/secrets`, key: ADMIN_KEY })).res.status).to.equal(404);
        const bare = await makeApp(service.db.pool);
        const none = await api('post', template, { path: `${webhookPath(bare.name)}/secrets`, key: ADMIN_KEY });
        expect(none.res.status).to.equal(404);
        expect((none.body as { detail: string }).detail).to.contain('has no webhook');
        const big = JSON.stringify({ overlap_seconds: 60, padding: 'p'.repeat(17 * 1024) });
        expect((await api('post', template, { path, rawBody: big, headers: { 'content-type': 'application/json' }, key: ADMIN_KEY })).res.status).to.equal(413);
        expect(
          (await api('post', template, { path, rawBody: '{}', headers: { 'content-type': 'application/json; charset=latin1' }, key: ADMIN_KEY })).res.status,
        ).to.equal(415);
        expect((await api('post', template, { path, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
        expect((await getWebhook()).body, 'nothing refused was stored').to.deep.equal(enabledWebhook(secret));
      },
    );

    contractIt(
      'GET /admin/apps/{app}/webhook 400, 401, 404 (no such app, an app without a webhook), 503',
      ['get /admin/apps/{app}/webhook 400 401 404 503'],
      async () => {
        expect((await getWebhook('-dash')).res.status).to.equal(400);
        for (const key of [null, appKey]) {
          expect((await api('get', '/admin/apps/{app}/webhook', { path: webhookPath(), key })).res.status).to.equal(401);
        }
        expect((await getWebhook('no-such-app')).res.status).to.equal(404);
        const bare = await makeApp(service.db.pool);
        const none = await getWebhook(bare.name);
        expect(none.res.status).to.equal(404);
        expect((none.body as { type: string }).type).to.equal('https://jetpost.dev/problems/not-found');
        expect((await api('get', '/admin/apps/{app}/webhook', { path: webhookPath(), key: ADMIN_KEY, on: down })).res.status).to.equal(503);
      },
    );

    contractIt(
      'GET /status?after=0 200: every kind of change lands in the feed, each a Change of the documented kind (all ten new_status values)',
      ['get /status/{job_id} 200', 'post /events 200', 'delete /queue/{job_id} 200', 'get /status 200'],
      async () => {
        const { jobA, jobB, jobC, failed } = await makeChanges();
        expect(changes).to.have.length(10);
        const statuses = (contract.spec.components.schemas['ChangeStatus'] as { enum: string[] }).enum;
        expect(changes.map((c) => c.new_status).sort()).to.deep.equal([...statuses].sort());
        expect(new Set(changes.map((c) => c.id)).size).to.equal(10);
        for (const change of changes) {
          expect(change.type, change.id).to.equal(change.new_status);
        }
        const of = (status: string) => changes.find((c) => c.new_status === status)!;
        const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
        expect(of('accepted')).to.deep.include({
          job_id: jobA,
          recipient: null,
          old_status: 'processing',
          details: null,
          custom_id: 'changes-a',
          metadata: { order: 7 },
        });
        expect(of('sent')).to.deep.include({
          job_id: jobA,
          recipient: 'ada@example.org',
          old_status: 'accepted',
          details: { event: 'sent', occurred_at: iso(1893488401), smtp_reply: '250 OK' },
        });
        expect(of('opened')).to.deep.include({ recipient: 'ada@example.org', old_status: 'sent' });
        expect(of('clicked')).to.deep.include({
          recipient: 'ada@example.org',
          old_status: 'opened',
          details: { event: 'clicked', occurred_at: iso(1893488403), url: 'https://example.com/a', ip: '192.0.2.1', geo: 'FR', agent: 'Mozilla/5.0' },
        });
        expect(of('bounced')).to.deep.include({ recipient: 'grace@example.org', old_status: 'accepted' });
        expect(of('bounced').details).to.include({ event: 'bounced', hard_bounce: true, error: 'user unknown' });
        expect(of('spam')).to.deep.include({ recipient: 'alan@example.org', details: { event: 'spam', occurred_at: iso(1893488405), source: 'JMRPP' } });
        expect(of('unsubscribed')).to.deep.include({
          recipient: 'edsger@example.org',
          details: { event: 'unsubscribed', occurred_at: iso(1893488406), mj_list_id: 1 },
        });
        expect(of('blocked')).to.deep.include({ recipient: 'barbara@example.org' });
        expect(of('cancelled')).to.deep.include({
          job_id: jobB,
          recipient: null,
          old_status: 'scheduled',
          details: null,
          custom_id: 'changes-b',
          metadata: null,
        });
        expect(of('failed')).to.deep.include({ job_id: jobC, recipient: null, old_status: 'processing', details: { error: failed.last_error } });
        expect(failed.last_error).to.match(/^suppressed: grace@example\.org/);
        // A job's changes come in the order they happened.
        const ada = changes.filter((c) => c.recipient === 'ada@example.org').map((c) => c.new_status);
        expect(ada).to.deep.equal(['sent', 'opened', 'clicked']);
        expect(changes.findIndex((c) => c.new_status === 'accepted')).to.be.below(changes.findIndex((c) => c.new_status === 'sent'));
        // The feed is the calling app's: another app's feed has none of these.
        const others = await feed('?after=0&limit=1000', service.apiKey);
        expect(others.changes.map((c) => c.id)).to.not.include.members(changes.map((c) => c.id));
      },
    );

    contractIt(
      'GET /status?after 200: paging with next_cursor reads each change once; an empty page answers the same cursor; the spec accepts every cursor handed out',
      ['get /status/{job_id} 200', 'post /events 200', 'delete /queue/{job_id} 200', 'get /status 200'],
      async () => {
        await makeChanges();
        const afterSchema = contract.parameterSchema('get', '/status', 'after');
        const paged: Change[] = [];
        let cursor = '';
        for (let pages = 0; ; pages += 1) {
          expect(pages).to.be.below(10);
          expect(afterSchema(cursor), `the spec accepts after=${cursor}`).to.equal(true);
          const page = await feed(`?after=${encodeURIComponent(cursor)}&limit=3`);
          expect(page.changes.length).to.be.at.most(3);
          if (page.changes.length === 0) {
            expect(page.next_cursor, 'an empty page keeps the cursor').to.equal(cursor);
            break;
          }
          paged.push(...page.changes);
          expect(page.next_cursor).to.not.equal(cursor);
          cursor = page.next_cursor;
        }
        expect(paged).to.deep.equal(changes);
        // Read again from any cursor: the same changes after it, never one twice.
        const mid = await feed('?after=0&limit=4');
        expect((await feed(`?after=${mid.next_cursor}&limit=1000`)).changes).to.deep.equal(changes.slice(4));
        // From the beginning, `0` and empty are the same; with nothing yet, the beginning is handed back.
        expect((await feed('?after=&limit=1000')).changes).to.deep.equal(changes);
        const empty = await makeApp(service.db.pool);
        const nothing = await feed('?after=0', empty.key);
        expect(nothing.changes).to.deep.equal([]);
        expect(afterSchema(nothing.next_cursor)).to.equal(true);
        expect((await feed(`?after=${nothing.next_cursor}`, empty.key)).next_cursor).to.equal(nothing.next_cursor);
        expect((await feed('?after=0&limit=1000')).changes).to.have.length(10, 'limit=1000 is allowed');
      },
    );

    contractIt('GET /status?after 200: limit defaults to 100', ['get /status 200'], async () => {
      const bulkApp = await makeApp(service.db.pool);
      const { res } = await api('post', '/queue', {
        body: { messages: Array.from({ length: 101 }, (_, i) => message({ to: `bulk${i}@example.org` })) },
        key: bulkApp.key,
      });
      expect(res.status).to.equal(202);
      const all = await feedOf(101, bulkApp.key);
      const first = await feed('?after=0', bulkApp.key);
      expect(first.changes).to.deep.equal(all.changes.slice(0, 100));
      expect((await feed(`?after=${first.next_cursor}`, bulkApp.key)).changes).to.deep.equal(all.changes.slice(100));
    });

    contractIt(
      'GET /status 400: after with ids or custom_id, limit without after, bad cursors and limits (the spec refuses them too); 401, 503',
      ['get /status 400 401 503'],
      async () => {
        for (const query of [
          '?after=0&ids=1',
          '?after=0&custom_id=a',
          '?ids=1&limit=5',
          '?custom_id=a&limit=5',
          '?limit=5',
          '?after=0&after=0',
          '?after=0&color=red',
        ]) {
          const { res, body } = await api('get', '/status', { path: `/status${query}`, key: appKey });
          expect(res.status, query).to.equal(400);
          expect((body as { type: string }).type, query).to.equal('https://jetpost.dev/problems/validation-failed');
        }
        const afterSchema = contract.parameterSchema('get', '/status', 'after');
        for (const after of ['a', '1', '1.', '.1', '-1.1', '1.2.3', '1.1 ', `${'1'.repeat(21)}.1`, `1.${'1'.repeat(20)}`]) {
          expect(afterSchema(after), `the spec refuses after=${after}`).to.equal(false);
          expect((await api('get', '/status', { path: `/status?after=${encodeURIComponent(after)}`, key: appKey })).res.status, after).to.equal(400);
        }
        const limitSchema = contract.parameterSchema('get', '/status', 'limit');
        for (const limit of ['0', '1001', 'x', '1.5', '-1']) {
          expect(limitSchema(Number(limit)), `the spec refuses limit=${limit}`).to.equal(false);
          expect((await api('get', '/status', { path: `/status?after=0&limit=${limit}`, key: appKey })).res.status, limit).to.equal(400);
        }
        expect((await api('get', '/status', { path: '/status?after=0', key: null })).res.status).to.equal(401);
        expect((await api('get', '/status', { path: '/status?after=0', on: down, key: down.apiKey })).res.status).to.equal(503);
      },
    );

    contractIt(
      'the statusChange webhook: every change arrives as documented (body, headers), signed, the same JSON as the feed; 2XX delivers, anything else is retried',
      ['webhook statusChange post 2XX default'],
      async () => {
        await hook();
        await makeChanges();
        const changeIdOf = (call: ReceivedCall) => (JSON.parse(call.body) as { id: string }).id;
        const byEvent = await eventually(
          async () => {
            const grouped = new Map<string, ReceivedCall[]>();
            for (const call of calls) {
              grouped.set(changeIdOf(call), [...(grouped.get(changeIdOf(call)) ?? []), call]);
            }
            const done = changes.every((c) => grouped.get(c.id)?.some((call) => call.answered < 300));
            return done ? grouped : undefined;
          },
          20_000,
          'every change delivered to the webhook',
        );
        expect([...byEvent.keys()].sort()).to.deep.equal(changes.map((c) => c.id).sort());
        for (const change of changes) {
          const received = byEvent.get(change.id)!;
          // One delivery per change: every attempt under the same webhook-id.
          const deliveryId = String(received[0]!.headers['webhook-id']);
          // Refused twice (500, then a redirect that was not followed), taken the third time, then never sent again.
          expect(
            received.map((call) => [call.headers['jetpost-delivery-attempt'], call.answered]),
            change.id,
          ).to.deep.equal([
            ['1', 500],
            ['2', 302],
            ['3', answerFor(3, deliveryId)],
          ]);
          for (const call of received) {
            const body = checkWebhook(call);
            expect(body, 'the webhook body is the feed entry').to.deep.equal(change);
            expect(call.url).to.equal(HOOK_PATH);
            expect(call.headers['webhook-id']).to.equal(deliveryId);
            expect(call.headers['user-agent']).to.equal('jetpost-webhooks/1');
            expect(verified(call), 'the Standard Webhooks library accepts the signature').to.deep.equal(change);
            expect(Math.abs(Date.now() / 1000 - Number(call.headers['webhook-timestamp']))).to.be.below(300);
          }
        }
        expect(
          calls.filter((call) => call.url !== HOOK_PATH),
          'redirects are not followed',
        ).to.deep.equal([]);
        expect(seen).to.include('webhook statusChange post 2XX').and.to.include('webhook statusChange post default');
      },
    );

    contractIt(
      'GET /admin/apps/{app}/webhook/deliveries 200: one delivery per change, delivered on the third attempt; status and limit filter, paged by before',
      [
        'put /admin/apps/{app}/webhook 200',
        'get /status/{job_id} 200',
        'post /events 200',
        'delete /queue/{job_id} 200',
        'get /status 200',
        'get /admin/apps/{app}/webhook/deliveries 200',
      ],
      async () => {
        await hook();
        await makeChanges();
        const list = await eventually(
          async () => {
            const { res, body } = await deliveries();
            expect(res.status).to.equal(200);
            const rows = (body as { deliveries: Delivery[] }).deliveries;
            return rows.length === changes.length && rows.every((d) => d.status === 'delivered') ? rows : undefined;
          },
          10_000,
          'every delivery settled',
        );
        expect(list.map((d) => d.event_id).sort()).to.deep.equal(changes.map((c) => c.id).sort());
        const ids = list.map((d) => BigInt(d.delivery_id));
        expect(ids, 'newest first').to.deep.equal([...ids].sort((a, b) => (a < b ? 1 : -1)));
        for (const delivery of list) {
          const change = changes.find((c) => c.id === delivery.event_id)!;
          expect(delivery).to.deep.include({
            job_id: change.job_id,
            type: change.type,
            attempts: 3,
            last_status_code: answerFor(3, delivery.delivery_id),
            last_error: null,
            next_attempt_at: null,
          });
        }
        const two = (await deliveries('?status=delivered&limit=2')).body as { deliveries: Delivery[]; next_before: string | null };
        expect(two).to.deep.equal({ deliveries: list.slice(0, 2), next_before: list[1]!.delivery_id });
        // Paged by `before`, as GET /admin/jobs: every delivery once, then a page that says it is the last.
        const paged: Delivery[] = [];
        let before: string | null = null;
        do {
          const page = (await deliveries(`?limit=2${before === null ? '' : `&before=${before}`}`)).body as {
            deliveries: Delivery[];
            next_before: string | null;
          };
          paged.push(...page.deliveries);
          before = page.next_before;
        } while (before !== null && paged.length <= list.length);
        expect(paged).to.deep.equal(list);
        expect((await deliveries(`?before=${list.at(-1)!.delivery_id}`)).body).to.deep.equal({ deliveries: [], next_before: null });
        expect((await deliveries('?status=failed')).body).to.deep.equal({ deliveries: [], next_before: null });
        expect((await deliveries('?status=pending&limit=1000')).body).to.deep.equal({ deliveries: [], next_before: null });
        // An app that never had a webhook has no deliveries.
        const { body: others } = await api('get', '/admin/apps/{app}/webhook/deliveries', {
          path: `/admin/apps/${(await makeApp(service.db.pool)).name}/webhook/deliveries`,
          key: ADMIN_KEY,
        });
        expect(others).to.deep.equal({ deliveries: [], next_before: null });
      },
    );

    contractIt('GET /admin/apps/{app}/webhook/deliveries 400, 401, 404, 503', ['get /admin/apps/{app}/webhook/deliveries 400 401 404 503'], async () => {
      for (const query of [
        '?status=lost',
        '?limit=0',
        '?limit=1001',
        '?limit=x',
        '?color=red',
        '?status=failed&status=pending',
        '?before=0',
        '?before=x',
        '?before=-1',
        '?before=99999999999999999999',
        '?before=1&before=2',
      ]) {
        expect((await deliveries(query)).res.status, query).to.equal(400);
      }
      expect((await deliveries('', '-dash')).res.status).to.equal(400);
      const path = `${webhookPath()}/deliveries`;
      for (const key of [null, appKey]) {
        expect((await api('get', '/admin/apps/{app}/webhook/deliveries', { path, key })).res.status).to.equal(401);
      }
      expect((await deliveries('', 'no-such-app')).res.status).to.equal(404);
      expect((await api('get', '/admin/apps/{app}/webhook/deliveries', { path, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
    });

    contractIt(
      'POST …/deliveries/{delivery}/redeliver 202: the change arrives again under the same event id, attempts go on counting',
      ['post /queue 202', 'post /admin/apps/{app}/webhook/deliveries/{delivery}/redeliver 202'],
      async () => {
        await hook();
        await makeChanges();
        await allDelivered();
        const clicked = changes.find((c) => c.new_status === 'clicked')!;
        const { body: listed } = await deliveries('?limit=1000');
        const delivery = (listed as { deliveries: Delivery[] }).deliveries.find((d) => d.event_id === clicked.id)!;
        const before = calls.length;
        const { res, body } = await redeliver(delivery.delivery_id);
        expect(res.status).to.equal(202);
        expect(body).to.deep.equal({ delivery_id: delivery.delivery_id, status: 'pending' });
        const again = await eventually(async () => calls.slice(before).find((call) => call.answered < 300), 10_000, 'the redelivery');
        expect(checkWebhook(again)).to.deep.equal(clicked);
        expect(again.headers['webhook-id']).to.equal(delivery.delivery_id);
        expect(again.headers['jetpost-delivery-attempt']).to.equal('4');
        const settledAgain = await eventually(
          async () => {
            const rows = ((await deliveries('?limit=1000')).body as { deliveries: Delivery[] }).deliveries;
            const row = rows.find((d) => d.delivery_id === delivery.delivery_id)!;
            return row.status === 'delivered' && row.attempts === 4 ? row : undefined;
          },
          10_000,
          'the redelivery recorded',
        );
        expect(settledAgain.last_status_code).to.equal(answerFor(4, delivery.delivery_id));
      },
    );

    contractIt(
      "POST …/redeliver 400, 401, 404 (no such delivery, another app's, no such app), 503",
      ['post /admin/apps/{app}/webhook/deliveries/{delivery}/redeliver 400 401 404 503'],
      async () => {
        // One change, so one delivery: a scheduled job cancelled.
        await hook();
        const { body: scheduledJob } = await api('post', '/queue', { body: message({ send_at: inDays(1) }), key: appKey });
        await api('delete', '/queue/{job_id}', { path: `/queue/${(scheduledJob as { job_id: string }).job_id}`, key: appKey });
        const { body: listed } = await deliveries('?limit=1');
        const id = (listed as { deliveries: Delivery[] }).deliveries[0]!.delivery_id;
        for (const bad of ['abc', '0', '01', '-1', '9223372036854775808']) {
          const { res, body } = await redeliver(bad);
          expect(res.status, bad).to.equal(400);
          expect(errorPaths(body), bad).to.deep.equal(['delivery']);
        }
        const badApp = await redeliver(id, '-dash');
        expect(badApp.res.status).to.equal(400);
        expect(errorPaths(badApp.body)).to.deep.equal(['app']);
        const template = '/admin/apps/{app}/webhook/deliveries/{delivery}/redeliver';
        const path = `${webhookPath()}/deliveries/${id}/redeliver`;
        for (const key of [null, appKey]) {
          expect((await api('post', template, { path, key })).res.status).to.equal(401);
        }
        const { body: apps } = await api('get', '/admin/apps', { key: ADMIN_KEY });
        const mainApp = (apps as { apps: Array<{ name: string; keys: Array<{ prefix: string }> }> }).apps.find((app) =>
          app.keys.some((key) => service.apiKey.startsWith(`jp_${key.prefix}_`)),
        )!.name;
        for (const [delivery, name] of [
          ['987654321', appName],
          ['9223372036854775807', appName],
          [id, mainApp],
          [id, 'no-such-app'],
        ] as const) {
          const { res, body } = await redeliver(delivery, name);
          expect(res.status, `${name} ${delivery}`).to.equal(404);
          expect((body as { type: string }).type).to.equal('https://jetpost.dev/problems/not-found');
        }
        expect((await api('post', template, { path, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
      },
    );

    contractIt(
      'DELETE /admin/apps/{app}/webhook 204: new changes get no delivery (the feed still has them), a redelivery fails; then GET and DELETE 404',
      ['delete /admin/apps/{app}/webhook 204 404', 'get /admin/apps/{app}/webhook 404'],
      async () => {
        await hook();
        await makeChanges();
        await allDelivered();
        const countBefore = ((await deliveries('?limit=1000')).body as { deliveries: Delivery[] }).deliveries.length;
        const callsBefore = calls.length;
        const { res } = await api('delete', '/admin/apps/{app}/webhook', { path: webhookPath(), key: ADMIN_KEY });
        expect(res.status).to.equal(204);
        expect((await getWebhook()).res.status).to.equal(404);
        const again = await api('delete', '/admin/apps/{app}/webhook', { path: webhookPath(), key: ADMIN_KEY });
        expect(again.res.status).to.equal(404);
        expect((again.body as { type: string }).type).to.equal('https://jetpost.dev/problems/not-found');
        // A change recorded now is in the feed but gets no delivery.
        const { body: queuedJob } = await api('post', '/queue', { body: message({ send_at: inDays(1) }), key: appKey });
        await api('delete', '/queue/{job_id}', { path: `/queue/${(queuedJob as { job_id: string }).job_id}`, key: appKey });
        expect((await feedOf(changes.length + 1)).changes.at(-1)).to.deep.include({
          new_status: 'cancelled',
          job_id: (queuedJob as { job_id: string }).job_id,
        });
        // A redelivery without a webhook fails at once, and nothing is posted.
        const { body: listed } = await deliveries('?limit=1');
        const latest = (listed as { deliveries: Delivery[] }).deliveries[0]!;
        expect((await redeliver(latest.delivery_id)).res.status).to.equal(202);
        const failed = await eventually(
          async () => {
            const rows = ((await deliveries('?status=failed')).body as { deliveries: Delivery[] }).deliveries;
            return rows.find((d) => d.delivery_id === latest.delivery_id);
          },
          10_000,
          'the redelivery to fail',
        );
        expect(failed).to.deep.include({ last_error: 'the app has no webhook any more', next_attempt_at: null });
        expect(((await deliveries('?limit=1000')).body as { deliveries: Delivery[] }).deliveries).to.have.length(countBefore);
        expect(calls.length).to.equal(callsBefore);
        // Setting it again makes a new secret (the old one went with the webhook).
        const renewed = await putWebhook({ url: hookUrl });
        expect((renewed.body as { secret: string }).secret).to.not.equal(secret);
      },
    );

    contractIt('DELETE /admin/apps/{app}/webhook 400, 401, 404 (no such app), 503', ['delete /admin/apps/{app}/webhook 400 401 404 503'], async () => {
      await hook();
      const template = '/admin/apps/{app}/webhook';
      expect((await api('delete', template, { path: webhookPath('-dash'), key: ADMIN_KEY })).res.status).to.equal(400);
      for (const key of [null, appKey]) {
        expect((await api('delete', template, { path: webhookPath(), key })).res.status).to.equal(401);
      }
      expect((await api('delete', template, { path: webhookPath('no-such-app'), key: ADMIN_KEY })).res.status).to.equal(404);
      expect((await api('delete', template, { path: webhookPath(), key: ADMIN_KEY, on: down })).res.status).to.equal(503);
      expect((await getWebhook()).res.status, 'the webhook set again is still there').to.equal(200);
      await api('delete', template, { path: webhookPath(), key: ADMIN_KEY });
    });
  });

  describe('a body that stops arriving (408)', () => {
    /** A service that refuses a body once nothing of it came for 200 ms (HTTP_BODY_IDLE_TIMEOUT_MS). */
    let impatient: TestService;

    before(async () => {
      impatient = await startTestService({ env: { WORKER_CONCURRENCY: '0', HTTP_BODY_IDLE_TIMEOUT_MS: '200' } });
    });

    after(async () => {
      await impatient?.stop();
    });

    const READING_ROUTES = [
      ['post', '/queue'],
      ['post', '/events'],
      ['post', '/admin/jobs/requeue'],
      ['post', '/admin/apps'],
      ['post', '/admin/apps/{app}/keys'],
      ['post', '/admin/apps/{app}/suppressions'],
      ['put', '/admin/apps/{app}/webhook'],
      ['post', '/admin/apps/{app}/webhook/secrets'],
    ] as const;

    contractIt(
      '408: every route that reads a body, when the body stops coming',
      READING_ROUTES.map(([method, template]) => `${method} ${template} 408`),
      async () => {
        for (const [method, template] of READING_ROUTES) {
          const authorization =
            template === '/queue' ? `Bearer ${impatient.apiKey}` : template === '/events' ? basic(EVENTS_USER, EVENTS_PASSWORD) : `Bearer ${ADMIN_KEY}`;
          const request = rawRequest(
            impatient.url,
            method.toUpperCase(),
            template.replace('{app}', 'app-a'),
            { Authorization: authorization, 'Content-Type': 'application/json', 'Content-Length': '100' },
            '{',
          );
          await checked(method, template, parseAnswer(await request.answer));
        }
      },
    );
  });

  describe('operations', () => {
    contractIt('GET /healthz 200', ['get /healthz 200'], async () => {
      expect((await api('get', '/healthz', { key: null })).body).to.deep.equal({ status: 'ok', service: 'jetpost' });
    });

    contractIt('GET /readyz 200 when ready, 503 when the database is away', ['get /readyz 200 503'], async () => {
      expect((await api('get', '/readyz', { key: null })).res.status).to.equal(200);
      const { res, body } = await api('get', '/readyz', { key: null, on: down });
      expect(res.status).to.equal(503);
      expect((body as { checks: { database: { ok: boolean } } }).checks.database.ok).to.equal(false);
    });

    contractIt('GET /metrics 200 in the Prometheus text format', ['get /metrics 200'], async () => {
      const { res, body } = await api('get', '/metrics', { key: null });
      expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
      expect(body)
        .to.match(/^# HELP jetpost_/m)
        .and.to.match(/^jetpost_jobs_enqueued_total \d+$/m);
    });

    contractIt('GET /openapi.yaml 200 serves this very document', ['get /openapi.yaml 200'], async () => {
      expect((await api('get', '/openapi.yaml', { key: null })).body).to.equal(contract.text);
    });

    contractIt(
      'GET /docs 200 renders this document; GET /docs/redoc.standalone.js 200 is the script it loads, 304 to a browser that has it',
      ['get /docs 200', 'get /docs/redoc.standalone.js 200 304'],
      async () => {
        expect((await api('get', '/docs', { key: null })).body)
          .to.include('<redoc spec-url="openapi.yaml">')
          .and.include('src="docs/redoc.standalone.js"');
        const bundle = await api('get', '/docs/redoc.standalone.js', { key: null });
        expect(bundle.body).to.have.length.above(100_000);
        for (const condition of [bundle.res.headers.get('etag')!, '*']) {
          const raw = await rawRequest(service.url, 'GET', '/docs/redoc.standalone.js', { 'If-None-Match': condition }).answer;
          expect(raw.slice(0, raw.indexOf('\r\n')), condition).to.equal('HTTP/1.1 304 Not Modified');
          await checked('get', '/docs/redoc.standalone.js', parseAnswer(raw));
        }
      },
    );
  });

  describe('the routes the app serves are exactly the documented ones', () => {
    contractIt("the routes the express app serves are the spec's operations", [], () => {
      // Express's `:jobId` is the spec's `{job_id}` (camelCase → snake_case); `:app`, `:prefix` and `:email` stay as they are.
      const toSpec = (route: string) => route.replace(/:(\w+)/g, (_, name: string) => `{${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}}`);
      const outside = (route: string) => OUTSIDE_THE_CONTRACT.some(([pattern]) => pattern.test(route));
      for (const [pattern] of OUTSIDE_THE_CONTRACT) {
        expect(
          service.jetpost.routes.some(({ path: route }) => pattern.test(route)),
          `${pattern} still matches a route`,
        ).to.equal(true);
        expect(
          Object.keys(contract.spec.paths).filter((template) => pattern.test(template)),
          `${pattern} matches no documented path`,
        ).to.deep.equal([]);
      }
      const fromCode = service.jetpost.routes.filter(({ path: route }) => !outside(route)).map(({ method, path: route }) => `${method} ${toSpec(route)}`);
      expect([...fromCode].sort()).to.deep.equal([...contract.operations()].sort());
    });

    contractIt(
      'each documented path answers 405 with Allow to every other method (OPTIONS lists exactly the documented ones; HEAD mirrors GET)',
      [],
      async () => {
        const components = contract.spec.components as unknown as {
          responses: Record<string, { content: Record<string, { schema: unknown }>; headers: Record<string, { schema: unknown }> }>;
        };
        const methodNotAllowed = components.responses['MethodNotAllowed']!;
        const problemSchema = contract.validator(methodNotAllowed.content['application/problem+json']!.schema);
        const allowSchema = contract.validator(methodNotAllowed.headers['Allow']!.schema);
        for (const [template, item] of Object.entries(contract.spec.paths)) {
          const url = template.replace(/\{[^}]+\}/g, '1');
          const documented = METHODS.filter((method) => item[method] !== undefined);
          for (const method of METHODS.filter((m) => !documented.includes(m))) {
            const res = await service.request(method.toUpperCase(), url);
            const text = await res.text();
            const where = `${method.toUpperCase()} ${url}`;
            if (method === 'options') {
              expect(res.status, where).to.equal(200);
              const allowed = (res.headers.get('allow') ?? '')
                .split(',')
                .map((m) => m.trim().toLowerCase())
                .filter(Boolean);
              const expected = documented.flatMap((m) => (m === 'get' ? ['get', 'head'] : [m]));
              expect([...allowed].sort(), where).to.deep.equal([...expected].sort());
            } else if (method === 'head' && documented.includes('get')) {
              const get = await service.request('GET', url);
              await get.arrayBuffer();
              expect(res.status, where).to.equal(get.status);
              expect(text, where).to.equal('');
            } else {
              expect(res.status, where).to.equal(405);
              expect(res.headers.get('content-type'), where).to.match(/^application\/problem\+json/);
              const allow = res.headers.get('allow') ?? '';
              expect(allowSchema(allow), `${where}: Allow ${allow}`).to.equal(true);
              const expected = documented.flatMap((m) => (m === 'get' ? ['GET', 'HEAD'] : [m.toUpperCase()]));
              expect(allow.split(', ').sort(), where).to.deep.equal([...expected].sort());
              if (method !== 'head') {
                const body = JSON.parse(text) as unknown;
                expect(problemSchema(body), `${where}: ${formatErrors(problemSchema.errors)}`).to.equal(true);
                expect(body, where).to.deep.include({ type: 'https://jetpost.dev/problems/method-not-allowed', title: 'Method Not Allowed', status: 405 });
              }
            }
          }
        }
      },
    );

    contractIt(
      'every documented operation answers 431 to a request line and headers over 16 KB, 417 to an Expect other than 100-continue, 501 to a transfer coding other than chunked and 505 to a request line of HTTP/2.0, as the HeadersTooLarge, ExpectationFailed, TransferCodingNotImplemented and HttpVersionNotSupported responses say',
      [],
      async () => {
        const components = contract.spec.components as unknown as { responses: Record<string, { content: Record<string, { schema: unknown }> }> };
        for (const [component, status, headers, version] of [
          ['HeadersTooLarge', 431, { 'X-Padding': 'a'.repeat(17 * 1024) }, 'HTTP/1.1'],
          ['ExpectationFailed', 417, { Expect: 'x-fancy-feature', 'Content-Length': '0' }, 'HTTP/1.1'],
          ['TransferCodingNotImplemented', 501, { 'Transfer-Encoding': 'gzip, chunked' }, 'HTTP/1.1'],
          ['HttpVersionNotSupported', 505, {}, 'HTTP/2.0'],
        ] as const) {
          const schema = contract.validator(components.responses[component]!.content['application/problem+json']!.schema);
          for (const operation of contract.operations()) {
            const [method, template] = operation.split(' ') as [Method, string];
            const where = `${component}: ${operation}`;
            const body = 'Transfer-Encoding' in headers ? '0\r\n\r\n' : '';
            const res = parseAnswer(await rawRequest(service.url, method.toUpperCase(), template.replace(/\{[^}]+\}/g, '1'), headers, body, version).answer);
            expect(res.status, where).to.equal(status);
            expect(res.headers.get('content-type'), where).to.match(/^application\/problem\+json/);
            const problem = (await res.json()) as unknown;
            expect(schema(problem), `${where}: ${formatErrors(schema.errors)}`).to.equal(true);
          }
        }
      },
    );

    contractIt(
      'the problem types of openapi.yaml (Errors) are the codes the API answers with (API_PROBLEM_CODES, which every AppError takes its code from)',
      [],
      () => {
        const description = (contract.spec as unknown as { info: { description: string } }).info.description;
        const listed = /machine-readable code:([^.]*)\./
          .exec(description)![1]!
          .match(/`[a-z-]+`/g)!
          .map((code) => code.slice(1, -1));
        expect([...new Set(listed)].sort()).to.deep.equal([...API_PROBLEM_CODES].sort());
      },
    );

    contractIt('paths that are not documented answer a 404 problem', [], async () => {
      for (const [method, url] of [
        ['GET', '/'],
        ['GET', '/nope'],
        ['POST', '/queue/1/2'],
        ['GET', '/queues'],
        ['GET', '/status/1/events'],
        ['POST', '/events/1'],
        ['GET', '/admin/apps/1'],
        ['GET', '/admin/apps/1/suppressions/1/keys'],
        ['GET', '/admin/apps/1/webhook/deliveries/1'],
        ['POST', '/admin/apps/1/webhook/redeliver'],
        ['GET', '/status/1/changes'],
      ] as const) {
        const res = await service.request(method, url);
        expect(res.status, `${method} ${url}`).to.equal(404);
        expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
        expect(await res.json()).to.deep.include({ type: 'https://jetpost.dev/problems/not-found', title: 'Not Found', status: 404 });
      }
    });
  });

  describe('coverage', () => {
    // Reads the declarations of the tests above (made when this file loads), not what ran before: it
    // holds on its own, in any order. That each test produced what it declares, and nothing
    // undocumented, is checked by the test itself (contractIt).
    it("every documented (operation, status) is declared by a test that produces it, but the ones listed as not reproducible (the webhooks' responses too)", () => {
      const documented = contract.documentedResponses();
      const declared = [...DECLARED.keys()];
      expect(
        documented.filter((pair) => pair.startsWith('webhook ')),
        'the webhooks document responses',
      ).to.have.length.above(0);
      for (const exempt of Object.keys(NOT_REPRODUCIBLE)) {
        expect(documented, `exemption ${exempt} is for a documented response`).to.include(exempt);
        expect(DECLARED.get(exempt), `${exempt} is listed as not reproducible but a test declares it`).to.equal(undefined);
      }
      const missing = documented.filter((pair) => !DECLARED.has(pair) && NOT_REPRODUCIBLE[pair] === undefined);
      expect(missing, 'documented responses no test produces').to.deep.equal([]);
      expect(
        declared.filter((pair) => !documented.includes(pair)),
        'responses declared that are not documented',
      ).to.deep.equal([]);
    });
  });
});
