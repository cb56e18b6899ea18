// Mailjet's requests that jetpost's delivery rests on, made directly over node:http(s) on kept-alive
// connections: the Send API call (POST /v3.1/send), made for every batch, where node-mailjet's axios
// stack (request interceptors, a JavaScript JSON parser for big integers) cost more CPU than the rest
// of a send; and the message look-up by CustomID, which decides whether a message is sent again, and
// whose answer axios bounded in time only until its headers (a body that kept coming held it for ever).
// The answer is read as node-mailjet read it: integers longer than 15 digits (MessageIDs) come back as
// exact decimal strings, a body that is not JSON comes back as its text, and no answer at all (a
// timeout, a refused or cut connection) is a network failure: its outcome unknown once the request
// may have left, a plain failure (never sent) while its connection was still being made.
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

import { splitJsonBody } from '../domain/json-elements.js';
import type { SendResponse } from '../domain/mailjet-outcome.js';
import { sendAgent } from './agent.js';

export interface MailjetCallOptions {
  /** Mailjet's base URL (its path, if any, comes before /v3.1/send). */
  baseUrl: URL;
  apiKey: string;
  apiSecret: string;
  /** The whole call, from sending to the last byte of the answer. */
  timeoutMs: number;
}

/** The Send API's path, after the base URL's. */
export const SEND_PATH = '/v3.1/send';

/** Mailjet's answers are one object; nesting deeper than this is not Mailjet's and is kept as text. */
const ANSWER_LIMITS = { maxDepth: 64, maxLength: Number.MAX_SAFE_INTEGER, maxElements: 1 };

/**
 * The most of an answer that is read. A Send API answer for the largest call (50 recipients) is about
 * 20 KB, a look-up's for a job's 50 recipients about as much; a bigger one is not Mailjet's to trust, and reading it whole would hold that much memory
 * per call in flight. The call's outcome is then unknown: its messages are looked up before a resend.
 */
export const MAX_ANSWER_BYTES = 1024 * 1024;
/** The code of an answer cut off at MAX_ANSWER_BYTES. */
export const TOO_LARGE_CODE = 'EANSWERTOOLARGE';
/** The code axios (and so node-mailjet) gives a request that ran out of time. */
const TIMEOUT_CODE = 'ECONNABORTED';
/** The code of a call the egress proxy refused to pass on. */
const PROXY_REFUSED_CODE = 'EPROXY';

/**
 * A call of `path` (with its query) after the base URL's path: a POST of `body` when there is one, else
 * a GET. Its answer as a SendResponse, whatever the path.
 */
export type MailjetCall = (path: string, body?: string) => Promise<SendResponse>;

