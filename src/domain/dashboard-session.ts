// The dashboard's session, pure: a token the browser keeps in a cookie, and the CSRF token bound to
// it. A token is its expiry and a random id, signed with a key derived from ADMIN_API_KEY, so it
// survives restarts, works on every replica, never holds the admin key itself, and every session
// ends when the admin key changes. The server stores only the ids of sessions a logout ended before
// their expiry (sql/40_…).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** How long a login lasts. */
export const SESSION_TTL_MS = 12 * 3600 * 1000;

const TOKEN_PATTERN = /^(\d{13})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

/** The key sessions are signed with: the admin key itself is never used as an HMAC key for anything else. */
export function sessionKey(adminKey: string): Buffer {
  return createHmac('sha256', adminKey).update('jetpost dashboard session v1').digest();
}

function mac(key: Buffer, purpose: string, text: string): string {
  return createHmac('sha256', key).update(`${purpose}\n${text}`).digest('base64url');
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export interface Session {
  token: string;
  /** The token's random part: what a logout records as ended. */
  id: string;
  expiresAt: Date;
}

/** A new session, valid until `now` + SESSION_TTL_MS. */
export function createSession(key: Buffer, now: Date, random: (bytes: number) => Buffer = randomBytes): Session {
  const expiresAt = new Date(now.getTime() + SESSION_TTL_MS);
  const id = random(16).toString('base64url');
  const body = `${String(expiresAt.getTime()).padStart(13, '0')}.${id}`;
  return { token: `${body}.${mac(key, 'session', body)}`, id, expiresAt };
}

/** The session a cookie's token stands for, or undefined when it is malformed, forged or expired. */
export function verifySession(key: Buffer, token: string, now: Date): Session | undefined {
  const match = TOKEN_PATTERN.exec(token);
  if (!match) {
    return undefined;
  }
  const body = `${match[1]}.${match[2]}`;
  const expiresAt = new Date(Number(match[1]));
  if (!sameText(mac(key, 'session', body), match[3]!) || expiresAt.getTime() <= now.getTime()) {
    return undefined;
  }
  return { token, id: match[2]!, expiresAt };
}

/** The CSRF token of a session: every form of the session carries it, and only its forms can. */
export function csrfToken(key: Buffer, session: Session): string {
  return mac(key, 'csrf', session.token);
}

export function csrfTokenMatches(key: Buffer, session: Session, given: string): boolean {
  return sameText(csrfToken(key, session), given);
}
