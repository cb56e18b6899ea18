import { expect } from 'chai';

import { deliveryOutcome } from '../../src/webhooks/dispatcher.js';
import { signPayload, verifySignature } from '../../src/webhooks/signature.js';
import { addressAllowed, parseTargetPolicy } from '../../src/webhooks/url-guard.js';

describe('webhook target policy', () => {
  const none = parseTargetPolicy('');

  it('when no allow-list is set, then loopback, private, link-local, CGNAT, unique-local and mapped addresses are refused and public ones allowed', () => {
    for (const address of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1']) {
      expect(addressAllowed(none, 'hooks.example.com', address), address).to.equal(false);
    }
    for (const address of ['93.184.216.34', '172.32.0.1', '2606:4700::1111', '::ffff:93.184.216.34']) {
      expect(addressAllowed(none, 'hooks.example.com', address), address).to.equal(true);
    }
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
});

describe('webhook signature', () => {
  it('when the body, the secret or the time is wrong, then verification fails; when all are right, it passes', () => {
    const header = signPayload('whsec_a', '{"id":"1"}', 1_900_000_000);

    expect(header).to.match(/^t=1900000000,v1=[0-9a-f]{64}$/);
    expect(verifySignature('whsec_a', '{"id":"1"}', header, 1_900_000_100)).to.equal(true);
    expect(verifySignature('whsec_a', '{"id":"2"}', header, 1_900_000_100)).to.equal(false);
    expect(verifySignature('whsec_b', '{"id":"1"}', header, 1_900_000_100)).to.equal(false);
    expect(verifySignature('whsec_a', '{"id":"1"}', header, 1_900_001_000)).to.equal(false);
    expect(verifySignature('whsec_a', '{"id":"1"}', 't=1900000000,v1=zz', 1_900_000_000)).to.equal(false);
  });
});

describe('webhook delivery outcome', () => {
  const retry = { baseMs: 10_000, factor: 2, maxMs: 3_600_000, jitter: 0 };
  const now = new Date('2030-01-01T12:00:00Z');
  const options = { retry, retryWindowMs: 24 * 3_600_000, now, random: () => 0.5 };

  it('when the receiver answers 2xx, then it is delivered; otherwise retried with a doubling delay', () => {
    const created = new Date(now.getTime() - 60_000);

    expect(deliveryOutcome({ attempts: 1, createdAt: created }, { statusCode: 204 }, options)).to.deep.equal({ kind: 'delivered', statusCode: 204 });
    const first = deliveryOutcome({ attempts: 1, createdAt: created }, { statusCode: 503 }, options);
    const third = deliveryOutcome({ attempts: 3, createdAt: created }, { error: 'ECONNREFUSED' }, options);
    expect(first).to.deep.equal({ kind: 'retry', nextAttemptAt: new Date(now.getTime() + 10_000), statusCode: 503, error: 'the receiver answered 503' });
    expect(third).to.deep.include({ kind: 'retry', nextAttemptAt: new Date(now.getTime() + 40_000), statusCode: null, error: 'ECONNREFUSED' });
  });

  it('when the next attempt would fall outside the retry window (24 h), then the delivery fails with the reason', () => {
    const created = new Date(now.getTime() - 24 * 3_600_000 + 1_000);

    const outcome = deliveryOutcome({ attempts: 20, createdAt: created }, { statusCode: 500 }, options);

    expect(outcome).to.deep.equal({ kind: 'failed', statusCode: 500, error: 'gave up after 20 attempts: the receiver answered 500' });
  });
});
