// Queueing messages through a jetpost child's API and reading the results from its database and metrics.
import type { Pool } from '../../../src/db/pool.js';
import type { JetpostProcess } from './jetpost-process.js';
import { waitUntil } from './wait.js';

/** POST /queue in bulk requests of up to 500; returns the job ids in order. */
export async function queueMessages(url: string, key: string, messages: readonly Record<string, unknown>[]): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < messages.length; start += 500) {
    const response = await fetch(`${url}/queue`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: messages.slice(start, start + 500) }),
    });
    const text = await response.text();
    if (response.status !== 202) {
      throw new Error(`POST /queue answered ${response.status}: ${text}`);
    }
    ids.push(...(JSON.parse(text) as { jobs: Array<{ job_id: string }> }).jobs.map((job) => job.job_id));
  }
  return ids;
}

export interface JobFacts {
  id: string;
  status: string;
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
  outcomeUnknown: boolean;
}

export async function jobFacts(pool: Pool): Promise<JobFacts[]> {
  const { rows } = await pool.query<{
    id: string;
    status: string;
    attempts: number;
    max_attempts: number;
    last_error: string | null;
    outcome_unknown: boolean;
  }>('select id::text, status, attempts, max_attempts, last_error, outcome_unknown from email_send_jobs order by id');
  return rows.map((row) => ({
    id: row.id,
    status: row.status,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    lastError: row.last_error,
    outcomeUnknown: row.outcome_unknown,
  }));
}

/** Jobs per status, e.g. "accepted 380, processing 20". */
export async function statusCounts(pool: Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ status: string; count: number }>('select status, count(*)::int as count from email_send_jobs group by status');
  return Object.fromEntries(rows.map((row) => [row.status, row.count]));
}

export function describeCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? 'no jobs' : entries.map(([status, count]) => `${status} ${count}`).join(', ');
}

export async function countStatus(pool: Pool, status: string): Promise<number> {
  return (await statusCounts(pool))[status] ?? 0;
}

/** Waits until every one of `total` jobs has one of `statuses`, reporting the counts if it never happens. */
export async function waitForJobs(
  pool: Pool,
  total: number,
  statuses: readonly string[],
  options: { timeoutMs: number; watch?: readonly JetpostProcess[] },
): Promise<Record<string, number>> {
  return waitUntil(
    `all ${total} jobs to be ${statuses.join(' or ')}`,
    async () => {
      const counts = await statusCounts(pool);
      const settled = statuses.reduce((sum, status) => sum + (counts[status] ?? 0), 0);
      return settled === total ? counts : undefined;
    },
    { ...options, intervalMs: 100, progress: async () => describeCounts(await statusCounts(pool)) },
  );
}

/** Reads a counter of GET /metrics (summed over its labels); 0 when absent. */
export async function metric(child: JetpostProcess, name: string): Promise<number> {
  const text = await (await fetch(`${child.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}
