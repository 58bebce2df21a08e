/**
 * The tunnel monitor on the multi-zone scenario (models/two-zones.yaml: 4 hypervisors, 6 pairs),
 * with the real controller process and its metrics:
 *
 * - 1 % loss on one hypervisor's uplink (nftables `numgen random mod 1000 < 10 counter drop` on the
 *   traffic the underlay router receives from it) is reported, by a warn line and by
 *   zonemesh_tunnel_loss_ratio, for that hypervisor's pairs within 30 s, and for no other pair;
 * - a hypervisor whose ovs-vswitchd is killed has all its pairs flagged down within 3 s.
 *
 * One scenario serves both tests (loss first, then the kill). Timings are printed with t.log.
 */
import test from 'ava';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  OVERLAY_APPS,
  TWO_ZONES_MODEL,
  overlayUp,
  startController,
  waitFor,
  type OverlayScenario,
  type RunningController,
} from '../helpers/overlay';
import { NFT, TEST_STATE_DIR, run } from '../helpers/run';
import { DEFAULT_TUNNEL_MONITOR_SETTINGS } from '../../src/apps/tunnel-monitor';

const PREFIX = 'zmtm';
const LOSSY_HV = 'hv2';
const KILLED_HV = 'hv3';
const NFT_TABLE = 'zmtm_loss';
/** the monitor's default */
const LOSS_THRESHOLD = DEFAULT_TUNNEL_MONITOR_SETTINGS.lossThreshold;
const HYPERVISORS = ['hv1', 'hv2', 'hv3', 'hv4'];
const ALL_PAIRS = HYPERVISORS.flatMap((a, i) => HYPERVISORS.slice(i + 1).map((b) => [a, b] as const));
const involves = (hv: string) => (line: TunnelLine) => line.from === hv || line.to === hv;
const pairName = (l: { from: string; to: string }) => [l.from, l.to].sort().join('-');

interface TunnelLine {
  time: number;
  level: number;
  msg: string;
  from: string;
  to: string;
  state: string;
  lossRatio: number;
}

interface Fixture {
  scenario: OverlayScenario;
  controller: RunningController;
  metricsUrl: string;
}

let fixture: Fixture | undefined;

/** the monitor's state-change lines in the controller's log */
function tunnelLines(logFile: string): TunnelLine[] {
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"app":"tunnel-monitor"') && l.includes('"state"'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as TunnelLine];
      } catch {
        return []; // a line cut by a concurrent write
      }
    });
}

/** zonemesh_tunnel_<name>{from,to} values by sorted pair name */
async function tunnelMetric(url: string, name: string): Promise<Map<string, number>> {
  const text = await (await fetch(url)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(`^zonemesh_tunnel_${name}\\{from="([^"]+)",to="([^"]+)"\\} (\\S+)$`, 'gm'))) {
    out.set(pairName({ from: m[1]!, to: m[2]! }), Number(m[3]));
  }
  return out;
}

test.before(async () => {
  const dir = join(TEST_STATE_DIR, 'tunnel-monitor');
  mkdirSync(dir, { recursive: true });
  const modelFile = join(dir, 'model.yaml');
  copyFileSync(TWO_ZONES_MODEL, modelFile);
  const scenario = await overlayUp(modelFile, { stateDir: join(dir, 'net'), prefix: PREFIX });
  try {
    const controller = await startController(modelFile, scenario.hypervisorsJson, { apps: [...OVERLAY_APPS, 'tunnel-monitor'], metrics: { listen: '127.0.0.1:0' } });
    fixture = { scenario, controller, metricsUrl: '' };
    await controller.waitInSync();
    const served = readFileSync(controller.logFile, 'utf8').match(/"metrics":"([^"]+)"/);
    if (!served) throw new Error('the controller did not log its metrics address');
    fixture.metricsUrl = `http://${served[1]}`;
  } catch (e) {
    await fixture?.controller.stop();
    await scenario.down();
    fixture = undefined;
    throw e;
  }
});

test.after.always(async () => {
  if (!fixture) return;
  await fixture.controller.stop();
  await fixture.scenario.down();
});

