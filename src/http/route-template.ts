// The route a request matched, as its pattern: what log lines and metric labels name a request by.
import type { Request } from 'express';

/**
 * The template of the route that answered (`/status/:jobId`), or undefined when none did: a log line
 * or a metric label must never be the raw path, which anyone can vary without end (and which may
 * hold an email address).
 */
export function routeTemplate(req: Request): string | undefined {
  // express types req.route as any: it is the matched Route, whose path is a string (or a RegExp).
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? `${req.baseUrl}${path}` : undefined;
}
