// One error family for the whole service. HTTP turns AppErrors into problem+json; background loops
// log them. `cause` is always kept so a log line leads back to the original failure. What a Mailjet
// call did is not an error but a value (domain/mailjet-outcome.ts's CallOutcome): every answer,
// failures included, is decided on in the same place.

export interface FieldError {
  /** JSON path of the bad field, e.g. `messages.0.to.1.email`. */
  path: string;
  message: string;
}

export interface AppErrorOptions {
  cause?: unknown;
  fields?: FieldError[];
  headers?: Record<string, string>;
}

/**
 * The codes of the API's answers: each is the last segment of a problem `type`, and openapi.yaml
 * (Errors) lists them all (test/contract/openapi.test.ts holds the two to the same list).
 */
export const API_PROBLEM_CODES = [
  'validation-failed',
  'malformed-json',
  'request-aborted',
  'bad-request',
  'unauthorized',
  'not-found',
  'method-not-allowed',
  'idempotency-key-reused',
  'job-not-cancellable',
  'app-exists',
  'payload-too-large',
  'message-too-large',
  'unsupported-media-type',
  'unsupported-encoding',
  'request-timeout',
  'expectation-failed',
  'malformed-request',
  'duplicate-header',
  'headers-too-large',
  'transfer-coding-not-implemented',
  'http-version-not-supported',
  'rate-limited',
  'service-unavailable',
  'internal',
] as const;

/** The codes only the dashboard refuses with, on an HTML page for a person (no problem+json). */
export const DASHBOARD_PROBLEM_CODES = ['csrf-token', 'cross-origin'] as const;

export type ProblemCode = (typeof API_PROBLEM_CODES)[number] | (typeof DASHBOARD_PROBLEM_CODES)[number];

export class AppError extends Error {
  override readonly name: string = 'AppError';
  readonly fields: FieldError[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    /** Stable, machine-readable code: also the last segment of the problem `type`. */
    readonly code: ProblemCode,
    readonly status: number,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.fields = options.fields;
    this.headers = options.headers;
  }
}

export class ValidationError extends AppError {
  override readonly name = 'ValidationError';
  constructor(message: string, fields: FieldError[], options: AppErrorOptions = {}) {
    super('validation-failed', 400, message, { ...options, fields });
  }
}

export class NotFoundError extends AppError {
  override readonly name = 'NotFoundError';
  constructor(message: string, options: AppErrorOptions = {}) {
    super('not-found', 404, message, options);
  }
}

export class ConflictError extends AppError {
  override readonly name = 'ConflictError';
  constructor(code: ProblemCode, message: string, options: AppErrorOptions = {}) {
    super(code, 409, message, options);
  }
}

export class UnauthorizedError extends AppError {
  override readonly name = 'UnauthorizedError';
  constructor(message: string, options: AppErrorOptions = {}) {
    super('unauthorized', 401, message, options);
  }
}

/** The answer to a request without a valid (known, matching, unrevoked) API key. */
export function apiKeyRequired(): UnauthorizedError {
  return new UnauthorizedError('a valid API key is required: send it as "Authorization: Bearer <key>"', {
    headers: { 'WWW-Authenticate': 'Bearer realm="jetpost"' },
  });
}

export class ServiceUnavailableError extends AppError {
  override readonly name = 'ServiceUnavailableError';
  constructor(message: string, options: AppErrorOptions = {}) {
    super('service-unavailable', 503, message, { ...options, headers: { 'Retry-After': '5', ...options.headers } });
  }
}

/** Anything thrown (strings, objects, errors) as an Error, for logging and cause chains. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) {
    return thrown;
  }
  if (typeof thrown === 'string') {
    return new Error(thrown);
  }
  return new Error(`non-error thrown: ${safeDescribe(thrown)}`);
}

function safeDescribe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** A PostgreSQL unique violation (23505) of the named constraint. */
export function isUniqueViolation(error: unknown, constraint: string): boolean {
  const err = error as { code?: unknown; constraint?: unknown } | null;
  return typeof err === 'object' && err !== null && err.code === '23505' && err.constraint === constraint;
}

/** A statement PostgreSQL cancelled (57014): past its statement_timeout, or cancelled by hand. */
export function isStatementCancelled(error: unknown): boolean {
  const err = error as { code?: unknown } | null;
  return typeof err === 'object' && err !== null && err.code === '57014';
}

/**
 * The Postgres SQLSTATEs that mean "the database cannot serve this right now": connection
 * exceptions (08), shutdown or crash (57P01-3), a session the server ended for a timeout a DBA set
 * for the role or database (idle_in_transaction_session_timeout 25P03, transaction_timeout 25P04,
 * idle_session_timeout 57P05: a retry runs on a new one), a server out of disk (53100, logged with
 * its "No space left on device"), memory (53200) or connections (53300), a statement cancelled by
 * statement_timeout (57014) or by lock_timeout (55P03: a DBA's setting for the role or database,
 * and another session holding a lock on a table for longer), a write refused by a server that takes
 * none (25006: a hot standby that DATABASE_URL still names after a failover,
 * default_transaction_read_only), and a disk under the database that fails to read or write (58030).
 */
