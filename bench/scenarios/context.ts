// What every scenario is given: the plan, the shared PostgreSQL, where logs go, the user's jetpost
// settings, and where to put progress lines and raw figures.
import type { Plan } from '../plan.js';
import type { BenchPostgres } from '../postgres.js';
import type { Row } from '../report.js';

export interface ScenarioContext {
  readonly plan: Plan;
  readonly pg: BenchPostgres;
  readonly logDir: string;
  /** BENCH_JETPOST_* settings, applied to every jetpost start. */
  readonly overrides: Record<string, string>;
  progress(message: string): void;
  /** Raw figures of a scenario, kept in the JSON file. */
  detail(name: string, value: unknown): void;
  /** A part of a scenario that could not run (a reference that crashed…): listed under the table; the run exits 1. */
  fail(scenario: string, error: unknown): void;
}

export type ScenarioRun = (context: ScenarioContext) => Promise<Row[]>;

export interface BenchMessage {
  from: string;
  to: string;
  subject: string;
  text: string;
}

/**
 * The message every jetpost scenario sends: one recipient at the plan's domain, a short text part
 * (the references send the same, at example.com).
 */
export function benchMessage(plan: Plan, localPart: string): BenchMessage {
  return { from: 'bench@example.com', to: `${localPart}@${plan.recipientDomain}`, subject: 'Bench', text: 'Hello from the benchmark' };
}
