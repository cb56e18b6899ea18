// Which addresses a webhook may reach, pure: by default not a private, loopback, link-local or
// otherwise internal one. WEBHOOK_ALLOWED_TARGETS lists the exceptions (internal apps often do live
// on private addresses): host names, addresses or CIDR blocks. webhooks/url-guard.ts applies this
// to the addresses a host resolves to. (node:net's isIP and BlockList are pure: no socket is opened.)
import { BlockList, isIP } from 'node:net';

import ipaddr from 'ipaddr.js';

export interface TargetPolicy {
  /** Host names (exact, lower-case) allowed whatever they resolve to. */
  hosts: ReadonlySet<string>;
  /** Addresses and blocks allowed although internal. */
  addresses: BlockList;
}

/** A host name: dot-separated labels of letters, digits, inner hyphens and underscores (compose service names have them). */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/i;

type AddressBlock = { address: string; family: number; prefix?: number };
type TargetEntry = { host: string } | AddressBlock;

/**
 * An address, or a CIDR block (`10.0.0.0/8`): its parts, why its prefix length is wrong, or
 * undefined when `entry` does not start with an address. Serves WEBHOOK_ALLOWED_TARGETS and
 * TRUST_PROXY (config.ts).
 */
export function addressBlock(entry: string): AddressBlock | { problem: string } | undefined {
  const [address, prefix, extra] = entry.split('/') as [string, string | undefined, string | undefined];
  const family = isIP(address);
  if (family === 0) {
    return undefined;
  }
  if (prefix === undefined) {
    return { address, family };
  }
  const bits = family === 4 ? 32 : 128;
  if (extra !== undefined || !/^\d{1,3}$/.test(prefix) || Number(prefix) > bits) {
    return { problem: `"${entry}": the prefix length after / must be 0 to ${bits}` };
  }
  return { address, family, prefix: Number(prefix) };
}

/** One entry of WEBHOOK_ALLOWED_TARGETS, or why it is none (a typo must not start as a silent no-op). */
function targetEntry(entry: string): TargetEntry | { problem: string } {
  const block = addressBlock(entry);
  if (block !== undefined) {
    return block;
  }
  if (!HOST_NAME.test(entry)) {
    return { problem: `"${entry}" is not a host name, an address or a CIDR block` };
  }
  // A URL reads a host whose last label is a number as an address (`10.1` is 10.0.0.1) or refuses it
  // (`192.168.1.300`): listed as a name, such an entry matched no webhook URL, and said nothing.
  if (/^(\d+|0x[0-9a-f]*)$/i.test(entry.split('.').at(-1)!)) {
    return { problem: `"${entry}" is not a whole address (four numbers from 0 to 255, such as 10.0.0.1) nor a host name (its last part is a number)` };
  }
  return { host: entry.toLowerCase() };
}

const entriesOf = (list: string) =>
  list
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

/** Why WEBHOOK_ALLOWED_TARGETS cannot be read, one line per bad entry (checked at start, config.ts). */
export function targetListProblems(list: string): string[] {
  return entriesOf(list).flatMap((entry) => {
    const parsed = targetEntry(entry);
    return 'problem' in parsed ? [parsed.problem] : [];
  });
}

/** Parses WEBHOOK_ALLOWED_TARGETS (comma-separated host names, addresses and CIDR blocks), checked by targetListProblems. */
export function parseTargetPolicy(list: string): TargetPolicy {
  const hosts = new Set<string>();
  const addresses = new BlockList();
  for (const entry of entriesOf(list)) {
    const parsed = targetEntry(entry);
    if ('problem' in parsed) {
      throw new Error(`WEBHOOK_ALLOWED_TARGETS: ${parsed.problem}`);
    }
    if ('host' in parsed) {
      hosts.add(parsed.host);
    } else if (parsed.prefix === undefined) {
      addresses.addAddress(parsed.address, parsed.family === 4 ? 'ipv4' : 'ipv6');
    } else {
      addresses.addSubnet(parsed.address, parsed.prefix, parsed.family === 4 ? 'ipv4' : 'ipv6');
    }
  }
  return { hosts, addresses };
}

/**
 * Whether a resolved address may be dialled for this host. A fully qualified name (one trailing dot,
 * as in `billing.default.svc.cluster.local.`) is the host it names: refused as internal, it was told
 * to add to WEBHOOK_ALLOWED_TARGETS a host already there, which cannot be listed with its dot.
 */
export function addressAllowed(policy: TargetPolicy, host: string, address: string): boolean {
  return policy.hosts.has(host.toLowerCase().replace(/(?<!\.)\.$/, '')) || ipAllowed(policy, address);
}

function ipAllowed(policy: TargetPolicy, address: string): boolean {
  // Node's own parser first: it refuses the odd forms (octal, short) that ipaddr.js would read.
  if (isIP(address) === 0) {
    return false;
  }
  const ip = ipaddr.parse(address);
  if (policy.addresses.check(ip.toString(), ip.kind())) {
    return true;
  }
  if (ip.kind() === 'ipv4') {
    // ipaddr.js names every special-purpose block (private, loopback, reserved — 6to4 relays and
    // benchmarking included —, CGNAT, …); only what it leaves as plain unicast is public.
    return ip.range() === 'unicast';
  }
  const v6 = ip as ipaddr.IPv6;
  const embedded = embeddedIPv4(v6);
  if (embedded !== undefined) {
    // A transition form reaches the IPv4 host it carries: judge that host (allow-list included).
    return embedded.length > 0 && embedded.every((v4) => ipAllowed(policy, v4.toString()));
  }
  // Only global unicast (2000::/3) is public; within it ipaddr.js names the special blocks
  // (documentation, benchmarking, ORCHID, …). Outside it: site-local, discard-only, unique- and
  // link-local, multicast, and space not yet assigned.
  return v6.match(GLOBAL_UNICAST) && v6.range() === 'unicast';
}

const GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');
const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR('64:ff9b::/96');

/**
 * The IPv4 addresses an IPv6 transition form carries, or undefined when it is not one. An empty
 * list means "a transition form whose IPv4 address cannot be read": refused unless allow-listed.
 */
function embeddedIPv4(ip: ipaddr.IPv6): ipaddr.IPv4[] | undefined {
  const bytes = ip.toByteArray();
  const v4 = (offset: number, mask = 0) => new ipaddr.IPv4(bytes.slice(offset, offset + 4).map((byte) => byte ^ mask));
  switch (ip.range()) {
    case 'ipv4Mapped': // ::ffff:a.b.c.d
    case 'rfc6145': // ::ffff:0:a.b.c.d, IPv4-translated
      return [v4(12)];
    case 'rfc6052':
      // NAT64: the well-known prefix carries the address in its last 32 bits. In local-use prefixes
      // (64:ff9b:1::/48, RFC 8215) where it sits depends on the prefix length the network chose
      // (RFC 6052 §2.2), so it cannot be read reliably; they are local by definition.
      return ip.match(NAT64_WELL_KNOWN) ? [v4(12)] : [];
    case '6to4': // 2002:AABB:CCDD::/48
      return [v4(2)];
    case 'teredo': // the server's IPv4 address in bits 32–63, the client's XORed with 0xffffffff in the last 32
      return [v4(4), v4(12, 0xff)];
    default:
      // ::a.b.c.d, IPv4-compatible (deprecated, unnamed in ipaddr.js); :: and ::1 read as 0.0.0.0 and 0.0.0.1.
      return bytes.slice(0, 12).every((byte) => byte === 0) ? [v4(12)] : undefined;
  }
}
