// DATA_DIR's disk full under traffic. With less room left than one WAL segment (16 MiB), the embedded
// PostgreSQL PANICs at the commit that needs the next segment, its crash recovery cannot write one
// either, and it exits; jetpost then stopped saying only that it "exited without being asked to", and
// each start after it failed with the log's last lines ("database system is shut down") and the advice
// to set EMBEDDED_PG_PORT or DATABASE_URL: nothing said the disk was full. Both now say so, and once
// space is freed the next start recovers every message answered 202.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';

import { expect } from 'chai';

import { useFaultHarness } from '../support/faults/harness.js';
import { waitForExit } from '../support/faults/wait.js';

/** A budget for a loaded machine, not an expectation of speed. */
const EXIT_BUDGET_MS = 60_000;
/** More rounds than a fresh cluster has WAL segments made ahead (recycled segments need checkpoints it has not had). */
const ROUNDS = 12;

describe('faults: the disk under DATA_DIR full', function () {
  this.timeout(300_000);
  const harness = useFaultHarness();

  it('when the disk under the embedded PostgreSQL fills, then jetpost stops and a start is refused, each saying the disk is full, and once space is freed every 202 is there', async function () {
    const data = await harness.dataDir();
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=128m,mode=0700', 'tmpfs', data.dir], { stdio: 'ignore' });
    } catch {
      console.log('      (skipped: a small disk under DATA_DIR needs root with the right to mount a tmpfs)');
      this.skip();
    }
    const filler = path.join(data.dir, 'filler');
    try {
      const port = await harness.port();
      const simulator = await harness.simulator(port);
      const first = await harness.jetpost({ name: 'disk-full', port, databaseUrl: undefined, simulator, env: data.env });
      const pool = await data.connect();
      const { key } = await harness.app(pool);
      const queue = (to: string) =>
        fetch(`${first.url}/queue`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ from: 'app@example.com', to, subject: 'disk', text: 'x' }),
        });
      const before = await queue('before@example.com');
      expect(before.status).to.equal(202);
      const accepted = [((await before.json()) as { job_id: string }).job_id];
      const { bavail, bsize } = await fs.statfs(data.dir);
      execFileSync('fallocate', ['-l', String(bavail * bsize - 4 * 1024 * 1024), filler]);

      // Each round moves PostgreSQL to its next WAL segment, which it must write whole: the first
      // round that finds no segment made ahead finds no room for one.
      for (let round = 0; round < ROUNDS && first.exitStatus() === undefined; round += 1) {
        await pool.query('select pg_switch_wal()').catch(() => undefined);
        const res = await queue(`full-${round}@example.com`).catch(() => undefined);
        if (res?.status === 202) {
          accepted.push(((await res.json()) as { job_id: string }).job_id);
        } else if (res !== undefined) {
          expect(res.status, await res.text()).to.equal(503);
        }
      }
      const exit = await waitForExit(first, EXIT_BUDGET_MS);

      const full = `its disk is full: ${path.join(data.dir, 'pg', 'pg_wal')} has `;
      expect(exit, first.output().join('\n')).to.deep.equal({ code: 1, signal: null });
      const last = first.output().filter((line) => line.includes('"component":"main"'));
      expect(last.at(-1)).to.include('exited without being asked to (' + full);
      expect(last.at(-1)).to.include('less than the 16 MiB of the WAL segment PostgreSQL must write to go on: free space there first); start it again');

      const refused = await harness.spawn({ name: 'disk-full-start', port, databaseUrl: undefined, simulator, env: data.env });
      expect(await waitForExit(refused, EXIT_BUDGET_MS), refused.output().join('\n')).to.deep.equal({ code: 1, signal: null });
      const stderr = refused.output().filter((line) => line.includes(' err]'));
      expect(stderr.join('\n')).to.include(`the embedded PostgreSQL did not start (data in ${path.join(data.dir, 'pg')}): it exited with code 1, as ${full}`);
      expect(stderr.join('\n')).to.include('Free space there, then start jetpost again');

      await fs.rm(filler);
      const second = await harness.jetpost({ name: 'disk-freed', port, databaseUrl: undefined, simulator, env: data.env });
      for (const jobId of accepted) {
        const status = await fetch(`${second.url}/status/${jobId}`, { headers: { authorization: `Bearer ${key}` } });
        expect(status.status, `job ${jobId}, answered 202 before the disk filled`).to.equal(200);
      }
      second.signal('SIGTERM');
      expect(await waitForExit(second, EXIT_BUDGET_MS)).to.deep.equal({ code: 0, signal: null });
    } finally {
      // The harness stops what runs on DATA_DIR, then removes it: the disk must be gone by then.
      await stopServerOn(data.dir);
      execFileSync('umount', ['--lazy', data.dir]);
    }
  });
});

/** Stops a PostgreSQL still running on `dir` (a failed assertion leaves one), so that the disk can go. */
async function stopServerOn(dir: string): Promise<void> {
  const pid = Number.parseInt((await fs.readFile(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0] ?? '', 10);
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGQUIT');
    } catch {
      // Gone already.
    }
  }
}
