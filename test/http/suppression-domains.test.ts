// Suppressions match an address whatever form its domain is written in: Unicode (bücher.example) or
// ASCII (xn--bcher-kva.example), as the recipients of one message already compare, and whatever the
// case of its letters, ASCII or not (JOSÉ and josé), on a database of any locale: a plain C one, whose
// lower() changes ASCII letters only, too. A suppression by hand (the admin API) or by a bounce, spam
// complaint or unsubscribe under one form stops a send to the other; the list shows each address
// once, under its key, and either form removes it.
import fs from 'node:fs/promises';
import path from 'node:path';

import { expect } from 'chai';
import type { Pool } from 'pg';

import { seedDashboardHistory } from '../../bench/dashboard-seed.js';
import { findJobsByRecipient } from '../../src/db/jobs-repo.js';
import { runMigrations } from '../../src/db/migrate.js';
import { addressKey, emailAddressProblem } from '../../src/domain/email-address.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';
import { testLogger } from '../support/log.js';
import { eventText } from '../support/mailjet-events.js';
import { isolateNetwork, mockMailjetSend, restoreNetwork } from '../support/mailjet-nock.js';
import { expectBoundedReads } from '../support/plans.js';
import { ADMIN_KEY, eventually, startTestService, type TestService } from '../support/service.js';

interface JobJson {
  status: string;
  last_error: string | null;
  recipients: Array<{ email: string; status: string; message_id: string | null }>;
}

const UNICODE = 'bob@bücher.example';
const ASCII = 'bob@xn--bcher-kva.example';
/** One address in two cases, its capital not ASCII. */
const CAPITAL = 'JOSÉ@x.example';
const SMALL = 'josé@x.example';

