// The bench's Mailjet: a minimal Send API v3.1 double, independent of jetpost's own simulator and
// shared by jetpost and the reference queues. It answers every message with success and one
// MessageID (above 2^53, written as a raw JSON integer, as Mailjet does) and MessageUUID per
// recipient, after a fixed latency; it sends no event callbacks (the bench posts events itself),
// keeps nothing per message, and so stays cheap and flat in memory through a million-message run.
//
//   node --import tsx bench/mailjet-double.ts --latency-ms 200
// prints {"url": …} once listening. Routes besides the Send API:
//   GET /v3/REST/message?CustomID=…   no messages (jetpost asks only after an unclear send)
//   GET /_double/stats                calls and messages received so far
//   GET /_double/arrival?email=X      waits (up to 10 s) for a message to that recipient; answers
//                                     the wall-clock time (ms, fractional) its call arrived
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

interface SendRequest {
  Messages?: Array<{ To?: Array<{ Email?: string }>; Cc?: Array<{ Email?: string }>; Bcc?: Array<{ Email?: string }>; CustomID?: string }>;
}

/** Recent arrivals kept for /_double/arrival: enough for the sequential probes that use it. */
const ARRIVALS_KEPT = 10_000;
const ARRIVAL_WAIT_MS = 10_000;

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, 'latency-ms': { type: 'string', default: '0' } } });
const latencyMs = Number(values['latency-ms']);
// MessageIDs start above 2^60 plus the start time, so runs against one database never reuse one.
let nextMessageId = 2n ** 60n + BigInt(Date.now()) * 1000n;
let calls = 0;
let messages = 0;
const arrivals = new Map<string, number>();
const waiters = new Map<string, Array<(at: number) => void>>();

function now(): number {
  return performance.timeOrigin + performance.now();
}

function noteArrival(email: string, at: number): void {
  arrivals.set(email, at);
  if (arrivals.size > ARRIVALS_KEPT) {
    arrivals.delete(arrivals.keys().next().value!);
  }
  for (const resolve of waiters.get(email) ?? []) {
    resolve(at);
  }
  waiters.delete(email);
}

function recipientsJson(list: Array<{ Email?: string }> | undefined, at: number): string {
  return `[${(list ?? [])
    .map((recipient) => {
      noteArrival(recipient.Email ?? '', at);
      nextMessageId += 1n;
      const id = nextMessageId.toString();
      return `{"Email":${JSON.stringify(recipient.Email ?? '')},"MessageUUID":"${randomUUID()}","MessageID":${id},"MessageHref":"https://api.mailjet.com/v3/REST/message/${id}"}`;
    })
    .join(',')}]`;
}

function reply(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function send(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const at = now();
  calls += 1;
  let request: SendRequest;
  try {
    request = JSON.parse(await readBody(req)) as SendRequest;
  } catch {
    reply(res, 400, '{"ErrorCode":"mj-0002","StatusCode":400,"ErrorMessage":"Malformed JSON, please review the syntax and properties types."}');
    return;
  }
  const sent = request.Messages ?? [];
  messages += sent.length;
  const body = `{"Messages":[${sent
    .map(
      (message) =>
        `{"Status":"success","CustomID":${JSON.stringify(message.CustomID ?? '')},"To":${recipientsJson(message.To, at)},"Cc":${recipientsJson(message.Cc, at)},"Bcc":${recipientsJson(message.Bcc, at)}}`,
    )
    .join(',')}]}`;
  if (latencyMs > 0) {
    await new Promise((resolve) => setTimeout(resolve, latencyMs));
  }
  reply(res, 200, body);
}

function arrival(url: URL, res: ServerResponse): void {
  const email = url.searchParams.get('email') ?? '';
  const seen = arrivals.get(email);
  if (seen !== undefined) {
    reply(res, 200, JSON.stringify({ at: seen }));
    return;
  }
  const timer = setTimeout(() => {
    waiters.set(
      email,
      (waiters.get(email) ?? []).filter((waiter) => waiter !== answer),
    );
    reply(res, 404, JSON.stringify({ error: `no message to ${email} within ${ARRIVAL_WAIT_MS} ms` }));
  }, ARRIVAL_WAIT_MS);
  const answer = (at: number) => {
    clearTimeout(timer);
    reply(res, 200, JSON.stringify({ at }));
  };
  waiters.set(email, [...(waiters.get(email) ?? []), answer]);
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://double');
  if (req.method === 'POST' && url.pathname === '/v3.1/send') {
    send(req, res).catch((error: unknown) => reply(res, 500, JSON.stringify({ StatusCode: 500, ErrorMessage: String(error) })));
  } else if (req.method === 'GET' && url.pathname === '/v3/REST/message') {
    reply(res, 200, '{"Count":0,"Data":[],"Total":0}');
  } else if (req.method === 'GET' && url.pathname === '/_double/stats') {
    reply(res, 200, JSON.stringify({ calls, messages }));
  } else if (req.method === 'GET' && url.pathname === '/_double/arrival') {
    arrival(url, res);
  } else {
    reply(res, 404, '{"StatusCode":404,"ErrorMessage":"not found"}');
  }
});
// Many keep-alive connections from up to 24 concurrent senders; never time them out mid-run.
server.keepAliveTimeout = 60_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, latencyMs })}\n`);
});
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
});
