import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TraceError, Tracer, formatTrace, pipelineOf, type InstalledSnapshot, type TraceQuery, type TraceResult } from '../../src/cli/tracer';
import { ALL_HEALTHY, LOAD_BALANCER_TABLES, compileLoadBalancer, lbGroups } from '../../src/apps/load-balancer';
import { loadModelFile, type NetworkModel } from '../../src/model';
import { Pipeline } from '../../src/sdk';
import { COMPILERS, PIPELINE, edit, placeAll, switchFlows, twoZones, viewOf } from '../apps/helpers';
import { REPO_ROOT } from '../helpers/paths';
import { LIVE_DSCP, frameOf } from '../../src/cli/trace-live';
import { findLayer, parsePacket } from '../../src/packet';
import { checkControlRequest } from '../../src/runtime';

/**
 * The tracer on the demo model's compiled flows (every port placed, numbered 1, 2, … per
 * hypervisor, as in the golden files), plus a deny rule within blue's web tier. The flows go
 * through the same FlowTableSim the command runs on the switches' installed flows.
 */
const model = edit(twoZones(), (doc) => {
  doc.vpcs[0].acls.push({ name: 'web-no-telnet', subnet: 'web', direction: 'ingress', action: 'deny', protocol: 'tcp', ports: 23, remote: { subnet: 'web' } });
});

/** the overlay with the load balancer, as `zonemesh run` with load-balancer among its apps */
const LB_PIPELINE = new Pipeline([...PIPELINE.tables, ...LOAD_BALANCER_TABLES]);

/** Each switch as `installed` reads it: the compiled flows, and with `lb` the load balancer's flows and groups too. */
function tracerFor(m: NetworkModel, connected = m.hypervisors.map((h) => h.name), lb?: { groups: boolean }): Tracer {
  const view = viewOf(m);
  const pipeline = lb ? LB_PIPELINE : PIPELINE;
  const flows = lb ? switchFlows(view, pipeline, { ...COMPILERS, 'load-balancer': compileLoadBalancer }) : switchFlows(view);
  const groupsOf = (dpid: bigint) => view.vpcs.flatMap((vpc) => vpc.loadBalancers.flatMap((l) => lbGroups(pipeline, vpc, l, ALL_HEALTHY).get(dpid) ?? []));
  const placement = placeAll(m);
  const switches = new Map<bigint, InstalledSnapshot>();
  for (const h of m.hypervisors.filter((h) => connected.includes(h.name))) {
    const ports = new Map([...(placement.get(h.datapathId) ?? [])].concat([['zm-tun', 4000]]));
    switches.set(h.datapathId, { dpid: h.datapathId, flows: flows.get(h.datapathId)!, ...(lb?.groups && { groups: groupsOf(h.datapathId) }), ports });
  }
  return new Tracer(m, pipelineOf(pipeline.describe().split('\n')), switches);
}

const tracer = tracerFor(model);
const trace = (q: Partial<TraceQuery> & Pick<TraceQuery, 'from' | 'to'>): TraceResult => tracer.trace({ proto: q.port === undefined ? 'icmp' : 'tcp', ct: 'new', ttl: 64, ...q });
const ended = (r: TraceResult) =>
  r.verdict.result === 'dropped'
    ? r.verdict.drops.map((d) => `dropped ${d.reason}${d.rule ? ` ${d.rule}` : ''} at ${d.hypervisor} ${d.table}`).join('; ')
    : `${r.verdict.result} ${r.verdict.deliveries.map((d) => `${d.vm ?? d.interface}@${d.hypervisor}:${d.port}`).join(',')}`;

test('the controller pipeline is rebuilt from its table lines, with the built-in drop reasons', (t) => {
  const p = pipelineOf(PIPELINE.describe().split('\n'));
  t.deepEqual(p.tables.map((x) => [x.id, x.name]), PIPELINE.tables.map((x) => [x.id, x.name]));
  t.is(p.table('spoofguard').dropReason, 'spoofguard');
  t.throws(() => pipelineOf(['table 0 classify [classify]']), { instanceOf: TraceError });
});

