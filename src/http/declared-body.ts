// Reading a request body of a stated length directly, for the body parsers of http/json-body.ts and
// http/text-body.ts: the body nearly every client sends (of a stated length within the limit, not
// compressed) costs less read here than through body-parser's general path (parsing the type and
// charset again, raw-body's stream bookkeeping, iconv's decoder). Errors are passed on in
// body-parser's shape (`type`, `status`), for http/problem.ts to word alike.
import type { IncomingHttpHeaders } from 'node:http';

import bytes from 'bytes';
import type { Request } from 'express';

export const BYTE_ORDER_MARK = '\uFEFF';

/** A body limit as body-parser reads it (`20mb`, `16kb`), in bytes. */
export function bodyLimitBytes(limit: string): number {
  const parsed = bytes.parse(limit);
  if (parsed === null) {
    throw new Error(`the body limit "${limit}" is not a size (e.g. 20mb)`);
  }
  return parsed;
}

/** An error as body-parser passes it on: http/problem.ts's fromBodyParser words it by `type`. */
export function bodyError(status: number, type: string, message: string): Error {
  return Object.assign(new Error(message), { status, type });
}

/**
 * The length a request's `Content-Length` states for its body as it comes on the wire: undefined
 * when the header is missing or not a plain number, or the body is compressed or chunked.
 */
export function statedLength(headers: IncomingHttpHeaders): number | undefined {
  const length = headers['content-length'];
  const plain = headers['content-encoding'] === undefined && headers['transfer-encoding'] === undefined && length !== undefined && /^[0-9]{1,15}$/.test(length);
  return plain ? Number(length) : undefined;
}

/**
 * The body's length when body-parser would read it as raw bytes of `Content-Length` within the
 * limit, on a stream nothing has read yet (then it can be read here); otherwise undefined. Its
 * socket may have ended: a client that shut its side once its request was written (`nc -N`) has
 * its body in the request, still to be read.
 */
export function declaredLength(req: Request, limit: number): number | undefined {
  const length = statedLength(req.headers);
  const plain = length !== undefined && length > 0 && length <= limit && (req as { upgrade?: boolean }).upgrade !== true && req.readable;
  return plain ? length : undefined;
}

/**
 * Whether the client shut its side of the connection once its whole body was sent, and the body is
 * still unread: body-parser takes such a request for one already read (on-finished looks at the
 * socket) and passes it on without a body, so what it would read is refused, saying why.
 */
export function refusedUnreadAfterShut(req: Request, next: (error?: unknown) => void): boolean {
  if (req.complete && req.readable && req.socket?.readable === false) {
    next(
      bodyError(
        400,
        'request.shut',
        'the connection was shut on the client side before this body could be read: keep it open until the answer, or send the body with a Content-Length, as JSON in UTF-8, not compressed',
      ),
    );
    return true;
  }
  return false;
}

/**
 * Reads the `length` bytes of `req` and hands them to `done`, as received (`chunks`) and whole
 * (`body`); a failure goes to `next` as body-parser reports it. The chunks are copied into one buffer
 * of the stated length as they come, and handed on as views of it: collecting them and joining them
 * at the end held the body twice (128 MB for the largest) while it was joined and decoded.
 */
export function readDeclaredBody(req: Request, length: number, next: (error?: unknown) => void, done: (body: Buffer, chunks: readonly Buffer[]) => void): void {
  // Unsafe (not zeroed): every byte is written before it is read, or the body is refused.
  const body = Buffer.allocUnsafe(length);
  const chunks: Buffer[] = [];
  let received = 0;
  const stop = () => {
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('aborted', onAborted);
    req.off('error', onError);
  };
  const onData = (chunk: Buffer) => {
    // Bytes past the stated length are counted (the body is then refused below), not kept.
    if (received + chunk.length <= length) {
      chunk.copy(body, received);
      chunks.push(body.subarray(received, received + chunk.length));
    }
    received += chunk.length;
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
    done(body, chunks);
  };
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('aborted', onAborted);
  req.on('error', onError);
}
