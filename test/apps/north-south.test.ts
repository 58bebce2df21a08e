import test from 'ava';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  BgpConfigError,
  BgpVtyError,
  GATEWAY_BFD_UDP_PORT,
  NORTH_SOUTH_APP_ID,
  NotAGatewayError,
  SNAT_BLOCK_SIZE,
  bfdPeers,
  bgpNetworkCommands,
  floatingIpAnnouncements,
  gatewayBgpConfig,
  gatewayPortName,
  gatewayPortsCommand,
  gatewayPrefixes,
  gatewaysGroups,
  northSouthGroups,
  parseBgpNetworks,
  parseNorthSouthSettings,
  snatBindings,
  VtyBgpSpeakers,
} from '../../src/apps/north-south';
import { AppSettingsError } from '../../src/sdk';
import { type NetworkModel, TUNNEL_OFPORT, floatingIpMac } from '../../src/model';
import { OFPP } from '../../src/openflow';
import { makeCookie } from '../../src/sdk/cookie';
import { IncrementalCompiler } from '../../src/sdk/incremental';
import { FlowTableSim, type SimPacket } from '../../src/sdk/sim';
import { NORTH_SOUTH_COMPILERS, NORTH_SOUTH_PIPELINE as PIPELINE, edit, northSouth, northSouthWithHv5, placesIn, switchFlows, viewOf } from './helpers';
import { ipv4Of } from '../../src/testing';
import { tempDir } from '../helpers/run';

/**
 * Floating IPs through the whole compiled pipeline of a hypervisor (every overlay app plus
 * north-south), on the VM's hypervisor and on its zone's gateways, in the FlowTableSim: what
 * leaves, by which port, with which headers.
 */
const model = northSouth();
const view = viewOf(model);
const flows = switchFlows(view, PIPELINE, NORTH_SOUTH_COMPILERS);
const hv = (name: string) => model.hypervisors.find((h) => h.name === name)!;
/** the BFD ports to gateways, as a switch would number them: 100 + the peer's position in the model */
const bfdOfport = (m: NetworkModel) => (_dpid: bigint, name: string) => {
  const i = m.hypervisors.findIndex((h) => gatewayPortName(h) === name);
  return i < 0 ? undefined : 100 + i;
};
const groupsOf = (m: NetworkModel, dpid: bigint) => [gatewaysGroups(NORTH_SOUTH_APP_ID, m, bfdOfport(m)).get(dpid)].filter((g) => g !== undefined);
const sim = (name: string) => new FlowTableSim(flows.get(hv(name).datapathId)!, groupsOf(model, hv(name).datapathId));
const port = (name: string) => view.vpcs.flatMap((v) => v.ports).find((p) => p.port.name === name)!;
const FIP_WEB1 = '198.51.100.10';
const INTERNET = '192.0.2.80';

/** an IPv4 packet from a VM port, routed: to its subnet's router MAC */
function fromVm(name: string, dst: string, extra: SimPacket = {}): SimPacket {
  const p = port(name);
  return { eth_src: p.port.mac, eth_dst: p.routerMac, eth_type: 0x0800, ipv4_src: ipv4Of(p.port), ipv4_dst: dst, ip_proto: 6, tcp_src: 40000, tcp_dst: 80, nw_ttl: 64, ...extra };
}

/** an IPv4 packet arriving by tunnel from a gateway, in VPC `vni`: a client's to the web server the model's ACL opens to the outside */
function fromGateway(vni: number, dst: string, extra: SimPacket = {}): SimPacket {
  return { tunnel_id: BigInt(vni), tun_ipv4_src: hv('hv2').tunnelIp, eth_src: '0e:00:00:00:00:01', eth_dst: '0e:00:00:00:00:02', eth_type: 0x0800, ipv4_src: INTERNET, ipv4_dst: dst, ip_proto: 6, tcp_src: 40000, tcp_dst: 8080, nw_ttl: 60, ...extra };
}

test('outbound: a floating IP port on a gateway leaves with its floating IP and MAC, straight out of the gateway\'s own segment port', (t) => {
  const { outputs } = sim('hv1').inject(fromVm('web1', INTERNET), port('web1').ofport!);
  t.deepEqual(outputs.map((o) => o.port), [uplink('hv1')]);
  const out = outputs[0]!.packet;
  t.deepEqual([out.ipv4_src, out.ipv4_dst, out.eth_src, out.eth_dst, out.nw_ttl], [FIP_WEB1, INTERNET, model.floatingIps[0]!.mac, EDGE_MAC, 63]);
});

/** the north-south model with hv5 (no gateway) holding web1 */
const withHv5 = edit(northSouthWithHv5(), (d) => (d.ports.find((p: { name: string }) => p.name === 'web1').hypervisor = 'hv5'));
const hv5 = withHv5.hypervisors.find((h) => h.name === 'hv5')!;
const view5 = viewOf(withHv5);
const flows5 = switchFlows(view5, PIPELINE, NORTH_SOUTH_COMPILERS);
const sim5 = (name: string) => {
  const dpid = withHv5.hypervisors.find((h) => h.name === name)!.datapathId;
  return new FlowTableSim(flows5.get(dpid)!, groupsOf(withHv5, dpid));
};
/** web1's packet to the outside at hv5, with the BFD ports `dead` (100: hv1's, 101: hv2's) down */
const fromHv5 = (dead: number[]) => {
  const p = view5.vpcs.flatMap((x) => x.ports).find((x) => x.port.name === 'web1')!;
  const pkt = { eth_src: p.port.mac, eth_dst: p.routerMac, eth_type: 0x0800, ipv4_src: ipv4Of(p.port), ipv4_dst: INTERNET, ip_proto: 6, tcp_src: 40000, tcp_dst: 80, nw_ttl: 64 };
  return sim5('hv5').inject(pkt, p.ofport!, { deadPorts: new Set(dead) }).outputs;
};