test.serial('1 % loss on one uplink is attributed to that hypervisor’s pairs within 30 s, and to no other pair', async (t) => {
  const { scenario, controller, metricsUrl } = fixture!;
  // every pair measured, up and below the threshold before the loss starts
  await waitFor(
    'every pair up and not lossy',
    async () => ({ up: await tunnelMetric(metricsUrl, 'up'), loss: await tunnelMetric(metricsUrl, 'loss_ratio') }),
    ({ up, loss }) => up.size === ALL_PAIRS.length && [...up.values()].every((v) => v === 1) && [...loss.values()].every((v) => v < LOSS_THRESHOLD),
    { timeoutMs: 30_000, describe: ({ up, loss }) => JSON.stringify({ up: [...up], loss: [...loss] }) },
  );
  // and a whole window of clean samples behind every pair: the loss starts in the steady state
  const lastPairUp = Math.max(...tunnelLines(controller.logFile).filter((l) => l.state === 'up').map((l) => l.time));
  const steadyAt = lastPairUp + DEFAULT_TUNNEL_MONITOR_SETTINGS.windowMs;
  await new Promise((r) => setTimeout(r, Math.max(0, steadyAt - Date.now())));
  t.log(`load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  const state = scenario.state();
  const uplink = state.router.uplinks[LOSSY_HV]!;
  const rules = `table netdev ${NFT_TABLE} {\n  chain lossy {\n    type filter hook ingress device "${uplink}" priority 0;\n    numgen random mod 1000 < 10 counter drop\n  }\n}\n`;
  const linesBefore = tunnelLines(controller.logFile).length;
  const injectedAt = Date.now();
  await run('ip', ['netns', 'exec', state.router.netns, NFT, '-f', '-'], { input: rules });
  try {
    const lossyPairs = ALL_PAIRS.filter(([a, b]) => a === LOSSY_HV || b === LOSSY_HV).map(([a, b]) => `${a}-${b}`);
    const { lines: alerts } = await waitFor(
      `warn lines for ${lossyPairs.join(', ')}`,
      async () => ({ lines: tunnelLines(controller.logFile).slice(linesBefore).filter((l) => l.state === 'lossy'), loss: await tunnelMetric(metricsUrl, 'loss_ratio') }),
      ({ lines }) => lossyPairs.every((p) => lines.some((l) => pairName(l) === p)),
      { timeoutMs: 30_000, intervalMs: 200, describe: ({ lines, loss }) => JSON.stringify({ lossy: lines.map((l) => [pairName(l), l.lossRatio]), loss: [...loss] }) },
    );
    const detectedMs = lossyPairs.map((p) => alerts.find((l) => pairName(l) === p)!.time - injectedAt);
    t.log(`1 % loss on ${LOSSY_HV}'s uplink: its pairs flagged lossy after ${detectedMs.map((ms) => (ms / 1000).toFixed(1)).join(' s, ')} s`);
    for (const line of alerts) t.is(line.msg, 'tunnel loss above threshold');
    t.true(detectedMs.every((ms) => ms <= 30_000));

    const lossRatio = await tunnelMetric(metricsUrl, 'loss_ratio');
    t.log(`zonemesh_tunnel_loss_ratio: ${JSON.stringify(Object.fromEntries(lossRatio))}`);
    for (const [p, ratio] of lossRatio) {
      if (lossyPairs.includes(p)) t.true(ratio > 0, `${p} shows loss in the metric`);
      else t.true(ratio < LOSS_THRESHOLD, `${p}: ${ratio} below the threshold`);
    }
    const others = tunnelLines(controller.logFile).slice(linesBefore).filter((l) => !involves(LOSSY_HV)(l));
    t.deepEqual(others.map((l) => `${pairName(l)} ${l.state}`), [], 'no pair without the lossy hypervisor changed state');
  } finally {
    const dropped = (await run('ip', ['netns', 'exec', state.router.netns, NFT, 'list', 'table', 'netdev', NFT_TABLE])).stdout.match(/counter packets (\d+)/)?.[1];
    t.log(`nftables dropped ${dropped} frames from ${LOSSY_HV}`);
    await run('ip', ['netns', 'exec', state.router.netns, NFT, 'delete', 'table', 'netdev', NFT_TABLE]);
  }
});

test.serial('a hypervisor whose OVS is killed has all its pairs flagged down within 3 s', async (t) => {
  const { scenario, controller, metricsUrl } = fixture!;
  const hv = scenario.state().hypervisors[KILLED_HV]!;
  const linesBefore = tunnelLines(controller.logFile).length;
  const pid = readFileSync(join(hv.rundir, 'ovs-vswitchd.pid'), 'utf8').trim();
  const killedAt = Date.now();
  await run('kill', ['-9', pid]);
  const downPairs = ALL_PAIRS.filter(([a, b]) => a === KILLED_HV || b === KILLED_HV).map(([a, b]) => `${a}-${b}`);
  const downs = await waitFor(
    `down lines for ${downPairs.join(', ')}`,
    async () => tunnelLines(controller.logFile).slice(linesBefore).filter((l) => l.state === 'down'),
    (lines) => downPairs.every((p) => lines.some((l) => pairName(l) === p)),
    { timeoutMs: 10_000, intervalMs: 100, describe: (lines) => JSON.stringify(lines.map(pairName)) },
  );
  const flaggedMs = downPairs.map((p) => downs.find((l) => pairName(l) === p)!.time - killedAt);
  t.log(`${KILLED_HV}'s ovs-vswitchd killed: its pairs flagged down after ${flaggedMs.map((ms) => (ms / 1000).toFixed(2)).join(' s, ')} s`);
  t.true(flaggedMs.every((ms) => ms <= 3_000), `within 3 s: ${flaggedMs.join(', ')} ms`);
  t.deepEqual(
    downs.filter((l) => !involves(KILLED_HV)(l)).map(pairName),
    [],
    'no other pair is down',
  );
  const up = await tunnelMetric(metricsUrl, 'up');
  for (const p of downPairs) t.is(up.get(p), 0, `zonemesh_tunnel_up of ${p}`);
});
