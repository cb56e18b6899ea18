// The exit codes of the commands (docs/admin.md): 2 for bad arguments, 78 (EX_CONFIG) for bad or
// missing settings, as the service itself exits, so that a script or a container's restart policy
// can tell a mistyped command from a setting to fix from a failure.
import { execFile } from 'node:child_process';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';

import { runCli } from '../support/cli.js';
import { isolateNetwork, restoreNetwork } from '../support/mailjet-nock.js';
import { startTestService } from '../support/service.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A command that is not among the compiled test bins (`jetpost simulator`, `jetpost health`), through tsx. */
function runSource(file: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, file), ...args],
      { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 60_000 },
      (error, _stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stderr }),
    );
  });
}

describe('the commands’ exit codes for bad settings and bad arguments', function () {
  this.timeout(180_000);

  it('when the admin command’s settings are bad, then it exits 78 naming the variable, without the usage text', async () => {
    const run = await runCli('admin', ['apps', 'list'], { DATABASE_URL: 'mysql://db.example.com/jetpost' });
    expect(run.code, run.stderr).to.equal(78);
    expect(run.stderr).to.match(/^admin: invalid configuration:\n {2}DATABASE_URL: /);
    expect(run.stderr).not.to.contain('usage:');
  });

  it('when register-callback has no Mailjet keys, callback credentials or PUBLIC_URL, then it exits 78 saying which to set; a bad argument still exits 2', async () => {
    const missing = await runCli('register-callback', [], {});
    expect(missing.code, missing.stderr).to.equal(78);
    expect(missing.stderr).to.match(/^register-callback: set MAILJET_API_KEY, .*PUBLIC_URL/);
    const badSetting = await runCli('register-callback', [], { MAILJET_BASE_URL: 'not a url' });
    expect(badSetting.code, badSetting.stderr).to.equal(78);
    expect(badSetting.stderr).to.contain('MAILJET_BASE_URL');
    const badArgument = await runCli('register-callback', ['--no-such-option'], {});
    expect(badArgument.code, badArgument.stderr).to.equal(2);
  });

  it('when the health check runs with PORT=0, then it exits 78 saying it cannot know the port, not that port 0 did not answer', async () => {
    const run = await runSource('src/bin/health.ts', [], { PORT: '0' });
    expect(run.code, run.stderr).to.equal(78);
    expect(run.stderr).to.equal(
      'jetpost health: PORT is 0, so the service listens on a free port it chose, which this check cannot know: set PORT to a fixed port\n',
    );
  });

  it('when something else answers at HOST and PORT (200 to everything, another health route, a redirect, not HTTP), then the health check exits 1 saying so; jetpost itself is healthy (0)', async () => {
    const answers: Record<string, (res: ServerResponse) => void> = {
      '/anything': (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>Welcome\u001b[2J</html>'),
      '/other-app': (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}'),
      '/redirect': (res) => res.writeHead(302, { location: 'http://127.0.0.1:1/healthz' }).end(),
    };
    for (const [name, answer] of Object.entries(answers)) {
      const server: Server = createServer((_req, res) => answer(res));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const run = await runSource('src/bin/health.ts', [], { HOST: '127.0.0.1', PORT: String((server.address() as AddressInfo).port) });
        expect(run.code, `${name}: ${run.stderr}`).to.equal(1);
        expect(run.stderr, name).to.match(
          name === '/redirect' ? /answered 302\n$/ : /answered 200, but not as jetpost does .*another server listens at HOST and PORT/,
        );
        expect(run.stderr, name).to.not.contain('\u001b');
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    }
    isolateNetwork();
    const service = await startTestService();
    try {
      const run = await runSource('src/bin/health.ts', [], { HOST: '127.0.0.1', PORT: new URL(service.url).port });
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stderr).to.equal('');
    } finally {
      await service.stop();
      restoreNetwork();
    }
  });

  it('when the egress proxy for Mailjet is not a URL, then the service exits 78 naming the variables, not the value, before it opens the database', async () => {
    // No database answers there: were the proxy judged only once the database is open, the start would fail on that (1).
    const run = await runCli('jetpost', [], {
      DATABASE_URL: 'postgres://jetpost@127.0.0.1:1/jetpost',
      PORT: '0',
      MAILJET_API_KEY: 'key',
      MAILJET_API_SECRET: 'secret',
      EVENTS_USERNAME: 'mailjet',
      EVENTS_PASSWORD: 'c2b7e0a9f4d16e38',
      HTTPS_PROXY: 'http://user:proxy-password@[bad',
    });
    expect(run.code, run.stderr).to.equal(78);
    expect(run.stderr).to.match(
      /^jetpost: invalid configuration:\n {2}HTTPS_PROXY or HTTP_PROXY \(or ALL_PROXY\), the proxy for send calls to https:\/\/api\.mailjet\.com: not a URL/,
    );
    expect(run.stderr).not.to.contain('proxy-password');
  });

  it('when the service gets an argument, then it exits 2 saying it takes environment variables, before reading them; --help prints the usage and exits 0', async () => {
    // A bad PORT too: were the argument ignored, the start would stop on the setting (78) instead.
    const env = { PORT: 'not-a-port' };
    const port = await runCli('jetpost', ['--port', '4000'], env);
    expect(port.code, port.stderr).to.equal(2);
    expect(port.stderr).to.match(/^jetpost takes no arguments, only environment variables: "--port 4000" is not used\n\nusage: npm start/);
    const help = await runCli('jetpost', ['--help'], env);
    expect(help.code, help.stderr).to.equal(0);
    expect(help.stdout).to.contain('usage: npm start').and.contain('PORT=4000');
    const healthArgument = await runSource('src/bin/health.ts', ['--port', '4000'], { PORT: '0' });
    expect(healthArgument.code, healthArgument.stderr).to.equal(2);
    expect(healthArgument.stderr).to.match(/^jetpost health takes no arguments/);
  });

  it('when the admin command is asked for help (help, --help, -h), then it prints the usage on stdout and exits 0 without opening the database', async () => {
    for (const ask of ['help', '--help', '-h']) {
      const run = await runCli('admin', [ask], { DATABASE_URL: 'mysql://db.example.com/jetpost' });
      expect(run.code, `${ask}: ${run.stderr}`).to.equal(0);
      expect(run.stdout).to.match(/^usage: npm run admin -- <command>/);
    }
  });

  it('when the admin command gets an unknown command or option holding an escape sequence, then it names it with the escape written out, not sent to the terminal', async () => {
    for (const args of [
      ['apps', '\u001b[2Jlist'],
      ['apps', 'list', '--\u001b]0;owned\u0007'],
    ]) {
      const run = await runCli('admin', args, { DATABASE_URL: 'mysql://db.example.com/jetpost' });
      expect(run.code, run.stderr).to.equal(2);
      expect(run.stderr).to.contain('\\u001b');
      expect(run.stderr, 'no escape or bell character').not.to.contain('\u001b').and.not.to.contain('\u0007');
    }
  });

  it('when the simulator gets a bad argument, then it exits 2 with the usage text', async () => {
    const run = await runSource('src/simulator/main.ts', ['--port', 'eighty']);
    expect(run.code, run.stderr).to.equal(2);
    expect(run.stderr).to.contain('--port must be a non-negative integer').and.to.contain('--callback-url');
  });
});
