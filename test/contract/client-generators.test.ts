// Apps reach jetpost through clients generated from openapi.yaml. Three popular generators make one
// each (test/support/generate-clients.ts); a small program per client (test/contract/client-programs)
// queues a message with free-form metadata and variables and no priority, reads a job and its
// recipients' MessageIDs as strings, and pages the changes feed. The three programs must type-check
// (one tsc run over all of them) and work against a running jetpost, and orval's zod schema for the
// /queue body must tell a message from anything else.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { expect } from 'chai';
import { parse } from 'yaml';

import { OPENAPI_PATH } from '../../src/paths.js';
import { startTestService, type TestService } from '../support/service.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PROGRAMS = path.join(ROOT, 'test', 'contract', 'client-programs');
const PROGRAM_NAMES = ['openapi-fetch', 'hey-api', 'orval'] as const;
/** Per child process, for a loaded 2-core machine (the generators and tsc take seconds each when idle). */
const CHILD_TIMEOUT_MS = 240_000;

/** What an app's tsconfig would say; nothing that eases generated code. */
const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    lib: ['ES2022', 'DOM', 'DOM.Iterable'],
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: [],
  },
  files: PROGRAM_NAMES.map((name) => `${name}.ts`),
};

interface ClientProgram {
  run(baseUrl: string, apiKey: string): Promise<{ messageIds: Array<string | null>; changes: number }>;
}

interface ZodLike {
  safeParse(value: unknown): { success: boolean };
}

function runNode(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: ROOT, timeout: CHILD_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({
        code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
        output: `${stdout}${stderr}${error?.killed ? '\n[killed: too slow]' : ''}`,
      }),
    );
  });
}

describe('clients generated from openapi.yaml (openapi-typescript + openapi-fetch, @hey-api/openapi-ts, orval)', function () {
  this.timeout(3 * CHILD_TIMEOUT_MS);

  let service: TestService;
  /** Under node_modules, so that the generated code resolves openapi-fetch and zod as an app's would. */
  let dir: string;

  before(async () => {
    service = await startTestService({ mailjet: 'simulator' });
    const cache = path.join(ROOT, 'node_modules', '.cache');
    await fs.mkdir(cache, { recursive: true });
    dir = await fs.mkdtemp(path.join(cache, 'jetpost-clients-'));
    const generated = await runNode(['--import', 'tsx', path.join(ROOT, 'test', 'support', 'generate-clients.ts'), OPENAPI_PATH, dir, service.url]);
    expect(generated.code, generated.output).to.equal(0);
    for (const name of PROGRAM_NAMES) {
      await fs.copyFile(path.join(PROGRAMS, `${name}.ts`), path.join(dir, `${name}.ts`));
    }
    await fs.writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
  });

  after(async () => {
    await service?.stop();
    if (dir) {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('each program type-checks against its generated client (strict)', async () => {
    const tsc = await runNode([path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(dir, 'tsconfig.json'), '--pretty', 'false']);
    expect(tsc.output.trim(), 'tsc').to.equal('');
    expect(tsc.code).to.equal(0);
  });

  it("orval's zod schema for the /queue body refuses what is not a message and accepts the spec's examples", async () => {
    const { queueMessagesBody } = (await import(pathToFileURL(path.join(dir, 'orval', 'zod.ts')).href)) as { queueMessagesBody: ZodLike };
    for (const bogus of [{ foo: 1 }, {}, { messages: [{ foo: 1 }] }, [], 'ada@example.org']) {
      expect(queueMessagesBody.safeParse(bogus).success, JSON.stringify(bogus)).to.equal(false);
    }
    const spec = parse(await fs.readFile(OPENAPI_PATH, 'utf8')) as {
      paths: { '/queue': { post: { requestBody: { content: { 'application/json': { examples: Record<string, { value: unknown }> } } } } } };
    };
    const examples = Object.entries(spec.paths['/queue'].post.requestBody.content['application/json'].examples);
    expect(examples.length).to.be.above(2);
    for (const [name, { value }] of examples) {
      expect(queueMessagesBody.safeParse(value).success, `example ${name}`).to.equal(true);
    }
    expect(
      queueMessagesBody.safeParse({
        from: 'billing@example.com',
        to: { email: 'ada@example.org', name: 'Acme Billing' },
        text: 'Hi',
        metadata: { invoice: 42 },
      }).success,
    ).to.equal(true);
  });

  for (const name of PROGRAM_NAMES) {
    it(`the ${name} program queues, reads and pages against a running jetpost`, async () => {
      const program = (await import(pathToFileURL(path.join(dir, `${name}.ts`)).href)) as ClientProgram;
      const { messageIds } = await program.run(service.url, service.apiKey);
      expect(messageIds).to.have.length(1);
      for (const id of messageIds) {
        expect(id === null || /^[0-9]{1,20}$/.test(id), String(id)).to.equal(true);
      }
    });
  }
});
