// `npm run mailjet:register-callback [-- [PUBLIC_URL] [--backup URL] [--force]]`: points Mailjet's
// event callbacks (all seven types, grouped) at this jetpost's /events under PUBLIC_URL (its path
// kept), with the EVENTS_USERNAME/EVENTS_PASSWORD basic credentials in the URL; with --backup, also
// registers Mailjet's backup URL for each type. Safe to run again: this jetpost's registrations are
// updated, not duplicated. A registration pointing anywhere else (another system on the same Mailjet
// key) is only overwritten with --force.
import { parseArgs } from 'node:util';

import { ConfigError, loadConfig } from '../config.js';
import { eventsCallbackUrl, sameEndpoint } from '../domain/events-callback.js';
import { redactText } from '../log.js';
import { createMailjetClient } from '../mailjet/client.js';
import { registerEventCallbacks } from '../services/event-callbacks.js';

const USAGE = `usage: npm run mailjet:register-callback [-- [PUBLIC_URL] [--backup URL] [--force]]

  PUBLIC_URL      the base URL Mailjet reaches this jetpost at (default: the PUBLIC_URL setting);
                  its path is kept: https://host/jetpost/ registers https://host/jetpost/events
  --backup URL    also register URL/events as Mailjet's backup callback (used while the primary fails)
  --force         overwrite callback URLs that point somewhere else (another system on this Mailjet key)
`;

class UsageError extends Error {}

function baseUrl(text: string, what: string): URL {
  if (!URL.canParse(text) || !['http:', 'https:'].includes(new URL(text).protocol)) {
    throw new UsageError(`${what} must be an absolute http(s) URL, not ${JSON.stringify(redactText(text))}`);
  }
  return new URL(text);
}

async function run(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { backup: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean' } },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length > 1) {
    throw new UsageError(`one PUBLIC_URL at most, not ${positionals.length} arguments`);
  }
  const config = loadConfig();
  const publicUrl = positionals[0] ?? config.http.publicUrl;
  if (!config.mailjet.credentials || !config.events.credentials || !publicUrl) {
    throw new ConfigError(
      'set MAILJET_API_KEY, MAILJET_API_SECRET, EVENTS_USERNAME, EVENTS_PASSWORD and PUBLIC_URL (or pass the public base URL as an argument)',
    );
  }
  const primary = eventsCallbackUrl(baseUrl(publicUrl, 'PUBLIC_URL'), config.events.credentials);
  const backup = values.backup === undefined ? null : eventsCallbackUrl(baseUrl(values.backup, '--backup'), config.events.credentials);
  if (backup && sameEndpoint(backup.toString(), primary)) {
    throw new UsageError('--backup must differ from PUBLIC_URL: Mailjet falls back to it when the primary fails');
  }
  const mailjet = createMailjetClient({ ...config.mailjet.credentials, baseUrl: config.mailjet.baseUrl, timeoutMs: config.mailjet.timeoutMs });
  const result = await registerEventCallbacks(mailjet, { primary, backup, force: values.force === true });
  if (result.kind === 'refused') {
    process.stderr.write('refused: Mailjet already sends these events to URLs that this jetpost did not set (another system on this Mailjet key?):\n');
    for (const row of result.foreign) {
      process.stderr.write(`  ${row.eventType.padEnd(8)} ${row.isBackup ? 'backup ' : ''}${redactText(row.url)}\n`);
    }
    process.stderr.write(`nothing was changed. To point them at ${redactText(primary.toString())} anyway, run again with --force.\n`);
    return 1;
  }
  for (const { eventType, isBackup, url, action } of result.registrations) {
    process.stdout.write(`${eventType.padEnd(8)} ${isBackup ? 'backup ' : ''}${action} → ${redactText(url.toString())}\n`);
  }
  for (const row of result.overwritten) {
    process.stdout.write(`(--force) replaced ${row.eventType} ${row.isBackup ? 'backup ' : ''}${redactText(row.url)}\n`);
  }
  return 0;
}

run().then(
  (code) => process.exit(code),
  (error: unknown) => {
    // Bad or missing settings: EX_CONFIG (78), as the service itself and `jetpost health` exit.
    if (error instanceof ConfigError) {
      process.stderr.write(`register-callback: ${error.message}\n`);
      process.exit(78);
    }
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
      process.exit(2);
    }
    process.stderr.write(`register-callback failed: ${error instanceof Error ? redactText(error.message) : String(error)}\n`);
    process.exit(1);
  },
);
