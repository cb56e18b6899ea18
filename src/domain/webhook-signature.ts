// Webhook signatures as the Standard Webhooks specification has them (https://www.standardwebhooks.com),
// pure: an HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<raw body>", keyed with the bytes of the
// secret (`whsec_` + base64), sent as `v1,<base64>`. During a rotation's overlap a delivery carries
// one signature per valid secret, space-separated: receivers holding either secret accept it.
import { createHmac } from 'node:crypto';

export const SECRET_PREFIX = 'whsec_';

/** A secret in the specification's serialisation, from random bytes (24 to 64 of them). */
export function formatSecret(key: Buffer): string {
  return `${SECRET_PREFIX}${key.toString('base64')}`;
}

/** The HMAC key a secret stands for: the bytes its base64 text decodes to. */
function secretKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64');
}

/** One `v1,<base64>` signature. */
export function sign(secret: string, id: string, timestampSeconds: number, body: string): string {
  return `v1,${createHmac('sha256', secretKey(secret)).update(`${id}.${timestampSeconds}.${body}`).digest('base64')}`;
}

/** The three headers of one delivery attempt, signed with every secret given (the current one first). */
export function signatureHeaders(secrets: readonly string[], id: string, timestampSeconds: number, body: string): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': secrets.map((secret) => sign(secret, id, timestampSeconds, body)).join(' '),
  };
}
