// The bench's own HTTP client (bulk posting, events, probes and the open-loop generator):
// node:http over keep-alive connections, lighter than fetch at a thousand requests a second.
import { Agent, request as httpRequest } from 'node:http';

// With a timeout set, node's agent drops an idle connection a second before the server's announced
// Keep-Alive timeout (5 s for node servers), instead of reusing one the server is closing.
const agent = new Agent({ keepAlive: true, maxSockets: 512, timeout: 60_000 });

export interface Answer {
  status: number;
  body: string;
  /** The request went on a connection opened for it, not on a kept-alive one. */
  newConnection: boolean;
}

export function request(method: string, url: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method,
        agent,
        headers: body === undefined ? headers : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), newConnection: !req.reusedSocket }));
        res.on('error', reject);
      },
    );
    req.on('error', (error) => reject(new Error(`${method} ${new URL(url).pathname}: ${error.message}`, { cause: error })));
    req.end(body);
  });
}

/** Like request(), but any status other than `expected` is an error naming the call and the answer. */
export async function expectStatus(expected: number, method: string, url: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return checkStatus(expected, method, url, await request(method, url, headers, body));
}

/** The answer of `method url`, or an error naming the call and the answer if its status is not `expected`. */
export function checkStatus(expected: number, method: string, url: string, answer: Answer): Answer {
  if (answer.status !== expected) {
    throw new Error(`${method} ${new URL(url).pathname} answered ${answer.status} (expected ${expected}): ${answer.body.slice(0, 300)}`);
  }
  return answer;
}

/** Calls send(i) for i in [0, count), `parallel` at a time. */
export async function inParallel(count: number, parallel: number, send: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next;
      next += 1;
      await send(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes of this machine. */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The nearest-rank percentile (0–100) of the values; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) {
    return Number.NaN;
  }
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
