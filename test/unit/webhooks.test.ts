import { expect } from 'chai';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';

import { addressAllowed, parseTargetPolicy } from '../../src/domain/target-policy.js';
import { type AttemptResult, deliveryOutcome } from '../../src/domain/webhook-delivery.js';
import { formatSecret, sign, signatureHeaders } from '../../src/domain/webhook-signature.js';

describe('webhook target policy', () => {
  const none = parseTargetPolicy('');

  it('when no allow-list is set, then loopback, private, link-local, CGNAT, unique-local and mapped addresses are refused and public ones allowed', () => {
    for (const address of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      'fd00::1',
      'fe80::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
    ]) {
      expect(addressAllowed(none, 'hooks.example.com', address), address).to.equal(false);
    }
    for (const address of ['93.184.216.34', '172.32.0.1', '2606:4700::1111', '::ffff:93.184.216.34']) {
      expect(addressAllowed(none, 'hooks.example.com', address), address).to.equal(true);
    }
  });

  // Teredo (2001::/32) carries its server's IPv4 in bits 32–63 and its client's, XORed with 0xffffffff, in the last 32 bits.
  const teredo = (server: string, client: string) => {
    const hex = (ip: string, mask: number) => (ip.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0) ^ mask) >>> 0;
    const words = (value: number) => `${(value >>> 16).toString(16)}:${(value & 0xffff).toString(16)}`;
    return `2001:0:${words(hex(server, 0))}:8000:63bf:${words(hex(client, 0xffffffff))}`;
  };

  it('when an IPv6 transition form carries an internal IPv4 address, or the address is in a special IPv6 range, then it is refused', () => {
    const refused = {
      'IPv4-compatible ::127.0.0.1': '::127.0.0.1',
      'IPv4-compatible ::7f00:1': '::7f00:1',
      'IPv4-compatible ::10.0.0.1': '::a00:1',
      'IPv4-translated ::ffff:0:127.0.0.1': '::ffff:0:7f00:1',
      'mapped, hex form ::ffff:7f00:1': '::ffff:7f00:1',
      'site-local fec0::1': 'fec0::1',
      'NAT64 well-known around 169.254.169.254': '64:ff9b::a9fe:a9fe',
      'NAT64 well-known around 10.0.0.1': '64:ff9b::10.0.0.1',
      'NAT64 local-use 64:ff9b:1::a9fe:a9fe': '64:ff9b:1::a9fe:a9fe',
      'NAT64 local-use around a public address': '64:ff9b:1::5db8:d822',
      '6to4 around 127.0.0.1': '2002:7f00:1::',
      '6to4 around 192.168.1.1': '2002:c0a8:101::1',
      'Teredo, client 127.0.0.1': teredo('65.54.227.120', '127.0.0.1'),
      'Teredo, client 10.1.2.3': teredo('65.54.227.120', '10.1.2.3'),
      'Teredo, server 10.0.0.1': teredo('10.0.0.1', '93.184.216.34'),
      'Teredo 2001::1': '2001::1',
      'discard-only 100::1': '100::1',
      'documentation 2001:db8::1': '2001:db8::1',
      'outside global unicast 4000::1': '4000::1',
      '6to4 relay anycast 192.88.99.1': '192.88.99.1',
      'benchmarking 198.18.0.1': '198.18.0.1',
      'reserved 240.0.0.1': '240.0.0.1',
      broadcast: '255.255.255.255',
      'multicast 224.0.0.1': '224.0.0.1',
      'TEST-NET 192.0.2.1': '192.0.2.1',
      'not an address': 'example.com',
    };
    for (const [what, address] of Object.entries(refused)) {
      expect(addressAllowed(none, 'hooks.example.com', address), what).to.equal(false);
    }
  });

  it('when an IPv6 transition form carries a public IPv4 address, then it is judged as that address and allowed', () => {
    const allowed = {
      'NAT64 well-known around 93.184.216.34': '64:ff9b::5db8:d822',
      '6to4 around 93.184.216.34': '2002:5db8:d822::1',
      'Teredo, public server and client': teredo('65.54.227.120', '93.184.216.34'),
      'IPv4-compatible ::93.184.216.34': '::5db8:d822',
    };
    for (const [what, address] of Object.entries(allowed)) {
      expect(addressAllowed(none, 'hooks.example.com', address), what).to.equal(true);
    }
  });

  it('when an internal address or the IPv4 address inside a transition form is allow-listed, then it is allowed', () => {
    const policy = parseTargetPolicy('127.0.0.0/8, fec0::/10, 64:ff9b:1::/48');

    for (const address of ['::127.0.0.1', '::ffff:127.0.0.1', '2002:7f00:1::', teredo('65.54.227.120', '127.0.0.1'), 'fec0::1', '64:ff9b:1::a9fe:a9fe']) {
      expect(addressAllowed(policy, 'hooks.example.com', address), address).to.equal(true);
    }
    expect(addressAllowed(policy, 'hooks.example.com', '2002:a00:1::'), '6to4 around 10.0.0.1').to.equal(false);
  });

  it('when WEBHOOK_ALLOWED_TARGETS lists a host, an address or a block, then only those internal targets are allowed', () => {
    const policy = parseTargetPolicy('billing.internal, 10.20.0.0/16, 192.168.1.5 ,fd12::/16');

    expect(addressAllowed(policy, 'billing.internal', '10.99.0.1')).to.equal(true);
    expect(addressAllowed(policy, 'BILLING.internal', '127.0.0.1')).to.equal(true);
    expect(addressAllowed(policy, 'other.internal', '10.20.3.4')).to.equal(true);
    expect(addressAllowed(policy, 'other.internal', '10.21.3.4')).to.equal(false);
    expect(addressAllowed(policy, 'other.internal', '192.168.1.5')).to.equal(true);
    expect(addressAllowed(policy, 'other.internal', '192.168.1.6')).to.equal(false);
    expect(addressAllowed(policy, 'other.internal', 'fd12::9')).to.equal(true);
  });

  it('when a webhook URL names an allowed host as a fully qualified name (a trailing dot, as in billing.default.svc.cluster.local.), then it is that host: allowed', () => {
    const policy = parseTargetPolicy('billing.internal');

    expect(addressAllowed(policy, 'billing.internal.', '10.99.0.1')).to.equal(true);
    expect(addressAllowed(policy, 'Billing.Internal.', '10.99.0.1')).to.equal(true);
    expect(addressAllowed(policy, 'billing.internal..', '10.99.0.1')).to.equal(false);
    expect(addressAllowed(policy, 'other.billing.internal.', '10.99.0.1')).to.equal(false);
  });
});

