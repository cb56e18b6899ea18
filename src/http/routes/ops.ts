// Operations: liveness, readiness, Prometheus metrics and the OpenAPI document.
import { Router } from 'express';

import { LIVENESS_ANSWER } from '../../domain/liveness.js';
import type { Readiness } from '../../services/readiness.js';

export interface OpsRouteDeps {
  readiness: () => Promise<Readiness>;
  metrics: () => Promise<{ contentType: string; body: string }>;
  openapi: string;
  /** How long /readyz waits for its checks before it answers "not ready": a probe must not hang. */
  readinessTimeoutMs: number;
}

/** Seconds a prober is told to wait before asking again after a 503. */
const NOT_READY_RETRY_AFTER_S = 5;

/** The checks, or "not ready" once `timeoutMs` passed: a probe that hangs is no answer at all. */
async function boundedReadiness(readiness: () => Promise<Readiness>, timeoutMs: number): Promise<Readiness> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Readiness>((resolve) => {
    timer = setTimeout(() => resolve({ ready: false, checks: { database: { ok: false, detail: `no answer within ${timeoutMs} ms` } } }), timeoutMs);
  });
  try {
    return await Promise.race([readiness(), late]);
  } finally {
    clearTimeout(timer);
  }
}

export function opsRouter({ readiness, metrics, openapi, readinessTimeoutMs }: OpsRouteDeps): Router {
  const router = Router();

  router.get('/healthz', (_req, res) => {
    // `service` tells jetpost's answer from another server's on the port (bin/health.ts checks it).
    res.json(LIVENESS_ANSWER);
  });

  router.get('/readyz', async (_req, res) => {
    const state = await boundedReadiness(readiness, readinessTimeoutMs);
    if (!state.ready) {
      res.setHeader('Retry-After', String(NOT_READY_RETRY_AFTER_S));
    }
    res.status(state.ready ? 200 : 503).json({ status: state.ready ? 'ready' : 'not-ready', checks: state.checks });
  });

  router.get('/metrics', async (_req, res) => {
    const { contentType, body } = await metrics();
    res.type(contentType).send(body);
  });

  router.get('/openapi.yaml', (_req, res) => {
    res.type('application/yaml').send(openapi);
  });

  return router;
}
