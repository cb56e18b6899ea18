// The HTTP floor for POST /queue: Express 5 + pg, JSON body in, one row inserted, 202 out, with the
// same pool size as jetpost's default (10). No auth, no validation, no idempotency: what any
// handler that stores a request must at least do.
// Env: DATABASE_URL, PORT. Reports: listening {url}.
import process from 'node:process';

import express from 'express';
import pg from 'pg';

import { readSettings, report, runMain } from './common.mjs';

runMain(async () => {
  const settings = readSettings();
  const pool = new pg.Pool({ connectionString: settings.databaseUrl, max: 10 });
  await pool.query(
    'create table if not exists bare_jobs (id bigint generated always as identity primary key, payload jsonb not null, created_at timestamptz not null default now())',
  );
  const app = express();
  app.post('/queue', express.json({ limit: '1mb' }), async (req, res) => {
    const { rows } = await pool.query('insert into bare_jobs (payload) values ($1) returning id::text', [req.body]);
    res.status(202).json({ job_id: rows[0].id, status: 'queued' });
  });
  const server = app.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1');
  await new Promise((resolve, reject) => server.once('listening', resolve).once('error', reject));
  report('listening', { url: `http://127.0.0.1:${server.address().port}` });
  await new Promise((resolve) => process.once('SIGTERM', resolve));
  await new Promise((resolve) => server.close(resolve));
  await pool.end();
});
