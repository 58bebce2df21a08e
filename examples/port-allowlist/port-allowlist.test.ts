import test from 'ava';
import { L2LearningApp } from '../../src/apps/l2-learning';
import { silentLogger } from '../../src/controller';
import { OFPP } from '../../src/openflow';
import { FlowBuilder, FlowTableSim, Pipeline, makeCookie, tableMissFlows } from '../../src/sdk';
import { Runtime } from '../../src/runtime';
import { FakeSwitch, fakePort } from '../../test/helpers/fake-switch';
import { next, until } from '../../test/controller/util';
import { ALLOWLIST_TABLE, PortAllowlistApp, parseAllowlist, portFlows } from './app';

const WEB1_MAC = '02:00:00:00:00:01';
const STRANGER = '02:00:00:00:00:99';
const SETTINGS = { 'port-allowlist': { ports: { web1: [WEB1_MAC], web2: ['02:00:00:00:00:02', '02:00:00:00:00:03'] } } };

// Tier 1: the flows are plain data from plain inputs, so a pipeline and the flow simulator test them.
test('an allowlisted source goes on to the next table, any other is dropped', (t) => {
  const pipeline = new Pipeline([
    { name: ALLOWLIST_TABLE, stage: 'spoofguard', miss: 'drop', matches: ['in_port', 'eth_src'] },
    { name: 'l2', stage: 'l2', miss: 'controller', matches: [] },
  ]);
  const ctx = { pipeline, flow: (table: string, owner: string) => new FlowBuilder(pipeline, pipeline.table(table), makeCookie(50, owner)) };
  const flows = portFlows(ctx, fakePort(1, 'web1'), [WEB1_MAC]);
  const sim = new FlowTableSim([...flows, ...tableMissFlows(pipeline)]);

  const allowed = sim.inject({ eth_src: WEB1_MAC, eth_dst: STRANGER }, 1);
  t.deepEqual(allowed.trace.map((s) => s.tableId), [0, 1]);
  t.deepEqual(allowed.outputs.map((o) => o.port), [OFPP.CONTROLLER]);
  t.deepEqual(sim.inject({ eth_src: STRANGER, eth_dst: WEB1_MAC }, 1).outputs, [], 'unknown MAC: dropped');
  t.deepEqual(sim.inject({ eth_src: WEB1_MAC, eth_dst: STRANGER }, 2).outputs, [], 'right MAC, wrong port: dropped');
});

test('bad settings name the entry', (t) => {
  t.throws(() => parseAllowlist({ ports: { web1: ['nope'] } }), { message: 'port-allowlist: ports.web1 must be a list of MAC addresses' });
});

// Tier 2: the whole app in the runtime, composed with l2-learning, against a fake switch.
test('with l2-learning behind it, allowlisted traffic is learned and forwarded; port changes update the flows', async (t) => {
  const runtime = new Runtime({
    config: { apps: ['port-allowlist', 'l2-learning'], listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }], dial: [], logLevel: 'silent', settings: SETTINGS },
    registry: { 'port-allowlist': PortAllowlistApp, 'l2-learning': L2LearningApp },
    logger: silentLogger(),
    reconciler: { bundles: false },
  });
  t.teardown(() => runtime.stop());
  await runtime.start();
  t.deepEqual(runtime.pipeline.tables.map((x) => x.name), [ALLOWLIST_TABLE, 'l2-learning.mac'], 'spoofguard comes before l2');

  const sw = new FakeSwitch({ dpid: 1n, ports: [fakePort(1, 'web1'), fakePort(2, 'web2'), fakePort(3, 'db')] });
  t.teardown(() => sw.close());
  const synced = next(runtime.reconciler.synced$);
  await sw.connect({ transport: 'tcp', port: runtime.listening[0]!.port! });
  t.like(await synced, { adds: 3 + 2, errors: 0 }, 'three allowlist flows and two table-miss flows');

  let sim = new FlowTableSim(sw.flowTable.flows());
  t.deepEqual(sim.inject({ eth_src: WEB1_MAC, eth_dst: STRANGER }, 1).outputs.map((o) => o.port), [OFPP.CONTROLLER], 'on to l2-learning, which asks the controller');
  t.deepEqual(sim.inject({ eth_src: STRANGER, eth_dst: WEB1_MAC }, 3).outputs, []);

  sw.send({ type: 'PORT_STATUS', xid: 0, reason: 1, desc: fakePort(2, 'web2') }); // web2 deleted
  await until(() => sw.flowTable.size === 3);
  sw.send({ type: 'PORT_STATUS', xid: 0, reason: 0, desc: fakePort(9, 'web2') }); // and back as port 9
  await until(() => sw.flowTable.size === 5);
  sim = new FlowTableSim(sw.flowTable.flows());
  t.deepEqual(sim.inject({ eth_src: '02:00:00:00:00:02', eth_dst: STRANGER }, 9).outputs.map((o) => o.port), [OFPP.CONTROLLER]);
  t.deepEqual(sim.inject({ eth_src: '02:00:00:00:00:02', eth_dst: STRANGER }, 2).outputs, []);
});