test('verdicts of the demo model: allowed, denied by a rule and by default, routed, ttl, unknown, arp, gateway', (t) => {
  const cases: [Parameters<typeof trace>[0], string][] = [
    [{ from: 'web1', to: '10.1.2.12', port: 8080 }, 'delivered app2@hv4:1'],
    [{ from: 'web1', to: '10.1.2.11' }, 'delivered app1@hv2:1'],
    [{ from: 'app1', to: '10.1.3.11', port: 5432 }, 'delivered db1@hv4:2'],
    [{ from: 'web1', to: '10.1.1.12' }, 'delivered web2@hv3:1'],
    [{ from: 'red1', to: '10.1.1.12' }, 'delivered red2@hv4:3'],
    [{ from: 'web1', to: '10.1.3.11', port: 5432 }, 'dropped acl_default_deny at hv1 acl.rules'],
    [{ from: 'web1', to: '10.1.2.12', port: 22 }, 'dropped acl_default_deny at hv1 acl.rules'],
    [{ from: 'web2', to: '10.1.1.11', port: 23 }, 'dropped acl_rule web-no-telnet at hv3 acl.rules'],
    [{ from: 'db1', to: '10.1.2.12', ct: 'established' }, 'delivered app2@hv4:1'],
    [{ from: 'db1', to: '10.1.2.12' }, 'dropped acl_default_deny at hv4 acl.rules'],
    [{ from: 'app1', to: '10.1.3.11', ttl: 1 }, 'dropped ttl_expired at hv2 l3.route'],
    [{ from: 'web1', to: '10.1.1.12', ttl: 1 }, 'delivered web2@hv3:1'],
    [{ from: 'web1', to: '10.1.9.9' }, 'dropped no_route at hv1 l3.route'],
    [{ from: 'web1', to: '10.1.1.99' }, 'dropped unknown_arp at hv1 arp.responder'],
    [{ from: 'web1', to: '10.1.1.1' }, 'answered web1@hv1:1'],
    [{ from: 'web1', to: '10.1.2.1' }, 'dropped no_route at hv1 l3.route'],
    [{ from: 'web1', to: '10.1.1.12', proto: 'arp' }, 'answered web1@hv1:1'],
    [{ from: 'web1', to: '10.1.1.11', proto: 'arp' }, 'dropped dropped_by_flow at hv1 arp.responder'],
  ];
  t.deepEqual(
    cases.map(([q]) => `${JSON.stringify(q)}: ${ended(trace(q))}`),
    cases.map(([q, want]) => `${JSON.stringify(q)}: ${want}`),
  );
});

test('a routed packet: resolved to the router MAC, routed once at the source, tunnelled with the egress key, delivered by key', (t) => {
  const r = trace({ from: 'web1', to: '10.1.2.12', port: 8080 });
  t.deepEqual(r.resolved, { ip: '10.1.1.1', mac: viewOf(model).vpcByName.get('blue')!.portByName.get('web1')!.routerMac });
  t.deepEqual(r.hops.map((h) => [h.hypervisor, h.inPort]), [['hv1', 1], ['hv4', 4000]]);
  const [src, dst] = r.hops;
  t.deepEqual(src!.steps.map((s) => s.tableName), ['classify', 'spoofguard', 'arp.responder', 'l3.gateway', 'l3.route', 'l2.lookup', 'acl.conntrack', 'acl.rules', 'output']);
  const rule = src!.steps.find((s) => s.tableName === 'acl.rules')!;
  t.deepEqual([rule.app, rule.owner, rule.counts], ['acl', 'vpc:blue', { kind: 'acl_rule', vpc: 'blue', rule: 'web-to-app-http' }]);
  t.is(src!.steps.find((s) => s.tableName === 'l3.route')!.owner, 'port:app2');
  t.is(dst!.packet.tun_metadata0, viewOf(model).vpcByName.get('blue')!.portByName.get('app2')!.key);
  t.is(dst!.packet.tunnel_id, '0x65');
  t.deepEqual(dst!.steps.map((s) => `${s.tableName}/${s.owner}`), ['classify/global', 'tunnel.in/port:app2']);
  t.is(r.verdict.deliveries[0]!.packet.nw_ttl, 63);
  t.notThrows(() => JSON.parse(JSON.stringify(r)), 'JSON as --json prints it');
});

test("a trace to a VIP runs the switch's select group: every bucket shown, the one taken translating to its backend, delivered there", (t) => {
  const m = loadModelFile(join(REPO_ROOT, 'models', 'load-balancer.yaml'));
  const r = tracerFor(m, undefined, { groups: true }).trace({ from: 'client-a', to: '10.1.1.100', port: 80, proto: 'tcp', ct: 'new', ttl: 64 });
  const blue = viewOf(m).vpcByName.get('blue')!;
  t.deepEqual(r.resolved, { ip: '10.1.1.100', mac: blue.subnetByName.get('web')!.subnet.routerMac }, "the VIP's ARP answered by the bridge");
  const vip = r.hops[0]!.steps.find((s) => s.tableName === 'lb.vip')!;
  t.deepEqual([vip.app, vip.owner], ['load-balancer', 'lb:blue/spread']);
  const [group] = vip.groups!;
  t.is(vip.actions, `group:${group!.groupId}`);
  t.like(group, { type: 'select', owner: 'vip:blue/spread:tcp:80', about: 'load balancer spread of VPC blue: VIP 10.1.1.100 tcp port 80' });
  const backends = ['10.1.2.11', '10.1.2.12', '10.1.2.13', '10.1.2.14'];
  t.deepEqual(
    group!.buckets.map((b) => /nat\(dst=([\d.]+):8080\)/.exec(b.actions)?.[1]).sort(),
    backends,
    'a bucket per backend, each translating to it',
  );
  const taken = group!.buckets.filter((b) => b.taken);
  t.is(taken.length, 1);
  const backend = /nat\(dst=([\d.]+):8080\)/.exec(taken[0]!.actions)![1]!;
  const vm = m.ports.find((p) => p.vpc === 'blue' && p.ip === backend)!;
  t.is(r.verdict.result, 'delivered');
  t.like(r.verdict.deliveries[0], { vm: vm.name, hypervisor: vm.hypervisor, packet: { ipv4_dst: backend, tcp_dst: 8080, ipv4_src: '10.1.1.11' } });
  const text = formatTrace(r);
  t.regex(text, /group \d+ select, vip:blue\/spread:tcp:80 \(load balancer spread of VPC blue: VIP 10\.1\.1\.100 tcp port 80\): bucket \d of 4 taken/);
  t.regex(text, new RegExp(`\\* bucket \\d weight 1: ct\\(commit,table=l3\\.gateway,zone=101,nat\\(dst=${backend.replaceAll('.', '\\.')}:8080\\)\\)`));
  // without the switch's groups (a controller that does not send them) the simulator says so
  const noGroups = tracerFor(m, undefined, { groups: false });
  t.throws(() => noGroups.trace({ from: 'client-a', to: '10.1.1.100', port: 80, proto: 'tcp', ct: 'new', ttl: 64 }), { message: /group \d+ is not in the simulated switch/ });
});

