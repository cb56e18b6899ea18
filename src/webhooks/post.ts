// One webhook POST: one deadline for the exchange up to the answer's status line and headers
// (look-up, connect, sending, answer head), no redirects followed, the address checked when dialled.
// The status line and headers are the answer (an app's endpoint owes us a status code, nothing
// more): the attempt is settled on them, and the body is not waited for (only read a moment, when
// short, to keep the connection). A 2xx whose body drips is
// delivered, not retried as a timeout (the app would get the change twice).
// A socket idle timeout alone would not do: a receiver that drips its head a byte a second is never idle.
import http from 'node:http';
import https from 'node:https';
import { isIP, type Socket } from 'node:net';

import { addressAllowed, type TargetPolicy } from '../domain/target-policy.js';
import { guardedLookup } from './url-guard.js';

export interface PostResult {
  statusCode: number;
  /** The answer's Retry-After header, when it has one. */
  retryAfter?: string | undefined;
}

export interface PostOptions {
  /** Deadline of the exchange up to the answer's head, in ms. */
  timeoutMs: number;
  policy: TargetPolicy;
  /** Cuts the exchange short (shutdown); it then fails with the signal's reason. */
  signal?: AbortSignal;
  /** Told, with what closed it, when the call goes again on a new connection after a reused one was closed. */
  onNewConnection?: (reason: Error) => void;
}

/**
 * The most of an answer's status line and headers read. Node's client reads 16 KiB, and a receiver
 * whose framework sets large cookies or policies answered a 2xx past it: the attempt then failed, and
 * the receiver, which had taken the call, got it again on every retry for a day. curl reads 100 KiB.
 */
const ANSWER_HEAD_MAX_BYTES = 256 * 1024;

/** How a kept-alive connection the receiver closed as it was reused fails: a reset, a write to a closed socket, or Node's "socket hang up". */
const STALE_CONNECTION_CODES: ReadonlySet<unknown> = new Set(['ECONNRESET', 'EPIPE']);

export async function postJson(url: URL, body: string, headers: Record<string, string>, options: PostOptions): Promise<PostResult> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // An address literal is dialled without a look-up, so the guard in `lookup` never sees it.
  if (isIP(host) !== 0 && !addressAllowed(options.policy, host, host)) {
    throw new Error(`refused to connect to internal address ${host} (WEBHOOK_ALLOWED_TARGETS)`);
  }
  const { signal } = options;
  if (signal?.aborted) {
    throw abortReason(signal);
  }
  // The deadline and the caller's signal cut the exchange, both calls of it, through one signal.
  const cut = new AbortController();
  const deadline = setTimeout(() => cut.abort(new Error(`no complete answer within ${options.timeoutMs} ms`)), options.timeoutMs);
  const onAbort = () => cut.abort(abortReason(signal!));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const first = await exchange(url, body, headers, options.policy, cut.signal, undefined);
    if ('result' in first) {
      return first.result;
    }
    // A kept-alive connection the receiver closed as it was reused (its idle timeout firing as the
    // call was written), before a byte of an answer: the receiver said nothing, so the call goes
    // again at once, once, on a new connection, within the same deadline. Any other failure is the
    // attempt's. Had the receiver taken the call, the repeat carries the same webhook-id.
    if (!first.staleConnection || cut.signal.aborted) {
      throw first.error;
    }
    options.onNewConnection?.(first.error);
    const second = await exchange(url, body, headers, options.policy, cut.signal, false);
    if ('result' in second) {
      return second.result;
    }
    throw second.error;
  } finally {
    clearTimeout(deadline);
    signal?.removeEventListener('abort', onAbort);
  }
}

type Exchange = { result: PostResult } | { error: Error; staleConnection: boolean };

