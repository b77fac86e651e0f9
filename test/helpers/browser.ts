import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from './env.js';

/** Debian's Chromium (`apt-get install chromium`); CHROMIUM_PATH overrides it. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/**
 * Browser tests run where Chromium is installed. CI installs it and sets WF_TEST_REQUIRE_BROWSER=1,
 * so there a missing browser fails the suite instead of skipping it; on a machine with nothing
 * but Node they are skipped (the README's test command still works).
 */
export const hasBrowser = existsSync(CHROMIUM);
if (!hasBrowser && process.env.WF_TEST_REQUIRE_BROWSER === '1') {
  throw new Error(`WF_TEST_REQUIRE_BROWSER=1, but there is no Chromium at ${CHROMIUM} (apt-get install chromium)`);
}

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}

/**
 * Keeps a screenshot of a screen when CONSOLE_SCREENSHOTS names a folder (relative to the repo):
 * `CONSOLE_SCREENSHOTS=docs/images npx vitest run test/e2e/console.test.ts` renews the docs' pictures.
 */
export async function keep(page: Page, name: string): Promise<void> {
  const dir = process.env.CONSOLE_SCREENSHOTS;
  if (!dir) return;
  mkdirSync(join(ROOT, dir), { recursive: true });
  await page.screenshot({ path: join(ROOT, dir, `console-${name}.png`), fullPage: true });
}
