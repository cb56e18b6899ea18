// The JSON body parser of every route that takes JSON (but /events, which keeps 64-bit integers).
// body-parser decodes bytes that are not UTF-8 into U+FFFD without a word, so a body sent in
// Latin-1 would be stored altered; it is refused instead.
//
// The body nearly every client sends (JSON in UTF-8, of a stated length within the limit, not
// compressed) is read here directly: body-parser's general path (parsing the type and charset
// again, raw-body's stream bookkeeping, iconv's decoder) cost more per POST /queue than its JSON
// parse. Everything else goes to body-parser. Both answer alike: what body-parser would pass on
// is passed on in its shape (`type`, `status`), for http/problem.ts to word.
import { isUtf8 } from 'node:buffer';

import bytes from 'bytes';
import express, { type Request, type RequestHandler } from 'express';

import { AppError } from '../domain/errors.js';

export interface JsonBodyOptions {
  limit: string;
  /** Only an object or an array at the top (body-parser's `strict`, its default). */
  strict?: boolean;
  /** Content types read (default application/json). */
  type?: string[];
}

/** The Content-Type values read directly: exactly what clients send for JSON in UTF-8. */
const PLAIN_JSON_TYPES = new Set(['application/json', 'application/json; charset=utf-8']);

/** Whether a Content-Type is one of those: JSON, told without parsing the header. */
export function isPlainJsonType(type: string | undefined): boolean {
  return type !== undefined && PLAIN_JSON_TYPES.has(type);
}

const BYTE_ORDER_MARK = '\uFEFF';

function notUtf8(): AppError {
  return new AppError('malformed-json', 400, 'the request body is not valid UTF-8 (send JSON in UTF-8, or name its charset in Content-Type)');
}

/** An error as body-parser passes it on: http/problem.ts's fromBodyParser words it by `type`. */
function bodyError(status: number, type: string, message: string): Error {
  return Object.assign(new Error(message), { status, type });
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

/**
 * Whether body-parser would read this request's body as raw UTF-8 JSON of `Content-Length` bytes
 * within the limit, on a stream nothing has read yet: then it is read here.
 */
function isPlainJson(req: Request, limit: number): boolean {
  const { headers } = req;
  const length = headers['content-length'];
  return (
    isPlainJsonType(headers['content-type']) &&
    headers['content-encoding'] === undefined &&
    headers['transfer-encoding'] === undefined &&
    length !== undefined &&
    /^[0-9]{1,15}$/.test(length) &&
    Number(length) > 0 &&
    Number(length) <= limit &&
    (req as { upgrade?: boolean }).upgrade !== true &&
    req.readable &&
    req.socket?.readable === true
  );
}

/** Reads `length` bytes of `req` and parses them; errors as body-parser reports them. */
function readPlainJson(req: Request, length: number, strict: boolean, next: (error?: unknown) => void): void {
  const chunks: Buffer[] = [];
  let received = 0;
  const stop = () => {
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('aborted', onAborted);
    req.off('error', onError);
  };
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    chunks.push(chunk);
  };
  const onAborted = () => {
    stop();
    next(bodyError(400, 'request.aborted', 'request aborted'));
  };
  const onError = (error: Error) => {
    stop();
    next(Object.assign(error, { status: 400 }));
  };
  const onEnd = () => {
    stop();
    if (received !== length) {
      next(bodyError(400, 'request.size.invalid', 'request size did not match content length'));
      return;
    }
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received);
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
  };
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('aborted', onAborted);
  req.on('error', onError);
}

export function jsonBody(options: JsonBodyOptions): RequestHandler {
  const general = express.json({
    ...options,
    verify: (_req, _res, body, charset) => {
      if ((charset === 'utf-8' || charset === 'utf8') && !isUtf8(body)) {
        throw notUtf8();
      }
    },
  });
  const limit = bytes.parse(options.limit);
  if (limit === null) {
    throw new Error(`the body limit "${options.limit}" is not a size (e.g. 20mb)`);
  }
  const strict = options.strict !== false;
  const readsPlainJson = (options.type ?? ['application/json']).includes('application/json');
  return (req, res, next) => {
    if (!readsPlainJson || !isPlainJson(req, limit)) {
      return general(req, res, next);
    }
    const fields: object = req;
    if (!('body' in fields)) {
      req.body = undefined;
    }
    readPlainJson(req, Number(req.headers['content-length']), strict, next);
  };
}
