// The events ingest applies the lifecycle rules in SQL (db/events-repo.ts, STORE_AND_APPLY) for
// speed, while domain/event-application.ts keeps them in plain code (the recording of a send applies
// the events that arrived first with it). Both must say the same thing: for random jobs, recipients
// in every status and random events (ties in time, soft and hard bounces, matches by MessageID or by
// Message_GUID only), the statuses, the logged changes, the webhook deliveries and the suppressions
// the statement writes are exactly what planEventApplication plans from the same state and events.
import { expect } from 'chai';
import fc from 'fast-check';

import { findEventsOfJobs } from '../../src/db/events-repo.js';
import { notifyChannels } from '../../src/db/notify.js';
import { lockRecipientsOfJobs } from '../../src/db/recipients-repo.js';
import { planEventApplication } from '../../src/domain/event-application.js';
import { parseEventBody } from '../../src/domain/event-parse.js';
import { type JobStatus, MAILJET_EVENT_TYPES, RECIPIENT_STATUSES, type RecipientStatus } from '../../src/domain/status.js';
import { createEventIngest } from '../../src/services/events.js';
import { makeApp, makeJob, recipientIds } from '../factories.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';

const JOB_STATUSES_TRIED = ['accepted', 'sent', 'opened', 'clicked', 'bounced', 'blocked', 'queued', 'deferred', 'failed', 'cancelled'] as const;

interface Scenario {
  jobs: Array<{ status: (typeof JOB_STATUSES_TRIED)[number]; recipients: RecipientStatus[] }>;
  events: Array<{
    recipient: number;
    type: (typeof MAILJET_EVENT_TYPES)[number];
    hardBounce: boolean | undefined;
    minute: number;
    byGuidOnly: boolean;
    detail: string;
  }>;
}

const scenario: fc.Arbitrary<Scenario> = fc.record({
  jobs: fc.array(
    fc.record({
      status: fc.constantFrom(...JOB_STATUSES_TRIED),
      recipients: fc.array(fc.constantFrom(...RECIPIENT_STATUSES), { minLength: 1, maxLength: 3 }),
    }),
    { minLength: 1, maxLength: 3 },
  ),
  events: fc.array(
    fc.record({
      recipient: fc.nat(),
      type: fc.constantFrom(...MAILJET_EVENT_TYPES),
      hardBounce: fc.constantFrom(true, false, undefined),
      minute: fc.integer({ min: 0, max: 3 }),
      byGuidOnly: fc.boolean(),
      detail: fc.constantFrom('', 'user unknown', 'spam filter'),
    }),
    { maxLength: 12 },
  ),
});

let nextMessageId = 576460765503091475n;

describe('events applied in SQL agree with the rules of domain/event-application.ts', () => {
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase();
  });

  after(async () => {
    await db.drop();
  });

  it('when random events meet random jobs and recipients, then statuses, changes, deliveries and suppressions are what planEventApplication plans', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ jobs, events }) => {
        const { pool } = db;
        const app = await makeApp(pool);
        await pool.query(`update apps set webhook_url = 'https://hooks.example.com/in', webhook_secret = 'whsec_c2VjcmV0' where id = $1`, [app.id]);
        const jobIds: string[] = [];
        const messages: Array<{ id: string; guid: string; email: string }> = [];
        for (const [j, job] of jobs.entries()) {
          const emails = job.recipients.map((_, r) => `r${r}-${j}-${app.name}@example.com`);
          const jobId = await makeJob(pool, { appId: app.id, status: job.status, to: emails });
          jobIds.push(jobId);
          for (const [r, recipientId] of (await recipientIds(pool, jobId)).entries()) {
            nextMessageId += 1n;
            const guid = `${app.name}-${j}-${r}`;
            await pool.query('update email_recipients set status = $2, mailjet_message_id = $3, mailjet_message_uuid = $4 where id = $1', [
              recipientId,
              job.recipients[r],
              nextMessageId.toString(),
              guid,
            ]);
            messages.push({ id: nextMessageId.toString(), guid, email: emails[r]! });
          }
        }
        const jobStatuses = new Map(jobIds.map((id, j) => [id, jobs[j]!.status as JobStatus]));
        const recipients = await lockRecipientsOfJobs(pool, jobIds);

        const elements = events.map((event) => {
          const message = messages[event.recipient % messages.length]!;
          return JSON.stringify({
            event: event.type,
            time: 1_700_000_000 + event.minute * 60,
            ...(event.byGuidOnly ? {} : { MessageID: '§' }),
            Message_GUID: message.guid,
            email: message.email,
            ...(event.hardBounce === undefined ? {} : { hard_bounce: event.hardBounce }),
            ...(event.detail === '' ? {} : { error: event.detail, source: event.detail }),
          }).replace('"§"', message.id);
        });
        const parsed = parseEventBody(`[${elements.join(',')}]`);
        if (!parsed.ok || parsed.rejected.length > 0) {
          throw new Error('the events should parse');
        }
        await createEventIngest(pool, notifyChannels(TEST_SCHEMA))(parsed.events);

        // In the order they were stored, as the ingest hands them on (the first suppression of an address wins).
        const stored = (await findEventsOfJobs(pool, jobIds, events.length)).events.sort((a, b) => Number(a.id) - Number(b.id));
        const plan = planEventApplication(stored, jobStatuses, recipients);

        const recipientsNow = await pool.query<{ id: string; status: string }>(
          'select r.id::text, r.status from email_recipients r where r.job_id = any($1) order by r.id',
          [jobIds],
        );
        expect(recipientsNow.rows).to.deep.equal(recipients.map((r) => ({ id: r.id, status: plan.recipients.get(r.id) ?? r.status })));
        const jobsNow = await pool.query<{ id: string; status: string }>(
          'select j.id::text, j.status from email_send_jobs j where j.id = any($1) order by j.id',
          [jobIds],
        );
        expect(jobsNow.rows).to.deep.equal(jobIds.map((id) => ({ id, status: plan.jobs.get(id) ?? jobStatuses.get(id) })));
        const changes = await pool.query(
          `select job_id::text as "jobId", recipient_id::text as "recipientId", old_status as "oldStatus", new_status as "newStatus", details
           from status_changes where job_id = any($1) order by id`,
          [jobIds],
        );
        expect(changes.rows).to.deep.equal(plan.changes);
        const deliveries = await pool.query<{ n: number }>('select count(*)::int as n from webhook_deliveries where app_id = $1', [app.id]);
        expect(deliveries.rows[0]!.n).to.equal(plan.changes.length);
        const emailOf = new Map(recipients.map((r) => [r.id, r.email.toLowerCase()]));
        const firstByEmail = new Map<string, { email: string; reason: string; detail: string | null }>();
        for (const entry of plan.suppressions) {
          const email = emailOf.get(entry.recipientId)!;
          if (!firstByEmail.has(email)) {
            firstByEmail.set(email, { email, reason: entry.reason, detail: entry.detail });
          }
        }
        const suppressions = await pool.query('select email, reason, detail from suppressions where app_id = $1 order by email', [app.id]);
        expect(suppressions.rows).to.deep.equal([...firstByEmail.values()].sort((a, b) => (a.email < b.email ? -1 : 1)));
      }),
      { numRuns: 60 },
    );
  });
});
