/**
 * Mailjet simulator: a standalone node:http server that speaks the parts of Mailjet jetpost uses, for
 * dev mode, end-to-end tests and benchmarks. It imports nothing else from jetpost.
 *
 * - POST /v3.1/send validates like Mailjet (send.ts): a global error for a bad request, a mixed 400
 *   (403 for an unauthorized From) when some messages fail (the others are still accepted), HTML 413
 *   over 15 MB. Each recipient gets a MessageID above 2^53 written as a raw JSON integer (json.ts).
 *   It keeps Mailjet's campaigns (campaigns.ts), honours tracking, URLTags, DeduplicateCampaign and
 *   TemplateErrorDeliver in the events it schedules; SandboxMode records and calls back nothing.
 * - GET /v3/REST/message[?CustomID=…] and /v3/REST/message/{id} report the accepted messages with the
 *   status their events have reached ("queued" before any). Only the last maxMessages are kept
 *   (message-store.ts): an older one is not found, as at Mailjet for a message it no longer lists.
 * - /v3/REST/eventcallbackurl keeps registrations in memory (callback-urls.ts). Events of a type go to
 *   its registered URL, else to options.callbackUrl (callbacks.ts holds the scenario table). Failed
 *   callbacks are retried on Mailjet's schedule, divided by options.timeScale, and a URL that keeps
 *   failing is suspended until it is registered again.
 * - Faults (faults.ts) add latency, 429 / 500 / unanswered calls, per-message errors, failed look-ups by
 *   CustomID, look-ups without ContactAlt, and dropped, duplicated or reordered events. Set them in code (simulator.faults) or over /_sim/faults.
 * - sendCallLog() and lookupLog() keep the send calls (their CustomIDs and how each was answered) and the
 *   look-ups by CustomID, so a test can count what was sent twice and what a look-up saved: the last
 *   ones, within maxMessages (CustomIDs for the calls), like the messages.
 * - When apiKey and apiSecret are both set, every Mailjet route needs HTTP Basic auth with them.
 *   The /_sim/* routes (health, messages, reset, faults) never do.
 *
 * Routing reads only the pathname, so a client that reaches the simulator as an HTTP proxy
 * (absolute-form request line, Host: api.mailjet.com) is served too.
 */
import { randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { createCallbackUrlRegistry } from './callback-urls.js';
import { type CallbackLoop, type CallbackTarget, createCallbackLoop, type EventType, isHttpUrl } from './callbacks.js';
import { type Campaigns, createCampaigns } from './campaigns.js';
import { type CallOutcome, createFaults, type FaultController, type Faults, MAX_BODY_BYTES, parseFaultSettings } from './faults.js';
import { Fifo } from './fifo.js';
import { toJson } from './json.js';
import { createMessageStore, type MessageStore, toMessageResource } from './message-store.js';
import { createRandom, type Random } from './random.js';
import { notFound, RestError, restOne, restPage } from './rest.js';
import { createMessageIdSequence, customIdsOf, processSend, type RecipientIdentity, type SimulatedMessage } from './send.js';

export type { CallOutcome, FaultController, FaultSettings } from './faults.js';
export type { BlockReason, InjectableErrorCode, MessageStatus, RecipientKind, SimulatedMessage, SimulatedRecipient } from './send.js';

export interface SimulatorOptions {
  /** When both are set, every Mailjet route requires HTTP Basic auth with them. */
  apiKey?: string | undefined;
  apiSecret?: string | undefined;
  /** Where events are POSTed unless a /v3/REST/eventcallbackurl registration says otherwise; may embed user:pass. */
  callbackUrl?: string | undefined;
  /** true (default): JSON arrays of at most 1,000 events (Version 2); false: one bare object per POST. */
  grouped?: boolean | undefined;
  /** How often due events are flushed (default 250 ms). */
  flushIntervalMs?: number | undefined;
  /** Milliseconds after the send (defaults 100 / 400 / 700). */
  eventDelaysMs?: { sent?: number; open?: number; click?: number } | undefined;
  /**
   * Divides Mailjet's callback timings: a failed event is tried again every 30 s / timeScale, and a
   * URL still failing 24 h / timeScale after its first failure is suspended. Default 1 (Mailjet's own);
   * e.g. 2880 gives 10 ms and 30 s.
   */
  timeScale?: number | undefined;
  /** Overrides the wait before a failed event is tried again (default 30 000 ms / timeScale). */
  callbackRetryDelayMs?: number | undefined;
  /** What TrackOpens / TrackClicks "account_default" (or no value) means: the account's settings (default: both tracked). */
  accountTracking?: { opens?: boolean; clicks?: boolean } | undefined;
  /** The MonitoringCategory names that exist for the key; others get send-0013. Default: every name exists. */
  monitoringCategories?: readonly string[] | undefined;
  /** Seeds the generator behind ids and faults; a run with the same seed repeats them. */
  seed?: number | undefined;
  /**
   * How many accepted messages are kept (default DEFAULT_MAX_MESSAGES); past it the oldest is
   * forgotten, with its events still waiting: looked up, it is not found, as at Mailjet for a message
   * it no longer lists. Without a cap a dev run left sending grew without end.
   */
  maxMessages?: number | undefined;
  /** Default: no output. */
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

/** One POST /v3.1/send call, as the simulator saw and answered it. */
export interface SendCallRecord {
  /** When the call arrived. */
  at: Date;
  /** What the faults chose ('ok' for a normal answer), 'unauthorized' for bad credentials, 'too-large' for a 413. */
  outcome: CallOutcome | 'unauthorized' | 'too-large';
  /** The HTTP status answered; undefined for a held call (a timeout: the client never got an answer). */
  status: number | undefined;
  /** The CustomID of each message of the call, in order ('' when absent; empty for a 401 or 413, whose body is not kept). */
  customIds: string[];
  /** The CustomIDs of the messages accepted (recorded and called back), including those of a timeout that accepts. */
  accepted: string[];
}

/** One GET /v3/REST/message?CustomID=… call. */
export interface LookupRecord {
  at: Date;
  customId: string;
  /** 200, or 500 when the lookupErrorRatio fault failed it. */
  status: number;
  /** Rows found: one per recipient of every message sent with this CustomID (0 for a failed look-up). */
  found: number;
}

export interface Simulator {
  /** Resolves the base URL, e.g. "http://127.0.0.1:4010"; port 0 picks a free port. */
  listen(port?: number, host?: string): Promise<string>;
  /** Stops the server, the callback timer, deliveries in flight and held responses; nothing stays open. */
  close(): Promise<void>;
  readonly url: string | undefined;
  /** The messages accepted and kept (the last maxMessages), in order; a message sent twice appears twice. */
  readonly messages: readonly SimulatedMessage[];
  /** Messages accepted, then forgotten to stay within maxMessages, since the start or the last reset. */
  droppedMessages(): number;
  /** POST /v3.1/send calls received, whatever their outcome. */
  sendCalls(): number;
  /** The POST /v3.1/send calls in arrival order, with their CustomIDs and outcome: the last ones, holding at most maxMessages CustomIDs. */
  sendCallLog(): readonly SendCallRecord[];
  /** The look-ups of messages by CustomID, in arrival order: the last maxMessages. */
  lookupLog(): readonly LookupRecord[];
  /** Sets the default callback URL; setting it again also ends its suspension. */
  setCallbackUrl(url: string | undefined): void;
  /** 'dead' once the default callback URL kept failing for the retry window; undefined when there is none. */
  callbackUrlStatus(): 'alive' | 'dead' | undefined;
  readonly faults: FaultController;
  /** Delivers every scheduled event that is due now. */
  flushEvents(): Promise<void>;
  pendingEvents(): number;
  /** Forgets messages, calls (and their logs), pending events, faults and campaigns; callback registrations stay. */
  reset(): void;
}

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** A send call the faults chose never to answer: the socket is held until the client gives up. */
const HOLD = Symbol('hold');
type Outcome = Reply | typeof HOLD;

interface RouteRequest {
  params: string[];
  query: URLSearchParams;
  /** Throws PayloadTooLargeError past limitBytes (default MAX_BODY_BYTES). */
  body: (limitBytes?: number) => Promise<string>;
}

interface Route {
  method: string;
  path: RegExp;
  handle(request: RouteRequest): Outcome | Promise<Outcome>;
}

const SEND_PATH = '/v3.1/send';
/** Mailjet's Event API: a failed callback is tried again every 30 s, for 24 h after the first failure. */
const MAILJET_RETRY_INTERVAL_MS = 30_000;
const MAILJET_RETRY_WINDOW_MS = 24 * 60 * 60 * 1000;
/** The id of the default callback URL among the targets (registrations use their numeric ID). */
const DEFAULT_TARGET_ID = 'default';
/** Salt for the fault generator's seed, so faults and ids draw from separate sequences. */
const FAULT_SEED_SALT = 0x5bd1e995;
const DEFAULT_DELAYS = { sent: 100, open: 400, click: 700 };
/**
 * Measured with one recipient a message: about 1 KiB of heap each with its indexes and log entries,
 * 2 KiB while its events wait for a callback URL that is down (100 MB and 200 MB at this default).
 */
export const DEFAULT_MAX_MESSAGES = 100_000;
const AUTH_FAILURE_MESSAGE =
  'API key authentication/authorization failure. You may be unauthorized to access the API or your API key may be expired. Visit API keys management section to check your keys.';

class PayloadTooLargeError extends Error {}

export function createSimulator(options: SimulatorOptions = {}): Simulator {
  return new MailjetSimulator(options);
}

class MailjetSimulator implements Simulator {
  private readonly random: Random;
  private readonly faultState: Faults;
  private readonly nextMessageId: () => bigint;
  private readonly store: MessageStore;
  private readonly callbackUrls = createCallbackUrlRegistry();
  private readonly loop: CallbackLoop;
  private readonly contactIds = new Map<string, number>();
  /**
   * The addresses of contactIds, oldest first. Past maxMessages the oldest is forgotten, as a run with
   * a new address per message would otherwise grow it without end; it gets a new id if it comes back.
   */
  private readonly contactOrder = new Fifo<string>();
  private lastContactId = 0;
  private readonly campaigns: Campaigns;
  private readonly log: NonNullable<SimulatorOptions['log']>;
  private callbackUrl: string | undefined;
  private callbackUrlSuspended = false;
  private calls = 0;
  private readonly maxMessages: number;
  private callLog = new Fifo<SendCallRecord>();
  /** The CustomIDs the call log holds: with its calls, at most maxMessages (a call carries up to 50). */
  private callLogIds = 0;
  private lookups = new Fifo<LookupRecord>();
  private server: Server | undefined;
  private baseUrl: string | undefined;
  /** Aborted by close(), ending latency waits. */
  private lifetime = new AbortController();

  private readonly routes: Route[] = [
    { method: 'POST', path: /^\/v3\.1\/send$/, handle: (request) => this.send(request) },
    { method: 'GET', path: /^\/v3\/REST\/message$/, handle: (request) => this.listMessages(request) },
    { method: 'GET', path: /^\/v3\/REST\/message\/([^/]+)$/, handle: (request) => this.getMessage(request) },
    {
      method: 'GET',
      path: /^\/v3\/REST\/eventcallbackurl$/,
      handle: ({ query }) => json(200, restPage(this.callbackUrls.list(query), query)),
    },
    {
      method: 'POST',
      path: /^\/v3\/REST\/eventcallbackurl$/,
      handle: async ({ body }) => json(201, restOne(this.callbackUrls.create(parseRestBody(await body())))),
    },
    {
      method: 'GET',
      path: /^\/v3\/REST\/eventcallbackurl\/([^/]+)$/,
      handle: ({ params }) => json(200, restOne(this.callbackUrls.get(params[0] ?? ''))),
    },
    {
      method: 'PUT',
      path: /^\/v3\/REST\/eventcallbackurl\/([^/]+)$/,
      handle: async ({ params, body }) => json(200, restOne(this.callbackUrls.update(params[0] ?? '', parseRestBody(await body())))),
    },
    {
      method: 'DELETE',
      path: /^\/v3\/REST\/eventcallbackurl\/([^/]+)$/,
      handle: ({ params }) => {
        this.callbackUrls.remove(params[0] ?? '');
        return { status: 204 };
      },
    },
    { method: 'GET', path: /^\/_sim\/health$/, handle: () => json(200, { status: 'ok' }) },
    { method: 'GET', path: /^\/_sim\/messages$/, handle: () => json(200, this.describeMessages()) },
    {
      method: 'POST',
      path: /^\/_sim\/reset$/,
      handle: () => {
        this.reset();
        return { status: 204 };
      },
    },
    { method: 'GET', path: /^\/_sim\/faults$/, handle: () => json(200, this.faultState.get()) },
    { method: 'POST', path: /^\/_sim\/faults$/, handle: async ({ body }) => this.setFaults(await body()) },
    {
      method: 'DELETE',
      path: /^\/_sim\/faults$/,
      handle: () => {
        this.faultState.clear();
        return { status: 204 };
      },
    },
  ];

  constructor(private readonly options: SimulatorOptions) {
    const seed = options.seed ?? randomInt(2 ** 32);
    this.random = createRandom(seed);
    this.faultState = createFaults(createRandom(seed ^ FAULT_SEED_SALT));
    this.nextMessageId = createMessageIdSequence(this.random);
    this.log = options.log ?? (() => undefined);
    this.maxMessages = options.maxMessages ?? DEFAULT_MAX_MESSAGES;
    if (!(Number.isSafeInteger(this.maxMessages) && this.maxMessages > 0)) {
      throw new RangeError(`maxMessages must be a positive integer, got ${this.maxMessages}`);
    }
    this.store = createMessageStore(this.maxMessages);
    this.campaigns = createCampaigns(this.maxMessages);
    this.setCallbackUrl(options.callbackUrl);
    const timeScale = options.timeScale ?? 1;
    if (!(Number.isFinite(timeScale) && timeScale > 0)) {
      throw new RangeError(`timeScale must be a positive number, got ${timeScale}`);
    }
    const retryIntervalMs = options.callbackRetryDelayMs ?? MAILJET_RETRY_INTERVAL_MS / timeScale;
    if (!(Number.isFinite(retryIntervalMs) && retryIntervalMs >= 0)) {
      throw new RangeError(`callbackRetryDelayMs must be a non-negative number, got ${retryIntervalMs}`);
    }
    this.loop = createCallbackLoop({
      delays: { ...DEFAULT_DELAYS, ...options.eventDelaysMs },
      flushIntervalMs: options.flushIntervalMs ?? 250,
      retryIntervalMs,
      retryWindowMs: MAILJET_RETRY_WINDOW_MS / timeScale,
      targetFor: (type) => this.targetFor(type),
      forgot: (message) => this.store.forgot(message),
      suspend: (target) => this.suspend(target),
      faults: this.faultState,
      log: this.log,
    });
  }

  get url(): string | undefined {
    return this.baseUrl;
  }

  get messages(): readonly SimulatedMessage[] {
    return this.store.messages;
  }

  get faults(): FaultController {
    return this.faultState;
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    if (this.server !== undefined) {
      throw new Error(`the simulator already listens on ${this.baseUrl}`);
    }
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.lifetime = new AbortController();
    this.baseUrl = `http://${urlHost(host)}:${(server.address() as AddressInfo).port}`;
    this.loop.start();
    return this.baseUrl;
  }

  async close(): Promise<void> {
    this.lifetime.abort();
    await this.loop.stop();
    const server = this.server;
    this.server = undefined;
    this.baseUrl = undefined;
    if (server !== undefined) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Also ends keep-alive sockets and held (timed-out) calls, which would keep close() waiting.
        server.closeAllConnections();
      });
    }
  }

  droppedMessages(): number {
    return this.store.dropped;
  }

  sendCalls(): number {
    return this.calls;
  }

  sendCallLog(): readonly SendCallRecord[] {
    return this.callLog.view();
  }

  lookupLog(): readonly LookupRecord[] {
    return this.lookups.view();
  }

  setCallbackUrl(url: string | undefined): void {
    if (url !== undefined && !isHttpUrl(url)) {
      throw new RangeError(`callback URL must be an absolute http(s) URL, got "${url}"`);
    }
    this.callbackUrl = url;
    this.callbackUrlSuspended = false;
  }

  callbackUrlStatus(): 'alive' | 'dead' | undefined {
    if (this.callbackUrl === undefined) {
      return undefined;
    }
    return this.callbackUrlSuspended ? 'dead' : 'alive';
  }

  flushEvents(): Promise<void> {
    return this.loop.flush();
  }

  pendingEvents(): number {
    return this.loop.pending();
  }

  reset(): void {
    this.store.clear();
    this.calls = 0;
    // New logs, so a log a caller holds keeps its content.
    this.callLog = new Fifo();
    this.callLogIds = 0;
    this.lookups = new Fifo();
    this.loop.clear();
    this.faultState.clear();
    this.campaigns.clear();
  }

  /** Like the messages, the logs keep the last maxMessages: the oldest go first, so a log a caller holds keeps its content. */
  private logCall(record: SendCallRecord): void {
    while (this.callLog.size > 0 && (this.callLog.size >= this.maxMessages || this.callLogIds + record.customIds.length > this.maxMessages)) {
      this.callLogIds -= this.callLog.shift()!.customIds.length;
    }
    this.callLog.push(record);
    this.callLogIds += record.customIds.length;
  }

  private logLookup(record: LookupRecord): void {
    if (this.lookups.size >= this.maxMessages) {
      this.lookups.shift();
    }
    this.lookups.push(record);
  }

  private targetFor(type: EventType): CallbackTarget | undefined {
    const registered = this.callbackUrls.targetFor(type);
    if (registered !== undefined) {
      return registered;
    }
    if (this.callbackUrl === undefined || this.callbackUrlSuspended) {
      return undefined;
    }
    return { url: this.callbackUrl, grouped: this.options.grouped ?? true, id: DEFAULT_TARGET_ID };
  }

  private suspend(target: CallbackTarget): void {
    if (target.id === DEFAULT_TARGET_ID) {
      // Only if it is still the URL that failed: a URL set meanwhile starts alive (the registry does the same).
      this.callbackUrlSuspended ||= target.url === this.callbackUrl;
    } else {
      this.callbackUrls.suspend(target.id, target.url);
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const outcome = await this.dispatch(req);
      // A held response is left open: the client gives up, or close() destroys its connection.
      if (outcome !== HOLD) {
        writeReply(res, outcome);
      }
    } catch (error) {
      if (this.lifetime.signal.aborted) {
        res.destroy();
        return;
      }
      const errorId = this.random.uuid();
      this.log('simulator request failed', { errorId, error: error instanceof Error ? error.message : String(error) });
      writeReply(res, json(500, { ErrorIdentifier: errorId, StatusCode: 500, ErrorMessage: 'Internal Server Error' }));
    }
  }

  private async dispatch(req: IncomingMessage): Promise<Outcome> {
    // A request target no URL can be made of ("http://[bad") is the client's error, as at Mailjet's front end.
    const url = URL.canParse(req.url ?? '/', 'http://simulator') ? new URL(req.url ?? '/', 'http://simulator') : undefined;
    if (url === undefined) {
      return htmlPage(400, 'Bad Request');
    }
    const method = req.method ?? 'GET';
    if (method === 'POST' && url.pathname === SEND_PATH) {
      this.calls++;
    }
    if (!url.pathname.startsWith('/_sim/') && !this.authorized(req)) {
      if (method === 'POST' && url.pathname === SEND_PATH) {
        this.logCall({ at: new Date(), outcome: 'unauthorized', status: 401, customIds: [], accepted: [] });
      }
      return this.unauthorized();
    }
    for (const route of this.routes) {
      const match = route.method === method ? route.path.exec(url.pathname) : null;
      if (match !== null) {
        return this.run(route, { params: match.slice(1), query: url.searchParams, body: (limitBytes) => readBody(req, limitBytes) });
      }
    }
    return json(404, notFound().toBody());
  }

  private async run(route: Route, request: RouteRequest): Promise<Outcome> {
    try {
      return await route.handle(request);
    } catch (error) {
      if (error instanceof RestError) {
        return json(error.status, error.toBody());
      }
      if (error instanceof PayloadTooLargeError) {
        return htmlPage(413, 'Request Entity Too Large');
      }
      throw error;
    }
  }

  /** Mailjet's answer to credentials it refuses. */
  private unauthorized(): Reply {
    return json(401, { ErrorIdentifier: this.random.uuid(), ErrorCode: 'mj-0015', StatusCode: 401, ErrorMessage: AUTH_FAILURE_MESSAGE });
  }

  private authorized(req: IncomingMessage): boolean {
    const { apiKey, apiSecret } = this.options;
    if (apiKey === undefined || apiSecret === undefined) {
      return true;
    }
    const [scheme = '', encoded = ''] = (req.headers.authorization ?? '').split(' ');
    return scheme.toLowerCase() === 'basic' && Buffer.from(encoded, 'base64').toString() === `${apiKey}:${apiSecret}`;
  }

  /**
   * Faults are decided before validation. An accepted call is processed before the latency wait, so a
   * client that gives up during it has still sent its messages, as with a slow Mailjet.
   */
  private async send({ body }: RouteRequest): Promise<Outcome> {
    const at = new Date();
    const text = await body(this.faultState.get().maxBodyBytes).catch((error: unknown) => {
      // Mailjet's gateway refuses it before any fault or validation could apply.
      if (error instanceof PayloadTooLargeError) {
        this.logCall({ at, outcome: 'too-large', status: 413, customIds: [], accepted: [] });
      }
      throw error;
    });
    const outcome = this.faultState.nextCallOutcome();
    const { latencyMs = 0, retryAfterSeconds, timeoutAccepts = true } = this.faultState.get();
    let reply: Outcome;
    let accepted: SimulatedMessage[] = [];
    if (outcome === '429') {
      reply = htmlPage(429, 'Too Many Requests', retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) });
    } else if (outcome === '500') {
      reply = json(500, { ErrorIdentifier: this.random.uuid(), StatusCode: 500, ErrorMessage: 'Internal Server Error' });
    } else if (outcome === '503') {
      reply = htmlPage(503, 'Service Unavailable');
    } else if (outcome === '401') {
      reply = this.unauthorized();
    } else if (outcome === 'timeout') {
      reply = HOLD;
      if (timeoutAccepts) {
        accepted = this.accept(text).accepted;
      }
    } else {
      const result = this.accept(text);
      reply = result.reply;
      accepted = result.accepted;
    }
    this.logCall({
      at,
      outcome,
      status: reply === HOLD ? undefined : reply.status,
      customIds: customIdsOf(text),
      accepted: accepted.map((message) => message.customId),
    });
    this.log('send call', { outcome, status: reply === HOLD ? 'held' : reply.status });
    if (latencyMs > 0) {
      await sleep(latencyMs, undefined, { signal: this.lifetime.signal });
    }
    return reply;
  }

  private accept(text: string): { reply: Reply; accepted: SimulatedMessage[] } {
    const { accountTracking, monitoringCategories } = this.options;
    const reply = processSend(text, {
      identify: (email) => this.identify(email),
      errorId: () => this.random.uuid(),
      messageError: this.faultState.messageError(),
      accountTracking: { opens: accountTracking?.opens ?? true, clicks: accountTracking?.clicks ?? true },
      monitoringCategoryExists: (name) => monitoringCategories === undefined || monitoringCategories.includes(name),
      campaign: (name) => this.campaigns.campaign(name),
      receivedAt: new Date(),
    });
    for (const message of reply.accepted) {
      this.store.add(message);
      this.loop.schedule(message);
    }
    return { reply: json(reply.status, reply.body), accepted: reply.accepted };
  }

  private identify(email: string): RecipientIdentity {
    const address = email.toLowerCase();
    let contactId = this.contactIds.get(address);
    if (contactId === undefined) {
      if (this.contactOrder.size >= this.maxMessages) {
        this.contactIds.delete(this.contactOrder.shift()!);
      }
      contactId = ++this.lastContactId;
      this.contactIds.set(address, contactId);
      this.contactOrder.push(address);
    }
    return { messageId: this.nextMessageId(), messageUuid: this.random.uuid(), contactId };
  }

  private listMessages({ query }: RouteRequest): Reply {
    const customId = query.get('CustomID') ?? undefined;
    if (customId !== undefined && this.faultState.lookupFails()) {
      this.logLookup({ at: new Date(), customId, status: 500, found: 0 });
      return json(500, { ErrorInfo: '', ErrorMessage: 'Internal Server Error', StatusCode: 500 });
    }
    const rows = this.store.list(customId);
    if (customId !== undefined) {
      this.logLookup({ at: new Date(), customId, status: 200, found: rows.length });
    }
    const shown = shownFields(query, this.faultState.hidesContactAlt());
    const page = restPage(rows, query);
    return json(200, { ...page, Data: page.Data.map((row) => toMessageResource(row, shown)) });
  }

  private getMessage({ params, query }: RouteRequest): Reply {
    const row = this.store.findById(params[0] ?? '');
    if (row === undefined) {
      throw notFound();
    }
    return json(200, restOne(toMessageResource(row, shownFields(query, this.faultState.hidesContactAlt()))));
  }

  /** The /_sim/messages view: MessageIDs as strings, so any JSON client reads them exactly. */
  private describeMessages(): Record<string, unknown> {
    return {
      messages: this.store.messages.map((message) => ({
        ...message,
        recipients: message.recipients.map((recipient) => ({ ...recipient, messageId: recipient.messageId.toString() })),
      })),
      droppedMessages: this.store.dropped,
      sendCalls: this.calls,
      pendingEvents: this.loop.pending(),
    };
  }

  private setFaults(text: string): Reply {
    try {
      this.faultState.set(parseFaultSettings(JSON.parse(text)));
    } catch (error) {
      throw new RestError(400, error instanceof Error ? error.message : String(error));
    }
    return json(200, this.faultState.get());
  }
}