export function createMailjetCall({ baseUrl, apiKey, apiSecret, timeoutMs }: MailjetCallOptions): MailjetCall {
  const transport = baseUrl.protocol === 'http:' ? http : https;
  const agent = sendAgent(baseUrl);
  const base = baseUrl.pathname.replace(/\/+$/, '');
  const authorization = `Basic ${Buffer.from(`${apiKey}:${apiSecret}`).toString('base64')}`;

  return (path, body) =>
    new Promise<SendResponse>((resolve) => {
      // Whether any byte of the request may have left: from the moment its connection is up (TCP, and
      // the TLS handshake on https). A failure before that (a refused connection, a failed DNS lookup,
      // a failed or timed-out handshake, a proxy that refused the tunnel) means Mailjet never saw it.
      let connected = false;
      let settled = false;
      const settle = (response: SendResponse) => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          resolve(response);
        }
      };
      const request = transport.request(
        new URL(`${base}${path}`, baseUrl.origin),
        {
          method: body === undefined ? 'GET' : 'POST',
          agent,
          headers:
            body === undefined
              ? { authorization, accept: 'application/json' }
              : { authorization, accept: 'application/json', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (answer) => {
          if (answer.statusCode === 407) {
            // The proxy's answer, not Mailjet's (which never asks for proxy credentials): not sent.
            answer.resume();
            settle(proxyRefused('the proxy asked for credentials (407): check HTTP_PROXY'));
            return;
          }
          const chunks: Buffer[] = [];
          let bytes = 0;
          answer.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (bytes > MAX_ANSWER_BYTES) {
              settle(tooLarge(answer.statusCode ?? 0));
              request.destroy();
              return;
            }
            chunks.push(chunk);
          });
          answer.on('end', () => settle(toSendResponse(answer.statusCode ?? 0, answer.headers['retry-after'], Buffer.concat(chunks).toString('utf8'))));
          // Cut before its end (a timeout, a reset): no answer to go by.
          answer.on('error', (error) => settle(unreachable(error)));
          // It closes after every answer: the error (and its stack trace) only for one cut short.
          answer.on('close', () => {
            if (!settled) {
              settle(unreachable(Object.assign(new Error('the connection closed before the answer ended'), { code: 'ECONNRESET' })));
            }
          });
        },
      );
      const timer = setTimeout(() => {
        request.destroy(Object.assign(new Error(`timeout of ${timeoutMs}ms exceeded`), { code: TIMEOUT_CODE }));
      }, timeoutMs);
      request.on('socket', (socket) => {
        if (isEstablished(socket)) {
          connected = true;
        } else {
          socket.once(socket instanceof TLSSocket ? 'secureConnect' : 'connect', () => (connected = true));
        }
      });
      request.on('error', (error) => settle(connected ? unreachable(error) : neverSent(error)));
      // A proxy that refuses the tunnel would have its answer read as Mailjet's (https-proxy-agent
      // replays it): Mailjet never saw the call.
      request.on('proxyConnect', (connect: { statusCode?: number }) => {
        // A tunnel's answer has a status; a plain-HTTP proxy's connection (http-proxy-agent) none.
        if (connect.statusCode !== undefined && connect.statusCode !== 200) {
          settle(proxyRefused(`the proxy refused the tunnel to Mailjet (${connect.statusCode}): check HTTPS_PROXY`));
          request.destroy();
        }
      });
      request.end(body);
    });
}

function toSendResponse(status: number, retryAfter: string | string[] | undefined, text: string): SendResponse {
  const split = splitJsonBody(text, ANSWER_LIMITS);
  const element = split.ok && split.elements.length === 1 ? split.elements[0]! : undefined;
  const body = element !== undefined && 'value' in element ? element.value : text;
  if (status >= 200 && status < 300) {
    return { status, body, description: `Mailjet ${status}` };
  }
  const errorMessage = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>)['ErrorMessage'] : undefined;
  return {
    status,
    body,
    retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
    description: `Mailjet ${status}: ${typeof errorMessage === 'string' ? errorMessage : `Request failed with status code ${status}`}`,
  };
}

/** An answer too big to read: whatever its status, what it says about the messages is unknown. */
function tooLarge(status: number): SendResponse {
  return {
    status: null,
    body: undefined,
    networkCode: TOO_LARGE_CODE,
    description: `Mailjet's answer (HTTP ${status}) was over ${MAX_ANSWER_BYTES} bytes and was not read`,
  };
}

/** A call the egress proxy did not pass on: Mailjet never saw it. */
function proxyRefused(reason: string): SendResponse {
  return neverSent(Object.assign(new Error(reason), { code: PROXY_REFUSED_CODE }));
}

/**
 * A kept-alive socket is already up; a new one is up once connected and, for TLS, once this side has
 * finished its handshake (a proxy agent hands over a TLS socket still shaking hands).
 */
function isEstablished(socket: Socket): boolean {
  return socket instanceof TLSSocket ? socket.getFinished() !== undefined : !socket.connecting;
}

/** No connection was made: the request never left, so it is a plain failure, retried without a look-up. */
function neverSent(error: Error & { code?: string }): SendResponse {
  const code = error.code ?? 'ERROR';
  return {
    status: null,
    body: undefined,
    networkCode: code,
    neverSent: true,
    description: `Mailjet unreachable (${code}): never sent: ${error.message}`.trim(),
  };
}

function unreachable(error: Error & { code?: string }): SendResponse {
  const code = error.code ?? 'ERROR';
  return { status: null, body: undefined, networkCode: code, description: `Mailjet unreachable (${code}): ${error.message}`.trim() };
}
