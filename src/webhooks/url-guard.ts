// Outbound webhook calls must not become a way into internal services: by default a webhook may not
// resolve to a private, loopback, link-local or otherwise internal address. WEBHOOK_ALLOWED_TARGETS
// lists the exceptions (internal apps often do live on private addresses): host names, addresses
// or CIDR blocks. The check runs when the URL is registered and again on every connection (the
// address actually dialled), so a DNS answer that changes later cannot slip past it.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

import { ValidationError } from '../errors.js';

const INTERNAL_V4 = ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24', '192.168.0.0/16', '198.18.0.0/15', '224.0.0.0/3'];
const INTERNAL_V6 = ['::/128', '::1/128', 'fc00::/7', 'fe80::/10', 'ff00::/8', '64:ff9b::/96'];

const internal = new BlockList();
for (const block of INTERNAL_V4) {
  const [address, prefix] = block.split('/') as [string, string];
  internal.addSubnet(address, Number(prefix), 'ipv4');
}
for (const block of INTERNAL_V6) {
  const [address, prefix] = block.split('/') as [string, string];
  internal.addSubnet(address, Number(prefix), 'ipv6');
}

export interface TargetPolicy {
  /** Host names (exact, lower-case) allowed whatever they resolve to. */
  hosts: ReadonlySet<string>;
  /** Addresses and blocks allowed although internal. */
  addresses: BlockList;
}

/** Parses WEBHOOK_ALLOWED_TARGETS: comma-separated host names, addresses and CIDR blocks. */
export function parseTargetPolicy(list: string): TargetPolicy {
  const hosts = new Set<string>();
  const addresses = new BlockList();
  for (const entry of list.split(',').map((item) => item.trim()).filter(Boolean)) {
    const [address, prefix] = entry.split('/') as [string, string | undefined];
    const family = isIP(address);
    if (family === 0) {
      hosts.add(entry.toLowerCase());
    } else if (prefix === undefined) {
      addresses.addAddress(address, family === 4 ? 'ipv4' : 'ipv6');
    } else {
      addresses.addSubnet(address, Number(prefix), family === 4 ? 'ipv4' : 'ipv6');
    }
  }
  return { hosts, addresses };
}

/** Whether a resolved address may be dialled for this host. */
export function addressAllowed(policy: TargetPolicy, host: string, address: string): boolean {
  if (policy.hosts.has(host.toLowerCase())) {
    return true;
  }
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  // An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) {
    return addressAllowed(policy, host, mapped);
  }
  return policy.addresses.check(address, family) || !internal.check(address, family);
}

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
