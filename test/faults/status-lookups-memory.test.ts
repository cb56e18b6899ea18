// Scenario 9: concurrent look-ups of the largest jobs jetpost accepts (14 MiB messages, html and
// incompressible attachments). Status answers never include the message, so reading them must not
// load it: before, 10 concurrent GET /status?ids= over 20 jobs of 18 MB pushed the process to
// 4.2 GB. The bound asserted here is memory (the process's peak RSS, from the kernel), not speed;
// the latency of another app's POST /queue meanwhile is printed only.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';

import { expect } from 'chai';

import { MAX_MESSAGE_BYTES, queuedMessageBytes } from '../../src/domain/mailjet-payload.js';
import { makeJob, messageTo } from '../factories.js';
import { recordFigures, reportFiguresAfterRun } from '../support/faults/figures.js';
import { useFaultHarness } from '../support/faults/harness.js';
import { byScale, FAULT_SCALE } from '../support/faults/scale.js';
import { seconds } from '../support/faults/wait.js';

reportFiguresAfterRun();

const SIZE = byScale({
  fast: { jobs: 8, rounds: 1 },
  full: { jobs: 20, rounds: 5 },
});
const CONCURRENT_LOOKUPS = 5;
const RSS_LIMIT_MB = 600;
const ADMIN_KEY = `faults-admin-${randomBytes(16).toString('hex')}`;
const MB = 1024 * 1024;

/** The process's resident memory now and its peak so far, in MB (Linux: /proc; elsewhere ps, now only). */
function residentMemory(pid: number): { nowMb: number; peakMb: number } {
  const statusFile = `/proc/${pid}/status`;
  if (existsSync(statusFile)) {
    const status = readFileSync(statusFile, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { nowMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
  }
  const nowMb = Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim()) / 1024;
  return { nowMb, peakMb: nowMb };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

describe(`faults: concurrent status look-ups of the largest jobs (${FAULT_SCALE})`, function () {
  this.timeout(byScale({ fast: 180_000, full: 900_000 }));
  const harness = useFaultHarness();

  it(`when ${CONCURRENT_LOOKUPS} clients look up ${SIZE.jobs} jobs of 14 MiB at once, ${SIZE.rounds} time(s) each, then jetpost stays under ${RSS_LIMIT_MB} MB RSS`, async () => {
    const started = Date.now();
    const db = await harness.database();
    const { appId, key } = await harness.app(db.pool);
    const other = await harness.app(db.pool);
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const child = await harness.jetpost({ name: 'jetpost', port, databaseUrl: db.url, simulator, env: { ADMIN_API_KEY: ADMIN_KEY } });

    // The largest message jetpost accepts: 5 MiB of html (its cap) and an attachment filling the rest,
    // random so that PostgreSQL cannot compress it away. Scheduled a day ahead: nothing sends it.
    const html = randomBytes((5 * MB * 3) / 4).toString('base64');
    const recipients = [{ kind: 'to' as const, email: 'big@example.com' }];
    const base = { from: { email: 'app@example.com' }, subject: 'The largest job', html };
    const room =
      MAX_MESSAGE_BYTES -
      queuedMessageBytes({ ...base, attachments: [{ filename: 'a.bin', content_type: 'application/octet-stream', content: '' }] }, recipients);
    const content = {
      ...base,
      attachments: [{ filename: 'a.bin', content_type: 'application/octet-stream', content: randomBytes(Math.floor(room / 4) * 3).toString('base64') }],
    };
    const messageBytes = queuedMessageBytes(content, recipients);
    expect(messageBytes).to.be.within(MAX_MESSAGE_BYTES - 8, MAX_MESSAGE_BYTES);
    const sendAt = new Date(Date.now() + 24 * 3600 * 1000);
    const ids: string[] = [];
    for (let index = 0; index < SIZE.jobs; index += 1) {
      ids.push(await makeJob(db.pool, { appId, content, to: ['big@example.com'], customId: 'largest', sendAt }));
    }

    const before = residentMemory(child.pid);
    let peakSampledMb = before.nowMb;
    const sampler = setInterval(() => {
      peakSampledMb = Math.max(peakSampledMb, residentMemory(child.pid).nowMb);
    }, 50);

    let lookupCount = 0;
    const get = async (path: string, bearer: string) => {
      lookupCount += 1;
      const response = await fetch(`${child.url}${path}`, { headers: { authorization: `Bearer ${bearer}` } });
      const text = await response.text();
      expect(response.status, `GET ${path}: ${text.slice(0, 300)}`).to.equal(200);
      expect(text.length, `GET ${path} must not answer the message`).to.be.below(MB);
      return text;
    };
    // Every read path that lists these jobs: by ids, one by one, by custom_id, the feed, the admin list.
    const lookups = async () => {
      for (let round = 0; round < SIZE.rounds; round += 1) {
        await get(`/status?ids=${ids.join(',')}`, key);
        await get(`/status?custom_id=largest`, key);
        await Promise.all(ids.slice(0, 5).map((id) => get(`/status/${id}`, key)));
        await get('/status?after=0', key);
        await get('/admin/jobs?status=scheduled&limit=100', ADMIN_KEY);
      }
    };
    // Another app keeps queueing small messages meanwhile.
    let looking = true;
    const queueMs: number[] = [];
    const otherApp = (async () => {
      while (looking) {
        const sentAt = Date.now();
        const response = await fetch(`${child.url}/queue`, {
          method: 'POST',
          headers: { authorization: `Bearer ${other.key}`, 'content-type': 'application/json' },
          body: JSON.stringify(messageTo('small@example.com', { send_at: sendAt.toISOString() })),
        });
        await response.text();
        expect(response.status).to.equal(202);
        queueMs.push(Date.now() - sentAt);
      }
    })();
    const lookupsStarted = Date.now();
    try {
      await Promise.all(Array.from({ length: CONCURRENT_LOOKUPS }, lookups));
    } finally {
      looking = false;
      clearInterval(sampler);
      await otherApp;
    }
    const lookupSeconds = seconds(lookupsStarted);
    const after = residentMemory(child.pid);
    const peakMb = Math.max(after.peakMb, peakSampledMb);

    recordFigures(
      `9 ${CONCURRENT_LOOKUPS} concurrent look-ups of ${SIZE.jobs} jobs of ${(messageBytes / MB).toFixed(1)} MiB`,
      `${lookupCount} look-ups in ${lookupSeconds}`,
      `RSS before ${before.nowMb.toFixed(0)} MB, peak ${peakMb.toFixed(0)} MB (limit ${RSS_LIMIT_MB} MB)`,
      `other app's POST /queue meanwhile: ${queueMs.length} requests, p50 ${median(queueMs)} ms`,
      seconds(started),
    );
    expect(peakMb, `peak RSS in MB (before the look-ups: ${before.nowMb.toFixed(0)} MB)`).to.be.below(RSS_LIMIT_MB);
  });
});
