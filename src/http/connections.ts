// What Node's HTTP server decides about a connection, outside any request: here set so that an
// answer that is due reaches its client.
//
// Bytes the parser cannot read ('clientError'). Node answers a bare 400 and closes the connection at
// once, even when they came after a request it had read whole, whose answer is still being made: a
// client that sent a few bytes more than its Content-Length lost the 202 of a message that was
// stored, and retried it. Such an error now waits for the answers to the requests read before it,
// then is answered (problem+json) and the connection closed.
//
// A client that shuts its side once its request is written (`nc -N`, a shutdown(SHUT_WR)). Node
// ends the connection at once unless `httpAllowHalfOpen` is set: the request, stored, was left
// without its answer. With it set (undocumented, still in Node's server and used by its own tests),
// Node closes the connection after the answers to the requests it has read, as HTTP/1.1 allows.
//
// `Expect: 100-continue`: see http/expect-continue.ts; any other expectation is refused (417) in words.
//
// CONNECT, which asks a proxy for a tunnel: refused (405) in words, not by a connection closed in silence.
//
// Headers past the 2,000th: Node dropped them unsaid (its default maxHeadersCount), and 2,000 short
// ones fit in the 16 KB a head may take, so a second Idempotency-Key or a `Transfer-Encoding: gzip,
// chunked` put after them went unseen by http/request-headers.ts. Every header is kept: the 16 KB
// bound their number.
//
// An answer that closes the connection while the request's body still arrives: see http/lingering-close.ts.
//
// Requests sent ahead of their answers (pipelining). Node reads every request that came in one read
// and makes each answer in turn, keeping in memory those the client has not read yet: 400
// connections that each sent 50 GET /openapi.yaml in one write and read nothing took a process to
// 3 GB, without a key. A connection with more than MAX_PIPELINED requests unanswered is closed,
// and their answers with it. Clients do not pipeline that deep (browsers, curl and undici send the
// next request once the answer came).
//
// An answer its client does not read at all: see http/write-stall.ts.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

import { AppError } from '../domain/errors.js';
import { continueOnRead } from './expect-continue.js';
import { lingerOnClose } from './lingering-close.js';
import { PROBLEM_CONTENT_TYPE, problemOf } from './problem.js';
import { versionNotSupported } from './request-headers.js';

/** What Node's parser and server raise (llhttp's HPE_* codes, Node's ERR_* ones), with the bytes read and where the parser stopped in them. */
type ClientError = Error & { code?: string; reason?: string; rawPacket?: Buffer; bytesParsed?: number };

/**
 * Node's server keeps the answer the socket is writing in `_httpMessage` (its 'clientError' handler
 * reads it for the same purpose: not to write over an answer begun); the answers to requests
 * pipelined after it wait their turn and take the socket once it is finished.
 */
type HttpSocket = Socket & { _httpMessage?: ServerResponse | null };

/** The error that tells what the parser refused (Node's own answers, with a body that says why). */
function refusal(error: ClientError): AppError {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      // The parser counts the request line with the headers: a URL of 10,000 ids overflows them too.
      return new AppError(
        'headers-too-large',
        431,
        'the request line and headers are larger than the server reads (16 KB in all, a long URL or query string included: GET /status takes at most 100 ids or custom_id values at once); the connection is closed',
      );
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new AppError('payload-too-large', 413, 'the chunk extensions of the request body are too large; the connection is closed');
    case 'HPE_INVALID_EOF_STATE':
      // The parser's name for a connection shut by its client before the request was whole.
      return new AppError(
        'malformed-request',
        400,
        'the connection was shut on the client side before the whole request arrived (a body shorter than its Content-Length, or a chunked body without its last chunk); nothing was stored: send the request again, whole',
      );
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
      // Two Content-Lengths, one beside Transfer-Encoding, one not of plain digits: llhttp's reason
      // says which, in its words; what the client is to send, in ours.
      return new AppError(
        'malformed-request',
        400,
        `where the request body ends cannot be told (${error.reason ?? error.code}): send one Content-Length of plain digits, or Transfer-Encoding: chunked alone; nothing was stored, the connection is closed`,
      );
    case 'HPE_CR_EXPECTED':
      return bareLineFeed(error);
    case 'HPE_INVALID_VERSION':
      // `HTTP/1.2`, `HTTP/3.0`, `HTTP/1.10`: what Node reads (`HTTP/2.0`) http/request-headers.ts
      // refuses alike. llhttp says the same of any byte after a version but the line's end (`HTTP/1.1
      // extra`, a space or tab): that is no other version, but a request line that is not HTTP. And
      // of a request line ended by LF alone, stopping on the next line's first byte.
      if (afterBareLineFeed(error)) {
        return bareLineFeed(error);
      }
      return afterVersion(error) ? MALFORMED_REQUEST_LINE : versionNotSupported();
    case 'HPE_PAUSED_H2_UPGRADE':
      // `PRI * HTTP/2.0`: the preface of an HTTP/2 client that assumed HTTP/2 without asking.
      return versionNotSupported('2.0');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new AppError(
        'request-timeout',
        408,
        'the request did not arrive whole within the time allowed (5 minutes); nothing was stored, the connection is closed',
      );
    default:
      return new AppError(
        'malformed-request',
        400,
        `the request is not valid HTTP/1.1 (${error.reason === undefined ? '' : `${error.reason}: `}${error.code ?? 'unreadable'}); the connection is closed`,
      );
  }
}

