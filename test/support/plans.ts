// Running a repo's statements under EXPLAIN (ANALYZE, BUFFERS): the repo function is called with a
// Queryable that explains each statement instead of answering it, and the plans are kept.
import { expect } from 'chai';

import type { PreparedStatement, Queryable } from '../../src/db/pool.js';

export interface PlanNode {
  'Node Type': string;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

export function nodesOf(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(nodesOf)];
}

export interface PlanRun {
  nodes: PlanNode[];
  /** Pages read or found in shared buffers, by the whole statement. */
  pages: number;
}

/** The plan as a line of its nodes (type, relation, index), for a failing assertion's message. */
export function planShape(nodes: readonly PlanNode[]): string {
  return JSON.stringify(nodes.map((node) => [node['Node Type'], node['Relation Name'], node['Index Name']].filter(Boolean)));
}

/** A Queryable that runs each statement under EXPLAIN (ANALYZE, BUFFERS) and keeps the plans (the repos then see no rows). */
export function planner(db: Queryable): { db: Queryable; runs: PlanRun[] } {
  const runs: PlanRun[] = [];
  return {
    runs,
    db: {
      query: (async (text: string | PreparedStatement, values?: unknown[]) => {
        const result = await db.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
          `explain (analyze, buffers, format json) ${typeof text === 'string' ? text : text.text}`,
          values,
        );
        const plan = result.rows[0]!['QUERY PLAN'][0]!.Plan;
        runs.push({ nodes: nodesOf(plan), pages: (plan['Shared Hit Blocks'] ?? 0) + (plan['Shared Read Blocks'] ?? 0) });
        return { ...result, rows: [], rowCount: 0 };
      }) as Queryable['query'],
    },
  };
}

/**
 * Runs `run` on a Queryable that explains its statements: each must read no table of `bigTables`
 * sequentially and touch at most `pageBudget` pages (a plan walking a whole index fails too).
 */
export async function expectBoundedReads(
  db: Queryable,
  run: (db: Queryable) => Promise<unknown>,
  bigTables: ReadonlySet<string>,
  pageBudget: number,
): Promise<void> {
  const { db: explaining, runs } = planner(db);
  await run(explaining);
  expect(runs.length, 'statements run').to.be.above(0);
  for (const { nodes, pages } of runs) {
    const shape = planShape(nodes);
    const scans = nodes.filter((node) => node['Node Type'] === 'Seq Scan' && bigTables.has(node['Relation Name'] ?? ''));
    expect(
      scans.map((node) => node['Relation Name']),
      shape,
    ).to.deep.equal([]);
    expect(pages, `pages touched by ${shape}`).to.be.at.most(pageBudget);
  }
}
