import { Writable } from 'node:stream';

import { expect } from 'chai';

import { boundedOutput, createLogger, redactText, resolveLogFormat } from '../../src/log.js';
import { capturingLogger } from '../support/log.js';

const JETPOST_KEY = `jp_abcdefghijkl_${'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0-_x'}`;

/** Logs through `write`, then returns the one line written, parsed, and its raw text. */
function logged(write: (log: ReturnType<typeof capturingLogger>['log']) => void): { line: Record<string, unknown>; text: string } {
  const { log, lines } = capturingLogger();
  write(log);
  const written = lines();
  expect(written).to.have.length(1);
  const text = written[0]!;
  return { line: JSON.parse(text) as Record<string, unknown>, text };
}

describe('createLogger', () => {
  it('when a line is logged, then it is one JSON object with level, message, timestamp and fields', () => {
    const { line } = logged((log) => log.info('job accepted', { component: 'consumer', jobId: '42' }));

    expect(line).to.deep.include({ level: 'info', message: 'job accepted', component: 'consumer', jobId: '42' });
    expect(line['timestamp']).to.be.a('string');
  });

  it('when a line is below the logger level, then nothing is written', () => {
    const { log, lines } = capturingLogger('warn');
    log.info('not this');
    log.warn('this');

    expect(lines().map((text) => (JSON.parse(text) as { message: string }).message)).to.deep.equal(['this']);
  });

  it('when fields are named like secrets or message content, then their values are [redacted]', () => {
    const fields = {
      password: 'hunter2',
      apiKey: 'mj-api-key-value',
      api_secret: 'mj-api-secret-value',
      authorization: 'Basic dXNlcjpwYXNz',
      Authorization: 'Bearer something',
      html: '<p>private html body</p>',
      text: 'private text body',
      secret: 'webhook-signing-secret',
      token: 'tok-123',
    };
    const { line, text } = logged((log) => log.info('sending', { component: 'consumer', ...fields }));

    for (const field of Object.keys(fields)) {
      expect(line[field], field).to.equal('[redacted]');
    }
    for (const value of Object.values(fields)) {
      expect(text).not.to.include(value);
    }
    expect(line['component']).to.equal('consumer');
  });

  it('when a jetpost API key appears inside the message text, then it is redacted', () => {
    const { line, text } = logged((log) => log.warn(`rejected key ${JETPOST_KEY} for app 7`));

    expect(text).not.to.include(JETPOST_KEY);
    expect(text).not.to.include('A1b2C3d4E5f6G7h8I9j0');
    expect(line['message']).to.equal('rejected key jp_[redacted] for app 7');
  });

  it('when a URL carries basic-auth credentials, then they are removed and the rest is kept', () => {
    const { line, text } = logged((log) => log.info('callback registered', { url: 'https://user:pass@host.example.com/events' }));

    expect(line['url']).to.equal('https://[redacted]@host.example.com/events');
    expect(text).not.to.include('user:pass');
  });

  it('when a Bearer or Basic value appears in text, then the value is redacted', () => {
    const { line, text } = logged((log) => log.info('got header Bearer xyz and Basic abc=', { header: 'Basic dXNlcjpwYXNz' }));

    expect(line['message']).to.equal('got header Bearer [redacted] and Basic [redacted]');
    expect(line['header']).to.equal('Basic [redacted]');
    expect(text).not.to.include('xyz').and.not.to.include('abc=').and.not.to.include('dXNlcjpwYXNz');
  });

  it('when secrets are nested in objects and arrays, then they are redacted there too', () => {
    const { line, text } = logged((log) =>
      log.info('request', {
        request: { headers: { authorization: 'Bearer nested-token' }, body: { text: 'private' }, urls: ['https://u:p@example.com/x'] },
        app: { name: 'billing', key: JETPOST_KEY },
      }),
    );

    expect(line['request']).to.deep.equal({ headers: { authorization: '[redacted]' }, body: '[redacted]', urls: ['https://[redacted]@example.com/x'] });
    expect(line['app']).to.deep.equal({ name: 'billing', key: '[redacted]' });
    expect(text).not.to.include('nested-token').and.not.to.include('u:p@').and.not.to.include(JETPOST_KEY);
  });

  it('when an Error carries a secret in its message, then the message (and stack) are redacted', () => {
    const error = new Error(`Mailjet call to https://key:secret@api.mailjet.com/v3.1/send failed for ${JETPOST_KEY}`);
    const { line, text } = logged((log) => log.error('send failed', { error }));

    const loggedError = line['error'] as { name: string; message: string; stack: string };
    expect(loggedError.name).to.equal('Error');
    expect(loggedError.message).to.equal('Mailjet call to https://[redacted]@api.mailjet.com/v3.1/send failed for jp_[redacted]');
    expect(loggedError.stack).to.include('Mailjet call to https://[redacted]@');
    expect(text).not.to.include('key:secret').and.not.to.include(JETPOST_KEY);
  });

  it('when an Error is nested inside an object, then it is redacted too', () => {
    const { text } = logged((log) => log.error('send failed', { context: { cause: new Error(`bad auth Bearer ${JETPOST_KEY}`) } }));

    expect(text).not.to.include(JETPOST_KEY);
    expect(text).to.include('bad auth Bearer [redacted]');
  });

  it('when an Error is logged as the meta argument, then its message is redacted', () => {
    const { text } = logged((log) => log.error('send failed', new Error('https://admin:hunter2@db.example.com/jetpost refused')));

    expect(text).not.to.include('hunter2');
  });

  it('when a secret field is nested deeper than 6 levels, then it is still redacted', () => {
    const deep = { a: { b: { c: { d: { e: { f: { g: { h: { password: 'hunter2' } } } } } } } } };
    const { text } = logged((log) => log.info('deep', deep));

    expect(text).not.to.include('hunter2');
  });
});

