// The lifecycle's promise (docs/api.md, Lifecycle): replaying the same Mailjet events in any order,
// any number of times, gives the same result. Here with jobs of several recipients, every event type
// (soft and hard bounces), repeats, some events arriving before the send is recorded (applied by the
// record) and the rest in callbacks that run at once: two arrangements of the same events end with
// the same recipient and job statuses and the same history, and both are what the rules say (a
// recipient at its highest event, a job at its highest recipient, a negative never overwritten).
import { expect } from 'chai';
import fc from 'fast-check';

import { claimJobs } from '../../src/db/jobs-repo.js';
import type { Pool } from '../../src/db/pool.js';
import { DELIVERY_ORDER, MAILJET_EVENT_TYPES, statusForEvent } from '../../src/domain/status.js';
import { makeApp, makeJob, recipientIds } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ingestBody } from '../support/events-ingest.js';
import { testSendingService } from '../support/sending.js';

interface Scenario {
  /** Each job's number of recipients. */
  jobs: number[];
  events: Array<{ recipient: number; type: (typeof MAILJET_EVENT_TYPES)[number]; hardBounce: boolean | undefined; second: number; byGuidOnly: boolean }>;
  /** Two arrangements: a shuffle's seed, how many events come before the send is recorded, callback size. */
  arrangements: [Arrangement, Arrangement];
}

interface Arrangement {
  seed: number;
  beforeRecord: number;
  callbackSize: number;
}

const arrangement: fc.Arbitrary<Arrangement> = fc.record({
  seed: fc.integer({ min: 1, max: 2_147_483_646 }),
  beforeRecord: fc.nat({ max: 30 }),
  callbackSize: fc.integer({ min: 1, max: 6 }),
});

const scenario: fc.Arbitrary<Scenario> = fc.record({
  jobs: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }),
  events: fc.array(
    fc.record({
      recipient: fc.nat(),
      type: fc.constantFrom(...MAILJET_EVENT_TYPES),
      hardBounce: fc.constantFrom(true, false, undefined),
      second: fc.integer({ min: 0, max: 2 }),
      byGuidOnly: fc.boolean(),
    }),
    { minLength: 1, maxLength: 14 },
  ),
  arrangements: fc.tuple(arrangement, arrangement),
});

