// Errors → application/problem+json (RFC 9457). The one place that decides what a caller sees: an
// AppError speaks for itself; anything else is a 500 with an id that leads to the log line.
import { randomUUID } from 'node:crypto';

import type { ErrorRequestHandler, RequestHandler, Response } from 'express';

import { AppError, coerceError, databaseUnavailableDetail, isDatabaseUnavailable, ServiceUnavailableError } from '../domain/errors.js';
import type { Logger } from '../log.js';
import { routeTemplate } from './route-template.js';

export const PROBLEM_TYPE_BASE = 'https://jetpost.dev/problems/';
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: { path: string; message: string }[];
  error_id?: string;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  417: 'Expectation Failed',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  505: 'HTTP Version Not Supported',
};

/** The problem document that tells `error`. */
export function problemOf(error: AppError, extra: Partial<Problem> = {}): Problem {
  return {
    type: `${PROBLEM_TYPE_BASE}${error.code}`,
    title: TITLES[error.status] ?? 'Error',
    status: error.status,
    detail: error.message,
    ...(error.fields ? { errors: error.fields } : {}),
    ...extra,
  };
}

export function sendProblem(res: Response, error: AppError, extra: Partial<Problem> = {}): void {
  const problem = problemOf(error, extra);
  for (const [name, value] of Object.entries(error.headers ?? {})) {
    res.setHeader(name, value);
  }
  res.status(error.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem));
}

/** Bytes as a person reads a limit: 20 MB, 16 KB (body-parser's units: 1 kb = 1024 bytes). */
function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ['GB', 1024 ** 3],
    ['MB', 1024 ** 2],
    ['KB', 1024],
  ] as const) {
    if (bytes >= size && bytes % size === 0) {
      return `${bytes / size} ${unit}`;
    }
  }
  return `${bytes} bytes`;
}

/**
 * zlib's codes (Z_DATA_ERROR, Z_BUF_ERROR…) and brotli's (ERR__ERROR_FORMAT_…), which body-parser
 * passes on as a bare 400 whose message ("incorrect header check") names neither the body nor the
 * encoding.
 */
const DECOMPRESSION_ERROR_CODE = /^(Z_|ERR__ERROR_FORMAT_)/;

/**
 * body-parser's errors carry `type` and `status`, as does the router's for a path it cannot decode:
 * they are the caller's fault and say so.
 * `contentEncoding` is the request's, for a body that does not decompress.
 */
export function fromBodyParser(
  error: { type?: unknown; status?: unknown; message?: unknown; limit?: unknown; code?: unknown; charset?: unknown; encoding?: unknown; name?: unknown },
  contentEncoding?: string,
): AppError | undefined {
  switch (error.type) {
    case 'entity.parse.failed':
      // Without a word of where (JSON.parse's message quotes the body): what serializers write by
      // default that JSON is not, Python's json.dumps its NaN foremost.
      return new AppError(
        'malformed-json',
        400,
        "the request body is not valid JSON (RFC 8259): NaN, Infinity, single quotes, comments and trailing commas are not JSON (Python's json.dumps writes NaN unless given allow_nan=False)",
      );
    case 'entity.too.large':
      return new AppError(
        'payload-too-large',
        413,
        typeof error.limit === 'number'
          ? `the request body is larger than this endpoint accepts: at most ${error.limit} bytes (${formatBytes(error.limit)})`
          : 'the request body is larger than this endpoint accepts',
      );
    case 'encoding.unsupported':
      return new AppError(
        'unsupported-encoding',
        415,
        `the request's Content-Encoding "${String(error.encoding)}" is not one jetpost decodes: send the body plain, or compressed once with gzip, deflate or br`,
      );
    case 'charset.unsupported':
      // body-parser decodes JSON from the utf-* charsets only: Latin-1 bytes are to be converted, not named.
      // "utf8" is UTF-8 by another name (the body is likely fine): "send it in UTF-8" would puzzle its sender.
      return new AppError(
        'unsupported-encoding',
        415,
        error.charset === 'utf8'
          ? 'the request body\'s charset is written "utf8": write it "utf-8", its registered name (Content-Type: application/json; charset=utf-8), or leave it out'
          : `the request body's charset "${String(error.charset)}" is not one JSON is read in: send it in UTF-8 (RFC 8259), as Content-Type: application/json`,
      );
    case 'request.aborted':
      return new AppError('request-aborted', 400, 'the request was aborted before its body arrived');
    case 'request.timeout':
      return new AppError('request-timeout', 408, `${String(error.message)}; nothing was stored: send the request again`);
    default:
      if (error.status === 400 && typeof error.code === 'string' && DECOMPRESSION_ERROR_CODE.test(error.code)) {
        return new AppError(
          'bad-request',
          400,
          `the request body is not valid ${contentEncoding ?? 'compressed'} data, as its Content-Encoding says it is (${String(error.message)}): send it compressed that way, or uncompressed without Content-Encoding`,
        );
      }
      if (error.status === 400 && error.name === 'URIError') {
        // The router's own words ("Failed to decode param '%ZZ'") say neither where nor what to send.
        return new AppError('bad-request', 400, 'the path has a malformed percent escape: encode "%" as %25, and text as UTF-8');
      }
      return typeof error.status === 'number' && error.status >= 400 && error.status < 500
        ? new AppError('bad-request', error.status, typeof error.message === 'string' ? error.message : 'bad request')
        : undefined;
  }
}

/** The lines it logs name the request by its route's pattern, never its path (which may hold an address). */
export function errorHandler(log: Logger, onDatabaseUnavailable: (error: Error) => void = () => {}): ErrorRequestHandler {
  return (thrown, req, res, next) => {
    if (res.headersSent) {
      next(thrown);
      return;
    }
    if (thrown instanceof AppError) {
      sendProblem(res, thrown);
      return;
    }
    const clientError =
      typeof thrown === 'object' && thrown !== null ? fromBodyParser(thrown as Record<string, unknown>, req.headers['content-encoding']) : undefined;
    if (clientError) {
      if (clientError.code === 'request-timeout') {
        // A body that stopped coming, or came too slowly (http/body-pace.ts): said once, with how much of it came.
        const { receivedBytes, statedBytes } = thrown as { receivedBytes?: number; statedBytes?: number };
        log.warn('a request body was refused (408)', {
          component: 'http',
          method: req.method,
          route: routeTemplate(req) ?? '-',
          receivedBytes,
          statedBytes,
          reason: clientError.message,
        });
      }
      sendProblem(res, clientError);
      return;
    }
    const error = coerceError(thrown);
    if (isDatabaseUnavailable(error)) {
      log.warn('database unavailable during a request', { component: 'http', method: req.method, route: routeTemplate(req) ?? '-', error: error.message });
      onDatabaseUnavailable(error);
      sendProblem(res, new ServiceUnavailableError(databaseUnavailableDetail(error)));
      return;
    }
    const errorId = randomUUID();
    log.error('unhandled error in a request', { component: 'http', method: req.method, route: routeTemplate(req) ?? '-', errorId, error });
    sendProblem(res, new AppError('internal', 500, 'something went wrong on our side; quote error_id when reporting it'), { error_id: errorId });
  };
}

export const notFoundHandler: RequestHandler = (req, res) => {
  sendProblem(res, new AppError('not-found', 404, `no route for ${req.method} ${req.path}`));
};
