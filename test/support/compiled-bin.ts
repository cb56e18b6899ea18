// jetpost's command-line entry points (src/bin/*.ts) compiled once per test run, so that a test that
// spawns one pays node's start-up only, not tsx's compilation of the whole import graph in every
// child: on a loaded 2-core machine that cost is what made such tests run out of time.
//
// esbuild bundles our sources into one file per entry point and leaves the packages as imports. The
// files go under node_modules/.cache inside the repository, because the bundle finds node_modules
// and the package root (sql/, openapi.yaml; see src/paths.ts) by walking up from where it lies.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

import { BUNDLE_OPTIONS, SERVICE_ENTRY_POINTS } from '../../scripts/build-server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN_NAMES = ['admin', 'jetpost', 'register-callback'] as const;
export type BinName = (typeof BIN_NAMES)[number];

/** One directory per test process: two runs in the same checkout never share (or delete) files. */
const OUT_DIR = path.join(ROOT, 'node_modules', '.cache', 'jetpost-test-bin', String(process.pid));

let building: Promise<void> | undefined;

function buildOnce(): Promise<void> {
  building ??= build({
    // bin/jetpost.ts loads bin/service.ts beside it (build-server.ts).
    entryPoints: [...new Set([...BIN_NAMES.map((name) => `src/bin/${name}.ts`), ...SERVICE_ENTRY_POINTS])].map((entry) => path.join(ROOT, entry)),
    outdir: OUT_DIR,
    // .mjs: an ES module whatever package.json node finds above node_modules/.cache.
    outExtension: { '.js': '.mjs' },
    ...BUNDLE_OPTIONS,
    sourcemap: 'inline',
    logLevel: 'error',
  }).then(() => {
    process.once('exit', () => rmSync(OUT_DIR, { recursive: true, force: true }));
  });
  return building;
}

/** The path of src/bin/<name>.ts compiled to JavaScript, built on first use; run it with `node`. */
export async function compiledBin(name: BinName): Promise<string> {
  await buildOnce();
  return path.join(OUT_DIR, `${name}.mjs`);
}
