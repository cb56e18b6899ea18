// `npm run bench`: measures jetpost beside its references in one run (see bench/plan.ts for the
// scenarios and sizes, docs/benchmarks.md for how to read the table). Every system runs as its
// own process against one PostgreSQL and one Mailjet double; the table goes to stdout and to
// bench/results/<time>.md and .json (git-ignored), and to bench/results/latest.md with
// BENCH_RECORD=1 (npm run bench:record). Exits 1 when a scenario failed to run; a missed target is
// a finding, not a failure.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { estimateSeconds, historyBytes, type Plan, PlanError, readPlan, type Scenario, SCENARIO_HELP } from './plan.js';
import { type BenchPostgres, startBenchPostgres } from './postgres.js';
import { killAllChildren } from './processes.js';
import { describeMachine, type Report, type Row, toMarkdown, writeReport } from './report.js';
import type { ScenarioContext } from './scenarios/context.js';
import { dispatchSlow } from './scenarios/dispatch-slow.js';
import { latency } from './scenarios/latency.js';
import { memory } from './scenarios/memory.js';
import { pipeline } from './scenarios/pipeline.js';
import { queueSingle } from './scenarios/queue-single.js';
import { scale } from './scenarios/scale.js';
import { BENCH_DIR, BENCH_RATE_LIMIT_PER_MINUTE, ensurePeersInstalled, jetpostOverrides, REPO_ROOT } from './systems.js';

const RESULTS_DIR = path.join(BENCH_DIR, 'results');

interface Step {
  /** The scenarios whose rows this step produces. */
  scenarios: Scenario[];
  run(context: ScenarioContext): Promise<Row[]>;
}

function stepsFor(plan: Plan): Step[] {
  const has = (name: Scenario) => plan.scenarios.includes(name);
  const selection = { bulk: has('queue-bulk'), dispatch: has('dispatch-0ms'), events: has('events') };
  const steps: Step[] = [
    { scenarios: ['queue-single'], run: queueSingle },
    { scenarios: ['queue-bulk', 'dispatch-0ms', 'events'], run: (context) => pipeline(context, selection) },
    { scenarios: ['dispatch-200ms'], run: dispatchSlow },
    { scenarios: ['latency'], run: latency },
    { scenarios: ['scale'], run: scale },
    { scenarios: ['memory'], run: memory },
  ];
  return steps.filter((step) => step.scenarios.some(has));
}

function minutes(seconds: number): string {
  return seconds < 90 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
}

async function main(): Promise<number> {
  let plan: Plan;
  try {
    plan = readPlan();
  } catch (error) {
    if (error instanceof PlanError) {
      process.stderr.write(`bench: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const startedAt = new Date();
  const began = performance.now();
  const elapsed = () => {
    const seconds = Math.round((performance.now() - began) / 1000);
    return `${String(Math.floor(seconds / 60)).padStart(2, '0')}:${String(seconds % 60).padStart(2, '0')}`;
  };
  const progress = (message: string) => process.stdout.write(`[${elapsed()}] ${message}\n`);
  const loadAtStart = os.loadavg()[0]!;
  const stamp = startedAt.toISOString().slice(0, 19).replace(/:/g, '-');
  const logDir = path.join(RESULTS_DIR, 'logs', stamp);
  const overrides = jetpostOverrides();

  process.stdout.write(
    [
      `jetpost benchmark, ${plan.quick ? 'quick (BENCH_QUICK=1)' : 'full'} run: estimated duration ${minutes(estimateSeconds(plan))} on 2 cores at jetpost's speed when the suite was written`,
      ...plan.scenarios.map((name) => `  - ${name}: ${SCENARIO_HELP[name]}`),
      `  jetpost runs with its rate limits on, at ${BENCH_RATE_LIMIT_PER_MINUTE.toLocaleString('en')} requests per minute: every request is counted, none refused`,
      `  logs of every process: ${path.relative(process.cwd(), logDir)}`,
      ...(loadAtStart > 0.5 ? [`  load average is ${loadAtStart.toFixed(2)}: other work is using the CPU, figures will be noisy`] : []),
      '',
    ].join('\n'),
  );

  const needed = historyBytes(plan);
  if (plan.databaseUrl === undefined && needed > 0) {
    const disk = await fs.statfs(os.tmpdir());
    if (disk.bavail * disk.bsize < needed) {
      progress(
        `warning: the scale scenario needs about ${Math.ceil(needed / 2 ** 30)} GiB in ${os.tmpdir()}; ${Math.floor((disk.bavail * disk.bsize) / 2 ** 30)} GiB are free`,
      );
    }
  }
  if (plan.scenarios.some((name) => ['queue-single', 'queue-bulk', 'dispatch-0ms'].includes(name))) {
    await ensurePeersInstalled(progress);
  }
  progress(plan.databaseUrl ? 'connecting to DATABASE_URL' : 'starting an embedded PostgreSQL');
  const pg: BenchPostgres = await startBenchPostgres(plan.databaseUrl);
  // Ctrl-C, SIGTERM, or an error no scenario caught: stop every process the bench started, drop
  // its databases (and the embedded server), then exit.
  let interrupted = false;
  const abandon = (reason: string, code: number) => {
    if (interrupted) {
      return;
    }
    interrupted = true;
    process.stderr.write(`\nbench: ${reason}; stopping every process it started\n`);
    killAllChildren();
    const exit = () => process.exit(code);
    setTimeout(exit, 10_000).unref();
    pg.stop().then(exit, exit);
  };
  process.on('SIGINT', () => abandon('SIGINT', 130));
  process.on('SIGTERM', () => abandon('SIGTERM', 143));
  const crash = (error: unknown) => abandon(`unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`, 1);
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);

  const rows: Row[] = [];
  const details: Record<string, unknown> = {};
  const failures: Report['failures'] = [];
  try {
    const context: ScenarioContext = {
      plan,
      pg,
      logDir,
      overrides,
      progress,
      detail: (name, value) => (details[name] = value),
      fail(scenario, error) {
        const message = error instanceof Error ? error.message : String(error);
        progress(`${scenario} failed: ${message}`);
        failures.push({ scenario, error: message });
      },
    };
    for (const step of stepsFor(plan)) {
      const names = step.scenarios.filter((name) => plan.scenarios.includes(name)).join(', ');
      progress(`— ${names}`);
      try {
        rows.push(...(await step.run(context)));
      } catch (error) {
        if (interrupted) {
          // abandon() is stopping everything and will exit.
          return new Promise<number>(() => undefined);
        }
        context.fail(names, error);
      }
    }
  } finally {
    killAllChildren();
    if (!interrupted) {
      await pg.stop();
    }
  }

  const report: Report = {
    startedAt,
    seconds: (performance.now() - began) / 1000,
    mode: plan.quick ? 'quick' : 'full',
    scenarios: plan.scenarios,
    machine: describeMachine(pg.description, loadAtStart, REPO_ROOT),
    jetpostOverrides: overrides,
    recipientDomain: plan.recipientDomain,
    rows,
    details,
    failures,
  };
  process.stdout.write(`\n${toMarkdown(report)}\n`);
  const written = await writeReport(report, RESULTS_DIR, plan.record);
  process.stdout.write(`written: ${written.map((file) => path.relative(process.cwd(), file)).join(', ')}\n`);
  return failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    killAllChildren();
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
