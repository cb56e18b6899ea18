// `npm run mailjet:register-callback`, the compiled command, against the simulator's
// /v3/REST/eventcallbackurl (one row per event type and backup flag, as Mailjet keeps them).
import { expect } from 'chai';

import { CALLBACK_EVENT_TYPES } from '../../src/mailjet/client.js';
import { createSimulator, type Simulator } from '../../src/simulator/server.js';
import { runCli } from '../support/cli.js';

interface Row {
  ID: number;
  EventType: string;
  IsBackup: boolean;
  Url: string;
  Version: number;
  Status: string;
}

const PASSWORD = 'callback-password-0123';

describe('npm run mailjet:register-callback (against the simulator)', function () {
  // Each test runs the command a few times: budgets for a loaded 2-core machine, not a measure of speed.
  this.timeout(180_000);
  let simulator: Simulator;
  let baseUrl: string;

  beforeEach(async () => {
    simulator = createSimulator({ apiKey: 'key', apiSecret: 'secret' });
    baseUrl = await simulator.listen(0, '127.0.0.1');
  });

  afterEach(async () => {
    await simulator?.close();
  });

  const rest = async (method: string, path: string, body?: unknown) =>
    (await fetch(`${baseUrl}/v3/REST/eventcallbackurl${path}`, {
      method,
      headers: { authorization: `Basic ${Buffer.from('key:secret').toString('base64')}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }).then((res) => res.json())) as { Data: Row[] };
  const rows = async () => (await rest('GET', '?Limit=100')).Data;
  const register = (args: string[], env: Record<string, string> = {}) =>
    runCli('register-callback', args, {
      MAILJET_API_KEY: 'key',
      MAILJET_API_SECRET: 'secret',
      MAILJET_BASE_URL: baseUrl,
      EVENTS_USERNAME: 'mailjet',
      EVENTS_PASSWORD: PASSWORD,
      ...env,
    });

  it('when PUBLIC_URL has a path, then every event type points at /events under that path, grouped; run again, it updates in place and never prints the password', async () => {
    const first = await register([], { PUBLIC_URL: 'https://host.example.com/jetpost/' });
    // Without the trailing slash the path is the same directory.
    const second = await register(['https://host.example.com/jetpost']);

    expect(first.code, first.stderr).to.equal(0);
    expect(second.code, second.stderr).to.equal(0);
    expect(first.stdout.match(/ created → /g)).to.have.length(7);
    expect(second.stdout.match(/ updated → /g)).to.have.length(7);
    expect(first.stdout + second.stdout + first.stderr + second.stderr).to.not.contain(PASSWORD);
    const listed = await rows();
    expect(listed.map((row) => row.EventType).sort()).to.deep.equal([...CALLBACK_EVENT_TYPES].sort());
    for (const row of listed) {
      expect(row).to.deep.include({ Url: `https://mailjet:${PASSWORD}@host.example.com/jetpost/events`, Version: 2, IsBackup: false, Status: 'alive' });
    }
  });

  it('when another system registered its own URL for a type, then nothing is changed and the command says what is there; with --force it is replaced', async () => {
    await rest('POST', '', { EventType: 'bounce', Url: 'https://crm:crm-secret@crm.example.com/mailjet-hook', Version: 1 });
    // One of ours from an earlier run (other credentials) is not foreign.
    await rest('POST', '', { EventType: 'sent', Url: 'https://mailjet:old-password@host.example.com/events', Version: 2 });

    const refused = await register(['https://host.example.com']);

    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.contain('bounce').and.contain('crm.example.com/mailjet-hook').and.contain('--force');
    expect(refused.stderr).to.not.contain('crm-secret');
    expect((await rows()).map((row) => [row.EventType, row.Url]).sort()).to.deep.equal([
      ['bounce', 'https://crm:crm-secret@crm.example.com/mailjet-hook'],
      ['sent', 'https://mailjet:old-password@host.example.com/events'],
    ]);

    const forced = await register(['https://host.example.com', '--force']);

    expect(forced.code, forced.stderr).to.equal(0);
    expect(forced.stdout).to.contain('(--force) replaced bounce https://[redacted]@crm.example.com/mailjet-hook');
    const listed = await rows();
    expect(listed).to.have.length(7);
    expect(listed.every((row) => row.Url === `https://mailjet:${PASSWORD}@host.example.com/events` && row.Version === 2)).to.equal(true);
  });

  it("when --backup is given, then each type also gets Mailjet's backup URL; a backup equal to the primary or a bad URL is a usage error", async () => {
    const done = await register(['https://host.example.com/jetpost/', '--backup', 'https://standby.example.com/jetpost/']);
    const same = await register(['https://host.example.com/jetpost/', '--backup', 'https://host.example.com/jetpost']);
    const bad = await register(['ftp://host.example.com/']);

    expect(done.code, done.stderr).to.equal(0);
    expect(done.stdout.match(/ backup created → /g)).to.have.length(7);
    const listed = await rows();
    expect(listed).to.have.length(14);
    expect(listed.filter((row) => row.IsBackup).every((row) => row.Url === `https://mailjet:${PASSWORD}@standby.example.com/jetpost/events`)).to.equal(true);
    expect(listed.filter((row) => !row.IsBackup).every((row) => row.Url === `https://mailjet:${PASSWORD}@host.example.com/jetpost/events`)).to.equal(true);
    expect(same.code).to.equal(2);
    expect(same.stderr).to.contain('--backup must differ');
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain('absolute http(s) URL');
  });
});
