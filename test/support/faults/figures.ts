// Each scenario reports one line of figures; the lines are printed as a table at the end of the run
// and written to a file under os.tmpdir().
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { FAULT_SCALE } from './scale.js';

const figures: string[][] = [];
let reportRegistered = false;

/**
 * Prints one line of figures for a scenario now (`faults | <scenario> | <figure> | … | <duration>`),
 * and keeps it for the table at the end of the run. The first column names the scenario, the last
 * is its duration.
 */
export function recordFigures(scenario: string, ...figuresAndDuration: string[]): void {
  figures.push([scenario, ...figuresAndDuration]);
  process.stdout.write(`      faults | ${[scenario, ...figuresAndDuration].join(' | ')}\n`);
}

/** One row per scenario, sorted by its label ("1 …", "3b …"): scenario and duration aligned in columns, then the figures. */
export function figuresTable(rows: readonly string[][]): string {
  const sorted = [...rows].sort((a, b) => (a[0] ?? '').localeCompare(b[0] ?? '', 'en', { numeric: true }));
  const table = [['scenario', 'time', 'figures'], ...sorted.map((row) => [row[0] ?? '', row.at(-1) ?? '', row.slice(1, -1).join(' | ')])];
  const scenarioWidth = Math.max(...table.map((row) => row[0]!.length));
  const timeWidth = Math.max(...table.map((row) => row[1]!.length));
  return table.map(([scenario, time, rest]) => `${scenario!.padEnd(scenarioWidth)} | ${time!.padStart(timeWidth)} | ${rest}`).join('\n');
}

/**
 * Registers, once, a root-level after hook that prints the figures of every scenario that ran as a
 * table and writes it to <tmpdir>/jetpost-faults-latest.txt. Call it at the top of each fault file.
 */
export function reportFiguresAfterRun(): void {
  if (reportRegistered) {
    return;
  }
  reportRegistered = true;
  after(() => {
    if (figures.length === 0) {
      return;
    }
    const file = path.join(os.tmpdir(), 'jetpost-faults-latest.txt');
    const text = `jetpost fault suite, FAULT_SCALE=${FAULT_SCALE}, ${new Date().toISOString()}, ${os.cpus().length} CPUs, node ${process.version}\n${figuresTable(figures)}\n`;
    writeFileSync(file, text);
    process.stdout.write(`\n${text}(written to ${file})\n`);
  });
}
