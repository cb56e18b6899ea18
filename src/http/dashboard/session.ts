// The dashboard's login session, as express sees it: the cookie (HttpOnly, SameSite=Strict, Secure
// when the request came over HTTPS, as `trust proxy` reads it), the check that a page's visitor is
// logged in (and not logged out, on any replica), and the checks every POST passes (same origin,
// the session's CSRF token).
import type { Request, RequestHandler, Response } from 'express';

import { createSession, csrfToken, csrfTokenMatches, type Session, sessionKey, verifySession } from '../../domain/dashboard-session.js';
import { AppError } from '../../domain/errors.js';
import { adminKeyMatcher } from '../auth.js';

export const SESSION_COOKIE = 'jetpost_dashboard';
/** The cookie goes only with the dashboard's own requests. */
export const DASHBOARD_PATH = '/dashboard';
export const LOGIN_PATH = `${DASHBOARD_PATH}/login`;
/** The form field every POST carries. */
export const CSRF_FIELD = 'csrf';

export interface DashboardVisitor {
  session: Session;
  csrf: string;
  /** The key the session is signed with: that of the admin key it was opened with. */
  key: Buffer;
}

/** The logged-in visitor of a page (set by `requireSession`). */
export function dashboardVisitor(res: Response): DashboardVisitor {
  return res.locals['dashboardVisitor'] as DashboardVisitor;
}

/**
 * Every value of the cookie `name`, in the order sent. A browser sends two of one name when two
 * cookies match the page: another path's, or one set for the parent domain by a sibling site (which
 * it sends first, being older). Taking only the first, such a stale or planted cookie would log the
 * visitor out for good, however often they logged in.
 */
function cookieValues(req: Request, name: string): string[] {
  return (req.get('cookie') ?? '').split(';').flatMap((part) => {
    const separator = part.indexOf('=');
    return separator > 0 && part.slice(0, separator).trim() === name ? [part.slice(separator + 1).trim()] : [];
  });
}

/** Where a login may send the visitor back to: a dashboard page of this origin, nothing else. */
export function safeReturnPath(path: unknown): string {
  if (typeof path !== 'string' || !/^\/dashboard(?:[/?][^\\\s]*)?$/.test(path)) {
    return DASHBOARD_PATH;
  }
  // Resolved as the browser will resolve it: dot segments (`..`, `%2e%2e`) must not lead out of /dashboard.
  const { pathname } = new URL(path, 'http://jetpost.invalid');
  return pathname === DASHBOARD_PATH || pathname.startsWith(`${DASHBOARD_PATH}/`) ? path : DASHBOARD_PATH;
}

/**
 * A session is signed with a key derived from the admin key it was opened with, so it lasts while
 * that key is taken: through a rotation while it is ADMIN_API_KEY_PREVIOUS, not after.
 */
export class DashboardSessions {
  private readonly keys: readonly Buffer[];
  private readonly whichAdminKey: (given: string) => number;

  constructor(
    /** ADMIN_API_KEY, then ADMIN_API_KEY_PREVIOUS during a rotation; none: the dashboard is off. */
    adminKeys: readonly string[],
    private readonly now: () => Date,
    /** Whether a logout ended the session (on any replica): asked on every request with a valid token. */
    private readonly isEnded: (sessionId: string) => Promise<boolean>,
  ) {
    this.keys = adminKeys.map(sessionKey);
    this.whichAdminKey = adminKeyMatcher(adminKeys);
  }

  /** False when ADMIN_API_KEY is not set: nobody can log in. */
  get enabled(): boolean {
    return this.keys.length > 0;
  }

  /** A new session for a login with `given`, or undefined when it is none of the admin keys. */
  open(given: string): Session | undefined {
    const index = this.whichAdminKey(given);
    return index === -1 ? undefined : createSession(this.keys[index]!, this.now());
  }

  /** The visitor a request's cookies stand for: the first that holds a valid session that no logout ended. */
  async visitor(req: Request): Promise<DashboardVisitor | undefined> {
    for (const token of cookieValues(req, SESSION_COOKIE)) {
      for (const key of this.keys) {
        const session = verifySession(key, token, this.now());
        // Only a token with a valid signature costs a look-up: a forged one is refused without one.
        if (session && !(await this.isEnded(session.id))) {
          return { session, csrf: csrfToken(key, session), key };
        }
      }
    }
    return undefined;
  }

  start(req: Request, res: Response, session: Session): void {
    res.cookie(SESSION_COOKIE, session.token, {
      httpOnly: true,
      sameSite: 'strict',
      secure: req.secure,
      path: DASHBOARD_PATH,
      expires: session.expiresAt,
    });
  }

  end(req: Request, res: Response): void {
    res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', secure: req.secure, path: DASHBOARD_PATH });
  }

  /** Pages need a session: without one, the visitor is sent to the login form (and back afterwards). */
  readonly requireSession: RequestHandler = async (req, res, next) => {
    const visitor = await this.visitor(req);
    if (!visitor) {
      const back = req.method === 'GET' ? `?next=${encodeURIComponent(req.originalUrl)}` : '';
      res.redirect(303, `${LOGIN_PATH}${back}`);
      return;
    }
    res.locals['dashboardVisitor'] = visitor;
    next();
  };

  /** A POST of a logged-in visitor: from this origin, with the session's CSRF token. */
  readonly checkForm: RequestHandler = (req, res, next) => {
    const given: unknown = (req.body as Record<string, unknown> | undefined)?.[CSRF_FIELD];
    const visitor = dashboardVisitor(res);
    if (typeof given !== 'string' || !csrfTokenMatches(visitor.key, visitor.session, given)) {
      next(
        new AppError(
          'csrf-token',
          403,
          'this form is stale or did not come from the dashboard (its CSRF token is missing or wrong): reload the page and try again',
        ),
      );
      return;
    }
    next();
  };
}

/**
 * Every POST comes from a page of this origin: the browser says so in Origin (and Sec-Fetch-Site).
 * A request without them (not a browser) still needs the session cookie and the CSRF token.
 */
export const requireSameOrigin: RequestHandler = (req, _res, next) => {
  const origin = req.get('origin');
  const site = req.get('sec-fetch-site');
  // req.host follows X-Forwarded-Host when TRUST_PROXY trusts the proxy, as req.protocol follows X-Forwarded-Proto.
  const ownOrigin = `${req.protocol}://${req.host}`;
  if ((origin !== undefined && origin !== ownOrigin) || (site !== undefined && site !== 'same-origin' && site !== 'none')) {
    // A TLS-terminating proxy that jetpost does not trust looks like another site (https: against http:): say so.
    next(
      new AppError(
        'cross-origin',
        403,
        `a form of another site (${origin ?? site ?? '?'}) cannot act on the dashboard: this page's origin is ${ownOrigin}; behind a proxy, set TRUST_PROXY so that jetpost sees the scheme and host the browser used`,
      ),
    );
    return;
  }
  next();
};
