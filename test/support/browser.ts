// Debian's chromium, driven by playwright-core, for the tests that need a real browser: skipped with
// a message naming the package where it is missing, and closed (profile directory included) by the
// test that opened it.
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** For a `before` hook: skips the suite, saying what to install, when there is no chromium. */
export function skipWithoutChromium(context: Mocha.Context): void {
  if (!existsSync(CHROMIUM)) {
    console.warn(`      skipped: ${CHROMIUM} is missing; install Debian's \`chromium\` package (apt-get install -y chromium)`);
    context.skip();
  }
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** A headless chromium with a fresh profile, and its first page. */
export async function launchChromium(): Promise<Browser> {
  const userDataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const page = context.pages()[0] ?? (await context.newPage());
    return {
      context,
      page,
      async close() {
        await context.close();
        await fs.rm(userDataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await fs.rm(userDataDir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Records what a page should never do: load from another origin, fail a request, answer >= 400,
 * throw, or log an error (CSP violations are console errors).
 */
export function watchPage(page: Page, origin: string): { elsewhere: string[]; failed: string[]; complaints: string[] } {
  const seen = { elsewhere: [] as string[], failed: [] as string[], complaints: [] as string[] };
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.origin !== origin && url.protocol !== 'data:' && url.protocol !== 'blob:') {
      seen.elsewhere.push(request.url());
    }
  });
  page.on('requestfailed', (request) => seen.failed.push(`${request.url()}: ${request.failure()?.errorText ?? '?'}`));
  page.on('response', (response) => {
    if (response.status() >= 400) {
      seen.failed.push(`${response.url()}: ${response.status()}`);
    }
  });
  page.on('pageerror', (error) => seen.complaints.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') {
      seen.complaints.push(`console: ${message.text()}`);
    }
  });
  return seen;
}
