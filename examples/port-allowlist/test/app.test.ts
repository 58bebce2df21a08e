import test from 'ava';
import { FlowBuilder, OFPP, OFPPR, Pipeline, makeCookie, tableMissFlows } from 'zonemesh/sdk';
import { FakeSwitch, FlowTableSim, fakePort, runApps } from 'zonemesh/testing';
import PortAllowlistApp, { ALLOWLIST_TABLE, PORT_ALLOWLIST_APP_ID, parseAllowlist, portFlows } from '../src/app';

const WEB1_MAC = '02:00:00:00:00:01';
const STRANGER = '02:00:00:00:00:99';
const SETTINGS = { 'port-allowlist': { ports: { web1: [WEB1_MAC], web2: ['02:00:00:00:00:02', '02:00:00:00:00:03'] } } };

// Tier 1: the flows are plain data from plain inputs, so a pipeline and the flow simulator test them.
test('an allowlisted source goes on to the next table, any other is dropped', (t) => {
  const pipeline = new Pipeline([
    { name: ALLOWLIST_TABLE, stage: 'spoofguard', miss: 'drop', matches: ['in_port', 'eth_src'] },
    { name: 'l2', stage: 'l2', miss: 'controller', matches: [] },
  ]);
  const ctx = { pipeline, flow: (table: string, owner: string) => new FlowBuilder(pipeline, pipeline.table(table), makeCookie(PORT_ALLOWLIST_APP_ID, owner)) };
  const sim = new FlowTableSim([...portFlows(ctx, fakePort(1, 'web1'), [WEB1_MAC]), ...tableMissFlows(pipeline)]);

  const allowed = sim.inject({ eth_src: WEB1_MAC, eth_dst: STRANGER }, 1);
  t.deepEqual(allowed.trace.map((s) => s.tableId), [0, 1]);
  t.deepEqual(allowed.outputs.map((o) => o.port), [OFPP.CONTROLLER]);
  t.deepEqual(sim.inject({ eth_src: STRANGER, eth_dst: WEB1_MAC }, 1).outputs, [], 'unknown MAC: dropped');
  t.deepEqual(sim.inject({ eth_src: WEB1_MAC, eth_dst: STRANGER }, 2).outputs, [], 'right MAC, wrong port: dropped');
});

test('bad settings name the entry', (t) => {
  t.throws(() => parseAllowlist({ ports: { web1: ['nope'] } }), { message: 'settings.port-allowlist: ports.web1: must be a list of MAC addresses' });
});

// Tier 2: the app in a real runtime, against a fake switch with an OVS-like flow table.
test('a switch gets one flow per allowed (port, MAC); port changes update them', async (t) => {
  const apps = await runApps({ apps: { 'port-allowlist': PortAllowlistApp }, settings: SETTINGS });
  t.teardown(() => apps.stop());
  const sw = new FakeSwitch({ dpid: 1n, ports: [fakePort(1, 'web1'), fakePort(2, 'web2'), fakePort(3, 'db')] });
  t.teardown(() => sw.close());
  t.like(await apps.connect(sw), { adds: 3 + 1, errors: 0 }, 'three allowlist flows and the table-miss flow');

  const sim = new FlowTableSim(sw.flowTable.flows());
  t.deepEqual(sim.inject({ eth_src: WEB1_MAC, eth_dst: STRANGER }, 1).trace.map((s) => s.tableId), [0]);
  t.deepEqual(sim.inject({ eth_src: STRANGER, eth_dst: WEB1_MAC }, 3).outputs, []);

  const deleted = sw.nextMessage('FLOW_MOD', (m) => m.command === 'delete_strict' || m.command === 'delete');
  sw.send({ type: 'PORT_STATUS', xid: 0, reason: OFPPR.DELETE, desc: fakePort(2, 'web2') });
  await deleted;
  t.is(sw.flowTable.size, 2, 'web2 deleted: its two flows are gone');
});
