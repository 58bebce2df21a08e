/**
 * `npm run demo:ha`: issue 10's "a zone dies", told. Brings up models/ha-three-zones.yaml's
 * scenario (3 zones of 2 hypervisors) with one etcd member and one controller per zone, prints who
 * is master of what, kills zone b's controller, then the whole zone that took b over, and prints
 * the pings, the TCP stream, the takeover times, the flows kept and the port added through the
 * API right after the kill. The same code as test/integration/ha-zone-death.test.ts
 * (test/helpers/ha.ts), which asserts what this prints. Everything is torn down at the end.
 *
 *   npm run demo:ha            the demo (as root)
 *   npm run demo:ha -- down    tear down what an interrupted demo left (namespaces, per-hypervisor OVS)
 *
 * ZM_PREFIX (default zmha) and ZM_STATE (default /tmp/zm/ZM_PREFIX) name its namespaces and state directory.
 * Exit status: 0 when every check of the issue held.
 */
import { HA_MODEL, STREAM_LINES, describeFlows, describePing, killController, killWholeZone, masters, percentile, startHaCluster, waitHaReady, type HaCluster } from '../test/helpers/ha';
import { overlayDown, overlayUp, type OverlayScenario } from '../test/helpers/overlay';

const BOUND_MS = 5_000;
const prefix = process.env.ZM_PREFIX ?? 'zmha';
const stateDir = process.env.ZM_STATE ?? `/tmp/zm/${prefix}`;
const say = (line: string) => console.log(line);

/** Prints a check and returns whether it held. */
function check(ok: boolean, what: string): boolean {
  say(`  ${ok ? 'PASS' : 'FAIL'}  ${what}`);
  return ok;
}

async function demo(scenario: OverlayScenario, cluster: HaCluster): Promise<boolean> {
  await waitHaReady(scenario);
  say('\nwho is master of what (ovs-vsctl list controller on each hypervisor):');
  for (const [hv, m] of Object.entries(await masters(scenario))) say(`  ${hv} (zone ${scenario.state().hypervisors[hv]!.zone}): ${m}`);
  const results: boolean[] = [];

  say('\n1. SIGKILL of ctl-b alone, while zone b and zone c ping each other at 50 pps');
  const one = await killController(scenario, cluster, 'b', 'c');
  say(`  zone b taken by ctl-${one.heir}: ${Object.entries(one.takeoverMs).map(([hv, ms]) => `${hv} after ${ms} ms`).join(', ')}`);
  for (const p of one.pings) say(`  ping ${describePing(p)}`);
  for (const f of one.flows) say(`  ${describeFlows(f)}`);
  results.push(check(Object.values(one.takeoverMs).every((ms) => ms < BOUND_MS), 'takeover within 5 s'));
  results.push(check(one.pings.every((p) => p.lost.length === 0), 'no ping lost'));
  results.push(check(one.flows.every((f) => f.problems.length === 0), 'no flow deleted or re-added'));

  const last = ['a', 'c'].find((z) => z !== one.heir)!;
  say(`\n2. zone ${one.heir} dies at once (ctl-${one.heir}, its etcd member, its hypervisors' OVS, their uplinks),`);
  say(`   while zone b and zone ${last} ping each other and stream TCP; then a port is added through the API`);
  const two = await killWholeZone(scenario, cluster, one.heir, last);
  const times = Object.values(two.takeoverMs);
  say(`  killed in ${two.killMs} ms; masters before: ${JSON.stringify(two.mastersBefore)}`);
  say(`                          after:  ${JSON.stringify(two.mastersAfter)}`);
  say(`  takeover of the bridges whose master died: ${Object.entries(two.takeoverMs).map(([hv, ms]) => `${hv} ${ms} ms`).join(', ')} (p50 ${percentile(times, 50)} ms, max ${Math.max(...times)} ms)`);
  for (const p of two.pings) say(`  ping ${describePing(p)}`);
  say(`  TCP stream ${two.stream.src} -> ${two.stream.dst}: ${two.stream.received} of ${STREAM_LINES} lines, client ${two.stream.client}`);
  say(`  zonemesh port add ${two.port.name} (${two.port.ip}) on ${two.port.hypervisor}: the call took ${two.port.callMs} ms; in the flows of ${Object.entries(two.port.seenMs).map(([hv, ms]) => `${hv} after ${ms} ms`).join(', ')}`);
  for (const f of two.flows) say(`  ${describeFlows(f)}`);
  results.push(check(Object.values(two.mastersAfter).every((m) => m === `ctl-${last}`), `every surviving bridge mastered by ctl-${last}`));
  results.push(check(times.length > 0 && times.every((ms) => ms < BOUND_MS), 'takeover within 5 s'));
  results.push(check(two.pings.every((p) => p.lost.length === 0), 'no ping lost'));
  results.push(check(two.stream.client === 'exit 0' && two.stream.received === STREAM_LINES, 'the stream was not reset and lost nothing'));
  results.push(check(two.flows.every((f) => f.problems.length === 0), 'no surviving flow deleted or re-added'));
  results.push(check(Object.values(two.port.seenMs).every((ms) => ms < BOUND_MS), 'the API\'s port on every surviving hypervisor within 5 s'));
  return results.every(Boolean);
}

async function main(command: string | undefined): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error('demo:ha: run as root (network namespaces, Open vSwitch): sudo npm run demo:ha');
    return 2;
  }
  if (command === 'down') {
    await overlayDown(stateDir, prefix);
    return 0;
  }
  if (command !== undefined) {
    console.error('usage: npm run demo:ha [-- down]');
    return 2;
  }
  say(`bringing up ${HA_MODEL}: 3 zones x 2 hypervisors, an etcd member and a controller per zone (state ${stateDir})`);
  const scenario = await overlayUp(HA_MODEL, { prefix, stateDir });
  let cluster: HaCluster | undefined;
  const teardown = async () => {
    await cluster?.stop();
    await scenario.down();
  };
  process.once('SIGINT', () => void teardown().then(() => process.exit(130)));
  try {
    cluster = await startHaCluster(scenario, HA_MODEL);
    const ok = await demo(scenario, cluster);
    say(ok ? '\nevery check held' : '\nsome checks failed (above)');
    return ok ? 0 : 1;
  } finally {
    say('tearing down (after an interrupted run: npm run demo:ha -- down)');
    await teardown();
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`demo:ha failed: ${(e as Error)?.stack ?? String(e)}`);
    console.error('tear down: npm run demo:ha -- down');
    process.exit(1);
  },
);
