// The body of POST /events as text, whatever its Content-Type (it is parsed losslessly later:
// MessageIDs exceed 2^53). A body of a stated length, typed as JSON in UTF-8 or not typed at all,
// is read directly (http/declared-body.ts); everything else goes to body-parser's text parser. Both
// give the same text: a leading byte order mark dropped, bytes that are not UTF-8 decoded to U+FFFD
// as iconv-lite's decoder (Node's StringDecoder, chunk by chunk) decodes them, under the same idle
// timeout and minimum rate (http/body-pace.ts).
import { isUtf8 } from 'node:buffer';
import { StringDecoder } from 'node:string_decoder';

import express, { type RequestHandler } from 'express';

import { type BodyPace, withBodyPace } from './body-pace.js';
import { bodyLimitBytes, BYTE_ORDER_MARK, declaredLength, readDeclaredBody, refusedBeforeContinue, refusedUnreadAfterShut } from './declared-body.js';
import { isPlainJsonType } from './json-body.js';

function decodeUtf8(body: Buffer, chunks: readonly Buffer[]): string {
  let text: string;
  if (isUtf8(body)) {
    text = body.toString('utf8');
  } else {
    const decoder = new StringDecoder('utf8');
    text = chunks.map((chunk) => decoder.write(chunk)).join('') + decoder.end();
  }
  return text.startsWith(BYTE_ORDER_MARK) ? text.slice(1) : text;
}

/** `pace`: how the body must keep coming while it is read (HTTP_BODY_IDLE_TIMEOUT_MS, HTTP_BODY_MIN_RATE). */
export function textBody(options: { limit: string; pace: BodyPace }): RequestHandler {
  const general = express.text({ type: () => true, limit: options.limit });
  const limit = bodyLimitBytes(options.limit);
  return withBodyPace(options.pace, (req, res, next) => {
    const type = req.headers['content-type'];
    const length = type === undefined || isPlainJsonType(type) ? declaredLength(req, limit) : undefined;
    if (length === undefined) {
      return refusedBeforeContinue(req, limit, next) || refusedUnreadAfterShut(req, next) ? undefined : general(req, res, next);
    }
    const fields: object = req;
    if (!('body' in fields)) {
      req.body = undefined;
    }
    readDeclaredBody(req, length, next, (body, chunks) => {
      req.body = decodeUtf8(body, chunks);
      next();
    });
  });
}
