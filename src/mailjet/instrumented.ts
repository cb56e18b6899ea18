// The Mailjet client, reporting each request on the bus: its class (ok, rate_limited, server_error,
// client_error, unauthorized, timeout, network, answer_too_large) and its duration, and for look-ups by CustomID
// whether Mailjet knew the message. Wrapped around the client in main.ts, so that neither the
// client nor the consumers carry metrics code.
import type { Bus, MailjetCallClass } from '../bus.js';
import type { SendResponse } from '../domain/mailjet-outcome.js';
import type { MailjetClient } from './client.js';
import { TOO_LARGE_CODE } from './send-call.js';

/** axios's codes for a request that ran out of time (ECONNABORTED by default, ETIMEDOUT with clarifyTimeoutError). */
const TIMEOUT_CODES = new Set(['ECONNABORTED', 'ETIMEDOUT']);

/**
 * The class of one Mailjet answer, by HTTP status; `timeout` and `network` when there was none, and
 * `answer_too_large` for one not read because it was over MAX_ANSWER_BYTES (whatever its status).
 */
export function mailjetCallClass(response: Pick<SendResponse, 'status' | 'networkCode'>): MailjetCallClass {
  const { status } = response;
  if (status === null) {
    if (response.networkCode === TOO_LARGE_CODE) {
      return 'answer_too_large';
    }
    return TIMEOUT_CODES.has(response.networkCode ?? '') ? 'timeout' : 'network';
  }
  if (status === 429) {
    return 'rate_limited';
  }
  if (status === 401 || status === 403) {
    return 'unauthorized';
  }
  if (status >= 500) {
    return 'server_error';
  }
  return status >= 400 ? 'client_error' : 'ok';
}

export function instrumentMailjetClient(client: MailjetClient, bus: Bus, now: () => number = () => performance.now()): MailjetClient {
  return {
    ...client,
    async send(body) {
      const started = now();
      const response = await client.send(body);
      bus.emit('mailjet:request', { class: mailjetCallClass(response), durationMs: now() - started });
      return response;
    },
    async findByCustomId(customId) {
      const found = await client.findByCustomId(customId);
      bus.emit('mailjet:lookup', { result: !Array.isArray(found) ? 'error' : found.length > 0 ? 'found' : 'not_found' });
      return found;
    },
  };
}