test('failover: a select group over the zone\'s gateways, each bucket watching its BFD port; a dead port\'s bucket is skipped', (t) => {
  const group = gatewaysGroups(NORTH_SOUTH_APP_ID, withHv5, bfdOfport(withHv5)).get(hv5.datapathId)!;
  t.is(group.groupType, 'select');
  t.deepEqual(group.buckets.map((b) => [b.watchPort, b.weight]), [[100, 100], [101, 100]], 'ECMP: one equal bucket per gateway, hv1 and hv2');
  const s = (dead: number[]) => fromHv5(dead).map((o) => [o.port, o.packet.tun_ipv4_dst, o.packet.tunnel_id, o.packet.ipv4_src, o.packet.eth_src]);
  const zoneA = [hv('hv1').tunnelIp, hv('hv2').tunnelIp];
  const both = s([]);
  t.true(both.length === 1 && zoneA.includes(both[0]![1] as string), `to a gateway of zone-a: ${String(both[0]?.[1])}`);
  t.deepEqual(s([100]), [[TUNNEL_OFPORT, hv('hv2').tunnelIp, 101n, FIP_WEB1, model.floatingIps[0]!.mac]], 'hv1\'s BFD down: hv2 carries it');
  t.deepEqual(s([101]), [[TUNNEL_OFPORT, hv('hv1').tunnelIp, 101n, FIP_WEB1, model.floatingIps[0]!.mac]], 'hv2\'s BFD down: hv1 carries it');
  t.deepEqual(s([100, 101]), [], 'no live gateway: dropped, never sent to another zone');
  // a gateway port the switch has not reported yet has no bucket
  const half = gatewaysGroups(NORTH_SOUTH_APP_ID, withHv5, (_dpid, name) => (name === gatewayPortName(hv('hv2')) ? 7 : undefined)).get(hv5.datapathId)!;
  t.deepEqual(half.buckets.map((b) => b.watchPort), [7]);
  t.deepEqual([...gatewaysGroups(NORTH_SOUTH_APP_ID, withHv5, bfdOfport(withHv5)).keys()], [hv5.datapathId], 'the gateways have no group: they send out of their own segment ports');
});

test('BFD peers: a hypervisor watches its zone\'s gateways; a gateway answers the hypervisors that send to it, not the other gateways', (t) => {
  const names = (h: string) => bfdPeers(withHv5, withHv5.hypervisors.find((x) => x.name === h)!).map((p) => p.name);
  t.deepEqual(names('hv5'), ['hv1', 'hv2']);
  t.deepEqual(names('hv1'), ['hv5']);
  t.deepEqual(names('hv3'), [], 'never a session into another zone');
  t.is(gatewayPortName(hv('hv1')), 'zm-gw-ac10010b');
});

test('BFD ports: one ovs-vsctl transaction sets every peer\'s port and deletes ours to former peers only', (t) => {
  const hv5 = withHv5.hypervisors.find((h) => h.name === 'hv5')!;
  const args = gatewayPortsCommand(hv5, [hv('hv1')], ['web1', 'zm-tun', 'zm-gw-ac10010b', 'zm-gw-ac10010c']);
  t.deepEqual(args, [
    '--', '--if-exists', 'del-port', 'br-int', 'zm-gw-ac10010c',
    '--', '--may-exist', 'add-port', 'br-int', 'zm-gw-ac10010b',
    '--', 'set', 'interface', 'zm-gw-ac10010b', 'type=geneve', 'options:remote_ip=172.16.1.11', 'options:local_ip=172.16.1.15', `options:dst_port=${GATEWAY_BFD_UDP_PORT}`,
    'bfd:enable=true', 'bfd:min_tx=100', 'bfd:min_rx=100', 'bfd:decay_min_rx=0',
  ]);
});

test('inbound: a packet to the floating IP from a gateway reaches the VM with its own address', (t) => {
  const { outputs } = sim('hv1').inject(fromGateway(101, FIP_WEB1), TUNNEL_OFPORT);
  t.deepEqual(outputs.map((o) => o.port), [port('web1').ofport]);
  const got = outputs[0]!.packet;
  t.is(got.ipv4_dst, ipv4Of(port('web1').port));
  t.is(got.eth_dst, port('web1').port.mac);
  t.is(got.eth_src, port('web1').routerMac);
  t.is(got.ipv4_src, INTERNET);
});

test("traffic inside the VPC is not translated: it is routed as before", (t) => {
  // routed to another tier, on the port the model's ACL allows
  const app1 = port('app1');
  const { outputs } = sim('hv1').inject(fromVm('web1', ipv4Of(app1.port), { tcp_dst: 8080 }), port('web1').ofport!);
  t.is(outputs.length, 1);
  t.is(outputs[0]!.packet.ipv4_src, ipv4Of(port('web1').port));
  t.is(outputs[0]!.packet.tun_ipv4_dst, app1.host.tunnelIp);
  t.is(outputs[0]!.packet.eth_dst, app1.port.mac);
});

test('isolation: the same address in another VPC, or a VM without a floating IP, is not translated', (t) => {
  // red1 has web1's address in VPC red, on the same hypervisor: it leaves by red's SNAT address, not web1's floating IP
  const fromRed = sim('hv1').inject(fromVm('red1', INTERNET), port('red1').ofport!);
  t.deepEqual(fromRed.outputs.map((o) => o.packet.ipv4_src), ['198.51.100.21']);
  // blue's floating IP arriving in red's VNI reaches nobody
  const inRed = sim('hv1').inject(fromGateway(70000, FIP_WEB1), TUNNEL_OFPORT);
  t.deepEqual(inRed.outputs, []);
  // a packet not sent to the router (not routed) is not translated either
  const notRouted = sim('hv1').inject(fromVm('web1', INTERNET, { eth_dst: '02:00:00:01:01:0c' }), port('web1').ofport!);
  t.false(notRouted.outputs.some((o) => o.packet.ipv4_src === FIP_WEB1));
});

