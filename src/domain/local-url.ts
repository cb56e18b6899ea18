// Where a process on this machine reaches a server that listens on an address: a wildcard address
// is where it listens, not where to reach it (this machine's loopback is); an IPv6 address goes in
// brackets. The start-up log's URL and `jetpost health` both use it, so they never disagree.

/** The base URL, such as http://127.0.0.1:3000, for a server listening on `host` (an address or a host name) and `port`. */
export function localUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}
