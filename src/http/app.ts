// The express application, built from its dependencies and never listening by itself (main.ts and
// the tests do that), so that tests can run it on port 0.
import type { RequestListener } from 'node:http';

import express, { type Express } from 'express';
import helmet from 'helmet';

import type { AppIdentity } from '../domain/app.js';
import type { ByteBudget } from '../domain/byte-budget.js';
import { AppError } from '../domain/errors.js';
import type { Logger } from '../log.js';
import type { AdminService } from '../services/admin.js';
import type { DashboardService } from '../services/dashboard.js';
import type { JobService } from '../services/jobs.js';
import type { RateLimitCounters } from '../services/rate-limits.js';
import { type Authenticate, type BasicCredentials, callingApp, requireAdminKey, requireApiKey, requireBasicAuth } from './auth.js';
import { bodyBudget, type BodyBudgetOptions } from './body-budget.js';
import type { BodyPace } from './body-pace.js';
import { bodyLimitBytes } from './declared-body.js';
import { type ExpressRoute, serveRoutesDirectly } from './direct-route.js';
import { refuseWhileDraining } from './drain.js';
import { errorHandler, notFoundHandler } from './problem.js';
import { parseQueryString } from './query-string.js';
import { limitFailedCallbackAuth, limitShared, limitWrongAdminKeys } from './rate-limit.js';
import { checkRequestHead } from './request-headers.js';
import { routeTemplate } from './route-template.js';
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
  /** ADMIN_API_KEY (or dev mode's), then ADMIN_API_KEY_PREVIOUS during a rotation; none: the admin API and the dashboard are off. */
  adminKeys: readonly string[];
  authenticate: Authenticate;
  /** authenticate for POST /queue, through the key cache (services/api-key-cache.ts); default authenticate. */
  authenticateSender?: Authenticate;
  receiveEvents: EventsRouteDeps['receive'];
  eventsCredentials: BasicCredentials | undefined;
  /** Body sizes, requests per minute, and how long a body being read may stop arriving (HTTP_BODY_IDLE_TIMEOUT_MS). */
  limits: {
    queueBody: string;
    eventsBody: string;
    queuePerMinute: number;
    eventsPerMinute: number;
    /** Wrong admin keys per minute per source address, in this process (ADMIN_KEY_FAILURE_LIMIT). */
    adminKeyFailuresPerMinute: number;
    bodyPace: BodyPace;
  };
  /**
   * The bytes of callback bodies in progress at once (http/body-budget.ts), how long a callback may
   * wait for room, and the pace a body must keep to hold room others wait for (EVENTS_BODY_MIN_RATE).
   */
  eventsBodyBudget: { budget: ByteBudget; waitMs: number; minBytesPerSecond: number };
  /** The bytes of POST /queue bodies in progress at once (QUEUE_BODY_BUDGET): a request that finds no room is refused at once. */
  queueBodyBudget: ByteBudget;
  /** A callback that found no room in the budget: admitted after waiting, refused after waiting or part-way (metrics). */
  onCallbackWaited?: BodyBudgetOptions['onWaited'];
  trustProxy: boolean | number | string;
  log: Logger;
  /** The level of the one line per request: `info` in dev mode, where a person watches, else `http`. */
  requestLogLevel: 'info' | 'http';
  /** Each request once answered, by route template (metrics). */
  onRequest?: (request: { method: string; route: string; status: number; durationMs: number }) => void;
  /** A request answered 503 because of the database (readiness looks for a full disk among them). */
  onDatabaseUnavailable?: (error: Error) => void;
  /** The clock of the checks that depend on it (a send_at window). */
  now: () => Date;
}

interface RouterLayer {
  route?: ExpressRoute & { methods: Record<string, boolean> };
  handle?: { stack?: RouterLayer[] };
  /** The router's own matcher (router 2.x): pure, the params it returns are not stored on the layer. */
  match?: (path: string) => unknown;
}

/** The route layers of the app's routers, in order. */
function routeLayers(app: Express): RouterLayer[] {
  const walk = (stack: RouterLayer[]): RouterLayer[] => stack.flatMap((layer) => (layer.route ? [layer] : layer.handle?.stack ? walk(layer.handle.stack) : []));
  return walk((app as unknown as { router: { stack: RouterLayer[] } }).router.stack);
}

/** Every (method, path) the app serves, read from its routers: the contract test compares it to openapi.yaml. */
export function routeTable(app: Express): Array<{ method: string; path: string }> {
  return routeLayers(app).flatMap((layer) => Object.keys(layer.route!.methods).map((method) => ({ method, path: layer.route!.path })));
}

/**
 * A path the app serves asked with another method is a 405 naming the methods it takes in `Allow`
 * (RFC 9110 §15.5.6), not a 404 saying the path does not exist. Placed after every router, so it
 * only sees what no route answered; OPTIONS is answered by the routers themselves.
 */
