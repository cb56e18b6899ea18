// CPU time and memory of processes, read from Linux's /proc (undefined elsewhere, and for a
// process that is gone), so that each system's cost is measured apart from the load generator.
import fs from 'node:fs';

/** USER_HZ: /proc counts CPU time in these ticks; 100 on every Linux the bench targets. */
const TICKS_PER_SECOND = 100;

interface ProcStat {
  ppid: number;
  /** This process's user + system CPU seconds, plus those of the children it has waited for. */
  cpuSeconds: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: fields are counted after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const tick = (index: number) => Number(fields[index] ?? 0);
  // After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
  return { ppid: tick(1), cpuSeconds: (tick(11) + tick(12) + tick(13) + tick(14)) / TICKS_PER_SECOND };
}

/** CPU seconds used so far by the process and the children it has reaped. */
export function processCpuSeconds(pid: number): number | undefined {
  return readStat(pid)?.cpuSeconds;
}

/**
 * CPU seconds of a PostgreSQL server: the postmaster (whose reaped backends' time is added to its
 * own) plus its live children. A backend that ends between two readings moves from the second
 * term to the first, so differences between readings stay right.
 */
export function postgresCpuSeconds(postmasterPid: number): number | undefined {
  const postmaster = readStat(postmasterPid);
  if (postmaster === undefined) {
    return undefined;
  }
  let total = postmaster.cpuSeconds;
  for (const entry of fs.readdirSync('/proc')) {
    if (/^\d+$/.test(entry)) {
      const stat = readStat(Number(entry));
      if (stat?.ppid === postmasterPid) {
        total += stat.cpuSeconds;
      }
    }
  }
  return total;
}

function statusBytes(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The highest resident set size the process has had (VmHWM), in bytes. */
export function peakRssBytes(pid: number): number | undefined {
  return statusBytes(pid, 'VmHWM');
}

/** The process's resident set size now (VmRSS), in bytes. */
export function rssBytes(pid: number): number | undefined {
  return statusBytes(pid, 'VmRSS');
}

/** Sums CPU seconds over a window: start() takes the first reading, stop() the difference. */
export function cpuMeter(read: () => number | undefined): { stop(): number | undefined } {
  const start = read();
  return {
    stop() {
      const end = read();
      return start === undefined || end === undefined ? undefined : end - start;
    },
  };
}
