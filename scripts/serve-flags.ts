// The service's Node flags (docs/deployment.md, "Memory") have one definition: `npm start`'s script
// in package.json, which is what operators run. The fault harness starts jetpost with these, so
// faults test the heap users get; `npm run start:prod` and bin/jetpost carry the same, and a test
// (test/unit/serve-flags.test.ts) keeps them equal.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_JSON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'package.json');

/** The flags `npm start` gives the node that serves: what its script's `exec node` has before the bundle. */
export function serveNodeFlags(startScript = readStartScript()): string[] {
  const served = /exec node ((?:--\S+ )*)dist\/server\/jetpost\.mjs/.exec(startScript);
  if (served === null) {
    throw new Error(`npm start's script does not end with "exec node [flags] dist/server/jetpost.mjs": ${startScript}`);
  }
  return served[1]!.split(' ').filter((flag) => flag !== '');
}

function readStartScript(): string {
  return (JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { scripts: { start: string } }).scripts.start;
}
