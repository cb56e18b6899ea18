// `npm run admin -- <command>`: operator commands against the database this configuration points
// at (DATABASE_URL, or the embedded PostgreSQL under DATA_DIR, started or adopted for the command).
//
//   apps list | apps create NAME | apps rotate NAME [--revoke-others] | apps revoke NAME PREFIX
//   suppressions list APP [--limit N] | suppressions add APP EMAIL [--note TEXT] | suppressions remove APP EMAIL
//   webhooks set APP URL [--events TYPE,...] [--rotate-secret] | webhooks show APP | webhooks remove APP
//   webhooks rotate-secret APP [--overlap 24h]
//   webhooks deliveries APP [--status pending|delivered|failed] [--limit N] [--before ID] | webhooks redeliver APP DELIVERY_ID
//   jobs list [--status failed] [--app NAME] [--limit N] [--before ID]
//   jobs requeue ID [ID...] [--app NAME] | jobs requeue --all-failed [--app NAME]
import { constants as osConstants } from 'node:os';
import { parseArgs } from 'node:util';

import type { z } from 'zod';

import { ConfigError, loadConfig } from '../config.js';
import { notifyChannels } from '../db/notify.js';
import { openDatabase } from '../db/open.js';
import type { AppWebhook } from '../domain/app.js';
import { AppError, StartupError, ValidationError } from '../domain/errors.js';
import {
  appNameSchema,
  deliveryIdSchema,
  deliveryStatusSchema,
  durationSchema,
  emailSchema,
  jobIdSchema,
  jobStatusSchema,
  keyPrefixSchema,
  pageLimitSchema,
  parseOrThrow,
  secretOverlapSecondsSchema,
  suppressionNoteSchema,
  webhookEventTypesSchema,
  webhookUrlSchema,
} from '../domain/input-schemas.js';
import { CHANGE_TYPES } from '../domain/status-change.js';
import { parseTargetPolicy } from '../domain/target-policy.js';
import { unicodeEscape } from '../domain/unicode-escape.js';
import { createLogger } from '../log.js';
import { type AdminService, createAdminService } from '../services/admin.js';
import { asksForHelp } from './arguments.js';

type ParseArgsOptions = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>;

const USAGE = `usage: npm run admin -- <command>

  apps list
  apps create NAME                      prints the new app's API key (shown once)
  apps rotate NAME [--revoke-others]    a new key; old keys work until revoked
  apps revoke NAME PREFIX
  suppressions list APP [--limit N]
  suppressions add APP EMAIL [--note TEXT]
  suppressions remove APP EMAIL
  webhooks set APP URL [--events TYPE,...] [--rotate-secret]
                                        prints the signing secret; --events: the change types
                                        it receives (${CHANGE_TYPES.join(', ')}), default all
  webhooks show APP
  webhooks rotate-secret APP [--overlap 24h]
                                        a new secret; the old one also signs for the overlap
                                        (0 to 7d, e.g. 0, 30m, 1h, 2d)
  webhooks remove APP
  webhooks deliveries APP [--status pending|delivered|failed] [--limit N] [--before ID]
  webhooks redeliver APP DELIVERY_ID
  jobs list [--status failed] [--app NAME] [--limit N] [--before ID]
  jobs requeue ID [ID...] [--app NAME]
  jobs requeue --all-failed [--app NAME]
`;

class UsageError extends Error {}

/**
 * A command reads its arguments first, and only then gets the database: a usage error is reported
 * (exit 2) without opening it, even when it is unreachable or the embedded one is not running.
 */
type Command = (args: string[]) => (admin: AdminService) => Promise<void>;

/** An argument checked with the same schema as the admin API's field; a bad one is a usage error. */
function argument<T>(schema: z.ZodType<T>, value: unknown, name: string): T {
  try {
    return parseOrThrow(schema, value, name);
  } catch (error) {
    if (error instanceof ValidationError) {
      throw new UsageError(`${name}: ${(error.fields ?? []).map((field) => field.message).join('; ')}`);
    }
    throw error;
  }
}

