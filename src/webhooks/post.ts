// One webhook POST: one deadline for the whole exchange (look-up, connect, sending, status line,
// headers and body), no redirects followed, the address checked when dialled, and at most
// RESPONSE_BODY_LIMIT bytes of the answer read (an app's endpoint owes us a status code, nothing more).
// A socket idle timeout alone would not do: a receiver that sends a byte a second is never idle.
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';

import { addressAllowed, type TargetPolicy } from '../domain/target-policy.js';
import { guardedLookup } from './url-guard.js';

/** Bytes of the answer's body read before the connection is closed: enough to end a normal answer. */
export const RESPONSE_BODY_LIMIT = 16 * 1024;

export interface PostResult {
  statusCode: number;
  /** The answer's Retry-After header, when it has one. */
  retryAfter?: string | undefined;
}

export interface PostOptions {
  /** Deadline of the whole exchange, in ms. */
  timeoutMs: number;
  policy: TargetPolicy;
  /** Cuts the exchange short (shutdown); it then fails with the signal's reason. */
  signal?: AbortSignal;
}

export function postJson(url: URL, body: string, headers: Record<string, string>, options: PostOptions): Promise<PostResult> {
  const transport = url.protocol === 'https:' ? https : http;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // An address literal is dialled without a look-up, so the guard in `lookup` never sees it.
  if (isIP(host) !== 0 && !addressAllowed(options.policy, host, host)) {
    return Promise.reject(new Error(`refused to connect to internal address ${host} (WEBHOOK_ALLOWED_TARGETS)`));
  }
  const { signal } = options;
  if (signal?.aborted) {
    return Promise.reject(abortReason(signal));
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (outcome: { result: PostResult } | { error: Error }) => {
      if (settled) {
        return;
      }
      settled = true;
      clearTimeout(deadline);
      signal?.removeEventListener('abort', onAbort);
      if ('result' in outcome) {
        // Answered before it read all of the body: the rest is not sent. Left writing, the socket
        // Node's client has detached from a finished answer would throw the write's failure (a
        // reset) out of the process.
        if (!request.writableFinished) {
          request.destroy();
        }
        resolve(outcome.result);
      } else {
        // Destroying the request also destroys its socket and the answer being read.
        request.destroy();
        reject(outcome.error);
      }
    };
    const onAbort = () => settle({ error: abortReason(signal!) });

    const request = transport.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
        lookup: guardedLookup(options.policy),
      },
      (response) => {
        const result = { statusCode: response.statusCode ?? 0, retryAfter: response.headers['retry-after'] };
        let received = 0;
        response.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > RESPONSE_BODY_LIMIT) {
            // The status is known; the rest of an oversized body is not worth a byte more.
            settle({ result });
            request.destroy();
          }
        });
        response.on('end', () => settle({ result }));
        // Node says only "aborted" (ECONNRESET) of an answer cut short: the reason is worded for the deliveries list.
        response.on('error', (error) => settle({ error: new Error(`${ANSWER_CUT_SHORT} (${error.message})`, { cause: error }) }));
        response.on('close', () => settle({ error: new Error(ANSWER_CUT_SHORT) }));
      },
    );
    const deadline = setTimeout(() => settle({ error: new Error(`no complete answer within ${options.timeoutMs} ms`) }), options.timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    request.on('error', (error) => settle({ error: worded(error) }));
    request.end(body);
  });
}

const ANSWER_CUT_SHORT = 'the receiver closed the connection before its answer was complete';

/** llhttp's refusals of the answer (`HPE_…`: "Parse Error: Header overflow") said as such; other errors (ECONNREFUSED…) as they are. */
function worded(error: Error & { code?: unknown }): Error {
  return typeof error.code === 'string' && error.code.startsWith('HPE_')
    ? new Error(`the receiver's answer is not valid HTTP/1.1 (${error.message})`, { cause: error })
    : error;
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('the webhook POST was aborted');
}
