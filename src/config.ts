// The only reader of process.env: every setting is parsed and checked here once, at start,
// so that a bad value stops the process with a message naming the variable.
import { constants as bufferConstants } from 'node:buffer';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import bytes from 'bytes';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';

import { addressBlock, targetListProblems } from './domain/target-policy.js';

/** The accepted range of each number and size setting, as its refusal and docs/configuration.md state it. */
const RANGES = new Map<z.ZodType, string>();
function ranged<T extends z.ZodType>(schema: T, range: string): T {
  RANGES.set(schema, range);
  return schema;
}
/** 65535 → "65,535": ranges are read by people. */
const figure = (value: number) => value.toLocaleString('en-US');

// Numbers in plain decimal only: Number() would also read '0x10' as 16, '0b11' as 3 and '1e3' as
// 1000, so a typo would start the service with a value nobody wrote. A refusal names the value and
// the range.
const integer = (min: number, max: number) => {
  const range = `a whole number from ${figure(min)} to ${figure(max)}`;
  return ranged(
    z
      .string()
      .trim()
      .refine((value) => /^-?\d+$/.test(value) && Number(value) >= min && Number(value) <= max, {
        error: (issue) => `"${String(issue.input)}" is not ${range}`,
      })
      .transform(Number),
    range,
  );
};
const decimal = (min: number, max: number) => {
  const range = `a decimal number from ${figure(min)} to ${figure(max)}`;
  return ranged(
    z
      .string()
      .trim()
      .refine((value) => /^-?(\d+(\.\d*)?|\.\d+)$/.test(value) && Number(value) >= min && Number(value) <= max, {
        error: (issue) => `"${String(issue.input)}" is not ${range} (such as 2 or 0.25)`,
      })
      .transform(Number),
    range,
  );
};
/** What bytes.parse reads as a size: bytes, or a number with kb, mb, gb, tb or pb. */
const SIZE_FORMAT = /^(\d+ *b?|\d+(\.\d+)? *(kb|mb|gb|tb|pb))$/i;
/**
 * A size as body-parser reads it, from 1 byte (or `minText`, checked by the caller) to `max`. bytes.parse alone would read '1e400' as 1
 * byte and '64 apples' as 64.
 */
const size = (max: number, maxText: string, minText = '1 byte') => {
  const range = `a size from ${minText} to ${maxText}`;
  return ranged(
    z
      .string()
      .trim()
      .refine((value) => SIZE_FORMAT.test(value) && (bytes.parse(value) ?? 0) >= 1 && (bytes.parse(value) ?? 0) <= max, {
        error: (issue) => `"${String(issue.input)}" is not ${range} (e.g. 64mb)`,
      }),
    range,
  );
};
/**
 * A request body's limit: a body is read whole and decoded into one string (its JSON text), and Node
 * holds no string longer than this many characters (about 512 MB), so a larger limit could never
 * be honoured: decoding such a body throws (ERR_STRING_TOO_LONG), after the client has sent all of it.
 */
const bodyLimit = () =>
  size(bufferConstants.MAX_STRING_LENGTH, `${figure(bufferConstants.MAX_STRING_LENGTH)} bytes (about 512mb, the longest text Node holds)`);
/**
 * The bytes of a route's bodies in progress are held in memory: a budget past this machine's memory
 * could never be used, and protects nothing (its floor, the route's body limit, is checked in loadConfig).
 */
const bodyBudget = (limitName: string) => size(os.totalmem(), "this machine's memory", limitName);
const httpUrl = z.url({ protocol: /^https?$/, error: 'an http(s) URL' });
// What pg reads: postgres:// or postgresql://, or socket: for a Unix socket.
const postgresUrl = z.url({ protocol: /^(postgres(ql)?|socket)$/, error: 'a postgres:// URL (or postgresql://, socket:)' });
/**
 * Where to listen: an address, or a host name (labels of letters, digits and hyphens; it must
 * resolve on this machine). A name's last label is never all digits: `999.1.1.1` or `10.0.0` is a
 * mistyped address, which the resolver would otherwise be asked about, after the migrations.
 */
const listenHost = z
  .string()
  .trim()
  .refine((value) => isIP(value) !== 0 || isHostName(value), {
    error: (issue) => `"${String(issue.input)}" is neither an IP address nor a host name (give an address of this machine, or 0.0.0.0 for all)`,
  });

function isHostName(value: string): boolean {
  const labels = value.replace(/\.$/, '').split('.');
  return value.length <= 253 && labels.every((label) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(label)) && !/^\d+$/.test(labels.at(-1)!);
}
// Every duration stays below 2^31 - 1 ms: Node runs a longer timer after 1 ms.
const positiveMs = integer(1, 7 * 24 * 3600 * 1000);
const optionalText = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();
/** One of `values`, as written; a refusal names the value given and the choices, as a number's does. */
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: (issue) => `${JSON.stringify(issue.input)} is not one of ${values.join(', ')}` });
const booleanFlag = oneOf(['true', 'false', '1', '0', 'yes', 'no']).transform((value) => ['true', '1', 'yes'].includes(value));

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** TRUST_PROXY as express reads it: true, false, a hop count, or a list proxy-addr compiles (checked here, not as a stack trace at start). */
function trustedProxiesValid(value: string): boolean {
  if (/^(true|false|\d{1,2})$/.test(value)) {
    return true;
  }
  return value.split(',').every((item) => {
    const entry = item.trim();
    if (PROXY_NAMES.has(entry)) {
      return true;
    }
    // An IPv4 block may also be written with a netmask, such as 10.0.0.0/255.0.0.0.
    const [address, mask, extra] = entry.split('/') as [string, string | undefined, string | undefined];
    if (mask !== undefined && extra === undefined && isIP(address) === 4 && isIP(mask) === 4) {
      return ipaddr.IPv4.parse(mask).prefixLengthFromSubnetMask() !== null;
    }
    const block = addressBlock(entry);
    return block !== undefined && !('problem' in block);
  });
}