test('a VPC routes only its egress routes to the outside', (t) => {
  const limited = viewOf(edit(model, (d) => (d.vpcs[0].egress = { routes: ['192.0.2.0/24'], snat: [] })));
  const s = new FlowTableSim(switchFlows(limited, PIPELINE, NORTH_SOUTH_COMPILERS).get(hv('hv1').datapathId)!, groupsOf(limited.model, hv('hv1').datapathId));
  t.is(s.inject(fromVm('web1', INTERNET), port('web1').ofport!).outputs[0]?.packet.ipv4_src, FIP_WEB1);
  t.deepEqual(s.inject(fromVm('web1', '203.0.113.9'), port('web1').ofport!).outputs, []);
});

test('rebinding a floating IP moves its flows in one change of its owner: off the old hypervisor, onto the new', (t) => {
  const engine = new IncrementalCompiler();
  engine.update(northSouthGroups(PIPELINE, model, placesIn(view)));
  const rebound = edit(model, (d) => (d.floatingIps[0].port = 'app1'));
  const changes = engine.update(northSouthGroups(PIPELINE, rebound, placesIn(viewOf(rebound))));
  const tables = (hv: string) => new Set(changes.find((c) => c.owner.startsWith('fip:') && c.dpids.includes(model.hypervisors.find((h) => h.name === hv)!.datapathId))!.flows.map((f) => f.table));
  t.deepEqual(changes.filter((c) => c.owner.startsWith('fip:')).map((c) => c.owner), [`fip:${FIP_WEB1}`, `fip:${FIP_WEB1}`]);
  t.deepEqual([...new Set(changes.filter((c) => c.owner.startsWith('snat:')).map((c) => `${c.owner}${c.flows.length ? '' : ' cleared'}`))].sort(), ['snat:app1 cleared', 'snat:web1'], 'web1 now leaves by SNAT, app1 by the floating IP');
  t.true(tables('hv2').has('nat.inbound'), "the translation is on app1's hypervisor");
  t.deepEqual([...tables('hv1')], ['gw.external'], 'web1\'s hypervisor keeps only its gateway\'s part');
  t.true(changes.every((c) => c.flows.every((f) => f.cookie === makeCookie(NORTH_SOUTH_APP_ID, c.owner))));
});

test('a floating IP whose port is not plugged in yet has no flows, nor a gateway whose segment port is not', (t) => {
  const unplugged = new Map(view.placement);
  unplugged.set(hv('hv1').datapathId, new Map());
  const owners = northSouthGroups(PIPELINE, model, placesIn(viewOf(model, unplugged))).flatMap((g) => [...g.owners()].map((o) => o.key));
  t.deepEqual(owners, [
    'fip:198.51.100.74',
    'gateway:ext-a/hv2',
    'gateway:ext-b/hv3',
    'gateway:ext-b/hv4',
    'snat:app1',
    'snat:red2',
    'snat-address:198.51.100.20',
    'snat-address:198.51.100.84',
    'snat-address:198.51.100.21',
    'snat-address:198.51.100.85',
  ]);
});

test('a port plugged in under the same model gets its floating IP flows, on its hypervisor and its gateways', (t) => {
  const engine = new IncrementalCompiler();
  const unplugged = new Map(view.placement);
  unplugged.set(hv('hv1').datapathId, new Map());
  engine.update(northSouthGroups(PIPELINE, model, placesIn(viewOf(model, unplugged))));
  const changes = engine.update(northSouthGroups(PIPELINE, model, placesIn(view)));
  const name = (dpid: bigint) => model.hypervisors.find((h) => h.datapathId === dpid)!.name;
  t.true(changes.some((c) => c.owner === 'snat:red1' && c.dpids.some((d) => name(d) === 'hv1')), "red1's SNAT on its hypervisor");
  t.deepEqual(changes.filter((c) => !c.owner.startsWith('snat')).flatMap((c) => c.dpids.map((d) => [c.owner, name(d), c.flows.length])), [
    [`fip:${FIP_WEB1}`, 'hv1', 7],
    [`fip:${FIP_WEB1}`, 'hv2', 3],
    ['gateway:ext-a/hv1', 'hv1', 4],
  ]);
});

// ---- gateways ----

const EDGE_MAC = '02:ed:9e:00:00:0a';
const uplink = (name: string) => view.placement.get(hv(name).datapathId)!.get(model.externalNetworks.flatMap((e) => e.gateways).find((g) => g.hypervisor === name)!.interface)!;

/** an IPv4 packet from the edge router on a gateway's segment */
function fromEdge(dst: string, extra: SimPacket = {}): SimPacket {
  return { eth_src: EDGE_MAC, eth_dst: '0e:00:00:00:00:02', eth_type: 0x0800, ipv4_src: INTERNET, ipv4_dst: dst, ip_proto: 6, tcp_src: 80, tcp_dst: 40000, nw_ttl: 60, ...extra };
}

test('gateway inbound: from the segment to a floating IP, tunnelled to the VM\'s hypervisor, which delivers it translated', (t) => {
  const atGateway = sim('hv2').inject(fromEdge(FIP_WEB1, { tcp_dst: 8080 }), uplink('hv2'));
  t.deepEqual(atGateway.outputs.map((o) => o.port), [TUNNEL_OFPORT]);
  const tunnelled = atGateway.outputs[0]!.packet;
  t.deepEqual([tunnelled.tunnel_id, tunnelled.tun_ipv4_dst, tunnelled.nw_ttl], [101n, hv('hv1').tunnelIp, 59]);
  const atHost = sim('hv1').inject({ ...tunnelled, tun_ipv4_src: hv('hv2').tunnelIp }, TUNNEL_OFPORT);
  t.deepEqual(atHost.outputs.map((o) => o.port), [port('web1').ofport]);
  t.deepEqual([atHost.outputs[0]!.packet.ipv4_dst, atHost.outputs[0]!.packet.eth_dst], [port('web1').port.ip, port('web1').port.mac]);
});

