// JSON log lines through winston. Every line passes through `redact`, so API keys, secrets,
// basic-auth credentials and message bodies cannot reach the output even when a caller slips.
import winston from 'winston';

export type Logger = winston.Logger;

/** Field names whose values are never written: credentials and message content. */
const SECRET_FIELD = /^(authorization|password|secret|api_?key|apikey|api_?secret|key|token|cookie|webhook_secret|html|text|htmlpart|textpart|body|variables|attachments|base64content)$/i;
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

export interface LoggerOptions {
  level: string;
  /** Extra destination (tests capture the output to prove nothing secret is written). */
  stream?: NodeJS.WritableStream;
  silent?: boolean;
}

export function createLogger({ level, stream, silent }: LoggerOptions): Logger {
  return winston.createLogger({
    level,
    silent: silent ?? false,
    format: winston.format.combine(winston.format.timestamp(), redact(), winston.format.json()),
    transports: [stream ? new winston.transports.Stream({ stream }) : new winston.transports.Console()],
  });
}
