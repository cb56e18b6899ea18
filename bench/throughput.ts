// `npm run bench`: end-to-end throughput of one jetpost process against the built-in Mailjet
// simulator and a real PostgreSQL (DATABASE_URL, or an embedded one in a temp directory):
// enqueue (POST /queue, bulk), drain (queued → accepted through the Send API), event ingest
// (POST /events, grouped), and the process's peak memory. Prints a table and writes it to
// bench/results/ (latest.md and a dated copy). Sizes: BENCH_MESSAGES (default 20000).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { createAppWithKey } from '../src/apps/service.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startJetpost } from '../src/main.js';

const MESSAGES = Number(process.env['BENCH_MESSAGES'] ?? 20_000);
/** /events basic password (at least 16 characters, as config.ts demands). */
const EVENTS_PASSWORD = 'bench-events-password';
const BULK = 500;
const RESULTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'results');

interface Row {
  measure: string;
  value: string;
  unit: string;
}

async function main(): Promise<void> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-bench-'));
  const config = loadConfig({
    ...(process.env['DATABASE_URL'] ? { DATABASE_URL: process.env['DATABASE_URL'] } : {}),
    DATA_DIR: dataDir,
    PORT: '0',
    HOST: '127.0.0.1',
    SIMULATOR_PORT: '0',
    EMBEDDED_PG_PORT: String(20_000 + Math.floor(Math.random() * 10_000)),
    DEV_MODE: 'false',
    EVENTS_USERNAME: 'bench',
    EVENTS_PASSWORD: EVENTS_PASSWORD,
    QUEUE_RATE_LIMIT: '0',
    EVENTS_RATE_LIMIT: '0',
    WORKER_CONCURRENCY: process.env['WORKER_CONCURRENCY'] ?? '4',
    LOG_LEVEL: 'warn',
  });
  const jetpost = await startJetpost(config, { log: createLogger({ level: 'warn' }) });
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  const rows: Row[] = [];
  try {
    const { key } = await createAppWithKey(jetpost.pool, 'bench');
    // "noevents": the simulator sends no callbacks, so the drain measures sending alone.
    const message = (i: number) => ({ from: 'bench@example.com', to: `noevents-${i}@example.com`, subject: 'Bench', text: 'Hello from the benchmark' });

    const enqueueStart = performance.now();
    const enqueued = Date.now();
    for (let offset = 0; offset < MESSAGES; offset += BULK) {
      const res = await fetch(`${jetpost.url}/queue`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ messages: Array.from({ length: Math.min(BULK, MESSAGES - offset) }, (_, i) => message(offset + i)) }),
      });
      if (res.status !== 202) {
        throw new Error(`POST /queue answered ${res.status}: ${await res.text()}`);
      }
    }
    const enqueueMs = performance.now() - enqueueStart;
    rows.push({ measure: `enqueue ${MESSAGES} messages (bulk of ${BULK})`, value: (MESSAGES / (enqueueMs / 1000)).toFixed(0), unit: 'messages/s' });

    for (;;) {
      const { rows: counts } = await jetpost.pool.query(`select count(*)::int as n from email_send_jobs where status = 'accepted'`);
      if (counts[0].n >= MESSAGES) {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const drainMs = Date.now() - enqueued;
    rows.push({ measure: `queued → accepted, ${config.consumers.concurrency} consumers`, value: (MESSAGES / (drainMs / 1000)).toFixed(0), unit: 'messages/s' });

    const { rows: ids } = await jetpost.pool.query(`select mailjet_message_id::text as id, email from email_recipients order by id`);
    const eventsStart = performance.now();
    const auth = `Basic ${Buffer.from(`bench:${EVENTS_PASSWORD}`).toString('base64')}`;
    for (let offset = 0; offset < ids.length; offset += 1000) {
      const batch = ids.slice(offset, offset + 1000).map((row: { id: string; email: string }) => `{"event":"sent","time":1700000000,"MessageID":${row.id},"email":"${row.email}","CustomID":"","Payload":""}`);
      const res = await fetch(`${jetpost.url}/events`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: `[${batch.join(',')}]` });
      if (res.status !== 200) {
        throw new Error(`POST /events answered ${res.status}`);
      }
    }
    const eventsMs = performance.now() - eventsStart;
    rows.push({ measure: `ingest ${ids.length} events (grouped by 1000)`, value: (ids.length / (eventsMs / 1000)).toFixed(0), unit: 'events/s' });
    rows.push({ measure: 'peak RSS of the process (jetpost + bench client)', value: (peakRss / 1024 / 1024).toFixed(0), unit: 'MiB' });
  } finally {
    clearInterval(sampler);
    await jetpost.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }

  const header = `jetpost throughput, ${new Date().toISOString()}, ${os.cpus().length} CPUs, node ${process.version}, ${config.database.url ? 'DATABASE_URL' : 'embedded PostgreSQL'}`;
  const table = [
    header,
    '',
    '| measure | value | unit |',
    '| --- | ---: | --- |',
    ...rows.map((row) => `| ${row.measure} | ${row.value} | ${row.unit} |`),
    '',
  ].join('\n');
  process.stdout.write(`${table}\n`);
  await fs.mkdir(RESULTS, { recursive: true });
  await fs.writeFile(path.join(RESULTS, 'latest.md'), table);
  await fs.writeFile(path.join(RESULTS, `throughput-${new Date().toISOString().slice(0, 10)}.md`), table);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
