// Suppressions match an address whatever form its domain is written in: Unicode (bücher.example) or
// ASCII (xn--bcher-kva.example), as the recipients of one message already compare. A suppression by
// hand (the admin API) or by a bounce, spam complaint or unsubscribe under one form stops a send to
// the other; the list shows each address once, under its ASCII form, and either form removes it.
import fs from 'node:fs/promises';
import path from 'node:path';

import { expect } from 'chai';

import { addressKey } from '../../src/domain/email-address.js';
import { eventText } from '../support/mailjet-events.js';
import { isolateNetwork, mockMailjetSend, restoreNetwork } from '../support/mailjet-nock.js';
import { ADMIN_KEY, eventually, startTestService, type TestService } from '../support/service.js';

interface JobJson {
  status: string;
  last_error: string | null;
  recipients: Array<{ email: string; status: string; message_id: string | null }>;
}

const UNICODE = 'bob@bücher.example';
const ASCII = 'bob@xn--bcher-kva.example';

describe('suppressions and internationalised domains', () => {
  let service: TestService;
  let suppressions: string;

  beforeEach(async () => {
    isolateNetwork();
    mockMailjetSend();
    service = await startTestService();
    const { rows } = await service.db.pool.query<{ name: string }>('select name from apps where id = $1', [service.appId]);
    suppressions = `/admin/apps/${rows[0]!.name}/suppressions`;
  });

  afterEach(async () => {
    await service?.stop();
    restoreNetwork();
  });

  /** Queues one message to `to` and waits until it has settled past the send (accepted, or failed). */
  async function send(to: string): Promise<JobJson & { jobId: string }> {
    const res = await service.request('POST', '/queue', { body: { from: 'app@example.com', to, subject: 'Hi', text: 'Hi' } });
    const { job_id: jobId } = (await res.json()) as { job_id: string };
    const job = await eventually(async () => {
      const view = (await (await service.request('GET', `/status/${jobId}`)).json()) as JobJson;
      return ['accepted', 'failed'].includes(view.status) ? view : undefined;
    });
    return { ...job, jobId };
  }

  const listed = async () =>
    ((await (await service.request('GET', suppressions, { key: ADMIN_KEY })).json()) as { suppressions: Array<{ email: string }> }).suppressions.map(
      (row) => row.email,
    );

  for (const [added, sent] of [
    [UNICODE, ASCII],
    [ASCII, UNICODE],
    ['Bob@BÜCHER.example', ASCII],
  ] as const) {
    it(`when ${added} is suppressed by hand, then a message to ${sent} fails suppressed without a call, the list shows the address once, and either form removes it`, async () => {
      expect((await service.request('POST', suppressions, { body: { email: added }, key: ADMIN_KEY })).status).to.equal(201);
      expect((await service.request('POST', suppressions, { body: { email: sent }, key: ADMIN_KEY })).status).to.equal(201);

      const job = await send(sent);

      expect(job.status, JSON.stringify(job)).to.equal('failed');
      expect(job.last_error).to.match(/^suppressed: /);
      expect(await listed()).to.deep.equal([ASCII]);
      expect((await service.request('DELETE', `${suppressions}/${encodeURIComponent(sent)}`, { key: ADMIN_KEY })).status).to.equal(204);
      expect(await listed()).to.deep.equal([]);
    });
  }

  for (const [type, fields] of [
    ['bounce', { hard_bounce: true, blocked: false, error_related_to: 'recipient', error: 'user unknown' }],
    ['spam', { source: 'JMRPP' }],
    ['unsub', {}],
  ] as const) {
    it(`when a message to ${UNICODE} gets a ${type} event, then the address is suppressed under its ASCII form and a message to ${ASCII} is not sent`, async () => {
      const first = await send(UNICODE);
      expect(first.status, JSON.stringify(first)).to.equal('accepted');
      const messageId = first.recipients[0]!.message_id!;

      expect((await service.postEvents(eventText(type, messageId, UNICODE, 1_700_000_100, fields))).status).to.equal(200);
      const second = await send(ASCII);

      expect(await listed()).to.deep.equal([ASCII]);
      expect(second.status, JSON.stringify(second)).to.equal('failed');
      expect(second.last_error).to.match(/^suppressed: /);
    });
  }

  it('then the database’s key of an address is the one the recipients of a message compare by (addressKey)', async () => {
    const addresses = [UNICODE, ASCII, 'a@münchen.de', 'x@例え.テスト', 'ü@bücher.example', 'a@straße.de', 'a@ελλάδα.gr', 'a@ＢÜCHER.example', 'A@Example.COM'];
    const { rows } = await service.db.pool.query<{ key: string }>(
      'select address_key(a) as key from unnest($1::text[]) with ordinality as t(a, i) order by i',
      [addresses],
    );

    expect(rows.map((row) => row.key)).to.deep.equal(addresses.map(addressKey));
  });

  // Hostile forms. Where the two keys differ, nothing compares one with the other: suppressions are
  // written and read with address_key() alone, and an event's address is checked by
  // isHoldersAddress alone (test/db/events-address-check.test.ts).
  it('then on hostile addresses the two keys agree, but for the dotted İ, a final sigma, an ideographic full stop and a full-width @', async () => {
    const agreeing = [
      'JOSÉ@xn--bcher-kva.example',
      'JOSÉ@BÜCHER.EXAMPLE',
      'ınci@example.com',
      'a@ıstanbul.example',
      'STRASSE@example.com',
      'straße@STRASSE.de',
      'a@ｅｘａｍｐｌｅ.com',
      'a@bücher.example.',
      'a@example.com.',
      'οδος@ΕΛΛΆΔΑ.GR',
      'раураl@раураl.com',
      'Ǆ@example.com',
      'ﬃ@example.com',
      'a@ﬃ.example',
    ];
    const disagreeing = ['İnci@example.com', 'a@İstanbul.example', 'ΟΔΟΣ@ελλάδα.gr', 'a@b。example', 'a＠example.com'];
    const addresses = [...agreeing, ...disagreeing];
    const { rows } = await service.db.pool.query<{ key: string | null }>(
      'select address_key(a) as key from unnest($1::text[]) with ordinality as t(a, i) order by i',
      [addresses],
    );

    expect(addresses.filter((address, index) => rows[index]!.key !== addressKey(address))).to.deep.equal(disagreeing);
  });

  it('when suppressions were stored under both forms before (migration 42), then one row per address is left, under its ASCII form', async () => {
    const pool = service.db.pool;
    await pool.query(
      `insert into suppressions (app_id, email, reason, created_at) values
         ($1, 'bob@bücher.example', 'hard_bounce', now() - interval '2 days'),
         ($1, 'bob@xn--bcher-kva.example', 'manual', now() - interval '1 day'),
         ($1, 'eve@münchen.de', 'spam', now()),
         ($1, 'plain@example.com', 'manual', now())`,
      [service.appId],
    );
    const migration = await fs.readFile(path.join(import.meta.dirname, '../../sql/42_match-suppressions-on-ascii-domains.sql'), 'utf8');
    await pool.query(migration.slice(migration.indexOf('-- The rows stored before')));

    const { rows } = await pool.query('select email, reason from suppressions where app_id = $1 order by email', [service.appId]);
    expect(rows).to.deep.equal([
      { email: 'bob@xn--bcher-kva.example', reason: 'hard_bounce' },
      { email: 'eve@xn--mnchen-3ya.de', reason: 'spam' },
      { email: 'plain@example.com', reason: 'manual' },
    ]);
  });
});
