// What the reference runs share: their settings (from the environment the bench gives them), the
// email job they all do, the one way they call the Mailjet double, and the JSON lines they report.
// Plain JavaScript, run by node from this folder, so that jetpost's tsc and its dependencies never
// see these packages.
import { Buffer } from 'node:buffer';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

function setting(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (fallback === undefined) {
      throw new Error(`${name} is not set`);
    }
    return fallback;
  }
  return value;
}

/** The settings of a reference run; read when called, so a file that needs none can import this one. */
export function readSettings() {
  return {
    databaseUrl: setting('DATABASE_URL'),
    mailjetUrl: setting('MAILJET_URL', ''),
    jobs: Number(setting('JOBS', '0')),
    /** Jobs per insert call: the same as jetpost's bulk POST /queue in the bench. */
    bulk: Number(setting('BULK', '500')),
    /** Insert calls in flight at once. */
    posters: Number(setting('POSTERS', '4')),
    drain: setting('DRAIN', '1') === '1',
    /** Longest wait for a drain before the run is called failed. */
    timeoutMs: Number(setting('TIMEOUT_MS', '1800000')),
  };
}

/** The same message jetpost's side of the bench sends: one recipient, a short text part. */
export function emailMessage(i) {
  return { from: 'bench@example.com', to: `peer-${i}@example.com`, subject: 'Bench', text: 'Hello from the benchmark' };
}

const authorization = `Basic ${Buffer.from('bench:bench').toString('base64')}`;
// Keep-alive connections, as any Mailjet client holds them (node-mailjet's axios does too).
const agent = new Agent({ keepAlive: true, maxSockets: 64, timeout: 60_000 });

function postJson(url, body) {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { authorization, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Messages the Mailjet double has answered 200 for, in this process. */
let messagesSent = 0;

/** One Mailjet Send API v3.1 call carrying these messages; throws unless Mailjet answers 200. */
export async function sendToMailjet(mailjetUrl, messages) {
  const body = {
    Messages: messages.map((message) => ({
      From: { Email: message.from },
      To: [{ Email: message.to }],
      Subject: message.subject,
      TextPart: message.text,
      CustomID: message.customId ?? '',
    })),
  };
  const { status, text } = await postJson(`${mailjetUrl}/v3.1/send`, JSON.stringify(body));
  if (status !== 200) {
    throw new Error(`Mailjet answered ${status}: ${text.slice(0, 200)}`);
  }
  messagesSent += messages.length;
}

/** Runs insert(first, count) over [0, total) in chunks of `size`, `parallel` calls at a time. */
export async function inChunks(total, size, parallel, insert) {
  let next = 0;
  const poster = async () => {
    while (next < total) {
      const first = next;
      next += size;
      await insert(first, Math.min(size, total - first));
    }
  };
  await Promise.all(Array.from({ length: parallel }, poster));
}

/**
 * Polls remaining() until it answers 0; throws after timeoutMs. As jetpost's drain is checked
 * (bench/systems.ts, waitUntilDrained): every 20 ms once the Mailjet double has answered for
 * `messages` messages, once a second before, so that no system's PostgreSQL pays for a poll every
 * 20 ms through the whole drain.
 */
export async function waitForDrain(remaining, timeoutMs, messages) {
  const deadline = Date.now() + timeoutMs;
  let checkedAt = -Infinity;
  for (;;) {
    if (messagesSent >= messages || performance.now() - checkedAt >= 1000) {
      checkedAt = performance.now();
      const left = await remaining();
      if (left === 0) {
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(`still ${left} jobs left after ${timeoutMs} ms`);
      }
    }
    await sleep(20);
  }
}

/** One JSON line on stdout: the bench reads it, and samples CPU counters when it arrives. */
export function report(phase, fields = {}) {
  process.stdout.write(`${JSON.stringify({ phase, ...fields })}\n`);
}

export function seconds(since) {
  return (performance.now() - since) / 1000;
}

/** Runs main; a failure is printed and ends the process with 1. */
export function runMain(main) {
  main().then(
    () => process.exit(0),
    (error) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
