// The express application, built from its dependencies and never listening by itself (main.ts and
// the tests do that), so that tests can run it on port 0.
import express, { type Express } from 'express';
import helmet from 'helmet';

import type { AppIdentity } from '../domain/app.js';
import type { Logger } from '../log.js';
import type { AdminService } from '../services/admin.js';
import type { DashboardService } from '../services/dashboard.js';
import type { JobService } from '../services/jobs.js';
import type { RateLimitCounters } from '../services/rate-limits.js';
import { type Authenticate, type BasicCredentials, callingApp, requireAdminKey, requireApiKey, requireBasicAuth } from './auth.js';
import { errorHandler, notFoundHandler } from './problem.js';
import { limitFailedCallbackAuth, limitRequests, postgresStore } from './rate-limit.js';
import { adminRouter } from './routes/admin.js';
import { dashboardRouter } from './routes/dashboard.js';
import { docsRouter } from './routes/docs.js';
import { type EventsRouteDeps, eventsRouter } from './routes/events.js';
import { type OpsRouteDeps, opsRouter } from './routes/ops.js';
import { queueRouter } from './routes/queue.js';
import { statusRouter } from './routes/status.js';
import { createQueueRequestParser } from './schemas.js';

/** What the HTTP API serves: services and a few functions, never the pool. */
export interface AppDeps extends OpsRouteDeps {
  jobs: JobService;
  admin: AdminService;
  /** The reads of the operator's dashboard (/dashboard); its actions go through `admin`. */
  dashboard: DashboardService;
  /** The per-app and per-caller request counters, shared by every replica. */
  rateLimits: RateLimitCounters;
  adminKey: string | undefined;
  authenticate: Authenticate;
  receiveEvents: EventsRouteDeps['receive'];
  eventsCredentials: BasicCredentials | undefined;
  limits: { queueBody: string; eventsBody: string; queuePerMinute: number; eventsPerMinute: number };
  trustProxy: boolean | number | string;
  log: Logger;
  /** The level of the one line per request: `info` in dev mode, where a person watches, else `http`. */
  requestLogLevel: 'info' | 'http';
  /** The clock of the checks that depend on it (a send_at window). */
  now: () => Date;
}

interface RouterLayer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: RouterLayer[] };
}

/** Every (method, path) the app serves, read from its routers: the contract test compares it to openapi.yaml. */
export function routeTable(app: Express): Array<{ method: string; path: string }> {
  const walk = (stack: RouterLayer[]): Array<{ method: string; path: string }> =>
    stack.flatMap((layer) =>
      layer.route
        ? Object.keys(layer.route.methods).map((method) => ({ method, path: layer.route!.path }))
        : layer.handle?.stack
          ? walk(layer.handle.stack)
          : [],
    );
  return walk((app as unknown as { router: { stack: RouterLayer[] } }).router.stack);
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.trustProxy);
  app.set('query parser', 'simple');
  app.use(helmet());
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      // The route's pattern, not the path: a path can hold an email address (suppressions). Never
      // headers or bodies: they hold keys and messages.
      const route = req.route ? `${req.baseUrl}${(req.route as { path: string }).path}` : '-';
      const caller = res.locals['app'] as AppIdentity | undefined;
      deps.log.log(deps.requestLogLevel, `${req.method} ${route} ${res.statusCode}`, {
        component: 'http',
        method: req.method,
        route,
        status: res.statusCode,
        ms: Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100,
        ...(caller === undefined ? {} : { app: caller.name }),
      });
    });
    next();
  });

  const requireApp = requireApiKey(deps.authenticate);
  const limitPerApp = limitRequests({
    perMinute: deps.limits.queuePerMinute,
    store: postgresStore(deps.rateLimits, 'queue-app'),
    keyOf: (_req, res) => callingApp(res).id,
    what: 'from this app',
    log: deps.log,
  });
  // The callback's budget is spent only with its credentials; failed attempts are limited apart.
  const limitCallback = limitRequests({
    perMinute: deps.limits.eventsPerMinute,
    store: postgresStore(deps.rateLimits, 'events-caller'),
    keyOf: () => 'mailjet',
    what: 'with the callback credentials',
    log: deps.log,
  });
  app.use(opsRouter(deps));
  app.use(docsRouter());
  app.use(
    eventsRouter({
      receive: deps.receiveEvents,
      requireCallbackAuth: requireBasicAuth(deps.eventsCredentials, 'jetpost events', limitFailedCallbackAuth(deps.log)),
      limit: limitCallback,
      bodyLimit: deps.limits.eventsBody,
    }),
  );
  app.use(queueRouter({ jobs: deps.jobs, parseQueueRequest: createQueueRequestParser(deps.now), requireApp, limit: limitPerApp, bodyLimit: deps.limits.queueBody }));
  app.use(statusRouter(deps.jobs, requireApp));
  app.use(adminRouter({ admin: deps.admin, requireAdmin: requireAdminKey(deps.adminKey) }));
  app.use(dashboardRouter({ dashboard: deps.dashboard, admin: deps.admin, adminKey: deps.adminKey, log: deps.log, now: deps.now }));
  app.use(notFoundHandler);
  app.use(errorHandler(deps.log));
  return app;
}