test('gateway inbound: a gateway that hosts the VM delivers to it directly', (t) => {
  const { outputs } = sim('hv1').inject(fromEdge(FIP_WEB1, { tcp_dst: 8080 }), uplink('hv1'));
  t.deepEqual(outputs.map((o) => o.port), [port('web1').ofport]);
  t.deepEqual([outputs[0]!.packet.ipv4_dst, outputs[0]!.packet.eth_src, outputs[0]!.packet.eth_dst], [port('web1').port.ip, port('web1').routerMac, port('web1').port.mac]);
});

// ---- the VPC's ACLs on a floating IP's inbound traffic ----

/** the model with, first in blue's rules, a deny of tcp/8080 from anywhere to web1 */
const denying = edit(model, (d) =>
  d.vpcs[0].acls.unshift({ name: 'no-8080-from-outside', subnet: 'web', port: 'web1', direction: 'ingress', action: 'deny', protocol: 'tcp', ports: 8080, remote: { cidr: '0.0.0.0/0' } }),
);
const denyingFlows = switchFlows(viewOf(denying), PIPELINE, NORTH_SOUTH_COMPILERS);
/** hv1, which hosts web1 and is one of zone-a's gateways, with that model: one conntrack for a whole exchange */
const denyingHv1 = () => new FlowTableSim(denyingFlows.get(hv('hv1').datapathId)!);
const outputsOf = (r: { outputs: { port: number; packet: SimPacket }[] }) => r.outputs.map((o) => [o.port, o.packet.ipv4_src, o.packet.ipv4_dst, o.packet.tcp_src, o.packet.tcp_dst]);

test("ACL: a SYN from the outside to a floating IP's denied port is dropped, an allowed port is delivered, and the VM's reply leaves as the floating IP", (t) => {
  const s = denyingHv1();
  const web1 = port('web1');
  // by tunnel from the zone's other gateway, and from the segment of the gateway that hosts web1
  t.deepEqual(s.inject(fromGateway(101, FIP_WEB1, { tcp_dst: 8080 }), TUNNEL_OFPORT).outputs, [], 'tcp/8080 denied (by tunnel)');
  t.deepEqual(s.inject(fromEdge(FIP_WEB1, { tcp_src: 40001, tcp_dst: 8080 }), uplink('hv1')).outputs, [], 'tcp/8080 denied (from the segment)');
  const syn = s.inject(fromGateway(101, FIP_WEB1, { tcp_dst: 8081 }), TUNNEL_OFPORT);
  t.deepEqual(outputsOf(syn), [[web1.ofport, INTERNET, web1.port.ip, 40000, 8081]], 'tcp/8081 allowed: delivered to web1 at its own address');
  t.deepEqual([syn.outputs[0]!.packet.eth_src, syn.outputs[0]!.packet.eth_dst], [web1.routerMac, web1.port.mac]);
  t.deepEqual(outputsOf(s.inject(fromEdge(FIP_WEB1, { tcp_src: 40001, tcp_dst: 8081 }), uplink('hv1'))), [[web1.ofport, INTERNET, web1.port.ip, 40001, 8081]], 'tcp/8081 from the segment');
  // web1's SYN-ACK: translated back to the floating IP, out of its gateway's segment port; the client's ACK then passes as established
  const synAck = s.inject(fromVm('web1', INTERNET, { tcp_src: 8081, tcp_dst: 40000 }), web1.ofport!);
  t.deepEqual(outputsOf(synAck), [[uplink('hv1'), FIP_WEB1, INTERNET, 8081, 40000]]);
  t.deepEqual(outputsOf(s.inject(fromGateway(101, FIP_WEB1, { tcp_dst: 8081 }), TUNNEL_OFPORT)), [[web1.ofport, INTERNET, web1.port.ip, 40000, 8081]]);
  // a port no rule opens is denied by default, as between tiers
  t.deepEqual(s.inject(fromGateway(101, FIP_WEB1, { tcp_dst: 22 }), TUNNEL_OFPORT).outputs, [], 'tcp/22: no rule, denied');
  // the rule names web1: web2's floating IP, on hv3, still serves 8080
  const hv3 = new FlowTableSim(denyingFlows.get(hv('hv3').datapathId)!);
  t.deepEqual(hv3.inject(fromGateway(101, '198.51.100.74', { tcp_dst: 8080 }), TUNNEL_OFPORT).outputs.map((o) => o.port), [port('web2').ofport]);
});

test("ACL: replies to the VM's own connections to the outside pass as established, though no rule opens their port", (t) => {
  const s = denyingHv1();
  const out = s.inject(fromVm('web1', INTERNET, { tcp_src: 40000, tcp_dst: 8080 }), port('web1').ofport!);
  t.deepEqual(outputsOf(out), [[uplink('hv1'), FIP_WEB1, INTERNET, 40000, 8080]], 'leaves as the floating IP');
  t.deepEqual(outputsOf(s.inject(fromGateway(101, FIP_WEB1, { tcp_src: 8080, tcp_dst: 40000 }), TUNNEL_OFPORT)), [[port('web1').ofport, INTERNET, port('web1').port.ip, 8080, 40000]]);
  // the same reply with nothing sent before it is a new connection to port 40000: denied
  t.deepEqual(denyingHv1().inject(fromGateway(101, FIP_WEB1, { tcp_src: 8080, tcp_dst: 40000 }), TUNNEL_OFPORT).outputs, []);
});