const envSchema = z.object({
  NODE_ENV: oneOf(['development', 'production', 'test']).default('development'),
  PORT: integer(0, 65535).default(3000),
  HOST: listenHost.default('0.0.0.0'),
  PUBLIC_URL: httpUrl.optional(),
  // 0: no idle timeout (Node's requestTimeout, 5 minutes, still bounds the whole request); above
  // 5 minutes it could never act.
  HTTP_BODY_IDLE_TIMEOUT_MS: integer(0, 300_000).default(30_000),
  // Bytes a second (0: no minimum). 1 KiB (8 kbit/s) cuts a drip (a byte a second, or a few) and
  // lets through a client on a slow link: a message with a 1 MB attachment (1.4 MB as JSON) must
  // come at 4.6 KB/s on average to be whole within Node's requestTimeout (5 minutes), which it does
  // over 1 Mbit/s shared by 26 uploads, and a window of it may then run a fifth of that. 16 KiB
  // (128 kbit/s), the default before, refused such a message once 1 Mbit/s was shared by 8; it was
  // that high to guard EVENTS_BODY_BUDGET, which EVENTS_BODY_MIN_RATE does now. The window, under
  // requestTimeout.
  HTTP_BODY_MIN_RATE: integer(0, 1_000_000_000).default(1_024),
  HTTP_BODY_MIN_RATE_WINDOW_MS: integer(100, 300_000).default(5_000),
  // 0: no limit (an answer its client never reads is then held for ever: http/write-stall.ts).
  HTTP_RESPONSE_IDLE_TIMEOUT_MS: integer(0, 3_600_000).default(60_000),
  LOG_LEVEL: oneOf(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']).default('info'),
  LOG_FORMAT: oneOf(['auto', 'json', 'pretty']).default('auto'),

  DATABASE_URL: optionalText.pipe(postgresUrl.optional()),
  DATABASE_DIRECT_URL: optionalText.pipe(postgresUrl.optional()),
  EMBEDDED_DATABASE: booleanFlag.optional(),
  DATABASE_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, {
      error: (issue) => `${JSON.stringify(issue.input)} is not a lower-case SQL identifier (a letter a-z or _, then up to 62 of them or digits)`,
    })
    .default('jetpost'),
  DATABASE_POOL_SIZE: integer(2, 200).default(10),
  DATABASE_CONNECT_TIMEOUT_MS: integer(100, 600_000).default(2_000),
  DATABASE_STATEMENT_TIMEOUT_MS: integer(100, 3_600_000).default(2_000),
  DATABASE_BULK_STATEMENT_TIMEOUT_MS: integer(100, 3_600_000).default(60_000),
  // `~` and `$HOME` are a shell's to expand: from an env file (docker --env-file, systemd's
  // EnvironmentFile) they came as written, and jetpost made a directory named `~` where it ran.
  // Kubernetes leaves a `$(VAR)` it cannot expand as written too. A directory that an earlier
  // release made so holds that jetpost's data, queued messages included: the refusal names it.
  DATA_DIR: z
    .string()
    .refine((value) => !/^~|\$(\w|\{|\()/.test(value), {
      error: (issue) =>
        `${JSON.stringify(issue.input)} holds ~ or a $variable, which only a shell expands (an env file or a service manager passes it as written): write the whole path. Where an earlier jetpost ran with it, it made ${JSON.stringify(path.resolve(String(issue.input)))}: if that exists, it holds that jetpost's data, queued messages included; give that path to keep them`,
    })
    .default('./data'),
  EMBEDDED_PG_PORT: integer(1, 65535).default(5488),

  MAILJET_API_KEY: optionalText,
  MAILJET_API_SECRET: optionalText,
  MAILJET_BASE_URL: optionalText.pipe(httpUrl.optional()),
  MAILJET_TIMEOUT_MS: positiveMs.default(15_000),
  MAILJET_RATE_LIMIT: integer(0, 100_000).default(0),
  MAILJET_MAX_IN_FLIGHT: integer(1, 256).default(16),
  SIMULATOR_PORT: integer(0, 65535).default(4010),
  SIMULATOR_MAX_MESSAGES: integer(1, 10_000_000).default(100_000),

  WORKER_CONCURRENCY: integer(0, 256).optional(),
  BATCH_SIZE: integer(1, 50).default(50),
  MAX_ATTEMPTS: integer(1, 100).default(8),
  RETRY_BASE_MS: positiveMs.default(5_000),
  RETRY_FACTOR: decimal(1, 10).default(2),
  RETRY_MAX_MS: positiveMs.default(3_600_000),
  RETRY_JITTER: decimal(0, 1).default(0.25),
  LOOKUP_RETRY_WINDOW_MS: positiveMs.default(24 * 3_600_000),
  LEASE_MS: positiveMs.default(120_000),
  IDLE_CHECK_MS: positiveMs.default(30_000),
  SHUTDOWN_TIMEOUT_MS: positiveMs.default(25_000),
  WEBHOOK_TIMEOUT_MS: positiveMs.default(10_000),
  WEBHOOK_RETRY_BASE_MS: positiveMs.default(10_000),
  WEBHOOK_RETRY_MAX_MS: positiveMs.default(3_600_000),
  WEBHOOK_RETRY_WINDOW_MS: positiveMs.default(24 * 3_600_000),
  WEBHOOK_BATCH_SIZE: integer(1, 500).default(20),
  WEBHOOK_CONCURRENCY_PER_APP: integer(1, 500).default(4),
  WEBHOOK_ALLOWED_TARGETS: z
    .string()
    .superRefine((list, context) => targetListProblems(list).forEach((message) => context.addIssue({ code: 'custom', message })))
    .default(''),
  ADMIN_API_KEY: optionalText,
  // The key ADMIN_API_KEY replaces, still taken during a rotation (docs/deployment.md).
  ADMIN_API_KEY_PREVIOUS: optionalText,

  EVENTS_USERNAME: optionalText,
  EVENTS_PASSWORD: optionalText,
  // A grouped callback of 100,000 events is about 30 MB.
  EVENTS_BODY_LIMIT: bodyLimit().default('64mb'),
  // Callback bytes in progress at once (http/body-budget.ts); EVENTS_BODY_LIMIT when unset.
  EVENTS_BODY_BUDGET: bodyBudget('EVENTS_BODY_LIMIT').optional(),
  EVENTS_BODY_WAIT_MS: integer(0, 600_000).default(10_000),
  // Bytes a second (0: no minimum), judged over HTTP_BODY_MIN_RATE_WINDOW_MS, only while callbacks
  // wait for room (http/body-budget.ts). 256 KiB is 2 Mbit/s: Mailjet sends from its data centres,
  // far faster; a slower body holding 64 MB for 5 minutes would have to send 64 MB to do so.
  EVENTS_BODY_MIN_RATE: integer(0, 1_000_000_000).default(262_144),
  QUEUE_RATE_LIMIT: integer(0, 1_000_000).default(600),
  EVENTS_RATE_LIMIT: integer(0, 1_000_000).default(6000),
  ADMIN_KEY_FAILURE_LIMIT: integer(0, 1_000_000).default(10),
  TRUST_PROXY: z
    .string()
    .trim()
    .refine(trustedProxiesValid, {
      error: (issue) =>
        `${JSON.stringify(issue.input)} is not true, false, a hop count, or comma-separated addresses, subnets (10.0.0.0/8) and loopback, linklocal, uniquelocal`,
    })
    .default('false'),
  QUEUE_BODY_LIMIT: bodyLimit().default('20mb'),
  // POST /queue bytes in progress at once (http/body-budget.ts); QUEUE_BODY_LIMIT when unset.
  QUEUE_BODY_BUDGET: bodyBudget('QUEUE_BODY_LIMIT').optional(),
  QUEUE_BATCH_MAX_MESSAGES: integer(1, 100_000).default(1000),
  QUEUE_BATCH_CONCURRENCY: integer(1, 64).default(2),
  API_KEY_CACHE_MS: integer(0, 3_600_000).default(60_000),
  DEV_MODE: booleanFlag.optional(),

  // How long history is kept (0 keeps it forever); see docs/operations.md.
  RETENTION_JOBS_DAYS: decimal(0, 36_500).default(30),
  RETENTION_IDEMPOTENCY_KEYS_HOURS: decimal(0, 876_000).default(24),
  RETENTION_UNMATCHED_EVENTS_DAYS: decimal(0, 36_500).default(7),
  RETENTION_REJECTED_EVENTS_DAYS: decimal(0, 36_500).default(30),
  RETENTION_INTERVAL_MS: integer(1_000, 24 * 3_600_000).default(600_000),
  RETENTION_BATCH_SIZE: integer(10, 10_000).default(1_000),
});

/** The webhook targets dev mode allows on top of WEBHOOK_ALLOWED_TARGETS: this machine's loopback. */
export const DEV_MODE_WEBHOOK_TARGETS = 'localhost,127.0.0.0/8,::1';

export type Env = Record<string, string | undefined>;

/** Every variable jetpost reads (for the checks of the container files, which must name no other). */
export const SETTING_NAMES: readonly string[] = Object.keys(envSchema.shape);

/** The accepted range of a number or size variable, as docs/configuration.md must state it; undefined for the others. */
export function settingRange(name: string): string | undefined {
  let schema = (envSchema.shape as Record<string, z.ZodType | undefined>)[name];
  while (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) {
    schema = schema.unwrap() as z.ZodType;
  }
  return schema === undefined ? undefined : RANGES.get(schema);
}

/**
 * A variable's default as parsed, undefined when it has none or one derived at load (for the checks
 * of docs/configuration.md and compose.yaml). Worked out when asked, not at every start.
 */
export function settingDefault(name: string): unknown {
  return (envSchema.shape as Record<string, z.ZodType | undefined>)[name]?.safeParse(undefined).data;
}

interface SecretRule {
  minLength: number;
  /** Floor of estimatedBits(): refuses repetitive values ("aaaa…", "adminadmin…"), not every weak one. */
  minBits: number;
}

/** The admin key opens every app's data: 24 characters, and not made of a few repeated ones. */
const ADMIN_KEY_RULE: SecretRule = { minLength: 24, minBits: 64 };
/**
 * Mailjet signs nothing: the basic password in the callback URL is all that keeps strangers from
 * writing message statuses. Floors chosen so that random values of the minimum length (hex, base64)
 * pass, and degenerate ones do not.
 */
const EVENTS_PASSWORD_RULE: SecretRule = { minLength: 16, minBits: 32 };

/**
 * Bits of a secret estimated from how often each character occurs in it (length × Shannon
 * entropy of its characters): a random string scores near length × log2(alphabet), a repetitive
 * one far less. It cannot see that a phrase is guessable; it only catches the obvious.
 */
export function estimatedBits(secret: string): number {
  const counts = new Map<string, number>();
  const characters = [...secret];
  for (const character of characters) {
    counts.set(character, (counts.get(character) ?? 0) + 1);
  }
  let perCharacter = 0;
  for (const count of counts.values()) {
    const share = count / characters.length;
    perCharacter -= share * Math.log2(share);
  }
  return perCharacter * characters.length;
}

/** Why `secret` is too weak for `rule`, or undefined when it is not. */
function secretWeakness(secret: string, rule: SecretRule): string | undefined {
  const advice = 'generate one with `openssl rand -base64 32`';
  if ([...secret].length < rule.minLength) {
    return `at least ${rule.minLength} characters; ${advice}`;
  }
  if (estimatedBits(secret) < rule.minBits) {
    return `too repetitive to be a secret (a few characters repeated); ${advice}`;
  }
  return undefined;
}

export interface Config {
  readonly env: 'development' | 'production' | 'test';
  readonly http: {
    readonly port: number;
    readonly host: string;
    readonly publicUrl: string | undefined;
    /** How a request body being read must keep coming before the request is refused (408): http/body-pace.ts. */
    readonly bodyPace: {
      /** How long it may stop arriving; 0: no limit. */
      readonly idleMs: number;
      /** Bytes a second it must bring over each window; 0: no minimum. */
      readonly minBytesPerSecond: number;
      readonly windowMs: number;
    };
    /** How long an answer's client may take none of its bytes before its connection is closed (http/write-stall.ts); 0: no limit. */
    readonly responseIdleMs: number;
  };
  readonly logLevel: string;
  /** `auto`: readable lines on a terminal, JSON otherwise (log.ts: resolveLogFormat). */
  readonly logFormat: 'auto' | 'json' | 'pretty';
  readonly database: {
    /** undefined: the embedded PostgreSQL under dataDir (asked for, or the default outside production). */
    readonly url: string | undefined;
    /**
     * A connection that bypasses the pooler DATABASE_URL goes through (PgBouncer in transaction
     * mode), for what needs a session of its own: LISTEN and the migrations' advisory lock. When it
     * is set, the pool keeps nothing in the session either (db/pool.ts: `sessionless`).
     */
    readonly directUrl: string | undefined;
    readonly schema: string;
    readonly poolSize: number;
    readonly embeddedPort: number;
    /** When a database that does not answer counts as unavailable (503): see db/pool.ts. */
    readonly timeouts: { readonly connectMs: number; readonly statementMs: number; readonly bulkStatementMs: number };
  };
  /** Holds the embedded PostgreSQL cluster (`pg/`) and, in dev mode, the development API key. */
  readonly dataDir: string;
  /** `credentials` is undefined in simulator mode: no email leaves the machine. */
  readonly mailjet: {
    readonly credentials: { readonly apiKey: string; readonly apiSecret: string } | undefined;
    readonly baseUrl: string | undefined;
    readonly timeoutMs: number;
    /** Mailjet calls per second made by this process; 0 = no limit. */
    readonly callsPerSecond: number;
    /** The most Mailjet calls in flight at once in this process: the adaptive limit stays at or below it. */
    readonly maxInFlight: number;
    readonly simulatorPort: number;
    /** Messages the built-in simulator keeps; it forgets the oldest past them. */
    readonly simulatorMaxMessages: number;
  };
  readonly consumers: {
    /** Consumers in this process (0: it sends nothing); how many work at once adapts up to this. */
    readonly concurrency: number;
    readonly batchSize: number;
    readonly leaseMs: number;
    readonly idleCheckMs: number;
    /** How long SIGTERM waits for calls in flight before the process exits anyway. */
    readonly shutdownTimeoutMs: number;
  };
  readonly webhooks: {
    readonly timeoutMs: number;
    readonly retryBaseMs: number;
    readonly retryMaxMs: number;
    /** How long after a change its delivery keeps being retried before it is marked failed. */
    readonly retryWindowMs: number;
    /** Deliveries in flight at once per process. */
    readonly batchSize: number;
    /** Deliveries of one app in flight at once per process: below batchSize, so one slow app cannot take every slot. */
    readonly perAppInFlight: number;
    /**
     * Host names, addresses and CIDR blocks webhooks may reach although internal (comma-separated).
     * Dev mode adds this machine's loopback: a newcomer's receiver runs there.
     */
    readonly allowedTargets: string;
  };
  /** Bearer key of the admin API; the admin routes are off without it. */
  readonly adminApiKey: string | undefined;
  /** The admin key it replaces, taken too until the rotation ends (only with adminApiKey). */
  readonly adminApiKeyPrevious: string | undefined;
  readonly retry: {
    readonly maxAttempts: number;
    readonly baseMs: number;
    readonly factor: number;
    readonly maxMs: number;
    readonly jitter: number;
    readonly lookUpWindowMs: number;
  };
  readonly events: {
    readonly credentials: { readonly username: string; readonly password: string } | undefined;
    readonly bodyLimit: string;
    /** Bytes of callback bodies read and processed at once; at least the body limit. */
    readonly bodyBudgetBytes: number;
    /** How long a callback may wait for room in the budget before it is answered 503. */
    readonly bodyWaitMs: number;
    /** Bytes a second a callback's body must bring to keep its room in the budget while others wait for it (0: no minimum). */
    readonly bodyMinRate: number;
  };
  readonly queueBodyLimit: string;
  /** Bytes of POST /queue bodies read, parsed and waiting for their insert at once; at least the body limit. */
  readonly queueBodyBudgetBytes: number;
  /** Group commit of POST /queue: messages per transaction, transactions at once (services/jobs.ts). */
  readonly queueBatch: { readonly maxMessages: number; readonly maxInFlight: number };
  /** How long POST /queue may trust a checked API key (services/api-key-cache.ts); 0 = no cache. */
  readonly apiKeyCacheMs: number;
  /**
   * Requests per minute: per app on POST /queue, one counter for every callback with the credentials
   * on POST /events, wrong admin keys per source address in each process (0 = off).
   */
  readonly rateLimits: { readonly queuePerMinute: number; readonly eventsPerMinute: number; readonly adminKeyFailuresPerMinute: number };
  /** express's `trust proxy`: which proxies' X-Forwarded-For to believe for the source address. */
  readonly trustProxy: boolean | number | string;
  /** Dev mode: the built-in simulator and a development API key kept under the data directory. */
  readonly devMode: boolean;
  /** How long each kind of history is kept, in ms (0: forever), and how the retention worker goes about it. */
  readonly retention: {
    readonly jobsMs: number;
    readonly idempotencyKeysMs: number;
    readonly unmatchedEventsMs: number;
    readonly rejectedEventsMs: number;
    readonly intervalMs: number;
    readonly batchSize: number;
  };
}

/**
 * The previous admin key is the other half of a rotation: alone it would open the admin API with a
 * key being retired, and equal to ADMIN_API_KEY the rotation is not one (an env file edited in the
 * wrong line). A bearer key is one word: one with a space or a line break inside (two keys pasted
 * from a file) could never be presented. Values are never shown: they are secrets.
 */
function previousAdminKeyProblems(e: z.infer<typeof envSchema>): string[] {
  const previous = e.ADMIN_API_KEY_PREVIOUS;
  if (previous === undefined) {
    return [];
  }
  if (e.ADMIN_API_KEY === undefined) {
    return ['  ADMIN_API_KEY_PREVIOUS: only with ADMIN_API_KEY (it is the key ADMIN_API_KEY replaces, taken too while a rotation lasts)'];
  }
  if (previous === e.ADMIN_API_KEY) {
    return ['  ADMIN_API_KEY_PREVIOUS: the same as ADMIN_API_KEY: set ADMIN_API_KEY to the new key, this one to the key it replaces, or unset it'];
  }
  if (/\s/.test(previous)) {
    return ['  ADMIN_API_KEY_PREVIOUS: holds a space or a line break: one key only, which a bearer header could carry'];
  }
  return [];
}

/**
 * Where the data lives must be a decision: in production, an embedded PostgreSQL inside a container
 * without a volume loses every message when the container is recreated.
 */
function databaseProblems(e: z.infer<typeof envSchema>): string[] {
  const problems: string[] = [];
  if (e.EMBEDDED_DATABASE === true && e.DATABASE_URL) {
    problems.push(
      '  EMBEDDED_DATABASE and DATABASE_URL: set one or the other (EMBEDDED_DATABASE=true runs a PostgreSQL under DATA_DIR instead of DATABASE_URL)',
    );
  } else if (!e.DATABASE_URL && e.EMBEDDED_DATABASE === false) {
    problems.push('  DATABASE_URL: required when EMBEDDED_DATABASE=false');
  } else if (!e.DATABASE_URL && e.EMBEDDED_DATABASE === undefined && e.NODE_ENV === 'production') {
    problems.push(
      '  DATABASE_URL: required when NODE_ENV=production; or set EMBEDDED_DATABASE=true to keep the data in an embedded PostgreSQL under DATA_DIR (on a volume that outlives the container)',
    );
  }
  if (e.DATABASE_DIRECT_URL && !e.DATABASE_URL) {
    problems.push('  DATABASE_DIRECT_URL: only with DATABASE_URL (it is the direct connection beside a DATABASE_URL that goes through a pooler)');
  }
  return problems;
}

/**
 * A route's body limit and budget in bytes (each checked as a size), the budget the limit when
 * unset. A budget below the limit would refuse forever a body the limit allows (Mailjet would
 * retry such a callback for a day), so it is a configuration error.
 */
function bodySizes(
  names: { limit: string; budget: string; request: string },
  limitText: string,
  budgetText: string | undefined,
  problems: string[],
): { limit: number; budget: number } {
  const limit = bytes.parse(limitText) ?? 0;
  const budget = budgetText === undefined ? limit : (bytes.parse(budgetText) ?? 0);
  if (budget < limit) {
    problems.push(
      `  ${names.budget}: "${budgetText}" is below ${names.limit} (${limitText}): it must be ${settingRange(names.budget)}, so that a ${names.request} at the limit fits in the budget of ${names.request}s in progress`,
    );
  }
  return { limit, budget };
}

/** Where the built-in simulator and the embedded PostgreSQL listen (main.ts, db/embedded.ts). */
const LOOPBACK = '127.0.0.1';

/** Whether an API listening on `host` takes LOOPBACK's ports too: every interface, or the loopback itself. */
function listensOnLoopback(host: string): boolean {
  return ['0.0.0.0', '::', '::1', 'localhost'].includes(host.toLowerCase()) || host.startsWith('127.');
}

/**
 * Two of jetpost's own listeners on one port of LOOPBACK: the start failed at the second of them,
 * after the initdb and the migrations, saying that another program held it. Port 0 is any free port.
 */
function portClashes(e: z.infer<typeof envSchema>, builtInSimulator: boolean): string[] {
  // In the order they start.
  const listeners = [
    ...(e.DATABASE_URL ? [] : [{ variable: 'EMBEDDED_PG_PORT', port: e.EMBEDDED_PG_PORT, what: 'the embedded PostgreSQL' }]),
    ...(builtInSimulator ? [{ variable: 'SIMULATOR_PORT', port: e.SIMULATOR_PORT, what: 'the built-in simulator' }] : []),
    ...(listensOnLoopback(e.HOST) ? [{ variable: 'PORT', port: e.PORT, what: `the API (HOST ${e.HOST})` }] : []),
  ];
  return listeners.flatMap((first, index) =>
    listeners
      .slice(index + 1)
      .filter((later) => first.port !== 0 && later.port === first.port)
      .map(
        (later) =>
          `  ${later.variable} and ${first.variable}: both ${first.port}, but ${first.what} listens on ${LOOPBACK}:${first.port}, where ${later.what} would too. Set one of them to another port`,
      ),
  );
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** A whole value in quotes, as `docker run --env-file` and systemd's EnvironmentFile pass `KEY="value"` on. */
const QUOTED = /^(["'])[^]*\1$/;

interface ParsedEnv<T> {
  /** The settings, each bad one left at its default (or unset), so the checks between them still run. */
  data: T;
  /** A line for each bad variable. */
  problems: string[];
  /** The variables those lines name. */
  refused: ReadonlySet<string>;
}

/** The environment's variables that `schema` reads, parsed by it, with a line for each bad one. */
function parseEnv<S extends z.ZodObject>(schema: S, env: Env): ParsedEnv<z.infer<S>> {
  // An empty variable means "not set": `PORT=` must give the default, not 0. Spaces and a carriage
  // return around a value (an env file saved with CRLF line ends) are not part of it: kept, they
  // would put DATA_DIR beside the volume meant for it, or make `production` an unknown NODE_ENV.
  const present = Object.fromEntries(
    Object.entries(env).flatMap(([name, value]) => (value === undefined || value.trim() === '' ? [] : [[name, value.trim()]])),
  );
  // Quotes kept as part of a value made Mailjet refuse the keys, or DATA_DIR a directory named with
  // them, with nothing said at start; no setting of jetpost's is written in quotes. Not shown: it may be a secret.
  const quoted = Object.keys(schema.shape).filter((name) => QUOTED.test(present[name] ?? ''));
  const parsed = schema.safeParse(present);
  const issues = (parsed.error?.issues ?? []).filter((issue) => !quoted.includes(String(issue.path[0])));
  const problems = [
    ...quoted.map(
      (name) => `  ${name}: its value is in quotes, which are taken as part of it: remove them (an env file given to docker run --env-file keeps them)`,
    ),
    ...issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`),
  ];
  const refused = new Set([...quoted, ...issues.map((issue) => String(issue.path[0]))]);
  if (parsed.success && refused.size === 0) {
    return { data: parsed.data, problems, refused };
  }
  // Every variable is parsed on its own, so without the bad ones the rest parses.
  const rest = schema.safeParse(Object.fromEntries(Object.entries(present).filter(([name]) => !refused.has(name))));
  if (!rest.success) {
    throw refusal(problems);
  }
  return { data: rest.data, problems, refused };
}

function refusal(problems: readonly string[]): ConfigError {
  return new ConfigError(`invalid configuration:\n${problems.join('\n')}`);
}

/**
 * Two settings holding one secret: a leak of either gives away both, and EVENTS_PASSWORD is the least
 * kept of them (it sits in the callback URL registered at Mailjet, for whoever reads that account's
 * settings). The admin keys' own pair is previousAdminKeyProblems'. Values are never shown.
 */
function sharedSecretProblems(e: z.infer<typeof envSchema>): string[] {
  const secrets = (['ADMIN_API_KEY', 'ADMIN_API_KEY_PREVIOUS', 'EVENTS_PASSWORD', 'MAILJET_API_SECRET'] as const).filter((name) => e[name]);
  const problems: string[] = [];
  secrets.forEach((first, i) => {
    for (const second of secrets.slice(i + 1)) {
      if (e[first] === e[second] && !(first === 'ADMIN_API_KEY' && second === 'ADMIN_API_KEY_PREVIOUS')) {
        problems.push(`  ${first} and ${second}: the same value, so a leak of one gives away the other: give each a secret of its own`);
      }
    }
  });
  return problems;
}

/** A problem line of loadConfig's checks between settings names its variables first ("  A and B: …"). */
function namedVariables(problem: string): string[] {
  return /^ {2}([A-Z_]+(?: and [A-Z_]+)*):/.exec(problem)?.[1]?.split(' and ') ?? [];
}

/** Parses the environment; throws a ConfigError naming every bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const { data: e, problems: refusals, refused } = parseEnv(envSchema, env);
  const problems: string[] = [];
  if (Boolean(e.MAILJET_API_KEY) !== Boolean(e.MAILJET_API_SECRET)) {
    problems.push('  MAILJET_API_KEY and MAILJET_API_SECRET: set both or neither');
  }
  if (Boolean(e.EVENTS_USERNAME) !== Boolean(e.EVENTS_PASSWORD)) {
    problems.push('  EVENTS_USERNAME and EVENTS_PASSWORD: set both or neither');
  }
  if (e.EVENTS_USERNAME?.includes(':')) {
    problems.push("  EVENTS_USERNAME: must not contain ':' (basic credentials end the user name at the first colon, so every callback would be refused)");
  }
  const credentials = e.MAILJET_API_KEY && e.MAILJET_API_SECRET ? { apiKey: e.MAILJET_API_KEY, apiSecret: e.MAILJET_API_SECRET } : undefined;
  // Never dev mode in production, even while its Mailjet keys are missing: a start refused for them
  // must also name the callback credentials production needs, not refuse them at the next start.
  const devMode = e.DEV_MODE ?? (credentials === undefined && e.NODE_ENV !== 'production');
  if (e.NODE_ENV === 'production' && credentials === undefined) {
    problems.push('  MAILJET_API_KEY and MAILJET_API_SECRET: required when NODE_ENV=production (without them mail only reaches the simulator)');
  }
  if (e.NODE_ENV === 'production' && e.DEV_MODE === true) {
    problems.push('  DEV_MODE: must not be true when NODE_ENV=production (dev mode writes a development admin key and app key under DATA_DIR)');
  }
  for (const [variable, value, rule] of [
    ['ADMIN_API_KEY', e.ADMIN_API_KEY, ADMIN_KEY_RULE],
    ['ADMIN_API_KEY_PREVIOUS', e.ADMIN_API_KEY_PREVIOUS, ADMIN_KEY_RULE],
    ['EVENTS_PASSWORD', e.EVENTS_PASSWORD, EVENTS_PASSWORD_RULE],
  ] as const) {
    const weakness = value === undefined ? undefined : secretWeakness(value, rule);
    if (weakness) {
      problems.push(`  ${variable}: ${weakness}`);
    }
  }
  problems.push(...previousAdminKeyProblems(e));
  problems.push(...sharedSecretProblems(e));
  problems.push(...databaseProblems(e));
  if (e.DATABASE_BULK_STATEMENT_TIMEOUT_MS < e.DATABASE_STATEMENT_TIMEOUT_MS) {
    problems.push('  DATABASE_BULK_STATEMENT_TIMEOUT_MS: must not be shorter than DATABASE_STATEMENT_TIMEOUT_MS');
  }
  // Mailjet's callbacks carry no signature: outside dev mode, basic credentials are the only thing between
  // the internet and every message's status.
  if (!devMode && !e.EVENTS_USERNAME) {
    problems.push('  EVENTS_USERNAME and EVENTS_PASSWORD: required when sending through Mailjet (they protect /events)');
  }
  // A replayed request answers with its jobs: its key must not outlive them. Compared in whole ms, as
  // retention takes them: 0.3 days times 24 is 7.199999999999999 hours, and refused 7.2 as longer.
  if (
    e.RETENTION_JOBS_DAYS > 0 &&
    (e.RETENTION_IDEMPOTENCY_KEYS_HOURS === 0 || Math.round(e.RETENTION_IDEMPOTENCY_KEYS_HOURS * HOUR_MS) > Math.round(e.RETENTION_JOBS_DAYS * DAY_MS))
  ) {
    problems.push('  RETENTION_IDEMPOTENCY_KEYS_HOURS: must be set and not longer than RETENTION_JOBS_DAYS (a replayed request answers with its jobs)');
  }
  problems.push(...portClashes(e, credentials === undefined && !e.MAILJET_BASE_URL));
  const eventsBody = bodySizes(
    { limit: 'EVENTS_BODY_LIMIT', budget: 'EVENTS_BODY_BUDGET', request: 'callback' },
    e.EVENTS_BODY_LIMIT,
    e.EVENTS_BODY_BUDGET,
    problems,
  );
  const queueBody = bodySizes(
    { limit: 'QUEUE_BODY_LIMIT', budget: 'QUEUE_BODY_BUDGET', request: 'request' },
    e.QUEUE_BODY_LIMIT,
    e.QUEUE_BODY_BUDGET,
    problems,
  );
  // One refusal names every problem. A check between settings that involves a refused variable ran
  // on its default: its line would only repeat, or contradict, the refusal.
  const all = [...refusals, ...problems.filter((problem) => !namedVariables(problem).some((name) => refused.has(name)))];
  if (all.length > 0) {
    throw refusal(all);
  }
  return Object.freeze({
    env: e.NODE_ENV,
    http: {
      port: e.PORT,
      host: e.HOST,
      publicUrl: e.PUBLIC_URL,
      bodyPace: { idleMs: e.HTTP_BODY_IDLE_TIMEOUT_MS, minBytesPerSecond: e.HTTP_BODY_MIN_RATE, windowMs: e.HTTP_BODY_MIN_RATE_WINDOW_MS },
      responseIdleMs: e.HTTP_RESPONSE_IDLE_TIMEOUT_MS,
    },
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    database: {
      url: e.DATABASE_URL,
      directUrl: e.DATABASE_DIRECT_URL,
      schema: e.DATABASE_SCHEMA,
      poolSize: e.DATABASE_POOL_SIZE,
      embeddedPort: e.EMBEDDED_PG_PORT,
      timeouts: {
        connectMs: e.DATABASE_CONNECT_TIMEOUT_MS,
        statementMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
        bulkStatementMs: e.DATABASE_BULK_STATEMENT_TIMEOUT_MS,
      },
    },
    mailjet: {
      credentials,
      baseUrl: e.MAILJET_BASE_URL,
      timeoutMs: e.MAILJET_TIMEOUT_MS,
      callsPerSecond: e.MAILJET_RATE_LIMIT,
      maxInFlight: e.MAILJET_MAX_IN_FLIGHT,
      simulatorPort: e.SIMULATOR_PORT,
      simulatorMaxMessages: e.SIMULATOR_MAX_MESSAGES,
    },
    consumers: {
      // Each consumer has at most one call in flight: by default there is one per possible call.
      concurrency: e.WORKER_CONCURRENCY ?? e.MAILJET_MAX_IN_FLIGHT,
      batchSize: e.BATCH_SIZE,
      leaseMs: e.LEASE_MS,
      idleCheckMs: e.IDLE_CHECK_MS,
      shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    },
    adminApiKey: e.ADMIN_API_KEY,
    adminApiKeyPrevious: e.ADMIN_API_KEY_PREVIOUS,
    webhooks: {
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      retryBaseMs: e.WEBHOOK_RETRY_BASE_MS,
      retryMaxMs: e.WEBHOOK_RETRY_MAX_MS,
      retryWindowMs: e.WEBHOOK_RETRY_WINDOW_MS,
      batchSize: e.WEBHOOK_BATCH_SIZE,
      perAppInFlight: e.WEBHOOK_CONCURRENCY_PER_APP,
      allowedTargets: devMode
        ? [e.WEBHOOK_ALLOWED_TARGETS, DEV_MODE_WEBHOOK_TARGETS].filter((list) => list.trim() !== '').join(',')
        : e.WEBHOOK_ALLOWED_TARGETS,
    },
    retry: {
      maxAttempts: e.MAX_ATTEMPTS,
      baseMs: e.RETRY_BASE_MS,
      factor: e.RETRY_FACTOR,
      maxMs: e.RETRY_MAX_MS,
      jitter: e.RETRY_JITTER,
      lookUpWindowMs: e.LOOKUP_RETRY_WINDOW_MS,
    },
    events: {
      credentials: e.EVENTS_USERNAME && e.EVENTS_PASSWORD ? { username: e.EVENTS_USERNAME, password: e.EVENTS_PASSWORD } : undefined,
      bodyLimit: e.EVENTS_BODY_LIMIT,
      bodyBudgetBytes: eventsBody.budget,
      bodyWaitMs: e.EVENTS_BODY_WAIT_MS,
      bodyMinRate: e.EVENTS_BODY_MIN_RATE,
    },
    dataDir: e.DATA_DIR,
    queueBodyLimit: e.QUEUE_BODY_LIMIT,
    queueBodyBudgetBytes: queueBody.budget,
    queueBatch: { maxMessages: e.QUEUE_BATCH_MAX_MESSAGES, maxInFlight: e.QUEUE_BATCH_CONCURRENCY },
    apiKeyCacheMs: e.API_KEY_CACHE_MS,
    rateLimits: { queuePerMinute: e.QUEUE_RATE_LIMIT, eventsPerMinute: e.EVENTS_RATE_LIMIT, adminKeyFailuresPerMinute: e.ADMIN_KEY_FAILURE_LIMIT },
    trustProxy: e.TRUST_PROXY === 'true' ? true : e.TRUST_PROXY === 'false' ? false : /^\d+$/.test(e.TRUST_PROXY) ? Number(e.TRUST_PROXY) : e.TRUST_PROXY,
    devMode,
    retention: {
      jobsMs: e.RETENTION_JOBS_DAYS * DAY_MS,
      idempotencyKeysMs: e.RETENTION_IDEMPOTENCY_KEYS_HOURS * HOUR_MS,
      unmatchedEventsMs: e.RETENTION_UNMATCHED_EVENTS_DAYS * DAY_MS,
      rejectedEventsMs: e.RETENTION_REJECTED_EVENTS_DAYS * DAY_MS,
      intervalMs: e.RETENTION_INTERVAL_MS,
      batchSize: e.RETENTION_BATCH_SIZE,
    },
  });
}

/**
 * PORT and HOST alone, parsed as loadConfig parses them: for `jetpost health`, which must find the
 * service without failing on a setting it does not use.
 */
export function loadListenAddress(env: Env = process.env): { port: number; host: string } {
  const { data, problems } = parseEnv(envSchema.pick({ PORT: true, HOST: true }), env);
  if (problems.length > 0) {
    throw refusal(problems);
  }
  return { port: data.PORT, host: data.HOST };
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
