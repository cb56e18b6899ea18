// GET /status?after=…: the changes feed as an app polls it, with cursors it was given and ones it
// was not.
import { expect } from 'chai';

import { startTestService, type TestService } from '../support/service.js';

interface Feed {
  changes: Array<{ id: string; type: string; job_id: string }>;
  next_cursor: string;
}

interface Problem {
  type: string;
  errors?: Array<{ path: string; message: string }>;
}

describe('GET /status?after=: the changes feed', function () {
  this.timeout(120_000);
  let service: TestService;

  before(async () => {
    // No consumers: the only changes are the cancellations the test makes.
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0', QUEUE_RATE_LIMIT: '0' } });
  });

  after(async () => {
    await service?.stop();
  });

  async function cancelledJob(): Promise<string> {
    const queued = (await (await service.request('POST', '/queue', { body: { from: 'app@example.com', to: 'a@example.com', text: 'x' } })).json()) as {
      job_id: string;
    };
    expect((await service.request('DELETE', `/queue/${queued.job_id}`)).status).to.equal(200);
    return queued.job_id;
  }

  async function read(after: string): Promise<{ status: number; body: unknown }> {
    const res = await service.request('GET', `/status?after=${encodeURIComponent(after)}`);
    return { status: res.status, body: await res.json() };
  }

  it('when an app reads to the end, then the empty page gives its cursor back; a cursor past every transaction yet is a 400 naming after', async () => {
    const jobId = await cancelledJob();
    const first = await read('0');
    expect(first.status).to.equal(200);
    const page = first.body as Feed;
    expect(page.changes.map((change) => [change.job_id, change.type])).to.deep.include([jobId, 'cancelled']);

    const caughtUp = await read(page.next_cursor);
    expect(caughtUp).to.deep.equal({ status: 200, body: { changes: [], next_cursor: page.next_cursor } });

    // A cursor this database never gave (made up, or kept from another installation) would read
    // nothing until transaction ids caught up with it, then skip every change made before.
    const [txid, id] = page.next_cursor.split('.');
    for (const ahead of [`${BigInt(txid!) + 1_000_000n}.${id!}`, '18446744073709551615.1']) {
      const refused = await read(ahead);
      expect(refused.status, ahead).to.equal(400);
      expect((refused.body as Problem).type).to.match(/validation-failed$/);
      expect((refused.body as Problem).errors?.map((error) => error.path)).to.deep.equal(['after']);
    }

    const later = await cancelledJob();
    const next = (await read(page.next_cursor)).body as Feed;
    expect(next.changes.map((change) => [change.job_id, change.type])).to.deep.equal([[later, 'cancelled']]);
  });
});
