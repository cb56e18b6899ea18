// Steps several scenarios share: enqueueing in bulk over HTTP, draining a backlog with a freshly
// started jetpost, posting events, and metering CPU of jetpost and PostgreSQL over a window.
import { setTimeout } from 'node:timers/promises';

import type pg from 'pg';

import type { EventKind, SentMessage } from '../events.js';
import { eventBodies } from '../events.js';
import { checkStatus, expectStatus, inParallel, request, wallClockMs } from '../http-client.js';
import type { Plan } from '../plan.js';
import type { BenchPostgres } from '../postgres.js';
import { cpuMeter, postgresCpuSeconds, processCpuSeconds } from '../proc-stats.js';
import { type JetpostProcess, type MailjetDouble, startJetpost, waitUntilDrained } from '../systems.js';
import { benchMessage, type ScenarioContext } from './context.js';

export const BULK = 500;
export const BULK_POSTERS = 4;
export const EVENT_POSTERS = 8;

export interface CpuSplit {
  /** CPU seconds of the measured process (jetpost, or a reference), undefined where /proc is not readable. */
  process: number | undefined;
  postgres: number | undefined;
}

export function cpuTotal(split: CpuSplit): number | undefined {
  return split.process === undefined || split.postgres === undefined ? undefined : split.process + split.postgres;
}

export function addCpu(a: CpuSplit, b: CpuSplit): CpuSplit {
  const sum = (x: number | undefined, y: number | undefined) => (x === undefined || y === undefined ? undefined : x + y);
  return { process: sum(a.process, b.process), postgres: sum(a.postgres, b.postgres) };
}

/** Starts metering the CPU of one process and of the PostgreSQL server. */
export function meterCpu(pid: number, pg: BenchPostgres): { stop(): CpuSplit } {
  const own = cpuMeter(() => processCpuSeconds(pid));
  const server = cpuMeter(() => (pg.postmasterPid === undefined ? undefined : postgresCpuSeconds(pg.postmasterPid)));
  return { stop: () => ({ process: own.stop(), postgres: server.stop() }) };
}

/** POSTs `total` messages to /queue in bulks of 500, 4 requests in flight. */
export async function enqueueBulk(plan: Plan, server: JetpostProcess, key: string, total: number, addressPrefix: string): Promise<void> {
  const headers = { authorization: `Bearer ${key}` };
  await inParallel(Math.ceil(total / BULK), BULK_POSTERS, async (request) => {
    const first = request * BULK;
    const messages = Array.from({ length: Math.min(BULK, total - first) }, (_, i) => benchMessage(plan, `${addressPrefix}-${first + i}`));
    await expectStatus(202, 'POST', `${server.url}/queue`, headers, JSON.stringify({ messages }));
  });
}

export interface Drain {
  seconds: number;
  cpu: CpuSplit;
  /** The jetpost that drained, still running: the caller stops it. */
  server: JetpostProcess;
}

/**
 * Starts jetpost with its default settings on a database holding a backlog of `messages` and times
 * it until no job is left in flight, from its first answer on /healthz (its consumers start with
 * its server). The database is polled often only once the double has received every message, as
 * the references' drains are (see waitUntilDrained).
 */
export async function drainBacklog(
  context: ScenarioContext,
  name: string,
  databaseUrl: string,
  double: MailjetDouble,
  db: pg.Pool,
  messages: number,
): Promise<Drain> {
  const server = await startJetpost({ name, logDir: context.logDir, databaseUrl, mailjetUrl: double.url, overrides: context.overrides });
  try {
    const started = wallClockMs();
    const meter = meterCpu(server.pid, context.pg);
    const drained = await waitUntilDrained(db, 3 * 3600_000, async () => (await double.stats()).messages >= messages);
    return { seconds: (drained - started) / 1000, cpu: meter.stop(), server };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** Checks that the double received at least `expected` messages: a drain that sent nothing measured nothing. */
export async function checkSent(double: MailjetDouble, expected: number, who: string): Promise<void> {
  const { messages } = await double.stats();
  if (messages < expected) {
    throw new Error(`${who} finished, but the Mailjet double received ${messages} of ${expected} messages`);
  }
}

/** The messages jetpost sent and recorded (MessageID, UUID, address, job), in recipient order. */
export async function sentMessages(db: pg.Pool): Promise<SentMessage[]> {
  const { rows } = await db.query<SentMessage>(
    `select mailjet_message_id::text as "messageId", mailjet_message_uuid as "messageUuid", email, job_id::text as "jobId"
     from email_recipients
     where mailjet_message_id is not null
     order by id`,
  );
  return rows;
}

/** How long a poster waits before posting a callback again that jetpost answered 503. */
const EVENTS_RETRY_MS = 1000;

/**
 * Posts one event of this kind per message, in groups, 8 posters; resolves events per second and
 * how many callbacks were posted again. A 503 (jetpost's answer when PostgreSQL falls behind) is
 * posted again after a second, as Mailjet retries a callback (every 30 s, which would swamp the
 * figure): the wait counts in the rate, and any other answer but 200 fails the run.
 */
export async function postEvents(
  server: JetpostProcess,
  kind: EventKind,
  messages: readonly SentMessage[],
  groupSize: number,
): Promise<{ perSecond: number; retried: number }> {
  const bodies = eventBodies(kind, messages, groupSize);
  const headers = { authorization: server.eventsAuthorization };
  const url = `${server.url}/events`;
  let retried = 0;
  const started = wallClockMs();
  await inParallel(bodies.length, EVENT_POSTERS, async (i) => {
    for (;;) {
      const answer = await request('POST', url, headers, bodies[i]);
      if (answer.status !== 503) {
        checkStatus(200, 'POST', url, answer);
        return;
      }
      retried += 1;
      await setTimeout(EVENTS_RETRY_MS);
    }
  });
  return { perSecond: messages.length / ((wallClockMs() - started) / 1000), retried };
}
