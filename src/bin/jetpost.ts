// `npm start`: run jetpost until SIGTERM or SIGINT, then stop gracefully and exit 0.
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../log.js';
import { startJetpost } from '../main.js';

async function run(): Promise<void> {
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
  const log = createLogger({ level: config.logLevel });
  const jetpost = await startJetpost(config, { log });
  let signalled = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (signalled) {
      return;
    }
    signalled = true;
    log.info('shutting down', { component: 'main', signal });
    jetpost.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error('shutdown failed', { component: 'main', error });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

run().catch((error: unknown) => {
  process.stderr.write(`jetpost failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause) {
    process.stderr.write(`caused by: ${cause instanceof Error ? cause.message : String(cause)}\n`);
  }
  process.exit(1);
});