/** A seeded shuffle (Park–Miller), each event once or twice: Mailjet repeats events. */
function arrange<T>(items: readonly T[], seed: number): T[] {
  let state = seed;
  const random = () => (state = (state * 48271) % 2147483647) / 2147483647;
  const out = items.flatMap((item) => (random() < 0.3 ? [item, item] : [item]));
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

let nextMessageId = 576460765503091475n;

interface Outcome {
  /** By recipient position (job, then recipient): its status and how many events its history holds. */
  recipients: string[];
  jobs: string[];
}

/** Makes the scenario's jobs, sends them in the arrangement's way, and reads where they end. */
async function play(pool: Pool, { jobs, events }: Scenario, how: Arrangement): Promise<Outcome> {
  const app = await makeApp(pool);
  const jobIds: string[] = [];
  const messages: Array<{ recipientId: string; id: string; guid: string; email: string; jobIndex: number }> = [];
  for (const [j, count] of jobs.entries()) {
    const emails = Array.from({ length: count }, (_, r) => `r${r}-${j}-${app.name}@example.com`);
    const jobId = await makeJob(pool, { appId: app.id, to: emails });
    jobIds.push(jobId);
    for (const [r, recipientId] of (await recipientIds(pool, jobId)).entries()) {
      nextMessageId += 1n;
      messages.push({ recipientId, id: nextMessageId.toString(), guid: `${app.name}-${j}-${r}`, email: emails[r]!, jobIndex: j });
    }
  }
  const elements = arrange(events, how.seed).map((event) => {
    const message = messages[event.recipient % messages.length]!;
    return JSON.stringify({
      event: event.type,
      time: 1_700_000_000 + event.second,
      ...(event.byGuidOnly ? {} : { MessageID: '§' }),
      Message_GUID: message.guid,
      email: message.email,
      ...(event.hardBounce === undefined ? {} : { hard_bounce: event.hardBounce }),
      ...(event.type === 'click' ? { url: 'https://example.com/a' } : {}),
    }).replace('"§"', message.id);
  });
  const early = elements.slice(0, Math.min(how.beforeRecord, elements.length));
  const late = elements.slice(early.length);
  if (early.length > 0) {
    await ingestBody(pool, `[${early.join(',')}]`);
  }
  const workerId = `worker-${app.name}`;
  const claimed = await claimJobs(pool, workerId, jobIds.length, 120_000);
  expect(claimed.map((job) => job.id).sort()).to.deep.equal([...jobIds].sort());
  await testSendingService(pool).record(
    workerId,
    jobIds.map((jobId, j) => ({
      jobId,
      kind: 'accepted' as const,
      recipients: messages.filter((m) => m.jobIndex === j).map((m) => ({ recipientId: m.recipientId, messageId: m.id, messageUuid: m.guid })),
    })),
  );
  const callbacks: string[][] = [];
  for (let start = 0; start < late.length; start += how.callbackSize) {
    callbacks.push(late.slice(start, start + how.callbackSize));
  }
  await Promise.all(callbacks.map((callback) => ingestBody(pool, `[${callback.join(',')}]`)));

  const recipients = await pool.query<{ s: string }>(
    `select r.status || ' / ' || (select count(*) from email_events e where e.recipient_id = r.id) || ' events' as s
     from email_recipients r where r.id = any($1::bigint[]) order by r.id`,
    [messages.map((m) => m.recipientId)],
  );
  const jobRows = await pool.query<{ status: string }>('select status from email_send_jobs where id = any($1::bigint[]) order by id', [jobIds]);
  return { recipients: recipients.rows.map((row) => row.s), jobs: jobRows.rows.map((row) => row.status) };
}

/** What the rules say: a recipient at the highest status its events reach, a job at its highest recipient. */
function expected({ jobs, events }: Scenario): Outcome {
  const rank = (status: string) => DELIVERY_ORDER.indexOf(status as (typeof DELIVERY_ORDER)[number]);
  const total = jobs.reduce((sum, count) => sum + count, 0);
  const statuses = Array.from({ length: total }, () => 'accepted');
  const histories = Array.from({ length: total }, () => new Set<string>());
  for (const event of events) {
    const r = event.recipient % total;
    const target = statusForEvent(event.type, event.hardBounce);
    if (target !== undefined && rank(target) > rank(statuses[r]!)) {
      statuses[r] = target;
    }
    // One stored event per dedupe key: its type, time, id, GUID, address and whether a bounce is soft.
    histories[r]!.add(`${event.type}/${event.second}/${event.byGuidOnly}/${event.type === 'bounce' && event.hardBounce === false}`);
  }
  let offset = 0;
  const jobStatuses = jobs.map((count) => {
    const own = statuses.slice(offset, offset + count);
    offset += count;
    return own.reduce((highest, status) => (rank(status) > rank(highest) ? status : highest));
  });
  return { recipients: statuses.map((status, r) => `${status} / ${histories[r]!.size} events`), jobs: jobStatuses };
}

describe('events in any order, any number of times, for jobs of several recipients', () => {
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase();
  });

  after(async () => {
    await db.drop();
  });

  it('when the same events come in two arrangements (shuffled, repeated, some before the send is recorded, the rest in concurrent callbacks), then both end with the statuses and history the rules give', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const first = await play(db.pool, s, s.arrangements[0]);
        const second = await play(db.pool, s, s.arrangements[1]);
        expect(first).to.deep.equal(second);
        expect(first).to.deep.equal(expected(s));
      }),
      { numRuns: 60 },
    );
  });
});
