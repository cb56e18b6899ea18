// Status changes delivered to an app's webhook: signed, retried until the receiver takes them, and
// verifiable with the snippet in docs/webhooks.md exactly as written there.
import fs from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { expect } from 'chai';

import { runCli } from '../support/cli.js';
import { dashboardClient } from '../support/dashboard-client.js';
import { isolateNetwork, mockMailjetSend, restoreNetwork } from '../support/mailjet-nock.js';
import { ADMIN_KEY, eventually, startTestService, type TestService } from '../support/service.js';

const PROJECT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const README = path.join(PROJECT, 'docs', 'webhooks.md');

type Verify = (secret: string, rawBody: string, headers: Record<string, string>) => unknown;

/**
 * The verification snippet in docs/webhooks.md, run as written there. Its file is written inside the
 * project, so that its `import 'standardwebhooks'` resolves as in an app that installed the package.
 */
async function readmeSnippet(): Promise<Verify> {
  const readme = await fs.readFile(README, 'utf8');
  const match = /<!-- webhook-verify-snippet[^>]*-->\s*```js\n([\s\S]*?)```/.exec(readme);
  expect(match, 'docs/webhooks.md has the verification snippet').to.not.equal(null);
  const cache = path.join(PROJECT, 'node_modules', '.cache');
  await fs.mkdir(cache, { recursive: true });
  const file = path.join(await fs.mkdtemp(path.join(cache, 'jetpost-snippet-')), 'verify.mjs');
  await fs.writeFile(file, match![1]!);
  return ((await import(pathToFileURL(file).href)) as { verifiedChange: Verify }).verifiedChange;
}

/** True when the snippet accepts the call; false when it throws (what a receiver answers 401 to). */
function verifies(verify: Verify, secret: string, body: string, headers: Record<string, string>): boolean {
  try {
    verify(secret, body, headers);
    return true;
  } catch {
    return false;
  }
}

interface Received {
  body: string;
  /** The Standard Webhooks headers. */
  headers: Record<string, string>;
  /** webhook-id: the delivery's id. */
  deliveryId: string;
  status: number;
  /** When the receiver answered (Date.now()). */
  answeredAt: number;
}

interface Answer {
  status: number;
  headers?: Record<string, string>;
}

