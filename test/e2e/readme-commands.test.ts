// The commands of README.md (and of the docs a newcomer follows from it) run as written, against
// a jetpost started the way `npm start` starts it (dev mode: the built-in simulator, the dev app and
// its key files), in a fresh folder laid out like a checkout. The block conventions (norun,
// background, `# →`) are described in support/doc-blocks.ts. Each document's ports become free ones,
// so that a busy machine's 3000 does not matter; every budget is for a loaded machine, not a speed goal.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';

import { createTestDatabase, freePort, type TestDatabase } from '../support/database.js';
import { outputShows, portsNamed, type ShellBlock, shellBlocks, startSettings, withPorts } from '../support/doc-blocks.js';
import { trackOpen } from '../support/open-resources.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The ports the documents use: jetpost, the built-in simulator, the webhook receiver, a simulator of one's own. */
const DOC_PORTS = [3000, 4010, 8025, 4020];
const START_BUDGET_MS = 180_000;
const BLOCK_BUDGET_MS = 180_000;
const OUTPUT_BUDGET_MS = 120_000;

/** What the test reads of GET /status/{job_id}. */
interface JobReading {
  status: string;
  last_error: string | null;
}

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** A process in a group of its own (bash and what it starts), its output kept. */
function runInBackground(command: string, args: string[], cwd: string, env: Record<string, string>): Running {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const closed = trackOpen(`${command} ${args.join(' ').slice(0, 80)} (pid ${child.pid})`);
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(closed);
  return {
    child,
    output: () => text,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid!, signal);
        } catch {
          // Gone already.
        }
        const killer = setTimeout(() => {
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {
            // Gone already.
          }
        }, 40_000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
}

