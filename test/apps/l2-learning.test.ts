import test, { type ExecutionContext } from 'ava';
import { L2LearningApp, L2_IDLE_TIMEOUT_S, L2_TABLE } from '../../src/apps/l2-learning';
import { silentLogger } from '../../src/controller';
import { numberToMac, OFP_NO_BUFFER, OFPCML_NO_BUFFER, OFPP, OFPPS_LINK_DOWN, type FlowMod, type OfMessageOf, type PacketIn } from '../../src/openflow';
import { buildPacket } from '../../src/packet';
import { DEFAULT_MAC_TABLE_SIZE, FlowTableSim, isEphemeral, makeCookie, type AppSettings } from '../../src/sdk';
import { Runtime } from '../../src/runtime';
import { FakeSwitch, fakePort } from '../../src/testing';
import { next, until } from '../controller/util';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const C = '02:00:00:00:00:0c';
const BROADCAST = 'ff:ff:ff:ff:ff:ff';

async function start(t: ExecutionContext, settings: AppSettings = {}): Promise<{ runtime: Runtime; app: L2LearningApp; sw: FakeSwitch }> {
  const runtime = new Runtime({
    config: { apps: ['l2-learning'], listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }], dial: [], logLevel: 'silent', settings },
    registry: { 'l2-learning': L2LearningApp },
    logger: silentLogger(),
    reconciler: { bundles: false },
  });
  t.teardown(() => runtime.stop());
  await runtime.start();
  const sw = new FakeSwitch({ dpid: 5n, ports: [fakePort(1), fakePort(2), fakePort(3)] });
  t.teardown(() => sw.close());
  const synced = next(runtime.reconciler.synced$);
  await sw.connect({ transport: 'tcp', port: runtime.listening[0]!.port! });
  await synced;
  return { runtime, app: runtime.apps[0] as L2LearningApp, sw };
}

function frame(src: string, dst: string): Buffer {
  return buildPacket([{ type: 'ethernet', src, dst, ethType: 0x0800 }, { type: 'raw', data: Buffer.alloc(46) }]);
}

function packetIn(inPort: number, src: string, dst: string, o: { bufferId?: number; tableId?: number } = {}): PacketIn {
  const data = frame(src, dst);
  return {
    type: 'PACKET_IN', xid: 0, bufferId: o.bufferId ?? OFP_NO_BUFFER, totalLen: data.length, reason: 0, tableId: o.tableId ?? 0, cookie: 0n,
    match: [{ field: 'in_port', value: inPort }], data,
  };
}

/** Sends packet-ins and waits until the controller answered each with a packet-out (or `outs` of them). */
async function send(sw: FakeSwitch, pins: PacketIn[], outs = pins.length): Promise<void> {
  const before = sw.count('PACKET_OUT');
  for (const p of pins) sw.send(p);
  await until(() => sw.count('PACKET_OUT') >= before + outs);
}

const learned = (sw: FakeSwitch) => sw.received.filter((m): m is FlowMod => m.type === 'FLOW_MOD' && m.command === 'add' && m.idleTimeout > 0);
const lastOut = (sw: FakeSwitch) => sw.received.filter((m): m is OfMessageOf<'PACKET_OUT'> => m.type === 'PACKET_OUT').at(-1)!;

test('one table whose misses go to the controller', async (t) => {
  const { runtime, sw } = await start(t);
  t.deepEqual(runtime.pipeline.tables.map((x) => x.name), [L2_TABLE]);
  t.deepEqual(
    sw.flowTable.flows().map((f) => [f.tableId, f.priority, f.instructions]),
    [[0, 0, [{ type: 'apply_actions', actions: [{ type: 'output', port: OFPP.CONTROLLER, maxLen: OFPCML_NO_BUFFER }] }]]],
  );
});

test('an unknown destination is flooded and the source learned with an idle-timed ephemeral flow', async (t) => {
  const { app, sw } = await start(t);
  const pin = packetIn(1, A, BROADCAST);
  await send(sw, [pin]);
  t.deepEqual(lastOut(sw), { type: 'PACKET_OUT', xid: lastOut(sw).xid, bufferId: OFP_NO_BUFFER, inPort: 1, actions: [{ type: 'output', port: OFPP.FLOOD, maxLen: 0 }], data: pin.data });
  t.deepEqual([...app.learned(5n)], [[A, 1]]);
  const [fm] = learned(sw);
  t.like(fm, { tableId: 0, priority: 100, idleTimeout: L2_IDLE_TIMEOUT_S, hardTimeout: 0, match: [{ field: 'eth_dst', value: A }] });
  t.deepEqual(fm!.instructions, [{ type: 'apply_actions', actions: [{ type: 'output', port: 1, maxLen: 0 }] }]);
  t.true(isEphemeral(fm!.cookie), 'reactive flows carry the ephemeral bit: the reconciler leaves them alone');
  t.is(fm!.cookie, makeCookie(2, 'port:1', true));
});

test('a known destination gets its flow (its miss proves it is gone) and the packet goes straight there', async (t) => {
  const { sw } = await start(t);
  await send(sw, [packetIn(1, A, BROADCAST)]);
  await send(sw, [packetIn(2, B, A)]);
  t.deepEqual(lastOut(sw).actions, [{ type: 'output', port: 1, maxLen: 0 }]);
  t.deepEqual(learned(sw).map((f) => f.match[0]!.field === 'eth_dst' && f.match[0]!.value), [A, B, A]);

  // The switch now forwards A <-> B by itself: check with the flow simulator over the fake switch's table.
  const sim = new FlowTableSim(sw.flowTable.flows());
  t.deepEqual(sim.inject({ eth_src: B, eth_dst: A }, 2).outputs.map((o) => o.port), [1]);
  t.deepEqual(sim.inject({ eth_src: A, eth_dst: B }, 1).outputs.map((o) => o.port), [2]);
  t.deepEqual(sim.inject({ eth_src: A, eth_dst: C }, 1).outputs.map((o) => o.port), [OFPP.CONTROLLER], 'unknown destinations still miss to us');
});

