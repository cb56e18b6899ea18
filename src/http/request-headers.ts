// What a request's head must say before any route reads it. Node's server answers an HTTP/1.1
// request without `Host` itself, with a bare 400 and no body (main.ts turns that off so that it is
// answered here, in words). A header that must come once and came twice is refused: Node keeps the
// first `Authorization`, `Content-Type` or `Host` without a word, and joins two `Idempotency-Key`s
// into one value ("a, b"), a key neither retry would match. (Two `Content-Length`s are refused by
// Node's parser: http/connections.ts answers them.) A transfer coding other than `chunked`
// (`Transfer-Encoding: gzip, chunked`) is refused (501, as RFC 9112 §6.1 asks): Node's parser takes
// off the chunks and leaves the rest, so the body would be read as if it were not gzip-coded at all.
// A request line of another HTTP version than 1.1 or 1.0 is refused (505): Node's parser reads
// `HTTP/2.0` and `HTTP/0.9` as versions (it refuses others, such as `HTTP/1.2`: http/connections.ts
// answers them alike), and the request would be served as HTTP/1.1 to a client that speaks another.
// An HTTP/1.0 request with a Transfer-Encoding is refused (400): HTTP/1.0 has none, so its framing
// is faulty (RFC 9112 §6.1), and a proxy in front that reads it as 1.0 sees another body than Node's.
import type { RequestHandler } from 'express';

import { AppError } from '../domain/errors.js';

const MISSING_HOST = new AppError(
  'malformed-request',
  400,
  'an HTTP/1.1 request needs a Host header (RFC 9112 §3.2), e.g. "Host: jetpost.example.com"; nothing was stored, the connection is closed',
  { headers: { Connection: 'close' } },
);

/** Only `chunked` is taken off a body; the connection is closed, the body left unread. */
const TRANSFER_CODING_NOT_IMPLEMENTED = (codings: string) =>
  new AppError(
    'transfer-coding-not-implemented',
    501,
    `the request's Transfer-Encoding is "${codings}": jetpost takes only "chunked" (to compress a body, send it with Content-Encoding); nothing was stored, the connection is closed`,
    { headers: { Connection: 'close' } },
  );

/** A request line of an HTTP version other than 1.1 and 1.0 (`version` when it was read); the connection is closed. */
export const versionNotSupported = (version?: string) =>
  new AppError(
    'http-version-not-supported',
    505,
    `${version === undefined ? "the request line's HTTP version is not one jetpost reads" : `the request line says HTTP/${version}`}: jetpost speaks HTTP/1.1 (and HTTP/1.0); send the request as HTTP/1.1; nothing was stored, the connection is closed`,
    { headers: { Connection: 'close' } },
  );

const TRANSFER_CODING_IN_HTTP_1_0 = new AppError(
  'malformed-request',
  400,
  'an HTTP/1.0 request has no Transfer-Encoding (RFC 9112 §6.1): send it as HTTP/1.1, or with a Content-Length; nothing was stored, the connection is closed',
  { headers: { Connection: 'close' } },
);

/** The headers read as one value, by their lower-case names. */
const SINGLE_VALUED = new Set(['host', 'authorization', 'content-type', 'idempotency-key']);

/** The names (as sent) of the single-valued headers `rawHeaders` holds more than once. */
function repeatedHeaders(rawHeaders: readonly string[]): string[] {
  const seen = new Set<string>();
  const repeated = new Map<string, string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (!SINGLE_VALUED.has(name)) {
      continue;
    }
    if (seen.has(name)) {
      repeated.set(name, rawHeaders[i]!);
    }
    seen.add(name);
  }
  return [...repeated.values()];
}

export const checkRequestHead: RequestHandler = (req, _res, next) => {
  if (req.httpVersionMajor !== 1 || (req.httpVersionMinor !== 1 && req.httpVersionMinor !== 0)) {
    next(versionNotSupported(req.httpVersion));
    return;
  }
  // As Node's own check (requireHostHeader): HTTP/1.0 needs none; an empty one names no host either.
  if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && !req.headers.host) {
    next(MISSING_HOST);
    return;
  }
  const codings = req.headers['transfer-encoding'];
  if (codings !== undefined && req.httpVersionMinor === 0) {
    next(TRANSFER_CODING_IN_HTTP_1_0);
    return;
  }
  if (codings !== undefined && codings.trim().toLowerCase() !== 'chunked') {
    next(TRANSFER_CODING_NOT_IMPLEMENTED(codings));
    return;
  }
  // Node makes one key of each name: fewer keys than raw headers means some name came twice.
  const repeated = Object.keys(req.headers).length * 2 === req.rawHeaders.length ? [] : repeatedHeaders(req.rawHeaders);
  if (repeated.length > 0) {
    next(
      new AppError(
        'duplicate-header',
        400,
        `the request has the header ${repeated.join(' and the header ')} more than once: send it once, with one value (which of them was meant cannot be told); nothing was stored`,
      ),
    );
    return;
  }
  next();
};
