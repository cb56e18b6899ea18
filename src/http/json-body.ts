// The JSON body parser of every route that takes JSON (but /events, which keeps 64-bit integers).
// body-parser decodes bytes that are not UTF-8 into U+FFFD without a word, so a body sent in
// Latin-1 would be stored altered; it is refused instead.
import { isUtf8 } from 'node:buffer';

import express, { type RequestHandler } from 'express';

import { AppError } from '../domain/errors.js';

export function jsonBody(options: { limit: string; strict?: boolean; type?: string[] }): RequestHandler {
  return express.json({
    ...options,
    verify: (_req, _res, body, charset) => {
      if ((charset === 'utf-8' || charset === 'utf8') && !isUtf8(body)) {
        throw new AppError('malformed-json', 400, 'the request body is not valid UTF-8 (send JSON in UTF-8, or name its charset in Content-Type)');
      }
    },
  });
}
