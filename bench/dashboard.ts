// `npm run bench:dashboard`: the dashboard at 1,000,000 jobs. Seeds a fresh database with
// bench/dashboard-seed.ts (DASHBOARD_JOBS jobs, default 1,000,000, over DASHBOARD_SPAN_HOURS, default
// 720 (30 days; 1 is a busy service's hour), with their recipients, changes, events, deliveries and
// suppressions), starts jetpost on it with no consumers, logs in, and times
// every page (the median and the slowest of DASHBOARD_ROUNDS loads each, default 5). The table goes
// to stdout and to bench/results/dashboard-<time>.md (git-ignored). Uses DATABASE_URL when set
// (the role needs CREATEDB), else an embedded PostgreSQL removed at the end.
import fs from 'node:fs/promises';
import path from 'node:path';

import pg from 'pg';

import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startJetpost } from '../src/main.js';
import { seedDashboardHistory } from './dashboard-seed.js';
import { startBenchPostgres } from './postgres.js';
import { BENCH_DIR } from './systems.js';

const ADMIN_KEY = 'bench-admin-key-0123456789abcdef';
const SCHEMA = 'jetpost';

function numberFrom(text: string | undefined, fallback: number): number {
  const value = Number(text ?? fallback);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`expected a whole number above 0, got ${text}`);
  }
  return value;
}

async function main(): Promise<void> {
  const jobs = numberFrom(process.env['DASHBOARD_JOBS'], 1_000_000);
  const rounds = numberFrom(process.env['DASHBOARD_ROUNDS'], 5);
  const spanHours = numberFrom(process.env['DASHBOARD_SPAN_HOURS'], 720);
  const postgres = await startBenchPostgres(process.env['DATABASE_URL']);
  try {
    const url = await postgres.freshDatabase('dashboard');
    const log = createLogger({ level: 'warn' });
    const config = loadConfig({
      NODE_ENV: 'production',
      DATABASE_URL: url,
      DATABASE_SCHEMA: SCHEMA,
      PORT: '0',
      HOST: '127.0.0.1',
      WORKER_CONCURRENCY: '0',
      ADMIN_API_KEY: ADMIN_KEY,
      EVENTS_USERNAME: 'mailjet',
      EVENTS_PASSWORD: 'bench-events-password',
      // Never called: no consumer runs.
      MAILJET_API_KEY: 'bench',
      MAILJET_API_SECRET: 'bench',
      MAILJET_BASE_URL: 'http://127.0.0.1:9',
    });
    // jetpost migrates the database; it is then stopped while the history is written, so that the
    // pages are timed against analysed tables, the way autovacuum keeps them.
    await (await startJetpost(config, { log })).stop();
    const seeding = Date.now();
    const client = new pg.Client({ connectionString: url, options: `-c search_path=${SCHEMA}` });
    await client.connect();
    const seeded = await seedDashboardHistory(client, { jobs, apps: 20, prefix: 'bench', now: new Date(), spanMs: spanHours * 3_600_000 }).finally(() =>
      client.end(),
    );
    const seedSeconds = (Date.now() - seeding) / 1000;
    process.stdout.write(`seeded ${jobs.toLocaleString('en')} jobs over ${spanHours} hours and their history in ${seedSeconds.toFixed(0)} s\n`);

    const jetpost = await startJetpost(config, { log });
    try {
      const login = await fetch(`${jetpost.url}/dashboard/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: jetpost.url },
        body: new URLSearchParams({ key: ADMIN_KEY, next: '/dashboard' }).toString(),
      });
      const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
      if (login.status !== 303 || cookie === '') {
        throw new Error(`the dashboard login answered ${login.status}`);
      }
      const app = seeded.appNames[0]!;
      const pages: Array<[string, string]> = [
        ['overview', '/dashboard'],
        ['recent jobs', '/dashboard/jobs'],
        ['recent jobs, an older page', `/dashboard/jobs?before=${seeded.middleJobId}`],
        ["one app's jobs", `/dashboard/jobs?app=${app}`],
        ["a rare app's jobs", `/dashboard/jobs?app=${seeded.appNames.at(-1)!}`],
        ['search by recipient', `/dashboard/jobs?q=${encodeURIComponent(seeded.sampleRecipient)}`],
        ['search by custom_id', `/dashboard/jobs?q=${seeded.sampleCustomId}`],
        ['search by job id', `/dashboard/jobs?q=${seeded.sampleJobId}`],
        ['a job and its timeline', `/dashboard/jobs/${seeded.sampleJobId}`],
        ['failed jobs', '/dashboard/failed'],
        ['failed jobs of one app', `/dashboard/failed?app=${app}`],
        ['suppressions', `/dashboard/suppressions?app=${app}`],
        ['apps', '/dashboard/apps'],
        ['webhook deliveries', `/dashboard/apps/${app}/deliveries`],
      ];
      const rows: string[] = [];
      // A page that fails (a 503 past the statement timeout) is a finding: the table says so and the run exits 1.
      const failed: string[] = [];
      for (const [name, pathname] of pages) {
        const times: number[] = [];
        const statuses = new Set<number>();
        for (let round = 0; round < rounds; round++) {
          const started = process.hrtime.bigint();
          const res = await fetch(`${jetpost.url}${pathname}`, { headers: { cookie }, redirect: 'manual' });
          await res.text();
          times.push(Number(process.hrtime.bigint() - started) / 1e6);
          statuses.add(res.status);
        }
        if ([...statuses].some((status) => status !== 200)) {
          failed.push(`${pathname} answered ${[...statuses].join(', ')}`);
        }
        times.sort((a, b) => a - b);
        rows.push(
          `| ${name} | \`${pathname}\` | ${[...statuses].join(', ')} | ${times[Math.floor(times.length / 2)]!.toFixed(1)} | ${times.at(-1)!.toFixed(1)} |`,
        );
      }
      if (failed.length > 0) {
        process.exitCode = 1;
        process.stderr.write(`bench:dashboard: ${failed.join('; ')}\n`);
      }
      const report = [
        `# The dashboard at ${jobs.toLocaleString('en')} jobs over ${spanHours} hours (${postgres.description})`,
        '',
        `Seeded in ${seedSeconds.toFixed(0)} s. Each page loaded ${rounds} times, after login, no consumer running.`,
        '',
        '| page | path | status | median ms | slowest ms |',
        '| --- | --- | --- | ---: | ---: |',
        ...rows,
        '',
      ].join('\n');
      process.stdout.write(`${report}\n`);
      const file = path.join(BENCH_DIR, 'results', `dashboard-${new Date().toISOString().replace(/[:.]/g, '-')}.md`);
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, report);
      process.stdout.write(`written to ${path.relative(process.cwd(), file)}\n`);
    } finally {
      await jetpost.stop();
    }
  } finally {
    await postgres.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:dashboard: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
