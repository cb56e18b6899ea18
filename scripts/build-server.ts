// `npm start` runs jetpost from one bundled file instead of through tsx: tsx compiles on the fly
// in a loader thread of its own, which cost about 35 MiB of the service's memory for as long as it
// ran. esbuild bundles src/ in well under a second; the packages stay imports, found in
// node_modules, and the package root (sql/, openapi.yaml) is found by walking up from dist/server.
// Paths are the working directory's, as in the npm script that runs this and then the bundle.
//
// The file is written under another name and renamed, so a second start on the same checkout
// never runs a half-written bundle.
import { realpathSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';

import { build, type BuildOptions } from 'esbuild';

/** What `npm start` runs. */
const SERVER_BUNDLE = 'dist/server/jetpost.mjs';

/** Our sources in one ES module per entry point, the packages left as imports. */
export const BUNDLE_OPTIONS = {
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
} as const satisfies BuildOptions;

async function buildServer(): Promise<void> {
  const partial = `${SERVER_BUNDLE}.${process.pid}.partial`;
  await build({ ...BUNDLE_OPTIONS, entryPoints: ['src/bin/jetpost.ts'], outfile: partial });
  await rename(partial, SERVER_BUNDLE);
}

// Run, not imported (test/support/compiled-bin.ts shares the options); node names the main module by
// its real path. No top-level await: mocha loads the tests through require(), which cannot take one.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  buildServer().catch((error: unknown) => {
    // esbuild has printed what it could not build; anything else is said here.
    process.stderr.write(`could not bundle the server: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
