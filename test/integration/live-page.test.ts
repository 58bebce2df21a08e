/**
 * The live topology page (`zonemesh run --http`) in a real browser, Debian's Chromium driven by
 * puppeteer-core, on the multi-zone overlay scenario (models/two-zones.yaml, real OVS per
 * hypervisor): the page shows every hypervisor in its zone and every VM in its VPC and tier; the
 * counters of a VM's port rise while it pings; a hypervisor whose ovs-vswitchd is killed turns to
 * the failed state (down) within 5 s, and so do its tunnels in the tunnel monitor's mesh. With ZONEMESH_SCREENSHOT=FILE the page is saved there at the
 * end (docs/live-page.png comes from `ZONEMESH_SCREENSHOT=docs/live-page.png`).
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Page } from 'puppeteer-core';
import { loadModelFile } from '../../src/model';
import { launchChromium } from '../helpers/chromium';
import { OVERLAY_APPS, TWO_ZONES_MODEL, allowed, modelPort, overlayUp, startController, waitFor, type OverlayScenario, type RunningController } from '../helpers/overlay';
import { REPO_ROOT } from '../helpers/paths';
import { TEST_STATE_DIR, freePort } from '../helpers/run';

/** the little of the DOM the functions run in the page use (tests compile without lib.dom) */
interface PageElement {
  getAttribute(name: string): string | null;
  closest(selector: string): PageElement | null;
  readonly dataset: Record<string, string | undefined>;
}
declare const document: { querySelectorAll(selector: string): ArrayLike<PageElement> & Iterable<PageElement>; querySelector(selector: string): PageElement | null };

const PREFIX = 'zmpg';
/** the bound for a killed hypervisor to show as failed */
const FAILED_WITHIN_MS = 5_000;
const PINGS = 20;

/** [name, the data-* attribute of its enclosing group] of every element with `attr`, sorted */
function shown(page: Page, attr: string, groups: readonly string[]): Promise<string[][]> {
  return page.evaluate(
    (a, gs) =>
      [...document.querySelectorAll(`[${a}]`)]
        .map((e) => [e.getAttribute(a)!, ...gs.map((g) => e.closest(`[${g}]`)?.getAttribute(g) ?? '(none)')])
        .sort((x, y) => x.join().localeCompare(y.join())),
    attr,
    groups,
  );
}

/** the page's counters of a VM's port: [rx packets, tx packets], or undefined while it has none */
function vmPortCounters(page: Page, hypervisor: string, vm: string): Promise<[number, number] | undefined> {
  return page.evaluate(
    (hv, name) => {
      const row = document.querySelector(`[data-hypervisor="${hv}"] tr[data-port-vm="${name}"]`);
      return row?.dataset.rxPackets === undefined ? undefined : ([Number(row.dataset.rxPackets), Number(row.dataset.txPackets)] as [number, number]);
    },
    hypervisor,
    vm,
  );
}

