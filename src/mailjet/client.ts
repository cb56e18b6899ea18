// The only module that talks to Mailjet: the Send API call and the look-up by CustomID through
// send-call.ts (it turns every answer, a mixed success/error 400 included, into a SendResponse that
// outcome.ts classifies), the rare callback registrations through node-mailjet.
import { createRequire } from 'node:module';

import type MailjetModule from 'node-mailjet';

import type { CallbackWrite, RegisteredCallback } from '../domain/events-callback.js';
import { toIdString, toUuidString, unstorableId } from '../domain/mailjet-ids.js';
import type { FoundMessage, LookupAnswer, SendResponse } from '../domain/mailjet-outcome.js';
import { createMailjetCall, SEND_PATH } from './send-call.js';

export interface MailjetClient {
  /** A Send API call; `body` is its JSON text (a MailjetSendBody, see sendBodyJson). */
  send(body: string): Promise<SendResponse>;
  /**
   * The messages Mailjet holds for a CustomID (one per recipient), or what Mailjet answered instead
   * of its list (an error status, a body that is no list, no answer at all). An empty list means
   * "not sent, as far as Mailjet's index knows".
   */
  findByCustomId(customId: string): Promise<LookupAnswer>;
  /** Every registration of /v3/REST/eventcallbackurl on this account. */
  listEventCallbacks(): Promise<RegisteredCallback[]>;
  /** Creates (`existingId` null) or updates one registration: grouped (Version 2) and alive. */
  saveEventCallback(write: CallbackWrite): Promise<void>;
}

export const CALLBACK_EVENT_TYPES = ['sent', 'open', 'click', 'bounce', 'spam', 'blocked', 'unsub'] as const;

interface EventCallbackRow {
  ID: number;
  EventType: string;
  IsBackup: boolean;
  Url: string;
}

export interface MailjetClientOptions {
  apiKey: string;
  apiSecret: string;
  /** e.g. https://api.mailjet.com (default) or http://127.0.0.1:4010 for the simulator. */
  baseUrl?: string | undefined;
  timeoutMs: number;
}

/** Where Mailjet's API is when MAILJET_BASE_URL is not set. */
export const MAILJET_DEFAULT_BASE_URL = 'https://api.mailjet.com';

