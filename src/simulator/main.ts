/**
 * Runs the Mailjet simulator as its own process, logging JSON lines to stdout:
 *   tsx src/simulator/main.ts --port 4010 --callback-url http://user:pass@127.0.0.1:3000/events
 * SIGINT / SIGTERM close it; the process then ends on its own.
 */
import { parseArgs } from 'node:util';

import { withoutCredentials } from './callbacks.js';
import { toJson } from './json.js';
import { createSimulator, DEFAULT_MAX_MESSAGES } from './server.js';

const USAGE = `Usage: npm run simulator -- [options]   (in the container image: jetpost simulator [options])
  --port <n>               port to listen on (default 4010; 0 = any free port)
  --host <address>         address to bind (default 127.0.0.1)
  --callback-url <url>     where events are POSTed; may embed user:pass@
  --ungrouped              one event per POST (Mailjet Version 1) instead of arrays of up to 1,000
  --flush-interval-ms <n>  how often due events are flushed (default 250)
  --time-scale <n>         divide Mailjet's callback timings: retry every 30 s / n, suspend
                           a URL still failing 24 h / n after its first failure (default 1)
  --monitoring-category <name>  a MonitoringCategory that exists (repeatable; default: any name)
  --untracked              the account does not track opens and clicks by default
  --api-key <key>          with --api-secret: require HTTP Basic auth on the Mailjet routes
  --api-secret <secret>
  --seed <n>               repeat the same ids and fault decisions across runs
  --max-messages <n>       messages kept (default ${DEFAULT_MAX_MESSAGES}); past it the oldest is forgotten,
                           with its events still waiting
  --help`;

function log(message: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${toJson({ time: new Date().toISOString(), component: 'mailjet-simulator', message, ...fields })}\n`);
}

function readInteger(name: string, value: string | undefined): number | undefined {
  if (value === undefined) {
    return undefined;
  }
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 0) {
    throw new RangeError(`--${name} must be a non-negative integer, got "${value}"`);
  }
  return number;
}

function readTimeScale(value: string | undefined): number | undefined {
  if (value === undefined) {
    return undefined;
  }
  const scale = Number(value);
  if (!(Number.isFinite(scale) && scale > 0)) {
    throw new RangeError(`--time-scale must be a positive number, got "${value}"`);
  }
  return scale;
}

async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: '4010' },
      host: { type: 'string', default: '127.0.0.1' },
      'callback-url': { type: 'string' },
      ungrouped: { type: 'boolean', default: false },
      'flush-interval-ms': { type: 'string' },
      'time-scale': { type: 'string' },
      'monitoring-category': { type: 'string', multiple: true },
      untracked: { type: 'boolean', default: false },
      'api-key': { type: 'string' },
      'api-secret': { type: 'string' },
      seed: { type: 'string' },
      'max-messages': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const callbackUrl = values['callback-url'];
  const simulator = createSimulator({
    apiKey: values['api-key'],
    apiSecret: values['api-secret'],
    callbackUrl,
    grouped: !values.ungrouped,
    flushIntervalMs: readInteger('flush-interval-ms', values['flush-interval-ms']),
    timeScale: readTimeScale(values['time-scale']),
    monitoringCategories: values['monitoring-category'],
    accountTracking: values.untracked ? { opens: false, clicks: false } : undefined,
    seed: readInteger('seed', values.seed),
    maxMessages: readInteger('max-messages', values['max-messages']),
    log,
  });
  const url = await simulator.listen(readInteger('port', values.port), values.host);
  log('mailjet simulator listening', { url, callbackUrl: callbackUrl && withoutCredentials(callbackUrl) });
  const stop = (signal: NodeJS.Signals): void => {
    log('stopping', { signal });
    simulator.close().catch((error: unknown) => log('close failed', { error: String(error) }));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  // A bad argument exits 2, as the other commands' do (docs/admin.md); anything else (a port taken) 1.
  const badArgument = error instanceof RangeError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n${badArgument ? `\n${USAGE}\n` : ''}`);
  process.exitCode = badArgument ? 2 : 1;
});