/** A receiving app that answers 500 to its first `failFirst` calls, or each call (0 first) as `answer` says. */
async function receiver(answer: number | ((call: number) => Answer)): Promise<{ server: Server; url: string; calls: Received[] }> {
  const answerFor = typeof answer === 'number' ? (call: number): Answer => ({ status: call < answer ? 500 : 204 }) : answer;
  const calls: Received[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const { status, headers: answerHeaders } = answerFor(calls.length);
      const headers = Object.fromEntries(['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((name) => [name, String(req.headers[name])]));
      calls.push({ body: Buffer.concat(chunks).toString('utf8'), headers, deliveryId: headers['webhook-id']!, status, answeredAt: Date.now() });
      res.writeHead(status, answerHeaders).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, calls };
}

function eventText(type: string, messageId: string, email: string, time: number): string {
  return `{"MessageID":${messageId},${JSON.stringify({ event: type, time, email, CustomID: '', Payload: '' }).slice(1)}`;
}

describe('webhooks', () => {
  let service: TestService;
  let server: Server | undefined;

  beforeEach(() => isolateNetwork());
  afterEach(async () => {
    await service?.stop();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
    restoreNetwork();
  });

  async function appName(): Promise<string> {
    const { rows } = await service.db.pool.query('select name from apps where id = $1', [service.appId]);
    return rows[0].name as string;
  }

  async function setWebhook(
    url: string,
    eventTypes?: string[],
  ): Promise<{ url: string; secret: string; disabled_at: string | null; disabled_reason: string | null }> {
    const res = await service.request('PUT', `/admin/apps/${await appName()}/webhook`, {
      key: ADMIN_KEY,
      body: { url, ...(eventTypes ? { event_types: eventTypes } : {}) },
    });
    expect(res.status, await res.clone().text()).to.equal(200);
    return (await res.json()) as { url: string; secret: string; disabled_at: string | null; disabled_reason: string | null };
  }

  /** Rotates the app's secret through the admin API; returns the new one. */
  async function rotateSecret(overlapSeconds?: number): Promise<string> {
    const res = await service.request('POST', `/admin/apps/${await appName()}/webhook/secrets`, {
      key: ADMIN_KEY,
      body: overlapSeconds === undefined ? {} : { overlap_seconds: overlapSeconds },
    });
    expect(res.status, await res.clone().text()).to.equal(201);
    return ((await res.json()) as { secret: string }).secret;
  }

  /** Queues one message and waits for its recipient's MessageID (the `accepted` change is then recorded). */
  async function sentMessage(to: string): Promise<{ jobId: string; messageId: string }> {
    const res = await service.request('POST', '/queue', { body: { from: 'app@example.com', to, text: 'hi' } });
    const { job_id: jobId } = (await res.json()) as { job_id: string };
    const messageId = await eventually(async () => {
      const { rows } = await service.db.pool.query(
        'select mailjet_message_id::text as id from email_recipients where job_id = $1 and mailjet_message_id is not null',
        [jobId],
      );
      return rows[0]?.id as string | undefined;
    });
    return { jobId, messageId };
  }

  /** The first call the receiver took whose body is a change of this type. */
  const delivered = (hook: { calls: Received[] }, type: string) =>
    eventually(
      async () => hook.calls.find((call) => call.status === 204 && (JSON.parse(call.body) as { type: string }).type === type),
      15_000,
      `the ${type} change delivered`,
    );

  it('when the receiver fails its first calls, then every change still arrives, signed (Standard Webhooks), once per webhook-id after retries', async () => {
    mockMailjetSend();
    const hook = await receiver(4);
    server = hook.server;
    service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1', WEBHOOK_RETRY_BASE_MS: '50', WEBHOOK_RETRY_MAX_MS: '200' } });
    const { secret } = await setWebhook(hook.url);
    const verify = await readmeSnippet();

    const res = await service.request('POST', '/queue', { body: { from: 'app@example.com', to: 'a@example.com', text: 'hi', metadata: { order: 7 } } });
    const { job_id } = (await res.json()) as { job_id: string };
    const messageId = await eventually(async () => {
      const { rows } = await service.db.pool.query(
        'select mailjet_message_id::text as id from email_recipients where job_id = $1 and mailjet_message_id is not null',
        [job_id],
      );
      return rows[0]?.id as string | undefined;
    });
    await service.postEvents(`[${eventText('sent', messageId, 'a@example.com', 100)},${eventText('open', messageId, 'a@example.com', 200)}]`);
    await service.postEvents(`[${eventText('click', messageId, 'a@example.com', 300)}]`);

    const delivered = await eventually(
      async () => {
        const ok = hook.calls.filter((call) => call.status === 204);
        return new Set(ok.map((call) => call.deliveryId)).size === 4 ? ok : undefined;
      },
      15_000,
      'four changes delivered',
    );
    const payloads = delivered.map(
      (call) =>
        JSON.parse(call.body) as {
          id: string;
          type: string;
          job_id: string;
          recipient: string | null;
          old_status: string;
          metadata: unknown;
          details: unknown;
        },
    );
    expect(payloads.map((p) => p.type).sort()).to.deep.equal(['accepted', 'clicked', 'opened', 'sent']);
    expect(payloads.every((p) => p.job_id === job_id)).to.equal(true);
    expect(payloads.find((p) => p.type === 'opened')).to.deep.include({ recipient: 'a@example.com', old_status: 'sent', metadata: { order: 7 } });
    expect(payloads.find((p) => p.type === 'accepted')).to.deep.include({ recipient: null, old_status: 'processing' });
    // Every call, the failed attempts too, verifies with the docs' snippet; a delivery carries one change, whatever the attempt.
    const changeOf = new Map<string, string>();
    for (const call of hook.calls) {
      expect(verifies(verify, secret, call.body, call.headers), call.body).to.equal(true);
      const changeId = (JSON.parse(call.body) as { id: string }).id;
      expect(changeOf.get(call.deliveryId) ?? changeId).to.equal(changeId);
      changeOf.set(call.deliveryId, changeId);
    }
    // The failed attempts were repeats of deliveries made later, under the same webhook-id.
    const failedIds = hook.calls.filter((call) => call.status === 500).map((call) => call.deliveryId);
    expect(failedIds).to.have.length(4);
    expect(delivered.map((call) => call.deliveryId)).to.include.members([...new Set(failedIds)]);
    // The receiver has answered; the dispatcher records the delivery right after.
    const list = await eventually(
      async () => {
        const listed = (await (await service.request('GET', `/admin/apps/${await appName()}/webhook/deliveries`, { key: ADMIN_KEY })).json()) as {
          deliveries: Array<{ delivery_id: string; status: string; attempts: number }>;
        };
        return listed.deliveries.every((d) => d.status !== 'pending') ? listed : undefined;
      },
      15_000,
      'the four deliveries recorded',
    );
    expect(list.deliveries).to.have.length(4);
    expect(list.deliveries.every((d) => d.status === 'delivered')).to.equal(true);
    expect(list.deliveries.reduce((sum, d) => sum + d.attempts, 0)).to.equal(8);
    expect(list.deliveries.map((d) => d.delivery_id).sort()).to.deep.equal([...changeOf.keys()].sort());
  });

  it('when a body, id or secret is wrong, the signature is old or a header is missing, then the docs/webhooks.md snippet refuses it', async () => {
    const verify = await readmeSnippet();
    const { formatSecret, signatureHeaders } = await import('../../src/domain/webhook-signature.js');
    const secret = formatSecret(Buffer.alloc(32, 1));
    const body = '{"id":"1","type":"opened"}';
    const now = Math.floor(Date.now() / 1000);
    const headers = signatureHeaders([secret], '7', now, body);

    expect(verifies(verify, secret, body, headers)).to.equal(true);
    expect(verifies(verify, secret, body.replace('opened', 'clicked'), headers)).to.equal(false);
    expect(verifies(verify, secret, body, { ...headers, 'webhook-id': '8' })).to.equal(false);
    expect(verifies(verify, formatSecret(Buffer.alloc(32, 2)), body, headers)).to.equal(false);
    expect(verifies(verify, secret, body, signatureHeaders([secret], '7', now - 3600, body))).to.equal(false);
    expect(verifies(verify, secret, body, { ...headers, 'webhook-signature': 'garbage' })).to.equal(false);
    expect(verifies(verify, secret, body, { 'webhook-id': '7', 'webhook-timestamp': String(now) })).to.equal(false);
  });

  it('when the secret is rotated twice and then with overlap 0, then real deliveries verify with every secret still in its overlap, and after it only with the new one', async () => {
    mockMailjetSend();
    const hook = await receiver(0);
    server = hook.server;
    service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' } });
    const { secret: first } = await setWebhook(hook.url);
    const verify = await readmeSnippet();
    const second = await rotateSecret(3600);
    const third = await rotateSecret();

    // Two rotations in a row: all three secrets verify the same delivery; a wrong one does not.
    const { messageId } = await sentMessage('rot@example.com');
    const accepted = await delivered(hook, 'accepted');
    for (const secret of [first, second, third]) {
      expect(verifies(verify, secret, accepted.body, accepted.headers), secret).to.equal(true);
    }
    expect(accepted.headers['webhook-signature']!.split(' ')).to.have.length(3);
    const { formatSecret } = await import('../../src/domain/webhook-signature.js');
    expect(verifies(verify, formatSecret(Buffer.alloc(32, 9)), accepted.body, accepted.headers)).to.equal(false);

    // The first secret's overlap (1 h) is over (its end moved to the past rather than waited for): the others still verify.
    await service.db.pool.query(`update webhook_previous_secrets set expires_at = now() - interval '1 second' where secret = $1`, [first]);
    await service.postEvents(`[${eventText('sent', messageId, 'rot@example.com', 100)}]`);
    const sent = await delivered(hook, 'sent');
    expect(verifies(verify, first, sent.body, sent.headers)).to.equal(false);
    expect(verifies(verify, second, sent.body, sent.headers)).to.equal(true);
    expect(verifies(verify, third, sent.body, sent.headers)).to.equal(true);

    // A rotation with overlap 0 (a leaked secret): only the newest signs from now on.
    const fourth = await rotateSecret(0);
    await service.postEvents(`[${eventText('open', messageId, 'rot@example.com', 200)}]`);
    const opened = await delivered(hook, 'opened');
    expect(opened.headers['webhook-signature']!.split(' ')).to.have.length(1);
    expect(verifies(verify, fourth, opened.body, opened.headers)).to.equal(true);
    for (const secret of [first, second, third]) {
      expect(verifies(verify, secret, opened.body, opened.headers), secret).to.equal(false);
    }
  });

  it('when the secret is rotated many times within the overlap (hourly, kept 7 days), then the 10 newest previous secrets sign next to the current one, not every one', async () => {
    mockMailjetSend();
    const hook = await receiver(0);
    server = hook.server;
    service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' } });
    const secrets = [(await setWebhook(hook.url)).secret];
    // 168 rotations a week made a webhook-signature of 8 KB, past what an nginx in front of a receiver reads in a header line.
    for (let rotation = 0; rotation < 15; rotation += 1) {
      secrets.push(await rotateSecret(7 * 24 * 3600));
    }

    const shown = (await (await service.request('GET', `/admin/apps/${await appName()}/webhook`, { key: ADMIN_KEY })).json()) as {
      previous_secrets: Array<{ secret: string }>;
    };
    expect(shown.previous_secrets.map((previous) => previous.secret)).to.deep.equal(secrets.slice(-11, -1).reverse());
    await sentMessage('many@example.com');
    const accepted = await delivered(hook, 'accepted');
    expect(accepted.headers['webhook-signature']!.split(' ')).to.have.length(11);
    const verify = await readmeSnippet();
    expect(secrets.map((secret) => verifies(verify, secret, accepted.body, accepted.headers))).to.deep.equal([
      ...Array(5).fill(false),
      ...Array(11).fill(true),
    ]);
  });

  it('when the app subscribes to some event types, then only changes of those types are delivered; the feed still has every change', async () => {
    mockMailjetSend();
    const hook = await receiver(0);
    server = hook.server;
    service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' } });
    await setWebhook(hook.url, ['opened', 'bounced']);

    const { messageId } = await sentMessage('sub@example.com');
    await service.postEvents(`[${eventText('sent', messageId, 'sub@example.com', 100)},${eventText('open', messageId, 'sub@example.com', 200)}]`);
    await service.postEvents(`[${eventText('click', messageId, 'sub@example.com', 300)}]`);
    await delivered(hook, 'opened');
    const feed = await eventually(
      async () => {
        const page = (await (await service.request('GET', '/status?after=0')).json()) as { changes: Array<{ type: string }> };
        return page.changes.length === 4 ? page : undefined;
      },
      15_000,
      'four changes in the feed',
    );

    expect(feed.changes.map((change) => change.type)).to.deep.equal(['accepted', 'sent', 'opened', 'clicked']);
    // Deliveries are queued with their change, in the same transaction: these are all there will be.
    const { rows } = await service.db.pool.query<{ type: string }>(
      'select c.new_status as type from webhook_deliveries d join status_changes c on c.id = d.change_id',
    );
    expect(rows.map((row) => row.type)).to.deep.equal(['opened']);
    expect(hook.calls.map((call) => (JSON.parse(call.body) as { type: string }).type)).to.deep.equal(['opened']);
  });

  it('when a webhook URL fits in 2,000 characters as sent but not once percent-encoded (as it is stored and dialled), then 400 saying so, nothing stored', async () => {
    mockMailjetSend();
    const hook = await receiver(0);
    server = hook.server;
    service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' } });
    const name = await appName();
    const base = `${hook.url}/`;
    // 1,000 characters as sent: each é is %C3%A9 once encoded, 5,000 in all.
    const grows = `${base}${'é'.repeat(1_000 - base.length)}`;
    const fits = `${base}${'a'.repeat(2_000 - base.length)}`;

    const refused = await service.request('PUT', `/admin/apps/${name}/webhook`, { key: ADMIN_KEY, body: { url: grows } });
    expect(refused.status).to.equal(400);
    const problem = (await refused.json()) as { detail: string; errors: Array<{ path: string }> };
    expect(problem.detail).to.match(/^the webhook URL is \d+ characters once percent-encoded .*: at most 2000$/);
    expect(problem.errors.map((error) => error.path)).to.deep.equal(['url']);
    const { rows } = await service.db.pool.query<{ url: string | null }>('select webhook_url as url from apps where name = $1', [name]);
    expect(rows[0]?.url ?? null).to.equal(null);

    const set = await service.request('PUT', `/admin/apps/${name}/webhook`, { key: ADMIN_KEY, body: { url: fits } });
    expect(set.status).to.equal(200);
    expect(((await set.json()) as { url: string }).url).to.equal(fits);
  });

  it('when the webhook settings come as a body that is not sent as JSON (curl -d without a Content-Type, text/plain), then 415 saying to send JSON, not "is required: an object"; nothing stored', async () => {
    service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' } });
    const name = await appName();
    const settings = JSON.stringify({ url: 'http://127.0.0.1:9/hooks' });

    for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x']) {
      const res = await service.request('PUT', `/admin/apps/${name}/webhook`, { key: ADMIN_KEY, rawBody: settings, headers: { 'content-type': type } });
      expect(res.status, type).to.equal(415);
      const problem = (await res.json()) as { type: string; detail: string };
      expect(problem.type, type).to.equal('https://jetpost.dev/problems/unsupported-media-type');
      expect(problem.detail, type).to.contain('Content-Type: application/json');
    }
    // Another route that reads a body, and one whose body may be left out.
    const app = await service.request('POST', '/admin/apps', { key: ADMIN_KEY, rawBody: '{"name":"formed"}', headers: { 'content-type': 'text/plain' } });
    expect(app.status).to.equal(415);
    const keys = await service.request('POST', `/admin/apps/${name}/keys`, { key: ADMIN_KEY, rawBody: '', headers: { 'content-type': 'text/plain' } });
    expect(keys.status, 'an empty body of any type is no body').to.equal(201);

    const { rows } = await service.db.pool.query<{ url: string | null }>('select webhook_url as url from apps where name = $1', [name]);
    expect(rows[0]?.url ?? null).to.equal(null);
  });

  it('when a webhook URL holds a line break, a tab or another control character, then 400 names the url: the URL parser drops them without a word, so another URL than the one given would be stored', async () => {
    service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' } });
    const name = await appName();
    for (const url of ['http://127.0.0.1:9/ho\r\noks', 'http://127.0.0.1:9/ho\toks', 'http://127.0.0.1:9/hooks\u0000', 'http://127.0.0.1:9/ho\u2028oks']) {
      const res = await service.request('PUT', `/admin/apps/${name}/webhook`, { key: ADMIN_KEY, body: { url } });
      expect(res.status, JSON.stringify(url)).to.equal(400);
      const problem = (await res.json()) as { errors: Array<{ path: string; message: string }> };
      expect(problem.errors, JSON.stringify(url)).to.deep.include({ path: 'url', message: 'must not contain line breaks or control characters' });
    }
    const { rows } = await service.db.pool.query<{ url: string | null }>('select webhook_url as url from apps where name = $1', [name]);
    expect(rows[0]?.url ?? null).to.equal(null);
  });

  it("when a webhook URL has a fragment (#…), then 400 names the url: no HTTP client sends it, so the calls would go to another URL than the one given (an app's page, which may answer 2xx to every call)", async () => {
    service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' } });
    const name = await appName();
    for (const url of ['http://127.0.0.1:9/app#/webhooks/jetpost', 'http://127.0.0.1:9/hooks?x=1#token=abc', 'http://127.0.0.1:9/hooks#']) {
      const res = await service.request('PUT', `/admin/apps/${name}/webhook`, { key: ADMIN_KEY, body: { url } });
      expect(res.status, url).to.equal(400);
      const problem = (await res.json()) as { detail: string; errors: Array<{ path: string }> };
      expect(problem.detail, url).to.match(/^the webhook URL has a fragment \(from #\)/);
      expect(problem.errors.map((error) => error.path)).to.deep.equal(['url']);
    }
    const { rows } = await service.db.pool.query<{ url: string | null }>('select webhook_url as url from apps where name = $1', [name]);
    expect(rows[0]?.url ?? null).to.equal(null);
  });

  it('when a webhook URL points at an internal address that is not allowed, then it is refused, at registration and when dialled', async () => {
    mockMailjetSend();
    const hook = await receiver(0);
    server = hook.server;
    service = await startTestService();
    const name = await appName();

    const refused = await service.request('PUT', `/admin/apps/${name}/webhook`, { key: ADMIN_KEY, body: { url: hook.url } });
    const localhost = await service.request('PUT', `/admin/apps/${name}/webhook`, {
      key: ADMIN_KEY,
      body: { url: hook.url.replace('127.0.0.1', 'localhost') },
    });
    const credentials = await service.request('PUT', `/admin/apps/${name}/webhook`, { key: ADMIN_KEY, body: { url: 'https://u:p@example.com/x' } });

    expect(refused.status).to.equal(400);
    expect(((await refused.json()) as { detail: string }).detail).to.contain('WEBHOOK_ALLOWED_TARGETS');
    expect(localhost.status).to.equal(400);
    expect(credentials.status).to.equal(400);

    // A URL stored while allowed (here: written directly) is still refused when dialled.
    await service.db.pool.query(`update apps set webhook_url = $2, webhook_secret = 'whsec_x' where id = $1`, [service.appId, hook.url]);
    await service.request('POST', '/queue', { body: { from: 'app@example.com', to: 'b@example.com', text: 'hi' } });
    const delivery = await eventually(async () => {
      const { rows } = await service.db.pool.query(`select attempts, last_error from webhook_deliveries where last_error is not null`);
      return rows[0] as { attempts: number; last_error: string } | undefined;
    });
    expect(delivery.last_error).to.contain('refused to connect');
    expect(hook.calls).to.have.length(0);
  });

  it('when a webhook URL hides an internal address in an IPv6 transition form or a special range, then it is refused at registration', async () => {
    service = await startTestService();
    const name = await appName();
    const urls = [
      'http://[::127.0.0.1]/hooks',
      'http://[::7f00:1]/hooks',
      'http://[fec0::1]/hooks',
      'http://[64:ff9b:1::a9fe:a9fe]/hooks',
      'http://[2002:7f00:1::]/hooks',
      // Teredo whose client (XORed with 0xffffffff in the last 32 bits) is 127.0.0.1.
      'http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hooks',
      'http://[2001::1]/hooks',
      'http://[100::1]/hooks',
      'http://192.88.99.1/hooks',
    ];

    for (const url of urls) {
      const res = await service.request('PUT', `/admin/apps/${name}/webhook`, { key: ADMIN_KEY, body: { url } });
      expect(res.status, url).to.equal(400);
      expect(((await res.json()) as { detail: string }).detail, url).to.contain('WEBHOOK_ALLOWED_TARGETS');
    }
    const { rows } = await service.db.pool.query('select webhook_url from apps where id = $1', [service.appId]);
    expect(rows[0].webhook_url).to.equal(null);
  });

  it("when the receiver answers 429 with Retry-After, then none of the app's deliveries is attempted before it asks, and all arrive after", async () => {
    mockMailjetSend();
    const hook = await receiver((call) => (call === 0 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 204 }));
    server = hook.server;
    // One delivery of the app at a time, and a backoff far shorter than the Retry-After.
    service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1', WEBHOOK_CONCURRENCY_PER_APP: '1', WEBHOOK_RETRY_BASE_MS: '50' } });
    await setWebhook(hook.url);

    for (const to of ['t1@example.com', 't2@example.com', 't3@example.com']) {
      await service.request('POST', '/queue', { body: { from: 'app@example.com', to, text: 'hi' } });
    }
    const ok = await eventually(
      async () => {
        const answered = hook.calls.filter((call) => call.status === 204);
        return answered.length === 3 ? answered : undefined;
      },
      20_000,
      'the three accepted changes delivered',
    );

    const throttled = hook.calls[0]!;
    expect(throttled.status).to.equal(429);
    // The clock is read after the answer: any call at all before the 2 s is a call the receiver asked not to get.
    expect(ok.map((call) => call.answeredAt - throttled.answeredAt).every((waited) => waited >= 2_000 - 10)).to.equal(true);
    expect(ok.map((call) => call.deliveryId)).to.include(throttled.deliveryId);
    expect(hook.calls).to.have.length(4);
  });

  it('when the receiver answers 503 with Retry-After, then GET …/webhook, the CLI and the dashboard deliveries page show the pause running (until, why, how to end it) until a redelivery ends it', async () => {
    mockMailjetSend();
    const hook = await receiver((call) => (call === 0 ? { status: 503, headers: { 'retry-after': '600' } } : { status: 204 }));
    server = hook.server;
    service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1', WEBHOOK_RETRY_MAX_MS: '3600000' } });
    const set = await setWebhook(hook.url);
    expect(set).to.have.property('paused', null);
    const name = await appName();
    const show = async () =>
      (await (await service.request('GET', `/admin/apps/${name}/webhook`, { key: ADMIN_KEY })).json()) as {
        paused: { until: string; pauses_in_row: number; last_status_code: number | null; last_error: string | null; how_to_end: string } | null;
      };

    await service.request('POST', '/queue', { body: { from: 'app@example.com', to: 'paused@example.com', text: 'hi' } });
    const { paused } = await eventually(async () => {
      const webhook = await show();
      return webhook.paused === null ? undefined : webhook;
    });
    expect(paused!.pauses_in_row).to.equal(1);
    expect(paused!.last_status_code).to.equal(503);
    expect(paused!.last_error).to.be.a('string').and.not.equal('');
    expect(paused!.how_to_end).to.contain('redeliver');
    const left = Date.parse(paused!.until) - Date.now();
    expect(left).to.be.above(500_000).and.at.most(600_000);
    const cli = await runCli('admin', ['webhooks', 'show', name], { DATABASE_URL: service.db.url, WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' });
    expect(cli.stdout).to.match(/^PAUSED until \S+ \(pause 1 in a row\): last attempt 503, .*webhooks redeliver /m);
    const dashboard = await dashboardClient(service);
    const deliveriesPage = async () => (await dashboard.get(`/dashboard/apps/${name}/deliveries`)).text;
    const pausedOnPage =
      /<p class="problem" id="webhook-paused">Deliveries paused until <time datetime="([^"]+)">.*\(pause 1 in a row\): last attempt 503, .*redeliver/.exec(
        await deliveriesPage(),
      );
    expect(pausedOnPage?.[1]).to.equal(paused!.until);

    const listed = (await (await service.request('GET', `/admin/apps/${name}/webhook/deliveries`, { key: ADMIN_KEY })).json()) as {
      deliveries: Array<{ delivery_id: string }>;
    };
    const [delivery] = listed.deliveries;
    const redelivered = await service.request('POST', `/admin/apps/${name}/webhook/deliveries/${delivery!.delivery_id}/redeliver`, { key: ADMIN_KEY });
    expect(redelivered.status).to.equal(202);
    expect((await show()).paused).to.equal(null);
    expect(await deliveriesPage()).to.not.contain('id="webhook-paused"');
  });

  it('when the webhook URL is replaced while an attempt at the old one is in flight, then that answer (410 Gone) neither fails the delivery nor disables the new URL: the delivery goes to the new one', async () => {
    mockMailjetSend();
    const next = await receiver(() => ({ status: 204 }));
    server = next.server;
    // The old receiver holds its first call's answer until the URL has been replaced.
    const old = createServer();
    let answerOld: (status: number) => void = () => {};
    const reached = new Promise<void>((resolve) => {
      old.on('request', (req: IncomingMessage, res) => {
        req.resume();
        answerOld = (status) => res.writeHead(status).end();
        resolve();
      });
    });
    await new Promise<void>((resolve) => old.listen(0, '127.0.0.1', resolve));
    try {
      service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' } });
      await setWebhook(`http://127.0.0.1:${(old.address() as AddressInfo).port}/hooks`, ['accepted']);
      await sentMessage('moved@example.com');
      await reached;

      await setWebhook(next.url, ['accepted']);
      answerOld(410);

      await delivered(next, 'accepted');
      await eventually(async () => {
        const { rows } = await service.db.pool.query<{ status: string }>('select status from webhook_deliveries');
        return rows.length === 1 && rows[0]!.status === 'delivered' ? true : undefined;
      });
      const shown = (await (await service.request('GET', `/admin/apps/${await appName()}/webhook`, { key: ADMIN_KEY })).json()) as {
        url: string;
        disabled_at: string | null;
      };
      expect(shown).to.deep.include({ url: next.url, disabled_at: null });
    } finally {
      old.closeAllConnections();
      await new Promise((resolve) => old.close(resolve));
    }
  });

  it('when the receiver answers 410 Gone, then the webhook is disabled (shown, pending deliveries failed, none queued) until it is set again', async () => {
    mockMailjetSend();
    let gone = true;
    const hook = await receiver(() => ({ status: gone ? 410 : 204 }));
    server = hook.server;
    service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1', WEBHOOK_CONCURRENCY_PER_APP: '1' } });
    await setWebhook(hook.url);
    const name = await appName();

    await Promise.all(['g1@example.com', 'g2@example.com', 'g3@example.com'].map((to) => sentMessage(to)));
    const shown = await eventually(async () => {
      const webhook = (await (await service.request('GET', `/admin/apps/${name}/webhook`, { key: ADMIN_KEY })).json()) as {
        disabled_at: string | null;
        disabled_reason: string | null;
      };
      return webhook.disabled_at === null ? undefined : webhook;
    });
    await sentMessage('g4@example.com');
    await eventually(async () => {
      const { rows } = await service.db.pool.query("select count(*)::int as n from webhook_deliveries where status = 'pending'");
      return rows[0].n === 0 ? true : undefined;
    });

    expect(shown.disabled_reason).to.contain('410 Gone');
    expect(hook.calls).to.have.length(1);
    const { rows } = await service.db.pool.query<{ status: string; last_error: string }>('select status, last_error from webhook_deliveries');
    // The three accepted before the 410 failed with it (g4's change came after: it got none).
    expect(rows.length).to.be.within(1, 3);
    expect(rows.every((row) => row.status === 'failed' && row.last_error.includes('410 Gone'))).to.equal(true);
    const page = await (await dashboardClient(service)).get(`/dashboard/apps/${name}/deliveries`);
    expect(page.text).to.contain('id="webhook-disabled"');

    gone = false;
    const again = await setWebhook(hook.url);
    await sentMessage('g5@example.com');

    expect(again).to.deep.include({ disabled_at: null, disabled_reason: null });
    await delivered(hook, 'accepted');
  });

  it("when the webhook is disabled (410 Gone), then Mailjet's events change the status but queue no delivery", async () => {
    mockMailjetSend();
    const hook = await receiver(() => ({ status: 410 }));
    server = hook.server;
    service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' } });
    await setWebhook(hook.url);
    const { jobId, messageId } = await sentMessage('gone@example.com');
    await eventually(async () => {
      const { rows } = await service.db.pool.query('select 1 from apps where id = $1 and webhook_disabled_at is not null', [service.appId]);
      return rows.length === 1 ? true : undefined;
    });

    await service.postEvents(`[${eventText('sent', messageId, 'gone@example.com', 100)},${eventText('bounce', messageId, 'gone@example.com', 200)}]`);

    const { rows: changes } = await service.db.pool.query<{ new_status: string }>('select new_status from status_changes where job_id = $1 order by id', [
      jobId,
    ]);
    expect(changes.map((change) => change.new_status)).to.deep.equal(['accepted', 'sent', 'bounced']);
    const { rows: deliveries } = await service.db.pool.query<{ new_status: string }>(
      'select c.new_status from webhook_deliveries d join status_changes c on c.id = d.change_id order by d.id',
    );
    expect(deliveries.map((delivery) => delivery.new_status)).to.deep.equal(['accepted']);
    expect(hook.calls).to.have.length(1);
  });

  it('when a delivery is still pending after its webhook was disabled (past the pending ones failed at once), then it fails when claimed, without a call', async () => {
    mockMailjetSend();
    const hook = await receiver(() => ({ status: 500 }));
    server = hook.server;
    service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1', WEBHOOK_RETRY_BASE_MS: '1000' } });
    await setWebhook(hook.url);
    await sentMessage('late@example.com');
    await eventually(async () => {
      const { rows } = await service.db.pool.query("select 1 from webhook_deliveries where status = 'pending' and attempts = 1 and locked_until is null");
      return rows.length === 1 ? true : undefined;
    });

    await service.db.pool.query("update apps set webhook_disabled_at = now(), webhook_disabled_reason = 'the receiver answered 410 Gone' where id = $1", [
      service.appId,
    ]);
    const failed = await eventually(async () => {
      const { rows } = await service.db.pool.query<{ last_error: string }>("select last_error from webhook_deliveries where status = 'failed'");
      return rows[0];
    });

    expect(failed.last_error).to.equal("the app's webhook is disabled: the receiver answered 410 Gone");
    expect(hook.calls).to.have.length(1);
  });

  it('when a delivery failed for good, then an admin can redeliver it and it arrives', async () => {
    mockMailjetSend();
    const hook = await receiver(1);
    server = hook.server;
    // A retry window shorter than the first backoff: the first failure is final.
    service = await startTestService({ env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1', WEBHOOK_RETRY_BASE_MS: '1000', WEBHOOK_RETRY_WINDOW_MS: '500' } });
    await setWebhook(hook.url);
    await service.request('POST', '/queue', { body: { from: 'app@example.com', to: 'c@example.com', text: 'hi' } });
    const name = await appName();
    const failed = await eventually(async () => {
      const list = (await (await service.request('GET', `/admin/apps/${name}/webhook/deliveries?status=failed`, { key: ADMIN_KEY })).json()) as {
        deliveries: Array<{ delivery_id: string; last_error: string }>;
      };
      return list.deliveries[0];
    });
    expect(failed.last_error).to.contain('gave up after 1 attempts');

    const again = await service.request('POST', `/admin/apps/${name}/webhook/deliveries/${failed.delivery_id}/redeliver`, { key: ADMIN_KEY });

    expect(again.status).to.equal(202);
    await eventually(async () => (hook.calls.some((call) => call.status === 204) ? true : undefined));
  });
});
