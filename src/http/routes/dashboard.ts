// The operator's dashboard at /dashboard: server-rendered pages over the dashboard and admin
// services, behind a login with ADMIN_API_KEY (see dashboard/session.ts). Its actions are HTML form
// POSTs answered by a 303 to the page to show next. It is a browser UI, not part of the API: its
// routes are outside openapi.yaml (see test/contract/openapi.test.ts) and tested in
// test/http/dashboard.test.ts and test/e2e/dashboard-browser.test.ts.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response, Router } from 'express';
import helmet from 'helmet';
import { z } from 'zod';

import type { AppWebhook } from '../../domain/app.js';
import { searchField } from '../../domain/dashboard.js';
import { AppError, NotFoundError } from '../../domain/errors.js';
import {
  appNameSchema,
  deliveryIdSchema,
  deliveryStatusSchema,
  emailSchema,
  jobIdSchema,
  noControl,
  parseOrThrow,
  suppressionNoteSchema,
} from '../../domain/input-schemas.js';
import type { Logger } from '../../log.js';
import type { AdminService } from '../../services/admin.js';
import type { DashboardService } from '../../services/dashboard.js';
import { type BodyPace, withBodyPace } from '../body-pace.js';
import { DASHBOARD_SCRIPT, DASHBOARD_STYLES } from '../dashboard/assets.js';
import {
  appsPage,
  ASSETS_PATH,
  deliveriesPage,
  errorPage,
  failedPage,
  isNoticeCode,
  jobPage,
  jobsPage,
  loginPage,
  type NoticeCode,
  overviewPage,
  suppressionsPage,
} from '../dashboard/pages.js';
import {
  CSRF_FIELD,
  DASHBOARD_PATH,
  DashboardSessions,
  type DashboardVisitor,
  dashboardVisitor,
  LOGIN_PATH,
  requireSameOrigin,
  safeReturnPath,
} from '../dashboard/session.js';
import { fromBodyParser } from '../problem.js';
import { takesNoQuery } from '../query-string.js';
import type { WrongAdminKeys } from '../rate-limit.js';

export interface DashboardRouteDeps {
  dashboard: DashboardService;
  admin: AdminService;
  /** ADMIN_API_KEY, then ADMIN_API_KEY_PREVIOUS during a rotation. */
  adminKeys: readonly string[];
  /** The count of wrong admin keys per address, shared with the admin API (http/rate-limit.ts). */
  limitWrongAdminKey: WrongAdminKeys;
  log: Logger;
  now: () => Date;
  /** HTTP_BODY_IDLE_TIMEOUT_MS, HTTP_BODY_MIN_RATE (http/body-pace.ts). */
  bodyPace: BodyPace;
}

const PAGE_SIZE = 50;

/** Scripts and styles from this origin only; no inline script, no inline style, forms post here only. */
const dashboardPolicy = helmet.contentSecurityPolicy({
  useDefaults: false,
  directives: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", 'data:'],
    connectSrc: ["'self'"],
    baseUri: ["'none'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
  },
});

/** Pages show data of every app: no cache keeps them, not the browser's back button either. */
const noStore: RequestHandler = (_req, res, next) => {
  res.set('Cache-Control', 'no-store');
  next();
};

/** Forms are small: an address, a note, an id and the CSRF token. */
const FORM_LIMIT_BYTES = 16 * 1024;
const readForm = express.urlencoded({ extended: false, limit: FORM_LIMIT_BYTES, parameterLimit: 20 });

interface Asset {
  type: string;
  body: string;
  etag: string;
}

function asset(type: string, body: string): Asset {
  return { type, body, etag: `"${createHash('sha256').update(body).digest('base64url')}"` };
}

