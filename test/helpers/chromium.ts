/**
 * Debian's Chromium (scripts/ensure-deps.sh installs it) driven by puppeteer-core, which downloads
 * no browser. The browser gets a pidfile under TEST_STATE_DIR like every process a test starts, a
 * profile of its own there, and no network activity of its own (no updates, sync or QUIC).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, type Browser } from 'puppeteer-core';
import { TEST_STATE_DIR } from './run';

export const CHROMIUM = '/usr/bin/chromium';

const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A headless Chromium over a pipe (no debugging port); close() it, and its profile goes when it exits. */
export async function launchChromium(): Promise<Browser> {
  mkdirSync(TEST_STATE_DIR, { recursive: true });
  const profile = mkdtempSync(join(TEST_STATE_DIR, 'chromium-'));
  const browser = await launch({ executablePath: CHROMIUM, headless: true, pipe: true, args: [...FLAGS, `--user-data-dir=${profile}`] });
  const pid = browser.process()?.pid;
  const pidfile = join(TEST_STATE_DIR, 'pids', `${pid}.pid`);
  if (pid !== undefined) {
    mkdirSync(join(TEST_STATE_DIR, 'pids'), { recursive: true });
    writeFileSync(pidfile, `${pid}\n`);
  }
  // once the browser is gone, not merely disconnected: it writes its profile until it exits
  browser.process()?.once('exit', () => {
    rmSync(pidfile, { force: true });
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // a helper process still writing: scripts/test.sh deletes TEST_STATE_DIR at the end
    }
  });
  return browser;
}
