// The body of POST /events as UTF-8 text, whatever its Content-Type and charset (it is parsed
// losslessly later: MessageIDs exceed 2^53). JSON has one encoding, UTF-8 (RFC 8259 §8.1), and
// application/json no charset parameter: a sender that declares another charset (ISO-8859-1, or one
// unknown) still sends UTF-8, and decoding as it says would turn josé into josÃ© (another address,
// another event) or refuse the callback with a 415, which Mailjet retries for a day and then drops. A
// body of a stated length, typed as JSON in UTF-8 or not typed at all, is read directly
// (http/declared-body.ts); everything else (chunked, compressed, typed otherwise) by body-parser's
// raw parser. Both give the same text, decoded here: a leading byte order mark dropped, bytes that
// are not UTF-8 decoded to U+FFFD, under the same idle timeout and minimum rate (http/body-pace.ts).
import { isUtf8 } from 'node:buffer';
import { StringDecoder } from 'node:string_decoder';

import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';

import { type BodyPace, withBodyPace } from './body-pace.js';
import { bodyLimitBytes, BYTE_ORDER_MARK, declaredLength, readDeclaredBody, refusedUnreadAfterShut } from './declared-body.js';
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
  const raw = express.raw({ type: () => true, limit: options.limit });
  const general = (req: Request, res: Response, next: NextFunction): void => {
    raw(req, res, (error?: unknown) => {
      if (error === undefined && Buffer.isBuffer(req.body)) {
        req.body = decodeUtf8(req.body, [req.body]);
      }
      next(error);
    });
  };
  const limit = bodyLimitBytes(options.limit);
  return withBodyPace(
    options.pace,
    (req, res, next) => {
      const type = req.headers['content-type'];
      const length = type === undefined || isPlainJsonType(type) ? declaredLength(req, limit) : undefined;
      if (length === undefined) {
        return refusedUnreadAfterShut(req, next) ? undefined : general(req, res, next);
      }
      const fields: object = req;
      if (!('body' in fields)) {
        req.body = undefined;
      }
      readDeclaredBody(req, length, next, (body, chunks) => {
        req.body = decodeUtf8(body, chunks);
        next();
      });
    },
    limit,
  );
}
