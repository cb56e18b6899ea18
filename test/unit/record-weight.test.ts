// The records of Mailjet calls share a transaction up to MAX_MESSAGE_IDS_PER_TRANSACTION of the
// MessageIDs they bind: the acceptance holds an advisory lock per MessageID until it commits, and
// PostgreSQL's lock table (6,400 locks by default) is shared by every replica's connections.
import { expect } from 'chai';

import type { SendResult } from '../../src/domain/send-decision.js';
import { createGroupCommit } from '../../src/services/group-commit.js';
import { MAX_MESSAGE_IDS_PER_TRANSACTION, type RecordRequest, recordWeight } from '../../src/services/sending.js';

/** The record of one call of `ids` messages Mailjet accepted (ids 0: a call whose jobs were deferred). */
function callRecord(call: number, ids: number): RecordRequest {
  const results: SendResult[] =
    ids === 0
      ? [{ jobId: `j${call}`, kind: 'deferred', error: 'a 503', runAt: new Date(0), outcomeUnknown: false, refundAttempt: false }]
      : Array.from({ length: ids }, (_, index) => ({
          jobId: `j${call}-${index}`,
          kind: 'accepted' as const,
          recipients: [
            { recipientId: `r${call}-${index}`, messageId: String(576460765503090000n + BigInt(call * 100 + index)), messageUuid: `u${call}-${index}` },
          ],
        }));
  return { workerId: `w${call}`, results };
}

/** The MessageIDs and records of each transaction when `records` wait behind one transaction under way. */
async function transactions(records: RecordRequest[]): Promise<Array<{ ids: number; records: number }>> {
  const written: Array<{ ids: number; records: number }> = [];
  let releaseFirst!: () => void;
  const firstHeld = new Promise<void>((resolve) => {
    releaseFirst = resolve;
  });
  const record = createGroupCommit<RecordRequest, void>({
    async write(batch) {
      written.push({ ids: batch.reduce((sum, r) => sum + r.results.filter((x) => x.kind === 'accepted').length, 0), records: batch.length });
      if (written.length === 1) {
        await firstHeld;
      }
      return batch.map(() => undefined);
    },
    weight: recordWeight,
    maxWeight: MAX_MESSAGE_IDS_PER_TRANSACTION,
    maxInFlight: 1,
  });
  const first = record(callRecord(-1, 1));
  await new Promise((resolve) => setImmediate(resolve));
  const rest = records.map((r) => record(r));
  releaseFirst();
  await Promise.all([first, ...rest]);
  return written.slice(1);
}

describe('the weight of a call’s record in a record transaction (services/sending.ts)', () => {
  it('when 40 calls of 50 accepted messages wait, then no transaction binds more than 800 MessageIDs (16 calls)', async () => {
    const written = await transactions(Array.from({ length: 40 }, (_, call) => callRecord(call, 50)));

    expect(written.map((t) => t.ids)).to.deep.equal([800, 800, 400]);
  });

  it('when 40 calls without accepted messages wait, then at most 32 share a transaction, as before', async () => {
    const written = await transactions(Array.from({ length: 40 }, (_, call) => callRecord(call, 0)));

    expect(written.map((t) => t.records)).to.deep.equal([32, 8]);
  });
});