function methodNotAllowed(app: Express): express.RequestHandler {
  return (req, _res, next) => {
    const methods = new Set(routeLayers(app).flatMap((layer) => (layer.match?.(req.path) ? Object.keys(layer.route!.methods) : [])));
    // A route of this method that passed the request on (an unknown dashboard asset) found nothing: a 404.
    if (methods.size === 0 || methods.has(req.method === 'HEAD' ? 'get' : req.method.toLowerCase())) {
      next();
      return;
    }
    const allowed = allowHeader(methods);
    next(new AppError('method-not-allowed', 405, `${req.path} does not take ${req.method}; it takes ${allowed}`, { headers: { Allow: allowed } }));
  };
}

/** An Allow header of routes' methods (express's, in lower case): a GET route answers HEAD too. */
function allowHeader(methods: Iterable<string>): string {
  return [...new Set([...methods].flatMap((method) => (method === 'get' ? ['GET', 'HEAD'] : [method.toUpperCase()])))].sort().join(', ');
}

/**
 * The request target `*` names the server itself, not a resource, and only OPTIONS takes it
 * (RFC 9112 §3.2.4): `OPTIONS *` is answered 200 with every method the server takes in Allow and no
 * content (RFC 9110 §9.3.7); another method with it names nothing to act on, a 400.
 */
function serverWideOptions(app: Express): express.RequestHandler {
  let allowed: string | undefined;
  return (req, res, next) => {
    if (req.url !== '*') {
      next();
      return;
    }
    if (req.method !== 'OPTIONS') {
      next(
        new AppError(
          'bad-request',
          400,
          `the request target * names the server itself, and only OPTIONS takes it: send ${req.method} to a path, such as /healthz`,
        ),
      );
      return;
    }
    // The routes are all in place by the first request.
    allowed ??= allowHeader([...routeTable(app).map((route) => route.method), 'options']);
    res.status(200).set('Allow', allowed).end();
  };
}

/**
 * The headers a middleware that always writes the same ones (helmet with fixed options) sets,
 * read once by running it against a recorder: setting them is then all a request costs.
 */
function fixedHeaders(middleware: express.RequestHandler): Array<[string, string]> {
  const headers = new Map<string, string>();
  const recorder = {
    setHeader: (name: string, value: string) => headers.set(name, value),
    removeHeader: (name: string) => headers.delete(name),
  };
  let failure: unknown;
  void middleware({} as express.Request, recorder as unknown as express.Response, (error?: unknown) => {
    failure = error;
  });
  if (failure !== undefined) {
    throw new Error('the security headers could not be computed', { cause: failure });
  }
  return [...headers];
}

/** The express app, and what the HTTP server runs: the app, with its busiest routes served directly. */
export interface HttpApp {
  app: Express;
  listener: RequestListener;
}

