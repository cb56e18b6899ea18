// What a run measures and how big: BENCH_QUICK=1 for the small version, BENCH_ONLY=a,b for a
// subset of the scenarios, BENCH_RECORD=1 to also rewrite bench/results/latest.md,
// BENCH_RECIPIENT_DOMAIN=bücher.example to send jetpost's messages to another domain (the address
// key of an internationalised domain costs more). The bench reads its environment here only.

export const SCENARIOS = ['queue-single', 'queue-bulk', 'dispatch-0ms', 'dispatch-200ms', 'latency', 'events', 'scale', 'memory'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export const SCENARIO_HELP: Record<Scenario, string> = {
  'queue-single': 'POST /queue, one message per request, 50 connections (autocannon); bare Express 5 + pg beside it',
  'queue-bulk': 'POST /queue, 500 messages per request, 4 posters; graphile-worker addJobs and pg-boss insert beside it',
  'dispatch-0ms': 'queued → accepted at 0 ms Mailjet latency, default settings; graphile-worker and pg-boss draining the same jobs',
  'dispatch-200ms': 'queued → accepted at 200 ms Mailjet latency, default settings',
  latency: 'enqueue → accepted latency at 1,000 messages/s offered (one per request), 200 ms Mailjet latency',
  events: 'POST /events for the drained messages: sent events grouped by 100, then open events grouped by 1,000, 8 posters',
  scale: 'claim, GET /status/{id} and event-apply latency over a small and a large seeded history',
  memory: 'peak RSS of the jetpost process through a large enqueue + drain',
};

export interface Sizes {
  /** Seconds of measured load per system for POST /queue single (after a warm-up of a fifth of it). */
  singleSeconds: number;
  /** Messages enqueued in bulk, drained, and given events (jetpost and each reference). */
  pipelineMessages: number;
  /** Messages drained at 200 ms Mailjet latency. */
  slowMessages: number;
  /** Seconds of steady offered load for the latency scenario. */
  latencySeconds: number;
  /** Jobs of history for the scale scenario. */
  scaleSmall: number;
  scaleLarge: number;
  /** Sequential probes per history size. */
  probes: { claims: number; statuses: number; eventPosts: number };
  memoryMessages: number;
}

const QUICK: Sizes = {
  singleSeconds: 4,
  pipelineMessages: 5_000,
  slowMessages: 2_000,
  latencySeconds: 4,
  scaleSmall: 5_000,
  scaleLarge: 50_000,
  probes: { claims: 15, statuses: 60, eventPosts: 10 },
  memoryMessages: 10_000,
};

const FULL: Sizes = {
  singleSeconds: 20,
  pipelineMessages: 100_000,
  slowMessages: 20_000,
  latencySeconds: 60,
  scaleSmall: 100_000,
  scaleLarge: 10_000_000,
  probes: { claims: 200, statuses: 500, eventPosts: 100 },
  memoryMessages: 1_000_000,
};

export interface Plan {
  quick: boolean;
  record: boolean;
  scenarios: Scenario[];
  sizes: Sizes;
  databaseUrl: string | undefined;
  /** Domain of every recipient jetpost's scenarios enqueue. */
  recipientDomain: string;
}

export const DEFAULT_RECIPIENT_DOMAIN = 'example.com';

export class PlanError extends Error {}

export function readPlan(env: NodeJS.ProcessEnv = process.env): Plan {
  const quick = isOn(env['BENCH_QUICK']);
  const only = (env['BENCH_ONLY'] ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = only.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new PlanError(`BENCH_ONLY: unknown scenario ${unknown.join(', ')}; choose from ${SCENARIOS.join(', ')}`);
  }
  const recipientDomain = env['BENCH_RECIPIENT_DOMAIN'] || DEFAULT_RECIPIENT_DOMAIN;
  // Checked here so that a typo stops the run at once, not as 422s in the middle of it.
  if (!/^[^\s@.]+(\.[^\s@.]+)+$/u.test(recipientDomain)) {
    throw new PlanError(`BENCH_RECIPIENT_DOMAIN: "${recipientDomain}" is not a domain with at least one dot, without spaces or @ (for example bücher.example)`);
  }
  return {
    quick,
    record: isOn(env['BENCH_RECORD']),
    scenarios: only.length === 0 ? [...SCENARIOS] : SCENARIOS.filter((name) => only.includes(name)),
    sizes: quick ? QUICK : FULL,
    databaseUrl: env['DATABASE_URL'] || undefined,
    recipientDomain,
  };
}

/** Bytes the scale scenario's history takes on the PostgreSQL server (about 1.25 GB per million jobs, plus WAL). */
export function historyBytes(plan: Plan): number {
  return plan.scenarios.includes('scale') ? plan.sizes.scaleLarge * 1_500 : 0;
}

function isOn(value: string | undefined): boolean {
  return ['1', 'true', 'yes'].includes((value ?? '').toLowerCase());
}

/**
 * Seconds the plan should take, from jetpost's speed when the suite was written (issue 10's
 * table) and the seeding rate seen on a 2-core machine; a faster jetpost finishes sooner.
 */
export function estimateSeconds(plan: Plan): number {
  const s = plan.sizes;
  const has = (name: Scenario) => plan.scenarios.includes(name);
  const start = 3;
  let total = 5;
  if (has('queue-single')) {
    total += 2 * (s.singleSeconds * 1.2 + start);
  }
  if (has('queue-bulk') || has('dispatch-0ms') || has('events')) {
    total += 2 * start + s.pipelineMessages / 10_000 + s.pipelineMessages / 3_000;
  }
  if (has('queue-bulk') || has('dispatch-0ms')) {
    // graphile-worker and pg-boss: insert, and drain when dispatch is measured.
    total += 2 * start + s.pipelineMessages / 25_000 + (has('dispatch-0ms') ? s.pipelineMessages / 3_000 + s.pipelineMessages / 2_000 : 0);
  }
  if (has('events')) {
    total += (2 * s.pipelineMessages) / 5_000;
  }
  if (has('dispatch-200ms')) {
    total += 2 * start + s.slowMessages / 10_000 + s.slowMessages / 850;
  }
  if (has('latency')) {
    total += start + (s.latencySeconds * 1_000) / 850 + 5;
  }
  if (has('scale')) {
    total += 5 * start + s.scaleLarge / 12_000 + 2 * (s.probes.claims * 0.02 + s.probes.statuses * 0.005 + s.probes.eventPosts * 0.05);
  }
  if (has('memory')) {
    total += start + s.memoryMessages / 3_000;
  }
  return total;
}
