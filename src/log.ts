// Log lines through winston: JSON for machines, or readable `time level message key=value` lines
// for a person at a terminal. Every line passes through `redact` first, so API keys, secrets,
// basic-auth credentials and message bodies cannot reach the output even when a caller slips.
import { Writable } from 'node:stream';

import winston from 'winston';

export type Logger = winston.Logger;

/** Field names whose values are never written: credentials and message content. */
const SECRET_FIELD =
  /^(authorization|password|secret|api_?key|apikey|api_?secret|key|token|cookie|webhook_secret|html|text|htmlpart|textpart|body|variables|attachments|base64content)$/i;
/** jetpost API keys, basic-auth userinfo in URLs, and bearer/basic header values, wherever they appear in text. */
const SECRET_TEXT: ReadonlyArray<[RegExp, string]> = [
  [/jp_[a-z0-9]{12}_[A-Za-z0-9_-]+/g, 'jp_[redacted]'],
  [/(\b[a-z][a-z0-9+.-]*:\/\/)[^\s/@:]+:[^\s/@]+@/gi, '$1[redacted]@'],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9+/=._-]+/gi, '$1 [redacted]'],
];

export function redactText(text: string): string {
  return SECRET_TEXT.reduce((acc, [pattern, replacement]) => acc.replace(pattern, replacement), text);
}

function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') {
    return redactText(value);
  }
  if (value instanceof Error) {
    return { name: value.name, message: redactText(value.message), stack: value.stack && redactText(value.stack) };
  }
  if (value === null || typeof value !== 'object') {
    return value;
  }
  if (depth > 6) {
    // Deeper than any log field jetpost writes: cut rather than risk an unredacted secret.
    return '[truncated]';
  }
  if (Array.isArray(value)) {
    return value.map((item) => redactValue(item, depth + 1));
  }
  const out: Record<string, unknown> = {};
  for (const [field, inner] of Object.entries(value)) {
    out[field] = SECRET_FIELD.test(field) ? '[redacted]' : redactValue(inner, depth + 1);
  }
  return out;
}

const redact = winston.format((info) => {
  for (const field of Object.keys(info)) {
    if (field === 'level') {
      continue;
    }
    info[field] = SECRET_FIELD.test(field) ? '[redacted]' : redactValue(info[field], 0);
  }
  return info;
});

export type LogFormat = 'json' | 'pretty';

/** LOG_FORMAT=auto: readable lines for a person at a terminal, JSON for whatever reads a pipe or a file. */
export function resolveLogFormat(setting: LogFormat | 'auto', isTTY: boolean | undefined): LogFormat {
  return setting === 'auto' ? (isTTY ? 'pretty' : 'json') : setting;
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what this looks for
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Control characters written as `\uXXXX`: text in a log line can come from a caller, and on a
 * terminal an escape sequence in it would be obeyed (move the cursor, rewrite earlier lines…).
 */
function visible(text: string): string {
  return text.replace(CONTROL_CHARACTER, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A field value as it reads after `key=`: bare when it is one plain word, else quoted JSON. */
function prettyValue(value: unknown): string {
  if (typeof value === 'string') {
    return /^[^\s"'=\\]+$/.test(value) && visible(value) === value ? value : visible(JSON.stringify(value));
  }
  if (value instanceof Error || (value !== null && typeof value === 'object' && 'message' in value && 'stack' in value)) {
    return visible(JSON.stringify((value as { message: unknown }).message));
  }
  return visible(typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value));
}

const ANSI = { dim: '\u001b[2m', reset: '\u001b[0m' } as const;
const LEVEL_COLOURS: Record<string, string> = { error: '\u001b[31m', warn: '\u001b[33m', info: '\u001b[32m' };

/**
 * `12:03:04.567Z info  message key=value …`, with an error's stack on the lines below. On a
 * terminal (`colour`), the level is coloured and the fields dimmed, so the message stands out.
 */
function prettyFormat(colour: boolean) {
  const paint = (code: string | undefined, text: string) => (colour && code ? `${code}${text}${ANSI.reset}` : text);
  return winston.format.printf((info) => {
    const { level, message, timestamp, ...fields } = info as Record<string, unknown>;
    const time = typeof timestamp === 'string' ? timestamp.slice(timestamp.indexOf('T') + 1) : '';
    const pairs = Object.entries(fields).map(([field, value]) => `${visible(field)}=${prettyValue(value)}`);
    const stacks = Object.values(fields)
      .map((value) =>
        value !== null && typeof value === 'object' && typeof (value as { stack?: unknown }).stack === 'string'
          ? (value as { stack: string }).stack
          : undefined,
      )
      .filter((stack): stack is string => stack !== undefined)
      .map((stack) => `\n    ${stack.split('\n').map(visible).join('\n    ')}`);
    const head = [time, paint(LEVEL_COLOURS[String(level)], String(level).padEnd(5)), visible(String(message))].filter((part) => part !== '').join(' ');
    return `${head}${pairs.length > 0 ? ` ${paint(ANSI.dim, pairs.join(' '))}` : ''}${stacks.join('')}`;
  });
}

/**
 * Log lines not yet taken by the reader of stdout, at most. A reader that stops reading without going
 * away (a log shipper stuck, `npm start | less` left open) fills the pipe, and Node keeps every later
 * line in memory, about 2 KB each: jetpost grew by 30 MB a 15,000 requests, without end, where it
 * stays flat with a reader.
 */
const MAX_UNREAD_LOG_BYTES = 4 * 1024 * 1024;

/**
 * `out` with at most `maxUnreadBytes` waiting in it: past that a line is dropped, and the number
 * dropped is handed to `dropped` once a line can be written again (after it, in a turn of its own).
 */
export function boundedOutput(out: NodeJS.WritableStream & { writableLength: number }, maxUnreadBytes: number, dropped: (lines: number) => void): Writable {
  let lost = 0;
  return new Writable({
    write(line: Buffer, _encoding, callback) {
      if (out.writableLength > maxUnreadBytes) {
        lost += 1;
      } else {
        out.write(line);
        if (lost > 0) {
          setImmediate(dropped, lost);
          lost = 0;
        }
      }
      callback();
    },
  });
}

/** The service's own logger, on stdout: LOG_FORMAT decides, `auto` by whether stdout is a terminal. */
export function createStdoutLogger(level: string, setting: LogFormat | 'auto'): Logger {
  const terminal = process.stdout.isTTY === true;
  const format = resolveLogFormat(setting, terminal);
  const stream = boundedOutput(process.stdout, MAX_UNREAD_LOG_BYTES, (lines) =>
    log.warn(`${lines} log lines were dropped: nothing read jetpost's output for a while (its pipe was full)`, { component: 'log', dropped: lines }),
  );
  const log = createLogger({ level, format, colour: format === 'pretty' && terminal, stream });
  return log;
}

export interface LoggerOptions {
  level: string;
  /** `json` (the default) or `pretty`: see resolveLogFormat. */
  format?: LogFormat;
  /** Pretty lines for a terminal: ANSI colours. */
  colour?: boolean;
  /** Extra destination (tests capture the output to prove nothing secret is written). */
  stream?: NodeJS.WritableStream;
  silent?: boolean;
}

export function createLogger({ level, format = 'json', colour = false, stream, silent }: LoggerOptions): Logger {
  return winston.createLogger({
    level,
    silent: silent ?? false,
    format: winston.format.combine(winston.format.timestamp(), redact(), format === 'pretty' ? prettyFormat(colour) : winston.format.json()),
    transports: [stream ? new winston.transports.Stream({ stream }) : new winston.transports.Console()],
  });
}