// The cluster's locale (C.UTF-8 or en_US.UTF-8: lower() changes every letter), then a plain C one.
for (const locale of [undefined, 'C'] as const) {
  describe(`suppressions and internationalised domains${locale === undefined ? '' : `, on a database whose locale is ${locale}`}`, () => {
    let service: TestService;
    let suppressions: string;
    /** With a locale: one database for the file (apps keep their suppressions apart), migrated once. */
    let shared: TestDatabase | undefined;

    before(async () => {
      if (locale !== undefined) {
        shared = await createTestDatabase({ locale });
        await runMigrations({ connectionString: shared.url, schema: TEST_SCHEMA, log: testLogger() });
      }
    });

    after(async () => {
      await shared?.drop();
    });

    beforeEach(async () => {
      isolateNetwork();
      mockMailjetSend();
      service = await startTestService(shared === undefined ? {} : { db: shared });
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
      [CAPITAL, SMALL],
      [SMALL, CAPITAL],
      // UTS #46 maps ẞ in a domain to ss (not to ß, another domain); in a local part ẞ is ß, and Σ is σ.
      ['x@STRAẞE.example', 'x@strasse.example'],
      ['STRAẞE@x.example', 'straße@x.example'],
      ['ΟΔΟΣ@x.example', 'οδοσ@x.example'],
      ['x@ΣΑΣ.example', 'x@σασ.example'],
    ] as const) {
      it(`when ${added} is suppressed by hand, then a message to ${sent} fails suppressed without a call, the list shows the address once, and either form removes it`, async () => {
        expect((await service.request('POST', suppressions, { body: { email: added }, key: ADMIN_KEY })).status).to.equal(201);
        expect((await service.request('POST', suppressions, { body: { email: sent }, key: ADMIN_KEY })).status).to.equal(201);

        const job = await send(sent);

        expect(job.status, JSON.stringify(job)).to.equal('failed');
        expect(job.last_error).to.match(/^suppressed: /);
        expect(await listed()).to.deep.equal([addressKey(sent)]);
        expect((await service.request('DELETE', `${suppressions}/${encodeURIComponent(sent)}`, { key: ADMIN_KEY })).status).to.equal(204);
        expect(await listed()).to.deep.equal([]);
      });
    }

    for (const [type, fields] of [
      ['bounce', { hard_bounce: true, blocked: false, error_related_to: 'recipient', error: 'user unknown' }],
      ['spam', { source: 'JMRPP' }],
      ['unsub', {}],
    ] as const) {
      for (const [first, then] of [
        [UNICODE, ASCII],
        [CAPITAL, SMALL],
      ] as const) {
        it(`when a message to ${first} gets a ${type} event, then the address is suppressed under its key and a message to ${then} is not sent`, async () => {
          const sent = await send(first);
          expect(sent.status, JSON.stringify(sent)).to.equal('accepted');
          const messageId = sent.recipients[0]!.message_id!;

          expect((await service.postEvents(eventText(type, messageId, first, 1_700_000_100, fields))).status).to.equal(200);
          const second = await send(then);

          expect(await listed()).to.deep.equal([addressKey(then)]);
          expect(second.status, JSON.stringify(second)).to.equal('failed');
          expect(second.last_error).to.match(/^suppressed: /);
        });
      }
    }

    // A local part is the receiving server's business: jetpost does not take ß for ss, nor ς for σ,
    // which a server may keep apart. In a domain UTS #46 (IDNA2008) keeps them apart too.
    for (const [added, sent] of [
      ['strasse@x.example', 'straße@x.example'],
      ['σασ@x.example', 'σας@x.example'],
      ['x@strasse.example', 'x@straße.example'],
      ['x@σασ.example', 'x@σας.example'],
    ] as const) {
      it(`when ${added} is suppressed by hand, then a message to ${sent} is sent: another address`, async () => {
        expect((await service.request('POST', suppressions, { body: { email: added }, key: ADMIN_KEY })).status).to.equal(201);

        const job = await send(sent);

        expect(job.status, JSON.stringify(job)).to.equal('accepted');
      });
    }

    // The dashboard's search by recipient (the admin's look-up of a message) matches as suppressions
    // do, whatever the database's locale: lower() in a C locale lower-cased ASCII letters only.
    it('when messages went to one address in several forms, then a search by any of them finds each, and none to another address', async () => {
      const forms = ['josé@bücher.example', 'JOSÉ@BÜCHER.example', 'José@xn--bcher-kva.example', 'JOSÉ@XN--BCHER-KVA.EXAMPLE'];
      const others = ['jose@bücher.example', 'josé@bucher.example'];
      const jobIds: string[] = [];
      for (const to of [...forms, ...others]) {
        jobIds.push((await send(to)).jobId);
      }
      const greek = [(await send('ΟΔΟΣ@ΣΑΣ.example')).jobId, (await send('οδοσ@σασ.example')).jobId];
      const final = (await send('οδος@σας.example')).jobId;

      for (const form of forms) {
        const found = await findJobsByRecipient(service.db.pool, form, { limit: 50 });
        expect(
          found.map((row) => row.id),
          form,
        ).to.deep.equal(jobIds.slice(0, forms.length).reverse());
      }
      expect((await findJobsByRecipient(service.db.pool, 'Οδοσ@Σασ.EXAMPLE', { limit: 50 })).map((row) => row.id)).to.deep.equal([...greek].reverse());
      expect((await findJobsByRecipient(service.db.pool, 'ΟΔΟς@σας.example', { limit: 50 })).map((row) => row.id)).to.deep.equal([final]);
    });

    // sql/49's index of address_key(email): the search reads a page of it, not the table, in this
    // locale too (an index of lower(email) served only a query of lower(), which a C locale made
    // ASCII-only).
    it('when there are 20,000 jobs, then a search by recipient reads the index of keys, not the recipients one by one', async function () {
      this.timeout(600_000);
      // A database of its own, of this locale: the service's has throughput rows the seed also writes.
      const own = await createTestDatabase(locale === undefined ? {} : { locale });
      try {
        if (locale !== undefined) {
          await runMigrations({ connectionString: own.url, schema: TEST_SCHEMA, log: testLogger() });
        }
        const seeded = await seedDashboardHistory(own.pool, { jobs: 20_000, apps: 2, prefix: 'keys', now: new Date() });
        const big = new Set(['email_send_jobs', 'email_recipients']);

        for (const search of [seeded.sampleRecipient.toUpperCase(), 'JOSÉ@BÜCHER.example']) {
          await expectBoundedReads(own.pool, (q) => findJobsByRecipient(q, search, { limit: 50 }), big, 200);
        }
      } finally {
        await own.drop();
      }
    });

    it('then the database’s key of an address is the one the recipients of a message compare by (addressKey)', async () => {
      const addresses = [
        UNICODE,
        ASCII,
        'a@münchen.de',
        'x@例え.テスト',
        'ü@bücher.example',
        'a@straße.de',
        'a@ελλάδα.gr',
        'a@ＢÜCHER.example',
        'A@Example.COM',
      ];
      const { rows } = await service.db.pool.query<{ key: string }>(
        'select address_key(a) as key from unnest($1::text[]) with ordinality as t(a, i) order by i',
        [addresses],
      );

      expect(rows.map((row) => row.key)).to.deep.equal(addresses.map(addressKey));
    });

    // Hostile forms. Where the two keys differ, nothing compares one with the other: suppressions are
    // written and read with address_key() alone, and an event's address is checked by
    // isHoldersAddress alone (test/db/events-address-check.test.ts).
    it('then on hostile addresses the two keys agree, but for an ideographic full stop and a full-width @ (no address accepted holds either)', async () => {
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
        'İnci@example.com',
        'a@İstanbul.example',
        'ΟΔΟΣ@ελλάδα.gr',
        'ΣΑΣ@ΣΑΣ.gr',
        'σας@σας.gr',
        'STRAẞE@STRAẞE.de',
        'x@ᾼᾀ.example',
        'x@ᏸꭰᎠ.example',
      ];
      const disagreeing = ['a@b。example', 'a＠example.com'];
      const addresses = [...agreeing, ...disagreeing];
      const { rows } = await service.db.pool.query<{ key: string | null }>(
        'select address_key(a) as key from unnest($1::text[]) with ordinality as t(a, i) order by i',
        [addresses],
      );

      expect(addresses.filter((address, index) => rows[index]!.key !== addressKey(address))).to.deep.equal(disagreeing);
    });

    // Each letter and mark whose case or compatibility form is not itself, in a local part and in a
    // domain: what UTS #46 maps a domain to, as Node gives it, is what the database keys it as.
    it('then for every letter of another case or compatibility form, in a local part or a domain, the two keys agree', async () => {
      const addresses: string[] = [];
      for (let point = 0x80; point <= 0x10ffff; point += 1) {
        const letter = point >= 0xd800 && point <= 0xdfff ? '' : String.fromCodePoint(point);
        if (letter !== '' && (letter.toLowerCase() !== letter || letter.toUpperCase() !== letter || letter.normalize('NFKC') !== letter)) {
          addresses.push(`a${letter}b@x.example`, `x@a${letter}b.example`);
        }
      }
      const accepted = addresses.filter((address) => emailAddressProblem(address) === undefined);
      const { rows } = await service.db.pool.query<{ key: string }>(
        'select address_key(a) as key from unnest($1::text[]) with ordinality as t(a, i) order by i',
        [accepted],
      );

      expect(accepted.length).to.be.above(5_000);
      expect(accepted.filter((address, index) => rows[index]!.key !== addressKey(address))).to.deep.equal([]);
    });

    // The table of sql/44 is Node 20's (Unicode 15.1): a Node with a newer Unicode names the capitals
    // it adds, for a later migration to add them to the table.
    it('then unicode_lower() lower-cases each letter as Node does (one letter for one: İ to i), and leaves small letters as they are', async () => {
      const changed: string[] = [];
      for (let point = 0x41; point <= 0x10ffff; point += 1) {
        const letter = point >= 0xd800 && point <= 0xdfff ? '' : String.fromCodePoint(point);
        if (letter !== '' && letter.toLowerCase() !== letter) {
          changed.push(letter);
        }
      }
      const small = (letter: string) => (letter === 'İ' ? 'i' : [...letter.toLowerCase()].length === 1 ? letter.toLowerCase() : letter);
      const letters = [...changed, ...changed.map(small)];
      const { rows } = await service.db.pool.query<{ lowered: string }>('select unicode_lower($1) as lowered', [letters.join('')]);

      expect([...rows[0]!.lowered]).to.deep.equal(letters.map(small));
      // Each letter alone beside ASCII capitals: a text without a capital beyond ASCII's is lowered by lower() in the C collation.
      const { rows: alone } = await service.db.pool.query<{ lowered: string }>(
        "select unicode_lower('Ab' || letter || 'Z') as lowered from unnest($1::text[]) with ordinality as t(letter, i) order by i",
        [letters],
      );
      expect(alone.map((row) => row.lowered)).to.deep.equal(letters.map((letter) => `ab${small(letter)}z`));
    });

    // The claim keys every recipient it reads: translate() over the 26 capitals took about 10 µs per
    // address (sql/47_…). lower() in the text's own collation would not do: a Turkish one makes I ı
    // (checked where PostgreSQL has ICU's Turkish collation, as the embedded one has).
    it('then an ASCII text is lower-cased by lower() in the C collation, A to Z alone, in a Turkish collation too', async () => {
      const pool = service.db.pool;
      const { rows: plan } = await pool.query<{ 'QUERY PLAN': string }>(
        'explain (verbose, costs off) select unicode_lower(a) from unnest($1::text[]) as t(a)',
        [['TITLE@EXAMPLE.COM']],
      );
      const turkish = (await pool.query("select 1 from pg_collation where collname = 'tr-x-icu'")).rows.length > 0;
      const { rows } = turkish
        ? await pool.query<{ key: string; lowered: string }>(
            `select address_key(a collate "tr-x-icu") as key, unicode_lower(a collate "tr-x-icu") as lowered
             from (values ('TITLE.İNBOX@EXAMPLE.COM'), ('TITLE@EXAMPLE.COM')) as t(a)`,
          )
        : { rows: [] };

      // lower() too for a text whose capitals are all ASCII (rëader@): translate() only where a capital beyond ASCII's is.
      expect(plan.map((row) => row['QUERY PLAN']).join('\n')).to.match(/ !~ '\[[^\]]*Ä[^\]]*\]'::text\)\) THEN lower\(/);
      expect(rows).to.deep.equal(
        turkish
          ? [
              { key: 'title.inbox@example.com', lowered: 'title.inbox@example.com' },
              { key: 'title@example.com', lowered: 'title@example.com' },
            ]
          : [],
      );
    });

    // Every recipient enqueued is keyed for sql/49's index: two regular-expression tests cost it about
    // 0.7 µs of PostgreSQL's CPU more than lower() (sql/50_…). Its count of bytes against characters
    // tells every code point as the pattern did.
    it('then address_key() tells an ASCII address by its length, not a pattern, and keys it by lower() in the C collation', async () => {
      const pool = service.db.pool;
      const { rows: plan } = await pool.query<{ 'QUERY PLAN': string }>('explain (verbose, costs off) select address_key(a) from unnest($1::text[]) as t(a)', [
        ['TITLE@EXAMPLE.COM'],
      ]);
      const { rows } = await pool.query<{ disagreeing: number }>(
        `select count(*)::int as disagreeing from generate_series(1, 1114111) as point, lateral (select 'a' || chr(point) || 'B' as text) as t
         where point not between 55296 and 57343 and (octet_length(text) = length(text)) <> (text ~ '^[\\x01-\\x7f]*$')`,
      );

      expect(plan.map((row) => row['QUERY PLAN']).join('\n')).to.match(/CASE WHEN \(octet_length\(a\) = length\(a\)\) THEN lower\(/);
      expect(rows).to.deep.equal([{ disagreeing: 0 }]);
    });

    // An address with a letter beyond ASCII goes to idna_address_key(), which ran its domain's UTS #46
    // mapping and a query over its labels for every one, 100 to 400 µs each (sql/50_…): an ASCII
    // domain, which that mapping only lower-cases, is lower-cased without it.
    it('then the key of an address whose domain is ASCII is taken without mapping the domain, and of one whose domain is not, with it', async function () {
      const mapped = async (address: string) => {
        const { key, calls } = (await keyAndCalls(service.db.pool, address, ['idna_domain(text)'])) ?? this.skip();
        return { key, mappings: calls[0] };
      };

      expect(await mapped('JOSÉ@Example.COM')).to.deep.equal({ key: 'josé@example.com', mappings: 0 });
      expect(await mapped('José@BÜCHER.example')).to.deep.equal({ key: 'josé@xn--bcher-kva.example', mappings: 1 });
    });

    // A digit of Punycode cost an SQL function call of its own, about 3 µs, and a label about 15 µs
    // more in queries (sql/51_…): punycode_digit() is inlined into punycode_label(), called once.
    it('then a non-ASCII label is encoded by one call, its digits inlined', async function () {
      const { key, calls } = (await keyAndCalls(service.db.pool, 'a@bücher.example', ['punycode_label(text)', 'punycode_digit(bigint)'])) ?? this.skip();

      expect({ key, labels: calls[0], digits: calls[1] }).to.deep.equal({ key: 'a@xn--bcher-kva.example', labels: 1, digits: 0 });
    });

    // The Punycode of a domain's labels, written out (three are RFC 3492's own samples, §7.1), not
    // taken from addressKey: sql/51_… encodes a label without a query per label, with its own loops.
    it('then the key of an internationalised domain is its Punycode, label by label', async () => {
      const keys: Array<[string, string]> = [
        ['Bob@BÜCHER.example', 'bob@xn--bcher-kva.example'],
        ['a@münchen.de', 'a@xn--mnchen-3ya.de'],
        ['a@中国', 'a@xn--fiqs8s'],
        ['a@他们为什么不说中文.cn', 'a@xn--ihqwcrb4cv8a8dqg056pqjye.cn'],
        ['a@ليهمابتكلموشعربي؟.eg', 'a@xn--egbpdaj6bu4bxfgehfvwxn.eg'],
        ['a@3年B組金八先生.jp', 'a@xn--3b-ww4c5e180e575a65lsy2b.jp'],
        ['a@例え.テスト.', 'a@xn--r8jz45g.xn--zckzah.'],
        ['a@💩.la', 'a@xn--ls8h.la'],
        ['a@ab--cdé.example', 'a@xn--ab--cd-gva.example'],
        [`a@ü${'a'.repeat(40)}ßéœ${'b'.repeat(19)}.de`, `a@xn--${'a'.repeat(40)}${'b'.repeat(19)}-9xe42dq9a21n.de`],
      ];
      const { rows } = await service.db.pool.query<{ key: string }>(
        'select address_key(a) as key from unnest($1::text[]) with ordinality as t(a, i) order by i',
        [keys.map(([address]) => address)],
      );

      expect(rows.map((row) => row.key)).to.deep.equal(keys.map(([, key]) => key));
    });

    it('when suppressions were stored under keys lower() made (before migration 44), then each address is left once, under its key, with its oldest reason', async () => {
      const pool = service.db.pool;
      await pool.query('alter table suppressions drop constraint suppressions_email_check');
      await pool.query(
        `insert into suppressions (app_id, email, reason, created_at) values
         ($1, 'josÉ@x.example', 'hard_bounce', now() - interval '2 days'),
         ($1, 'josé@x.example', 'manual', now() - interval '1 day'),
         ($1, 'ÉVE@x.example', 'spam', now()),
         ($1, '\u212a@x.example', 'manual', now() - interval '3 days'),
         ($1, 'k@x.example', 'spam', now()),
         ($1, 'plain@example.com', 'manual', now())`,
        [service.appId],
      );
      await pool.query('alter table suppressions add constraint suppressions_email_check check (email = lower(email)) not valid');
      const migration = await fs.readFile(path.join(import.meta.dirname, '../../sql/44_match-suppressions-in-any-locale.sql'), 'utf8');
      await pool.query(migration.slice(migration.indexOf('-- The rows stored before')));

      const { rows } = await pool.query<{ email: string; reason: string }>('select email, reason from suppressions where app_id = $1', [service.appId]);
      expect(rows.sort((a, b) => (a.email < b.email ? -1 : 1))).to.deep.equal([
        { email: 'josé@x.example', reason: 'hard_bounce' },
        { email: 'k@x.example', reason: 'manual' },
        { email: 'plain@example.com', reason: 'manual' },
        { email: 'éve@x.example', reason: 'spam' },
      ]);
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

    it('when a release before migration 42 stored suppressions during a rolling upgrade (under lower(email)), then their addresses are sent to until the statements of docs/operations.md key them; after those they fail suppressed, and a key already stored keeps its row', async () => {
      const pool = service.db.pool;
      await pool.query(
        `insert into suppressions (app_id, email, reason, created_at) values
         ($1, 'bob@bücher.example', 'hard_bounce', now() - interval '1 day'),
         ($1, 'eve@münchen.de', 'spam', now() - interval '2 days'),
         ($1, 'eve@xn--mnchen-3ya.de', 'manual', now()),
         ($1, 'plain@example.com', 'manual', now())`,
        [service.appId],
      );
      expect((await send(UNICODE)).status, 'before the statements').to.equal('accepted');
      const operations = await fs.readFile(path.join(import.meta.dirname, '../../docs/operations.md'), 'utf8');
      const rekey = /```sql\n(begin;\ninsert into jetpost\.suppressions [^`]*)```/.exec(operations)?.[1];
      expect(rekey, 'the statements in docs/operations.md').to.be.a('string');

      await pool.query(rekey!.replaceAll('jetpost.', `${TEST_SCHEMA}.`));

      const { rows } = await pool.query('select email, reason from suppressions where app_id = $1 order by email', [service.appId]);
      expect(rows).to.deep.equal([
        { email: ASCII, reason: 'hard_bounce' },
        { email: 'eve@xn--mnchen-3ya.de', reason: 'manual' },
        { email: 'plain@example.com', reason: 'manual' },
      ]);
      const job = await send(UNICODE);
      expect(job.status, JSON.stringify(job)).to.equal('failed');
      expect(job.last_error).to.match(/^suppressed: /);
      const again = (await pool.query(rekey!.replaceAll('jetpost.', `${TEST_SCHEMA}.`))) as unknown as Array<{ rowCount: number | null }>;
      expect(again.map((result) => result.rowCount).filter((count) => count !== null)).to.deep.equal([0, 0]);
    });
  });
}

/**
 * An address's key and how many calls of each function it made; undefined when the database user
 * may not count them (a superuser's setting: a DATABASE_URL of another role has nothing to count).
 * PostgreSQL keeps a backend's counts pending for up to a second before it flushes them, so the
 * "transaction" counts may still hold calls of an earlier transaction on the same connection: the
 * key's own are the difference.
 */
async function keyAndCalls(pool: Pool, address: string, functions: string[]): Promise<{ key: string; calls: number[] } | undefined> {
  const client = await pool.connect();
  try {
    const { rows: role } = await client.query<{ super: boolean }>('select rolsuper as super from pg_roles where rolname = current_user');
    if (!role[0]!.super) {
      return undefined;
    }
    await client.query("begin; set local track_functions = 'all'");
    const count = async () =>
      (
        await client.query<{ calls: number[] }>(
          'select array(select coalesce(pg_stat_get_xact_function_calls(f::regprocedure), 0)::int from unnest($1::text[]) with ordinality as u(f, i) order by i) as calls',
          [functions],
        )
      ).rows[0]!.calls;
    const before = await count();
    const { rows } = await client.query<{ key: string }>('select address_key($1) as key', [address]);
    const after = await count();
    return { key: rows[0]!.key, calls: after.map((n, i) => n - before[i]!) };
  } finally {
    await client.query('rollback');
    client.release();
  }
}
