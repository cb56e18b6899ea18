// `npm start`'s entry point (and `jetpost serve`'s): catches the signals first (start-signals.ts),
// then loads and runs the service (service.ts). The service is imported by a URL made at run time,
// this file's sibling with this file's extension (.ts under tsx, .js compiled, .mjs bundled): a
// bundler then keeps it a file of its own. Bundled in, its packages would load before this file's
// first line, and a signal meanwhile would end the process without a word.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { answerArguments } from './arguments.js';
import type { runService } from './service.js';
import { catchStartSignals } from './start-signals.js';

const USAGE = `usage: npm start            (the container image: jetpost serve)

jetpost takes its settings from environment variables, not arguments, e.g.
  PORT=4000 DATABASE_URL=postgres://user:password@db:5432/jetpost npm start
docs/configuration.md lists them all. With none set, it runs on an embedded PostgreSQL in ./data and
the Mailjet simulator.

Other commands: npm run admin -- help, npm run mailjet:register-callback -- --help
`;

const exitCode = answerArguments('jetpost', process.argv.slice(2), USAGE);
if (exitCode === undefined) {
  const signals = catchStartSignals();
  const service = new URL(`./service${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url);
  (import(service.href) as Promise<{ runService: typeof runService }>).then(
    (module) => module.runService(signals),
    (error: unknown) => {
      process.stderr.write(`jetpost failed to start: could not load ${fileURLToPath(service)}: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
} else {
  process.exitCode = exitCode;
}
