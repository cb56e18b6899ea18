// The JSON body parser of every route that takes JSON (but /events, which keeps 64-bit integers).
// body-parser decodes bytes that are not UTF-8 into U+FFFD without a word, so a body sent in
// Latin-1 would be stored altered; it is refused instead.
//
// The body nearly every client sends (JSON in UTF-8, of a stated length within the limit, not
// compressed) is read directly (http/declared-body.ts): body-parser's general path cost more per
// POST /queue than its JSON parse. Everything else goes to body-parser. Both answer alike: what
// body-parser would pass on is passed on in its shape (`type`, `status`), for http/problem.ts to word,
// and both read under the same idle timeout and minimum rate (http/body-pace.ts).
import { isUtf8 } from 'node:buffer';

import express, { type RequestHandler } from 'express';

import { AppError } from '../domain/errors.js';
import { type BodyPace, withBodyPace } from './body-pace.js';
import { bodyError, bodyLimitBytes, BYTE_ORDER_MARK, declaredLength, readDeclaredBody, refusedUnreadAfterShut } from './declared-body.js';
import { hasBody } from './expect-continue.js';

export interface JsonBodyOptions {
  limit: string;
  /** How the body must keep coming while it is read (HTTP_BODY_IDLE_TIMEOUT_MS, HTTP_BODY_MIN_RATE). */
  pace: BodyPace;
  /** Only an object or an array at the top (body-parser's `strict`, its default). */
  strict?: boolean;
  /** Content types read (default application/json). */
  type?: string[];
  /**
   * The error for a request without a body, whatever its Content-Type, or with one that turns out
   * empty once read (chunked, so no Content-Length said so); body-parser would parse either as {}.
   */
  emptyBody?: () => Error;
}

/** The Content-Type values read directly: exactly what clients send for JSON in UTF-8. */
const PLAIN_JSON_TYPES = new Set(['application/json', 'application/json; charset=utf-8']);

/** Whether a Content-Type is one of those: JSON, told without parsing the header. */
export function isPlainJsonType(type: string | undefined): boolean {
  return type !== undefined && PLAIN_JSON_TYPES.has(type);
}

/**
 * A body of another type was left unread, as if absent: a route then said its object was missing
 * ("is required: an object") to a client that sent one (curl -d sends it as a form). A body of no
 * length, of whatever type, is none.
 */
function notJson(): AppError {
  return new AppError('unsupported-media-type', 415, 'the request body is not sent as JSON: send it with Content-Type: application/json');
}

function notUtf8(): AppError {
  return new AppError(
    'malformed-json',
    400,
    'the request body is not valid UTF-8: JSON is sent in UTF-8 (RFC 8259); convert a body in Latin-1 or another charset before sending it',
  );
}

/** The decoded body as body-parser parses it: a byte order mark dropped, nothing as {}, `strict` as it checks it. */
function parseJson(text: string, strict: boolean): unknown {
  const json = text.startsWith(BYTE_ORDER_MARK) ? text.slice(1) : text;
  if (json.length === 0) {
    return {};
  }
  if (strict && !/^[ \t\n\r]*[{[]/.test(json)) {
    throw new SyntaxError('the body is not an object or an array');
  }
  return JSON.parse(json) as unknown;
}

export function jsonBody(options: JsonBodyOptions): RequestHandler {
  const { pace, emptyBody, ...parserOptions } = options;
  const general = express.json({
    ...parserOptions,
    verify: (_req, _res, body, charset) => {
      if (body.length === 0 && emptyBody !== undefined) {
        throw emptyBody();
      }
      if ((charset === 'utf-8' || charset === 'utf8') && !isUtf8(body)) {
        throw notUtf8();
      }
    },
  });
  const limit = bodyLimitBytes(options.limit);
  const strict = options.strict !== false;
  const types = options.type ?? ['application/json'];
  const readsPlainJson = types.includes('application/json');
  return withBodyPace(
    pace,
    (req, res, next) => {
      if (emptyBody !== undefined && !hasBody(req)) {
        next(emptyBody());
        return;
      }
      const plain = readsPlainJson && isPlainJsonType(req.headers['content-type']);
      if (!plain && hasBody(req) && !req.is(types)) {
        next(notJson());
        return;
      }
      const length = plain ? declaredLength(req, limit) : undefined;
      if (length === undefined) {
        return refusedUnreadAfterShut(req, next) ? undefined : general(req, res, next);
      }
      const fields: object = req;
      if (!('body' in fields)) {
        req.body = undefined;
      }
      readDeclaredBody(req, length, next, (body) => {
        if (!isUtf8(body)) {
          next(notUtf8());
          return;
        }
        try {
          req.body = parseJson(body.toString('utf8'), strict);
        } catch (error) {
          next(bodyError(400, 'entity.parse.failed', (error as Error).message));
          return;
        }
        next();
      });
    },
    limit,
  );
}
