// Waiting in the fault scenarios: poll a condition with a budget (never sleep for a guessed time),
// fail at once when a process that must stay alive exits, and say what was last seen on a timeout.
import { describeExit, type ExitStatus, type JetpostProcess } from './jetpost-process.js';

export interface WaitOptions {
  timeoutMs: number;
  /** Between checks (default 50 ms). */
  intervalMs?: number;
  /** What the state was when the wait gave up, for the error message. */
  progress?: () => Promise<string> | string;
  /** Processes that must stay alive meanwhile: the wait fails at once if one exits. */
  watch?: readonly JetpostProcess[];
}

/** Thrown by a check to end the wait at once (e.g. the process it waits for has exited). */
export class WaitAbortedError extends Error {
  override readonly name = 'WaitAbortedError';
}

/**
 * Polls `check` until it returns something other than undefined or false, and returns that. After
 * `timeoutMs` it fails with a message naming what it waited for and the last progress seen.
 */
export async function waitUntil<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, options: WaitOptions): Promise<T> {
  const started = Date.now();
  let lastError: unknown;
  for (;;) {
    for (const child of options.watch ?? []) {
      const exit = child.exitStatus();
      if (exit) {
        throw new WaitAbortedError(`${child.name} (pid ${child.pid}) exited (${describeExit(exit)}) while waiting for ${what}`);
      }
    }
    try {
      const value = await check();
      if (value !== undefined && value !== false) {
        return value;
      }
      lastError = undefined;
    } catch (error) {
      if (error instanceof WaitAbortedError) {
        throw error;
      }
      lastError = error;
    }
    if (Date.now() - started > options.timeoutMs) {
      let progress = '';
      if (options.progress) {
        progress = await Promise.resolve(options.progress()).then(
          (text) => `; last seen: ${text}`,
          (error: unknown) => `; progress unavailable: ${String(error)}`,
        );
      }
      const cause = lastError === undefined ? '' : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out after ${(options.timeoutMs / 1000).toFixed(1)} s waiting for ${what}${progress}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}

export function seconds(fromMs: number): string {
  return `${((Date.now() - fromMs) / 1000).toFixed(1)} s`;
}

/**
 * Waits until GET /readyz answers 200; fails at once if the process exits meanwhile. The default
 * budget holds on a loaded 2-core machine, where a start (migrations included) took 6-7 s.
 */
export async function waitReady(child: JetpostProcess, timeoutMs = 60_000): Promise<void> {
  await waitUntil(
    `${child.name} (pid ${child.pid}) to answer 200 on /readyz`,
    async () => {
      const response = await fetch(`${child.url}/readyz`, { signal: AbortSignal.timeout(2_000) });
      await response.text();
      return response.status === 200;
    },
    { timeoutMs, intervalMs: 100, watch: [child] },
  );
}

/** Waits for the process to exit; fails after `timeoutMs` without killing it (afterEach does). */
export async function waitForExit(child: JetpostProcess, timeoutMs: number): Promise<ExitStatus> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${child.name} (pid ${child.pid}) did not exit within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([child.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
