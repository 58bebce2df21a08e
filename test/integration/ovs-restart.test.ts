/**
 * Restart without loss, on a real Open vSwitch: `zonemesh run` with the static-flows app carries a
 * continuous ping between two namespaces; the controller is killed with SIGKILL and started again
 * while the ping runs. Not one ping may be lost, and after the reconnect the bridge must hold exactly
 * the desired flows, none of them deleted and re-added: their durations and counters run on.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOvsRunning } from '../helpers/ovs';
import {
  BASE_FLOWS,
  ControllerProcess,
  createLab,
  dump,
  expectedRules,
  pingOnce,
  runConfigYaml,
  startPing,
  testDir,
  until,
  zonemeshFlows,
  type Dumped,
} from '../helpers/restart';
import { freePort } from '../helpers/run';

const PREFIX = 'zm-rs';
/**
 * Pings 20 ms apart for 15 s: long enough that the kill, the restart and the reconnect all happen
 * while it runs, even on a loaded machine (the restart takes about a second here, most of it the
 * bridge's reconnect backoff).
 */
const PINGS = 750;
const EXPECTED = expectedRules(BASE_FLOWS);

test.before(assertOvsRunning);

test.serial('SIGKILL and restart of the controller under a 20 ms ping: no ping lost, the flows untouched and exactly the desired ones', async (t) => {
  t.timeout(180_000);
  const dir = testDir('ovs-restart');
  const port = await freePort();
  const control = join(dir, 'control.sock');
  const config = join(dir, 'run.yaml');
  writeFileSync(config, runConfigYaml(port, control, BASE_FLOWS));
  const lab = await createLab(t, PREFIX);
  const [h1, h2] = lab.hosts;

  // ---- first controller: installs everything
  const first = new ControllerProcess(t, config);
  const firstListening = await first.waitFor('"running"', (l) => l.msg === 'running', 60_000);
  await lab.addBridge(`tcp:127.0.0.1:${port}`);
  const bridgeAt = Date.now();
  const firstSync = await first.fullSync(60_000);
  t.like(firstSync, { adds: EXPECTED.length, deletes: 0, modifies: 0, errors: 0 }, 'the first sync installs every flow');
  await until('the desired flows on the bridge', 30_000, async () => {
    const { flows } = await dump(lab.bridge);
    return flows.length === EXPECTED.length ? flows : undefined;
  });
  // ARP resolved both ways, so the measured ping starts on a warm path
  await until('h1 reaching h2', 30_000, async () => ((await pingOnce(t, h1, lab.ip(2), 1))?.received === 1 ? true : undefined), 100);
  t.is((await pingOnce(t, h2, lab.ip(1), 1))?.received, 1, 'h2 reaches h1');

  const before = await dump(lab.bridge);
  t.deepEqual(before.flows.map((f) => f.rule), EXPECTED, 'before the kill: exactly the desired flows');
  const byRule = (flows: readonly Dumped[]) => new Map(flows.map((f) => [f.rule, f]));
  const h1ip = (flows: readonly Dumped[]) => flows.find((f) => f.rule.includes('in_port=1,nw_dst=10.0.0.2'))!;

  // ---- the ping, and the kill while it runs
  const ping = startPing(t, h1, lab.ip(2), ['-i', '0.02', '-c', String(PINGS), '-W', '2']);
  await until('the ping under way', 20_000, async () => {
    const now = h1ip((await dump(lab.bridge)).flows);
    return now.packets >= h1ip(before.flows).packets + 25 ? true : undefined;
  });
  t.true(ping.child.exitCode === null, 'the ping still runs at the kill');
  const killedAt = Date.now();
  await first.kill('SIGKILL');
  const second = new ControllerProcess(t, config);
  const listening = await second.waitFor('"running"', (l) => l.msg === 'running', 60_000);
  const resync = await second.fullSync(60_000);
  const pingRanThroughResync = ping.child.exitCode === null;
  const result = await ping.done;

  const startMs = listening.time - second.spawnedAt;
  const syncMs = resync.time - second.spawnedAt;
  const outageMs = resync.time - killedAt;
  t.log(`controller restart: listening ${startMs} ms after spawn; switch up and in sync ${syncMs} ms after spawn (${outageMs} ms after the SIGKILL)`);
  t.log(`first start: listening ${firstListening.time - first.spawnedAt} ms after spawn; the new bridge up and synced ${firstSync.time - bridgeAt} ms after add-br`);
  t.log(`ping: ${result.summary ? `${result.summary.transmitted} sent, ${result.summary.transmitted - result.summary.received} lost (${result.summary.lossPct}%)` : 'no summary'}`);

  // ---- not one ping lost, and the reconnect happened while it ran
  t.truthy(result.summary, `ping printed no summary:\n${result.out.slice(-2000)}`);
  t.is(result.summary?.transmitted, PINGS);
  t.is(result.summary?.received, PINGS, `lost pings; ping said:\n${result.out.split('\n').slice(-6).join('\n')}`);
  t.is(result.code, 0);
  t.true(pingRanThroughResync, `the ping was still running when the restarted controller had synced (it ended ${result.endedAt - resync.time} ms before)`);

  // ---- the reconnect sync sent nothing
  t.like(resync, { msg: 'in sync; nothing to send', kind: 'full', adds: 0, deletes: 0, modifies: 0, installed: EXPECTED.length }, 'the restarted controller found the switch in sync');
  t.deepEqual(
    second.lines.filter((l) => l.component === 'reconciler' && l.msg !== 'in sync; nothing to send').map((l) => l.msg),
    [],
    'the restarted controller sent no flow-mod at all',
  );
  t.deepEqual(second.problems(), [], 'no warning or error in the restarted controller log');

  // ---- exactly the desired flows, none re-added
  // OVS folds datapath counters into its flows every half second or so: wait for the last pings to show
  const wanted = h1ip(before.flows).packets + PINGS;
  const after = await until('every ping counted on the h1→h2 flow', 10_000, async () => {
    const d = await dump(lab.bridge);
    return h1ip(d.flows).packets >= wanted ? d : undefined;
  }).catch(async (e: Error) => {
    t.fail(`${e.message}: the h1→h2 flow counted ${h1ip((await dump(lab.bridge)).flows).packets - h1ip(before.flows).packets} of ${PINGS} pings`);
    return dump(lab.bridge);
  });
  t.deepEqual(after.flows.map((f) => f.rule), EXPECTED, 'after the restart: exactly the desired flows');
  t.is(new Set(after.flows.map((f) => f.rule)).size, after.flows.length, 'no duplicates');
  const old = byRule(before.flows);
  const elapsedMin = (after.at.start - before.at.end) / 1000;
  const elapsedMax = (after.at.end - before.at.start) / 1000;
  for (const f of after.flows) {
    const was = old.get(f.rule)!;
    t.true(
      f.durationS - was.durationS >= elapsedMin - 0.01 && f.durationS - was.durationS <= elapsedMax + 0.01,
      `duration ran on through the restart (${was.durationS}s → ${f.durationS}s over ${elapsedMin}..${elapsedMax}s): ${f.rule}`,
    );
    t.true(f.packets >= was.packets, `counters kept: ${f.rule}`);
  }

  // ---- what the controller computes as desired is what the bridge holds
  const asked = await zonemeshFlows(control);
  t.is(asked.status, 0, 'zonemesh flows: in sync');
  t.is(asked.switches.length, 1);
  const sw = asked.switches[0]!;
  t.deepEqual(sw.diff, { deletes: 0, modifies: 0, adds: 0 });
  t.is(sw.desired.length, EXPECTED.length);
  t.deepEqual(sw.desired.map((l) => l.trim()).sort(), after.flows.map((f) => f.rule), 'the flows the controller desires, as it prints them, are the flows OVS holds, as ovs-ofctl prints them');

  await second.kill('SIGTERM');
  t.is(second.child.exitCode, 0, 'SIGTERM stops the restarted controller cleanly');
});
