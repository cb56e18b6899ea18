// openapi.yaml as a test oracle. The libraries do the validating: @seriousme/openapi-schema-validator
// checks the document against the official OpenAPI 3.1 schema, and Ajv's JSON Schema 2020-12
// validator (OpenAPI 3.1's schema dialect) checks bodies, headers and parameters against the spec's
// schemas. What is left here is the part no maintained library does for OpenAPI 3.1 over a fetch
// Response (jest-openapi and chai-openapi-response-validator stop at 3.0; openapi-backend compiles
// with draft-07 and reads application/json bodies only; express-openapi-validator runs inside the
// server under test): finding the documented response of a status, following the Reference Objects
// to it, and checking its headers and media type. The validator's own resolveRefs() is not used: it
// drops the keywords beside a schema's $ref, which OpenAPI 3.1 applies (BulkRequest's items do so).
import fs from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Validator } from '@seriousme/openapi-schema-validator';
import type { ErrorObject, ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { expect } from 'chai';
import { parse } from 'yaml';

import { emailAddressProblem } from '../../src/domain/email-address.js';

const SPEC_ID = 'https://jetpost.dev/openapi.yaml';
export const SPEC_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'openapi.yaml');
export const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options'] as const;
export type Method = (typeof METHODS)[number];

// ---- the spec, loosely typed ------------------------------------------------------------------

export interface Ref {
  $ref: string;
}
export interface SchemaHolder {
  schema?: unknown;
  example?: unknown;
  examples?: Record<string, { value?: unknown }>;
}
export interface HeaderObject {
  required?: boolean;
  schema?: unknown;
}
export interface ResponseObject {
  description: string;
  headers?: Record<string, HeaderObject>;
  content?: Record<string, SchemaHolder>;
}
export interface ParameterObject extends SchemaHolder {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
}
/** An operation; as `Contract.operation` returns it, its parameters, responses and headers are resolved (schemas keep their $refs). */
export interface Operation<R = ResponseObject, P = ParameterObject> {
  operationId: string;
  security?: Array<Record<string, string[]>>;
  parameters?: P[];
  requestBody?: { required?: boolean; content: Record<string, SchemaHolder> };
  responses: Record<string, R>;
}
export type PathItem<R = ResponseObject, P = ParameterObject> = Partial<Record<Method, Operation<R, P>>>;
export interface Spec<R = ResponseObject | Ref, P = ParameterObject | Ref> {
  openapi: string;
  paths: Record<string, PathItem<R, P>>;
  /** OpenAPI 3.1: the calls jetpost makes to apps (name → method → operation). */
  webhooks?: Record<string, PathItem<R, P>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, { type: string; scheme?: string }> };
}

/** A call jetpost made to a test's webhook receiver, and the status the receiver answered. */
export interface ReceivedCall {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  answered: number;
}

export function formatErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('; ');
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

/** The documented response a status falls under: the exact code, else its range (`2XX`), else `default`. */
function responseKey(responses: Record<string, unknown>, status: number): string | undefined {
  return [String(status), `${String(status)[0]}XX`, 'default'].find((key) => responses[key] !== undefined);
}

/** The media type of a Content-Type value, lower-cased, without parameters. */
function essenceOf(contentType: string): string {
  return contentType.split(';')[0]!.trim().toLowerCase();
}

export class Contract {
  private readonly validators = new Map<string, ValidateFunction>();

  private constructor(
    /** The document as written (its `$ref`s in place). */
    readonly spec: Spec,
    /** What the official OpenAPI 3.1 schema finds wrong with the document. */
    readonly documentErrors: unknown[],
    readonly text: string,
    private readonly ajv: InstanceType<typeof Ajv2020.default>,
  ) {}

