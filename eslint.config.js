// @ts-check
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import simpleImportSort from 'eslint-plugin-simple-import-sort';
import tseslint from 'typescript-eslint';

// Pure modules (status rules, retry policy, payload mapping, parsing, signatures) must stay free of I/O
// so they can be tested alone: they may not import the database, HTTP, Mailjet client or logging layers.
const pureFiles = [
  './src/jobs/status.ts',
  './src/jobs/retry-policy.ts',
  './src/mailjet/payload.ts',
  './src/mailjet/outcome.ts',
  './src/events/parse.ts',
  './src/webhooks/signature.ts',
];
const ioModules = ['./src/db', './src/http', './src/mailjet/client.ts', './src/log.ts', './src/main.ts', './src/queue'];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { 'simple-import-sort': simpleImportSort, 'import-x': importX },
    rules: {
      curly: ['error', 'all'],
      'simple-import-sort/imports': 'error',
      'simple-import-sort/exports': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            ...pureFiles.map((target) => ({ target, from: ioModules, message: 'pure modules take no I/O dependencies' })),
            { target: './src/simulator', from: './src', except: ['./simulator'], message: 'the simulator is standalone' },
            { target: './src/queue', from: './src/http', message: 'queue never imports http' },
            { target: ['./src/jobs', './src/events', './src/mailjet', './src/webhooks'], from: './src/http', message: 'domain code never imports http' },
          ],
        },
      ],
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'express', message: 'only src/http imports express' }] },
      ],
    },
  },
  {
    files: ['src/http/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
