// The query string as the routes read it: node:querystring's parse (express's 'simple' parser), but
// a malformed percent escape (`%ZZ`, a lone `%`, bytes that are not UTF-8) is refused (400, naming
// the parameter) instead of taken literally or decoded to U+FFFD: `custom_id=%FF` would otherwise
// look up another id than the one the client meant, without saying so.
//
// A route that takes no query parameters refuses one (`takesNoQuery`, 400 naming it) rather than
// ignore it: POST /queue?idempotency_key=… stored the message again on each retry, and
// DELETE …/keys/{prefix}?dry_run=1 revoked the key.
import querystring, { type ParsedUrlQuery } from 'node:querystring';

import type { RequestHandler } from 'express';
import { z } from 'zod';

import { ValidationError } from '../domain/errors.js';
import { parseQueryOrThrow } from '../domain/input-schemas.js';

/** The part decoded as a query string is (`+` is a space), or undefined when an escape is malformed. */
function decoded(part: string): string | undefined {
  try {
    return decodeURIComponent(part.replaceAll('+', ' '));
  } catch {
    return undefined;
  }
}

/** Reads the query string of a request (null when its URL has none). */
export function parseQueryString(text: string | null): ParsedUrlQuery {
  if (text === null) {
    return {};
  }
  if (text.includes('%')) {
    for (const pair of text.split('&')) {
      const equals = pair.indexOf('=');
      const key = equals < 0 ? pair : pair.slice(0, equals);
      const name = decoded(key);
      if (name === undefined || decoded(pair.slice(key.length + 1)) === undefined) {
        throw new ValidationError('the query string has a malformed percent escape: encode "%" as %25, and text as UTF-8', [
          { path: (name ?? key).slice(0, 64), message: 'not valid percent-encoded UTF-8' },
        ]);
      }
    }
  }
  return querystring.parse(text);
}

const NO_PARAMETERS = z.strictObject({});

/** For a route that takes no query parameters: any one given is refused. */
export const takesNoQuery: RequestHandler = (req, _res, next) => {
  // Most requests have no query string: it is parsed only when there is one.
  if (req.url.includes('?')) {
    parseQueryOrThrow(NO_PARAMETERS, req.query);
  }
  next();
};