test('bad input and missing switches are typed errors', (t) => {
  t.is(t.throws(() => trace({ from: 'nope', to: '10.1.1.1' }), { instanceOf: TraceError })!.kind, 'unknown_vm');
  t.is(t.throws(() => trace({ from: 'web1', to: '10.1.1.300' }), { instanceOf: TraceError })!.kind, 'bad_address');
  const v6 = tracerFor(
    edit(model, (doc) => {
      delete doc.vpcs[0].egress; // SNAT is IPv4 only: a VPC with an IPv6-only tier has none
      doc.vpcs[0].subnets.push({ name: 'v6', ipv6: { prefix: 'fd00:1:6::/64' } });
      doc.ports.push({ name: 'v6a', vpc: 'blue', subnet: 'v6', mac: '02:00:00:01:06:0a', hypervisor: 'hv1' });
    }),
  );
  const ipv6Only = t.throws(() => v6.trace({ from: 'v6a', to: '10.1.2.11', proto: 'icmp', ct: 'new', ttl: 64 }), { instanceOf: TraceError })!;
  t.is(ipv6Only.kind, 'bad_address');
  t.regex(ipv6Only.message, /VM v6a has no IPv4 address \(subnet v6 is IPv6-only\): only IPv4 is traced/);
  const partial = tracerFor(model, ['hv1', 'hv2', 'hv3']);
  const e = t.throws(() => partial.trace({ from: 'web1', to: '10.1.2.12', proto: 'icmp', ct: 'new', ttl: 64 }), { instanceOf: TraceError })!;
  t.is(e.kind, 'not_connected');
  t.regex(e.message, /hv4's switch 0x14 is not connected/);
});

test('golden text of an allowed and a denied trace', (t) => {
  const file = join(REPO_ROOT, 'test', 'cli', 'golden', 'trace.txt');
  const actual = `${formatTrace(trace({ from: 'web1', to: '10.1.2.12', port: 8080 }))}\n\n${formatTrace(trace({ from: 'web2', to: '10.1.1.11', port: 23 }))}\n`;
  if (process.env.UPDATE_GOLDEN) writeFileSync(file, actual);
  t.is(actual, readFileSync(file, 'utf8'));
});

test('--live builds the traced packet for real, marked DSCP 43 (ARP unmarked)', (t) => {
  const tcp = parsePacket(frameOf(trace({ from: 'web1', to: '10.1.2.12', port: 8080 }).packet));
  t.like(findLayer(tcp, 'ipv4'), { src: '10.1.1.11', dst: '10.1.2.12', ttl: 64, dscp: LIVE_DSCP, protocol: 6 });
  t.like(findLayer(tcp, 'tcp'), { srcPort: 40000, dstPort: 8080 });
  const arp = parsePacket(frameOf(trace({ from: 'web1', to: '10.1.1.12', proto: 'arp' }).packet));
  t.like(findLayer(arp, 'arp'), { op: 1, senderIp: '10.1.1.11', targetIp: '10.1.1.12' });
});

test("the control socket's packet-out request is checked before anything is sent", (t) => {
  const frame = '00'.repeat(60);
  t.like(checkControlRequest({ op: 'packet-out', dpid: '0x11', inPort: 1, data: frame }), { op: 'packet-out', dpid: 0x11n, inPort: 1 });
  t.is(checkControlRequest({ op: 'packet-out', dpid: 'x', inPort: 1, data: frame }), "'x' is not a datapath id");
  t.is(checkControlRequest({ op: 'packet-out', dpid: '0x11', inPort: 0, data: frame }), 'inPort 0 is not a port number');
  t.regex(checkControlRequest({ op: 'packet-out', dpid: '0x11', inPort: 1, data: 'zz' }) as string, /not a frame of 14\.\.1600 bytes/);
  t.regex(checkControlRequest({ op: 'packet-out', dpid: '0x11', inPort: 1, data: '00'.repeat(1601) }) as string, /not a frame/);
  t.deepEqual(checkControlRequest({ op: 'installed' }), { op: 'installed' });
});
