// What a request's head must say before any route reads it. Node's server answers an HTTP/1.1
// request without `Host` itself, with a bare 400 and no body (main.ts turns that off so that it is
// answered here, in words).
import type { RequestHandler } from 'express';

import { AppError } from '../domain/errors.js';

const MISSING_HOST = new AppError(
  'malformed-request',
  400,
  'an HTTP/1.1 request needs a Host header (RFC 9112 §3.2), e.g. "Host: jetpost.example.com"; nothing was stored, the connection is closed',
  { headers: { Connection: 'close' } },
);

export const checkRequestHead: RequestHandler = (req, _res, next) => {
  // As Node's own check (requireHostHeader): HTTP/1.0 needs none; an empty one names no host either.
  if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && !req.headers.host) {
    next(MISSING_HOST);
    return;
  }
  next();
};
