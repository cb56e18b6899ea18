// Operations: liveness, readiness, Prometheus metrics and the OpenAPI document.
import { Router } from 'express';

export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

export interface OpsRouteDeps {
  readiness: () => Promise<Readiness>;
  metrics: () => Promise<{ contentType: string; body: string }>;
  openapi: string;
}

export function opsRouter({ readiness, metrics, openapi }: OpsRouteDeps): Router {
  const router = Router();

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    const state = await readiness();
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
