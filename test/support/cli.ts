// Runs one of jetpost's command-line entry points (src/bin/*.ts) as a child process: compiled once
// per run (compiled-bin.ts) by default, or through tsx the way `npm run admin` does.
import { type ChildProcess, execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { type BinName, compiledBin } from './compiled-bin.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Per command: a budget for a loaded machine, not an expectation of speed. */
const COMMAND_TIMEOUT_MS = 60_000;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /**
   * `tsx` compiles the TypeScript in the child, as `npm run admin` does: keep it for the test that
   * checks that path, since every such child compiles the whole import graph again.
   */
  runner?: 'compiled' | 'tsx';
  /** Called with the command's process once spawned (to signal it). */
  started?: (child: ChildProcess) => void;
}

export async function runCli(bin: BinName, args: string[], env: Record<string, string>, { runner = 'compiled', started }: CliOptions = {}): Promise<CliResult> {
  const entry = runner === 'tsx' ? ['--import', 'tsx', path.join(ROOT, 'src', 'bin', `${bin}.ts`)] : [await compiledBin(bin)];
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [...entry, ...args],
      { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', NODE_ENV: 'test', ...env }, timeout: COMMAND_TIMEOUT_MS },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        const killed = error?.killed ? `\n[test: killed after ${COMMAND_TIMEOUT_MS / 1000} s]` : '';
        resolve({ code, stdout, stderr: stderr + killed });
      },
    );
    started?.(child);
  });
}