test("ACL: ping from the outside to a floating IP passes by its rule; without one it is dropped", (t) => {
  const ping = fromGateway(101, FIP_WEB1, { ip_proto: 1, tcp_src: undefined as never, tcp_dst: undefined as never, icmp_type: 8, icmp_code: 0 });
  t.deepEqual(denyingHv1().inject(ping, TUNNEL_OFPORT).outputs.map((o) => o.port), [port('web1').ofport], 'ping-web-from-anywhere');
  const noPing = edit(model, (d) => (d.vpcs[0].acls = d.vpcs[0].acls.filter((a: { protocol: string }) => a.protocol !== 'icmp')));
  const s = new FlowTableSim(switchFlows(viewOf(noPing), PIPELINE, NORTH_SOUTH_COMPILERS).get(hv('hv1').datapathId)!);
  t.deepEqual(s.inject(ping, TUNNEL_OFPORT).outputs, []);
});

test('gateway outbound: from the tunnel, a floating IP\'s packet goes to the next hop on the segment', (t) => {
  const out = fromHv5([100])[0]!;
  t.is(out.packet.tun_ipv4_dst, hv('hv2').tunnelIp);
  const { outputs } = sim5('hv2').inject({ ...out.packet, tun_ipv4_src: hv5.tunnelIp }, TUNNEL_OFPORT);
  t.deepEqual(outputs.map((o) => o.port), [uplink('hv2')]);
  t.deepEqual([outputs[0]!.packet.eth_dst, outputs[0]!.packet.eth_src, outputs[0]!.packet.ipv4_src], [EDGE_MAC, model.floatingIps[0]!.mac, FIP_WEB1]);
  // the same packet in another VPC's VNI is not a floating IP's
  t.deepEqual(sim5('hv2').inject({ ...out.packet, tunnel_id: 70000n }, TUNNEL_OFPORT).outputs, []);
});

test('gateway outbound: a VM whose gateway is its own hypervisor leaves straight from the segment port', (t) => {
  const { outputs } = sim('hv3').inject(fromVm('web2', INTERNET), port('web2').ofport!);
  t.deepEqual(outputs.map((o) => o.port), [uplink('hv3')]);
  t.deepEqual([outputs[0]!.packet.ipv4_src, outputs[0]!.packet.eth_dst, outputs[0]!.packet.nw_ttl], ['198.51.100.74', '02:ed:9e:00:00:0b', 63]);
});

test('gateway ARP: a floating IP is answered with its derived MAC; the gateway\'s own address goes to LOCAL and back', (t) => {
  const request = { eth_src: EDGE_MAC, eth_dst: 'ff:ff:ff:ff:ff:ff', eth_type: 0x0806, arp_op: 1, arp_sha: EDGE_MAC, arp_spa: '198.51.100.1', arp_tha: '00:00:00:00:00:00' };
  const answer = sim('hv2').inject({ ...request, arp_tpa: FIP_WEB1 }, uplink('hv2'));
  t.deepEqual(answer.outputs.map((o) => o.port), [uplink('hv2')]);
  const reply = answer.outputs[0]!.packet;
  t.deepEqual([reply.arp_op, reply.arp_sha, reply.arp_spa, reply.arp_tpa, reply.eth_dst], [2, model.floatingIps[0]!.mac, FIP_WEB1, '198.51.100.1', EDGE_MAC]);
  t.deepEqual(sim('hv2').inject({ ...request, arp_tpa: '198.51.100.3' }, uplink('hv2')).outputs.map((o) => o.port), [OFPP.LOCAL]);
  t.deepEqual(sim('hv2').inject(fromEdge('198.51.100.3'), uplink('hv2')).outputs.map((o) => o.port), [OFPP.LOCAL]);
  t.deepEqual(sim('hv2').inject({ ...fromEdge('198.51.100.1'), ipv4_src: '198.51.100.3' }, OFPP.LOCAL).outputs.map((o) => o.port), [uplink('hv2')]);
  // LOCAL may not speak for a floating IP
  t.deepEqual(sim('hv2').inject({ ...fromEdge('198.51.100.1'), ipv4_src: FIP_WEB1 }, OFPP.LOCAL).outputs, []);
});

test('gateway isolation: from the segment, nothing but floating IPs and the gateway\'s own address gets in', (t) => {
  for (const dst of ['10.1.1.11', '198.51.100.11', '198.51.100.74', '198.51.100.2']) {
    t.deepEqual(sim('hv2').inject(fromEdge(dst), uplink('hv2')).outputs, [], dst);
  }
});

test('without the next hop\'s MAC a gateway sends nothing out', (t) => {
  const noMac = edit(model, (d) => delete d.externalNetworks[1].nextHopMac);
  const s = new FlowTableSim(switchFlows(viewOf(noMac), PIPELINE, NORTH_SOUTH_COMPILERS).get(hv('hv3').datapathId)!);
  t.deepEqual(s.inject(fromVm('web2', INTERNET), port('web2').ofport!).outputs, []);
});

