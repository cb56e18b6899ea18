// Request authentication: apps present a bearer API key; Mailjet's callbacks present the basic
// credentials embedded in the callback URL.
import { createHash, timingSafeEqual } from 'node:crypto';

import type { RequestHandler, Response } from 'express';

import type { AppIdentity } from '../domain/app.js';
import { apiKeyRequired, UnauthorizedError } from '../domain/errors.js';
import type { WrongAdminKeys } from './rate-limit.js';

export type Authenticate = (apiKey: string) => Promise<AppIdentity | undefined>;

export function requireApiKey(authenticate: Authenticate): RequestHandler {
  return async (req, res, next) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
    const app = match ? await authenticate(match[1]!) : undefined;
    if (!app) {
      next(apiKeyRequired());
      return;
    }
    res.locals['app'] = app;
    next();
  };
}

export function callingApp(res: Response): AppIdentity {
  return res.locals['app'] as AppIdentity;
}

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/**
 * Equal-length digests, so the comparison takes the same time whatever the input; the digest of the
 * secret fixed in advance is computed once, not per request.
 */
export function secretMatcher(expected: string): (given: string) => boolean {
  const expectedDigest = digest(expected);
  return (given) => timingSafeEqual(digest(given), expectedDigest);
}

/**
 * Which of the admin keys (ADMIN_API_KEY, then ADMIN_API_KEY_PREVIOUS during a rotation) `given` is,
 * by its index, or -1. Each is compared in constant time, and all of them every time: how long it
 * takes tells nothing of which key matched, or whether one did.
 */
export function adminKeyMatcher(adminKeys: readonly string[]): (given: string) => number {
  const matchers = adminKeys.map(secretMatcher);
  return (given) => matchers.reduce((found, same, index) => (same(given) && found === -1 ? index : found), -1);
}

/**
 * The admin API: a bearer key compared in constant time with each admin key; without one it is off.
 * `wrongKeys` (http/rate-limit.ts) guards first: it answers 429 once an address gave too many
 * wrong keys, before this one is compared; a wrong or missing key is counted there.
 */
export function requireAdminKey(adminKeys: readonly string[], wrongKeys: WrongAdminKeys): RequestHandler {
  const headers = { 'WWW-Authenticate': 'Bearer realm="jetpost admin"' };
  const whichAdminKey = adminKeyMatcher(adminKeys);
  const check: RequestHandler = (req, _res, next) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
    if (!match || whichAdminKey(match[1]!) === -1) {
      wrongKeys.count(req);
      next(new UnauthorizedError('a valid admin key is required: "Authorization: Bearer <ADMIN_API_KEY>"', { headers }));
      return;
    }
    next();
  };
  return (req, res, next) => {
    if (adminKeys.length === 0) {
      next(new UnauthorizedError('the admin API is off: set ADMIN_API_KEY to use it', { headers }));
      return;
    }
    Promise.resolve(wrongKeys.guard(req, res, (error?: unknown) => (error ? next(error) : check(req, res, next)))).catch(next);
  };
}

/** `text` with its percent-escapes decoded, or as it is when they are not valid. */
function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export interface BasicCredentials {
  username: string;
  password: string;
}

/**
 * Basic credentials, compared in constant time. A request that fails them goes through
 * `limitFailures` (which answers 429 once there were too many failures) and is otherwise a 401;
 * a request with the right credentials is never held back by the failures of others.
 */
export function requireBasicAuth(credentials: BasicCredentials | undefined, realm: string, limitFailures?: RequestHandler): RequestHandler {
  const sameUsername = credentials && secretMatcher(credentials.username);
  const samePassword = credentials && secretMatcher(credentials.password);
  return (req, res, next) => {
    if (sameUsername === undefined || samePassword === undefined) {
      next();
      return;
    }
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.get('authorization') ?? '');
    const decoded = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
    const separator = decoded.indexOf(':');
    const username = decoded.slice(0, separator);
    const password = decoded.slice(separator + 1);
    // The callback URL carries the credentials percent-encoded (domain/events-callback.ts), and a
    // sender may put them in the header as the URL has them: `openssl rand -base64` makes passwords
    // with + / =, and every callback would be refused. Either form stands for the same secret.
    // Every check always runs: no early exit that would tell which half was wrong.
    const checks = [sameUsername(username), sameUsername(percentDecoded(username)), samePassword(password), samePassword(percentDecoded(password))];
    const ok = separator > 0 && (checks[0]! || checks[1]!) && (checks[2]! || checks[3]!);
    if (ok) {
      next();
      return;
    }
    const refused = new UnauthorizedError('valid basic credentials are required', { headers: { 'WWW-Authenticate': `Basic realm="${realm}"` } });
    if (!limitFailures) {
      next(refused);
      return;
    }
    Promise.resolve(limitFailures(req, res, (error?: unknown) => next(error ?? refused))).catch(next);
  };
}
