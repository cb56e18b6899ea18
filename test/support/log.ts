// Test logs: silent unless TEST_LOG=debug (or another level) is set; capturable for log assertions.
import { Writable } from 'node:stream';

import { createLogger, type LogFormat, type Logger } from '../../src/log.js';

export function testLogger(): Logger {
  const level = process.env['TEST_LOG'];
  return createLogger({ level: level ?? 'error', silent: level === undefined });
}

/** A logger whose every line is kept, for tests that assert on what was (or was not) logged. */
export function capturingLogger(level = 'debug', format: LogFormat = 'json'): { log: Logger; lines: () => string[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { log: createLogger({ level, format, stream }), lines: () => chunks.join('').split('\n').filter(Boolean) };
}