const UNAVAILABLE_SQLSTATE = /^(08|57P0[1-3]|57P05|25P0[34]|53[1-3]00|57014|55P03|25006|58030)/;
const UNAVAILABLE_NODE_CODE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);
/**
 * pg's and pg-pool's own messages for the same: the connection broke, connecting took longer than
 * connectionTimeoutMillis ("connection timeout"), no pooled connection came free in that time
 * ("timeout exceeded when trying to connect"), the server did not answer a query within
 * query_timeout ("Query read timeout"), or the pool is closed (shutdown).
 */
const UNAVAILABLE_MESSAGE =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Cannot use a pool after calling end/i;

/** PostgreSQL could not write for lack of disk space (53100, "No space left on device"). */
export function isOutOfDisk(error: unknown): error is Error & { code: '53100' } {
  return error instanceof Error && (error as { code?: unknown }).code === '53100';
}

/** Whether `error` means the database is unreachable, not answering, or shedding load: a 503, retried later. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const err = error as { code?: unknown; message?: unknown } | null;
  if (!err || typeof err !== 'object') {
    return false;
  }
  if (typeof err.code === 'string' && (UNAVAILABLE_SQLSTATE.test(err.code) || UNAVAILABLE_NODE_CODE.has(err.code))) {
    return true;
  }
  // A server that PANICs (its WAL could not be written) restarts every session, whatever the
  // SQLSTATE: as for a connection lost mid-statement (08…), the client tries again once it is back.
  if ((err as { severity?: unknown }).severity === 'PANIC') {
    return true;
  }
  return typeof err.message === 'string' && UNAVAILABLE_MESSAGE.test(err.message);
}

/**
 * What a 503 for an unavailable database tells the caller: a full disk or a server that takes no
 * writes is reachable and answering, and saying otherwise sent operators looking at the network.
 */
export function databaseUnavailableDetail(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === '53100') {
    return "the database's disk is full (PostgreSQL 53100): nothing was stored; retry later";
  }
  if (code === '53300') {
    return 'the database has no connection left for jetpost (PostgreSQL 53300: its max_connections, or a limit of the user or the database): nothing was stored; retry shortly';
  }
  if (code === '55P03') {
    return 'the database is busy: a lock this request needs is held by another session (PostgreSQL 55P03, lock_timeout): nothing was stored; retry shortly';
  }
  if (code === '25006') {
    return 'the database takes no writes right now (a standby, or default_transaction_read_only is on): nothing was stored; retry later';
  }
  return 'the database is not reachable or not answering right now; retry shortly';
}

/**
 * SQLSTATE classes of a statement refused for the data it carries, which is refused again however
 * often it is tried: data exceptions (22: a NUL byte in text, a value out of range), integrity
 * constraint violations (23) and program limits (54). Connection (08), transaction-rollback (40),
 * resource (53) and operator-intervention (57) errors, and errors without a SQLSTATE, may pass on
 * a later try.
 */
const DETERMINISTIC_SQLSTATE = /^(22|23|54)[0-9A-Z]{3}$/;

/** Whether `error` is PostgreSQL refusing a statement's data: trying the same statement again cannot succeed. */
export function isDeterministicDatabaseError(error: unknown): error is Error & { code: string } {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof Error && typeof code === 'string' && DETERMINISTIC_SQLSTATE.test(code);
}

/** A conflict with a concurrent writer that a new try resolves: PostgreSQL's serialization failure, which whoever retries those retries too. */
export class ConcurrentChangeError extends Error {
  override readonly name: string = 'ConcurrentChangeError';
  readonly code = '40001';
}

/**
 * Events were matched to a job that was deleted (by retention) before the transaction could lock it:
 * their rows would point at nothing (no foreign key refuses them since sql/26_…). The transaction is
 * rolled back and written again, and then finds their message gone: they are kept unmatched.
 */
export class JobDeletedMeanwhileError extends ConcurrentChangeError {
  override readonly name: string = 'JobDeletedMeanwhileError';
}

/** A recipient's row was not where a statement's look-up saw it (see db/events-repo.ts, STORE_AND_APPLY). */
export class RecipientMovedMeanwhileError extends ConcurrentChangeError {
  override readonly name: string = 'RecipientMovedMeanwhileError';
}

/** A reason the service cannot start that an operator can act on: printed as one line, without a stack. */
export class StartupError extends Error {
  override readonly name: string = 'StartupError';
}