  static async load(): Promise<Contract> {
    const text = await fs.readFile(SPEC_FILE, 'utf8');
    const result = await new Validator().validate(text);
    const spec = parse(text) as Spec;
    const ajv = new Ajv2020.default({ strict: true, strictTypes: false, strictRequired: false, allErrors: true });
    addFormats.default(ajv);
    // OpenAPI's int64 annotates Mailjet's MessageID, which exceeds 2^53 by design: ajv-formats' int64
    // would demand a safe integer, which is exactly what these ids are not.
    ajv.addFormat('int64', { type: 'number', validate: (value: number) => Number.isInteger(value) });
    // JSON Schema's idn-email (RFC 6531), which ajv-formats leaves out: the rule jetpost implements,
    // unit-tested against the RFCs in test/unit/email-address.test.ts.
    ajv.addFormat('idn-email', { type: 'string', validate: (value: string) => emailAddressProblem(value) === undefined });
    ajv.addSchema({ $id: SPEC_ID, $defs: absoluteRefs(spec.components.schemas) });
    return new Contract(spec, result.valid ? [] : [result.errors].flat(), text, ajv);
  }

  /** A validator for a schema of the document (its $refs to components included), compiled once. */
  validator(schema: unknown): ValidateFunction {
    const key = JSON.stringify(schema);
    let validate = this.validators.get(key);
    if (!validate) {
      validate = this.ajv.compile(absoluteRefs(schema) as object);
      this.validators.set(key, validate);
    }
    return validate;
  }

  /** A validator for `#/components/schemas/<name>`. */
  componentSchema(name: string): ValidateFunction {
    expect(this.spec.components.schemas[name], `components.schemas.${name}`).to.not.equal(undefined);
    return this.validator({ $ref: `#/components/schemas/${name}` });
  }