test("a gateway's BGP configuration announces its zone's floating IPs and SNAT addresses to the edge router", (t) => {
  const opts = { localAs: 65001, edgeAs: 65000, keepaliveSeconds: 1, holdSeconds: 3 };
  t.is(
    gatewayBgpConfig(model, 'hv2', opts),
    [
      'router bgp 65001',
      ' bgp router-id 198.51.100.3',
      ' no bgp ebgp-requires-policy',
      ' no bgp network import-check',
      ' neighbor 198.51.100.1 remote-as 65000',
      ' neighbor 198.51.100.1 timers 1 3',
      ' neighbor 198.51.100.1 advertisement-interval 0',
      ' neighbor 198.51.100.1 timers connect 1',
      ' address-family ipv4 unicast',
      '  network 198.51.100.10/32',
      '  network 198.51.100.20/32',
      '  network 198.51.100.21/32',
      ' exit-address-family',
      '',
    ].join('\n'),
  );
  // zone-b's gateways announce zone-b's; a floating IP follows its VM's zone, not its network's
  t.deepEqual(gatewayPrefixes(model, 'hv4'), ['198.51.100.74/32', '198.51.100.84/32', '198.51.100.85/32']);
  const moved = edit(model, (d) => (d.ports.find((p: { name: string }) => p.name === 'web1').hypervisor = 'hv3'));
  t.deepEqual(gatewayPrefixes(moved, 'hv4'), ['198.51.100.10/32', '198.51.100.74/32', '198.51.100.84/32', '198.51.100.85/32']);
  t.throws(() => gatewayBgpConfig(model, 'nope', opts), { instanceOf: NotAGatewayError });
});

// ---- SNAT ----

const SNAT_BLUE_A = '198.51.100.20';
const blockOf = (vm: string) => snatBindings(model).bindings.find((b) => b.port.name === vm)!;

test('SNAT: each VM without a floating IP has its own block of source ports on its zone\'s address; floating-IP VMs have none', (t) => {
  const { bindings, exhausted } = snatBindings(model);
  t.deepEqual(bindings.map((b) => [b.port.name, b.address.ip]), [['app1', SNAT_BLUE_A], ['red1', '198.51.100.21'], ['red2', '198.51.100.85']]);
  t.deepEqual(exhausted, []);
  for (const b of bindings) t.true(b.lo >= 1024 && b.hi === b.lo + SNAT_BLOCK_SIZE - 1 && b.lo % SNAT_BLOCK_SIZE === 0, `${b.port.name}: ${b.lo}-${b.hi}`);
  // 64 VMs of one VPC in one zone: 63 blocks, every one distinct, and the last VM left out, named
  const crowd = edit(model, (d) => {
    for (let i = 0; i < 64; i++) d.ports.push({ name: `vm${i}`, vpc: 'blue', subnet: 'app', mac: `02:00:00:09:00:${i.toString(16).padStart(2, '0')}`, ip: `10.1.2.${100 + i}`, hypervisor: 'hv2' });
  });
  const many = snatBindings(crowd);
  const zoneA = many.bindings.filter((b) => b.address.ip === SNAT_BLUE_A);
  t.is(zoneA.length, 63);
  t.is(new Set(zoneA.map((b) => b.lo)).size, 63);
  t.is(many.exhausted.length, 2);
});

test('SNAT round trip: out from the VM\'s port translated into its block, the reply steered by its block at either gateway and untranslated on its hypervisor', (t) => {
  const app1 = port('app1');
  const b = blockOf('app1');
  const host = sim('hv2');
  const out = host.inject(fromVm('app1', INTERNET), app1.ofport!).outputs;
  t.is(out.length, 1);
  const sent = out[0]!.packet;
  t.deepEqual([sent.ipv4_src, sent.eth_src, sent.nw_ttl], [SNAT_BLUE_A, floatingIpMac(SNAT_BLUE_A), 63]);
  const sport = Number(sent.tcp_src);
  t.true(sport >= b.lo && sport <= b.hi, `source port ${sport} in ${b.lo}-${b.hi}`);
  // the reply from the edge, at the gateway that does not host app1: tunnelled to app1's hypervisor
  const reply = fromEdge(SNAT_BLUE_A, { tcp_src: 80, tcp_dst: sport });
  const steered = sim('hv1').inject(reply, uplink('hv1')).outputs;
  t.deepEqual(steered.map((o) => [o.port, o.packet.tun_ipv4_dst, o.packet.tunnel_id]), [[TUNNEL_OFPORT, hv('hv2').tunnelIp, 101n]]);
  const delivered = host.inject({ ...steered[0]!.packet, tun_ipv4_src: hv('hv1').tunnelIp }, TUNNEL_OFPORT).outputs;
  t.deepEqual(delivered.map((o) => [o.port, o.packet.ipv4_dst, o.packet.tcp_dst, o.packet.eth_dst]), [[app1.ofport, app1.port.ip, 40000, app1.port.mac]]);
  // the same reply at the gateway that hosts app1 goes through conntrack there
  const local = host.inject(reply, uplink('hv2')).outputs;
  t.deepEqual(local.map((o) => [o.port, o.packet.ipv4_dst, o.packet.tcp_dst]), [[app1.ofport, app1.port.ip, 40000]]);
});

test('SNAT isolation: two VPCs with the same address on one hypervisor get their own translation and their own replies', (t) => {
  // web1 without its floating IP: blue's 10.1.1.11 beside red's red1 on hv1
  const unbound = edit(model, (d) => delete d.floatingIps[0].port);
  const uview = viewOf(unbound);
  const s = new FlowTableSim(switchFlows(uview, PIPELINE, NORTH_SOUTH_COMPILERS).get(hv('hv1').datapathId)!);
  const gw = new FlowTableSim(switchFlows(uview, PIPELINE, NORTH_SOUTH_COMPILERS).get(hv('hv2').datapathId)!);
  for (const [vm, snat, vni] of [['web1', SNAT_BLUE_A, 101n], ['red1', '198.51.100.21', 70000n]] as const) {
    const sent = s.inject(fromVm(vm, INTERNET), port(vm).ofport!).outputs[0]!.packet;
    t.is(sent.ipv4_src, snat, vm);
    // the reply at hv2, the zone's other gateway: tunnelled to hv1 in the VM's VNI, untranslated there
    const back = gw.inject(fromEdge(snat, { tcp_src: 80, tcp_dst: Number(sent.tcp_src) }), uplink('hv2')).outputs;
    t.deepEqual(back.map((o) => [o.port, o.packet.tunnel_id]), [[TUNNEL_OFPORT, vni]]);
    const got = s.inject({ ...back[0]!.packet, tun_ipv4_src: hv('hv2').tunnelIp }, TUNNEL_OFPORT).outputs;
    t.deepEqual(got.map((o) => [o.port, o.packet.eth_dst, o.packet.tunnel_id]), [[port(vm).ofport, port(vm).port.mac, vni]], `${vm}'s reply to ${vm} only`);
  }
});

