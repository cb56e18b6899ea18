// A logged-in visitor of /dashboard over plain fetch: the session cookie the login set, and the
// CSRF token the pages carry.
import { expect } from 'chai';

import { ADMIN_KEY, type TestService } from './service.js';

export interface DashboardClient {
  cookie: string;
  /** The Set-Cookie header the login answered with. */
  setCookie: string;
  get(pathname: string): Promise<{ res: Response; text: string }>;
  /** A form POST (no redirect followed), with the session's CSRF token unless `csrf` says otherwise. */
  post(pathname: string, fields: Record<string, string>, options?: { csrf?: string | null; headers?: Record<string, string> }): Promise<Response>;
  csrf(): Promise<string>;
}

export function formBody(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

export async function logIn(service: TestService, key = ADMIN_KEY, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${service.url}/dashboard/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: service.url, ...headers },
    body: formBody({ key, next: '/dashboard' }),
  });
}

/** The value of a page's hidden CSRF field. */
export function csrfOf(page: string): string {
  const match = /name="csrf" value="([^"]+)"/.exec(page);
  expect(match, 'the page carries a CSRF token').to.not.equal(null);
  return match![1]!;
}

export async function dashboardClient(service: TestService, key = ADMIN_KEY): Promise<DashboardClient> {
  const login = await logIn(service, key);
  expect(login.status).to.equal(303);
  const setCookie = login.headers.get('set-cookie') ?? '';
  const cookie = setCookie.split(';')[0]!;
  const get = async (pathname: string) => {
    const res = await fetch(`${service.url}${pathname}`, { headers: { cookie }, redirect: 'manual' });
    return { res, text: await res.text() };
  };
  const csrf = async () => csrfOf((await get('/dashboard')).text);
  return {
    cookie,
    setCookie,
    get,
    csrf,
    async post(pathname, fields, options = {}) {
      const token = options.csrf === undefined ? await csrf() : options.csrf;
      return fetch(`${service.url}${pathname}`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, origin: service.url, ...options.headers },
        body: formBody(token === null ? fields : { ...fields, csrf: token }),
      });
    },
  };
}