  /** Follows a Reference Object (to a response, parameter or header) within the document. */
  private deref<T>(value: T | Ref): T {
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

  /** The operation with its parameters, responses and their headers resolved. */
  private resolve({ parameters, responses, ...rest }: Operation<ResponseObject | Ref, ParameterObject | Ref>): Operation {
    return {
      ...rest,
      ...(parameters === undefined ? {} : { parameters: parameters.map((parameter) => this.deref(parameter)) }),
      responses: Object.fromEntries(
        Object.entries(responses).map(([status, responseOrRef]) => {
          const response = this.deref(responseOrRef as ResponseObject | Ref);
          const headers = Object.entries((response.headers ?? {}) as Record<string, HeaderObject | Ref>).map(([name, header]) => [name, this.deref(header)]);
          return [status, { ...response, ...(response.headers === undefined ? {} : { headers: Object.fromEntries(headers) as Record<string, HeaderObject> }) }];
        }),
      ),
    };
  }

  operation(method: Method, template: string): Operation {
    const operation = this.spec.paths[template]?.[method];
    expect(operation, `${method.toUpperCase()} ${template} is not in openapi.yaml`).to.not.equal(undefined);
    return this.resolve(operation!);
  }

  /** Every documented operation as `method template`. */
  operations(): string[] {
    return Object.entries(this.spec.paths).flatMap(([template, item]) =>
      METHODS.filter((method) => item[method] !== undefined).map((method) => `${method} ${template}`),
    );
  }

  webhookOperation(name: string, method: Method): Operation {
    const operation = this.spec.webhooks?.[name]?.[method];
    expect(operation, `webhook ${name} ${method.toUpperCase()} is not in openapi.yaml`).to.not.equal(undefined);
    return this.resolve(operation!);
  }

  /** Every documented webhook call as `webhook name method`. */
  webhookOperations(): string[] {
    return Object.entries(this.spec.webhooks ?? {}).flatMap(([name, item]) =>
      METHODS.filter((method) => item[method] !== undefined).map((method) => `webhook ${name} ${method}`),
    );
  }

  /** Every documented (operation, status) as `method template status` or `webhook name method status`. */
  documentedResponses(): string[] {
    const pathResponses = this.operations().flatMap((operationKey) => {
      const [method, template] = operationKey.split(' ') as [Method, string];
      return Object.keys(this.operation(method, template).responses).map((status) => `${operationKey} ${status}`);
    });
    const webhookResponses = this.webhookOperations().flatMap((operationKey) => {
      const [, name, method] = operationKey.split(' ') as [string, string, Method];
      return Object.keys(this.webhookOperation(name, method).responses).map((status) => `${operationKey} ${status}`);
    });
    return [...pathResponses, ...webhookResponses];
  }

  /** The schema of a documented query parameter. */
  parameterSchema(method: Method, template: string, name: string): ValidateFunction {
    const parameter = (this.operation(method, template).parameters ?? []).find((p) => p.name === name && p.in === 'query');
    expect(parameter?.schema, `${method} ${template} documents the query parameter ${name}`).to.not.equal(undefined);
    return this.validator(parameter!.schema);
  }

  requestSchema(method: Method, template: string): ValidateFunction {
    const schema = this.operation(method, template).requestBody?.content['application/json']?.schema;
    expect(schema, `${method} ${template} documents an application/json body`).to.not.equal(undefined);
    return this.validator(schema);
  }

  /**
   * Checks an answer against the spec: its status documented, the documented headers (required ones
   * present, values valid), its media type and body schema. Returns the response key
   * (`method template status`), or undefined when the status is not documented (the check has
   * failed then), and the body (parsed when JSON).
   */
  async checkResponse(method: Method, template: string, res: Response): Promise<{ key: string | undefined; body: unknown; text: string }> {
    const operation = this.operation(method, template);
    const label = `${method} ${template} ${res.status}`;
    const response = operation.responses[String(res.status)];
    const text = await res.text();
    if (response === undefined) {
      return { key: undefined, body: undefined, text };
    }

    for (const [name, header] of Object.entries(response.headers ?? {})) {
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
      return { key: label, body: undefined, text };
    }
    expect(contentType, `${label} has a Content-Type`).to.not.equal(null);
    const essence = essenceOf(contentType!);
    expect(media, `${label}: Content-Type ${contentType}`).to.include(essence);
    if (method === 'head') {
      return { key: label, body: undefined, text };
    }
    const body: unknown = /^application\/(.+\+)?json$/.test(essence) ? JSON.parse(text) : text;
    const schema = response.content![essence]!.schema;
    if (schema !== undefined) {
      const validate = this.validator(schema);
      expect(validate(body), `${label}: body ${text.slice(0, 500)}: ${formatErrors(validate.errors)}`).to.equal(true);
    }
    return { key: label, body, text };
  }

  /**
   * Checks a call jetpost made to a webhook receiver against `webhooks.<name>.<method>`: the method,
   * every documented header (required ones present, values valid), no undocumented `Jetpost-*` header,
   * the Content-Type and the body schema. Returns the parsed body and the response key the receiver's
   * answer falls under (`webhook name method 2XX`), undefined when that answer is not documented.
   */
  checkWebhookCall(name: string, method: Method, call: ReceivedCall): { key: string | undefined; body: unknown } {
    const operation = this.webhookOperation(name, method);
    const label = `webhook ${name} ${method}`;
    expect(call.method, label).to.equal(method.toUpperCase());
    const documentedHeaders = new Set<string>();
    for (const parameter of operation.parameters ?? []) {
      expect(parameter.in, `${label}: ${parameter.name}: a webhook call documents headers only`).to.equal('header');
      const key = parameter.name.toLowerCase();
      documentedHeaders.add(key);
      const value = call.headers[key];
      if (parameter.required) {
        expect(value, `${label}: header ${parameter.name} is documented as required`).to.not.equal(undefined);
      }
      if (value !== undefined) {
        expect(value, `${label}: header ${parameter.name} is sent once`).to.be.a('string');
        const validate = this.validator(parameter.schema);
        expect(validate(value), `${label}: header ${parameter.name}: ${String(value)}: ${formatErrors(validate.errors)}`).to.equal(true);
      }
    }
    const ownHeaders = Object.keys(call.headers).filter((header) => header.startsWith('jetpost-'));
    expect(
      ownHeaders.filter((header) => !documentedHeaders.has(header)),
      `${label}: undocumented Jetpost-* headers`,
    ).to.deep.equal([]);

    const content = operation.requestBody?.content ?? {};
    expect(operation.requestBody?.required, `${label} documents a required body`).to.equal(true);
    const contentType = call.headers['content-type'];
    expect(contentType, `${label} has a Content-Type`).to.be.a('string');
    const essence = essenceOf(contentType!);
    expect(Object.keys(content), `${label}: Content-Type ${contentType}`).to.include(essence);
    const body: unknown = JSON.parse(call.body);
    const validate = this.validator(content[essence]!.schema);
    expect(validate(body), `${label}: body ${call.body.slice(0, 500)}: ${formatErrors(validate.errors)}`).to.equal(true);

    const status = responseKey(operation.responses, call.answered);
    return { key: status === undefined ? undefined : `${label} ${status}`, body };
  }
}