async function until(what: string, check: () => boolean | Promise<boolean>, budgetMs: number, context: () => string): Promise<void> {
  const deadline = Date.now() + budgetMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${budgetMs / 1000} s\n${context()}`);
    }
    await sleep(200);
  }
}

function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(2_000, () => socket.destroy(new Error('timeout')));
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function bash(script: string, cwd: string, env: Record<string, string>): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd, env, timeout: BLOCK_BUDGET_MS }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

/** A folder laid out like a fresh clone: every top-level entry of the repository linked, without its data/. */
async function checkoutLike(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-readme-'));
  for (const entry of await fs.readdir(ROOT)) {
    if (!['data', '.git'].includes(entry)) {
      await fs.symlink(path.join(ROOT, entry), path.join(dir, entry));
    }
  }
  return dir;
}

class DocRun {
  private readonly ports = new Map<number, number>();
  private readonly background: Array<{ block: ShellBlock; running: Running }> = [];
  private jetpost: Running | undefined;
  private currentSettings: Record<string, string> = {};
  readonly transcript: string[] = [];

  constructor(
    readonly dir: string,
    private readonly db: TestDatabase,
  ) {}

  async init(): Promise<void> {
    for (const port of DOC_PORTS) {
      this.ports.set(port, await freePort());
    }
  }

  /** What every command runs with: the test database, the free ports, nothing else from this process. */
  env(): Record<string, string> {
    const inherited = Object.fromEntries(['PATH', 'HOME', 'TMPDIR'].flatMap((name) => (process.env[name] ? [[name, process.env[name]!]] : [])));
    return {
      ...inherited,
      npm_config_update_notifier: 'false',
      DATABASE_URL: this.db.url,
      // A loaded CI machine can stall a statement for seconds: not what this test is about.
      DATABASE_CONNECT_TIMEOUT_MS: '10000',
      DATABASE_STATEMENT_TIMEOUT_MS: '15000',
      PORT: String(this.ports.get(3000)),
      SIMULATOR_PORT: String(this.ports.get(4010)),
    };
  }

  /**
   * `npm start` in the folder, until it listens: its script, run by sh as npm runs it (it bundles
   * the sources, then execs node on the bundle).
   */
  async start(settings: Record<string, string>): Promise<void> {
    await this.jetpost?.stop();
    const values = Object.fromEntries(Object.entries(settings).map(([name, value]) => [name, withPorts(value, this.ports)]));
    this.currentSettings = settings;
    const { scripts } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
    const jetpost = runInBackground('sh', ['-c', scripts.start], this.dir, { ...this.env(), ...values });
    this.jetpost = jetpost;
    await until(
      'jetpost listening',
      () => {
        if (jetpost.child.exitCode !== null) {
          throw new Error(`jetpost exited with ${jetpost.child.exitCode}:\n${jetpost.output()}`);
        }
        return jetpost.output().includes('jetpost is listening');
      },
      START_BUDGET_MS,
      jetpost.output,
    );
  }

  async runBlocks(doc: string): Promise<ShellBlock[]> {
    const blocks = shellBlocks(await fs.readFile(path.join(ROOT, doc), 'utf8'));
    await this.start({});
    for (const block of blocks) {
      const where = `${doc}:${block.line}`;
      if (block.mode === 'norun') {
        const settings = startSettings(block);
        if (settings !== undefined && JSON.stringify(settings) !== JSON.stringify(this.currentSettings)) {
          await this.start(settings);
        }
        continue;
      }
      const script = withPorts(block.script, this.ports);
      if (block.mode === 'background') {
        const running = runInBackground('bash', ['-c', script], this.dir, this.env());
        this.background.push({ block, running });
        // Like a person who waits for the second terminal's program to be up before going on.
        for (const port of portsNamed(block.script)) {
          await until(`${where}: port ${port} open`, () => accepting(this.ports.get(port)!), OUTPUT_BUDGET_MS, running.output);
        }
        continue;
      }
      const { code, output } = await bash(script, this.dir, this.env());
      this.transcript.push(`$ ${where}\n${output}`);
      expect(code, `${where} exits 0; its output:\n${output}\njetpost:\n${this.jetpost?.output().slice(-4000)}`).to.equal(0);
      for (const text of block.expected) {
        expect(outputShows(output, text), `${where} shows ${text}; its output:\n${output}`).to.equal(true);
      }
    }
    for (const { block, running } of this.background) {
      for (const text of block.expected) {
        await until(
          `${doc}:${block.line} shows ${text}`,
          () => outputShows(running.output(), text),
          OUTPUT_BUDGET_MS,
          () => `${running.output()}\njetpost:\n${this.jetpost?.output().slice(-4000)}`,
        );
      }
    }
    return blocks;
  }

  backgroundOutput(index: number): string {
    return this.background[index]?.running.output() ?? '';
  }

  jetpostOutput(): string {
    return this.jetpost?.output() ?? '';
  }

  url(pathname: string): string {
    return `http://127.0.0.1:${this.ports.get(3000)}${pathname}`;
  }

  async stop(): Promise<void> {
    for (const { running } of this.background.splice(0)) {
      await running.stop();
    }
    await this.jetpost?.stop();
    this.jetpost = undefined;
  }
}

/** The documents' commands need bash and curl, as a newcomer's machine has them. */
const MISSING_TOOLS = ['bash', 'curl'].filter((tool) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0);