test('SNAT: nothing from outside reaches a VM without a floating IP', (t) => {
  const b = blockOf('app1');
  // in its block but no connection: conntrack has nothing to reverse
  const steered = sim('hv1').inject(fromEdge(SNAT_BLUE_A, { tcp_src: 80, tcp_dst: b.lo + 7 }), uplink('hv1')).outputs;
  t.deepEqual(sim('hv2').inject({ ...steered[0]!.packet, tun_ipv4_src: hv('hv1').tunnelIp }, TUNNEL_OFPORT).outputs, []);
  // outside every block, or to the VM's own address: no gateway lets it in
  t.deepEqual(sim('hv1').inject(fromEdge(SNAT_BLUE_A, { tcp_dst: 80 }), uplink('hv1')).outputs, []);
  t.deepEqual(sim('hv1').inject(fromEdge(ipv4Of(port('app1').port)), uplink('hv1')).outputs, []);
  // a ping to the SNAT address is no answer to anyone: not copied; an echo reply nobody asked for is
  // copied to app1's hypervisor, where conntrack has nothing to reverse
  const icmp = (icmpv4_type: number) => fromEdge(SNAT_BLUE_A, { ip_proto: 1, tcp_src: undefined as never, tcp_dst: undefined as never, icmpv4_type, icmpv4_code: 0 });
  t.deepEqual(sim('hv1').inject(icmp(8), uplink('hv1')).outputs, [], 'echo request: dropped at the gateway');
  const copies = sim('hv1').inject(icmp(0), uplink('hv1')).outputs;
  t.deepEqual(copies.map((o) => o.packet.tun_ipv4_dst), [hv('hv2').tunnelIp]);
  t.deepEqual(sim('hv2').inject({ ...copies[0]!.packet, tun_ipv4_src: hv('hv1').tunnelIp }, TUNNEL_OFPORT).outputs, []);
  t.deepEqual(sim('hv2').inject(icmp(0), uplink('hv2')).outputs, [], 'nor on the gateway that hosts app1');
});

test("SNAT ICMP: a VM's ping leaves as its zone's SNAT address; either gateway copies the reply to every hypervisor hosting a VM of that address, and only the pinging VM's gets it", (t) => {
  // web1 without its floating IP: blue's zone-a SNAT address has VMs on hv1 (web1) and hv2 (app1)
  const unbound = viewOf(edit(model, (d) => delete d.floatingIps[0].port));
  const compiled = switchFlows(unbound, PIPELINE, NORTH_SOUTH_COMPILERS);
  const at = (name: string) => new FlowTableSim(compiled.get(hv(name).datapathId)!);
  const [hv1, hv2] = [at('hv1'), at('hv2')];
  const echo = { ip_proto: 1, tcp_src: undefined as never, tcp_dst: undefined as never, icmpv4_type: 8, icmpv4_code: 0 };
  const sent = hv2.inject(fromVm('app1', INTERNET, echo), port('app1').ofport!).outputs;
  t.deepEqual(sent.map((o) => [o.port, o.packet.ipv4_src, o.packet.eth_src]), [[uplink('hv2'), SNAT_BLUE_A, floatingIpMac(SNAT_BLUE_A)]], "app1 on hv2, a gateway: out of hv2's segment port");
  const reply = fromEdge(SNAT_BLUE_A, { ...echo, icmpv4_type: 0 });
  // at hv1, the gateway that does not host app1: one copy to hv2, and its own (web1's) through conntrack, which has nothing
  const fromHv1 = hv1.inject(reply, uplink('hv1')).outputs;
  t.deepEqual(fromHv1.map((o) => [o.port, o.packet.tun_ipv4_dst, o.packet.tunnel_id]), [[TUNNEL_OFPORT, hv('hv2').tunnelIp, 101n]], 'no delivery to web1');
  const delivered = hv2.inject({ ...fromHv1[0]!.packet, tun_ipv4_src: hv('hv1').tunnelIp }, TUNNEL_OFPORT).outputs;
  t.deepEqual(delivered.map((o) => [o.port, o.packet.ipv4_dst, o.packet.eth_dst]), [[port('app1').ofport, port('app1').port.ip, port('app1').port.mac]]);
  // at hv2, which hosts app1: delivered there, and a copy to hv1 that reaches nobody
  const fromHv2 = hv2.inject(reply, uplink('hv2')).outputs;
  t.deepEqual(fromHv2.map((o) => [o.port, o.port === TUNNEL_OFPORT ? o.packet.tun_ipv4_dst : o.packet.ipv4_dst]), [[TUNNEL_OFPORT, hv('hv1').tunnelIp], [port('app1').ofport, port('app1').port.ip]]);
  t.deepEqual(hv1.inject({ ...fromHv2[0]!.packet, tun_ipv4_src: hv('hv2').tunnelIp }, TUNNEL_OFPORT).outputs, [], "hv1's conntrack has no such ping: web1 gets nothing");
});

