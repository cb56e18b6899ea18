// `npm start` runs jetpost from one bundled file instead of through tsx: tsx compiles on the fly
// in a loader thread of its own, which cost about 35 MiB of the service's memory for as long as it
// ran. esbuild bundles src/ in well under a second; the packages stay imports, found in
// node_modules, and the package root (sql/, openapi.yaml) is found by walking up from dist/server.
// Paths are the working directory's, as in the npm script that runs this and then the bundle.
//
// Two files: the entry point, which catches the signals first, and the service it loads afterwards
// (src/bin/jetpost.ts says why they stay apart). They are written under other names and renamed, the
// entry point last, so a second start on the same checkout never runs a half-written bundle.
//
// A Ctrl-C (or SIGTERM, SIGHUP) during the build killed it at once: its `.<pid>.partial` directory
// stayed in dist/server, one more at every interrupted start. The signal now stops the build at its
// next step: the bundle is not renamed into place (a half-renamed pair would run a new service
// under an old entry point), the directory is removed, and the script exits by the signal's code,
// so the `&&` of `npm start` does not run the service. A build that was killed outright (kill -9,
// a power cut) leaves its directory behind: the next build removes those of builds no longer alive.
import { readdirSync, realpathSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { constants } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { build, type BuildOptions } from 'esbuild';

import { isProcessAlive } from '../src/db/process-liveness.js';

/** Where `npm start` runs jetpost.mjs from. */
const SERVER_DIR = 'dist/server';
/** The entry points of src/bin that make the service: bin/jetpost.ts loads bin/service.ts beside it. */
export const SERVICE_ENTRY_POINTS = ['src/bin/service.ts', 'src/bin/jetpost.ts'] as const;

/** Our sources in one ES module per entry point, the packages left as imports. */
export const BUNDLE_OPTIONS = {
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
} as const satisfies BuildOptions;

/** A build's own directory in SERVER_DIR, named by its pid. */
const PARTIAL = /^\.(\d+)\.partial$/;

/** The directories left by builds no longer running (a kill -9): another build's, alive, is left alone. */
async function removeAbandoned(): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(SERVER_DIR);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = PARTIAL.exec(name)?.[1];
    if (pid !== undefined && !isProcessAlive(Number(pid))) {
      await rm(path.join(SERVER_DIR, name), { recursive: true, force: true });
    }
  }
}

/** Builds into a directory of its own, then renames the bundle into place, unless `interrupted()` says a signal came. */
async function buildServer(interrupted: () => NodeJS.Signals | undefined): Promise<void> {
  await removeAbandoned();
  const partial = path.join(SERVER_DIR, `.${process.pid}.partial`);
  await mkdir(partial, { recursive: true });
  try {
    // .mjs: an ES module whatever package.json node finds above dist/server.
    await build({ ...BUNDLE_OPTIONS, entryPoints: [...SERVICE_ENTRY_POINTS], outdir: partial, outExtension: { '.js': '.mjs' } });
    if (interrupted() !== undefined) {
      return;
    }
    // Both, whatever signal comes meanwhile: the pair must match.
    for (const entry of SERVICE_ENTRY_POINTS) {
      const file = `${path.basename(entry, '.ts')}.mjs`;
      await rename(path.join(partial, file), path.join(SERVER_DIR, file));
    }
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}

// Run, not imported (test/support/compiled-bin.ts shares the options); node names the main module by
// its real path. No top-level await: mocha loads the tests through require(), which cannot take one.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  let signal: NodeJS.Signals | undefined;
  for (const caught of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(caught, () => (signal ??= caught));
  }
  const interrupted = () => signal;
  buildServer(interrupted)
    .catch((error: unknown) => {
      // A terminal's Ctrl-C reaches esbuild's own process too, which then fails the build: no error to report.
      if (interrupted() === undefined) {
        // esbuild has printed what it could not build; anything else is said here.
        process.stderr.write(`could not bundle the server: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = 1;
      }
    })
    .finally(() => {
      const stoppedBy = interrupted();
      if (stoppedBy !== undefined) {
        process.stderr.write(`the server's bundle was not built: ${stoppedBy}\n`);
        process.exitCode = 128 + constants.signals[stoppedBy];
      }
    });
}
