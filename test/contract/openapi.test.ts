// The contract: openapi.yaml checked against the running service. Every documented (operation,
// status) is produced by a real request and its answer validated (status documented, Content-Type,
// body schema, headers); nothing undocumented may appear; and the route table the express app serves
// is exactly the spec's paths (derived over HTTP, and listed from src/http/routes/*.ts).
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { ErrorObject, ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { expect } from 'chai';
import nock from 'nock';
import { parse } from 'yaml';

import { createAppWithKey } from '../../src/apps/service.js';
import { ADMIN_KEY,
  EVENTS_PASSWORD,
  EVENTS_USER,
  eventually,
  MAILJET_TEST_KEY,
  MAILJET_TEST_ORIGIN,
  MAILJET_TEST_SECRET,
  startTestService,
  type TestService,
} from '../support/service.js';

const SPEC_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'openapi.yaml');
const SPEC_ID = 'https://jetpost.dev/openapi.yaml';
const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options'] as const;
type Method = (typeof METHODS)[number];

/** Documented responses no test request can produce, each with the reason. */
const NOT_REPRODUCIBLE: Record<string, string> = {
  'post /queue 500': 'only a defect reaches the catch-all handler; none is triggered on purpose',
  'delete /queue/{job_id} 500': 'only a defect reaches the catch-all handler; none is triggered on purpose',
  'get /status/{job_id} 500': 'only a defect reaches the catch-all handler; none is triggered on purpose',
  'get /status 500': 'only a defect reaches the catch-all handler; none is triggered on purpose',
  'post /events 500': 'only a defect reaches the catch-all handler; none is triggered on purpose',
  'get /metrics 500': 'prom-client would have to throw while collecting; nothing in a test makes it',
};

// ---- the spec, loosely typed -------------------------------------------------------------------

interface Ref {
  $ref: string;
}
interface SchemaHolder {
  schema?: unknown;
  example?: unknown;
  examples?: Record<string, { value?: unknown }>;
}
interface HeaderObject {
  required?: boolean;
  schema?: unknown;
}
interface ResponseObject {
  description: string;
  headers?: Record<string, HeaderObject | Ref>;
  content?: Record<string, SchemaHolder>;
}
interface ParameterObject extends SchemaHolder {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
}
interface Operation {
  operationId: string;
  security?: Array<Record<string, string[]>>;
  parameters?: Array<ParameterObject | Ref>;
  requestBody?: { required?: boolean; content: Record<string, SchemaHolder> };
  responses: Record<string, ResponseObject | Ref>;
}
interface Spec {
  openapi: string;
  paths: Record<string, Partial<Record<Method, Operation>>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, { type: string; scheme?: string }> };
}

function isRef(value: unknown): value is Ref {
  return typeof value === 'object' && value !== null && typeof (value as Ref).$ref === 'string';
}

/** Rewrites `#/components/schemas/X` to an absolute ref into the schema registered with Ajv. */
function absoluteRefs(node: unknown): unknown {
  if (Array.isArray(node)) {
    return node.map(absoluteRefs);
  }
  if (typeof node === 'object' && node !== null) {
    return Object.fromEntries(
      Object.entries(node).map(([key, value]) => [
        key,
        key === '$ref' && typeof value === 'string' ? value.replace(/^#\/components\/schemas\//, `${SPEC_ID}#/$defs/`) : absoluteRefs(value),
      ]),
    );
  }
  return node;
}

function formatErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('; ');
}

class Contract {
  readonly spec: Spec;
  private readonly ajv: InstanceType<typeof Ajv2020.default>;
  private readonly validators = new Map<string, ValidateFunction>();
  /** `method template status` for every answer checked. */
  readonly seen = new Set<string>();
  readonly undocumented: string[] = [];

  constructor(text: string) {
    this.spec = parse(text) as Spec;
    this.ajv = new Ajv2020.default({ strict: true, strictTypes: false, strictRequired: false, allErrors: true });
    addFormats.default(this.ajv);
    // OpenAPI's int64 annotates Mailjet's MessageID, which exceeds 2^53 by design: ajv-formats' int64
    // would demand a safe integer, which is exactly what these ids are not.
    this.ajv.addFormat('int64', { type: 'number', validate: (value: number) => Number.isInteger(value) });
    this.ajv.addSchema({ $id: SPEC_ID, $defs: absoluteRefs(this.spec.components.schemas) });
  }

  deref<T>(value: T | Ref): T {
    let current: unknown = value;
    for (let hops = 0; isRef(current); hops += 1) {
      expect(hops, 'a $ref cycle').to.be.below(10);
      const pointer = current.$ref;
      expect(pointer, 'only local refs').to.match(/^#\//);
      current = pointer
        .slice(2)
        .split('/')
        .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], this.spec);
      expect(current, `unresolved ${pointer}`).to.not.equal(undefined);
    }
    return current as T;
  }

  validator(schema: unknown): ValidateFunction {
    const key = JSON.stringify(schema);
    let validate = this.validators.get(key);
    if (!validate) {
      validate = this.ajv.compile(absoluteRefs(schema) as object);
      this.validators.set(key, validate);
    }
    return validate;
  }

  operation(method: Method, template: string): Operation {
    const operation = this.spec.paths[template]?.[method];
    expect(operation, `${method.toUpperCase()} ${template} is not in openapi.yaml`).to.not.equal(undefined);
    return operation!;
  }

  /** Every documented operation as `method template`. */
  operations(): string[] {
    return Object.entries(this.spec.paths).flatMap(([template, item]) =>
      METHODS.filter((method) => item[method] !== undefined).map((method) => `${method} ${template}`),
    );
  }

  requestSchema(method: Method, template: string): ValidateFunction {
    const schema = this.operation(method, template).requestBody?.content['application/json']?.schema;
    expect(schema, `${method} ${template} documents an application/json body`).to.not.equal(undefined);
    return this.validator(schema);
  }

  /** Checks an answer against the spec and returns its body (parsed when JSON). */
  async check(method: Method, template: string, res: Response): Promise<unknown> {
    const operation = this.operation(method, template);
    const label = `${method} ${template} ${res.status}`;
    this.seen.add(label);
    const documented = operation.responses[String(res.status)];
    const text = await res.text();
    if (documented === undefined) {
      this.undocumented.push(`${label}: ${text.slice(0, 300)}`);
      expect.fail(`${label} is not documented; the body was ${text.slice(0, 300)}`);
    }
    const response = this.deref(documented);

    for (const [name, headerOrRef] of Object.entries(response.headers ?? {})) {
      const header = this.deref(headerOrRef);
      const value = res.headers.get(name);
      if (header.required) {
        expect(value, `${label}: header ${name} is documented as required`).to.not.equal(null);
      }
      if (value !== null && header.schema !== undefined) {
        const validate = this.validator(header.schema);
        expect(validate(value), `${label}: header ${name}: ${value}: ${formatErrors(validate.errors)}`).to.equal(true);
      }
    }

    const contentType = res.headers.get('content-type');
    const media = Object.keys(response.content ?? {});
    if (media.length === 0) {
      expect(text, `${label} documents no body`).to.equal('');
      return undefined;
    }
    expect(contentType, `${label} has a Content-Type`).to.not.equal(null);
    const essence = contentType!.split(';')[0]!.trim().toLowerCase();
    expect(media, `${label}: Content-Type ${contentType}`).to.include(essence);
    if (method === 'head') {
      return undefined;
    }
    const body: unknown = /^application\/(.+\+)?json$/.test(essence) ? JSON.parse(text) : text;
    const schema = response.content![essence]!.schema;
    if (schema !== undefined) {
      const validate = this.validator(schema);
      expect(validate(body), `${label}: body ${text.slice(0, 500)}: ${formatErrors(validate.errors)}`).to.equal(true);
    }
    return body;
  }
}

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

