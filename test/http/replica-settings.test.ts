// Replicas on one database started with different settings: the one that starts second says so at
// once, a warning naming the setting and the other replica (a secret compared by hash, never shown),
// and its /metrics counts the difference. The same settings say nothing; a stopped replica's row goes.
import os from 'node:os';

import { expect } from 'chai';

import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { capturingLogger } from '../support/log.js';
import { isolateNetwork, restoreNetwork } from '../support/mailjet-nock.js';
import { startTestService, type TestService } from '../support/service.js';

const OTHER_MAILJET_KEY = 'another-account-key-5d1f0c';

function replicaWarnings(lines: string[]): Array<Record<string, unknown>> {
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['component'] === 'replicas');
}

async function differing(service: TestService): Promise<string[]> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  return text.split('\n').filter((line) => line.startsWith('jetpost_replica_settings_differing{'));
}

describe('replicas with different settings', () => {
  let db: TestDatabase;
  let services: TestService[] = [];

  beforeEach(async () => {
    isolateNetwork();
    db = await createTestDatabase();
  });

  afterEach(async () => {
    for (const service of services) {
      await service.stop();
    }
    services = [];
    await db.drop();
    restoreNetwork();
  });

  it('when a second replica starts with the same settings, then it warns of nothing and counts no difference', async () => {
    services.push(await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } }));
    const second = capturingLogger('info');
    const b = await startTestService({ db, env: { WORKER_CONCURRENCY: '0' }, log: second.log });
    services.push(b);
    expect(replicaWarnings(second.lines())).to.deep.equal([]);
    expect(await differing(b)).to.deep.equal([]);
  });

  it('when a second replica starts with another MAX_ATTEMPTS and another Mailjet key, then at its start it warns of each, naming the other replica, shows no key, and its /metrics counts them; once it stops, its heartbeat row is gone', async () => {
    const a = await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } });
    services.push(a);
    const second = capturingLogger('info');
    const b = await startTestService({ db, env: { WORKER_CONCURRENCY: '0', MAX_ATTEMPTS: '3', MAILJET_API_KEY: OTHER_MAILJET_KEY }, log: second.log });
    services.push(b);

    const warnings = replicaWarnings(second.lines());
    const replica = `${os.hostname()} (pid ${process.pid})`;
    expect(warnings.map((line) => [line['level'], line['setting'], line['replica']])).to.have.deep.members([
      ['warn', 'MAX_ATTEMPTS', replica],
      ['warn', 'MAILJET_API_KEY', replica],
    ]);
    const attempts = warnings.find((line) => line['setting'] === 'MAX_ATTEMPTS')!;
    expect(attempts['message']).to.include(`MAX_ATTEMPTS is 3 here and 8 on the replica ${replica}`);
    const key = warnings.find((line) => line['setting'] === 'MAILJET_API_KEY')!;
    expect(key['message']).to.include('MAILJET_API_KEY differs from that of the replica').and.include('compared by hash');
    expect(second.lines().join('\n')).to.not.include(OTHER_MAILJET_KEY);
    const { rows } = await db.pool.query<{ settings: string }>('select settings::text from replica_heartbeats');
    expect(rows).to.have.length(2);
    expect(rows.map((row) => row.settings).join('\n')).to.not.include(OTHER_MAILJET_KEY);

    expect(await differing(b)).to.have.members([
      'jetpost_replica_settings_differing{setting="MAILJET_API_KEY"} 1',
      'jetpost_replica_settings_differing{setting="MAX_ATTEMPTS"} 1',
    ]);

    await b.stop();
    services = [a];
    const { rows: left } = await db.pool.query<{ n: number }>('select count(*)::int as n from replica_heartbeats');
    expect(left[0]!.n).to.equal(1);
  });
});