describe('webhook signature (Standard Webhooks)', () => {
  // Signed now: the library refuses a timestamp more than 5 minutes away from its clock.
  const nowSeconds = () => Math.floor(Date.now() / 1000);
  const headersOf = (secrets: string[], id = '42', body = '{"id":"1"}', at = nowSeconds()) => signatureHeaders(secrets, id, at, body);

  it("when signed, then the specification's own test vector comes out", () => {
    // The sign test of the specification's reference libraries (libraries/python/tests/test_webhooks.py).
    expect(sign('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}')).to.equal(
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    );
  });

  it('when a receiver verifies with the standardwebhooks package, then the right secret passes and a wrong secret, body, id or old timestamp fails', () => {
    const secret = formatSecret(Buffer.alloc(32, 7));
    const other = formatSecret(Buffer.alloc(32, 8));
    const headers = headersOf([secret]);

    expect(new Webhook(secret).verify('{"id":"1"}', headers)).to.deep.equal({ id: '1' });
    expect(() => new Webhook(other).verify('{"id":"1"}', headers)).to.throw(WebhookVerificationError);
    expect(() => new Webhook(secret).verify('{"id":"2"}', headers)).to.throw(WebhookVerificationError);
    expect(() => new Webhook(secret).verify('{"id":"1"}', { ...headers, 'webhook-id': '43' })).to.throw(WebhookVerificationError);
    expect(() => new Webhook(secret).verify('{"id":"1"}', headersOf([secret], '42', '{"id":"1"}', nowSeconds() - 3600))).to.throw(WebhookVerificationError);
  });

  it("when signed with two secrets (a rotation's overlap), then the header holds two signatures and either secret verifies", () => {
    const current = formatSecret(Buffer.alloc(32, 1));
    const previous = formatSecret(Buffer.alloc(32, 2));
    const headers = headersOf([current, previous]);

    expect(headers['webhook-signature']!.split(' ')).to.have.length(2);
    expect(new Webhook(current).verify('{"id":"1"}', headers)).to.deep.equal({ id: '1' });
    expect(new Webhook(previous).verify('{"id":"1"}', headers)).to.deep.equal({ id: '1' });
    expect(() => new Webhook(formatSecret(Buffer.alloc(32, 3))).verify('{"id":"1"}', headers)).to.throw(WebhookVerificationError);
  });

  it('when a secret is made, then it is whsec_ and standard base64 of the bytes (what every library decodes)', () => {
    expect(formatSecret(Buffer.from([0xfb, 0xff, 0xfe]))).to.equal('whsec_+//+');
  });
});