describe('the commands of the README and the docs, run as written', function () {
  this.timeout(15 * 60_000);
  let db: TestDatabase | undefined;
  let run: DocRun | undefined;

  before(function () {
    if (MISSING_TOOLS.length > 0) {
      console.warn(`      skipped: ${MISSING_TOOLS.join(' and ')} not installed, and the README's commands use them`);
      this.skip();
    }
  });

  beforeEach(async () => {
    db = await createTestDatabase();
    run = new DocRun(await checkoutLike(), db);
    await run.init();
  });

  afterEach(async () => {
    await run?.stop();
    await db?.drop();
    if (run) {
      await fs.rm(run.dir, { recursive: true, force: true });
    }
    run = undefined;
    db = undefined;
  });

  it('README.md: the first curl, its status, a webhook received by a local receiver, the admin CLI and API', async () => {
    const blocks = await run!.runBlocks('README.md');

    expect(blocks.filter((block) => block.mode === 'run').length).to.be.at.least(4);
    expect(blocks.filter((block) => block.mode === 'background')).to.have.length(1);
    // The receiver got a signed delivery of the second message's changes.
    const received = run!.backgroundOutput(0);
    expect(received).to.match(/"job_id":"2"/);
    // The curl of the start-up banner runs when pasted as printed (port and all: it names the real one).
    const tryIt = /Try it \(paste into another terminal\):\n\n(.+)\n/.exec(run!.jetpostOutput())?.[1];
    expect(tryIt, run!.jetpostOutput()).to.be.a('string');
    const pasted = await bash(tryIt!, run!.dir, run!.env());
    expect(pasted.code, pasted.output).to.equal(0);
    expect(pasted.output).to.include('"status":"queued"');
    // The README quotes the last_error of a message to an address a hard bounce suppressed: bounce it
    // again (the README's own steps lifted the suppression), then send once more and compare.
    const quoted = /ends `failed` with `(suppressed: [^`]+)`/.exec(await fs.readFile(path.join(ROOT, 'README.md'), 'utf8'))?.[1];
    expect(quoted, 'README.md quotes the suppressed last_error').to.be.a('string');
    const key = (await fs.readFile(path.join(run!.dir, 'data', 'dev-api-key'), 'utf8')).trim();
    const queue = async (subject: string): Promise<string> => {
      const answer = await fetch(run!.url('/queue'), {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ from: 'app@example.com', to: 'bounce@example.com', subject, text: 'Hi!' }),
      });
      return ((await answer.json()) as { job_id: string }).job_id;
    };
    const statusOf = async (jobId: string): Promise<JobReading> =>
      (await (await fetch(run!.url(`/status/${jobId}`), { headers: { authorization: `Bearer ${key}` } })).json()) as JobReading;
    const bounced = await queue('Bounce again');
    await until('the second bounce', async () => (await statusOf(bounced)).status === 'bounced', OUTPUT_BUDGET_MS, run!.jetpostOutput);
    const refused = await queue('Once more');
    let last: JobReading = { status: '', last_error: null };
    await until('the suppressed message fails', async () => (last = await statusOf(refused)).status === 'failed', OUTPUT_BUDGET_MS, run!.jetpostOutput);
    expect(last.last_error).to.equal(quoted);
    // Dev mode writes its keys and the events password where the README says, readable by the owner only.
    for (const file of ['dev-api-key', 'dev-admin-key', 'dev-events-password']) {
      const stat = await fs.stat(path.join(run!.dir, 'data', file));
      expect(stat.mode & 0o777, file).to.equal(0o600);
    }
  });

  it('docs/simulator.md: faults on the built-in simulator, and a simulator run on its own whose callbacks are accepted', async () => {
    await run!.runBlocks('docs/simulator.md');

    // The simulator's callbacks authenticate with the password dev mode wrote: the recipient moves on.
    const key = (await fs.readFile(path.join(run!.dir, 'data', 'dev-api-key'), 'utf8')).trim();
    let job = '';
    await until(
      'job 1, sent through the standalone simulator, has a recipient past sent',
      async () => {
        job = await (await fetch(run!.url('/status/1'), { headers: { authorization: `Bearer ${key}` } })).text();
        return /"status":"(sent|opened|clicked)"/.test(job);
      },
      OUTPUT_BUDGET_MS,
      () => `${job}\nsimulator:\n${run!.backgroundOutput(0)}\njetpost:\n${run!.jetpostOutput().slice(-4000)}`,
    );
    expect(run!.backgroundOutput(0)).not.to.include('event callback failed');
  });

  // Every other document: its runnable blocks run; a document with none must say so by marking them norun.
  const documents = readdirSync(path.join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md') && name !== 'simulator.md')
    .map((name) => `docs/${name}`);
  for (const doc of documents) {
    const blocks = shellBlocks(readFileSync(path.join(ROOT, doc), 'utf8'));
    if (blocks.every((block) => block.mode === 'norun')) {
      continue;
    }
    it(`${doc}: its sh blocks`, async () => {
      await run!.runBlocks(doc);
    });
  }

  it('every shell block of the README and docs/ is marked sh, sh norun or sh background', () => {
    for (const doc of [
      'README.md',
      'ARCHITECTURE.md',
      ...readdirSync(path.join(ROOT, 'docs'))
        .filter((name) => name.endsWith('.md'))
        .map((name) => `docs/${name}`),
    ]) {
      const text = readFileSync(path.join(ROOT, doc), 'utf8');
      expect(() => shellBlocks(text), doc).not.to.throw();
      expect(text, `${doc}: use sh for shell blocks, so that they are run or marked norun`).not.to.match(/^```(bash|shell|console|zsh)\b/m);
    }
  });
});
