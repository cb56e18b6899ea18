// The service as `npm start` runs it, loaded by bin/jetpost.ts once it has caught the signals: run
// jetpost until SIGTERM or SIGINT (or SIGHUP, SIGUSR2, SIGQUIT), then stop gracefully and exit 0. SIGUSR1 is
// ignored (no debugger opens, below).
//
// The stop is bounded: past SHUTDOWN_TIMEOUT_MS plus FORCE_AFTER_MS the process exits anyway, and a
// second signal makes it exit at once, asking the embedded PostgreSQL to stop first (during the start
// too). A repeat of the first signal within REPEAT_WINDOW_MS is not a second signal: on a terminal's
// Ctrl-C, `npm start` relays the SIGINT its child already got. A signal during the start (or before
// it, while the modules load) stops it at its next step (after initdb, after the migrations); during
// the migrations, the statement they run is cancelled (db/migrate.ts).
//
// Every way out ends with one log line at level info or above, for an operator reading the logs to
// tell a stop from a crash: "jetpost stopped" (what it left behind, if anything), "start-up
// interrupted", "shutdown failed", or a "…exiting now" error.
import { inspect } from 'node:util';

import { ConfigError, loadConfig } from '../config.js';
import { StartupError } from '../domain/errors.js';
import { createStdoutLogger } from '../log.js';
import { type Jetpost, startJetpost } from '../main.js';
import type { StartSignals } from './start-signals.js';

const REPEAT_WINDOW_MS = 2_000;
const FORCE_AFTER_MS = 10_000;

/**
 * Output that can no longer be written must not stop the service. A reader that goes away (`npm start
 * | head`, a log shipper restarting, a parent that closed its pipes) made the next write fail with
 * EPIPE, and a log file on a full disk with ENOSPC (EIO for a terminal gone, EDQUOT, EFBIG alike): an
 * unhandled 'error' event, and jetpost died at once, mid-work, leaving its embedded PostgreSQL
 * running. The service goes on; the stream is done for (Node destroys it) and its lines are lost
 * until a restart. The other stream, if it still writes, says so once.
 */
function outliveFailedOutput(): void {
  for (const [stream, other, name] of [
    [process.stdout, process.stderr, 'stdout'],
    [process.stderr, process.stdout, 'stderr'],
  ] as const) {
    let said = false;
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (!said && error.code !== 'EPIPE' && !other.destroyed) {
        said = true;
        other.write(
          `jetpost: its ${name} cannot be written (${error.code ?? error.message}); jetpost goes on, and its lines there are lost until it is restarted\n`,
        );
      }
    });
  }
}

