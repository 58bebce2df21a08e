import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { bindAppServices } from '../../src/apps/registry';
import { BackendHealthBoard } from '../../src/apps/lb-health';
import { ArpResponderApp } from '../../src/apps/arp-responder';
import {
  LB_AFFINITY_TABLE,
  LB_BACKEND_TABLE,
  LB_VIP_TABLE,
  LOAD_BALANCER_APP_ID,
  LOAD_BALANCER_TABLES,
  LoadBalancerApp,
  ALL_HEALTHY,
  affinityCookie,
  compileLoadBalancer,
  deadBackendFlushes,
  lbGroups,
  vipGroupKey,
  type Healthy,
} from '../../src/apps/load-balancer';
import { TunnelMeshApp } from '../../src/apps/tunnel-mesh';
import { DistributedRouterApp } from '../../src/apps/distributed-router';
import { AclApp } from '../../src/apps/acl';
import { type LoadBalancer, type NetworkModel, TUNNEL_OFPORT, loadModelFile } from '../../src/model';
import { type Action, type Experimenter, type FlowMod, type GroupMod, decodeCtFlush, formatActions, isCtFlush } from '../../src/openflow';
import { BACKEND_HEALTH, type Group, Pipeline, flowsOn, groupIdOf, makeCookie, type Container } from '../../src/sdk';
import { FakeSwitch, FlowTableSim, TestModelStore, fakePort } from '../../src/testing';
import { ipv4Of, runApps } from '../../src/testing';
import { REPO_ROOT } from '../helpers/paths';
import { COMPILERS, Fabric, PIPELINE, ownersText, switchFlows, viewOf } from './helpers';

/**
 * The load-balancer app's compiler on models/load-balancer.yaml: flows and groups as golden text,
 * zone affinity and health in the groups' buckets, the VIP's ARP answer through the overlay, and the
 * app against a fake switch: a health transition is group modifies only.
 */
const MODEL_FILE = join(REPO_ROOT, 'models', 'load-balancer.yaml');
const VIP_SPREAD = '10.1.1.100';
const model = (): NetworkModel => loadModelFile(MODEL_FILE);
const LB_PIPELINE = new Pipeline([...PIPELINE.tables, ...LOAD_BALANCER_TABLES]);
const GOLDEN = join(REPO_ROOT, 'test', 'apps', 'golden', 'load-balancer.txt');

