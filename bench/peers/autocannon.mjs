// The closed-loop HTTP load generator (autocannon), in its own process so that its CPU is not
// taken from the bench or the server under test. argv[2] is a JSON object: url, method, headers,
// body, connections, seconds. Prints one JSON line: requests per second, latency percentiles in
// ms, and the count of answers that were not 2xx or did not come.
import process from 'node:process';

import autocannon from 'autocannon';

import { runMain } from './common.mjs';

runMain(async () => {
  const spec = JSON.parse(process.argv[2] ?? '{}');
  const result = await autocannon({
    url: spec.url,
    method: spec.method ?? 'POST',
    headers: spec.headers ?? {},
    body: spec.body,
    connections: spec.connections ?? 50,
    duration: spec.seconds ?? 10,
  });
  process.stdout.write(
    `${JSON.stringify({
      requestsPerSecond: result.requests.total / result.duration,
      requests: result.requests.total,
      latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
      non2xx: result.non2xx,
      errors: result.errors + result.timeouts,
    })}\n`,
  );
});