/** One call on a connection of the agent (`undefined`: the shared pool; `false`: a new connection of its own). */
function exchange(
  url: URL,
  body: string,
  headers: Record<string, string>,
  policy: TargetPolicy,
  cut: AbortSignal,
  agent: false | undefined,
): Promise<Exchange> {
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    /** Whether any byte of an answer came on the connection during this call. */
    let answered = false;
    const onData = () => (answered = true);
    const settle = (outcome: Exchange) => {
      if (settled) {
        return;
      }
      settled = true;
      cut.removeEventListener('abort', onAbort);
      request.socket?.off('data', onData);
      if ('result' in outcome) {
        // Answered before it read all of the body: the rest is not sent. Left writing, the socket
        // Node's client has detached from a finished answer would throw the write's failure (a
        // reset) out of the process.
        if (!request.writableFinished) {
          request.destroy();
        }
      } else {
        // Destroying the request also destroys its socket and the answer being read.
        request.destroy();
      }
      resolve(outcome);
    };
    const onAbort = () => settle({ error: cut.reason as Error, staleConnection: false });

    const request = transport.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
        lookup: guardedLookup(policy),
        agent,
        maxHeaderSize: ANSWER_HEAD_MAX_BYTES,
      },
      (response) => {
        settle({ result: { statusCode: response.statusCode ?? 0, retryAfter: response.headers['retry-after'] } });
        if (response.statusCode === 101) {
          // Whatever follows is not HTTP/1.1: the connection is no one's next call.
          request.destroy();
        } else {
          readShortBody(request, response);
        }
      },
    );
    // A 101 with Upgrade headers comes here, not to the callback; left unheard, Node closed the
    // socket and the exchange waited for its deadline, holding one of the app's delivery slots.
    request.on('upgrade', (response: http.IncomingMessage, socket: Socket) => {
      socket.destroy();
      settle({ result: { statusCode: 101, retryAfter: response.headers['retry-after'] } });
    });
    request.on('socket', (socket) => {
      if (!settled) {
        socket.on('data', onData);
      }
    });
    cut.addEventListener('abort', onAbort, { once: true });
    request.on('error', (error: Error & { code?: unknown }) =>
      settle({ error: worded(error), staleConnection: request.reusedSocket && !answered && STALE_CONNECTION_CODES.has(error.code) }),
    );
    request.end(body);
  });
}

/** How much of an answer's body is read after its head, and for how long, to keep its connection. */
const BODY_WAIT_BYTES = 4 * 1024;
const BODY_WAIT_MS = 20;

/**
 * Reads an answer's body to its end when it came with the head, or is short and soon there (in the
 * next TLS record or TCP segment): the connection then goes back to the agent for the next delivery,
 * with no new handshake. Any other body (dripped, endless, 1 GB) is not worth a byte or a socket
 * more: the connection is closed. The attempt was settled on the head either way.
 */
function readShortBody(request: http.ClientRequest, response: http.IncomingMessage): void {
  // Decided once the socket's read under way is parsed: what came in it is read whole.
  const drop = () =>
    setImmediate(() => {
      if (!response.complete) {
        request.destroy();
      }
    });
  let read = 0;
  const wait = setTimeout(drop, BODY_WAIT_MS);
  response.on('error', () => {});
  response.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read > BODY_WAIT_BYTES) {
      drop();
    }
  });
  response.on('close', () => clearTimeout(wait));
}

/**
 * The codes of OpenSSL's certificate checks that mean "issued by no CA this process trusts":
 * self-signed, an internal CA, or a chain the receiver sent without its intermediates.
 */
const UNTRUSTED_ISSUER_CODES: ReadonlySet<unknown> = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
]);

/** Other refusals of the receiver's certificate: expired, not yet valid, for another name, revoked… */
const REFUSED_CERTIFICATE_CODE = /^(CERT_|ERR_TLS_CERT_|HOSTNAME_MISMATCH$|INVALID_CA$)/;

/** What OpenSSL makes of a plain HTTP answer to its handshake. */
const PLAIN_HTTP_REASONS: ReadonlySet<string> = new Set(['wrong version number', 'packet length too long']);

/** The reason in an OpenSSL error string ("…:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/…"). */
const OPENSSL_REASON = /:error:[0-9A-F]+:[^:]*:[^:]*:([^:]+):/;

/**
 * llhttp's refusals of the answer (`HPE_…`: "Parse Error: Header overflow"), Node's bare "socket
 * hang up" (the connection closed before the answer's head was whole) and TLS failures (a refused
 * certificate: whose, and how to trust an internal CA; a failed handshake without OpenSSL's trace)
 * said as such, for the deliveries list; other errors (ECONNREFUSED…) as they are.
 */
function worded(error: Error & { code?: unknown }): Error {
  const code = typeof error.code === 'string' ? error.code : '';
  if (code.startsWith('HPE_')) {
    return new Error(`the receiver's answer is not valid HTTP/1.1 (${error.message})`, { cause: error });
  }
  if (code === 'ECONNRESET') {
    return new Error(`the receiver closed the connection before it answered (${error.message})`, { cause: error });
  }
  if (UNTRUSTED_ISSUER_CODES.has(code)) {
    return new Error(
      `the receiver's TLS certificate was refused: ${error.message} (${code}); it must come with its whole chain, up to a CA this jetpost trusts (an internal CA: NODE_EXTRA_CA_CERTS)`,
      { cause: error },
    );
  }
  const reason = OPENSSL_REASON.exec(error.message)?.[1];
  if (reason !== undefined) {
    const plainHttp = PLAIN_HTTP_REASONS.has(reason) ? ' (does it speak plain HTTP on this port, for an http:// URL?)' : '';
    return new Error(`the TLS handshake with the receiver failed: ${reason}${plainHttp}`, { cause: error });
  }
  if (REFUSED_CERTIFICATE_CODE.test(code)) {
    return new Error(`the receiver's TLS certificate was refused: ${error.message} (${code})`, { cause: error });
  }
  return error;
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('the webhook POST was aborted');
}
