// How send calls reach Mailjet: on kept-alive connections, directly, or through the proxy the
// environment names for Mailjet's URL (HTTPS_PROXY or HTTP_PROXY, with NO_PROXY, as curl and
// node-mailjet's own REST calls read them). An HTTPS Mailjet is reached through a CONNECT tunnel,
// so the proxy sees only the host; a plain-HTTP one as an absolute-URL request. A simulator on this
// machine is always reached directly: a proxy set for the whole host would not know it.
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';

import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';

import { ConfigError } from '../config.js';

/**
 * The proxy the environment names for send calls to `target`; null when they go directly. One that
 * is not a URL is a bad setting (a ConfigError, exit 78), named without its value: it may hold a password.
 */
export function sendProxy(target: URL): URL | null {
  if (isLoopback(target.hostname)) {
    return null;
  }
  const proxy = getProxyForUrl(target);
  if (proxy === '') {
    return null;
  }
  try {
    return new URL(proxy.includes('://') ? proxy : `http://${proxy}`);
  } catch (error) {
    throw new ConfigError(
      `invalid configuration:\n  HTTPS_PROXY or HTTP_PROXY (or ALL_PROXY), the proxy for send calls to ${target.origin}: not a URL, such as http://proxy.internal:3128 (its value is not shown: it may hold a password)`,
      { cause: error },
    );
  }
}

/** The proxy as the log may show it: without its credentials. */
export function describeProxy(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

export function sendAgent(target: URL): http.Agent {
  const proxy = sendProxy(target);
  const secure = target.protocol === 'https:';
  if (proxy === null) {
    return secure ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  }
  return secure ? new HttpsProxyAgent(proxy, { keepAlive: true }) : new HttpProxyAgent(proxy, { keepAlive: true });
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) {
    return true;
  }
  return isIP(host) === 4 ? host.startsWith('127.') : host === '::1';
}
