import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import { ConfigError, estimatedBits, loadConfig, SETTING_NAMES, settingRange } from '../../src/config.js';

const MAILJET = { MAILJET_API_KEY: 'mj-key', MAILJET_API_SECRET: 'mj-secret' };
const EVENTS = { EVENTS_USERNAME: 'mailjet', EVENTS_PASSWORD: 'callback-secret-4f9c' };
const DATABASE = { DATABASE_URL: 'postgres://jetpost@db.internal:5432/jetpost' };

/** The ConfigError loadConfig throws for `env`. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return error as ConfigError;
  }
  expect.fail(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('when the environment is empty, then it is dev mode with the documented defaults', () => {
    const config = loadConfig({});

    expect(config.env).to.equal('development');
    expect(config.devMode).to.equal(true);
    expect(config.http.port).to.equal(3000);
    expect(config.logLevel).to.equal('info');
    expect(config.database).to.deep.include({ url: undefined, schema: 'jetpost' });
    expect(config.mailjet.credentials).to.equal(undefined);
    expect(config.events.credentials).to.equal(undefined);
    expect(config.consumers).to.deep.include({ concurrency: 16, batchSize: 50 });
    expect(config.mailjet).to.deep.include({ callsPerSecond: 0, maxInFlight: 16 });
    expect(config.retry).to.deep.equal({ maxAttempts: 8, baseMs: 5000, factor: 2, maxMs: 3_600_000, jitter: 0.25, lookUpWindowMs: 86_400_000 });
    expect(config.database.timeouts).to.deep.equal({ connectMs: 2000, statementMs: 2000, bulkStatementMs: 60_000 });
    expect(config.http.bodyPace).to.deep.equal({ idleMs: 30_000, minBytesPerSecond: 1_024, windowMs: 5_000 });
  });

  it('when no retention is set, then history is kept 30 days (jobs, rejected events), 7 days (unmatched events) and 24 hours (idempotency keys), pruned every 10 minutes in batches of 1,000', () => {
    const day = 24 * 3_600_000;
    expect(loadConfig({}).retention).to.deep.equal({
      jobsMs: 30 * day,
      idempotencyKeysMs: day,
      unmatchedEventsMs: 7 * day,
      rejectedEventsMs: 30 * day,
      intervalMs: 600_000,
      batchSize: 1_000,
    });
    expect(loadConfig({ RETENTION_JOBS_DAYS: '0', RETENTION_IDEMPOTENCY_KEYS_HOURS: '0', RETENTION_UNMATCHED_EVENTS_DAYS: '0.5' }).retention).to.deep.include({
      jobsMs: 0,
      idempotencyKeysMs: 0,
      unmatchedEventsMs: day / 2,
    });
  });

  it('when idempotency keys would outlive the jobs they answer with, or a retention is negative, then it fails naming the variable', () => {
    expect(configError({ RETENTION_JOBS_DAYS: '1', RETENTION_IDEMPOTENCY_KEYS_HOURS: '25' }).message).to.include('RETENTION_IDEMPOTENCY_KEYS_HOURS');
    expect(configError({ RETENTION_IDEMPOTENCY_KEYS_HOURS: '0' }).message).to.include('RETENTION_IDEMPOTENCY_KEYS_HOURS');
    expect(configError({ RETENTION_REJECTED_EVENTS_DAYS: '-1' }).message).to.include('RETENTION_REJECTED_EVENTS_DAYS');
    expect(configError({ RETENTION_BATCH_SIZE: '1' }).message).to.include('RETENTION_BATCH_SIZE');
  });

  it('when the idempotency keys are kept exactly as long as the jobs, in fractions of a day, then it starts (no rounding makes them longer)', () => {
    for (const [days, hours] of [
      ['0.3', '7.2'],
      ['0.7', '16.8'],
      ['2.3', '55.2'],
      ['30', '720'],
    ]) {
      expect(
        loadConfig({ RETENTION_JOBS_DAYS: days, RETENTION_IDEMPOTENCY_KEYS_HOURS: hours }).retention.idempotencyKeysMs,
        `${days} days, ${hours} hours`,
      ).to.equal(Number(hours) * 3_600_000);
    }
    expect(configError({ RETENTION_JOBS_DAYS: '0.3', RETENTION_IDEMPOTENCY_KEYS_HOURS: '7.21' }).message).to.include('RETENTION_IDEMPOTENCY_KEYS_HOURS');
  });

  it('when values are given as strings, then they are parsed to numbers', () => {
    const config = loadConfig({ PORT: '8080', WORKER_CONCURRENCY: '16', BATCH_SIZE: '20', MAX_ATTEMPTS: '3', RETRY_JITTER: '0', DATABASE_SCHEMA: 'mail_2' });

    expect(config.http.port).to.equal(8080);
    expect(config.consumers).to.deep.include({ concurrency: 16, batchSize: 20 });
    expect(config.retry).to.deep.include({ maxAttempts: 3, jitter: 0 });
    expect(config.database.schema).to.equal('mail_2');
  });

  it('when a value is invalid, then a ConfigError names the variable', () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ PORT: 'abc' }, 'PORT'],
      [{ PORT: '70000' }, 'PORT'],
      [{ WORKER_CONCURRENCY: '-1' }, 'WORKER_CONCURRENCY'],
      [{ BATCH_SIZE: '51' }, 'BATCH_SIZE'],
      [{ MAX_ATTEMPTS: '0' }, 'MAX_ATTEMPTS'],
      [{ RETRY_JITTER: '1.5' }, 'RETRY_JITTER'],
      [{ DATABASE_SCHEMA: 'Bad-Name' }, 'DATABASE_SCHEMA'],
      [{ DATABASE_SCHEMA: 'jetpost; drop schema public' }, 'DATABASE_SCHEMA'],
      [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL'],
      [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
      [{ NODE_ENV: 'staging' }, 'NODE_ENV'],
      [{ DEV_MODE: 'maybe' }, 'DEV_MODE'],
      [{ DATABASE_CONNECT_TIMEOUT_MS: '0' }, 'DATABASE_CONNECT_TIMEOUT_MS'],
      [{ DATABASE_STATEMENT_TIMEOUT_MS: 'soon' }, 'DATABASE_STATEMENT_TIMEOUT_MS'],
      [{ DATABASE_STATEMENT_TIMEOUT_MS: '5000', DATABASE_BULK_STATEMENT_TIMEOUT_MS: '1000' }, 'DATABASE_BULK_STATEMENT_TIMEOUT_MS'],
      // Above Node's requestTimeout (5 minutes), which would always cut the request first.
      [{ HTTP_BODY_IDLE_TIMEOUT_MS: '300001' }, 'HTTP_BODY_IDLE_TIMEOUT_MS'],
      [{ HTTP_BODY_IDLE_TIMEOUT_MS: '-1' }, 'HTTP_BODY_IDLE_TIMEOUT_MS'],
    ];
    for (const [env, variable] of cases) {
      expect(configError(env).message, JSON.stringify(env)).to.include(variable);
    }
  });

  it('when a number, size, URL, address list or host is garbage that a lenient parser would read, then it fails naming the variable rather than start with a value nobody wrote', () => {
    const cases: Array<[Record<string, string>, string]> = [
      // Number() reads these as 16, 1000, 3 and Infinity; bytes.parse reads '1e400' as 1 byte and '64 apples' as 64.
      [{ PORT: '0x10' }, 'PORT: "0x10" is not a whole number from 0 to 65,535'],
      [{ LEASE_MS: '1e3' }, 'LEASE_MS: "1e3" is not a whole number from 1 to 604,800,000'],
      [{ BATCH_SIZE: '0b11' }, 'BATCH_SIZE: "0b11" is not a whole number from 1 to 50'],
      [{ WEBHOOK_TIMEOUT_MS: '1e400' }, 'WEBHOOK_TIMEOUT_MS: "1e400" is not a whole number from 1 to 604,800,000'],
      [{ MAX_ATTEMPTS: '\u0663' }, 'MAX_ATTEMPTS: "\u0663" is not a whole number from 1 to 100'],
      [{ RETRY_JITTER: '0x1' }, 'RETRY_JITTER: "0x1" is not a decimal number from 0 to 1'],
      [{ RETENTION_JOBS_DAYS: '0x1E' }, 'RETENTION_JOBS_DAYS: "0x1E" is not a decimal number from 0 to 36,500'],
      [{ RETENTION_JOBS_DAYS: 'Infinity' }, 'RETENTION_JOBS_DAYS: "Infinity" is not a decimal number from 0 to 36,500'],
      [{ EVENTS_BODY_LIMIT: '1e400' }, 'EVENTS_BODY_LIMIT: "1e400" is not a size'],
      [{ EVENTS_BODY_LIMIT: '64 apples' }, 'EVENTS_BODY_LIMIT: "64 apples" is not a size'],
      [{ QUEUE_BODY_LIMIT: 'garbage' }, 'QUEUE_BODY_LIMIT: "garbage" is not a size'],
      [{ QUEUE_BODY_LIMIT: '-5mb' }, 'QUEUE_BODY_LIMIT: "-5mb" is not a size'],
      [{ QUEUE_BODY_LIMIT: '0' }, 'QUEUE_BODY_LIMIT: "0" is not a size'],
      [
        { QUEUE_BODY_LIMIT: '100000000000000000000' },
        'QUEUE_BODY_LIMIT: "100000000000000000000" is not a size from 1 byte to 536,870,888 bytes (about 512mb, the longest text Node holds)',
      ],
      [{ QUEUE_BODY_LIMIT: '1000000pb' }, 'QUEUE_BODY_LIMIT: "1000000pb" is not a size from 1 byte to 536,870,888 bytes'],
      [{ EVENTS_BODY_LIMIT: '600mb' }, 'EVENTS_BODY_LIMIT: "600mb" is not a size from 1 byte to 536,870,888 bytes'],
      // express would throw these at start, as a stack trace naming no variable.
      [{ TRUST_PROXY: 'beef' }, 'TRUST_PROXY'],
      [{ TRUST_PROXY: '10.0.0.0/33' }, 'TRUST_PROXY'],
      [{ TRUST_PROXY: 'loopback,,' }, 'TRUST_PROXY'],
      [{ WEBHOOK_ALLOWED_TARGETS: '10.0.0.0/99' }, 'WEBHOOK_ALLOWED_TARGETS: "10.0.0.0/99": the prefix length after / must be 0 to 32'],
      [{ WEBHOOK_ALLOWED_TARGETS: 'billing.internal, not a host' }, 'WEBHOOK_ALLOWED_TARGETS: "not a host" is not a host name'],
      [{ WEBHOOK_ALLOWED_TARGETS: 'fd00::/abc' }, 'WEBHOOK_ALLOWED_TARGETS'],
      // From an env file, as written: a directory named ~ (or $HOME) in the working directory.
      [{ DATA_DIR: '~/jetpost-data' }, 'DATA_DIR: "~/jetpost-data" holds ~ or a $variable, which only a shell expands'],
      [{ DATA_DIR: '$HOME/jetpost-data' }, 'DATA_DIR: "$HOME/jetpost-data" holds ~ or a $variable'],
      [{ DATA_DIR: '/srv/${APP}/data' }, 'DATA_DIR: "/srv/${APP}/data" holds ~ or a $variable'],
      [{ DATA_DIR: '/srv/$(APP)/data' }, 'DATA_DIR: "/srv/$(APP)/data" holds ~ or a $variable'],
      [{ DATA_DIR: '~/jetpost-data' }, `it made ${JSON.stringify(path.resolve('~/jetpost-data'))}: if that exists, it holds that jetpost's data`],
      // Taken for host names, these matched no webhook URL: a URL reads 10.1 as 10.0.0.1, and refuses 192.168.1.300.
      [{ WEBHOOK_ALLOWED_TARGETS: 'billing.internal, 192.168.1.300' }, 'WEBHOOK_ALLOWED_TARGETS: "192.168.1.300" is not a whole address'],
      [{ WEBHOOK_ALLOWED_TARGETS: '10.1' }, 'WEBHOOK_ALLOWED_TARGETS: "10.1" is not a whole address'],
      [{ WEBHOOK_ALLOWED_TARGETS: 'hooks.0x0a' }, 'WEBHOOK_ALLOWED_TARGETS: "hooks.0x0a" is not a whole address'],
      [{ HOST: 'not a host' }, 'HOST'],
      [{ MAILJET_BASE_URL: 'file:///etc/passwd' }, 'MAILJET_BASE_URL: an http(s) URL'],
      [{ PUBLIC_URL: 'javascript:alert(1)' }, 'PUBLIC_URL: an http(s) URL'],
      [{ DATABASE_URL: 'http://db.internal/jetpost' }, 'DATABASE_URL: a postgres:// URL'],
    ];
    for (const [env, message] of cases) {
      expect(configError(env).message, JSON.stringify(env)).to.include(message);
    }
  });

  it('when HOST is a mistyped address (numbers and dots that make no IPv4 address), then the start fails naming HOST; addresses and host names pass', () => {
    for (const host of ['999.1.1.1', '10.0.0', '127.1', '1.2.3.4.5', '256.0.0.1', 'a..b', '-host', `${'a'.repeat(64)}.example`]) {
      expect(configError({ HOST: host }).message, host).to.include(`HOST: "${host}" is neither an IP address nor a host name`);
    }
    for (const host of ['0.0.0.0', '::', '127.0.0.1', '::1', 'localhost', 'jetpost-1', 'mail.internal.example', 'localhost.', '10-0-0-1.pod']) {
      expect(loadConfig({ HOST: host }).http.host, host).to.equal(host);
    }
  });

  it('when numbers, sizes and lists are well formed, then they are read as written', () => {
    const config = loadConfig({
      PORT: ' 8080 ',
      RETRY_FACTOR: '1.5',
      RETENTION_JOBS_DAYS: '.5',
      RETENTION_IDEMPOTENCY_KEYS_HOURS: '12',
      QUEUE_BODY_LIMIT: '512kb',
      EVENTS_BODY_LIMIT: '1048576',
      EVENTS_BODY_BUDGET: '1.5 MB',
      TRUST_PROXY: 'loopback, 10.0.0.0/8, 192.168.0.0/255.255.0.0, fd00::/8',
      WEBHOOK_ALLOWED_TARGETS: 'billing.internal, mail_relay, 10.20.0.0/16, fd12::/16, 192.168.1.5',
      HOST: '::',
    });
    expect(config.http).to.deep.include({ port: 8080, host: '::' });
    expect(config.retry.factor).to.equal(1.5);
    expect(config.retention.jobsMs).to.equal(12 * 3600 * 1000);
    expect(config.queueBodyLimit).to.equal('512kb');
    expect(config.events.bodyBudgetBytes).to.equal(1.5 * 1024 * 1024);
    expect(config.trustProxy).to.equal('loopback, 10.0.0.0/8, 192.168.0.0/255.255.0.0, fd00::/8');
  });

  it('when a number or size setting is past its range (0, negative, fractional, 1e400, 0x10, huge), then the start stops naming the setting, the value and the range', () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ EVENTS_BODY_BUDGET: '99999999pb' }, `EVENTS_BODY_BUDGET: "99999999pb" is not a size from EVENTS_BODY_LIMIT to this machine's memory`],
      [
        { EVENTS_BODY_BUDGET: `${os.totalmem() + 1}` },
        `EVENTS_BODY_BUDGET: "${os.totalmem() + 1}" is not a size from EVENTS_BODY_LIMIT to this machine's memory`,
      ],
      [{ PORT: '70000' }, 'PORT: "70000" is not a whole number from 0 to 65,535'],
      [{ PORT: '-1' }, 'PORT: "-1" is not a whole number from 0 to 65,535'],
      [{ DATABASE_POOL_SIZE: '1.5' }, 'DATABASE_POOL_SIZE: "1.5" is not a whole number from 2 to 200'],
      [{ DATABASE_POOL_SIZE: '0' }, 'DATABASE_POOL_SIZE: "0" is not a whole number from 2 to 200'],
      [{ LEASE_MS: '2147483648' }, 'LEASE_MS: "2147483648" is not a whole number from 1 to 604,800,000'],
      [{ RETRY_FACTOR: '1e400' }, 'RETRY_FACTOR: "1e400" is not a decimal number from 1 to 10'],
      [{ RETENTION_JOBS_DAYS: '-1' }, 'RETENTION_JOBS_DAYS: "-1" is not a decimal number from 0 to 36,500'],
      [{ QUEUE_BODY_LIMIT: '0' }, 'QUEUE_BODY_LIMIT: "0" is not a size from 1 byte to 536,870,888 bytes'],
    ];
    for (const [env, line] of cases) {
      expect(configError(env).message, JSON.stringify(env)).to.include(`\n  ${line}`);
    }
  });

  it('then no duration setting reaches 2^31 ms, past which Node runs a timer after 1 ms', () => {
    for (const name of SETTING_NAMES.filter((setting) => setting.endsWith('_MS'))) {
      const range = settingRange(name);
      expect(range, name).to.be.a('string');
      const max = Number(range!.split(' to ')[1]!.replaceAll(',', ''));
      expect(max, name).to.be.below(2 ** 31);
    }
  });

  it('when EVENTS_BODY_BUDGET is unset, then it is EVENTS_BODY_LIMIT; below the limit, or not a size, it fails naming the variable', () => {
    expect(loadConfig({}).events.bodyBudgetBytes).to.equal(64 * 1024 * 1024);
    expect(loadConfig({ EVENTS_BODY_LIMIT: '2kb' }).events.bodyBudgetBytes).to.equal(2048);
    expect(loadConfig({ EVENTS_BODY_BUDGET: '200mb' }).events.bodyBudgetBytes).to.equal(200 * 1024 * 1024);
    expect(configError({ EVENTS_BODY_BUDGET: '32mb' }).message).to.match(
      /EVENTS_BODY_BUDGET: "32mb" is below EVENTS_BODY_LIMIT \(64mb\): it must be a size from EVENTS_BODY_LIMIT to this machine's memory/,
    );
    expect(configError({ EVENTS_BODY_BUDGET: 'lots' }).message).to.include('EVENTS_BODY_BUDGET: "lots" is not a size');
    expect(configError({ EVENTS_BODY_LIMIT: 'big' }).message).to.include('EVENTS_BODY_LIMIT: "big" is not a size');
  });

  it('when QUEUE_BODY_BUDGET is unset, then it is QUEUE_BODY_LIMIT; below the limit, past the memory, or not a size, it fails naming the variable', () => {
    expect(loadConfig({}).queueBodyBudgetBytes).to.equal(20 * 1024 * 1024);
    expect(loadConfig({ QUEUE_BODY_LIMIT: '2kb' }).queueBodyBudgetBytes).to.equal(2048);
    expect(loadConfig({ QUEUE_BODY_BUDGET: '200mb' }).queueBodyBudgetBytes).to.equal(200 * 1024 * 1024);
    expect(configError({ QUEUE_BODY_BUDGET: '10mb' }).message).to.match(
      /QUEUE_BODY_BUDGET: "10mb" is below QUEUE_BODY_LIMIT \(20mb\): it must be a size from QUEUE_BODY_LIMIT to this machine's memory, so that a request at the limit fits/,
    );
    expect(configError({ QUEUE_BODY_LIMIT: '64mb', QUEUE_BODY_BUDGET: '32mb' }).message).to.include(
      'QUEUE_BODY_BUDGET: "32mb" is below QUEUE_BODY_LIMIT (64mb)',
    );
    expect(configError({ QUEUE_BODY_BUDGET: `${os.totalmem() + 1}` }).message).to.include(
      `QUEUE_BODY_BUDGET: "${os.totalmem() + 1}" is not a size from QUEUE_BODY_LIMIT to this machine's memory`,
    );
    expect(configError({ QUEUE_BODY_BUDGET: 'lots' }).message).to.include('QUEUE_BODY_BUDGET: "lots" is not a size');
  });

  it('when a setting of a few words, DATABASE_SCHEMA or TRUST_PROXY is refused, then its line names the value given and what it accepts, as a number’s does', () => {
    const lines = configError({
      LOG_LEVEL: 'INFO',
      LOG_FORMAT: 'text',
      NODE_ENV: 'prod',
      DEV_MODE: 'on',
      EMBEDDED_DATABASE: 'enabled',
      DATABASE_SCHEMA: 'Mail',
      TRUST_PROXY: 'nginx',
    }).message.split('\n');

    expect(lines).to.include.members([
      '  LOG_LEVEL: "INFO" is not one of error, warn, info, http, verbose, debug, silly',
      '  LOG_FORMAT: "text" is not one of auto, json, pretty',
      '  NODE_ENV: "prod" is not one of development, production, test',
      '  DEV_MODE: "on" is not one of true, false, 1, 0, yes, no',
      '  EMBEDDED_DATABASE: "enabled" is not one of true, false, 1, 0, yes, no',
      '  DATABASE_SCHEMA: "Mail" is not a lower-case SQL identifier (a letter a-z or _, then up to 62 of them or digits)',
      '  TRUST_PROXY: "nginx" is not true, false, a hop count, or comma-separated addresses, subnets (10.0.0.0/8) and loopback, linklocal, uniquelocal',
    ]);
  });

  it('when several values are invalid, then every variable is named', () => {
    const { message } = configError({ PORT: 'abc', LOG_LEVEL: 'loud' });

    expect(message).to.include('PORT').and.to.include('LOG_LEVEL');
  });

  it('when NODE_ENV=production misses several settings, then the first refusal names every one of them, not one batch per start', () => {
    const { message } = configError({ NODE_ENV: 'production' });

    expect(message).to.include('MAILJET_API_KEY and MAILJET_API_SECRET: required').and.to.include('DATABASE_URL: required');
    expect(message, 'the callback credentials come in the same refusal').to.include('EVENTS_USERNAME and EVENTS_PASSWORD: required');
  });

  it('when a value is invalid and others are missing or weak, then the refusal names them all, and nothing the invalid value would only seem to cause', () => {
    const lines = configError({
      NODE_ENV: 'production',
      PORT: 'abc',
      SIMULATOR_PORT: '3000',
      ADMIN_API_KEY: 'letmein',
      EVENTS_PASSWORD: '"callback-secret-4f9c"',
    })
      .message.split('\n')
      .map((line) => line.split(':')[0]!.trim());

    expect(lines).to.have.members([
      'invalid configuration',
      'PORT',
      'EVENTS_PASSWORD',
      'MAILJET_API_KEY and MAILJET_API_SECRET',
      'ADMIN_API_KEY',
      'DATABASE_URL',
    ]);
  });

  it('when the Mailjet key is set without its secret (or the reverse), then it fails naming both', () => {
    expect(configError({ MAILJET_API_KEY: 'mj-key', ...EVENTS }).message).to.include('MAILJET_API_SECRET');
    expect(configError({ MAILJET_API_SECRET: 'mj-secret', ...EVENTS }).message).to.include('MAILJET_API_KEY');
  });

  it('when Mailjet keys are set without EVENTS_USERNAME/PASSWORD, then it fails (they protect /events)', () => {
    expect(configError({ ...MAILJET }).message).to.include('EVENTS_USERNAME');
    expect(configError({ ...MAILJET, EVENTS_USERNAME: 'mailjet' }).message).to.include('EVENTS_PASSWORD');
    expect(configError({ ...MAILJET, EVENTS_PASSWORD: 'callback-secret-4f9c' }).message).to.include('EVENTS_USERNAME');
  });

  it('when EVENTS_USERNAME holds a colon, then it fails naming it: basic credentials end the user name at the first colon, and every callback would be refused', () => {
    expect(configError({ ...MAILJET, EVENTS_USERNAME: 'mail:jet', EVENTS_PASSWORD: 'callback-secret-4f9c' }).message).to.include(
      "EVENTS_USERNAME: must not contain ':' (basic credentials end the user name at the first colon, so every callback would be refused)",
    );
    expect(loadConfig({ ...MAILJET, EVENTS_USERNAME: 'mailjet', EVENTS_PASSWORD: 'callback:secret-4f9c' }).events.credentials?.password).to.equal(
      'callback:secret-4f9c',
    );
  });

  it('when Mailjet keys and events credentials are set, then it sends through Mailjet, not in dev mode', () => {
    const config = loadConfig({ ...MAILJET, ...EVENTS });

    expect(config.devMode).to.equal(false);
    expect(config.mailjet.credentials).to.deep.equal({ apiKey: 'mj-key', apiSecret: 'mj-secret' });
    expect(config.events.credentials).to.deep.equal({ username: 'mailjet', password: 'callback-secret-4f9c' });
  });

  it('when NODE_ENV=production has no Mailjet keys, then it fails rather than sending to the simulator', () => {
    expect(configError({ NODE_ENV: 'production', ...EVENTS }).message).to.include('MAILJET_API_KEY');
    expect(configError({ NODE_ENV: 'production', DEV_MODE: 'true' }).message).to.include('NODE_ENV=production');
    expect(loadConfig({ NODE_ENV: 'production', ...DATABASE, ...MAILJET, ...EVENTS }).env).to.equal('production');
  });

  it('when NODE_ENV=production asks for DEV_MODE, then it fails naming DEV_MODE, even with Mailjet keys and events credentials', () => {
    const { message } = configError({ NODE_ENV: 'production', DEV_MODE: 'true', ...MAILJET, ...EVENTS });

    expect(message).to.include('DEV_MODE').and.to.include('NODE_ENV=production');
    expect(loadConfig({ NODE_ENV: 'production', ...DATABASE, DEV_MODE: 'false', ...MAILJET, ...EVENTS }).devMode).to.equal(false);
    // Outside production, dev mode with real Mailjet keys stays possible (a developer trying Mailjet).
    expect(loadConfig({ DEV_MODE: 'true', ...MAILJET, ...EVENTS }).devMode).to.equal(true);
  });

  it('when EVENTS_PASSWORD is short or repetitive, then it fails naming the variable, whatever NODE_ENV', () => {
    for (const NODE_ENV of ['production', 'development']) {
      for (const password of ['x', 'short-password1', 'aaaaaaaaaaaaaaaaaaaa', 'abababababababababab']) {
        const { message } = configError({ NODE_ENV, ...MAILJET, EVENTS_USERNAME: 'mailjet', EVENTS_PASSWORD: password });
        expect(message, `${NODE_ENV} ${password}`).to.include('EVENTS_PASSWORD');
      }
    }
    // 16 random hex or base64 characters, and a passphrase, pass.
    for (const password of ['9f86d081884c7d65', 'q3J8_zk2VbN0xWm5', 'correct horse battery staple']) {
      expect(
        loadConfig({ NODE_ENV: 'production', ...DATABASE, ...MAILJET, EVENTS_USERNAME: 'mailjet', EVENTS_PASSWORD: password }).events.credentials?.password,
      ).to.equal(password);
    }
  });

  it('when ADMIN_API_KEY is short or repetitive, then it fails naming the variable', () => {
    for (const key of ['admin', 'only-23-characters-long', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'adminadminadminadminadmin', 'secretsecretsecretsecret']) {
      const { message } = configError({ NODE_ENV: 'production', ...MAILJET, ...EVENTS, ADMIN_API_KEY: key });
      expect(message, key).to.include('ADMIN_API_KEY');
    }
    const key = 'dGhpcyBpcyBhIHJhbmRvbSBrZXk-7Qx_Zp';
    expect(loadConfig({ NODE_ENV: 'production', ...DATABASE, ...MAILJET, ...EVENTS, ADMIN_API_KEY: key }).adminApiKey).to.equal(key);
  });

  it('when ADMIN_API_KEY_PREVIOUS is set beside ADMIN_API_KEY (a rotation), then both are kept, the previous one read without the line end of the file it came from', () => {
    const key = 'dGhpcyBpcyBhIHJhbmRvbSBrZXk-7Qx_Zp';
    const previous = 'b2xkIGtleSBvZiB0aGUgYWRtaW4gQVBJ-3Rt';
    const config = loadConfig({ ...DATABASE, ...MAILJET, ...EVENTS, ADMIN_API_KEY: key, ADMIN_API_KEY_PREVIOUS: `${previous}\n` });

    expect(config.adminApiKey).to.equal(key);
    expect(config.adminApiKeyPrevious).to.equal(previous);
    expect(
      loadConfig({ ...DATABASE, ...MAILJET, ...EVENTS, ADMIN_API_KEY: key, ADMIN_API_KEY_PREVIOUS: ' \r\n' }).adminApiKeyPrevious,
      'blank is unset',
    ).to.equal(undefined);
  });

  it('when ADMIN_API_KEY_PREVIOUS is weak, the same as ADMIN_API_KEY (line end aside), set alone, or two keys in one, then it fails naming it, its value not shown', () => {
    const key = 'dGhpcyBpcyBhIHJhbmRvbSBrZXk-7Qx_Zp';
    const previous = 'b2xkIGtleSBvZiB0aGUgYWRtaW4gQVBJ-3Rt';
    const cases: Array<[Record<string, string>, string]> = [
      [{ ADMIN_API_KEY: key, ADMIN_API_KEY_PREVIOUS: 'letmein' }, 'ADMIN_API_KEY_PREVIOUS: at least 24 characters'],
      [{ ADMIN_API_KEY: key, ADMIN_API_KEY_PREVIOUS: 'adminadminadminadminadmin' }, 'ADMIN_API_KEY_PREVIOUS: too repetitive'],
      [{ ADMIN_API_KEY: key, ADMIN_API_KEY_PREVIOUS: `${key}\r\n` }, 'ADMIN_API_KEY_PREVIOUS: the same as ADMIN_API_KEY'],
      [{ ADMIN_API_KEY_PREVIOUS: previous }, 'ADMIN_API_KEY_PREVIOUS: only with ADMIN_API_KEY'],
      [{ ADMIN_API_KEY: key, ADMIN_API_KEY_PREVIOUS: `${previous}\n${key}` }, 'ADMIN_API_KEY_PREVIOUS: holds a space or a line break'],
    ];
    for (const [env, expected] of cases) {
      const { message } = configError({ ...DATABASE, ...MAILJET, ...EVENTS, ...env });
      expect(message, expected).to.include(expected);
      expect(message).to.not.include(key).and.not.include(previous).and.not.include('letmein').and.not.include('adminadmin');
    }
  });

  it('when two settings hold the same secret (the admin key as the events password, the previous admin key as the Mailjet secret), then it fails naming both, the value not shown', () => {
    const key = 'dGhpcyBpcyBhIHJhbmRvbSBrZXk-7Qx_Zp';
    const previous = 'b2xkIGtleSBvZiB0aGUgYWRtaW4gQVBJ-3Rt';
    const cases: Array<[Record<string, string>, string]> = [
      [{ ADMIN_API_KEY: key, EVENTS_PASSWORD: key }, 'ADMIN_API_KEY and EVENTS_PASSWORD: the same value'],
      [{ ADMIN_API_KEY: key, MAILJET_API_SECRET: `${key}\n` }, 'ADMIN_API_KEY and MAILJET_API_SECRET: the same value'],
      [{ ADMIN_API_KEY: key, ADMIN_API_KEY_PREVIOUS: previous, MAILJET_API_SECRET: previous }, 'ADMIN_API_KEY_PREVIOUS and MAILJET_API_SECRET: the same value'],
      [{ ADMIN_API_KEY: key, EVENTS_PASSWORD: previous, MAILJET_API_SECRET: previous }, 'EVENTS_PASSWORD and MAILJET_API_SECRET: the same value'],
    ];
    for (const [env, expected] of cases) {
      const { message } = configError({ NODE_ENV: 'production', ...DATABASE, ...MAILJET, ...EVENTS, ...env });
      expect(message, expected).to.include(expected);
      expect(message.match(/: the same value/g), expected).to.have.length(1);
      expect(message).to.not.include(key).and.not.include(previous);
    }
  });

  it('when secrets are weak, then the error does not repeat them', () => {
    const { message } = configError({ ...MAILJET, EVENTS_USERNAME: 'mailjet', EVENTS_PASSWORD: 'hunter2', ADMIN_API_KEY: 'letmein' });

    expect(message).not.to.include('hunter2').and.not.to.include('letmein');
  });

  it("when the estimate of a secret's bits is asked, then repetition scores low and random characters high", () => {
    expect(estimatedBits('')).to.equal(0);
    expect(estimatedBits('a'.repeat(40))).to.equal(0);
    expect(estimatedBits('abababab')).to.equal(8);
    expect(estimatedBits('0123456789abcdef')).to.equal(64);
  });

  it('when a key is blank or whitespace, then it counts as unset', () => {
    const config = loadConfig({ MAILJET_API_KEY: '  ', MAILJET_API_SECRET: '', DATABASE_URL: '' });

    expect(config.mailjet.credentials).to.equal(undefined);
    expect(config.database.url).to.equal(undefined);
    expect(config.devMode).to.equal(true);
  });

  it('when values end in a carriage return or spaces (an env file saved with CRLF), then they are read without them', () => {
    const config = loadConfig({ DATA_DIR: '/app/data\r', DATABASE_SCHEMA: 'mail\r', LOG_LEVEL: ' warn ', NODE_ENV: 'test\r' });

    expect(config.dataDir).to.equal('/app/data');
    expect(config.database.schema).to.equal('mail');
    expect(config.logLevel).to.equal('warn');
    expect(config.env).to.equal('test');
  });

  it('when values are in quotes (KEY="value" in an env file given to docker run --env-file), then each such variable is named, its value not shown, where the keys and DATA_DIR were taken with the quotes', () => {
    let message = '';
    try {
      loadConfig({ MAILJET_API_KEY: '"0123abcd"', MAILJET_API_SECRET: "'s3cr3t-value'", DATA_DIR: '"/app/data"\r', PORT: '"3000"', OTHER_TOOL: '"kept"' });
    } catch (error) {
      message = (error as Error).message;
    }

    expect(message.split('\n')).to.have.members([
      'invalid configuration:',
      ...['MAILJET_API_KEY', 'MAILJET_API_SECRET', 'DATA_DIR', 'PORT'].map(
        (name) => `  ${name}: its value is in quotes, which are taken as part of it: remove them (an env file given to docker run --env-file keeps them)`,
      ),
    ]);
    expect(message).to.not.contain('s3cr3t');
  });

  it('when a numeric variable is set but empty, then it is not silently 0', () => {
    for (const [variable, read] of [
      ['PORT', (config: ReturnType<typeof loadConfig>) => config.http.port],
      ['WORKER_CONCURRENCY', (config: ReturnType<typeof loadConfig>) => config.consumers.concurrency],
    ] as const) {
      let value: number | undefined;
      try {
        value = read(loadConfig({ [variable]: '' }));
      } catch (error) {
        expect(error).to.be.instanceOf(ConfigError);
        expect((error as ConfigError).message).to.include(variable);
      }
      expect(value, variable).not.to.equal(0);
    }
  });

  it('when NODE_ENV=production has no DATABASE_URL, then it fails naming DATABASE_URL and EMBEDDED_DATABASE, unless EMBEDDED_DATABASE=true asks for the embedded one', () => {
    const { message } = configError({ NODE_ENV: 'production', ...MAILJET, ...EVENTS });
    expect(message).to.include('DATABASE_URL: required when NODE_ENV=production').and.to.include('EMBEDDED_DATABASE=true');

    expect(loadConfig({ NODE_ENV: 'production', ...MAILJET, ...EVENTS, EMBEDDED_DATABASE: 'true' }).database.url).to.equal(undefined);
    expect(loadConfig({ NODE_ENV: 'production', ...MAILJET, ...EVENTS, ...DATABASE }).database.url).to.equal(DATABASE.DATABASE_URL);
    // Outside production the embedded database stays the default, and can be refused.
    expect(loadConfig({}).database.url).to.equal(undefined);
    expect(configError({ EMBEDDED_DATABASE: 'false' }).message).to.include('DATABASE_URL: required when EMBEDDED_DATABASE=false');
  });

  it('when EMBEDDED_DATABASE=true comes with a DATABASE_URL, or DATABASE_DIRECT_URL without one, then it fails rather than guess', () => {
    expect(configError({ ...DATABASE, EMBEDDED_DATABASE: 'true' }).message).to.include('EMBEDDED_DATABASE and DATABASE_URL');
    expect(configError({ DATABASE_DIRECT_URL: 'postgres://db.internal/jetpost' }).message).to.include('DATABASE_DIRECT_URL: only with DATABASE_URL');
    expect(configError({ ...DATABASE, DATABASE_DIRECT_URL: 'not a url' }).message).to.include('DATABASE_DIRECT_URL');

    const pooled = loadConfig({ DATABASE_URL: 'postgres://pgbouncer.internal:6432/jetpost', DATABASE_DIRECT_URL: 'postgres://db.internal:5432/jetpost' });
    expect(pooled.database).to.deep.include({ url: 'postgres://pgbouncer.internal:6432/jetpost', directUrl: 'postgres://db.internal:5432/jetpost' });
  });

  it('when two of PORT, SIMULATOR_PORT and EMBEDDED_PG_PORT are the same port on this machine’s loopback, then it fails naming both, rather than fail after initdb and the migrations blaming another program', () => {
    expect(configError({ PORT: '4010', SIMULATOR_PORT: '4010' }).message).to.include(
      'PORT and SIMULATOR_PORT: both 4010, but the built-in simulator listens on 127.0.0.1:4010, where the API (HOST 0.0.0.0) would too. Set one of them to another port',
    );
    expect(configError({ PORT: '5488', HOST: '127.0.0.1' }).message).to.include(
      'PORT and EMBEDDED_PG_PORT: both 5488, but the embedded PostgreSQL listens on 127.0.0.1:5488, where the API (HOST 127.0.0.1) would too. Set one of them to another port',
    );
    expect(configError({ SIMULATOR_PORT: '5488' }).message).to.include(
      'SIMULATOR_PORT and EMBEDDED_PG_PORT: both 5488, but the embedded PostgreSQL listens on 127.0.0.1:5488, where the built-in simulator would too. Set one of them to another port',
    );
    // Nothing of jetpost's own listens there: no simulator with Mailjet (or another simulator), no embedded database with DATABASE_URL, another interface, or any free port.
    expect(loadConfig({ ...MAILJET, ...EVENTS, PORT: '4010' }).http.port).to.equal(4010);
    expect(loadConfig({ MAILJET_BASE_URL: 'http://127.0.0.1:4010', PORT: '4010' }).http.port).to.equal(4010);
    expect(loadConfig({ ...DATABASE, PORT: '5488' }).http.port).to.equal(5488);
    expect(loadConfig({ HOST: '10.0.0.5', PORT: '5488' }).http.port).to.equal(5488);
    expect(loadConfig({ PORT: '0', SIMULATOR_PORT: '0' }).http.port).to.equal(0);
  });

  it('when in dev mode, then webhooks may reach loopback on top of WEBHOOK_ALLOWED_TARGETS; outside it, only the list', () => {
    const dev = loadConfig({ WEBHOOK_ALLOWED_TARGETS: '10.0.0.0/8' });
    const devEmpty = loadConfig({});
    const service = loadConfig({ ...MAILJET, ...EVENTS, WEBHOOK_ALLOWED_TARGETS: '10.0.0.0/8' });

    expect(dev.webhooks.allowedTargets).to.equal('10.0.0.0/8,localhost,127.0.0.0/8,::1');
    expect(devEmpty.webhooks.allowedTargets).to.equal('localhost,127.0.0.0/8,::1');
    expect(service.webhooks.allowedTargets).to.equal('10.0.0.0/8');
  });

  it('when LOG_FORMAT is json, pretty or unset, then it is kept (auto by default); another value names the variable', () => {
    expect(loadConfig({}).logFormat).to.equal('auto');
    expect(loadConfig({ LOG_FORMAT: 'pretty' }).logFormat).to.equal('pretty');
    expect(loadConfig({ LOG_FORMAT: 'json' }).logFormat).to.equal('json');
    expect(configError({ LOG_FORMAT: 'yaml' }).message).to.contain('LOG_FORMAT');
  });

  it('when a config is returned, then it is frozen', () => {
    const config = loadConfig({});

    expect(Object.isFrozen(config)).to.equal(true);
    expect(() => {
      (config as { devMode: boolean }).devMode = false;
    }).to.throw(TypeError);
    expect(config.devMode).to.equal(true);
  });
});