function groupsText(m: NetworkModel, healthy: Healthy = ALL_HEALTHY): string {
  const view = viewOf(m);
  const hv = (dpid: bigint) => m.hypervisors.find((h) => h.datapathId === dpid)!.name;
  const tableName = (id: string) => LB_PIPELINE.tables.find((t) => t.id === Number(id))?.name ?? id;
  const lines: string[] = [];
  for (const vpc of view.vpcs) {
    for (const lb of vpc.loadBalancers) {
      for (const [dpid, groups] of lbGroups(LB_PIPELINE, vpc, lb, healthy)) {
        lines.push(`# ${vpc.vpc.name}/${lb.name} @ ${hv(dpid)}`);
        for (const g of groups) {
          const buckets = g.buckets.map((b) => `bucket=weight:${b.weight},actions=${formatActions(b.actions)}`).join(',');
          lines.push(`group_id=0x${g.groupId.toString(16)},type=${g.groupType},${buckets}`.replace(/table=(\d+)/g, (_, id: string) => `table=${tableName(id)}`).replace(/resubmit\(,(\d+)\)/g, (_, id: string) => `resubmit(,${tableName(id)})`));
        }
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

test('golden flows and groups for models/load-balancer.yaml', (t) => {
  const m = model();
  const hv = (dpid: bigint) => m.hypervisors.find((h) => h.datapathId === dpid)!.name;
  const actual = `${ownersText(compileLoadBalancer(LB_PIPELINE, viewOf(m)), hv, LB_PIPELINE)}${groupsText(m)}`;
  if (process.env.UPDATE_GOLDEN) writeFileSync(GOLDEN, actual);
  t.is(actual, readFileSync(GOLDEN, 'utf8'));
});

const vpcOf = (m: NetworkModel, name: string) => viewOf(m).vpcByName.get(name)!;
const lbOf = (m: NetworkModel, vpc: string, name: string) => vpcOf(m, vpc).loadBalancers.find((l) => l.name === name)!;
/** backend IPs of a group's buckets, in order, with weights */
const backendsOf = (g: Group) => g.buckets.map((b) => `${natDst(b.actions) ?? regOf(b.actions)}*${b.weight}`);
const natDst = (actions: Action[]) => {
  const ct = actions.find((a) => a.type === 'ct') as Extract<Action, { type: 'ct' }> | undefined;
  const nat = ct?.actions.find((a) => a.type === 'nat') as Extract<Action, { type: 'nat' }> | undefined;
  return nat && `${nat.ipv4Min}:${nat.protoMin}`;
};
const regOf = (actions: Action[]) => {
  const set = actions.find((a) => a.type === 'set_field') as Extract<Action, { type: 'set_field' }> | undefined;
  return set && set.field.field !== 'unknown' && `reg2=${String(set.field.value)}`;
};
const hvDpid = (m: NetworkModel, name: string) => m.hypervisors.find((h) => h.name === name)!.datapathId;

test('every hypervisor of the VPC gets one select group per VIP port, a bucket per backend in rotation', (t) => {
  const m = model();
  const groups = lbGroups(LB_PIPELINE, vpcOf(m, 'blue'), lbOf(m, 'blue', 'spread'), ALL_HEALTHY);
  t.deepEqual([...groups.keys()].sort(), [0x11n, 0x12n, 0x13n, 0x14n], 'every hypervisor hosting a port of blue');
  for (const [, [g]] of groups) {
    t.is(g!.groupType, 'select');
    t.is(g!.groupId, groupIdOf(LOAD_BALANCER_APP_ID, vipGroupKey(lbOf(m, 'blue', 'spread'), 80)));
    t.deepEqual(backendsOf(g!), ['10.1.2.11:8080*1', '10.1.2.12:8080*1', '10.1.2.13:8080*1', '10.1.2.14:8080*1']);
  }
  const red = lbGroups(LB_PIPELINE, vpcOf(m, 'red'), lbOf(m, 'red', 'spread'), ALL_HEALTHY);
  t.deepEqual([...red.keys()].sort(), [0x12n, 0x13n], "red's own hypervisors only");
  const [redGroup] = red.get(0x12n)!;
  t.deepEqual(backendsOf(redGroup!), ['10.1.2.11:8080*1'], "red's backend");
  const ct = redGroup!.buckets[0]!.actions[0] as Extract<Action, { type: 'ct' }>;
  t.is(ct.zone, 4465, "red's conntrack zone, not blue's (101)");
});

test("zone affinity: a hypervisor's group holds its zone's healthy backends while one is, else every healthy one", (t) => {
  const m = model();
  const vpc = vpcOf(m, 'blue');
  const lb = lbOf(m, 'blue', 'local');
  const at = (healthy: Healthy, hv: string) => backendsOf(lbGroups(LB_PIPELINE, vpc, lb, healthy).get(hvDpid(m, hv))![0]!);
  t.deepEqual(at(ALL_HEALTHY, 'hv1'), ['10.1.2.11:8080*1', '10.1.2.12:8080*1']);
  t.deepEqual(at(ALL_HEALTHY, 'hv4'), ['10.1.2.13:8080*1', '10.1.2.14:8080*1']);
  const aDown: Healthy = (_lb, port) => !port.startsWith('app-a');
  t.deepEqual(at(aDown, 'hv1'), ['10.1.2.13:8080*1', '10.1.2.14:8080*1'], "zone a's backends all down: zone b's serve zone a's clients");
  t.deepEqual(at(aDown, 'hv3'), ['10.1.2.13:8080*1', '10.1.2.14:8080*1']);
  const onlyA1: Healthy = (_lb, port) => port === 'app-a1';
  t.deepEqual(at(onlyA1, 'hv3'), ['10.1.2.11:8080*1'], 'the one healthy backend, from the other zone');
});

function withLb(m: NetworkModel, change: (lb: LoadBalancer & { backends: { port: string; weight: number }[] }) => void): NetworkModel {
  const lb = structuredClone(m.loadBalancers.find((l) => l.vpc === 'blue' && l.name === 'spread')!) as any;
  change(lb);
  return { ...m, loadBalancers: m.loadBalancers.map((l) => (l.vpc === 'blue' && l.name === 'spread' ? lb : l)) };
}

test('health and weights: a down backend leaves the buckets; weight 0 takes nothing; nobody healthy fails open', (t) => {
  const m = withLb(model(), (lb) => {
    lb.backends[0]!.weight = 3;
    lb.backends[3]!.weight = 0;
  });
  const vpc = vpcOf(m, 'blue');
  const lb = lbOf(m, 'blue', 'spread');
  const at = (healthy: Healthy) => backendsOf(lbGroups(LB_PIPELINE, vpc, lb, healthy).get(0x12n)![0]!);
  t.deepEqual(at(ALL_HEALTHY), ['10.1.2.11:8080*3', '10.1.2.12:8080*1', '10.1.2.13:8080*1']);
  t.deepEqual(at((_lb, p) => p !== 'app-a2'), ['10.1.2.11:8080*3', '10.1.2.13:8080*1']);
  t.deepEqual(at(() => false), ['10.1.2.11:8080*3', '10.1.2.12:8080*1', '10.1.2.13:8080*1'], 'every backend of weight > 0');
});

test('session affinity: buckets bind the client to a backend through lb.backend, which learns the binding with an ephemeral cookie', (t) => {
  const m = model();
  const vpc = vpcOf(m, 'blue');
  const lb = lbOf(m, 'blue', 'sticky');
  const [g] = lbGroups(LB_PIPELINE, vpc, lb, ALL_HEALTHY).get(0x11n)!;
  const keyOf = (port: string) => vpc.portByName.get(port)!.key;
  t.deepEqual(backendsOf(g!), ['app-a1', 'app-a2', 'app-b1', 'app-b2'].map((p) => `reg2=${keyOf(p)}*1`));
  const flows = flowsOn(compileLoadBalancer(LB_PIPELINE, viewOf(m)).get('lb:blue/sticky'), 0x11n);
  const bound = flows.filter((f) => f.table === LB_BACKEND_TABLE && f.priority === 200);
  t.is(bound.length, 4);
  const learn = bound[0]!.instructions[0]!.type === 'apply_actions' ? bound[0]!.instructions[0]!.actions.find((a) => a.type === 'learn') : undefined;
  t.like(learn, { type: 'learn', idleTimeout: 600, tableId: LB_PIPELINE.table(LB_AFFINITY_TABLE).id, cookie: affinityCookie(lb, 'app-a1') });
  t.true((affinityCookie(lb, 'app-a1') & (1n << 55n)) !== 0n, 'ephemeral: the reconciler never deletes learned bindings');
  const vip = flows.find((f) => f.table === LB_VIP_TABLE)!;
  t.regex(formatActions((vip.instructions[0] as { actions: Action[] }).actions), /^resubmit\(,\d+\)$/);
});

test("the VIP's ARP is answered on the client's hypervisor with its subnet's router MAC, in its own VPC only", (t) => {
  const m = model();
  const fabric = new Fabric(viewOf(m));
  const routerMac = m.subnets.find((s) => s.vpc === 'blue' && s.name === 'web')!.routerMac;
  const ask = (from: string, ip: string) =>
    fabric.send(from, { eth_type: 0x0806, eth_src: fabric.vm(from).port.mac, eth_dst: 'ff:ff:ff:ff:ff:ff', arp_op: 1, arp_spa: ipv4Of(fabric.vm(from).port), arp_sha: fabric.vm(from).port.mac, arp_tpa: ip });
  const [answer, ...more] = ask('client-a', '10.1.1.100');
  t.deepEqual(more, []);
  t.like(answer, { hv: 'hv1', packet: { arp_op: 2, arp_sha: routerMac, arp_spa: '10.1.1.100', eth_dst: fabric.vm('client-a').port.mac } });
  t.is(fabric.tunnelled.length, 0, 'no ARP in a tunnel');
  t.like(ask('red-client', '10.1.1.100')[0], { hv: 'hv2', packet: { arp_op: 2, arp_spa: '10.1.1.100' } }, "red's VIP of the same address");
  t.deepEqual(ask('red-client', '10.1.1.101'), [], 'a VIP of blue only: dropped in red');
});

test('a health transition modifies that load balancer\'s groups, touches no flow, and drops the dead backend\'s affinity bindings', async (t) => {
  // the board lb-health publishes to, driven by the test
  const health = new BackendHealthBoard();
  health.active = true;
  const apps = await runApps({
    apps: { 'tunnel-mesh': TunnelMeshApp, 'arp-responder': ArpResponderApp, 'distributed-router': DistributedRouterApp, acl: AclApp, 'load-balancer': LoadBalancerApp },
    model: new TestModelStore(model()),
    bindServices: (c: Container) => {
      bindAppServices(c);
      c.rebind(BACKEND_HEALTH).toConstantValue(health);
    },
  });
  t.teardown(() => apps.stop());
  // hv1: client-a and app-a1
  const sw = new FakeSwitch({ dpid: 0x11n, ports: [fakePort(1, 'client-a'), fakePort(2, 'app-a1'), fakePort(4000, 'zm-tun')] });
  t.teardown(() => sw.close());
  t.like(await apps.connect(sw), { errors: 0, groupMods: 4 }, 'one group per blue VIP port');
  const m = model();
  const sticky = lbOf(m, 'blue', 'sticky');
  const before = sw.received.length;
  const modified = sw.nextMessage('GROUP_MOD', (g) => g.command === 'modify');
  health.publish({ vpc: 'blue', loadBalancer: 'sticky', port: 'app-b1', state: 'down', reason: 'refused', at: Date.now() });
  const mod = (await modified) as GroupMod;
  await new Promise((r) => setTimeout(r, 200));
  const sent = sw.received.slice(before);
  t.is(mod.groupId, groupIdOf(LOAD_BALANCER_APP_ID, vipGroupKey(sticky, 80)));
  t.is(mod.buckets.length, 3, 'app-b1 out of the sticky VIP');
  const flowMods = sent.filter((x): x is FlowMod => x.type === 'FLOW_MOD');
  t.deepEqual(
    flowMods.map((f) => [f.command, f.cookie]),
    [['delete', affinityCookie(sticky, 'app-b1')]],
    "the only flow-mod deletes app-b1's learned bindings of this load balancer",
  );
  t.is(sent.filter((x) => x.type === 'GROUP_MOD').length, 1, "the other load balancers' groups are untouched");
  t.not(affinityCookie(sticky, 'app-b1'), makeCookie(LOAD_BALANCER_APP_ID, 'lb:blue/sticky'));
  const flushAt = sent.findIndex((x) => x.type === 'EXPERIMENTER' && isCtFlush(x));
  t.true(flushAt > sent.indexOf(mod), 'after the group change: no new connection commits to app-b1 once its connections are flushed');
  t.deepEqual(decodeCtFlush(sent[flushAt] as Experimenter), {
    zone: 101,
    ipProto: 6,
    orig: { dst: sticky.vip, dstPort: 80 },
    reply: { src: m.ports.find((p) => p.name === 'app-b1')!.ip, srcPort: 8080 },
  }, "app-b1's translated connections of the sticky VIP, and only those");
});

test("a dead backend's translated connections are flushed where it left the rotation: not where it still serves (fail open)", (t) => {
  const m = model();
  const vpc = vpcOf(m, 'blue');
  const spread = lbOf(m, 'blue', 'spread');
  const flushes = deadBackendFlushes(vpc, spread, 'app-b1', (_lb, port) => port !== 'app-b1');
  t.deepEqual([...flushes.keys()].sort(), vpc.hosts.map((h) => h.datapathId).sort(), 'every hypervisor of the VPC');
  t.deepEqual(flushes.get(0x11n), [{ zone: 101, ipProto: 6, orig: { dst: spread.vip, dstPort: 80 }, reply: { src: '10.1.2.13', srcPort: 8080 } }]);
  t.deepEqual(deadBackendFlushes(vpc, spread, 'app-b1', () => false).size, 0, 'nobody healthy: every backend stays in rotation, and its connections');
  t.deepEqual(deadBackendFlushes(vpc, spread, 'client-a', () => false).size, 0, 'not a backend of this load balancer');
});

test('a load balancer added to a running model: its groups go with its flows in one batch, before them; removed, after them', async (t) => {
  const full = model();
  const store = new TestModelStore({ ...full, loadBalancers: [] });
  const apps = await runApps({
    apps: { 'tunnel-mesh': TunnelMeshApp, 'arp-responder': ArpResponderApp, 'distributed-router': DistributedRouterApp, acl: AclApp, 'load-balancer': LoadBalancerApp },
    model: store,
    bindServices: bindAppServices,
  });
  t.teardown(() => apps.stop());
  const sw = new FakeSwitch({ dpid: 0x11n, ports: [fakePort(1, 'client-a'), fakePort(2, 'app-a1'), fakePort(4000, 'zm-tun')] });
  t.teardown(() => sw.close());
  t.like(await apps.connect(sw), { errors: 0, groupMods: 0 });
  const nextSync = () => firstValueFrom(apps.runtime.reconciler.synced$.pipe(filter((r) => r.kind === 'incremental'), timeout(5_000)));
  const added = nextSync();
  store.set(full);
  t.like(await added, { errors: 0, groupMods: 4 }, "the switch took every flow: each one's group was there first");
  t.is(sw.groupTable.size, 4);
  const removed = nextSync();
  const sentBefore = sw.received.length;
  store.set({ ...full, loadBalancers: [] });
  t.like(await removed, { errors: 0, groupMods: 4 });
  const sticky = lbOf(full, 'blue', 'sticky');
  const unbound = sw.received.slice(sentBefore).filter((m): m is FlowMod => m.type === 'FLOW_MOD' && m.command === 'delete' && (m.cookie & (1n << 55n)) !== 0n);
  t.deepEqual(
    unbound.map((m) => m.cookie),
    sticky.backends.map((b) => affinityCookie(sticky, b.port)),
    "the sticky VIP's learned bindings are deleted with it, one delete per backend",
  );
  t.is(sw.groupTable.size, 0);
  t.false(sw.flowTable.flows().some((f) => f.cookie === makeCookie(LOAD_BALANCER_APP_ID, 'lb:blue/spread')), 'the VIP flows are gone');
});

/** hv1 of models/load-balancer.yaml in the simulator: the overlay, the load balancer's flows and groups */
function hv1Sim(m: NetworkModel): { sim: FlowTableSim; view: ReturnType<typeof viewOf> } {
  const view = viewOf(m);
  const compilers = { ...COMPILERS, 'load-balancer': compileLoadBalancer };
  const flows = switchFlows(view, LB_PIPELINE, compilers).get(0x11n)!;
  const groups = view.vpcs.flatMap((vpc) => vpc.loadBalancers.flatMap((lb) => lbGroups(LB_PIPELINE, vpc, lb, ALL_HEALTHY).get(0x11n) ?? []));
  return { sim: new FlowTableSim(flows, groups), view };
}

test('simulated on hv1: a connection to the VIP is translated at the source, checked by the ACL on the backend\'s port, tunnelled to the backend\'s hypervisor; the reply gets the VIP back', (t) => {
  const m = model();
  const { sim, view } = hv1Sim(m);
  const blue = view.vpcByName.get('blue')!;
  const client = blue.portByName.get('client-a')!;
  const routerMac = blue.subnetByName.get('web')!.subnet.routerMac;
  const clientIp = ipv4Of(client.port);
  const syn = { eth_type: 0x0800, eth_src: client.port.mac, eth_dst: routerMac, ipv4_src: clientIp, ipv4_dst: VIP_SPREAD, ip_proto: 6, tcp_src: 40000, tcp_dst: 80, nw_ttl: 64 };
  const bucketOf = (ip: string) => (g: Group) => g.buckets.findIndex((b) => natDst(b.actions) === `${ip}:8080`);
  // app-b1 on hv3: translated, routed, allowed (web -> app 8080), tunnelled straight to hv3
  const out = sim.inject(syn, client.ofport!, { selectBucket: bucketOf('10.1.2.13') });
  t.is(out.outputs.length, 1, JSON.stringify(out.trace.map((s) => s.flow?.tableId)));
  t.like(out.outputs[0], { port: TUNNEL_OFPORT, packet: { ipv4_dst: '10.1.2.13', tcp_dst: 8080, ipv4_src: clientIp, tun_ipv4_dst: '172.16.2.13', tun_metadata0: blue.portByName.get('app-b1')!.key } });
  t.true(out.trace.some((s) => s.flow && LB_PIPELINE.tables[s.tableId]!.name === 'acl.rules' && s.flow.priority < 64_000), 'the ACL saw a new connection and decided by its rules');
  // the reply arrives by tunnel from hv3: un-NATed before delivery
  const reply = { eth_type: 0x0800, eth_src: routerMac, eth_dst: client.port.mac, ipv4_src: '10.1.2.13', ipv4_dst: clientIp, ip_proto: 6, tcp_src: 8080, tcp_dst: 40000, nw_ttl: 63, tunnel_id: 101n, tun_metadata0: client.key };
  const back = sim.inject(reply, TUNNEL_OFPORT);
  t.like(back.outputs, [{ port: client.ofport, packet: { ipv4_src: VIP_SPREAD, tcp_src: 80, ipv4_dst: clientIp } }]);
  // app-a1, local: delivered on hv1, its reply un-NATed on hv1 too
  const local = sim.inject({ ...syn, tcp_src: 40001 }, client.ofport!, { selectBucket: bucketOf('10.1.2.11') });
  const a1 = blue.portByName.get('app-a1')!;
  t.like(local.outputs, [{ port: a1.ofport, packet: { ipv4_dst: '10.1.2.11', tcp_dst: 8080, eth_dst: a1.port.mac } }]);
  const appRouter = blue.subnetByName.get('app')!.subnet.routerMac;
  const localReply = sim.inject({ eth_type: 0x0800, eth_src: a1.port.mac, eth_dst: appRouter, ipv4_src: '10.1.2.11', ipv4_dst: ipv4Of(client.port), ip_proto: 6, tcp_src: 8080, tcp_dst: 40001, nw_ttl: 64 }, a1.ofport!);
  t.like(localReply.outputs, [{ port: client.ofport, packet: { ipv4_src: VIP_SPREAD, tcp_src: 80 } }]);
});

test('simulated: a VIP whose backend port no ACL rule opens is dropped at the source', (t) => {
  const m = model();
  const { sim, view } = hv1Sim(m);
  const blue = view.vpcByName.get('blue')!;
  const client = blue.portByName.get('client-a')!;
  const routerMac = blue.subnetByName.get('web')!.subnet.routerMac;
  const out = sim.inject({ eth_type: 0x0800, eth_src: client.port.mac, eth_dst: routerMac, ipv4_src: ipv4Of(client.port), ipv4_dst: '10.1.1.103', ip_proto: 6, tcp_src: 40002, tcp_dst: 80, nw_ttl: 64 }, client.ofport!);
  t.deepEqual(out.outputs, []);
  t.is(LB_PIPELINE.tables[out.trace.at(-1)!.tableId]!.name, 'acl.rules', 'dropped by the ACL (default deny between tiers), after the translation to 9090');
  t.is(out.trace.at(-1)!.packet.tcp_dst, 9090);
});
