// The result table: each jetpost figure beside its reference from the same run, their ratio, the
// target of issue 10 and whether it is met; the machine it ran on; Markdown and JSON files.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { DEFAULT_RECIPIENT_DOMAIN } from './plan.js';
import { BENCH_RATE_LIMIT_PER_MINUTE } from './systems.js';

export interface Target {
  /** e.g. "≥ 3,000 req/s and ≥ 1.3×". */
  text: string;
  /** Met when every bound given holds. */
  min?: number;
  max?: number;
  minRatio?: number;
  maxRatio?: number;
}

export interface Row {
  scenario: string;
  measure: string;
  unit: string;
  jetpost: number | undefined;
  /** What jetpost is compared with, and its figure when it was measured in this run. */
  reference?: { label: string; value?: number | undefined };
  target?: Target;
  /** Why a figure is missing or doubtful (a failed run, answers that were not 2xx…). */
  note?: string | undefined;
}

export type Verdict = 'pass' | 'miss' | '';

export function ratioOf(row: Row): number | undefined {
  const reference = row.reference?.value;
  return row.jetpost === undefined || reference === undefined || reference === 0 ? undefined : row.jetpost / reference;
}

export function verdictOf(row: Row): Verdict {
  const target = row.target;
  const bounded = target !== undefined && [target.min, target.max, target.minRatio, target.maxRatio].some((bound) => bound !== undefined);
  if (!bounded || row.jetpost === undefined || Number.isNaN(row.jetpost)) {
    return '';
  }
  const ratio = ratioOf(row);
  const checks = [
    target.min === undefined || row.jetpost >= target.min,
    target.max === undefined || row.jetpost <= target.max,
    target.minRatio === undefined || (ratio !== undefined && ratio >= target.minRatio),
    target.maxRatio === undefined || (ratio !== undefined && ratio <= target.maxRatio),
  ];
  return checks.every(Boolean) ? 'pass' : 'miss';
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  postgres: string;
  /** 1-minute load average at the start and at the end: well above 0 means other work shared the CPU. */
  loadAverage: { start: number; end: number };
  jetpostCommit: string;
}

export function describeMachine(postgres: string, loadAtStart: number, repoRoot: string): Machine {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres,
    loadAverage: { start: loadAtStart, end: os.loadavg()[0]! },
    jetpostCommit: gitDescribe(repoRoot),
  };
}

function gitDescribe(repoRoot: string): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'sql'], { cwd: repoRoot, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${commit} with uncommitted changes in src/ or sql/` : commit;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function formatNumber(value: number | undefined, unit: string): string {
  if (value === undefined || Number.isNaN(value)) {
    return 'n/a';
  }
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : Math.abs(value) >= 1 ? 2 : 3;
  const text = digits === 0 ? integer.format(value) : value.toFixed(digits);
  return `${text} ${unit}`;
}

export interface Report {
  startedAt: Date;
  seconds: number;
  mode: 'quick' | 'full';
  scenarios: readonly string[];
  machine: Machine;
  /** BENCH_JETPOST_* settings given to jetpost, if any: then "default settings" no longer holds. */
  jetpostOverrides: Record<string, string>;
  /** Domain of jetpost's recipients (BENCH_RECIPIENT_DOMAIN). */
  recipientDomain: string;
  rows: Row[];
  /** Each scenario's raw figures (percentiles, counts, CPU split), for the JSON file. */
  details: Record<string, unknown>;
  failures: Array<{ scenario: string; error: string }>;
}

export function toMarkdown(report: Report): string {
  const m = report.machine;
  const overrides = Object.entries(report.jetpostOverrides);
  const lines = [
    `# jetpost benchmark, ${report.mode} run, ${report.startedAt.toISOString()}`,
    '',
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}`,
    `- Node ${m.node}; ${m.postgres}`,
    `- Load average (1 min) at start ${m.loadAverage.start.toFixed(2)}, at end ${m.loadAverage.end.toFixed(2)}${m.loadAverage.start > 0.5 ? ' — other work shared the CPU: figures are noisy' : ''}`,
    `- jetpost commit ${m.jetpostCommit}; ${overrides.length === 0 ? `jetpost default settings, but rate limits of ${BENCH_RATE_LIMIT_PER_MINUTE.toLocaleString('en')} per minute (counted, never reached)` : `jetpost settings overridden: ${overrides.map(([name, value]) => `${name}=${value}`).join(', ')}`}`,
    `- Scenarios: ${report.scenarios.join(', ')}; took ${Math.round(report.seconds)} s`,
    ...(report.recipientDomain === DEFAULT_RECIPIENT_DOMAIN
      ? []
      : [`- jetpost's recipients at ${report.recipientDomain} (BENCH_RECIPIENT_DOMAIN), the references' at ${DEFAULT_RECIPIENT_DOMAIN}`]),
    '',
    '| measure | jetpost | reference (same run) | ratio | target | |',
    '| --- | ---: | --- | ---: | --- | --- |',
    ...report.rows.map((row) => {
      const ratio = ratioOf(row);
      const reference = row.reference
        ? `${row.reference.label}${row.reference.value === undefined ? '' : `: ${formatNumber(row.reference.value, row.unit)}`}`
        : '';
      const verdict = verdictOf(row);
      return `| ${row.measure}${row.note ? ` (${row.note})` : ''} | ${formatNumber(row.jetpost, row.unit)} | ${reference} | ${ratio === undefined ? '' : `${ratio.toFixed(2)}×`} | ${row.target?.text ?? ''} | ${verdict === 'pass' ? '✓ pass' : verdict === 'miss' ? '✗ miss' : ''} |`;
    }),
    '',
  ];
  if (report.failures.length > 0) {
    lines.push(
      'Parts that failed to run (their figures are missing above):',
      '',
      ...report.failures.map((failure) => `- ${failure.scenario}: ${failure.error}`),
      '',
    );
  }
  return lines.join('\n');
}

/** Writes <stamp>.md and .json to the (git-ignored) results folder; latest.md too when recording. */
export async function writeReport(report: Report, resultsDir: string, record: boolean): Promise<string[]> {
  const stamp = `${report.startedAt.toISOString().slice(0, 19).replace(/:/g, '-')}${report.mode === 'quick' ? '-quick' : ''}`;
  const markdown = toMarkdown(report);
  const json = JSON.stringify({ ...report, rows: report.rows.map((row) => ({ ...row, ratio: ratioOf(row), verdict: verdictOf(row) })) }, null, 2);
  await fs.mkdir(resultsDir, { recursive: true });
  const written = [path.join(resultsDir, `${stamp}.md`), path.join(resultsDir, `${stamp}.json`)];
  await fs.writeFile(written[0]!, markdown);
  await fs.writeFile(written[1]!, `${json}\n`);
  if (record) {
    written.push(path.join(resultsDir, 'latest.md'));
    await fs.writeFile(written[2]!, markdown);
  }
  return written;
}
