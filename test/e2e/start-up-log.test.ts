// What the start-up log tells an operator: where jetpost really listens and how to reach it, where
// mail goes (Mailjet and its base URL, or the simulator), and in dev mode where the keys are, never
// pointing at a dev key file that was not written.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import { capturingLogger } from '../support/log.js';
import { MAILJET_TEST_ORIGIN, startTestService, type TestService } from '../support/service.js';

interface LogLine {
  message: string;
  [field: string]: unknown;
}

describe('the start-up log', () => {
  let service: TestService | undefined;

  afterEach(async () => {
    await service?.stop();
    service = undefined;
  });

  async function start(options: Parameters<typeof startTestService>[0]): Promise<{ service: TestService; lines: LogLine[] }> {
    const { log, lines } = capturingLogger('info');
    service = await startTestService({ ...options, log });
    return { service, lines: lines().map((line) => JSON.parse(line) as LogLine) };
  }

  const listening = (lines: LogLine[]) => lines.find((line) => line.message.startsWith('jetpost is listening'));

  it('when it listens on every interface, then it says 0.0.0.0, gives a loopback URL to reach it, and names Mailjet with its base URL', async () => {
    const { service, lines } = await start({ env: { HOST: '0.0.0.0' } });
    const port = new URL(service.url).port;

    const line = listening(lines);
    expect(line?.message).to.equal(
      `jetpost is listening on 0.0.0.0:${port} (every IPv4 interface); reach it at http://127.0.0.1:${port}; mail goes to Mailjet at ${MAILJET_TEST_ORIGIN}`,
    );
    expect(line).to.deep.include({ listen: `0.0.0.0:${port}`, url: `http://127.0.0.1:${port}`, mailjet: MAILJET_TEST_ORIGIN });
  });

  it('when it listens on loopback and sends to the simulator, then it says so and gives the simulator URL', async () => {
    const { service, lines } = await start({ mailjet: 'simulator' });
    const port = new URL(service.url).port;
    const simulatorUrl = service.jetpost.simulator?.url;

    expect(simulatorUrl).to.be.a('string');
    expect(listening(lines)?.message).to.equal(
      `jetpost is listening on 127.0.0.1:${port} (loopback: this machine only); reach it at http://127.0.0.1:${port}; mail goes to the built-in Mailjet simulator at ${simulatorUrl} (no email leaves this machine)`,
    );
  });

  it('when dev mode runs with ADMIN_API_KEY set, then it names ADMIN_API_KEY and writes no dev admin key', async () => {
    const { service, lines } = await start({ mailjet: 'simulator', env: { DEV_MODE: 'true' } });
    const dataDir = service.config.dataDir;

    const dev = lines.find((line) => line.message.startsWith('dev mode:'));
    expect(dev?.message).to.equal(
      `dev mode: the API key of app "dev" is in ${path.join(dataDir, 'dev-api-key')}; the admin key is ADMIN_API_KEY; the callback password (user mailjet) is EVENTS_PASSWORD`,
    );
    expect(await fs.readdir(dataDir))
      .to.include('dev-api-key')
      .and.not.to.include('dev-admin-key');
  });

  it('when dev mode runs without ADMIN_API_KEY, then it points at the dev admin key it wrote', async () => {
    const { service, lines } = await start({ mailjet: 'simulator', env: { DEV_MODE: 'true', ADMIN_API_KEY: '' } });
    const adminKeyFile = path.join(service.config.dataDir, 'dev-admin-key');

    expect(lines.find((line) => line.message.startsWith('dev mode:'))?.message).to.include(`the admin key is in ${adminKeyFile}`);
    expect((await fs.readFile(adminKeyFile, 'utf8')).trim()).to.have.length.above(24);
  });

  it('when dev mode runs without EVENTS_PASSWORD, then it keeps the callback password in a file only its owner reads, which the callbacks use', async () => {
    const { service, lines } = await start({ mailjet: 'simulator', env: { DEV_MODE: 'true', EVENTS_USERNAME: '', EVENTS_PASSWORD: '' } });
    const file = path.join(service.config.dataDir, 'dev-events-password');
    expect(lines.find((line) => line.message.startsWith('dev mode:'))?.message).to.include(`the callback password (user mailjet) is in ${file}`);
    const password = (await fs.readFile(file, 'utf8')).trim();
    const withFile = await service.postEvents([], { user: 'mailjet', password });
    const withOther = await service.postEvents([], { user: 'mailjet', password: 'not-the-password-0123' });

    expect((await fs.stat(file)).mode & 0o777).to.equal(0o600);
    expect(password).to.have.length.above(16);
    expect(withFile.status).to.equal(200);
    expect(withOther.status).to.equal(401);
  });

  it('when DATA_DIR is relative (npm start run from a subdirectory resolves it from the package root), then the dev mode line names the key files by their absolute paths', async () => {
    const absolute = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-relative-data-'));
    try {
      const { lines } = await start({ mailjet: 'simulator', env: { DEV_MODE: 'true', ADMIN_API_KEY: '', DATA_DIR: path.relative(process.cwd(), absolute) } });
      expect(lines.find((line) => line.message.startsWith('dev mode:'))?.message).to.equal(
        `dev mode: the API key of app "dev" is in ${path.join(absolute, 'dev-api-key')}; the admin key is in ${path.join(absolute, 'dev-admin-key')}; the callback password (user mailjet) is EVENTS_PASSWORD`,
      );
    } finally {
      await service?.stop();
      service = undefined;
      await fs.rm(absolute, { recursive: true, force: true });
    }
  });

  it('when dev mode prints its Try it command, then the command queues a message run from any directory, not only from where jetpost started', async () => {
    const { service } = await start({ mailjet: 'simulator', env: { DEV_MODE: 'true' } });
    const elsewhere = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-try-it-'));
    const deeper = path.join(elsewhere, 'a', 'b');
    await fs.mkdir(deeper, { recursive: true });
    try {
      const output = await new Promise<string>((resolve, reject) =>
        execFile('sh', ['-c', service.jetpost.tryIt!], { cwd: deeper }, (error, stdout, stderr) =>
          error ? reject(new Error(stderr || String(error))) : resolve(stdout),
        ),
      );

      expect(JSON.parse(output)).to.include({ status: 'queued' });
    } finally {
      await fs.rm(elsewhere, { recursive: true, force: true });
    }
  });

  it('when dev mode serves a request, then one info line names method, route, status, duration and app, never the path, headers or body', async () => {
    const { log, lines } = capturingLogger('info');
    service = await startTestService({ env: { DEV_MODE: 'true' }, log });
    const queued = await service.request('POST', '/queue', {
      body: { from: 'app@example.com', to: 'secret-person@example.com', subject: 'Hi', text: 'private words' },
    });
    const { job_id: jobId } = (await queued.json()) as { job_id: string };
    await service.request('GET', `/status/${jobId}`);
    await service.request('GET', '/no/such/page');

    const requests = lines()
      .map((line) => JSON.parse(line) as LogLine)
      .filter((line) => line['component'] === 'http');
    expect(requests.map((line) => line.message)).to.deep.equal(['POST /queue 202', 'GET /status/:jobId 200', 'GET - 404']);
    expect(requests[0]).to.deep.include({ level: 'info', method: 'POST', route: '/queue', status: 202 });
    expect(requests[0]!['app']).to.be.a('string').and.not.equal('');
    expect(requests[0]!['ms']).to.be.a('number');
    const text = lines()
      .filter((line) => line.includes('"component":"http"'))
      .join('\n');
    expect(text).not.to.include('secret-person').and.not.to.include('private words').and.not.to.include(service.apiKey).and.not.to.include('/no/such/page');
  });

  it('when not in dev mode, then requests are logged at the http level, below the default info', async () => {
    const { log, lines } = capturingLogger('info');
    service = await startTestService({ log });
    await service.request('GET', '/healthz');

    expect(lines().filter((line) => line.includes('"component":"http"'))).to.deep.equal([]);
  });
});