function message(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { from: { email: 'app@example.com', name: 'App' }, to: 'ada@example.org', subject: 'Hello', text: 'Hi there', ...extra };
}

/** QUEUE_RATE_LIMIT and EVENTS_RATE_LIMIT of the rate-limited service. */
const RATE_LIMIT = 2;

const ONE_DAY_MS = 24 * 3600 * 1000;
const inDays = (days: number) => new Date(Date.now() + days * ONE_DAY_MS).toISOString();

/** Bodies POST /queue must refuse (400), which the spec's schema refuses too. */
const INVALID_IN_BOTH: Array<[string, unknown]> = [
  ['no to', { from: 'app@example.com', subject: 'x', text: 'y' }],
  ['a bad address', message({ to: 'not-an-address' })],
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
];

/** Bodies POST /queue refuses through rules the spec can only state in words (descriptions). */
const INVALID_BY_DESCRIBED_RULES: Array<[string, unknown]> = [
  ['51 recipients over to, cc and bcc', message({ to: Array.from({ length: 30 }, (_, i) => `to${i}@example.org`), cc: Array.from({ length: 21 }, (_, i) => `cc${i}@example.org`) })],
  ['the same address twice (any case)', message({ to: ['ada@example.org'], bcc: ['ADA@example.org'] })],
  ['a header jetpost sets itself', message({ headers: { 'reply-to': 'x@example.org' } })],
  ['send_at more than 30 days ahead', message({ send_at: inDays(31) })],
  ['send_at more than 24 hours ago', message({ send_at: inDays(-2) })],
  ['metadata above 8 KiB as JSON', message({ metadata: { blob: 'm'.repeat(8 * 1024) } })],
  ['variables above 64 KiB as JSON', message({ template_id: 1, variables: { blob: 'v'.repeat(64 * 1024) } })],
];

/** Bodies both the code and the spec accept. */
const VALID: Array<[string, unknown]> = [
  ['a bare address string', message()],
  ['address objects, cc and bcc', message({ to: [{ email: 'ada@example.org', name: 'Ada' }, 'grace@example.org'], cc: 'c@example.org', bcc: [{ email: 'b@example.org' }], reply_to: { email: 'r@example.org', name: 'R' } })],
  ['a template without from', { to: 'ada@example.org', template_id: 4242, template_language: true, variables: { first_name: 'Ada' } }],
  ['html only, with an inline attachment and headers', message({ text: undefined, html: '<img src="cid:logo">', headers: { 'X-Campaign': 'spring', 'List-Unsubscribe': '<mailto:u@example.com>' }, attachments: [{ filename: 'logo.png', content_type: 'image/png', content: 'iVBORw0KGgo=', content_id: 'logo' }] })],
  ['every optional field', message({ custom_id: 'order-1', metadata: { order: 1, tags: ['a'] }, priority: 3, send_at: inDays(1) })],
  ['send_at with an offset and fractions', message({ send_at: new Date(Date.now() + 3_600_000).toISOString().replace('Z', '+00:00') })],
  ['a bulk request', { idempotency_key: `bulk-${Date.now()}`, messages: [message(), message({ to: 'grace@example.org' })] }],
];

// ---- the test ----------------------------------------------------------------------------------

