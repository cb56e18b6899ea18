// jetpost as a real child process (src/bin/jetpost.ts, compiled once per run: see compiled-bin.ts),
// configured for the Mailjet simulator of the test process. A process 'exit' hook SIGKILLs any child
// still alive, so a crashed run leaves none behind.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { serveNodeFlags } from '../../../scripts/serve-flags.js';
import type { Simulator } from '../../../src/simulator/server.js';
import { trackOpen } from '../open-resources.js';
import { EVENTS_PASSWORD, EVENTS_USER, SIMULATOR_KEY, SIMULATOR_SECRET } from './simulator.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** Lines of each child's stdout/stderr kept for the failure report. */
export const OUTPUT_LINES = 100;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface JetpostProcess {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** The environment it was started with (jetpost's settings, without PATH and HOME). */
  readonly env: Readonly<Record<string, string>>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitStatus>;
  /** undefined while it runs. */
  exitStatus(): ExitStatus | undefined;
  /** The last lines it wrote on stdout and stderr. */
  output(): string[];
  signal(signal: NodeJS.Signals): void;
  /** Signals its whole process group, as a terminal's Ctrl-C does (needs ownProcessGroup). */
  signalGroup(signal: NodeJS.Signals): void;
  /** SIGKILL (unless it already exited) and wait for the exit. */
  kill(): Promise<ExitStatus>;
  /** Stops reading its stdout and stderr, as a reader that went away (`| head`, a log shipper's restart): its next write fails with EPIPE. */
  closeOutput(): void;
}

export interface JetpostOptions {
  name: string;
  port: number;
  /** A database of the test cluster; undefined: jetpost runs its embedded PostgreSQL (see harness.dataDir). */
  databaseUrl: string | undefined;
  simulator: Simulator;
  /** Overrides of the defaults below (any jetpost variable; '' unsets one). */
  env?: Record<string, string>;
  /** `npm start`, the way an operator runs it, instead of node directly. The pid is then npm's. */
  viaNpmStart?: boolean;
  /** Leader of a process group of its own, as a shell runs a command, so that signalGroup reaches all of it. */
  ownProcessGroup?: boolean;
  /** A file its stdout is written to (`> file`), instead of a pipe the test reads: `/dev/full`, a full disk. */
  stdoutFile?: string;
}

/** The settings every child starts with, unless a scenario overrides them. */
export const JETPOST_DEFAULTS = {
  NODE_ENV: 'test',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  WORKER_CONCURRENCY: '4',
  BATCH_SIZE: '50',
  MAX_ATTEMPTS: '8',
  RETRY_BASE_MS: '100',
  RETRY_MAX_MS: '1000',
  // Short, so the reaper returns the jobs of a killed process within seconds (it runs every LEASE_MS / 4, at least 1 s).
  LEASE_MS: '3000',
  IDLE_CHECK_MS: '1000',
  SHUTDOWN_TIMEOUT_MS: '5000',
  MAILJET_TIMEOUT_MS: '5000',
} as const;

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/** When the test process ends, for whatever reason, no child it started may survive it. */
function installExitHook(): void {
  if (exitHookInstalled) {
    return;
  }
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveChildren) {
      killChild(child, 'SIGKILL');
    }
  });
}

/** Its whole process group when it leads one (so that nothing it started outlives it), else the process. */
function killChild(child: ChildProcess, signal: NodeJS.Signals): void {
  if (groupLeaders.has(child)) {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // The group is empty already.
    }
  } else {
    child.kill(signal);
  }
}

const groupLeaders = new WeakSet<ChildProcess>();

/** `script`: src/bin/jetpost.ts compiled (compiled-bin.ts), so a child's start costs no compilation. */
export function spawnJetpost(options: JetpostOptions, script: string): JetpostProcess {
  installExitHook();
  const simulatorUrl = options.simulator.url;
  if (simulatorUrl === undefined) {
    throw new Error('the simulator is not listening');
  }
  const env: Record<string, string> = {
    ...JETPOST_DEFAULTS,
    PORT: String(options.port),
    ...(options.databaseUrl === undefined ? {} : { DATABASE_URL: options.databaseUrl }),
    DATA_DIR: path.join(os.tmpdir(), `jetpost-faults-data-${options.port}`),
    MAILJET_API_KEY: SIMULATOR_KEY,
    MAILJET_API_SECRET: SIMULATOR_SECRET,
    MAILJET_BASE_URL: simulatorUrl,
    EVENTS_USERNAME: EVENTS_USER,
    EVENTS_PASSWORD: EVENTS_PASSWORD,
    ...options.env,
  };
  // Only what node needs from this process: no DATABASE_URL or other setting leaks in.
  const inherited = Object.fromEntries(['PATH', 'HOME', 'TMPDIR'].flatMap((name) => (process.env[name] ? [[name, process.env[name]!]] : [])));
  // npm start's V8 flags (heap sizing): a fault is tested on the process users run.
  const [command, args] = options.viaNpmStart ? ['npm', ['start', '--silent']] : [process.execPath, ['--enable-source-maps', ...serveNodeFlags(), script]];
  const stdout = options.stdoutFile === undefined ? 'pipe' : openSync(options.stdoutFile, 'w');
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { ...inherited, ...env, ...(options.viaNpmStart ? { npm_config_update_notifier: 'false' } : {}) },
    stdio: ['ignore', stdout, 'pipe'],
    detached: options.ownProcessGroup === true,
  });
  if (typeof stdout === 'number') {
    closeSync(stdout);
  }
  if (child.pid === undefined) {
    throw new Error(`could not start ${options.name}`);
  }
  liveChildren.add(child);
  const untrack = trackOpen(`jetpost child process ${options.name} (pid ${child.pid})`);
  if (options.ownProcessGroup) {
    groupLeaders.add(child);
  }
  const lines: string[] = [];
  const keep = (stream: NodeJS.ReadableStream, label: string) => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(`${label} ${line}`);
      }
      lines.splice(0, Math.max(0, lines.length - OUTPUT_LINES));
    });
  };
  if (child.stdout) {
    keep(child.stdout, `[${options.name} ${child.pid} out]`);
  }
  keep(child.stderr!, `[${options.name} ${child.pid} err]`);
  let status: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      status = { code, signal };
      liveChildren.delete(child);
      untrack();
      resolve(status);
    });
  });
  return {
    name: options.name,
    pid: child.pid,
    port: options.port,
    url: `http://127.0.0.1:${options.port}`,
    env,
    exited,
    exitStatus: () => status,
    output: () => [...lines],
    signal(signal) {
      if (status === undefined) {
        child.kill(signal);
      }
    },
    signalGroup(signal) {
      if (!options.ownProcessGroup) {
        throw new Error(`${options.name} was not started in a process group of its own`);
      }
      process.kill(-child.pid!, signal);
    },
    async kill() {
      // The group too: an `npm start` child, or an orphan of one, must not survive the test.
      killChild(child, 'SIGKILL');
      return exited;
    },
    closeOutput() {
      child.stdout?.destroy();
      child.stderr!.destroy();
    },
  };
}

export function describeExit(status: ExitStatus): string {
  return status.signal ? `signal ${status.signal}` : `code ${status.code}`;
}