const MALFORMED_REQUEST_LINE = new AppError(
  'malformed-request',
  400,
  'the request line is not "METHOD /path HTTP/1.1": something follows its HTTP version (a word, a space or a tab); nothing was stored, the connection is closed',
);

// `printf 'GET / HTTP/1.1\nHost: x\n\n' | nc` (without -C), or a client of its own writing "\n".
// llhttp's reason says which line ("Missing expected CR after header value").
function bareLineFeed(error: ClientError): AppError {
  return new AppError(
    'malformed-request',
    400,
    `a line of the request ends with LF ("\\n") alone (${error.reason ?? error.code}): HTTP/1.1 ends each line of the head, and of a chunked body's framing, with CRLF ("\\r\\n"); nothing was stored, the connection is closed`,
  );
}

/** Whether the parser stopped right after a LF that no CR came before. */
function afterBareLineFeed(error: ClientError): boolean {
  const at = error.bytesParsed ?? -1;
  return error.rawPacket?.[at - 1] === 0x0a && error.rawPacket[at - 2] !== 0x0d;
}

/** Whether the parser stopped on a byte that can be no part of a version number: one after a whole version. */
function afterVersion(error: ClientError): boolean {
  const byte = error.rawPacket?.[error.bytesParsed ?? -1];
  return byte !== undefined && !/[0-9.\r\n]/.test(String.fromCharCode(byte));
}

/** The whole answer, written on the socket itself (no request object serves it), the connection then closed. */
function answerOf(error: AppError): string {
  const problem = problemOf(error);
  const body = JSON.stringify(problem);
  // Connection: close is written below, whatever the error says.
  const headers = Object.entries(error.headers ?? {})
    .filter(([name]) => name.toLowerCase() !== 'connection')
    .map(([name, value]) => `${name}: ${value}\r\n`);
  return (
    `HTTP/1.1 ${problem.status} ${problem.title}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n${headers.join('')}` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

/** Sockets whose parser error is being answered: the parser raises it again for every later read. */
const answering = new WeakSet<Duplex>();

function answerClientError(error: ClientError, duplex: Duplex): void {
  const socket = duplex as HttpSocket;
  if (answering.has(socket)) {
    return;
  }
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  answering.add(socket);
  // Nothing more is read from a client whose bytes could not be parsed.
  socket.pause();
  const answer = () => {
    const current = socket._httpMessage;
    // A request read whole before the bad bytes is answered first (then the next one, pipelined).
    if (current && current.req.complete) {
      current.once('finish', answer);
      return;
    }
    // The last answer closed the connection itself (its request asked for Connection: close).
    if (!socket.writable) {
      return;
    }
    // An answer begun to a request cut by the error cannot be finished: the connection is only closed.
    if (!current?.headersSent) {
      socket.end(answerOf(refusal(error)));
    }
    socket.destroySoon();
  };
  answer();
}

/** Requests a connection may have sent whose answers are not finished (above). */
export const MAX_PIPELINED = 4;

/**
 * `handle`, for the requests of a connection that has at most MAX_PIPELINED unanswered: one with more
 * is closed, and neither that request nor those read with it are handled (their answers would be
 * made for nobody, and held until the whole read was gone through).
 */
export function limitPipelining(handle: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
  const unanswered = new WeakMap<Socket, number>();
  return (req, res) => {
    const socket = req.socket;
    if (socket.destroyed) {
      return;
    }
    const count = (unanswered.get(socket) ?? 0) + 1;
    if (count > MAX_PIPELINED) {
      socket.destroy();
      return;
    }
    unanswered.set(socket, count);
    res.once('close', () => unanswered.set(socket, (unanswered.get(socket) ?? 1) - 1));
    handle(req, res);
  };
}

/** Sets how `server` treats its connections (above). */
export function configureConnections(server: Server): void {
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  server.maxHeadersCount = 0;
  server.on('connection', lingerOnClose);
  server.on('clientError', answerClientError);
  // CONNECT (a proxy's tunnel): without this listener Node closes the connection without a word.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.end(answerOf(NOT_A_PROXY));
  });
  // What Node does without this listener, but for the 100 Continue written when the body is read.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    continueOnRead(req, res);
    server.emit('request', req, res);
  });
  // Any other expectation: Node's own 417 has an empty body. The body that may follow is not read.
  server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
    const body = JSON.stringify(problemOf(EXPECTATION_FAILED));
    res.writeHead(417, { 'Content-Type': PROBLEM_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body), Connection: 'close' }).end(body);
  });
}

const NOT_A_PROXY = new AppError(
  'method-not-allowed',
  405,
  'CONNECT asks for a tunnel, and jetpost is not a proxy: send the request itself (GET, POST…) to jetpost; the connection is closed',
  { headers: { Allow: 'DELETE, GET, HEAD, OPTIONS, POST, PUT' } },
);

const EXPECTATION_FAILED = new AppError(
  'expectation-failed',
  417,
  'the Expect header asks for what this server does not do: only "Expect: 100-continue" is understood; send the request again without Expect; nothing was stored',
);