/** parseArgs, refusing an option given twice: it would keep the last one and drop the other unsaid. */
function parseArguments<const O extends ParseArgsOptions>(args: string[], options: O, allowPositionals = false) {
  const parsed = parseArgs({ args, options, allowPositionals, tokens: true });
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind === 'option') {
      if (seen.has(token.name)) {
        throw new UsageError(`--${token.name} is given more than once`);
      }
      seen.add(token.name);
    }
  }
  return parsed;
}

/**
 * Control characters (an escape sequence, a line break) and bidirectional overrides as \uXXXX: a
 * cell holds text others wrote (Mailjet's error messages and event details, a note), and the
 * operator's terminal must show it, not obey it, and keep one row a line.
 */
function printable(text: string): string {
  return text.replace(/[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu, unicodeEscape);
}

/** Cells are scalars: a date is written as ISO text before it gets here. */
function table(rows: Record<string, string | number | boolean | null>[]): string {
  if (rows.length === 0) {
    return '(none)\n';
  }
  const columns = Object.keys(rows[0]!);
  const cells = rows.map((row) => columns.map((column) => printable(String(row[column] ?? ''))));
  const widths = columns.map((column, i) => Math.max(column.length, ...cells.map((cell) => cell[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((value, i) => value.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns), ...cells.map(line)].join('\n') + '\n';
}

/** After a page of a list paged by id, where the next one starts: the API's `next_before`, as an option. */
function writeOlderPage(what: string, nextBefore: string | null): void {
  if (nextBefore !== null) {
    process.stdout.write(`older ${what} may match: add --before ${nextBefore}\n`);
  }
}

const jobsList: Command = (args) => {
  const { values } = parseArguments(args, {
    status: { type: 'string', default: 'failed' },
    app: { type: 'string' },
    limit: { type: 'string', default: '50' },
    before: { type: 'string' },
  });
  const filter = {
    status: argument(jobStatusSchema, values.status, '--status'),
    appName: values.app === undefined ? undefined : argument(appNameSchema, values.app, '--app'),
    before: values.before === undefined ? undefined : argument(jobIdSchema, values.before, '--before'),
    limit: argument(pageLimitSchema, values.limit, '--limit'),
  };
  return async (admin) => {
    const { jobs, nextBefore } = await admin.listJobs(filter);
    process.stdout.write(
      table(
        jobs.map((job) => ({
          job_id: job.id,
          app: job.appName,
          status: job.status,
          attempts: `${job.attempts}/${job.maxAttempts}`,
          updated_at: job.updatedAt.toISOString(),
          last_error: job.lastError,
        })),
      ),
    );
    // A status other than a queue status is looked for among a window of jobs: a short page is not the end.
    writeOlderPage('jobs', nextBefore);
  };
};

const jobsRequeue: Command = (args) => {
  const { values, positionals } = parseArguments(args, { 'all-failed': { type: 'boolean' }, app: { type: 'string' } }, true);
  const allFailed = values['all-failed'] === true;
  if (allFailed === positionals.length > 0) {
    throw new UsageError('give job ids, or --all-failed');
  }
  const ids = positionals.map((id) => argument(jobIdSchema, id, 'job id'));
  const appName = values.app === undefined ? null : argument(appNameSchema, values.app, '--app');
  return async (admin) => {
    const requeued = await admin.requeueJobs({ ids: allFailed ? null : ids, appName });
    process.stdout.write(`re-queued ${requeued.length} job(s)${requeued.length > 0 ? `: ${requeued.join(', ')}` : ''}\n`);
    const skipped = allFailed ? [] : ids.filter((id) => !requeued.includes(id));
    if (skipped.length > 0) {
      process.stdout.write(`not failed (left alone): ${skipped.join(', ')}\n`);
    }
  };
};

/** Exactly `count` positional arguments, named for the error message. */
function positionals(args: string[], names: string[], options: ParseArgsOptions = {}) {
  const parsed = parseArguments(args, options, true);
  const given = parsed.positionals.length;
  if (given !== names.length) {
    throw new UsageError(`expected ${names.length === 0 ? 'no arguments' : names.join(' ')}, not ${given} argument${given === 1 ? '' : 's'}`);
  }
  return parsed;
}

const appsList: Command = (args) => {
  positionals(args, []);
  return async (admin) => {
    const apps = await admin.listApps();
    process.stdout.write(
      table(
        apps.map((app) => ({
          app: app.name,
          created_at: app.createdAt.toISOString(),
          active_keys: app.keys
            .filter((key) => key.revokedAt === null)
            .map((key) => key.prefix)
            .join(' '),
          revoked_keys: app.keys.filter((key) => key.revokedAt !== null).length,
        })),
      ),
    );
  };
};

const appsCreate: Command = (args) => {
  const name = argument(appNameSchema, positionals(args, ['NAME']).positionals[0], 'NAME');
  return async (admin) => {
    const { key } = await admin.createApp(name);
    process.stdout.write(`app ${name} created. Its API key (shown once, store it now):\n${key}\n`);
  };
};

const appsRotate: Command = (args) => {
  const parsed = positionals(args, ['NAME'], { 'revoke-others': { type: 'boolean' } });
  const name = argument(appNameSchema, parsed.positionals[0], 'NAME');
  return async (admin) => {
    const rotated = await admin.rotateKey(name, parsed.values['revoke-others'] === true);
    process.stdout.write(`new API key for ${rotated.app.name} (shown once):\n${rotated.key}\n`);
    process.stdout.write(rotated.revoked.length > 0 ? `revoked: ${rotated.revoked.join(', ')}\n` : 'older keys keep working until revoked\n');
  };
};

const appsRevoke: Command = (args) => {
  const [name, prefix] = positionals(args, ['NAME', 'PREFIX']).positionals;
  const app = argument(appNameSchema, name, 'NAME');
  const key = argument(keyPrefixSchema, prefix, 'PREFIX');
  return async (admin) => {
    await admin.revokeKey(app, key);
    process.stdout.write(`revoked key ${prefix} of ${name}\n`);
  };
};

const suppressionsList: Command = (args) => {
  const parsed = positionals(args, ['APP'], { limit: { type: 'string', default: '100' } });
  const app = argument(appNameSchema, parsed.positionals[0], 'APP');
  const limit = argument(pageLimitSchema, parsed.values['limit'], '--limit');
  return async (admin) => {
    const rows = await admin.listSuppressions(app, { limit });
    process.stdout.write(table(rows.map((row) => ({ email: row.email, reason: row.reason, since: row.createdAt.toISOString(), detail: row.detail }))));
  };
};

const suppressionsAdd: Command = (args) => {
  const parsed = positionals(args, ['APP', 'EMAIL'], { note: { type: 'string' } });
  const [name, email] = parsed.positionals;
  const note = parsed.values['note'] === undefined ? null : argument(suppressionNoteSchema, parsed.values['note'], '--note');
  const app = argument(appNameSchema, name, 'APP');
  const address = argument(emailSchema, email, 'EMAIL');
  return async (admin) => {
    const added = await admin.addSuppression(app, address, note);
    process.stdout.write(`${added.email} is suppressed for ${name} (${added.reason})\n`);
  };
};

const suppressionsRemove: Command = (args) => {
  const [name, email] = positionals(args, ['APP', 'EMAIL']).positionals;
  const app = argument(appNameSchema, name, 'APP');
  const address = argument(emailSchema, email, 'EMAIL');
  return async (admin) => {
    const removed = await admin.removeSuppression(app, address);
    process.stdout.write(removed ? `${email} removed from ${name}'s suppressions\n` : `${email} was not suppressed for ${name}\n`);
  };
};

/** What `webhooks set|show|rotate-secret` print: the URL, whether it is disabled, the types, and every secret that signs. */
function describeWebhook(name: string, webhook: AppWebhook, secretLabel = 'signing secret'): string {
  const previous = webhook.previousSecrets.map((old) => `previous secret (still signs until ${old.expiresAt.toISOString()}): ${old.secret}\n`);
  const disabled = webhook.disabled ? `DISABLED since ${webhook.disabled.at.toISOString()}: ${webhook.disabled.reason} (webhooks set enables it again)\n` : '';
  const last = webhook.pause?.lastAttempt;
  const paused = webhook.pause
    ? `PAUSED until ${webhook.pause.until.toISOString()} (pause ${webhook.pause.pausesInRow} in a row)${last ? `: last attempt ${last.statusCode ?? 'unanswered'}, ${printable(last.error)}` : ''}; it ends by itself then, or try at once with webhooks redeliver ${name} <delivery id>\n`
    : '';
  return `webhook of ${name}: ${webhook.url}\n${disabled}${paused}event types: ${webhook.eventTypes === null ? 'all' : webhook.eventTypes.join(', ')}\n${secretLabel}: ${webhook.secret}\n${previous.join('')}`;
}

const webhooksSet: Command = (args) => {
  const parsed = positionals(args, ['APP', 'URL'], { 'rotate-secret': { type: 'boolean' }, events: { type: 'string' } });
  const [name, url] = parsed.positionals as [string, string];
  const events = parsed.values['events'] as string | undefined;
  const app = argument(appNameSchema, name, 'APP');
  const settings = {
    url: argument(webhookUrlSchema, url, 'URL'),
    rotateSecret: parsed.values['rotate-secret'] === true,
    eventTypes:
      events === undefined
        ? undefined
        : argument(
            webhookEventTypesSchema,
            events
              .split(',')
              .map((type) => type.trim())
              .filter((type) => type !== ''),
            '--events',
          ),
  };
  return async (admin) => {
    const webhook = await admin.setWebhook(app, settings);
    process.stdout.write(describeWebhook(name, webhook, 'signing secret (give it to the receiving app)'));
  };
};

const webhooksShow: Command = (args) => {
  const name = argument(appNameSchema, positionals(args, ['APP']).positionals[0], 'APP');
  return async (admin) => {
    process.stdout.write(describeWebhook(name, await admin.getWebhook(name)));
  };
};

const webhooksRotateSecret: Command = (args) => {
  const parsed = positionals(args, ['APP'], { overlap: { type: 'string', default: '24h' } });
  const name = argument(appNameSchema, parsed.positionals[0], 'APP');
  const overlapSeconds = argument(secretOverlapSecondsSchema, argument(durationSchema, parsed.values['overlap'], '--overlap'), '--overlap');
  return async (admin) => {
    const webhook = await admin.rotateWebhookSecret(name, overlapSeconds);
    process.stdout.write(describeWebhook(name, webhook));
    process.stdout.write(
      overlapSeconds === 0
        ? 'every older secret stopped signing now: give the new one to the receiving app at once\n'
        : 'deliveries carry a signature with each secret above until it expires: give the new one to the receiving app before then\n',
    );
  };
};

const webhooksRemove: Command = (args) => {
  const name = argument(appNameSchema, positionals(args, ['APP']).positionals[0], 'APP');
  return async (admin) => {
    await admin.removeWebhook(name);
    process.stdout.write(`webhook of ${name} removed\n`);
  };
};

const webhooksDeliveries: Command = (args) => {
  const parsed = positionals(args, ['APP'], { status: { type: 'string' }, limit: { type: 'string', default: '50' }, before: { type: 'string' } });
  const status = parsed.values['status'] === undefined ? undefined : argument(deliveryStatusSchema, parsed.values['status'], '--status');
  const before = parsed.values['before'] === undefined ? undefined : argument(deliveryIdSchema, parsed.values['before'], '--before');
  const app = argument(appNameSchema, parsed.positionals[0], 'APP');
  const limit = argument(pageLimitSchema, parsed.values['limit'], '--limit');
  return async (admin) => {
    const { deliveries, nextBefore } = await admin.listDeliveries(app, { status, before, limit });
    process.stdout.write(
      table(
        deliveries.map((row) => ({
          delivery: row.id,
          event: row.changeId,
          job: row.jobId,
          type: row.type,
          status: row.status,
          attempts: row.attempts,
          last_status: row.lastStatusCode,
          last_error: row.lastError,
        })),
      ),
    );
    writeOlderPage('deliveries', nextBefore);
  };
};

const webhooksRedeliver: Command = (args) => {
  const [name, id] = positionals(args, ['APP', 'DELIVERY_ID']).positionals;
  const app = argument(appNameSchema, name, 'APP');
  const delivery = argument(deliveryIdSchema, id, 'DELIVERY_ID');
  return async (admin) => {
    await admin.redeliver(app, delivery);
    process.stdout.write(`delivery ${id} will be posted again\n`);
  };
};

const COMMANDS: Record<string, Command> = {
  'webhooks set': webhooksSet,
  'webhooks show': webhooksShow,
  'webhooks rotate-secret': webhooksRotateSecret,
  'webhooks remove': webhooksRemove,
  'webhooks deliveries': webhooksDeliveries,
  'webhooks redeliver': webhooksRedeliver,
  'apps list': appsList,
  'apps create': appsCreate,
  'apps rotate': appsRotate,
  'apps revoke': appsRevoke,
  'suppressions list': suppressionsList,
  'suppressions add': suppressionsAdd,
  'suppressions remove': suppressionsRemove,
  'jobs list': jobsList,
  'jobs requeue': jobsRequeue,
};

async function run(argv: string[]): Promise<void> {
  // Also after a command (`apps create --help`): refused as an unknown option, it printed the usage as an error.
  if (asksForHelp(argv) || argv.some((arg) => arg === '--help' || arg === '-h')) {
    process.stdout.write(USAGE);
    return;
  }
  const name = argv.slice(0, 2).join(' ');
  const command = COMMANDS[name];
  if (!command) {
    throw new UsageError(argv.length === 0 ? 'no command given' : `unknown command: ${name}`);
  }
  const execute = command(argv.slice(2));
  const config = loadConfig();
  // Only warnings and errors: the command's own output is the point.
  const log = createLogger({ level: 'warn' });
  // A running jetpost's embedded database is borrowed, never stopped by a command.
  const exiting = new AbortController();
  const opening = openDatabase(config, log, { role: 'command', exitingNow: exiting.signal, signal: exiting.signal });
  // The embedded database runs in a session of its own: on Ctrl-C, stop one this command started,
  // also while it starts (it is then asked to stop at once, and the start gives up), and cancel the
  // migrations' statement or their wait for another replica's lock. A second Ctrl-C gets Node's
  // default: an exit at once.
  const interrupted = (signal: NodeJS.Signals) => {
    exiting.abort();
    void opening
      .then(
        (db) => db.close(),
        () => undefined,
      )
      .finally(() => process.exit(128 + osConstants.signals[signal]));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  // Interrupted, the start's failure is no error to report: the handler above exits.
  const db = await opening.catch((error: unknown) => {
    if (exiting.signal.aborted) {
      return new Promise<never>(() => undefined);
    }
    throw error;
  });
  try {
    await execute(
      createAdminService({ pool: db.pool, channels: notifyChannels(config.database.schema), targetPolicy: parseTargetPolicy(config.webhooks.allowedTargets) }),
    );
  } finally {
    await db.close();
  }
}

run(process.argv.slice(2)).catch((error: unknown) => {
  // Bad or missing settings: EX_CONFIG (78), as the service itself and `jetpost health` exit.
  if (error instanceof ConfigError) {
    process.stderr.write(`admin: ${error.message}\n`);
    process.exit(78);
  }
  if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    // The reason may repeat the argument as given (an unknown command or option): its escapes written out.
    // Node's own reasons put a line break between their sentences, which would be written out too.
    const reason = (error as Error).message.replace(/([.?])\n(?=[A-Z])/g, '$1 ');
    process.stderr.write(`${printable(reason)}\n\n${USAGE}`);
    process.exit(2);
  }
  if (error instanceof AppError || error instanceof StartupError) {
    // A refusal the operator can act on (unknown app, name taken, no such schema…): no stack, exit 1.
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`admin command failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
