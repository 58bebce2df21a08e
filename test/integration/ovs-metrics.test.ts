/**
 * `zonemesh run --metrics` against a real Open vSwitch: the static-flows app on a netdev bridge
 * between two namespaces, /metrics scraped over HTTP while they ping each other. The port counters
 * come from the switch's OFPMP_PORT_STATS, so they must rise by at least the pings sent, in each
 * direction, on each port; the flow counts and the table-miss drops come from the bridge too.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STATIC_TABLE } from '../../src/apps/static-flows/app';
import { assertOvsRunning } from '../helpers/ovs';
import { BASE_FLOWS, ControllerProcess, createLab, pingOnce, runConfigYaml, testDir, until } from '../helpers/restart';
import { freePort, run } from '../helpers/run';
import { sampleValue, samples, scrape } from '../helpers/metrics';

const PREFIX = 'zmm-m';
const PINGS = 20;
const POLL_MS = 1_000;

test.before(assertOvsRunning);

test.serial('port rx/tx packet counters on /metrics rise by at least the pings sent', async (t) => {
  t.timeout(180_000);
  const dir = testDir('ovs-metrics');
  const [port, metricsPort] = [await freePort(), await freePort()];
  const config = join(dir, 'run.yaml');
  writeFileSync(config, `${runConfigYaml(port, join(dir, 'control.sock'), BASE_FLOWS)}metrics: { listen: '127.0.0.1:${metricsPort}', pollIntervalMs: ${POLL_MS} }\n`);
  const lab = await createLab(t, PREFIX);
  const [h1] = lab.hosts;
  const ctl = new ControllerProcess(t, config);
  await ctl.waitFor('metrics served', (l) => l.msg === 'serving metrics', 60_000);
  await lab.addBridge(`tcp:127.0.0.1:${port}`);
  await ctl.fullSync(60_000);

  const veth = (i: 1 | 2) => ({ vpc: '', subnet: '', port: `${PREFIX}${i}` });
  const counters = (text: string) => ({
    rx1: sampleValue(text, 'zonemesh_port_receive_packets_total', veth(1)),
    tx1: sampleValue(text, 'zonemesh_port_transmit_packets_total', veth(1)),
    rx2: sampleValue(text, 'zonemesh_port_receive_packets_total', veth(2)),
    tx2: sampleValue(text, 'zonemesh_port_transmit_packets_total', veth(2)),
  });
  const polls = (text: string) => samples(text, 'zonemesh_stats_poll_duration_seconds_count')[0]?.value ?? 0;
  // a poll begun after the sync (one in flight at its end may report the switch before its flows),
  // so "before" is the switch's counters and not a series still missing
  const pollsAtSync = polls(await scrape(metricsPort));
  let text = await until('a stats poll begun after the sync', 30_000, async () => {
    const s = await scrape(metricsPort);
    return polls(s) >= pollsAtSync + 2 && samples(s, 'zonemesh_port_receive_packets_total', veth(1)).length === 1 ? s : undefined;
  });
  const flows = BASE_FLOWS.length + 1;
  t.is(sampleValue(text, 'zonemesh_switch_flows_installed'), flows, 'OFPMP_AGGREGATE_STATS: the static flows and the table-miss flow');
  t.is(sampleValue(text, 'zonemesh_switch_flows_desired'), flows);
  t.is(sampleValue(text, 'zonemesh_switch_up'), 1);
  t.is(sampleValue(text, 'zonemesh_reconcile_runs_total', { kind: 'full' }), 1);
  t.is(sampleValue(text, 'zonemesh_flow_mods_sent_total', { command: 'add' }), flows);
  const before = counters(text);
  const droppedBefore = sampleValue(text, 'zonemesh_dropped_packets_total', { reason: 'table_miss', table: STATIC_TABLE });

  const ping = await pingOnce(t, h1, lab.ip(2), PINGS);
  t.is(ping?.received, PINGS, 'every ping answered');
  // IPv4 to an address no flow matches (its MAC given, so no ARP is needed): the table-miss drops it
  await run('ip', ['netns', 'exec', h1, 'ip', 'neigh', 'replace', '10.0.0.77', 'lladdr', '02:00:00:00:00:77', 'dev', 'eth0']);
  const lost = await pingOnce(t, h1, '10.0.0.77', 2);
  t.is(lost?.received, 0);

  const pollsAfterPing = polls(await scrape(metricsPort)) + 1;
  text = await until('a poll after the pings', 30_000, async () => {
    const s = await scrape(metricsPort);
    return polls(s) > pollsAfterPing ? s : undefined;
  });
  const after = counters(text);
  const rose = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof typeof before]]));
  t.log(`port counters rose by ${JSON.stringify(rose)} for ${PINGS} pings`);
  for (const [k, v] of Object.entries(rose)) t.true(v >= PINGS, `${k} rose by ${v}, at least the ${PINGS} pings`);
  const dropped = sampleValue(text, 'zonemesh_dropped_packets_total', { reason: 'table_miss', table: STATIC_TABLE }) - droppedBefore;
  t.true(dropped >= 2, `the table-miss flow counted ${dropped} drops for 2 pings to nobody (IPv4 to 10.0.0.77 matches no flow)`);
  t.true(sampleValue(text, 'zonemesh_switch_echo_rtt_seconds') > 0);
  t.deepEqual(samples(text, 'zonemesh_stats_poll_failures_total').filter((s) => s.value > 0), []);
  t.log(
    text
      .split('\n')
      .filter((l) => /^zonemesh_(port_(receive|transmit)_packets|dropped_packets|switch_flows|switch_echo|reconcile_runs|flow_mods)/.test(l))
      .join('\n'),
  );
  t.deepEqual(ctl.problems(), [], 'no warning or error logged');
});