test('a buffered packet is released by buffer id, without its data', async (t) => {
  const { sw } = await start(t);
  await send(sw, [packetIn(1, A, BROADCAST, { bufferId: 77 })]);
  t.like(lastOut(sw), { bufferId: 77, inPort: 1 });
  t.is(lastOut(sw).data.length, 0);
});

test('nothing is sent back out of the port the destination sits behind; multicast sources are never learned', async (t) => {
  const { app, sw } = await start(t);
  await send(sw, [packetIn(1, A, BROADCAST)]);
  await send(sw, [packetIn(1, C, A), packetIn(2, B, BROADCAST)], 1); // only the second gets a packet-out
  await until(() => app.learned(5n).size === 3);
  t.deepEqual(lastOut(sw).inPort, 2);
  await send(sw, [packetIn(3, '01:00:5e:00:00:01', BROADCAST)]);
  t.false(app.learned(5n).has('01:00:5e:00:00:01'));
});

test('a MAC that moves is learned on its new port', async (t) => {
  const { app, sw } = await start(t);
  await send(sw, [packetIn(1, A, BROADCAST)]);
  await send(sw, [packetIn(3, A, BROADCAST)]);
  t.is(app.learned(5n).get(A), 3);
  const flows = sw.flowTable.flows().filter((f) => f.priority === 100);
  t.is(flows.length, 1, 'the add replaced the flow of the old port');
  t.is(flows[0]!.cookie, makeCookie(2, 'port:3', true));
});

test('a port going down removes the flows learned on it (one delete by cookie) and forgets its MACs', async (t) => {
  const { app, sw } = await start(t);
  await send(sw, [packetIn(1, A, BROADCAST), packetIn(2, B, BROADCAST), packetIn(1, C, BROADCAST)]);
  await until(() => sw.flowTable.size === 4);
  sw.send({ type: 'PORT_STATUS', xid: 0, reason: 2, desc: { ...fakePort(1), state: OFPPS_LINK_DOWN } });
  const del = await sw.firstMessage('FLOW_MOD', (m) => m.command === 'delete');
  t.like(del, { cookie: makeCookie(2, 'port:1', true), cookieMask: 0xffffffffffffffffn, tableId: 0xff });
  await until(() => sw.flowTable.size === 2);
  t.deepEqual([...app.learned(5n)], [[B, 2]]);
  await send(sw, [packetIn(2, B, A)]);
  t.deepEqual(lastOut(sw).actions, [{ type: 'output', port: OFPP.FLOOD, maxLen: 0 }], 'A is unknown again');
});

test('a switch going down is forgotten; reconnecting, its learned flows are left alone by the reconciler', async (t) => {
  const { runtime, app, sw } = await start(t);
  await send(sw, [packetIn(1, A, BROADCAST)]);
  const down = next(runtime.controller.switchDown$);
  sw.disconnect();
  await down;
  t.is(app.learned(5n).size, 0);
  const synced = next(runtime.reconciler.synced$);
  await sw.connect({ transport: 'tcp', port: runtime.listening[0]!.port! });
  t.like(await synced, { deletes: 0, modifies: 0, adds: 0 });
  t.is(sw.flowTable.size, 2);
});

test('packet-ins from other tables are not ours', async (t) => {
  const { app, sw } = await start(t);
  sw.send(packetIn(1, A, BROADCAST, { tableId: 9 }));
  await send(sw, [packetIn(2, B, BROADCAST)]);
  t.deepEqual([...app.learned(5n).keys()], [B]);
});

test('a flood of source MACs past macTableSize keeps the table at its bound; evicted MACs keep their flows until they idle out', async (t) => {
  const { app, sw } = await start(t, { 'l2-learning': { macTableSize: 16 } });
  t.is(app.macTableSize, 16);
  const flood = Array.from({ length: 100 }, (_, i) => packetIn(1 + (i % 3), numberToMac(0x020000001000 + i), BROADCAST));
  await send(sw, flood);
  t.is(app.learned(5n).size, 16);
  t.is(app.evictions(5n), 84);
  await until(() => learned(sw).length === 100);
  t.is(sw.received.filter((m) => m.type === 'FLOW_MOD' && m.command !== 'add').length, 0, 'no flow deleted for an eviction');
  t.is(sw.flowTable.size, 101, 'every learned flow and the table miss');
});

test('macTableSize defaults to 8192 and is checked', (t) => {
  t.is(new L2LearningApp({}).macTableSize, DEFAULT_MAC_TABLE_SIZE);
  t.is(DEFAULT_MAC_TABLE_SIZE, 8192);
  for (const bad of [0, 1.5, '100', 2 ** 25]) {
    t.throws(() => new L2LearningApp({ 'l2-learning': { macTableSize: bad } }), { message: /macTableSize: must be an integer 1\.\.16777216/ });
  }
  t.throws(() => new L2LearningApp({ 'l2-learning': { macTablesize: 10 } }), { message: /macTablesize: is not a setting of l2-learning/ });
});