describe('redactText', () => {
  it('when text holds no secret, then it is unchanged', () => {
    const text = 'job 42 accepted by Mailjet, MessageID 576460765503091475, https://api.mailjet.com/v3.1/send';

    expect(redactText(text)).to.equal(text);
  });

  it('when a URL has a user but no password, then it is left alone', () => {
    expect(redactText('mailto-like https://user@example.com/x')).to.equal('mailto-like https://user@example.com/x');
  });

  it('when a bearer or basic value is written in another case, then it is redacted too', () => {
    expect(redactText('authorization: basic dXNlcjpwYXNz')).to.equal('authorization: basic [redacted]');
    expect(redactText('BEARER abc.def')).to.equal('BEARER [redacted]');
  });

  it('when a postgres URL carries a password, then the credentials are removed', () => {
    expect(redactText('connecting to postgres://jetpost:s3cr3t@db:5432/jetpost')).to.equal('connecting to postgres://[redacted]@db:5432/jetpost');
  });
});

describe('readable log lines (LOG_FORMAT=pretty)', () => {
  it('when a line is logged, then it reads time, level, message and key=value fields, quoting values with spaces', () => {
    const { log, lines } = capturingLogger('info', 'pretty');
    log.info('POST /queue 202', { component: 'http', status: 202, ms: 12.5, app: 'billing', note: 'two words', nested: { a: 1 } });

    const [line] = lines();
    expect(line).to.match(
      /^\d{2}:\d{2}:\d{2}\.\d{3}Z info {2}POST \/queue 202 component=http status=202 ms=12\.5 app=billing note="two words" nested=\{"a":1\}$/,
    );
  });

  it('when secrets are logged, then the readable line redacts them as the JSON one does', () => {
    const { log, lines } = capturingLogger('info', 'pretty');
    log.warn(`rejected ${JETPOST_KEY}`, { password: 'hunter2', url: 'https://user:pass@example.com/events', html: '<p>private</p>' });

    const text = lines().join('\n');
    expect(text).not.to.include(JETPOST_KEY).and.not.to.include('hunter2').and.not.to.include('user:pass').and.not.to.include('private');
    expect(text).to.include('password=[redacted]');
  });

  it('when an Error is logged, then its message is a field and its stack follows, indented', () => {
    const { log, lines } = capturingLogger('info', 'pretty');
    log.error('send failed', { error: new Error('connection refused') });

    const text = lines().join('\n');
    expect(text).to.match(/error send failed error="connection refused"\n {4}Error: connection refused\n {3} +at /);
  });

  it('when LOG_FORMAT is auto, then a terminal gets readable lines and a pipe JSON; json and pretty are kept as asked', () => {
    expect(resolveLogFormat('auto', true)).to.equal('pretty');
    expect(resolveLogFormat('auto', false)).to.equal('json');
    expect(resolveLogFormat('auto', undefined)).to.equal('json');
    expect(resolveLogFormat('json', true)).to.equal('json');
    expect(resolveLogFormat('pretty', false)).to.equal('pretty');
  });

  it('when colour is asked (a terminal), then the level is coloured and the fields dimmed; never without it', () => {
    const chunks: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk.toString('utf8'));
        callback();
      },
    });
    createLogger({ level: 'info', format: 'pretty', colour: true, stream }).warn('slow', { ms: 9 });
    const { log, lines } = capturingLogger('info', 'pretty');
    log.warn('slow', { ms: 9 });

    expect(chunks.join('')).to.include('\u001b[33mwarn \u001b[0m slow \u001b[2mms=9\u001b[0m');
    expect(lines().join('')).not.to.include('\u001b[');
  });

  it('when logged text holds control characters (a terminal escape), then they are written as \\uXXXX, never raw', () => {
    const { log, lines } = capturingLogger('info', 'pretty');
    const escape = '\u001b]0;owned\u0007\u001b[2J\u009b1A';
    log.warn(`bad input ${escape}`, { value: escape, error: new Error(`boom ${escape}`) });

    const text = lines().join('\n');
    // eslint-disable-next-line no-control-regex -- control characters are what must not be there
    expect(text).not.to.match(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(text).to.include('bad input \\u001b]0;owned\\u0007');
    expect(text).to.include('\\u009b1A');
  });
});

describe('boundedOutput (stdout whose reader stopped reading)', () => {
  it('when the output stops taking lines, then at most the bound waits in it, the rest is dropped and counted, and the count is told once it takes lines again', async () => {
    const taken: string[] = [];
    let stuck = true;
    const held: Array<() => void> = [];
    // A pipe whose reader stopped: nothing written is taken until it reads again.
    const out = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _encoding, callback) {
        taken.push(chunk.toString('utf8'));
        if (stuck) {
          held.push(callback);
        } else {
          callback();
        }
      },
    });
    const drops: number[] = [];
    const log = createLogger({ level: 'info', stream: boundedOutput(out, 4096, (lines) => drops.push(lines)) });
    for (let line = 0; line < 1000; line += 1) {
      log.info('a request', { line });
    }
    await new Promise((resolve) => setImmediate(resolve));
    const waitingWhileStuck = out.writableLength;

    stuck = false;
    held.splice(0).forEach((callback) => callback());
    log.info('read again');
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));

    expect(waitingWhileStuck)
      .to.be.above(4096)
      .and.below(4096 + 1024);
    expect(drops).to.have.length(1);
    expect(drops[0]! + taken.length - 1).to.equal(1000);
    expect(taken.at(-1)).to.contain('read again');
  });
});
