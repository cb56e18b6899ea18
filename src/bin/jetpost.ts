// `npm start`'s entry point (and `jetpost serve`'s): catches the signals first (start-signals.ts),
// then loads and runs the service (service.ts). The service is imported by a URL made at run time,
// this file's sibling with this file's extension (.ts under tsx, .js compiled, .mjs bundled): a
// bundler then keeps it a file of its own. Bundled in, its packages would load before this file's
// first line, and a signal meanwhile would end the process without a word.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { runService } from './service.js';
import { catchStartSignals } from './start-signals.js';

const signals = catchStartSignals();
const service = new URL(`./service${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url);
(import(service.href) as Promise<{ runService: typeof runService }>).then(
  (module) => module.runService(signals),
  (error: unknown) => {
    process.stderr.write(`jetpost failed to start: could not load ${fileURLToPath(service)}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
