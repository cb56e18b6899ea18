// GET /docs in a real browser (Debian's chromium, driven by playwright-core): the page renders every
// operation of openapi.yaml, and nothing it loads comes from another origin or is refused (by the
// network or by its Content-Security-Policy).
import fs from 'node:fs/promises';

import { expect } from 'chai';
import { parse } from 'yaml';

import { OPENAPI_PATH } from '../../src/paths.js';
import { type Browser, launchChromium, skipWithoutChromium, watchPage } from '../support/browser.js';
import { startTestService, type TestService } from '../support/service.js';

describe('GET /docs in a browser', function () {
  // Starting a browser and rendering a 3,000-line document on a loaded 2-core machine.
  this.timeout(180_000);

  let service: TestService | undefined;
  let browser: Browser | undefined;

  before(function () {
    skipWithoutChromium(this);
  });

  // The browser and the service the test starts are closed after it (the root afterEach checks the service).
  afterEach(async () => {
    await browser?.close();
    browser = undefined;
    await service?.stop();
    service = undefined;
  });

  it("renders every operation's summary and method + path, loading only from jetpost, with nothing refused", async () => {
    service = await startTestService({ env: { WORKER_CONCURRENCY: '0' } });
    browser = await launchChromium();
    const { page } = browser;
    const { elsewhere, failed, complaints } = watchPage(page, new URL(service.url).origin);

    const res = await page.goto(`${service.url}/docs`);
    expect(res?.status()).to.equal(200);
    await page.getByRole('heading', { name: 'Queue one message, or many in one request' }).first().waitFor({ timeout: 120_000 });
    await page.waitForLoadState('networkidle');

    const spec = parse(await fs.readFile(OPENAPI_PATH, 'utf8')) as { paths: Record<string, Record<string, { summary: string }>> };
    const text = await page.locator('body').innerText();
    const operations = Object.entries(spec.paths).flatMap(([template, item]) =>
      Object.entries(item).map(([method, operation]) => ({ method, template, summary: operation.summary })),
    );
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
