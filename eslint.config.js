// @ts-check
import js from '@eslint/js';
import simpleImportSort from 'eslint-plugin-simple-import-sort';
import tseslint from 'typescript-eslint';

// The architecture's import rules (STYLE.md), enforced with ESLint's own no-restricted-imports.
// A file matched by several groups below gets only the last group's rule, so each group lists
// everything its files may not import.
const onlyHttpImportsExpress = { name: 'express', message: 'only src/http imports express' };
const noHttp = { group: ['**/http/**'], message: 'domain and queue code never import http' };
const restricted = (patterns, paths = [onlyHttpImportsExpress]) => ['error', { paths, patterns }];

// Pure modules (status rules, retry policy, payload mapping, parsing, signatures) stay free of I/O
// so that they can be tested alone.
const pureFiles = [
  'src/jobs/status.ts',
  'src/jobs/retry-policy.ts',
  'src/jobs/send-decision.ts',
  'src/jobs/email-address.ts',
  'src/mailjet/payload.ts',
  'src/mailjet/outcome.ts',
  'src/mailjet/ids.ts',
  'src/events/parse.ts',
  'src/events/json-elements.ts',
  'src/events/storable-text.ts',
  'src/webhooks/signature.ts',
];
const noIo = {
  group: ['**/db/**', '**/http/**', '**/queue/**', '**/mailjet/client.js', '**/log.js', '**/main.js', 'pg', 'node-mailjet', 'winston', 'node:http', 'node:https', 'node:fs', 'node:fs/promises'],
  message: 'pure modules take no I/O dependencies',
};

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
      'no-restricted-imports': restricted([]),
    },
  },
  { files: ['src/queue/**/*.ts', 'src/jobs/**/*.ts', 'src/events/**/*.ts', 'src/mailjet/**/*.ts', 'src/webhooks/**/*.ts'], rules: { 'no-restricted-imports': restricted([noHttp]) } },
  { files: pureFiles, rules: { 'no-restricted-imports': restricted([noIo]) } },
  {
    files: ['src/simulator/**/*.ts'],
    rules: { 'no-restricted-imports': restricted([{ group: ['../**'], message: 'the simulator is standalone: it imports nothing else of jetpost' }]) },
  },
  { files: ['src/http/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'], rules: { 'no-restricted-imports': 'off' } },
);
