// Generates jetpost clients from openapi.yaml with three popular generators, the way an app would:
// openapi-typescript (types for openapi-fetch, default options), @hey-api/openapi-ts (fetch client
// and SDK) and orval (fetch client, and zod schemas). client-generators.test.ts runs it as a child
// process, so that the generators' console output and whatever they leave open stay out of mocha.
//   node --import tsx test/support/generate-clients.ts <openapi.yaml> <output folder> <base URL>
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { createClient } from '@hey-api/openapi-ts';
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript';
import { generate } from 'orval';

/** The folders under `outDir`, one per generator (the test's programs import from them). */
export const GENERATED = { openapiTypescript: 'openapi-typescript', heyApi: 'hey-api', orval: 'orval' } as const;

export async function generateClients(specFile: string, outDir: string, baseUrl: string): Promise<void> {
  const ast = await openapiTS(pathToFileURL(specFile), { silent: true });
  await fs.mkdir(path.join(outDir, GENERATED.openapiTypescript), { recursive: true });
  await fs.writeFile(path.join(outDir, GENERATED.openapiTypescript, 'schema.d.ts'), COMMENT_HEADER + astToString(ast));

  await createClient({
    input: specFile,
    output: path.join(outDir, GENERATED.heyApi),
    plugins: ['@hey-api/client-fetch', '@hey-api/typescript', '@hey-api/sdk'],
    logs: { level: 'silent' },
  });

  // orval's fetch client builds absolute URLs from `baseUrl`, fixed when it is generated.
  await generate({
    input: { target: specFile },
    output: { target: path.join(outDir, GENERATED.orval, 'client.ts'), client: 'fetch', mode: 'single', baseUrl },
  });
  await generate({ input: { target: specFile }, output: { target: path.join(outDir, GENERATED.orval, 'zod.ts'), client: 'zod', mode: 'single' } });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [specFile, outDir, baseUrl] = process.argv.slice(2);
  if (specFile === undefined || outDir === undefined || baseUrl === undefined) {
    throw new Error('usage: generate-clients.ts <openapi.yaml> <output folder> <base URL>');
  }
  await generateClients(specFile, outDir, baseUrl);
}