describe('openapi.yaml, checked against the running service', function () {
  this.timeout(60_000);

  let contract: Contract;
  let specText: string;
  let service: TestService;
  /** A second service whose database pool has been closed: the database is "away". */
  let down: TestService;
  /** A third service with rate limits of 2 requests per minute, to reach the 429s. */
  let limited: TestService;

  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  /** One request through TestService.request, checked against the spec. */
  async function api(
    method: Method,
    template: string,
    options: { path?: string; body?: unknown; rawBody?: string; headers?: Record<string, string>; key?: string | null; on?: TestService } = {},
  ): Promise<{ res: Response; body: unknown }> {
    const target = options.on ?? service;
    const res = await target.request(method.toUpperCase(), options.path ?? template, options);
    const body = await contract.check(method, template, res);
    return { res, body };
  }

  /** POST /events with a raw text body (so 64-bit MessageIDs travel as raw JSON integers). */
  async function events(text: string, options: { auth?: string | null; headers?: Record<string, string>; on?: TestService } = {}): Promise<{ res: Response; body: unknown }> {
    const target = options.on ?? service;
    const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
    const auth = options.auth === undefined ? basic(EVENTS_USER, EVENTS_PASSWORD) : options.auth;
    if (auth !== null) {
      headers['authorization'] = auth;
    }
    const res = await fetch(`${target.url}/events`, { method: 'POST', headers, body: text });
    const body = await contract.check('post', '/events', res);
    return { res, body };
  }

  async function queue(body: unknown, headers: Record<string, string> = {}): Promise<{ job_id: string; status: string }> {
    const { res, body: answer } = await api('post', '/queue', { body, headers });
    expect(res.status, JSON.stringify(answer)).to.equal(202);
    return answer as { job_id: string; status: string };
  }

  before(async () => {
    specText = await fs.readFile(SPEC_FILE, 'utf8');
    contract = new Contract(specText);
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
    service = await startTestService();
    down = await startTestService({ env: { WORKER_CONCURRENCY: '0' } });
    await down.jetpost.pool.end();
    limited = await startTestService({ env: { WORKER_CONCURRENCY: '0', QUEUE_RATE_LIMIT: String(RATE_LIMIT), EVENTS_RATE_LIMIT: String(RATE_LIMIT) } });
  });

  after(async () => {
    await service?.stop();
    await down?.stop();
    await limited?.stop();
    nock.cleanAll();
    nock.enableNetConnect();
  });

  describe('the document', () => {
    it('is OpenAPI 3.1.0 with the reusable components the API is described with', () => {
      expect(contract.spec.openapi).to.equal('3.1.0');
      expect(contract.spec.components.schemas).to.include.keys(
        'Message', 'BulkRequest', 'Address', 'Attachment', 'QueuedJob', 'Job', 'Recipient', 'Event', 'MailjetEvent', 'Problem', 'ValidationProblem',
        'App', 'AppKey', 'CreatedApp', 'CreatedApiKey', 'Suppression', 'SuppressionReason',
      );
      expect(contract.spec.components.securitySchemes['adminKey']).to.deep.include({ type: 'http', scheme: 'bearer' });
      expect(contract.spec.components.securitySchemes['apiKey']).to.deep.include({ type: 'http', scheme: 'bearer' });
      expect(contract.spec.components.securitySchemes['mailjetBasic']).to.deep.include({ type: 'http', scheme: 'basic' });
    });

    it('has schemas that all compile (Ajv 2020, strict) and examples that match them', () => {
      for (const name of Object.keys(contract.spec.components.schemas)) {
        contract.validator({ $ref: `#/components/schemas/${name}` });
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
          const resolved = contract.deref(parameter);
          checkExamples(`${operationKey} parameter ${resolved.name}`, resolved);
        }
        for (const [type, media] of Object.entries(operation.requestBody?.content ?? {})) {
          checkExamples(`${operationKey} request ${type}`, media);
        }
        for (const [status, response] of Object.entries(operation.responses)) {
          for (const [type, media] of Object.entries(contract.deref(response).content ?? {})) {
            checkExamples(`${operationKey} ${status} ${type}`, media);
          }
        }
      }
    });

    it('gives every job and recipient status of the lifecycle', () => {
      const schemas = contract.spec.components.schemas as Record<string, { enum?: string[] }>;
      expect(schemas['JobStatus']?.enum).to.deep.equal([
        'queued', 'scheduled', 'processing', 'deferred', 'accepted', 'sent', 'opened', 'clicked', 'unsubscribed', 'spam', 'bounced', 'blocked', 'failed', 'cancelled',
      ]);
      expect(schemas['RecipientStatus']?.enum).to.deep.equal([
        'pending', 'accepted', 'sent', 'opened', 'clicked', 'unsubscribed', 'spam', 'bounced', 'blocked', 'failed', 'cancelled', 'suppressed',
      ]);
      expect((schemas['SuppressionReason'] as { enum?: string[] }).enum).to.deep.equal(['hard_bounce', 'spam', 'unsubscribed', 'manual']);
    });
  });

  describe('POST /queue', () => {
    it('202: one message, with Location and no Idempotent-Replayed; the replay says Idempotent-Replayed: true', async () => {
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

    it('202: a bulk request answers {jobs} in order, without Location', async () => {
      const body = { messages: [message({ custom_id: 'bulk-0' }), message({ custom_id: 'bulk-1' }), message({ custom_id: 'bulk-2' })] };
      const { res, body: answer } = await api('post', '/queue', { body });
      expect(res.status).to.equal(202);
      expect(res.headers.get('location')).to.equal(null);
      expect((answer as { jobs: Array<{ custom_id: string }> }).jobs.map((j) => j.custom_id)).to.deep.equal(['bulk-0', 'bulk-1', 'bulk-2']);
    });

    for (const [name, body] of VALID) {
      it(`202: ${name} (the spec accepts it too)`, async () => {
        const validate = contract.requestSchema('post', '/queue');
        expect(validate(body), formatErrors(validate.errors)).to.equal(true);
        await queue(body);
      });
    }

    for (const [name, body] of INVALID_IN_BOTH) {
      it(`400: ${name} (the spec refuses it too)`, async () => {
        expect(contract.requestSchema('post', '/queue')(body), 'the spec should refuse this body').to.equal(false);
        const { res, body: problem } = await api('post', '/queue', { body });
        expect(res.status).to.equal(400);
        expect((problem as { type: string }).type).to.equal('https://jetpost.dev/problems/validation-failed');
      });
    }

    for (const [name, body] of INVALID_BY_DESCRIBED_RULES) {
      it(`400: ${name} (a rule the spec states in its descriptions)`, async () => {
        const { res, body: problem } = await api('post', '/queue', { body });
        expect(res.status).to.equal(400);
        expect((problem as { errors: unknown[] }).errors).to.have.length.above(0);
      });
    }

    it('400: a bad Idempotency-Key header, a header differing from the field, a non-object body, malformed JSON', async () => {
      expect((await api('post', '/queue', { body: message(), headers: { 'idempotency-key': 'has space' } })).res.status).to.equal(400);
      expect((await api('post', '/queue', { body: message({ idempotency_key: 'a' }), headers: { 'idempotency-key': 'b' } })).res.status).to.equal(400);
      expect((await api('post', '/queue', { body: [message()] })).res.status).to.equal(400);
      const malformed = await api('post', '/queue', { rawBody: '{"to":', headers: { 'content-type': 'application/json' } });
      expect(malformed.res.status).to.equal(400);
      expect((malformed.body as { type: string }).type).to.equal('https://jetpost.dev/problems/malformed-json');
    });

    it('415: a body that is not sent as JSON; 401 before any body is read', async () => {
      const notJson = await api('post', '/queue', { rawBody: JSON.stringify(message()), headers: { 'content-type': 'text/plain' } });
      expect(notJson.res.status).to.equal(415);
      expect((notJson.body as { type: string }).type).to.equal('https://jetpost.dev/problems/unsupported-media-type');
      const anonymous = await api('post', '/queue', { rawBody: '{"to":', headers: { 'content-type': 'application/json' }, key: null });
      expect(anonymous.res.status).to.equal(401);
    });

    it('401: no key, a malformed key, an unknown key', async () => {
      for (const key of [null, 'not-a-key', `jp_aaaaaaaaaaaa_${'A'.repeat(43)}`]) {
        const { res } = await api('post', '/queue', { body: message(), key });
        expect(res.status).to.equal(401);
      }
    });

    it('409: the same Idempotency-Key with a different body', async () => {
      const key = `conflict-${Date.now()}`;
      await queue(message(), { 'idempotency-key': key });
      const { res, body } = await api('post', '/queue', { body: message({ subject: 'Another' }), headers: { 'idempotency-key': key } });
      expect(res.status).to.equal(409);
      expect((body as { type: string }).type).to.equal('https://jetpost.dev/problems/idempotency-key-reused');
    });

    it('413: a body above QUEUE_BODY_LIMIT (20 MB)', async () => {
      const rawBody = JSON.stringify(message({ text: 'x'.repeat(21 * 1024 * 1024) }));
      const { res } = await api('post', '/queue', { rawBody, headers: { 'content-type': 'application/json' } });
      expect(res.status).to.equal(413);
    });

    it('415: a charset other than UTF-8, an unknown Content-Encoding', async () => {
      const rawBody = JSON.stringify(message());
      expect((await api('post', '/queue', { rawBody, headers: { 'content-type': 'application/json; charset=latin1' } })).res.status).to.equal(415);
      expect((await api('post', '/queue', { rawBody, headers: { 'content-type': 'application/json', 'content-encoding': 'compress' } })).res.status).to.equal(415);
    });

    it('503: the database is away', async () => {
      const { res } = await api('post', '/queue', { body: message(), on: down, key: down.apiKey });
      expect(res.status).to.equal(503);
    });
  });

  describe('rate limits (429)', () => {
    const scheduled = () => message({ send_at: inDays(1) });
    const policy = new RegExp(`^"${RATE_LIMIT}-in-1min"; q=${RATE_LIMIT}; w=60; pk=:[A-Za-z0-9+/]+=*:$`);

    it('POST /queue: counted per app after authentication; 429 with Retry-After, RateLimit and RateLimit-Policy', async () => {
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
      expect((await api('post', '/queue', { rawBody: 'not json', headers: { 'content-type': 'text/plain' }, on: limited, key: limited.apiKey })).res.status).to.equal(429);
      // Not counted before authentication: no key is still a 401.
      expect((await api('post', '/queue', { body: scheduled(), on: limited, key: null })).res.status).to.equal(401);
      // Per app: another app of the same service is not limited.
      const other = await createAppWithKey(limited.jetpost.pool, `other-${Date.now()}`);
      const { res: otherRes } = await api('post', '/queue', { body: scheduled(), on: limited, key: other.key });
      expect(otherRes.status).to.equal(202);
      expect(otherRes.headers.get('ratelimit')).to.match(new RegExp(`^"${RATE_LIMIT}-in-1min"; r=${RATE_LIMIT - 1}; t=\\d+$`));
      expect(otherRes.headers.get('ratelimit-policy'), 'another partition key').to.not.equal(res.headers.get('ratelimit-policy'));
    });

    it('POST /events: counted per source address before authentication; 429 even without credentials', async () => {
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
      for (const auth of [null, basic(EVENTS_USER, 'wrong')]) {
        expect((await events('[]', { on: limited, auth })).res.status).to.equal(429);
      }
    });

    it('the default limits (600 and 6000 per minute) are announced on every counted answer', async () => {
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
    let jobId: string;

    it('200: once sent, each recipient carries its 64-bit MessageID as an exact string', async () => {
      ({ job_id: jobId } = await queue(message({ to: [{ email: 'ada@example.org', name: 'Ada' }, 'grace@example.org'], cc: 'cc@example.org', custom_id: 'tracked' })));
      const job = await eventually(async () => {
        const { body } = await api('get', '/status/{job_id}', { path: `/status/${jobId}` });
        const view = body as { status: string; recipients: Array<{ message_id: string | null; message_uuid: string | null; status: string; kind: string }> };
        return view.status === 'accepted' ? view : undefined;
      }, 10_000, `job ${jobId} to be accepted`);
      expect(job.recipients.map((r) => r.kind)).to.deep.equal(['to', 'to', 'cc']);
      for (const recipient of job.recipients) {
        expect(recipient.status).to.equal('accepted');
        expect(handedOut.has(recipient.message_id!), `${recipient.message_id} was handed out by Mailjet`).to.equal(true);
        expect(BigInt(recipient.message_id!) > 2n ** 53n).to.equal(true);
        expect(recipient.message_uuid).to.equal(handedOut.get(recipient.message_id!));
      }
    });

    it('200 (POST /events): a grouped callback with raw 64-bit MessageIDs, an unknown message and an invalid element', async () => {
      const { body } = await api('get', '/status/{job_id}', { path: `/status/${jobId}` });
      const [ada, grace, cc] = (body as { recipients: Array<{ message_id: string; message_uuid: string }> }).recipients;
      const text = `[
        {"event":"sent","time":1700000000,"MessageID":${ada!.message_id},"Message_GUID":"${ada!.message_uuid}","email":"ada@example.org","mj_campaign_id":0,"mj_contact_id":4,"customcampaign":"","mj_message_id":"${ada!.message_id}","smtp_reply":"sent (250 2.0.0 OK)","CustomID":"jetpost-${jobId}","Payload":""},
        {"event":"open","time":1700000100,"MessageID":${ada!.message_id},"email":"ada@example.org","ip":"127.0.0.1","geo":"FR","agent":"Mozilla/5.0"},
        {"event":"click","time":1700000200,"MessageID":${ada!.message_id},"email":"ada@example.org","url":"https://example.com/a","ip":"127.0.0.1","geo":"FR","agent":"Mozilla/5.0"},
        {"event":"bounce","time":1700000300,"MessageID":${grace!.message_id},"email":"grace@example.org","blocked":false,"hard_bounce":false,"error_related_to":"domain","error":"greylisted","comment":"451 try later"},
        {"event":"sent","time":1700000400,"Message_GUID":"${cc!.message_uuid}","email":"cc@example.org"},
        {"event":"sent","time":1700000500,"MessageID":9223372036854775807,"email":"stranger@example.org"},
        {"event":"delivered","time":1700000600,"MessageID":1,"email":"x@example.org"}
      ]`;
      const validate = contract.requestSchema('post', '/events');
      const parsed = JSON.parse(text) as unknown[];
      expect(validate(parsed.slice(0, 6)), formatErrors(validate.errors)).to.equal(true);
      expect(validate(parsed), 'the spec refuses the invalid element').to.equal(false);
      const { res, body: receipt } = await events(text);
      expect(res.status).to.equal(200);
      expect(receipt).to.deep.equal({ received: 7, stored: 6, duplicates: 0, unmatched: 1, rejected: 1 });
    });

    it('200 (POST /events): one event object (Version 1), already received, is a duplicate', async () => {
      const { body } = await api('get', '/status/{job_id}', { path: `/status/${jobId}` });
      const ada = (body as { recipients: Array<{ message_id: string }> }).recipients[0]!;
      const { res, body: receipt } = await events(`{"event":"open","time":1700000100,"MessageID":${ada.message_id},"email":"ada@example.org"}`);
      expect(res.status).to.equal(200);
      expect(receipt).to.deep.equal({ received: 1, stored: 0, duplicates: 1, unmatched: 0, rejected: 0 });
      expect((await events('[]')).body).to.deep.equal({ received: 0, stored: 0, duplicates: 0, unmatched: 0, rejected: 0 });
    });

    it('200: the job shows per-recipient statuses, the job status rule, and the event history', async () => {
      const { body } = await api('get', '/status/{job_id}', { path: `/status/${jobId}` });
      const job = body as { status: string; custom_id: string; recipients: Array<{ status: string; message_id: string }>; events: Array<{ type: string; message_id: string | null; details: Record<string, unknown> }> };
      expect(job.custom_id).to.equal('tracked');
      expect(job.recipients.map((r) => r.status)).to.deep.equal(['clicked', 'accepted', 'sent']);
      expect(job.status).to.equal('clicked');
      expect(job.events.map((e) => e.type)).to.deep.equal(['sent', 'open', 'click', 'bounce', 'sent']);
      expect(job.events[0]!.message_id).to.equal(job.recipients[0]!.message_id);
      expect(job.events[2]!.details).to.deep.equal({ url: 'https://example.com/a', ip: '127.0.0.1', geo: 'FR', agent: 'Mozilla/5.0' });
      expect(job.events[3]!.details).to.include({ hard_bounce: false, error: 'greylisted' });
    });

    it('400: job ids that are not ids', async () => {
      for (const bad of ['abc', '0', '01', '-1', '12345678901234567890', '9223372036854775808', '9999999999999999999']) {
        const { res } = await api('get', '/status/{job_id}', { path: `/status/${bad}` });
        expect(res.status, bad).to.equal(400);
      }
    });

    it('401: no key', async () => {
      expect((await api('get', '/status/{job_id}', { path: `/status/${jobId}`, key: null })).res.status).to.equal(401);
    });

    it('404: a job that does not exist, and another app\'s job', async () => {
      for (const missing of ['987654321', '9223372036854775807']) {
        expect((await api('get', '/status/{job_id}', { path: `/status/${missing}` })).res.status, missing).to.equal(404);
      }
      const other = await createAppWithKey(service.jetpost.pool, `other-${Date.now()}`);
      expect((await api('get', '/status/{job_id}', { path: `/status/${jobId}`, key: other.key })).res.status).to.equal(404);
    });

    it('503: the database is away', async () => {
      expect((await api('get', '/status/{job_id}', { path: '/status/1', on: down, key: down.apiKey })).res.status).to.equal(503);
    });

    it('400 (POST /events): not JSON, empty, not objects, no valid event at all', async () => {
      for (const text of ['{"event":', '', '[1, 2]', '"sent"', '[{"event":"sent"}]', '{"event":"sent","time":1,"email":"a@example.org"}', '{"event":"sent","time":1,"MessageID":0,"email":"a@example.org"}']) {
        const { res, body } = await events(text);
        expect(res.status, text).to.equal(400);
        expect((body as { errors: unknown[] }).errors, text).to.have.length.above(0);
      }
    });

    it('401 (POST /events): no credentials, wrong credentials', async () => {
      for (const auth of [null, basic(EVENTS_USER, 'wrong'), basic('someone', EVENTS_PASSWORD), 'Bearer x']) {
        expect((await events('[]', { auth })).res.status).to.equal(401);
      }
    });

    it('413 (POST /events): a body above EVENTS_BODY_LIMIT (10 MB)', async () => {
      const text = `[${Array.from({ length: 80_000 }, (_, i) => `{"event":"open","time":${i},"MessageID":576460765503091475,"email":"ada@example.org","agent":"${'a'.repeat(80)}"}`).join(',')}]`;
      expect(text.length).to.be.above(10 * 1024 * 1024);
      expect((await events(text)).res.status).to.equal(413);
    });

    it('415 (POST /events): an unknown charset', async () => {
      expect((await events('[]', { headers: { 'content-type': 'application/json; charset=nonesuch' } })).res.status).to.equal(415);
    });

    it('503 (POST /events): the database is away', async () => {
      expect((await events('[]', { on: down })).res.status).to.equal(503);
    });
  });

  describe('DELETE /queue/{job_id}', () => {
    it('200: a scheduled job is cancelled; 409: cancelling it again', async () => {
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

    it('400, 401, 404, 503', async () => {
      for (const bad of ['abc', '9223372036854775808']) {
        expect((await api('delete', '/queue/{job_id}', { path: `/queue/${bad}` })).res.status, bad).to.equal(400);
      }
      expect((await api('delete', '/queue/{job_id}', { path: '/queue/1', key: null })).res.status).to.equal(401);
      expect((await api('delete', '/queue/{job_id}', { path: '/queue/987654321' })).res.status).to.equal(404);
      expect((await api('delete', '/queue/{job_id}', { path: '/queue/1', on: down, key: down.apiKey })).res.status).to.equal(503);
    });
  });

  describe('GET /status (look-up)', () => {
    it('200: by ids (unknown ids are absent), by one or several custom_id', async () => {
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
      expect(none.body).to.deep.equal({ jobs: [] });
    });

    it('400: neither, both, an unknown parameter, a bad id, 101 ids, ids given twice', async () => {
      const ids = Array.from({ length: 101 }, (_, i) => i + 1).join(',');
      for (const query of ['', '?ids=1&custom_id=a', '?ids=1&after=5', '?ids=1,x', '?ids=1,9223372036854775808', `?ids=${ids}`, '?ids=1&ids=2', '?ids=,', '?custom_id=']) {
        const { res } = await api('get', '/status', { path: `/status${query}` });
        expect(res.status, query).to.equal(400);
      }
    });

    it('401, 503', async () => {
      expect((await api('get', '/status', { path: '/status?ids=1', key: null })).res.status).to.equal(401);
      expect((await api('get', '/status', { path: '/status?ids=1', on: down, key: down.apiKey })).res.status).to.equal(503);
    });
  });

  describe('admin', () => {
    let failedJobId: string;

    before(async () => {
      const queued = await queue({ from: 'app@example.com', to: 'dead@example.com', text: 'x', send_at: new Date(Date.now() + 3_600_000).toISOString() });
      failedJobId = queued.job_id;
      await service.db.pool.query(`update email_send_jobs set status = 'failed', attempts = max_attempts, last_error = 'mj-0013: invalid' where id = $1`, [failedJobId]);
    });

    it('GET /admin/jobs 200: the dead-letter list with reasons, paged', async () => {
      const { res, body } = await api('get', '/admin/jobs', { key: ADMIN_KEY });
      expect(res.status).to.equal(200);
      const list = body as { jobs: Array<{ job_id: string; last_error: string }>; next_before: string | null };
      expect(list.jobs.map((job) => job.job_id)).to.include(failedJobId);
      expect(list.jobs.find((job) => job.job_id === failedJobId)?.last_error).to.equal('mj-0013: invalid');
      const page = await api('get', '/admin/jobs', { path: '/admin/jobs?status=failed&limit=1', key: ADMIN_KEY });
      expect((page.body as { next_before: string | null }).next_before).to.equal(failedJobId);
    });

    it('GET /admin/jobs 400, 401, 503', async () => {
      for (const query of ['?status=lost', '?limit=0', '?color=red']) {
        expect((await api('get', '/admin/jobs', { path: `/admin/jobs${query}`, key: ADMIN_KEY })).res.status, query).to.equal(400);
      }
      expect((await api('get', '/admin/jobs', { key: null })).res.status).to.equal(401);
      expect((await api('get', '/admin/jobs', { key: service.apiKey })).res.status).to.equal(401);
      expect((await api('get', '/admin/jobs', { key: ADMIN_KEY, on: down })).res.status).to.equal(503);
    });

    it('POST /admin/jobs/requeue 200: the failed job is queued again; 400, 401, 503', async () => {
      const { res, body } = await api('post', '/admin/jobs/requeue', { body: { job_ids: [failedJobId] }, key: ADMIN_KEY });
      expect(res.status).to.equal(200);
      expect(body).to.deep.equal({ requeued: [failedJobId] });
      const again = await api('post', '/admin/jobs/requeue', { body: { job_ids: [failedJobId] }, key: ADMIN_KEY });
      expect(again.body).to.deep.equal({ requeued: [] });
      for (const bad of [{}, { job_ids: ['1'], all_failed: true }, { job_ids: [] }, { all_failed: false }]) {
        expect((await api('post', '/admin/jobs/requeue', { body: bad, key: ADMIN_KEY })).res.status, JSON.stringify(bad)).to.equal(400);
      }
      expect((await api('post', '/admin/jobs/requeue', { body: { all_failed: true }, key: null })).res.status).to.equal(401);
      expect((await api('post', '/admin/jobs/requeue', { body: { all_failed: true }, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
    });

    it('POST /admin/jobs/requeue 413 (above 1 MB), 415 (a charset other than UTF-8)', async () => {
      const rawBody = JSON.stringify({ job_ids: Array.from({ length: 70_000 }, (_, i) => String(i + 1_000_000_000_000)) });
      expect(rawBody.length).to.be.above(1024 * 1024);
      expect((await api('post', '/admin/jobs/requeue', { rawBody, headers: { 'content-type': 'application/json' }, key: ADMIN_KEY })).res.status).to.equal(413);
      const latin1 = { 'content-type': 'application/json; charset=latin1' };
      expect((await api('post', '/admin/jobs/requeue', { rawBody: '{"all_failed":true}', headers: latin1, key: ADMIN_KEY })).res.status).to.equal(415);
    });

    describe('apps and API keys', () => {
      const appName = `contract-${Date.now()}`;
      /** The app's keys in creation order. */
      const keys: Array<{ key: string; prefix: string }> = [];
      const keyWorks = async (key: string) => {
        const { res } = await api('get', '/status', { path: '/status?ids=1', key });
        return res.status === 200;
      };
      const listed = async (name: string) => {
        const { res, body } = await api('get', '/admin/apps', { key: ADMIN_KEY });
        expect(res.status).to.equal(200);
        return (body as { apps: Array<{ name: string; keys: Array<{ prefix: string; created_at: string; revoked_at: string | null }> }> }).apps.find((app) => app.name === name);
      };

      it('POST /admin/apps 201: the app and its first key, shown once; GET /admin/apps 200 lists it; 409: the name again', async () => {
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
      });

      it('POST /admin/apps 400, 401, 413, 415, 503; GET /admin/apps 401, 503', async () => {
        const bad: unknown[] = [{}, { name: '' }, { name: '-starts-with-a-dash' }, { name: 'has space' }, { name: 'n'.repeat(101) }, { name: 42 }, { name: 'ok', extra: 1 }, ['ok']];
        for (const body of bad) {
          const { res, body: problem } = await api('post', '/admin/apps', { body, key: ADMIN_KEY });
          expect(res.status, JSON.stringify(body)).to.equal(400);
          expect((problem as { type: string }).type).to.equal('https://jetpost.dev/problems/validation-failed');
        }
        expect((await api('post', '/admin/apps', { key: ADMIN_KEY })).res.status, 'no body').to.equal(400);
        expect((await api('post', '/admin/apps', { rawBody: '{"name":', headers: { 'content-type': 'application/json' }, key: ADMIN_KEY })).res.status).to.equal(400);
        for (const key of [null, service.apiKey, 'x'.repeat(40)]) {
          expect((await api('post', '/admin/apps', { body: { name: 'nobody-sees-this' }, key })).res.status).to.equal(401);
          expect((await api('get', '/admin/apps', { key })).res.status).to.equal(401);
        }
        expect((await listed('nobody-sees-this'))).to.equal(undefined);
        const big = JSON.stringify({ name: 'n'.repeat(17 * 1024) });
        expect((await api('post', '/admin/apps', { rawBody: big, headers: { 'content-type': 'application/json' }, key: ADMIN_KEY })).res.status).to.equal(413);
        expect((await api('post', '/admin/apps', { rawBody: '{"name":"latin"}', headers: { 'content-type': 'application/json; charset=latin1' }, key: ADMIN_KEY })).res.status).to.equal(415);
        expect((await api('post', '/admin/apps', { body: { name: 'down-app' }, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
        expect((await api('get', '/admin/apps', { key: ADMIN_KEY, on: down })).res.status).to.equal(503);
      });

      it('POST /admin/apps/{app}/keys 201: a second key, both work; with revoke_others the others are revoked at once', async () => {
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
        expect(app?.keys.map((k) => [k.prefix, k.revoked_at === null])).to.deep.equal([[keys[0]!.prefix, false], [keys[1]!.prefix, false], [keys[2]!.prefix, true]]);

        const explicit = await api('post', '/admin/apps/{app}/keys', { path, body: { revoke_others: false }, key: ADMIN_KEY });
        expect(explicit.res.status).to.equal(201);
        keys.push({ key: (explicit.body as { api_key: string }).api_key, prefix: (explicit.body as { key_prefix: string }).key_prefix });
        expect(await keyWorks(keys[2]!.key)).to.equal(true);
      });

      it('POST /admin/apps/{app}/keys 400, 401, 404, 413, 415, 503', async () => {
        const path = `/admin/apps/${appName}/keys`;
        for (const body of [{ revoke_others: 'yes' }, { revoke_others: null }, { revoke: true }, [true]]) {
          expect((await api('post', '/admin/apps/{app}/keys', { path, body, key: ADMIN_KEY })).res.status, JSON.stringify(body)).to.equal(400);
        }
        for (const name of ['-dash', '.dot', 'n'.repeat(101), 'a%20b']) {
          expect((await api('post', '/admin/apps/{app}/keys', { path: `/admin/apps/${name}/keys`, key: ADMIN_KEY })).res.status, name).to.equal(400);
        }
        expect((await api('post', '/admin/apps/{app}/keys', { path, rawBody: '{', headers: { 'content-type': 'application/json' }, key: ADMIN_KEY })).res.status).to.equal(400);
        expect((await api('post', '/admin/apps/{app}/keys', { path, key: null })).res.status).to.equal(401);
        expect((await api('post', '/admin/apps/{app}/keys', { path, key: keys[2]!.key })).res.status).to.equal(401);
        const missing = await api('post', '/admin/apps/{app}/keys', { path: '/admin/apps/no-such-app/keys', key: ADMIN_KEY });
        expect(missing.res.status).to.equal(404);
        expect((missing.body as { type: string }).type).to.equal('https://jetpost.dev/problems/not-found');
        const big = JSON.stringify({ revoke_others: false, padding: 'p'.repeat(17 * 1024) });
        expect((await api('post', '/admin/apps/{app}/keys', { path, rawBody: big, headers: { 'content-type': 'application/json' }, key: ADMIN_KEY })).res.status).to.equal(413);
        expect((await api('post', '/admin/apps/{app}/keys', { path, rawBody: '{}', headers: { 'content-type': 'application/json; charset=latin1' }, key: ADMIN_KEY })).res.status).to.equal(415);
        expect((await api('post', '/admin/apps/{app}/keys', { path, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
      });

      it('DELETE /admin/apps/{app}/keys/{prefix} 204: the key stops working at once; 404 once revoked, for an unknown key or app', async () => {
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
        const other = await createAppWithKey(service.jetpost.pool, `other-${Date.now()}`);
        expect((await api('delete', template, { path: `/admin/apps/${appName}/keys/${other.key.slice(3, 15)}`, key: ADMIN_KEY })).res.status).to.equal(404);
        expect(await keyWorks(other.key)).to.equal(true);
      });

      it('DELETE /admin/apps/{app}/keys/{prefix} 400, 401, 503', async () => {
        const template = '/admin/apps/{app}/keys/{prefix}';
        for (const path of [`/admin/apps/${appName}/keys/ABCDEFGHIJKL`, `/admin/apps/${appName}/keys/short`, `/admin/apps/${appName}/keys/0000000000000`, `/admin/apps/-dash/keys/${keys[2]!.prefix}`]) {
          expect((await api('delete', template, { path, key: ADMIN_KEY })).res.status, path).to.equal(400);
        }
        const path = `/admin/apps/${appName}/keys/${keys[2]!.prefix}`;
        expect((await api('delete', template, { path, key: null })).res.status).to.equal(401);
        expect((await api('delete', template, { path, key: keys[2]!.key })).res.status).to.equal(401);
        expect((await api('delete', template, { path, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
        expect(await keyWorks(keys[2]!.key)).to.equal(true);
      });
    });

    describe('suppressions', () => {
      let appName: string;
      const list = (query = '', name = appName) => api('get', '/admin/apps/{app}/suppressions', { path: `/admin/apps/${name}/suppressions${query}`, key: ADMIN_KEY });
      const add = (body: unknown, name = appName) => api('post', '/admin/apps/{app}/suppressions', { path: `/admin/apps/${name}/suppressions`, body, key: ADMIN_KEY });
      const remove = (email: string, name = appName) => api('delete', '/admin/apps/{app}/suppressions/{email}', { path: `/admin/apps/${name}/suppressions/${encodeURIComponent(email)}`, key: ADMIN_KEY });
      type Suppression = { email: string; reason: string; detail: string | null; created_at: string };
      type JobView = { status: string; last_error: string | null; recipients: Array<{ email: string; status: string; message_id: string | null }>; events: unknown[] };
      const settled = (jobId: string, statuses: string[]) =>
        eventually(async () => {
          const { body } = await api('get', '/status/{job_id}', { path: `/status/${jobId}` });
          return statuses.includes((body as JobView).status) ? (body as JobView) : undefined;
        }, 10_000, `job ${jobId} to be ${statuses.join(' or ')}`);

      before(async () => {
        const { body } = await api('get', '/admin/apps', { key: ADMIN_KEY });
        const apps = (body as { apps: Array<{ name: string; keys: Array<{ prefix: string }> }> }).apps;
        appName = apps.find((app) => app.keys.some((key) => service.apiKey.startsWith(`jp_${key.prefix}_`)))!.name;
      });

      it('POST 201: added by hand, lower-cased, reason manual; again: the reason and created_at stay, a new note replaces detail', async () => {
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
      });

      it('Mailjet\'s hard bounces, spam complaints and unsubscribes add the address for the app (GET 200 lists them)', async () => {
        const to = ['sup.bounce@example.org', 'sup.spam@example.org', 'sup.unsub@example.org', 'sup.soft@example.org'];
        const { job_id: jobId } = await queue(message({ to }));
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
        const other = await createAppWithKey(service.jetpost.pool, `other-${Date.now()}`);
        expect((await list('', other.app.name)).body).to.deep.equal({ suppressions: [], next_after: null });
      });

      it('GET 200 pages by address with after/next_after', async () => {
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

      it('a suppressed recipient is left out of the send: `suppressed`; with no To left the job fails with "suppressed: …"', async () => {
        const partly = await queue(message({ to: 'sup.kept@example.org', bcc: 'SUP.MANUAL@example.org' }));
        const sent = await settled(partly.job_id, ['accepted']);
        expect(sent.recipients.map((r) => [r.email, r.status])).to.deep.equal([['sup.kept@example.org', 'accepted'], ['SUP.MANUAL@example.org', 'suppressed']]);
        expect(sent.recipients[1]!.message_id).to.equal(null);

        const blocked = await queue(message({ to: ['sup.bounce@example.org', 'sup.spam@example.org'], cc: 'sup.cc@example.org' }));
        const failed = await settled(blocked.job_id, ['failed']);
        expect(failed.last_error).to.match(/^suppressed: /).and.to.include('sup.bounce@example.org (hard_bounce)').and.to.include('sup.spam@example.org (spam)');
        expect(failed.recipients.map((r) => r.status)).to.deep.equal(['suppressed', 'suppressed', 'failed']);
        expect(failed.recipients.every((r) => r.message_id === null)).to.equal(true);
      });

      it('GET 400, 401, 404, 503', async () => {
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

      it('POST 400, 401, 404, 413, 415, 503', async () => {
        for (const body of [{}, { email: 'not-an-address' }, { email: 'a@b' }, { email: 'sup.x@example.org', note: 'a\nb' }, { email: 'sup.x@example.org', note: 'n'.repeat(501) }, { email: 'sup.x@example.org', reason: 'spam' }]) {
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
        expect((await api('post', template, { path, rawBody: '{"email":"sup.x@example.org"}', headers: { 'content-type': 'application/json; charset=latin1' }, key: ADMIN_KEY })).res.status).to.equal(415);
        expect((await api('post', template, { path, body: { email: 'sup.x@example.org' }, key: ADMIN_KEY, on: down })).res.status).to.equal(503);
        expect(((await list('?limit=1000')).body as { suppressions: Suppression[] }).suppressions.map((e) => e.email)).to.not.include('sup.x@example.org');
      });

      it('DELETE 204 (any case): the address is sent to again; 404 when not suppressed or no such app', async () => {
        const { res } = await remove('Sup.Manual@EXAMPLE.org');
        expect(res.status).to.equal(204);
        expect(((await list('?limit=1000')).body as { suppressions: Suppression[] }).suppressions.map((e) => e.email)).to.not.include('sup.manual@example.org');
        const { job_id: jobId } = await queue(message({ to: 'sup.manual@example.org' }));
        expect((await settled(jobId, ['accepted', 'failed'])).recipients.map((r) => r.status)).to.deep.equal(['accepted']);
        const again = await remove('sup.manual@example.org');
        expect(again.res.status).to.equal(404);
        expect((again.body as { type: string }).type).to.equal('https://jetpost.dev/problems/not-found');
        expect((await remove('sup.never@example.org')).res.status).to.equal(404);
        expect((await remove('sup.nonote@example.org', 'no-such-app')).res.status).to.equal(404);
      });

      it('DELETE 400, 401, 503', async () => {
        for (const email of ['not-an-address', 'a@b', `${'x'.repeat(250)}@example.org`]) {
          expect((await remove(email)).res.status, email).to.equal(400);
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

  describe('operations', () => {
    it('GET /healthz 200', async () => {
      expect((await api('get', '/healthz', { key: null })).body).to.deep.equal({ status: 'ok' });
    });

    it('GET /readyz 200 when ready, 503 when the database is away', async () => {
      expect((await api('get', '/readyz', { key: null })).res.status).to.equal(200);
      const { res, body } = await api('get', '/readyz', { key: null, on: down });
      expect(res.status).to.equal(503);
      expect((body as { checks: { database: { ok: boolean } } }).checks.database.ok).to.equal(false);
    });

    it('GET /metrics 200 in the Prometheus text format', async () => {
      const { res, body } = await api('get', '/metrics', { key: null });
      expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
      expect(body).to.match(/^# HELP jetpost_/m).and.to.match(/^jetpost_jobs_enqueued_total \d+$/m);
    });

    it('GET /openapi.yaml 200 serves this very document', async () => {
      expect((await api('get', '/openapi.yaml', { key: null })).body).to.equal(specText);
    });
  });

  describe('the routes the app serves are exactly the documented ones', () => {
    it('the routes the express app serves are the spec\'s operations', () => {
      // Express's `:jobId` is the spec's `{job_id}` (camelCase → snake_case); `:app`, `:prefix` and `:email` stay as they are.
      const toSpec = (route: string) => route.replace(/:(\w+)/g, (_, name: string) => `{${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}}`);
      const fromCode = service.jetpost.routes.map(({ method, path: route }) => `${method} ${toSpec(route)}`);
      expect([...fromCode].sort()).to.deep.equal([...contract.operations()].sort());
    });

    it('each documented path answers 404 to every other method (OPTIONS lists exactly the documented ones; HEAD mirrors GET)', async () => {
      for (const [template, item] of Object.entries(contract.spec.paths)) {
        const url = template.replace(/\{[^}]+\}/g, '1');
        const documented = METHODS.filter((method) => item[method] !== undefined);
        for (const method of METHODS.filter((m) => !documented.includes(m))) {
          const res = await service.request(method.toUpperCase(), url);
          const text = await res.text();
          const where = `${method.toUpperCase()} ${url}`;
          if (method === 'options') {
            expect(res.status, where).to.equal(200);
            const allowed = (res.headers.get('allow') ?? '').split(',').map((m) => m.trim().toLowerCase()).filter(Boolean);
            const expected = documented.flatMap((m) => (m === 'get' ? ['get', 'head'] : [m]));
            expect([...allowed].sort(), where).to.deep.equal([...expected].sort());
          } else if (method === 'head' && documented.includes('get')) {
            const get = await service.request('GET', url);
            await get.arrayBuffer();
            expect(res.status, where).to.equal(get.status);
            expect(text, where).to.equal('');
          } else {
            expect(res.status, where).to.equal(404);
            expect(res.headers.get('content-type'), where).to.match(/^application\/problem\+json/);
            if (method !== 'head') {
              expect(JSON.parse(text), where).to.deep.include({ type: 'https://jetpost.dev/problems/not-found', status: 404 });
            }
          }
        }
      }
    });

    it('paths that are not documented answer a 404 problem', async () => {
      for (const [method, url] of [['GET', '/'], ['GET', '/nope'], ['POST', '/queue/1'], ['GET', '/queue/1'], ['GET', '/status/1/events'], ['POST', '/events/1'], ['GET', '/admin/apps/1'], ['GET', '/admin/apps/1/suppressions/1/keys']] as const) {
        const res = await service.request(method, url);
        expect(res.status, `${method} ${url}`).to.equal(404);
        expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
        expect(await res.json()).to.deep.include({ type: 'https://jetpost.dev/problems/not-found', title: 'Not Found', status: 404 });
      }
    });
  });

  describe('coverage', () => {
    it('saw nothing undocumented', () => {
      expect(contract.undocumented).to.deep.equal([]);
    });

    it('exercised every documented (operation, status), but the ones listed as not reproducible', () => {
      const documented = contract.operations().flatMap((operationKey) => {
        const [method, template] = operationKey.split(' ') as [Method, string];
        return Object.keys(contract.operation(method, template).responses).map((status) => `${operationKey} ${status}`);
      });
      for (const exempt of Object.keys(NOT_REPRODUCIBLE)) {
        expect(documented, `exemption ${exempt} is for a documented response`).to.include(exempt);
        expect(contract.seen.has(exempt), `${exempt} is listed as not reproducible but was seen`).to.equal(false);
      }
      const missing = documented.filter((pair) => !contract.seen.has(pair) && NOT_REPRODUCIBLE[pair] === undefined);
      expect(missing, 'documented responses no test produced').to.deep.equal([]);
    });
  });
});
