import test from 'ava';
import { NX_CT_F_COMMIT, NX_NAT_F_SRC, OFPP } from '../../src/openflow';
import { makeCookie } from '../../src/sdk/cookie';
import { FlowBuilder } from '../../src/sdk/flow';
import { Pipeline } from '../../src/sdk/pipeline';
import { bucket } from '../../src/sdk/group';
import { CT_STATE, FlowTableSim, SimUnsupportedError } from '../../src/sdk/sim';

const pipeline = new Pipeline([
  { name: 'in', stage: 'classify', miss: 'drop', matches: ['in_port', 'reg0', 'eth_type', 'nw_ttl'] },
  { name: 'track', stage: 'acl', miss: 'drop', matches: ['ct_state', 'eth_type'], maskable: ['ct_state'] },
]);
const cookie = makeCookie(2, 'sim');
const b = (table: string) => new FlowBuilder(pipeline, pipeline.table(table), cookie);
const out = (port: number) => ({ type: 'output' as const, port, maxLen: 0 });
const ip = { eth_type: 0x0800, ipv4_src: '10.0.0.1', ipv4_dst: '10.0.0.2', ip_proto: 6, tcp_src: 1000, tcp_dst: 80 };

test('output never returns a packet to its in_port unless told IN_PORT, as in OpenFlow', (t) => {
  const sim = new FlowTableSim([b('in').priority(1).apply(out(1), out(2), out(OFPP.IN_PORT)).build()]);
  t.deepEqual(sim.inject({}, 1).outputs.map((o) => o.port), [2, 1]);
});

test('registers and metadata read as zero until written', (t) => {
  const sim = new FlowTableSim([b('in').priority(1).match({ reg0: 0 }).apply(out(5)).build()]);
  t.is(sim.inject({}, 1).outputs.length, 1);
});

test('dec_ttl works on nw_ttl, the field flows match, and stops at 1', (t) => {
  const sim = new FlowTableSim([b('in').priority(1).apply({ type: 'dec_ttl' }, out(2)).build()]);
  t.is(sim.inject({ ...ip, nw_ttl: 9 }, 1).outputs[0]!.packet.nw_ttl, 8);
  t.is(sim.inject({ ...ip, nw_ttl: 1 }, 1).end, 'ttl');
});

test('ct: the recirculated copy sees the state; committed connections are established both ways; commit without table= goes on untouched', (t) => {
  const track = { type: 'ct' as const, flags: 0, zone: 7, recircTable: pipeline.table('track').id, alg: 0, actions: [] };
  const commit = { type: 'ct' as const, flags: NX_CT_F_COMMIT, zone: 7, recircTable: 255, alg: 0, actions: [] };
  const sim = new FlowTableSim([
    b('in').priority(2).match({ in_port: 3 }).apply(commit, out(9)).build(),
    b('in').priority(1).apply(track).build(),
    b('track').priority(2).match({ ct_state: { value: 0x22, mask: 0x22 } }).apply(out(2)).build(),
    b('track').priority(1).match({ ct_state: { value: 0x21, mask: 0x21 } }).apply(out(4)).build(),
  ]);
  t.deepEqual(sim.inject(ip, 1).outputs.map((o) => o.port), [4], 'new');
  const committed = sim.inject(ip, 3);
  t.deepEqual(committed.outputs.map((o) => o.port), [9]);
  t.false('ct_state' in committed.outputs[0]!.packet, 'no recirculation, no new ct_state');
  const reply = { ...ip, ipv4_src: ip.ipv4_dst, ipv4_dst: ip.ipv4_src, tcp_src: 80, tcp_dst: 1000 };
  t.deepEqual(sim.inject(reply, 1).outputs.map((o) => o.port), [2], 'established reply');
});