/** Never rejects: every way out is a log line or a line on stderr, and an exit code. */
export function runService(signals: StartSignals): Promise<void> {
  outliveFailedOutput();
  return run(signals).catch((error: unknown) => {
    // A setting only the database can judge (db/open.ts), as a bad one loadConfig finds.
    if (error instanceof ConfigError) {
      process.stderr.write(`jetpost: ${error.message}\n`);
      process.exit(78);
    }
    if (error instanceof StartupError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`jetpost failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    const cause = error instanceof Error ? error.cause : undefined;
    if (cause) {
      process.stderr.write(`caused by: ${cause instanceof Error ? cause.message : typeof cause === 'string' ? cause : inspect(cause)}\n`);
    }
    process.exit(1);
  });
}

async function run(signals: StartSignals): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`jetpost: ${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  const log = createStdoutLogger(config.logLevel, config.logFormat);
  const deadlineMs = config.consumers.shutdownTimeoutMs;
  let jetpost: Jetpost | undefined = undefined;
  let signalledAt: number | undefined;
  let firstSignal: NodeJS.Signals | undefined;
  const startAborted = new AbortController();
  const exitingNow = new AbortController();

  const exitNow = (message: string, fields: Record<string, unknown>) => {
    log.error(message, { component: 'main', ...fields });
    // The embedded PostgreSQL runs detached: asked to stop, or it would outlive this process.
    exitingNow.abort();
    process.exit(1);
  };
  /** Set when a part failed for good: the stop then exits 1, for a supervisor to start jetpost again. */
  let failure: string | undefined;
  const stopAndExit = (running: Jetpost) => {
    running.stop().then(
      ({ leftBehind }) => {
        const fields = { component: 'main', signal: firstSignal, durationMs: Math.round(performance.now() - (signalledAt ?? performance.now())), leftBehind };
        if (failure !== undefined) {
          log.error(`jetpost stopped because ${failure}; start it again`, { ...fields, failure });
          process.exit(1);
        }
        if (leftBehind.length === 0) {
          log.info('jetpost stopped: every part finished its work', fields);
        } else {
          log.warn(`jetpost stopped, leaving behind: ${leftBehind.join('; ')}`, fields);
        }
        process.exit(0);
      },
      (error: unknown) => {
        log.error('shutdown failed', { component: 'main', error });
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals | undefined) => {
    if (signalledAt === undefined) {
      signalledAt = performance.now();
      firstSignal = signal;
      if (failure === undefined) {
        // Not "a second signal exits at once": a fast second Ctrl-C is taken for npm's relay (above).
        log.info(`shutting down; a second signal, ${REPEAT_WINDOW_MS / 1000} s or more after this one, exits at once`, {
          component: 'main',
          signal,
          deadlineMs,
        });
      } else {
        log.error(`${failure}: jetpost cannot run without it, and stops`, { component: 'main', deadlineMs });
      }
      startAborted.abort(new Error(`${signal} during the start`));
      setTimeout(
        () => exitNow('shutdown did not finish in time; exiting now', { deadlineMs: deadlineMs + FORCE_AFTER_MS }),
        deadlineMs + FORCE_AFTER_MS,
      ).unref();
      if (jetpost) {
        stopAndExit(jetpost);
      }
    } else if (performance.now() - signalledAt >= REPEAT_WINDOW_MS) {
      exitNow('second signal: exiting without finishing the shutdown', { signal });
    }
  };
  // Before the start: a signal during it (or one that came while the modules loaded, handed over
  // now) stops the service at the start's next step. Node's default for SIGHUP, SIGUSR2 and SIGQUIT
  // is to exit at once, mid-batch, leaving the embedded database and the owner file behind: a closed
  // terminal (SIGHUP), a tool's restart signal (SIGUSR2, nodemon's) or nginx's stop signal (SIGQUIT)
  // stops jetpost gracefully instead.
  signals.handle((signal) => {
    if (signal === 'SIGUSR1') {
      // Node opens its inspector (a debugger on 127.0.0.1:9229, which runs any code it is sent) on
      // SIGUSR1, unless the process listens for the signal itself: a stray `kill -USR1` must not open
      // one on a service holding the Mailjet keys. `--disable-sigusr1` would do it from the command
      // line, but only from Node 22.14 and 23.7 (Node 20 refuses to start with it). To debug, start
      // with --inspect.
      log.warn('SIGUSR1 ignored: jetpost opens no debugger on a signal (start node with --inspect for one)', { component: 'main', signal });
    } else {
      onSignal(signal);
    }
  });
  try {
    jetpost = await startJetpost(config, { log, signal: startAborted.signal, exitingNow: exitingNow.signal });
  } catch (error) {
    if (signalledAt !== undefined) {
      // A Ctrl-C during the first start also reaches initdb, which then fails: that is no error to report.
      // What had started is stopped by now (startJetpost undoes it before it throws).
      log.warn('start-up interrupted; what had started is stopped', {
        component: 'main',
        signal: firstSignal,
        durationMs: Math.round(performance.now() - signalledAt),
        error: error instanceof Error ? error.message : String(error),
      });
      process.exit(1);
    }
    throw error;
  }
  if (signalledAt !== undefined) {
    // The signal came after the start's last step: stop what is now up.
    stopAndExit(jetpost);
    return;
  }
  // A part gone for good: the same stop as a signal's, then exit 1 (a supervisor starts jetpost again;
  // without it, /healthz answered 200 for ever while nothing could be stored or sent).
  void jetpost.failed.then((reason) => {
    failure ??= reason;
    // A stop already under way goes on, and then exits 1.
    if (signalledAt === undefined) {
      onSignal(undefined);
    }
  });
  if (jetpost.tryIt !== undefined) {
    // A plain line, not a log field: a JSON string would escape its quotes, and the copy would not run.
    process.stderr.write(`\nTry it (paste into another terminal):\n\n${jetpost.tryIt}\n\n`);
  }
}
