import type { Random } from './random.js';
import { backtrackingRisk } from './regex-risk.js';
import { INJECTABLE_ERROR_CODES, type InjectableErrorCode, type MessageErrorFault } from './send.js';

/**
 * How one POST /v3.1/send call is answered: normally, 429 (rate limited), 500 (Mailjet's JSON error),
 * 503 (a gateway's HTML page), 401 (the keys refused, as when they are revoked), or never.
 */
export type CallOutcome = 'ok' | '429' | '500' | '503' | '401' | 'timeout';

const CALL_OUTCOMES: readonly string[] = ['ok', '429', '500', '503', '401', 'timeout'] satisfies CallOutcome[];

export interface FaultSettings {
  /** Milliseconds added before answering /v3.1/send (at most 2^31 - 1, the longest timer Node holds). */
  latencyMs?: number | undefined;
  /** 0..1: fraction of send calls answered 429 with an HTML gateway page. */
  rateLimitRatio?: number | undefined;
  /** Sent as the Retry-After header of a 429 when set: whole seconds. */
  retryAfterSeconds?: number | undefined;
  /** 0..1: fraction of send calls answered 500. */
  serverErrorRatio?: number | undefined;
  /** 0..1: fraction of send calls never answered; the socket is held until the client gives up. */
  timeoutRatio?: number | undefined;
  /** Whether the messages of a timed-out call are accepted anyway (default true: a "maybe sent"). */
  timeoutAccepts?: boolean | undefined;
  /**
   * A regex: a message with a recipient address matching it becomes a per-message error entry. A
   * pattern that could backtrack for long is refused (regex-risk.ts); an address longer than
   * MAX_TESTED_LENGTH is not tested, so never matches.
   */
  messageErrorPattern?: string | undefined;
  /**
   * The error such a message gets (default mj-0013, the address is invalid): mj-0005 (a value not
   * allowed), mj-0006 (a string too long), mj-0012 (an empty Email), or send-0008 (the From is not an
   * authorized sender; HTTP 403 when no other message of the call fails otherwise).
   */
  messageErrorCode?: InjectableErrorCode | undefined;
  /** Bodies of POST /v3.1/send above this many bytes get Mailjet's HTML 413 (default and most: 15 MiB). */
  maxBodyBytes?: number | undefined;
  /** Forced outcomes for the next send calls, consumed before any ratio is rolled. */
  nextCalls?: CallOutcome[] | undefined;
  /** 0..1: fraction of look-ups by CustomID (GET /v3/REST/message?CustomID=…) answered 500. */
  lookupErrorRatio?: number | undefined;
  /** Message reads answer without ContactAlt (''), as if ShowContactAlt were ignored (by Mailjet or a proxy). */
  lookupHidesContactAlt?: boolean | undefined;
  /** 0..1: fraction of events never delivered. */
  dropEventRatio?: number | undefined;
  /** 0..1: fraction of events delivered twice. */
  duplicateEventRatio?: number | undefined;
  /** Shuffle the events of each flush before delivery. */
  reorderEvents?: boolean | undefined;
}

export interface FaultController {
  /** Replaces every setting (validated; throws a RangeError naming the bad field). */
  set(settings: FaultSettings): void;
  /** A copy of the current settings; nextCalls holds what is left of the queue. */
  get(): FaultSettings;
  clear(): void;
}

/** The controller plus the decisions the server and the callback loop ask of it. */
export interface Faults extends FaultController {
  /** The outcome of the next send call: the nextCalls queue first, then one roll over the ratios. */
  nextCallOutcome(): CallOutcome;
  /** The messageErrorPattern fault with its code; undefined when no pattern is set. */
  messageError(): MessageErrorFault | undefined;
  /** Whether the next look-up by CustomID fails with a 500. */
  lookupFails(): boolean;
  /** Whether message reads leave ContactAlt out, ShowContactAlt or not. */
  hidesContactAlt(): boolean;
  /** How many times the next event is delivered: 0 (dropped), 1, or 2 (duplicated). */
  eventCopies(): number;
  /** The items in delivery order: a shuffled copy when reorderEvents is on. */
  arrange<T>(items: readonly T[]): T[];
}

const RATIO_FIELDS = ['rateLimitRatio', 'serverErrorRatio', 'timeoutRatio', 'dropEventRatio', 'duplicateEventRatio', 'lookupErrorRatio'] as const;
const FLAG_FIELDS = ['timeoutAccepts', 'reorderEvents', 'lookupHidesContactAlt'] as const;
const KNOWN_FIELDS = new Set<string>([
  ...RATIO_FIELDS,
  ...FLAG_FIELDS,
  'latencyMs',
  'retryAfterSeconds',
  'messageErrorPattern',
  'messageErrorCode',
  'maxBodyBytes',
  'nextCalls',
]);
/** Mailjet's gateway refuses send bodies over about 15 MB (an HTML 413). */
export const MAX_BODY_BYTES = 15 * 1024 * 1024;
/** Node's timers hold at most 2^31 - 1 ms (about 24.8 days): a longer latency would fire at once. */
const MAX_LATENCY_MS = 2 ** 31 - 1;
/**
 * The longest address messageErrorPattern is tested on: the longest a mail path allows (RFC 5321).
 * It bounds the backtracking of the patterns regex-risk.ts lets through.
 */
export const MAX_TESTED_LENGTH = 254;

/**
 * Fault decisions draw from their own generator, so turning a fault on or off does not shift the
 * sequence of MessageIDs of a seeded run.
 */