export function createMailjetClient({ apiKey, apiSecret, baseUrl = MAILJET_DEFAULT_BASE_URL, timeoutMs }: MailjetClientOptions): MailjetClient {
  const url = new URL(baseUrl);
  const rest = restClient(url, { apiKey, apiSecret, timeoutMs });
  const call = createMailjetCall({ baseUrl: url, apiKey, apiSecret, timeoutMs });

  return {
    send: (body) => call(SEND_PATH, body),

    async findByCustomId(customId) {
      const query = new URLSearchParams({ CustomID: customId, ShowContactAlt: 'true', ShowCustomID: 'true', Limit: '1000' });
      const answer = await call(`/v3/REST/message?${query.toString()}`);
      const { status } = answer;
      if (status === null) {
        const code = answer.networkCode ?? 'ERROR';
        return { status, body: undefined, networkCode: code, description: `Mailjet unreachable (${code}) on the look-up by CustomID` };
      }
      if (status < 200 || status >= 300) {
        return { status, body: undefined, retryAfter: answer.retryAfter, description: `Mailjet ${status} on the look-up by CustomID` };
      }
      // A body that is not JSON (an HTML page, JSON cut short) or has no list is no answer: only
      // Mailjet's list says what it holds, and "not found" would resend the message.
      const rows: unknown = typeof answer.body === 'object' && answer.body !== null ? (answer.body as { Data?: unknown }).Data : undefined;
      if (!Array.isArray(rows)) {
        return { status, body: undefined, description: `Mailjet ${status} on the look-up by CustomID, without its list of messages` };
      }
      // A row without usable ids is left out, as if not found (yet): no event could reach it. ID 0 is
      // no message's (SandboxMode answers it). An ID past 2^63-1 is kept: it cannot be stored, but
      // Mailjet has the message, which must then not be sent again (lookUpResult); so is any other
      // ID of a row that names this CustomID (negative, not an integer, none), as its text. A row that names
      // another CustomID (a filter not applied, by Mailjet or a proxy) is another message's: taken
      // for this one, a message never sent, to the same address, would be recorded as accepted. One
      // naming none ('' without ShowCustomID) is kept: dropped, a message sent would be sent again.
      // A row without its address (ShowContactAlt ignored) is kept with none when it names this
      // CustomID: Mailjet took a message of the job. Naming none either, it could be any message of
      // the account: the answer cannot say "not sent", so it counts as none.
      const found: FoundMessage[] = [];
      for (const row of rows as Array<Record<string, unknown>>) {
        const named = typeof row['CustomID'] === 'string' ? row['CustomID'] : '';
        const messageId = toIdString(row['ID']) ?? unstorableId(row['ID']) ?? (named === customId ? idText(row['ID']) : undefined);
        const messageUuid = toUuidString(row['UUID']);
        const email = typeof row['ContactAlt'] === 'string' && row['ContactAlt'] !== '' ? row['ContactAlt'] : null;
        if (messageId === undefined || messageId === '0' || messageUuid === undefined || (named !== '' && named !== customId)) {
          continue;
        }
        if (email === null && named === '') {
          return {
            status,
            body: undefined,
            description: `Mailjet ${status} on the look-up by CustomID, with a row that names neither its address nor its CustomID`,
          };
        }
        found.push({ messageId, messageUuid, email, ...(named === '' ? {} : { named: true }) });
      }
      return found;
    },

    async listEventCallbacks() {
      // The list's default page size is 10; Mailjet keeps at most 14 (7 types, backup or not).
      const listed = await rest().get('eventcallbackurl', { version: 'v3' }).request({}, { Limit: 1000 });
      return ((listed.body as { Data?: EventCallbackRow[] }).Data ?? []).map((row) => ({
        id: row.ID,
        eventType: row.EventType,
        url: row.Url,
        isBackup: row.IsBackup,
      }));
    },

    async saveEventCallback({ eventType, isBackup, url, existingId }) {
      // Mailjet keeps one URL per (EventType, IsBackup) and answers a second POST with MJ18: an existing one is updated in place.
      const body = { EventType: eventType, Url: url.toString(), Version: 2, IsBackup: isBackup, Status: 'alive' };
      if (existingId === null) {
        await rest().post('eventcallbackurl', { version: 'v3' }).request(body);
      } else {
        await rest().put('eventcallbackurl', { version: 'v3' }).id(existingId).request(body);
      }
    },
  };
}

type MailjetRest = InstanceType<typeof MailjetModule.default>;

// node-mailjet 6 is CommonJS whose module.exports is the class itself (no `default`); TypeScript's
// NodeNext view of its declarations gets that wrong, so it is loaded with require (cached by Node).
const require = createRequire(import.meta.url);

/**
 * node-mailjet for the callback registrations, loaded at the first of them: with axios and its
 * dependencies it holds about 18 MiB, which the service (it only sends and looks up) never needs.
 */
function restClient(url: URL, { apiKey, apiSecret, timeoutMs }: Omit<MailjetClientOptions, 'baseUrl'>): () => MailjetRest {
  let client: MailjetRest | undefined;
  return () => {
    const Mailjet = require('node-mailjet') as typeof MailjetModule.default;
    // node-mailjet builds URLs as `https://` + host; the protocol is a static of its Request class, so a
    // plain-HTTP base (the simulator) switches it for the process. One process talks to one Mailjet.
    (Mailjet.Request as unknown as { protocol: string }).protocol = url.protocol === 'http:' ? 'http://' : 'https://';
    if (client === undefined) {
      client = new Mailjet({
        apiKey,
        apiSecret,
        config: { host: `${url.host}${url.pathname.replace(/\/+$/, '')}`, version: 'v3.1', output: 'json' },
        // v6 has no default timeout: without one a stalled connection would hold the command for ever.
        options: { timeout: timeoutMs },
      });
    }
    return client;
  };
}

/**
 * An ID that is no MessageID, as the error naming it shows it (a long integer comes as its text). A
 * number past 2^53 written otherwise (5.764607655030915e17) has lost digits: its plain digits would
 * pass for a MessageID, so it is shown in exponent form.
 */
function idText(id: unknown): string {
  if (typeof id === 'number' && Number.isInteger(id) && !Number.isSafeInteger(id)) {
    return id.toExponential();
  }
  return typeof id === 'string' || typeof id === 'number' || typeof id === 'bigint' ? String(id) : (JSON.stringify(id) ?? 'none');
}
