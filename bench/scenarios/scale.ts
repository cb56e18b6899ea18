// Does jetpost slow down as its history grows? The same probes over a small and a large history,
// seeded straight into jetpost's tables with generate_series (sent jobs, each with its recipient,
// MessageID and sent event), not through the API:
// - claim: POST /queue of one message → its Mailjet call reaching the double, one at a time;
// - GET /status/{id} of a random job of the history;
// - event apply: POST /events of 100 open events for random messages of the history.
import { createHash } from 'node:crypto';

import type pg from 'pg';

import { mailjetEvent, type SentMessage } from '../events.js';
import { expectStatus, percentile, wallClockMs } from '../http-client.js';
import type { Row } from '../report.js';
import { jetpostDatabase, type JetpostProcess, type MailjetDouble, startJetpost, startMailjetDouble, waitUntilDrained } from '../systems.js';
import { benchMessage, type ScenarioContext } from './context.js';

const SEED_BATCH = 250_000;
/** Seeded MessageIDs are this plus the job id: above 2^53 like Mailjet's, below the double's (2^60 and up). */
const SEED_MESSAGE_ID_BASE = 2n ** 59n;
const EVENTS_PER_POST = 100;
const WARM_UP_PROBES = 5;

// One statement per batch: jobs, then their recipients, then a sent event for each, from the rows
// the previous step returned. The message is a copy of one jetpost stored itself.
const SEED_HISTORY = `
  with jobs as (
    insert into email_send_jobs (app_id, status, message, max_attempts, attempts, recipient_count, run_at, created_at, updated_at, accepted_at)
    select $1::bigint, 'sent', $2::jsonb, 8, 1, 1, t, t, t, t
    from generate_series($3::bigint, $4::bigint) as g(n)
    cross join lateral (select $5::timestamptz + g.n * interval '50 milliseconds' as t) as times
    returning id, created_at
  ), recipients as (
    insert into email_recipients (job_id, position, kind, email, status, mailjet_message_id, mailjet_message_uuid, updated_at)
    select id, 0, 'to', 'history-' || id || '@example.com', 'sent', $6::bigint + id, md5(id::text)::uuid::text, created_at
    from jobs
    returning id, job_id, email, mailjet_message_id, mailjet_message_uuid, updated_at
  ), events as (
    insert into email_events (dedupe_key, event_type, occurred_at, mailjet_message_id, mailjet_message_uuid, email, recipient_id, job_id, payload)
    select encode(sha256(convert_to('history-sent-' || id, 'UTF8')), 'hex'), 'sent', updated_at + interval '1 second',
      mailjet_message_id, mailjet_message_uuid, email, id, job_id,
      jsonb_build_object('event', 'sent', 'time', floor(extract(epoch from updated_at))::bigint + 1, 'MessageID', mailjet_message_id::text,
        'Message_GUID', mailjet_message_uuid, 'email', email, 'CustomID', 'jetpost-' || job_id, 'Payload', '', 'smtp_reply', '250 2.0.0 OK')
    from recipients
    returning job_id
  )
  select min(job_id)::text as first, max(job_id)::text as last
  from events`;

/** Job ids of the seeded history, as contiguous ranges. */
type IdRanges = Array<{ first: bigint; count: number }>;

interface History {
  appId: string;
  message: unknown;
  /** Timestamp of history job 0, so that the history ends about now. */
  origin: Date;
  ranges: IdRanges;
  size: number;
}