export function createFaults(random: Random): Faults {
  let settings: FaultSettings = {};
  let messageError: ReturnType<Faults['messageError']>;

  const roll = (ratio: number | undefined): boolean => (ratio ?? 0) > 0 && random.next() < (ratio ?? 0);

  return {
    set(next) {
      settings = parseFaultSettings(next);
      messageError = settings.messageErrorPattern === undefined ? undefined : messageErrorFault(settings.messageErrorPattern, settings.messageErrorCode);
    },
    get: () => ({ ...settings, ...(settings.nextCalls && { nextCalls: [...settings.nextCalls] }) }),
    clear() {
      settings = {};
      messageError = undefined;
    },
    nextCallOutcome() {
      const forced = settings.nextCalls?.shift();
      if (forced !== undefined) {
        return forced;
      }
      const { rateLimitRatio = 0, serverErrorRatio = 0, timeoutRatio = 0 } = settings;
      if (rateLimitRatio + serverErrorRatio + timeoutRatio === 0) {
        return 'ok';
      }
      // One roll over consecutive bands, so each ratio is exactly the share of calls it names.
      const draw = random.next();
      if (draw < rateLimitRatio) {
        return '429';
      }
      if (draw < rateLimitRatio + serverErrorRatio) {
        return '500';
      }
      return draw < rateLimitRatio + serverErrorRatio + timeoutRatio ? 'timeout' : 'ok';
    },
    messageError: () => messageError,
    lookupFails: () => roll(settings.lookupErrorRatio),
    hidesContactAlt: () => settings.lookupHidesContactAlt === true,
    eventCopies() {
      if (roll(settings.dropEventRatio)) {
        return 0;
      }
      return roll(settings.duplicateEventRatio) ? 2 : 1;
    },
    arrange: (items) => (settings.reorderEvents ? random.shuffle(items) : [...items]),
  };
}

/** Validates settings from code or from an HTTP body; throws a RangeError naming the offending field. */
export function parseFaultSettings(value: unknown): FaultSettings {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RangeError('fault settings must be a JSON object');
  }
  const input = value as Record<string, unknown>;
  const unknownField = Object.keys(input).find((field) => !KNOWN_FIELDS.has(field));
  if (unknownField !== undefined) {
    throw new RangeError(`unknown fault setting "${unknownField}"`);
  }
  const settings: FaultSettings = {};
  for (const field of RATIO_FIELDS) {
    settings[field] = readNumber(input, field, 1);
  }
  settings.latencyMs = readNumber(input, 'latencyMs', MAX_LATENCY_MS);
  // Retry-After is a whole number of seconds (RFC 9110); Mailjet never sends a fraction.
  settings.retryAfterSeconds = readNumber(input, 'retryAfterSeconds', Number.MAX_SAFE_INTEGER, { integer: true });
  for (const field of FLAG_FIELDS) {
    settings[field] = readBoolean(input, field);
  }
  settings.messageErrorPattern = readPattern(input.messageErrorPattern);
  settings.messageErrorCode = readMessageErrorCode(input.messageErrorCode);
  if (settings.messageErrorCode !== undefined && settings.messageErrorPattern === undefined) {
    throw new RangeError('messageErrorCode needs a messageErrorPattern to choose the messages it fails');
  }
  settings.maxBodyBytes = readNumber(input, 'maxBodyBytes', MAX_BODY_BYTES);
  settings.nextCalls = readNextCalls(input.nextCalls);
  if ((settings.rateLimitRatio ?? 0) + (settings.serverErrorRatio ?? 0) + (settings.timeoutRatio ?? 0) > 1) {
    throw new RangeError('rateLimitRatio + serverErrorRatio + timeoutRatio must not exceed 1');
  }
  return Object.fromEntries(Object.entries(settings).filter(([, setting]) => setting !== undefined));
}

function readNumber(input: Record<string, unknown>, field: string, max: number, { integer = false } = {}): number | undefined {
  const value = input[field];
  if (value === undefined) {
    return undefined;
  }
  if (typeof value !== 'number' || !(value >= 0 && value <= max) || (integer && !Number.isInteger(value))) {
    throw new RangeError(`${field} must be ${integer ? 'an integer' : 'a number'} between 0 and ${max}`);
  }
  return value;
}

function readBoolean(input: Record<string, unknown>, field: string): boolean | undefined {
  const value = input[field];
  if (value === undefined || typeof value === 'boolean') {
    return value;
  }
  throw new RangeError(`${field} must be a boolean`);
}

function readPattern(value: unknown): string | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (typeof value !== 'string') {
    throw new RangeError('messageErrorPattern must be a string');
  }
  try {
    new RegExp(value);
  } catch (error) {
    throw new RangeError(`messageErrorPattern is not a valid regular expression: ${(error as Error).message}`, { cause: error });
  }
  const risk = backtrackingRisk(value);
  if (risk !== undefined) {
    throw new RangeError(`messageErrorPattern is refused: ${risk}; write it without`);
  }
  return value;
}

function messageErrorFault(pattern: string, code: InjectableErrorCode = 'mj-0013'): MessageErrorFault {
  const regex = new RegExp(pattern);
  return { matches: (email) => email.length <= MAX_TESTED_LENGTH && regex.test(email), code };
}

function readMessageErrorCode(value: unknown): InjectableErrorCode | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (typeof value !== 'string' || !(INJECTABLE_ERROR_CODES as readonly string[]).includes(value)) {
    throw new RangeError(`messageErrorCode must be one of ${INJECTABLE_ERROR_CODES.join(', ')}`);
  }
  return value as InjectableErrorCode;
}

function readNextCalls(value: unknown): CallOutcome[] | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && CALL_OUTCOMES.includes(item))) {
    throw new RangeError(`nextCalls must be an array of ${CALL_OUTCOMES.join(', ')}`);
  }
  return [...(value as CallOutcome[])];
}