export function createApp(deps: AppDeps): HttpApp {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.trustProxy);
  app.set('query parser', parseQueryString);
  // No ETag hashed from each answer: a conditional read (If-None-Match) would be answered 304, which
  // the contract does not offer (a typed client reads it as neither data nor error). An app follows
  // changes through the feed or its webhook.
  app.set('etag', false);
  // Nor a 304 to `If-None-Match: *`, which express's freshness check grants any read: only an answer
  // with a validator of its own (the ETag of the dashboard's and the docs' assets) may be one.
  Object.defineProperty(app.request, 'fresh', {
    configurable: true,
    get(this: express.Request): boolean {
      return this.res?.hasHeader('etag') === true && Reflect.get(express.request, 'fresh', this);
    },
  });
  // helmet's defaults take no input from the request: computed once, set on every response.
  const securityHeaders = fixedHeaders(helmet());
  const setSecurityHeaders: express.RequestHandler = (_req, res, next) => {
    for (const [name, value] of securityHeaders) {
      res.setHeader(name, value);
    }
    next();
  };
  const logRequest: express.RequestHandler = (req, res, next) => {
    const started = performance.now();
    res.on('finish', () => {
      const ms = performance.now() - started;
      // The route's pattern, not the path: a path can hold an email address (suppressions). Never
      // headers or bodies: they hold keys and messages.
      const route = routeTemplate(req);
      // winston formats a line before its transports drop it: a level that is off costs nothing.
      if (deps.log.isLevelEnabled(deps.requestLogLevel)) {
        const caller = res.locals['app'] as AppIdentity | undefined;
        deps.log.log(deps.requestLogLevel, `${req.method} ${route ?? '-'} ${res.statusCode}`, {
          component: 'http',
          method: req.method,
          route: route ?? '-',
          status: res.statusCode,
          ms: Math.round(ms * 100) / 100,
          ...(caller === undefined ? {} : { app: caller.name }),
        });
      }
      deps.onRequest?.({ method: req.method, route: route ?? 'unmatched', status: res.statusCode, durationMs: ms });
    });
    next();
  };
  app.use(setSecurityHeaders);
  app.use(logRequest);
  app.use(checkRequestHead);
  const refuseDraining = refuseWhileDraining(deps.limits.bodyPace.stop);
  app.use(refuseDraining);
  app.use(serverWideOptions(app));

  const requireApp = requireApiKey(deps.authenticate);
  const requireSender = deps.authenticateSender ? requireApiKey(deps.authenticateSender) : requireApp;
  const limitPerApp = limitShared({
    counters: deps.rateLimits,
    prefix: 'queue-app',
    perMinute: deps.limits.queuePerMinute,
    keyOf: (_req, res) => callingApp(res).id,
    what: 'from this app',
  });
  // The callback's budget is spent only with its credentials; failed attempts are limited apart.
  const limitCallback = limitShared({
    counters: deps.rateLimits,
    prefix: 'events-caller',
    perMinute: deps.limits.eventsPerMinute,
    keyOf: () => 'mailjet',
    what: 'with the callback credentials',
  });
  const stop = deps.limits.bodyPace.stop === undefined ? {} : { stop: deps.limits.bodyPace.stop };
  // First: the busiest route is matched before the others are tried.
  app.use(
    queueRouter({
      jobs: deps.jobs,
      parseQueueRequest: createQueueRequestParser(deps.now),
      requireApp,
      requireSender,
      limit: limitPerApp,
      // No wait and no minimum rate of its own: a request that finds no room is refused at once.
      budget: bodyBudget({
        budget: deps.queueBodyBudget,
        names: { setting: 'QUEUE_BODY_BUDGET', request: 'request', component: 'queue' },
        ...stop,
        limit: bodyLimitBytes(deps.limits.queueBody),
        waitMs: 0,
        minBytesPerSecond: 0,
        log: deps.log,
      }),
      bodyLimit: deps.limits.queueBody,
      bodyPace: deps.limits.bodyPace,
    }),
  );
  app.use(opsRouter(deps));
  app.use(docsRouter());
  app.use(
    eventsRouter({
      receive: deps.receiveEvents,
      requireCallbackAuth: requireBasicAuth(deps.eventsCredentials, 'jetpost events', limitFailedCallbackAuth()),
      limit: limitCallback,
      budget: bodyBudget({
        ...deps.eventsBodyBudget,
        names: { setting: 'EVENTS_BODY_BUDGET', minRateSetting: 'EVENTS_BODY_MIN_RATE', request: 'callback', component: 'events' },
        ...stop,
        limit: bodyLimitBytes(deps.limits.eventsBody),
        log: deps.log,
        ...(deps.onCallbackWaited === undefined ? {} : { onWaited: deps.onCallbackWaited }),
      }),
      bodyLimit: deps.limits.eventsBody,
      bodyPace: deps.limits.bodyPace,
    }),
  );
  app.use(statusRouter(deps.jobs, requireApp));
  // One count of wrong admin keys for both doors that take the key.
  const limitWrongAdminKey = limitWrongAdminKeys(deps.limits.adminKeyFailuresPerMinute);
  app.use(adminRouter({ admin: deps.admin, requireAdmin: requireAdminKey(deps.adminKeys, limitWrongAdminKey), bodyPace: deps.limits.bodyPace }));
  app.use(
    dashboardRouter({
      dashboard: deps.dashboard,
      admin: deps.admin,
      adminKeys: deps.adminKeys,
      limitWrongAdminKey,
      log: deps.log,
      now: deps.now,
      bodyPace: deps.limits.bodyPace,
    }),
  );
  app.use(methodNotAllowed(app));
  app.use(notFoundHandler);
  const answerError = errorHandler(deps.log, deps.onDatabaseUnavailable);
  app.use(answerError);

  // POST /queue, one message per request, is the load jetpost is sized for, and POST /events comes
  // by the hundred events per request: both are served without express's router (the same
  // handlers, in the same order, after the same app middlewares).
  const postRoute = (path: string): ExpressRoute => {
    const route = routeLayers(app).find((layer) => layer.route!.path === path && layer.route!.methods['post'])?.route;
    if (route === undefined) {
      throw new Error(`the app has no POST ${path} route to serve directly`);
    }
    return route;
  };
  const listener = serveRoutesDirectly(app, {
    routes: [
      { method: 'POST', route: postRoute('/queue') },
      { method: 'POST', route: postRoute('/events') },
    ],
    before: [setSecurityHeaders, logRequest, checkRequestHead, refuseDraining],
    errorHandler: answerError,
    onLateError: (error, route) => deps.log.error('an error after the answer had begun: the connection is closed', { component: 'http', route, error }),
  });
  return { app, listener };
}