async function growHistory(context: ScenarioContext, db: pg.Pool, history: History, size: number): Promise<void> {
  const client = await db.connect();
  try {
    // The seed is setup, not a measure: it may skip waiting for the WAL flush, and, where the role
    // may (a superuser, as with the embedded server), the foreign-key checks of rows that are
    // consistent by construction.
    await client.query('set synchronous_commit = off');
    await client.query(`set session_replication_role = 'replica'`).catch(() => undefined);
    const started = wallClockMs();
    for (let from = history.size + 1; from <= size; from += SEED_BATCH) {
      const to = Math.min(size, from + SEED_BATCH - 1);
      const { rows } = await client.query<{ first: string; last: string }>(SEED_HISTORY, [
        history.appId,
        JSON.stringify(history.message),
        from,
        to,
        history.origin,
        SEED_MESSAGE_ID_BASE.toString(),
      ]);
      history.ranges.push({ first: BigInt(rows[0]!.first), count: Number(BigInt(rows[0]!.last) - BigInt(rows[0]!.first)) + 1 });
      const rate = (to - history.size) / ((wallClockMs() - started) / 1000);
      context.progress(
        `  seeded ${to.toLocaleString('en-US')} of ${size.toLocaleString('en-US')} jobs of history (${Math.round(rate).toLocaleString('en-US')} jobs/s)`,
      );
    }
    history.size = size;
    context.progress('  vacuum analyze');
    await client.query('vacuum (analyze) email_send_jobs, email_recipients, email_events');
    // Start the probes without a checkpoint of the seed's writes pending (needs superuser; skipped otherwise).
    await client.query('checkpoint').catch(() => undefined);
  } finally {
    client.release();
  }
}

function randomHistoryJob(ranges: IdRanges, total: number): bigint {
  let index = Math.floor(Math.random() * total);
  for (const range of ranges) {
    if (index < range.count) {
      return range.first + BigInt(index);
    }
    index -= range.count;
  }
  throw new Error('no history');
}

function historyMessage(jobId: bigint): SentMessage {
  const hex = createHash('md5').update(jobId.toString()).digest('hex');
  return {
    messageId: (SEED_MESSAGE_ID_BASE + jobId).toString(),
    messageUuid: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
    email: `history-${jobId}@example.com`,
    jobId: jobId.toString(),
  };
}

interface Probes {
  claimMs: number[];
  statusMs: number[];
  eventApplyMs: number[];
}

async function probe(context: ScenarioContext, server: JetpostProcess, key: string, double: MailjetDouble, history: History, label: string): Promise<Probes> {
  const { claims, statuses, eventPosts } = context.plan.sizes.probes;
  const auth = { authorization: `Bearer ${key}` };
  const timed = async (count: number, step: (i: number) => Promise<number>) => {
    const samples: number[] = [];
    for (let i = 0; i < WARM_UP_PROBES + count; i += 1) {
      const ms = await step(i);
      if (i >= WARM_UP_PROBES) {
        samples.push(ms);
      }
    }
    return samples;
  };
  context.progress(`  probes over ${label}: ${claims} claims, ${statuses} status reads, ${eventPosts} event posts of ${EVENTS_PER_POST}`);
  const claimMs = await timed(claims, async (i) => {
    const started = wallClockMs();
    const message = benchMessage(context.plan, `probe-${label}-${i}`);
    await expectStatus(202, 'POST', `${server.url}/queue`, auth, JSON.stringify(message));
    return (await double.arrival(message.to)) - started;
  });
  const statusMs = await timed(statuses, async () => {
    const started = wallClockMs();
    await expectStatus(200, 'GET', `${server.url}/status/${randomHistoryJob(history.ranges, history.size)}`, auth);
    return wallClockMs() - started;
  });
  const opened = new Set<bigint>();
  const time = Math.floor(Date.now() / 1000);
  const eventApplyMs = await timed(eventPosts, async () => {
    const events: string[] = [];
    while (events.length < EVENTS_PER_POST) {
      const jobId = randomHistoryJob(history.ranges, history.size);
      if (!opened.has(jobId)) {
        opened.add(jobId);
        events.push(mailjetEvent('open', historyMessage(jobId), time));
      }
    }
    const started = wallClockMs();
    await expectStatus(200, 'POST', `${server.url}/events`, { authorization: server.eventsAuthorization }, `[${events.join(',')}]`);
    return wallClockMs() - started;
  });
  return { claimMs, statusMs, eventApplyMs };
}