test.serial('the live page in Chromium: every hypervisor and VM, counters rising under a ping, a killed OVS failed within 5 s', async (t) => {
  t.timeout(240_000);
  const model = loadModelFile(TWO_ZONES_MODEL);
  const dir = join(TEST_STATE_DIR, 'live-page');
  let scenario: OverlayScenario | undefined;
  let controller: RunningController | undefined;
  const browser = await launchChromium();
  try {
    scenario = await overlayUp(TWO_ZONES_MODEL, { stateDir: join(dir, 'net'), prefix: PREFIX });
    const port = await freePort();
    controller = await startController(TWO_ZONES_MODEL, scenario.hypervisorsJson, {
      dir: join(dir, 'controller'),
      apps: [...OVERLAY_APPS, 'tunnel-monitor'],
      // 10 probes a second per pair: liveness for the page, not the 1 % loss statistics
      settings: { 'tunnel-monitor': { intervalMs: 100 } },
      http: { listen: `127.0.0.1:${port}`, pollIntervalMs: 1_000 },
    });
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && pageErrors.push(`${m.text()} ${m.location().url ?? ''}`));
    await page.setViewport({ width: 1600, height: 1000 });
    await page.goto(`http://127.0.0.1:${port}/`);

    // ---- every hypervisor in its zone, every VM in its VPC and tier
    await page.waitForFunction((n) => document.querySelectorAll('[data-hypervisor][data-state="in-sync"]').length === n, { timeout: 30_000 }, model.hypervisors.length);
    t.deepEqual(await shown(page, 'data-hypervisor', ['data-zone']), model.hypervisors.map((h) => [h.name, h.zone]).sort((x, y) => x.join().localeCompare(y.join())));
    t.deepEqual(await shown(page, 'data-vm', ['data-vpc', 'data-tier']), model.ports.map((p) => [p.name, p.vpc, p.subnet]).sort((x, y) => x.join().localeCompare(y.join())));
    const n = model.hypervisors.length;
    // the tunnel monitor's mesh: a cell for every ordered pair, each up once the probes come back
    t.is(await page.$eval('#tunnels', (e) => (e as unknown as PageElement).dataset.monitor), 'yes');
    const tunnelCells = () => page.$$eval('#tunnels td[data-from]', (cells) => cells.map((c) => [(c as unknown as PageElement).dataset.from!, (c as unknown as PageElement).dataset.to!, (c as unknown as PageElement).dataset.state!]));
    t.is((await tunnelCells()).length, n * (n - 1), 'a cell for every ordered pair of hypervisors');
    await page.waitForFunction(() => [...document.querySelectorAll('#tunnels td[data-from]')].every((c) => c.dataset.state === 'up'), { timeout: 30_000 });
    t.is(await page.$eval('#connection', (e) => (e as unknown as PageElement).dataset.state), 'live');

    // ---- a VM's port counters rise while it pings a VM in another zone
    const [src, dst] = ['web1', 'web2'];
    const [a, b] = [modelPort(model, src), modelPort(model, dst)];
    t.true(allowed(model, a, b, 'icmp') && a.hypervisor !== b.hypervisor);
    const counters = () => vmPortCounters(page, a.hypervisor, src);
    const before = (await waitFor(`${src}'s port counters on the page`, counters, (c) => c !== undefined, { timeoutMs: 15_000, intervalMs: 200 }))!;
    const ping = await scenario.startPing(src, dst, 100);
    let during: [number, number] | undefined;
    try {
      const rose = (c: [number, number] | undefined) => c !== undefined && c[0] - before[0] >= PINGS && c[1] - before[1] >= PINGS;
      during = await waitFor(`${src}'s rx and tx packets rising by ${PINGS} on the page while it pings ${dst}`, counters, rose, { timeoutMs: 30_000, intervalMs: 200 });
    } finally {
      const run = await ping.stop();
      t.log(`${src} -> ${dst}: ${run.received}/${run.sent} replies`);
    }
    t.log(`${src}'s port on the page: rx ${before[0]} -> ${during![0]}, tx ${before[1]} -> ${during![1]} packets while pinging`);
    const rates = await page.$eval(`[data-vm="${src}"] .meta`, (e) => e.textContent);
    t.regex(rates ?? '', /rx \d+(\.\d+)?\/s/, 'the VPC view shows its rate');

    // ---- a hypervisor whose OVS is killed turns to the failed state
    const victim = model.hypervisors[model.hypervisors.length - 1]!.name;
    const rundir = scenario.state().hypervisors[victim]!.rundir;
    const pid = Number(readFileSync(join(rundir, 'ovs-vswitchd.pid'), 'utf8').trim());
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    await page.waitForSelector(`[data-hypervisor="${victim}"][data-state="down"]`, { timeout: 30_000 });
    const failedMs = Date.now() - killedAt;
    t.log(`${victim}'s ovs-vswitchd SIGKILLed: down on the page after ${failedMs} ms`);
    t.true(failedMs <= FAILED_WITHIN_MS, `down after ${failedMs} ms, at most ${FAILED_WITHIN_MS}`);
    // its tunnels go down too (the monitor's 2 s silence rule), the others stay up
    await page.waitForFunction((v) => [...document.querySelectorAll('#tunnels td[data-from]')].every((c) => (c.dataset.state === 'down') === (c.dataset.from === v || c.dataset.to === v)), { timeout: FAILED_WITHIN_MS }, victim);
    t.log(`${victim}'s tunnels down on the page after ${Date.now() - killedAt} ms`);
    const vmsThere = model.ports.filter((p) => p.hypervisor === victim).map((p) => p.name);
    t.deepEqual(
      await page.$$eval('[data-vm][data-state="down"]', (es) => es.map((e) => (e as unknown as PageElement).dataset.vm!).sort()),
      vmsThere.sort(),
      'its VMs, and only they, show as down',
    );
    // the others stay in sync (waited for: a poll may land while a flow change is on its way)
    await page.waitForFunction((k) => document.querySelectorAll('[data-hypervisor][data-state="in-sync"]').length === k, { timeout: 15_000 }, n - 1);

    t.deepEqual(pageErrors, [], 'no script error or failed request in the page');

    const screenshot = process.env.ZONEMESH_SCREENSHOT;
    if (screenshot) {
      const path = resolve(REPO_ROOT, screenshot);
      await page.screenshot({ path: path as `${string}.png`, fullPage: true });
      t.log(`screenshot: ${path}`);
    }
  } finally {
    await browser.close();
    await controller?.stop();
    await scenario?.down();
  }
});