/** The optional fields a message read asks for (ShowCustomID, ShowContactAlt); the lookupHidesContactAlt fault ignores the second. */
function shownFields(query: URLSearchParams, hideContactAlt: boolean): { showCustomId: boolean; showContactAlt: boolean } {
  return { showCustomId: query.get('ShowCustomID') === 'true', showContactAlt: !hideContactAlt && query.get('ShowContactAlt') === 'true' };
}

function parseRestBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new RestError(400, 'Malformed JSON.');
  }
}

/** Reads the whole body; past the limit it keeps draining the socket so the 413 can still be read. */
async function readBody(req: IncomingMessage, limitBytes = MAX_BODY_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= limitBytes) {
      chunks.push(chunk);
    }
  }
  if (size > limitBytes) {
    throw new PayloadTooLargeError();
  }
  return Buffer.concat(chunks).toString('utf8');
}

function json(status: number, value: unknown): Reply {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8' }, body: toJson(value) };
}

/** A gateway page like the ones Mailjet's front end answers 413 and 429 with. */
function htmlPage(status: number, title: string, headers: Record<string, string> = {}): Reply {
  const heading = `${status} ${title}`;
  return {
    status,
    headers: { 'content-type': 'text/html', ...headers },
    body: `<html><head><title>${heading}</title></head><body><center><h1>${heading}</h1></center><hr><center>nginx</center></body></html>`,
  };
}

function writeReply(res: ServerResponse, reply: Reply): void {
  const headers = reply.body === undefined ? reply.headers : { ...reply.headers, 'content-length': String(Buffer.byteLength(reply.body)) };
  res.writeHead(reply.status, headers);
  res.end(reply.body);
}

/** A host for the base URL: wildcard addresses are reached on loopback, IPv6 goes in brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') {
    return '127.0.0.1';
  }
  return host.includes(':') ? `[${host}]` : host;
}
