// GET /docs in a real browser (Debian's chromium, driven by playwright-core): the page renders every
// operation of openapi.yaml, and nothing it loads comes from another origin or is refused (by the
// network or by its Content-Security-Policy).
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';
import { type BrowserContext, chromium } from 'playwright-core';
import { parse } from 'yaml';

import { OPENAPI_PATH } from '../../src/paths.js';
import { startTestService, type TestService } from '../support/service.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('GET /docs in a browser', function () {
  // Starting a browser and rendering a 3,000-line document on a loaded 2-core machine.
  this.timeout(180_000);

  let service: TestService | undefined;
  let context: BrowserContext | undefined;
  let userDataDir: string | undefined;

  before(function () {
    if (!existsSync(CHROMIUM)) {
      console.warn(`      skipped: ${CHROMIUM} is missing; install Debian's \`chromium\` package (apt-get install -y chromium)`);
      this.skip();
    }
  });

  // The browser and the service the test starts are closed after it (the root afterEach checks the service).
  afterEach(async () => {
    await context?.close();
    context = undefined;
    await service?.stop();
    service = undefined;
  });

  after(async () => {
    if (userDataDir) {
      await fs.rm(userDataDir, { recursive: true, force: true });
    }
  });

  it('renders every operation\'s summary and method + path, loading only from jetpost, with nothing refused', async () => {
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0' } });
    userDataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const page = context.pages()[0] ?? (await context.newPage());

    const origin = new URL(service.url).origin;
    const elsewhere: string[] = [];
    const failed: string[] = [];
    const complaints: string[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.origin !== origin && url.protocol !== 'data:' && url.protocol !== 'blob:') {
        elsewhere.push(request.url());
      }
    });
    page.on('requestfailed', (request) => failed.push(`${request.url()}: ${request.failure()?.errorText ?? '?'}`));
    page.on('response', (response) => {
      if (response.status() >= 400) {
        failed.push(`${response.url()}: ${response.status()}`);
      }
    });
    page.on('pageerror', (error) => complaints.push(`page error: ${error.message}`));
    // CSP violations and failed loads are reported on the console as errors.
    page.on('console', (message) => {
      if (message.type() === 'error') {
        complaints.push(`console: ${message.text()}`);
      }
    });

    const res = await page.goto(`${service.url}/docs`);
    expect(res?.status()).to.equal(200);
    await page.getByRole('heading', { name: 'Queue one message, or many in one request' }).first().waitFor({ timeout: 120_000 });
    await page.waitForLoadState('networkidle');

    const spec = parse(await fs.readFile(OPENAPI_PATH, 'utf8')) as { paths: Record<string, Record<string, { summary: string }>> };
    const text = await page.locator('body').innerText();
    const operations = Object.entries(spec.paths).flatMap(([template, item]) => Object.entries(item).map(([method, operation]) => ({ method, template, summary: operation.summary })));
    expect(operations.length).to.be.above(20);
    for (const { method, template, summary } of operations) {
      expect(text, `${method.toUpperCase()} ${template}`).to.include(summary);
    }
    // Redoc writes each operation's method and path beside it, e.g. "post /queue".
    expect(await page.locator('text=/queue').count()).to.be.above(0);
    expect(text.toLowerCase()).to.match(/post\s*\/queue/);

    expect(elsewhere, 'requests to another origin').to.deep.equal([]);
    expect(failed, 'failed requests').to.deep.equal([]);
    expect(complaints, 'errors in the page').to.deep.equal([]);
  });
});