describe('webhook delivery outcome', () => {
  const retry = { baseMs: 10_000, factor: 2, maxMs: 3_600_000, jitter: 0 };
  const now = new Date('2030-01-01T12:00:00Z');
  const options = { retry, retryWindowMs: 24 * 3_600_000, now, random: () => 0.5 };

  it('when the receiver answers 2xx, then it is delivered; otherwise retried with a doubling delay', () => {
    const created = new Date(now.getTime() - 60_000);

    expect(deliveryOutcome({ attempts: 1, pauses: 0, createdAt: created }, { statusCode: 204 }, options)).to.deep.equal({ kind: 'delivered', statusCode: 204 });
    const first = deliveryOutcome({ attempts: 1, pauses: 0, createdAt: created }, { statusCode: 500 }, options);
    const third = deliveryOutcome({ attempts: 3, pauses: 0, createdAt: created }, { error: 'ECONNREFUSED' }, options);
    expect(first).to.deep.equal({ kind: 'retry', nextAttemptAt: new Date(now.getTime() + 10_000), statusCode: 500, error: 'the receiver answered 500' });
    expect(third).to.deep.include({ kind: 'retry', nextAttemptAt: new Date(now.getTime() + 40_000), statusCode: null, error: 'ECONNREFUSED' });
  });

  it('when the next attempt would fall outside the retry window (24 h), then the delivery fails with the reason', () => {
    const created = new Date(now.getTime() - 24 * 3_600_000 + 1_000);

    const outcome = deliveryOutcome({ attempts: 20, pauses: 0, createdAt: created }, { statusCode: 500 }, options);

    expect(outcome).to.deep.equal({ kind: 'failed', statusCode: 500, error: 'gave up after 20 attempts: the receiver answered 500' });
  });

  it('when the answer carries a Retry-After (seconds or a date), then the retry is no sooner than it asks, nor sooner than the backoff', () => {
    const created = new Date(now.getTime() - 60_000);
    const at = (result: { statusCode: number; retryAfter?: string }) => {
      const outcome = deliveryOutcome({ attempts: 1, pauses: 0, createdAt: created }, result, options);
      return outcome.kind === 'retry' ? outcome.nextAttemptAt.getTime() - now.getTime() : outcome.kind;
    };

    expect(at({ statusCode: 500, retryAfter: '120' })).to.equal(120_000);
    expect(at({ statusCode: 503, retryAfter: 'Tue, 01 Jan 2030 12:05:00 GMT' })).to.equal(300_000);
    expect(at({ statusCode: 500, retryAfter: '1' })).to.equal(10_000);
    expect(at({ statusCode: 500, retryAfter: 'soon' })).to.equal(10_000);
    expect(at({ statusCode: 500, retryAfter: '-5' })).to.equal(10_000);
  });

  it('when a Retry-After asks for a wait beyond the longest backoff (1 h), however large, then the retry and the throttle wait 1 h: the delivery is not failed at once', () => {
    const created = new Date(now.getTime() - 60_000);

    for (const retryAfter of ['86400', String(10 * 365 * 86400), '9'.repeat(30), 'Fri, 31 Dec 9999 23:59:59 GMT']) {
      const outcome = deliveryOutcome({ attempts: 1, pauses: 0, createdAt: created }, { statusCode: 429, retryAfter }, options);
      expect(outcome, retryAfter).to.deep.equal({
        kind: 'retry',
        nextAttemptAt: new Date(now.getTime() + 3_600_000),
        throttledUntil: new Date(now.getTime() + 3_600_000),
        statusCode: 429,
        error: 'the receiver answered 429',
      });
    }
    // Near the end of the window, the wait it asks for ends the delivery, as any retry past the window
    // does; the app still waits what its receiver asked for.
    const late = deliveryOutcome(
      { attempts: 9, pauses: 0, createdAt: new Date(now.getTime() - 23.5 * 3_600_000) },
      { statusCode: 503, retryAfter: '86400' },
      options,
    );
    expect(late).to.deep.equal({
      kind: 'failed',
      statusCode: 503,
      error: 'gave up after 9 attempts: the receiver answered 503',
      throttledUntil: new Date(now.getTime() + 3_600_000),
    });
  });

  it('when the receiver answers 429, 502, 503 or 504, or gives no answer at all, then the retry pauses the whole app; other answers only their own delivery', () => {
    const created = new Date(now.getTime() - 60_000);
    const pauses = (result: { statusCode: number } | { error: string }) => {
      const outcome = deliveryOutcome({ attempts: 1, pauses: 0, createdAt: created }, result, options);
      return outcome.kind === 'retry' && outcome.throttledUntil !== undefined;
    };

    expect([429, 502, 503, 504].map((statusCode) => pauses({ statusCode }))).to.deep.equal([true, true, true, true]);
    expect([500, 404, 400, 301, 408].map((statusCode) => pauses({ statusCode }))).to.deep.equal([false, false, false, false, false]);
    for (const error of [
      'connect ECONNREFUSED 203.0.113.7:443',
      'getaddrinfo ENOTFOUND hooks.example.com',
      'no complete answer within 10000 ms',
      'the receiver closed the connection before it answered (socket hang up)',
    ]) {
      expect(pauses({ error }), error).to.equal(true);
    }
  });

  it("when a delivery deep in its backoff gets no answer, then only it waits its backoff (1 h): the app waits a first retry's pause (10 s)", () => {
    const outcome = deliveryOutcome(
      { attempts: 12, pauses: 0, createdAt: new Date(now.getTime() - 6 * 3_600_000) },
      { error: 'connect ECONNREFUSED 203.0.113.7:443' },
      options,
    );

    expect(outcome).to.deep.equal({
      kind: 'retry',
      nextAttemptAt: new Date(now.getTime() + 3_600_000),
      throttledUntil: new Date(now.getTime() + 10_000),
      statusCode: null,
      error: 'connect ECONNREFUSED 203.0.113.7:443',
    });
  });

  it("when a delivery deep in its backoff gets a 503 without Retry-After, then only it waits its backoff (1 h): the app waits a first retry's pause (10 s)", () => {
    const created = new Date(now.getTime() - 6 * 3_600_000);

    const outcome = deliveryOutcome({ attempts: 12, pauses: 0, createdAt: created }, { statusCode: 503 }, options);

    expect(outcome).to.deep.equal({
      kind: 'retry',
      nextAttemptAt: new Date(now.getTime() + 3_600_000),
      throttledUntil: new Date(now.getTime() + 10_000),
      statusCode: 503,
      error: 'the receiver answered 503',
    });
    // A Retry-After is honoured for the app as for the delivery, and never shortens the pause.
    const asked = deliveryOutcome({ attempts: 12, pauses: 0, createdAt: created }, { statusCode: 429, retryAfter: '120' }, options);
    expect(asked.kind === 'retry' && asked.throttledUntil).to.deep.equal(new Date(now.getTime() + 120_000));
    const zero = deliveryOutcome({ attempts: 12, pauses: 0, createdAt: created }, { statusCode: 503, retryAfter: '0' }, options);
    expect(zero.kind === 'retry' && zero.throttledUntil).to.deep.equal(new Date(now.getTime() + 10_000));
  });

  it("when an app has had pauses in a row, then the next pause is twice the last, up to the backoff's longest wait, and a longer Retry-After still wins", () => {
    const created = new Date(now.getTime() - 60_000);
    const pauseAfter = (pauses: number, result: AttemptResult) => {
      const outcome = deliveryOutcome({ attempts: 3, pauses, createdAt: created }, result, options);
      return outcome.kind === 'delivered' || outcome.throttledUntil === undefined ? undefined : outcome.throttledUntil.getTime() - now.getTime();
    };

    expect([0, 1, 2, 3, 9, 1_000_000].map((pauses) => pauseAfter(pauses, { error: 'connect ECONNREFUSED 127.0.0.1:9' }))).to.deep.equal([
      10_000, 20_000, 40_000, 80_000, 3_600_000, 3_600_000,
    ]);
    expect(pauseAfter(2, { statusCode: 503 })).to.equal(40_000);
    expect(pauseAfter(0, { statusCode: 429, retryAfter: '120' })).to.equal(120_000);
    expect(pauseAfter(5, { statusCode: 429, retryAfter: '120' })).to.equal(320_000);
    // An answer that speaks for the delivery only pauses nothing, however many pauses came before.
    expect(pauseAfter(4, { statusCode: 500 })).to.equal(undefined);
  });

  it('when the receiver answers 410 Gone, then the delivery fails at once and disables the webhook, whatever attempt it was', () => {
    const outcome = deliveryOutcome({ attempts: 1, pauses: 0, createdAt: now }, { statusCode: 410, retryAfter: '60' }, options);

    expect(outcome).to.deep.equal({
      kind: 'failed',
      statusCode: 410,
      error: 'the receiver answered 410 Gone: the webhook is disabled until it is set again',
      disablesWebhook: true,
    });
  });
});
