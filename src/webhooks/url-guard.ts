// Outbound webhook calls must not become a way into internal services (domain/target-policy.ts says
// which addresses a webhook may reach). The check runs when the URL is registered and again on every
// connection (the address actually dialled), so a DNS answer that changes later cannot slip past it.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';

import { ValidationError } from '../domain/errors.js';
import { WEBHOOK_URL_MAX_LENGTH } from '../domain/input-schemas.js';
import { addressAllowed, type TargetPolicy } from '../domain/target-policy.js';

/** Checks a webhook URL before it is stored: scheme, and where its host resolves to now. */
export async function checkWebhookUrl(policy: TargetPolicy, raw: string): Promise<URL> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ValidationError('the webhook URL is not a URL', [{ path: 'url', message: 'an absolute http(s) URL' }]);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ValidationError('the webhook URL must be http or https', [{ path: 'url', message: 'http or https only' }]);
  }
  // Every attempt at port 0 would fail; refused now rather than retried for a day.
  if (url.port === '0') {
    throw new ValidationError('the webhook URL has port 0, which cannot be connected to', [{ path: 'url', message: 'a port from 1 to 65535' }]);
  }
  // The URL is stored and dialled as the parser writes it: spaces, non-ASCII and the like
  // percent-encoded (one "é" is six characters), so that form is what must fit.
  const stored = url.toString();
  if (stored.length > WEBHOOK_URL_MAX_LENGTH) {
    throw new ValidationError(
      `the webhook URL is ${stored.length} characters once percent-encoded as it is stored and used (spaces and non-ASCII characters take 3 to 12 each): at most ${WEBHOOK_URL_MAX_LENGTH}`,
      [{ path: 'url', message: `at most ${WEBHOOK_URL_MAX_LENGTH} characters, percent-encoded` }],
    );
  }
  // Never sent (HTTP has no place for it): every call would go to the URL without it, another than
  // the one given, such as a single-page app's index, which may well answer 2xx to every call.
  if (url.href.includes('#')) {
    throw new ValidationError('the webhook URL has a fragment (from #), which is never sent: calls would go to the URL without it', [
      { path: 'url', message: 'no #fragment; a token belongs in the path or the query' },
    ]);
  }
  if (url.username || url.password) {
    throw new ValidationError('the webhook URL must not carry credentials: the signature authenticates jetpost', [
      { path: 'url', message: 'no user:password@ part' },
    ]);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = await resolveAll(host).catch(() => {
    throw new ValidationError(`the webhook host ${host} does not resolve`, [{ path: 'url', message: 'the host name does not resolve' }]);
  });
  const refused = addresses.filter((address) => !addressAllowed(policy, host, address.address));
  if (refused.length > 0) {
    throw new ValidationError(
      `the webhook host ${host} resolves to an internal address (${refused.map((a) => a.address).join(', ')}); add it to WEBHOOK_ALLOWED_TARGETS to allow it`,
      [{ path: 'url', message: 'internal addresses are refused by default' }],
    );
  }
  return url;
}

function resolveAll(host: string): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => {
    dnsLookup(host, { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses)));
  });
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for http.request that refuses to dial an address the policy does not allow. */
export function guardedLookup(policy: TargetPolicy) {
  return (host: string, options: object, callback: LookupCallback): void => {
    dnsLookup(host, { ...options, all: true }, (error, addresses) => {
      if (error) {
        callback(error, '');
        return;
      }
      const refused = addresses.find((address) => !addressAllowed(policy, host, address.address));
      if (refused) {
        const blocked: NodeJS.ErrnoException = new Error(`refused to connect to ${host} at internal address ${refused.address} (WEBHOOK_ALLOWED_TARGETS)`);
        blocked.code = 'EWEBHOOKTARGET';
        callback(blocked, '');
        return;
      }
      if ((options as { all?: boolean }).all) {
        callback(null, addresses);
      } else {
        callback(null, addresses[0]!.address, addresses[0]!.family);
      }
    });
  };
}
