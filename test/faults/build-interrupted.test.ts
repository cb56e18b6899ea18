// `npm start`'s first step, the bundle (scripts/build-server.ts), interrupted. A Ctrl-C during it
// left its `dist/server/.<pid>.partial` directory behind, one more at every interrupted start. It now
// removes it and exits by the signal, so that `npm start`'s `&&` does not run the service; the next
// build removes what a build killed outright left.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { expect } from 'chai';

const SERVER_DIR = 'dist/server';

function startBuild(): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'scripts/build-server.ts'], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('faults: npm start interrupted while it builds', function () {
  this.timeout(300_000);

  it('when SIGINT comes while the bundle is being built, then its partial directory is removed and the build exits 130, which keeps npm start from running the service', async () => {
    // The build is stopped (SIGSTOP) while its partial directory exists, and signalled then: a build
    // that finished before it could be stopped is run again.
    for (let attempt = 1; ; attempt++) {
      const build = startBuild();
      const exited = exitOf(build);
      let stderr = '';
      build.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const partial = path.join(SERVER_DIR, `.${build.pid}.partial`);
      let caught = false;
      let done = false;
      void exited.then(() => (done = true));
      while (!done) {
        if (existsSync(partial)) {
          build.kill('SIGSTOP');
          caught = existsSync(partial);
          build.kill('SIGINT');
          build.kill('SIGCONT');
          break;
        }
        await sleep(5);
      }
      const exit = await exited;
      if (!caught) {
        expect(attempt, 'attempts to catch the build in progress').to.be.below(10);
        continue;
      }
      expect(exit, stderr).to.deep.equal({ code: 130, signal: null });
      expect(stderr).to.include("the server's bundle was not built: SIGINT");
      expect(existsSync(partial), `${partial} left behind`).to.equal(false);
      return;
    }
  });

  it('when a build killed outright left its partial directory, then the next build removes it, and leaves alone that of a build still running', async () => {
    const gone = spawn(process.execPath, ['-e', '']);
    await exitOf(gone);
    const abandoned = path.join(SERVER_DIR, `.${gone.pid}.partial`);
    // This test's own process stands for a build still running.
    const running = path.join(SERVER_DIR, `.${process.pid}.partial`);
    await fs.mkdir(abandoned, { recursive: true });
    await fs.mkdir(running, { recursive: true });
    try {
      const build = startBuild();
      expect(await exitOf(build)).to.deep.equal({ code: 0, signal: null });
      expect(existsSync(abandoned), `${abandoned} left behind`).to.equal(false);
      expect(existsSync(running), `${running} removed`).to.equal(true);
      expect(existsSync(path.join(SERVER_DIR, 'jetpost.mjs'))).to.equal(true);
    } finally {
      await fs.rm(abandoned, { recursive: true, force: true });
      await fs.rm(running, { recursive: true, force: true });
    }
  });
});
