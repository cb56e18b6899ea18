// Whether the process behind a pid file is still the one that wrote it. A pid alone is not enough:
// after a reboot or in a container the same number comes back for another process (jetpost is
// often pid 1 there), so on Linux the process's start time is compared as well.
import { readFileSync } from 'node:fs';

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * When the process started, in clock ticks since boot (field 22 of /proc/<pid>/stat); undefined
 * where /proc is not available (then the pid alone decides).
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2, the command name, is in parentheses and may hold spaces: count from after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Alive, and not a newer process that was given the same pid. */
export function isSameProcessAlive(pid: number, startTime: string | undefined): boolean {
  if (!isProcessAlive(pid)) {
    return false;
  }
  const current = processStartTime(pid);
  return startTime === undefined || current === undefined || current === startTime;
}