test('ct: a forced ct_state (ofproto/trace --ct-next) wins over the simulated conntrack; each step records its flow and packet', (t) => {
  const track = { type: 'ct' as const, flags: 0, zone: 7, recircTable: pipeline.table('track').id, alg: 0, actions: [] };
  const established = b('track').priority(2).match({ ct_state: { value: 0x22, mask: 0x22 } }).apply(out(2)).build();
  const sim = new FlowTableSim([b('in').priority(1).apply(track).build(), established]);
  t.deepEqual(sim.inject(ip, 1).outputs, [], 'a first packet is new: no flow for it');
  const r = sim.inject(ip, 1, { ctState: CT_STATE.trk | CT_STATE.est });
  t.deepEqual(r.outputs.map((o) => o.port), [2]);
  t.deepEqual(r.trace.map((s) => [s.tableId, s.priority, s.packet.ct_state]), [[0, 1, undefined], [1, 2, 0x22]]);
  t.is(r.trace[1]!.flow, established);
});

test('select groups: one bucket per connection (the same for its every packet), none when every weight is 0; an unknown group is an error', (t) => {
  const group = (weights: number[]) => ({ groupId: 7, groupType: 'select' as const, buckets: weights.map((weight, i) => ({ weight, watchPort: OFPP.ANY, watchGroup: 0xffffffff, actions: [out(10 + i)] })) });
  const flows = [b('in').priority(1).apply({ type: 'group', groupId: 7 }).build()];
  const sim = new FlowTableSim(flows, [group([1, 1, 1])]);
  const ports = (tcp_src: number) => sim.inject({ ...ip, tcp_src }, 1).outputs.map((o) => o.port);
  t.is(ports(1000).length, 1);
  t.deepEqual(ports(1000), ports(1000));
  t.deepEqual([...new Set([...Array(30).keys()].flatMap((i) => ports(2000 + i)))].sort(), [10, 11, 12], 'connections spread over every bucket');
  t.deepEqual(new FlowTableSim(flows, [group([0, 0])]).inject(ip, 1).outputs, []);
  t.throws(() => new FlowTableSim(flows).inject(ip, 1), { message: /group 7 is not in the simulated switch/ });
});

test("each step records the groups its flow ran and the buckets taken: the output's for select, every one for all, none when no bucket is live", (t) => {
  const groups = [
    { groupId: 1, groupType: 'select' as const, buckets: [bucket([out(2)], 1), bucket([out(3)], 1)] },
    { groupId: 2, groupType: 'all' as const, buckets: [bucket([out(4)]), bucket([out(5)])] },
    { groupId: 3, groupType: 'select' as const, buckets: [bucket([out(6)], 0)] },
  ];
  const flows = [b('in').priority(1).apply({ type: 'group', groupId: 1 }, { type: 'group', groupId: 2 }, { type: 'group', groupId: 3 }).build()];
  const r = new FlowTableSim(flows, groups).inject(ip, 1);
  const [step] = r.trace;
  t.deepEqual(step!.groups!.map((g) => [g.group.groupId, g.taken]), [
    [1, [r.outputs[0]!.port - 2]],
    [2, [0, 1]],
    [3, []],
  ]);
  t.deepEqual(r.outputs.map((o) => o.port).slice(1), [4, 5]);
  t.is(new FlowTableSim([b('in').priority(1).apply(out(2)).build()]).inject(ip, 1).trace[0]!.groups, undefined, 'a flow without groups records none');
});

test('ct nat: the opening direction is translated to the destination, the reply back to the original; a packet tracked in the zone keeps its state', (t) => {
  const natTo = { type: 'ct' as const, flags: NX_CT_F_COMMIT, zone: 5, recircTable: pipeline.table('track').id, alg: 0, actions: [{ type: 'nat' as const, flags: 2, ipv4Min: '10.0.0.9', protoMin: 8080 }] };
  const unNat = { type: 'ct' as const, flags: 0, zone: 5, recircTable: pipeline.table('track').id, alg: 0, actions: [{ type: 'nat' as const, flags: 0 }] };
  const again = { type: 'ct' as const, flags: 0, zone: 5, recircTable: 255, alg: 0, actions: [] };
  const sim = new FlowTableSim([
    b('in').priority(2).match({ in_port: 1 }).apply(natTo).build(),
    b('in').priority(2).match({ in_port: 2 }).apply(unNat).build(),
    b('track').priority(1).apply(again, out(3)).build(),
  ]);
  const first = sim.inject(ip, 1);
  t.like(first.outputs[0]!.packet, { ipv4_dst: '10.0.0.9', tcp_dst: 8080, ct_state: CT_STATE.trk | CT_STATE.new });
  const reply = sim.inject({ ...ip, ipv4_src: '10.0.0.9', ipv4_dst: '10.0.0.1', tcp_src: 8080, tcp_dst: 1000 }, 2);
  t.like(reply.outputs[0]!.packet, { ipv4_src: '10.0.0.2', tcp_src: 80, ct_state: CT_STATE.trk | CT_STATE.est | CT_STATE.rpl });
});

