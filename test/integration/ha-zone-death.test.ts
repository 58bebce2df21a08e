/**
 * Issue 10, "a zone dies": 3 zones of 2 hypervisors, one etcd member and one controller per zone
 * (test/helpers/ha.ts, models/ha-three-zones.yaml), pings at 50 pps between VMs of the surviving
 * zones and a TCP stream.
 *
 * With one election per zone and zone preference, every bridge is first mastered by its own
 * zone's controller: the death of a whole zone would then orphan no surviving bridge. So:
 * 1. zone b's controller alone is SIGKILLed: another zone's controller (the heir) becomes master
 *    of both of b's bridges within 5 s; no ping is lost; no flow is deleted or re-added.
 * 2. the heir's whole zone dies at once (controller, etcd member, both hypervisors' OVS, their
 *    uplinks): b's bridges, whose master was in the dead zone, get the last zone's controller as
 *    master within 5 s, and the last zone's bridges keep theirs; no ping is lost; the stream is
 *    not reset; a port added through the API right after the kill is in every surviving bridge's
 *    flows within 5 s of the call.
 */
import test from 'ava';
import { join } from 'node:path';
import { HA_MODEL, describeFlows, describePing, killController, killWholeZone, masters, percentile, startHaCluster, waitHaReady, STREAM_LINES, type HaCluster } from '../helpers/ha';
import { overlayUp, type OverlayScenario } from '../helpers/overlay';
import { TEST_STATE_DIR } from '../helpers/run';

const BOUND_MS = 5_000;

let scenario: OverlayScenario;
let cluster: HaCluster;

test.before(async () => {
  scenario = await overlayUp(HA_MODEL, { prefix: 'zmha', stateDir: join(TEST_STATE_DIR, 'ha') });
  cluster = await startHaCluster(scenario, HA_MODEL);
});

test.after.always(async () => {
  await cluster?.stop();
  await scenario?.down();
});

test.serial('a zone dies: survivors keep pinging and streaming, their bridges get a surviving master within 5 s, and the API still reaches them', async (t) => {
  t.timeout(180_000);
  await waitHaReady(scenario);
  t.log(`masters: ${JSON.stringify(await masters(scenario))}`);

  // 1. zone b's controller alone
  const one = await killController(scenario, cluster, 'b', 'c');
  t.log(`ctl-b killed: zone b taken by ctl-${one.heir} after ${JSON.stringify(one.takeoverMs)} ms`);
  for (const p of one.pings) t.log(describePing(p));
  for (const f of one.flows) t.log(describeFlows(f));
  t.not(one.heir, 'b');
  t.deepEqual(Object.values(one.masters), Object.values(one.masters).map(() => `ctl-${one.heir}`), 'one term for the whole zone: both bridges to the heir');
  for (const [hv, ms] of Object.entries(one.takeoverMs)) t.true(ms < BOUND_MS, `${hv}: takeover ${ms} ms within ${BOUND_MS} ms`);
  for (const p of one.pings) t.deepEqual(p.lost, [], describePing(p));
  for (const f of one.flows) t.deepEqual(f.problems, [], describeFlows(f));

  // 2. the heir's whole zone
  const last = ['a', 'c'].find((z) => z !== one.heir)!;
  const two = await killWholeZone(scenario, cluster, one.heir, last);
  const times = Object.values(two.takeoverMs);
  t.log(`zone ${two.dead} killed in ${two.killMs} ms; masters before ${JSON.stringify(two.mastersBefore)}, after ${JSON.stringify(two.mastersAfter)}`);
  t.log(`takeover of the bridges whose master died: ${JSON.stringify(two.takeoverMs)} ms (p50 ${percentile(times, 50)}, max ${Math.max(...times)})`);
  t.log(`port ${two.port.name} added through the API on ${two.port.hypervisor} (the call took ${two.port.callMs} ms): in the flows of ${JSON.stringify(two.port.seenMs)} ms after the call`);
  for (const p of two.pings) t.log(describePing(p));
  t.log(`TCP stream ${two.stream.src} -> ${two.stream.dst}: ${two.stream.received} of ${STREAM_LINES} lines arrived, client: ${two.stream.client}`);
  for (const f of two.flows) t.log(describeFlows(f));

  t.deepEqual(Object.keys(two.takeoverMs).sort(), Object.keys(one.masters).sort(), 'zone b\'s bridges were the ones mastered from the dead zone');
  for (const [hv, master] of Object.entries(two.mastersAfter)) t.is(master, `ctl-${last}`, `${hv}: mastered by the last zone's controller`);
  for (const [hv, ms] of Object.entries(two.takeoverMs)) t.true(ms < BOUND_MS, `${hv}: takeover ${ms} ms within ${BOUND_MS} ms`);
  for (const [hv, ms] of Object.entries(two.port.seenMs)) t.true(ms < BOUND_MS, `${hv}: the new port ${ms} ms after the API call, within ${BOUND_MS} ms`);
  for (const p of two.pings) t.deepEqual(p.lost, [], describePing(p));
  t.is(two.stream.client, 'exit 0', 'the stream\'s client ended cleanly: not reset');
  t.is(two.stream.received, STREAM_LINES, 'every line of the stream arrived');
  // the new port adds flows and changes some actions in place (a subnet's flood list): none deleted or re-added
  for (const f of two.flows) t.deepEqual(f.problems, [], describeFlows(f));
});