test("run time: bgpd's networks are read from its running configuration and changed by the difference only", (t) => {
  const running = [
    'frr version 8.4.4',
    'router bgp 65001',
    ' bgp router-id 198.51.100.2',
    ' no bgp network import-check',
    ' neighbor 198.51.100.1 bfd 3 100 100',
    ' !',
    ' address-family ipv4 unicast',
    '  network 198.51.100.10/32',
    '  network 198.51.100.20/32',
    ' exit-address-family',
    'exit',
  ].join('\n');
  const current = parseBgpNetworks(running);
  t.deepEqual(current, { asn: 65001, networks: ['198.51.100.10/32', '198.51.100.20/32'] });
  t.deepEqual(bgpNetworkCommands(current, ['198.51.100.20/32', '198.51.100.11/32']), [
    'configure terminal',
    'router bgp 65001',
    'address-family ipv4 unicast',
    'no network 198.51.100.10/32',
    'network 198.51.100.11/32',
  ]);
  t.deepEqual(bgpNetworkCommands(current, ['198.51.100.20/32', '198.51.100.10/32']), [], 'same set: nothing to send');
  t.throws(() => parseBgpNetworks('frr version 8.4.4\n'), { instanceOf: BgpConfigError });
});

test('BFD with the edge router is one neighbor line in the gateway\'s bgpd configuration', (t) => {
  const config = gatewayBgpConfig(model, 'hv1', { localAs: 65001, edgeAs: 65000, keepaliveSeconds: 1, holdSeconds: 3, bfd: { multiplier: 3, intervalMs: 100 } });
  t.regex(config, /^ neighbor 198\.51\.100\.1 bfd 3 100 100$/m);
});

test('settings: the gateways whose bgpd the controller drives, checked', (t) => {
  t.deepEqual(parseNorthSouthSettings(undefined), { bgpVtySockets: {} });
  t.deepEqual(parseNorthSouthSettings({ bgpVtySockets: { hv1: '/run/frr/hv1' } }), { bgpVtySockets: { hv1: '/run/frr/hv1' } });
  const err = t.throws(() => parseNorthSouthSettings({ bgpVtySockets: { hv1: 'relative' }, bgp: 1 }), { instanceOf: AppSettingsError });
  t.regex(err!.message, /bgpVtySockets\.hv1/);
  t.regex(err!.message, /bgp.*not a setting/);
});

test('gratuitous ARP: a rebound or moved floating IP is announced by every gateway now serving it, on its segments', (t) => {
  const text = (m: NetworkModel) => floatingIpAnnouncements(model, m).map((a) => `${a.fip.ip} ${a.fip.mac} ${a.gateway.name} ${a.network.name}`);
  t.deepEqual(text(model), [], 'nothing changed');
  const mac = model.floatingIps.find((f) => f.ip === FIP_WEB1)!.mac;
  t.deepEqual(text(edit(model, (d) => (d.floatingIps[0].port = 'app1'))), [`${FIP_WEB1} ${mac} hv1 ext-a`, `${FIP_WEB1} ${mac} hv2 ext-a`], 'rebound within zone-a');
  t.deepEqual(text(edit(model, (d) => (d.ports.find((p: { name: string }) => p.name === 'web1').hypervisor = 'hv3'))), [`${FIP_WEB1} ${mac} hv3 ext-b`, `${FIP_WEB1} ${mac} hv4 ext-b`], 'web1 moved to zone-b: zone-b\'s gateways, on ext-b');
  t.deepEqual(text(edit(model, (d) => delete d.floatingIps[0].port)), [], 'unbound: nobody serves it');
});

/** a fake bgpd vty socket in `dir`: answers each NUL-terminated command with `answer(command)` */
async function fakeBgpdVty(dir: string, answer: (command: string) => Buffer): Promise<{ commands: string[]; close: () => void }> {
  const commands: string[] = [];
  const server = createServer((s) => {
    let pending = '';
    s.on('error', () => undefined); // the client hangs up on an endless reply: nothing to clean up
    s.on('data', (d) => {
      pending += d.toString();
      for (let i = pending.indexOf('\0'); i >= 0; i = pending.indexOf('\0')) {
        const c = pending.slice(0, i);
        pending = pending.slice(i + 1);
        commands.push(c);
        s.write(answer(c));
      }
    });
  });
  await new Promise<void>((r) => server.listen(join(dir, 'bgpd.vty'), r));
  return { commands, close: () => server.close() };
}

const reply = (text: string, status = 0) => Buffer.concat([Buffer.from(text), Buffer.from([0, 0, 0, status])]);

test("bgpd's vty socket: read, diff, one command at a time; bgpd's refusal and an endless reply are typed errors", async (t) => {
  const dir = tempDir(t, 'zm-vty-');
  const running = 'router bgp 65001\n address-family ipv4 unicast\n  network 198.51.100.10/32\n exit-address-family\n';
  let vty = await fakeBgpdVty(dir, (c) => reply(c === 'show running-config' ? running : ''));
  try {
    t.true(await new VtyBgpSpeakers().announce(dir, ['198.51.100.11/32']));
    t.deepEqual(vty.commands, ['enable', 'show running-config', 'configure terminal', 'router bgp 65001', 'address-family ipv4 unicast', 'no network 198.51.100.10/32', 'network 198.51.100.11/32', 'end']);
    t.false(await new VtyBgpSpeakers().announce(dir, ['198.51.100.10/32']), 'already announced: nothing changed');
  } finally {
    vty.close();
  }
  vty = await fakeBgpdVty(dir, (c) => (c.startsWith('network') ? reply('% Malformed prefix\n', 13) : reply(c === 'show running-config' ? running : '')));
  try {
    const err = await t.throwsAsync(new VtyBgpSpeakers().announce(dir, ['198.51.100.10/32', '198.51.100.99/32']), { instanceOf: BgpVtyError });
    t.regex(err!.message, /'network 198\.51\.100\.99\/32' failed: % Malformed prefix/);
  } finally {
    vty.close();
  }
  vty = await fakeBgpdVty(dir, () => Buffer.alloc(2 << 20, 0x61));
  try {
    await t.throwsAsync(new VtyBgpSpeakers().announce(dir, []), { instanceOf: BgpVtyError, message: /more than/ });
  } finally {
    vty.close();
  }
});