export async function scale(context: ScenarioContext): Promise<Row[]> {
  const { scaleSmall, scaleLarge } = context.plan.sizes;
  const double = await startMailjetDouble(context.logDir, 'scale-mailjet', 0);
  const databaseUrl = await context.pg.freshDatabase('scale');
  const db = jetpostDatabase(databaseUrl, context.overrides);
  const start = (name: string) => startJetpost({ name, logDir: context.logDir, databaseUrl, mailjetUrl: double.url, overrides: context.overrides });
  try {
    // A first start creates the tables, the app, and one real message whose stored form the seed copies.
    let server = await start('scale-jetpost-setup');
    let key: string;
    try {
      key = await server.createApp('bench');
      await expectStatus(202, 'POST', `${server.url}/queue`, { authorization: `Bearer ${key}` }, JSON.stringify(benchMessage(context.plan, 'template')));
      await waitUntilDrained(db, 60_000);
    } finally {
      await server.stop();
    }
    const { rows } = await db.query<{ app_id: string; message: unknown }>(`select app_id::text, message from email_send_jobs order by id limit 1`);
    const history: History = {
      appId: rows[0]!.app_id,
      message: rows[0]!.message,
      origin: new Date(Date.now() - scaleLarge * 50 - 3_600_000),
      ranges: [],
      size: 0,
    };

    const results: Record<string, Probes> = {};
    for (const [label, size] of [
      ['small', scaleSmall],
      ['large', scaleLarge],
    ] as const) {
      context.progress(`history of ${size.toLocaleString('en-US')} jobs`);
      await growHistory(context, db, history, size);
      server = await start(`scale-jetpost-${label}`);
      try {
        results[label] = await probe(context, server, key, double, history, label);
      } finally {
        await server.stop();
      }
    }

    const summary = (probes: Probes) => ({
      claimMs: { p50: percentile(probes.claimMs, 50), p99: percentile(probes.claimMs, 99) },
      statusMs: { p50: percentile(probes.statusMs, 50), p99: percentile(probes.statusMs, 99) },
      eventApplyMs: { p50: percentile(probes.eventApplyMs, 50), p99: percentile(probes.eventApplyMs, 99) },
    });
    const small = summary(results['small']!);
    const large = summary(results['large']!);
    context.detail('scale', {
      historySmall: scaleSmall,
      historyLarge: scaleLarge,
      probes: context.plan.sizes.probes,
      eventsPerPost: EVENTS_PER_POST,
      small,
      large,
    });
    const sizes = `${compact(scaleLarge)} vs ${compact(scaleSmall)} jobs of history`;
    const target = { text: '≤ 1.5× the small history', maxRatio: 1.5 };
    const reference = (value: number) => ({ label: `same at ${compact(scaleSmall)}`, value });
    return [
      {
        scenario: 'scale',
        measure: `claim (POST /queue → Mailjet call) p50, ${sizes}`,
        unit: 'ms',
        jetpost: large.claimMs.p50,
        reference: reference(small.claimMs.p50),
        target,
      },
      {
        scenario: 'scale',
        measure: `GET /status/{id} p50, ${sizes}`,
        unit: 'ms',
        jetpost: large.statusMs.p50,
        reference: reference(small.statusMs.p50),
        target,
      },
      {
        scenario: 'scale',
        measure: `event apply (POST /events of ${EVENTS_PER_POST}) p50, ${sizes}`,
        unit: 'ms',
        jetpost: large.eventApplyMs.p50,
        reference: reference(small.eventApplyMs.p50),
        target,
      },
    ];
  } finally {
    await db.end();
    await double.child.stop();
    await context.pg.dropDatabase('scale');
  }
}

function compact(count: number): string {
  return count >= 1_000_000 ? `${count / 1_000_000} M` : count >= 1_000 ? `${count / 1_000} k` : String(count);
}
