// Child processes of the bench (jetpost, the Mailjet double, the reference runs, the load
// generator): started with their output kept in the run's log folder, their JSON lines read as
// they come, and stopped with SIGTERM (SIGKILL after a grace period). Every child still running is
// stopped when the bench exits, however it exits.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';

export interface Child {
  readonly pid: number;
  /** Resolves the next JSON line on stdout for which `match` is true; rejects if the process ends first. */
  nextLine<T>(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<T>;
  /** Resolves the exit code once the process has ended. */
  readonly exited: Promise<number | null>;
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Folder for `<name>.log` (stdout and stderr). */
  logDir: string;
}

const running = new Set<ChildProcess>();

/** Stops what is still running; the bench calls it on exit and on Ctrl-C. */
export function killAllChildren(): void {
  for (const child of running) {
    child.kill('SIGKILL');
  }
  running.clear();
}

export function startChild(options: StartOptions): Child {
  fs.mkdirSync(options.logDir, { recursive: true });
  const logFile = path.join(options.logDir, `${options.name}.log`);
  const log = fs.createWriteStream(logFile, { flags: 'a' });
  const child = spawn(options.command, options.args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.stderr.pipe(log, { end: false });
  const lines: Array<Record<string, unknown>> = [];
  const listeners = new Set<() => void>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    log.write(`${line}\n`);
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed !== null && typeof parsed === 'object') {
        lines.push(parsed as Record<string, unknown>);
        listeners.forEach((listener) => listener());
      }
    } catch {
      // Not JSON: kept in the log only.
    }
  });
  // 'close' comes after the process has exited and its output has been read to the end.
  let ended = false;
  const exited = new Promise<number | null>((resolve) => {
    const end = (code: number | null) => {
      if (!ended) {
        running.delete(child);
        ended = true;
        listeners.forEach((listener) => listener());
        resolve(code);
      }
    };
    child.once('close', end);
    // It could not be started (or signalled): say so in its log; no 'close' may follow.
    child.once('error', (error) => {
      log.write(`bench: ${error.message}\n`);
      if (child.pid === undefined) {
        end(null);
      }
    });
  });
  const describe = () => `${options.name} (log: ${logFile})`;

  return {
    pid: child.pid ?? -1,
    exited,
    nextLine<T>(match: (line: Record<string, unknown>) => boolean, timeoutMs = 120_000) {
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`${describe()} printed no expected line within ${timeoutMs} ms`)), timeoutMs);
        const finish = (error?: Error, line?: Record<string, unknown>) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (error) {
            reject(error);
          } else {
            resolve(line as T);
          }
        };
        const check = () => {
          const index = lines.findIndex(match);
          if (index >= 0) {
            finish(undefined, lines.splice(index, 1)[0]);
          } else if (ended) {
            finish(new Error(`${describe()} ended with code ${child.exitCode} before printing the expected line`));
          }
        };
        listeners.add(check);
        check();
      });
    },
    async stop(graceMs = 30_000) {
      if (!ended) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      await new Promise((resolve) => log.end(resolve));
    },
  };
}

/** A TCP port free right now on 127.0.0.1 (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
