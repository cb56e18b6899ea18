// jetpost's typed TypeScript client: the types openapi-typescript generates from openapi.yaml
// (schema.d.ts, `npm run client:generate`) and openapi-fetch, which checks every path, parameter,
// body and answer against them. An app copies this folder and installs openapi-fetch.
import createClient, { type Client, type ClientOptions } from 'openapi-fetch';

import type { components, paths } from './schema.js';

export type { components, paths };
export type JetpostClient = Client<paths>;

type Schemas = components['schemas'];
export type Message = Schemas['Message'];
export type BulkRequest = Schemas['BulkRequest'];
export type QueuedJob = Schemas['QueuedJob'];
export type Job = Schemas['Job'];
export type JobList = Schemas['JobList'];
export type Recipient = Schemas['Recipient'];
export type Change = Schemas['Change'];
export type ChangesFeed = Schemas['ChangesFeed'];
export type Problem = Schemas['Problem'];

export interface JetpostClientOptions {
  /** Where jetpost answers, e.g. `https://jetpost.internal.example.com`. */
  baseUrl: string;
  /** The app's API key (`jp_…`), sent as a bearer token; the admin key for the admin routes. */
  apiKey: string;
  /** Another fetch (a test double, a proxy agent); the global one by default. */
  fetch?: ClientOptions['fetch'];
}

/** A client whose calls answer `{ data }` on success and `{ error }` (a problem) otherwise. */
export function createJetpostClient({ baseUrl, apiKey, fetch }: JetpostClientOptions): JetpostClient {
  return createClient<paths>({ baseUrl, ...(fetch === undefined ? {} : { fetch }), headers: { authorization: `Bearer ${apiKey}` } });
}