test('ct nat: a committed connection takes the lowest free port of its range, keeps it, and its replies are untranslated; a full range leaves packets untranslated', (t) => {
  const snat = (lo: number, hi: number) => ({ type: 'ct' as const, flags: NX_CT_F_COMMIT, zone: 7, recircTable: 255, alg: 0, actions: [{ type: 'nat' as const, flags: NX_NAT_F_SRC, ipv4Min: '192.0.2.9', ipv4Max: '192.0.2.9', protoMin: lo, protoMax: hi }] });
  const unnat = { type: 'ct' as const, flags: 0, zone: 7, recircTable: 255, alg: 0, actions: [{ type: 'nat' as const, flags: 0 }] };
  const sim = new FlowTableSim([b('in').priority(2).match({ in_port: 1 }).apply(snat(5000, 5001), out(9)).build(), b('in').priority(1).apply(unnat, out(8)).build()]);
  const first = sim.inject(ip, 1).outputs[0]!.packet;
  t.deepEqual([first.ipv4_src, first.tcp_src], ['192.0.2.9', 5000]);
  t.is(sim.inject(ip, 1).outputs[0]!.packet.tcp_src, 5000, 'the same connection keeps its port');
  t.is(sim.inject({ ...ip, tcp_src: 1001 }, 1).outputs[0]!.packet.tcp_src, 5001);
  t.is(sim.inject({ ...ip, tcp_src: 1002 }, 1).outputs[0]!.packet.ipv4_src, ip.ipv4_src, 'no port left: untranslated');
  const reply = sim.inject({ ...ip, ipv4_src: ip.ipv4_dst, ipv4_dst: '192.0.2.9', tcp_src: 80, tcp_dst: 5001 }, 2).outputs[0]!.packet;
  t.deepEqual([reply.ipv4_dst, reply.tcp_dst], [ip.ipv4_src, 1001]);
  const stranger = sim.inject({ ...ip, ipv4_src: ip.ipv4_dst, ipv4_dst: '192.0.2.9', tcp_src: 80, tcp_dst: 5007 }, 2).outputs[0]!.packet;
  t.is(stranger.ipv4_dst, '192.0.2.9', 'no connection: nothing to reverse');
});

test('groups: a bucket whose watch port is dead is never taken: select spreads over the live ones, fast_failover takes the first live; with none live the copy is dropped; an indirect group is unsupported', (t) => {
  const watching = (port: number, actions: ReturnType<typeof out>[]) => ({ ...bucket(actions, 100), watchPort: port });
  const groups = [
    { groupId: 1, groupType: 'select' as const, buckets: [watching(7, [out(2)]), watching(8, [out(3)])] },
    { groupId: 2, groupType: 'fast_failover' as const, buckets: [watching(7, [out(4)]), watching(8, [out(5)])] },
  ];
  const via = (id: number, dead: number[]) => new FlowTableSim([b('in').priority(1).apply({ type: 'group', groupId: id }, out(6)).build()], groups).inject(ip, 1, { deadPorts: new Set(dead) }).outputs.map((o) => o.port);
  t.deepEqual(via(1, [7]), [3, 6]);
  t.deepEqual(via(1, [8]), [2, 6]);
  t.deepEqual(via(1, [7, 8]), [6], 'no live bucket: the group drops its copy');
  t.deepEqual(via(2, []), [4, 6]);
  t.deepEqual(via(2, [7]), [5, 6]);
  t.deepEqual(via(2, [7, 8]), [6]);
  const indirect = { groupId: 3, groupType: 'indirect' as const, buckets: [bucket([out(2)])] };
  t.throws(() => new FlowTableSim([b('in').priority(1).apply({ type: 'group', groupId: 3 }).build()], [indirect]).inject(ip, 1), { instanceOf: SimUnsupportedError });
});
