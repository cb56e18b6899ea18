// One webhook POST: a timeout, no redirects followed, the address checked when dialled, and the
// answer's body drained but not kept (an app's endpoint owes us a status code, nothing more).
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';

import { addressAllowed, guardedLookup, type TargetPolicy } from './url-guard.js';

export interface PostResult {
  statusCode: number;
}

export function postJson(url: URL, body: string, headers: Record<string, string>, options: { timeoutMs: number; policy: TargetPolicy }): Promise<PostResult> {
  const transport = url.protocol === 'https:' ? https : http;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // An address literal is dialled without a look-up, so the guard in `lookup` never sees it.
  if (isIP(host) !== 0 && !addressAllowed(options.policy, host, host)) {
    return Promise.reject(new Error(`refused to connect to internal address ${host} (WEBHOOK_ALLOWED_TARGETS)`));
  }
  return new Promise((resolve, reject) => {
    const request = transport.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
        timeout: options.timeoutMs,
        lookup: guardedLookup(options.policy) as unknown as LookupFunction,
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve({ statusCode: response.statusCode ?? 0 }));
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
    request.on('error', reject);
    request.end(body);
  });
}
