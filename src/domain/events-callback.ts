// Mailjet's event callback for this jetpost, pure: the URL it is registered at, and which of an
// account's existing registrations a run may overwrite.

/** `events` under the public base URL, the base's path kept (`https://host/jetpost/` → `https://host/jetpost/events`), with the basic credentials. */
export function eventsCallbackUrl(publicUrl: string | URL, credentials: { username: string; password: string }): URL {
  const base = new URL(publicUrl);
  // A base without a trailing slash still names a directory: `https://host/jetpost` is the same as `https://host/jetpost/`.
  if (!base.pathname.endsWith('/')) {
    base.pathname = `${base.pathname}/`;
  }
  const url = new URL('events', base);
  url.username = encodeURIComponent(credentials.username);
  url.password = encodeURIComponent(credentials.password);
  return url;
}

/** True when `registered` is the same endpoint as `ours` (scheme, host, port and path), whatever credentials either carries. */
export function sameEndpoint(registered: string, ours: URL): boolean {
  if (!URL.canParse(registered)) {
    return false;
  }
  const url = new URL(registered);
  return url.protocol === ours.protocol && url.host === ours.host && url.pathname === ours.pathname;
}

/** A row of Mailjet's /v3/REST/eventcallbackurl. */
export interface RegisteredCallback {
  id: number;
  eventType: string;
  url: string;
  isBackup: boolean;
}

export interface CallbackWrite {
  eventType: string;
  isBackup: boolean;
  url: URL;
  /** The registration it updates; null: a new one. */
  existingId: number | null;
}

export interface CallbackPlan {
  writes: CallbackWrite[];
  /** Registrations in the way that point somewhere else (another system's URL): overwritten only when forced. */
  foreign: RegisteredCallback[];
}

/**
 * What registering `primary` (and `backup`, when given) for each event type takes: Mailjet keeps one
 * URL per (event type, backup or not), so an existing one is updated. One that points at neither of
 * the URLs being registered was set by something else: it is listed in `foreign`, and overwriting it
 * is the caller's decision.
 */
export function planCallbacks(existing: readonly RegisteredCallback[], eventTypes: readonly string[], primary: URL, backup: URL | null): CallbackPlan {
  const ours = (row: RegisteredCallback) => sameEndpoint(row.url, primary) || (backup !== null && sameEndpoint(row.url, backup));
  const writes: CallbackWrite[] = [];
  const foreign: RegisteredCallback[] = [];
  for (const [isBackup, url] of backup === null
    ? ([[false, primary]] as const)
    : ([
        [false, primary],
        [true, backup],
      ] as const)) {
    for (const eventType of eventTypes) {
      const row = existing.find((candidate) => candidate.eventType === eventType && candidate.isBackup === isBackup);
      if (row && !ours(row)) {
        foreign.push(row);
      }
      writes.push({ eventType, isBackup, url, existingId: row?.id ?? null });
    }
  }
  return { writes, foreign };
}