function loadAssets(): Map<string, Asset> {
  const resolve = createRequire(import.meta.url).resolve;
  return new Map([
    ['dashboard.js', asset('text/javascript', DASHBOARD_SCRIPT)],
    ['dashboard.css', asset('text/css', DASHBOARD_STYLES)],
    ['uPlot.iife.min.js', asset('text/javascript', readFileSync(resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'))],
    ['uPlot.min.css', asset('text/css', readFileSync(resolve('uplot/dist/uPlot.min.css'), 'utf8'))],
  ]);
}

const optional = <T extends z.ZodType>(schema: T) => z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

const jobsQuery = z.strictObject({
  q: optional(noControl(254)),
  by: optional(z.enum(['job_id', 'custom_id', 'recipient'])),
  app: optional(appNameSchema),
  before: optional(jobIdSchema),
});

const noticeOf = (req: Request): NoticeCode | undefined => (isNoticeCode(req.query['notice']) ? req.query['notice'] : undefined);

export function dashboardRouter({ dashboard, admin, adminKeys, limitWrongAdminKey, log, now, bodyPace }: DashboardRouteDeps): Router {
  const formBody = withBodyPace(bodyPace, readForm, FORM_LIMIT_BYTES);
  const sessions = new DashboardSessions(adminKeys, now, (id) => dashboard.isSessionEnded(id));
  const assets = loadAssets();
  const router = Router({ strict: true });
  const pages = [dashboardPolicy, noStore, sessions.requireSession];
  const forms = [dashboardPolicy, noStore, requireSameOrigin, formBody, sessions.requireSession, sessions.checkForm];
  const send = (res: Response, body: string, statusCode = 200) => res.status(statusCode).type('html').send(body);
  const appNames = async () => (await admin.listApps()).map((app) => ({ id: app.id, name: app.name, createdAt: app.createdAt }));

  router.get(`${ASSETS_PATH}/:file`, (req, res, next) => {
    const file = assets.get(req.params['file'] ?? '');
    if (!file) {
      next();
      return;
    }
    res.type(file.type).set({ 'Cache-Control': 'public, max-age=3600', ETag: file.etag }).send(file.body);
  });

  router.get(LOGIN_PATH, dashboardPolicy, noStore, async (req, res) => {
    const next = safeReturnPath(req.query['next']);
    if (await sessions.visitor(req)) {
      res.redirect(303, next);
      return;
    }
    send(res, loginPage({ next, enabled: sessions.enabled }), sessions.enabled ? 200 : 401);
  });

  router.post(LOGIN_PATH, dashboardPolicy, noStore, requireSameOrigin, formBody, limitWrongAdminKey.guard, (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeReturnPath(body['next']);
    const given = typeof body['key'] === 'string' ? body['key'] : '';
    const session = sessions.open(given);
    if (!session) {
      limitWrongAdminKey.count(req);
      log.warn('dashboard login refused', { component: 'dashboard', ip: req.ip });
      send(res, loginPage({ next, enabled: sessions.enabled, problem: sessions.enabled ? 'That is not the admin key.' : undefined }), 401);
      return;
    }
    sessions.start(req, res, session);
    log.info('dashboard login', { component: 'dashboard', ip: req.ip });
    res.redirect(303, next);
  });

  // Ends the session on every replica, not only in this browser: a copy of the cookie is refused too.
  router.post(`${DASHBOARD_PATH}/logout`, ...forms, async (req, res) => {
    await dashboard.endSession(dashboardVisitor(res).session, now());
    sessions.end(req, res);
    log.info('dashboard logout', { component: 'dashboard', ip: req.ip });
    res.redirect(303, LOGIN_PATH);
  });

  router.get(DASHBOARD_PATH, ...pages, async (_req, res) => {
    send(res, overviewPage(dashboardVisitor(res), await dashboard.overview(now())));
  });

  router.get(`${DASHBOARD_PATH}/jobs`, ...pages, async (req, res) => {
    const query = parseOrThrow(jobsQuery, req.query, 'search');
    const field = query.q === undefined ? undefined : (query.by ?? searchField(query.q));
    // A number no job id can be is searched, and finds no job: only what is no number is refused.
    if (field === 'job_id' && query.q !== undefined && !/^\d+$/.test(query.q)) {
      parseOrThrow(jobIdSchema, query.q, 'job id');
    }
    const [apps, rows] = await Promise.all([
      appNames(),
      dashboard.listJobs({
        search: field && query.q !== undefined ? { field, value: query.q } : undefined,
        appName: query.app,
        before: query.before,
        limit: PAGE_SIZE,
      }),
    ]);
    send(res, jobsPage(dashboardVisitor(res), { apps, rows, q: query.q, field: query.by, app: query.app, limit: PAGE_SIZE }));
  });

  router.get(`${DASHBOARD_PATH}/jobs/:jobId`, ...pages, async (req, res) => {
    const jobId = parseOrThrow(jobIdSchema, req.params['jobId'], 'job id');
    const detail = await dashboard.jobDetail(jobId);
    if (!detail) {
      throw new NotFoundError(`there is no job ${jobId}`);
    }
    send(res, jobPage(dashboardVisitor(res), detail, noticeOf(req)));
  });

  router.get(`${DASHBOARD_PATH}/failed`, ...pages, async (req, res) => {
    const query = parseOrThrow(
      z.strictObject({ app: optional(appNameSchema), before: optional(jobIdSchema), notice: z.string().optional() }),
      req.query,
      'query',
    );
    const [apps, { jobs: rows }] = await Promise.all([
      appNames(),
      admin.listJobs({ status: 'failed', appName: query.app, before: query.before, limit: PAGE_SIZE }),
    ]);
    send(res, failedPage(dashboardVisitor(res), { apps, rows, app: query.app, limit: PAGE_SIZE, notice: noticeOf(req) }));
  });

  router.post(`${DASHBOARD_PATH}/failed/requeue`, ...forms, async (req, res) => {
    const body = parseOrThrow(z.strictObject({ [CSRF_FIELD]: z.string(), job_id: jobIdSchema, back: z.enum(['job', 'failed']) }), req.body, 'form');
    const requeued = await admin.requeueJobs({ ids: [body.job_id], appName: null });
    const notice: NoticeCode = requeued.length > 0 ? 'requeued' : 'not-requeued';
    log.info('dashboard requeue', { component: 'dashboard', jobIds: requeued });
    res.redirect(303, body.back === 'job' ? `${DASHBOARD_PATH}/jobs/${body.job_id}?notice=${notice}` : `${DASHBOARD_PATH}/failed?notice=${notice}`);
  });

  router.get(`${DASHBOARD_PATH}/suppressions`, ...pages, async (req, res) => {
    const query = parseOrThrow(
      z.strictObject({ app: optional(appNameSchema), after: optional(z.string().max(254)), notice: z.string().optional() }),
      req.query,
      'query',
    );
    const apps = await appNames();
    const app = query.app ?? apps[0]?.name;
    const rows = app === undefined ? [] : await admin.listSuppressions(app, { after: query.after, limit: PAGE_SIZE });
    send(res, suppressionsPage(dashboardVisitor(res), { apps, app, rows, limit: PAGE_SIZE, notice: noticeOf(req) }));
  });

  router.post(`${DASHBOARD_PATH}/suppressions`, ...forms, async (req, res) => {
    const body = parseOrThrow(
      z.strictObject({ [CSRF_FIELD]: z.string(), app: appNameSchema, email: emailSchema, note: optional(suppressionNoteSchema) }),
      req.body,
      'form',
    );
    await admin.addSuppression(body.app, body.email, body.note ?? 'added on the dashboard');
    res.redirect(303, `${DASHBOARD_PATH}/suppressions?${new URLSearchParams({ app: body.app, notice: 'suppression-added' }).toString()}`);
  });

  router.post(`${DASHBOARD_PATH}/suppressions/remove`, ...forms, async (req, res) => {
    const body = parseOrThrow(z.strictObject({ [CSRF_FIELD]: z.string(), app: appNameSchema, email: emailSchema }), req.body, 'form');
    const removed = await admin.removeSuppression(body.app, body.email);
    const notice: NoticeCode = removed ? 'suppression-removed' : 'suppression-absent';
    res.redirect(303, `${DASHBOARD_PATH}/suppressions?${new URLSearchParams({ app: body.app, notice }).toString()}`);
  });

  router.get(`${DASHBOARD_PATH}/apps`, ...pages, takesNoQuery, async (_req, res) => {
    const apps = (await admin.listApps()).map((app) => ({ ...app, activeKeys: app.keys.filter((key) => key.revokedAt === null).length }));
    send(res, appsPage(dashboardVisitor(res), apps));
  });

  router.get(`${DASHBOARD_PATH}/apps/:app/deliveries`, ...pages, async (req, res) => {
    const app = parseOrThrow(appNameSchema, req.params['app'], 'app name');
    const query = parseOrThrow(
      z.strictObject({ status: optional(deliveryStatusSchema), before: optional(deliveryIdSchema), notice: z.string().optional() }),
      req.query,
      'query',
    );
    const { deliveries: rows, nextBefore } = await admin.listDeliveries(app, { status: query.status, before: query.before, limit: PAGE_SIZE });
    const webhook = await admin.getWebhook(app).then(
      (found): AppWebhook | null => found,
      (error: unknown) => {
        if (error instanceof NotFoundError) {
          return null;
        }
        throw error;
      },
    );
    send(res, deliveriesPage(dashboardVisitor(res), { app, webhook, rows, status: query.status, nextBefore, notice: noticeOf(req) }));
  });

  router.post(`${DASHBOARD_PATH}/apps/:app/deliveries/:delivery/redeliver`, ...forms, async (req, res) => {
    const app = parseOrThrow(appNameSchema, req.params['app'], 'app name');
    const id = parseOrThrow(deliveryIdSchema, req.params['delivery'], 'delivery id');
    parseOrThrow(z.strictObject({ [CSRF_FIELD]: z.string() }), req.body, 'form');
    await admin.redeliver(app, id);
    res.redirect(303, `${DASHBOARD_PATH}/apps/${encodeURIComponent(app)}/deliveries?notice=redelivered`);
  });

  // A refusal on the dashboard is a page a person reads; anything else goes on to the API's handler (a 500 problem).
  const renderRefusal: ErrorRequestHandler = (thrown, req, res, next) => {
    const refusal =
      thrown instanceof AppError
        ? thrown
        : typeof thrown === 'object' && thrown !== null
          ? fromBodyParser(thrown as Record<string, unknown>, req.headers['content-encoding'])
          : undefined;
    if (!refusal || res.headersSent || refusal.status >= 500) {
      next(thrown);
      return;
    }
    res.set('Cache-Control', 'no-store');
    // The visitor as requireSession found it: a refusal before that check (a form of another site) shows no session.
    const visitor = res.locals['dashboardVisitor'] as DashboardVisitor | undefined;
    send(res, errorPage(refusal.status, refusal.message, refusal.fields ?? [], visitor), refusal.status);
  };
  router.use(renderRefusal);
  return router;
}
