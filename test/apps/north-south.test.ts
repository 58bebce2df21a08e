import test from 'ava';
import { NORTH_SOUTH_APP_ID, NotAGatewayError, gatewayBgpConfig, gatewayPrefixes, northSouthGroups } from '../../src/apps/north-south';
import { TUNNEL_OFPORT } from '../../src/model';
import { OFPP } from '../../src/openflow';
import { makeCookie } from '../../src/sdk/cookie';
import { IncrementalCompiler } from '../../src/sdk/incremental';
import { FlowTableSim, type SimPacket } from '../../src/sdk/sim';
import { NORTH_SOUTH_COMPILERS, NORTH_SOUTH_PIPELINE as PIPELINE, edit, northSouth, placesIn, switchFlows, viewOf } from './helpers';

/**
 * Floating IPs through the whole compiled pipeline of a hypervisor (every overlay app plus
 * north-south), on the VM's hypervisor and on its zone's gateways, in the FlowTableSim: what
 * leaves, by which port, with which headers.
 */
const model = northSouth();
const view = viewOf(model);
const flows = switchFlows(view, PIPELINE, NORTH_SOUTH_COMPILERS);
const hv = (name: string) => model.hypervisors.find((h) => h.name === name)!;
const sim = (name: string) => new FlowTableSim(flows.get(hv(name).datapathId)!);
const port = (name: string) => view.vpcs.flatMap((v) => v.ports).find((p) => p.port.name === name)!;
const FIP_WEB1 = '198.51.100.10';
const INTERNET = '192.0.2.80';

/** an IPv4 packet from a VM port, routed: to its subnet's router MAC */
function fromVm(name: string, dst: string, extra: SimPacket = {}): SimPacket {
  const p = port(name);
  return { eth_src: p.port.mac, eth_dst: p.routerMac, eth_type: 0x0800, ipv4_src: p.port.ip, ipv4_dst: dst, ip_proto: 6, tcp_src: 40000, tcp_dst: 80, nw_ttl: 64, ...extra };
}

/** an IPv4 packet arriving by tunnel from a gateway, in VPC `vni` */
function fromGateway(vni: number, dst: string): SimPacket {
  return { tunnel_id: BigInt(vni), tun_ipv4_src: hv('hv2').tunnelIp, eth_src: '0e:00:00:00:00:01', eth_dst: '0e:00:00:00:00:02', eth_type: 0x0800, ipv4_src: INTERNET, ipv4_dst: dst, ip_proto: 6, tcp_src: 80, tcp_dst: 40000, nw_ttl: 60 };
}

test('outbound: a floating IP port leaves with its floating IP and MAC, tunnelled to a gateway of its own zone', (t) => {
  const { outputs } = sim('hv1').inject(fromVm('web1', INTERNET), port('web1').ofport!);
  t.is(outputs.length, 1);
  const out = outputs[0]!;
  t.is(out.port, TUNNEL_OFPORT);
  t.is(out.packet.ipv4_src, FIP_WEB1);
  t.is(out.packet.ipv4_dst, INTERNET);
  t.is(out.packet.eth_src, model.floatingIps[0]!.mac);
  t.is(out.packet.nw_ttl, 63);
  t.is(out.packet.tunnel_id, 101n);
  const gateways = model.externalNetworks.find((e) => e.zone === 'zone-a')!.gateways.map((g) => hv(g.hypervisor).tunnelIp);
  t.true(gateways.includes(String(out.packet.tun_ipv4_dst)), `${String(out.packet.tun_ipv4_dst)} is a zone-a gateway`);
});

test('inbound: a packet to the floating IP from a gateway reaches the VM with its own address', (t) => {
  const { outputs } = sim('hv1').inject(fromGateway(101, FIP_WEB1), TUNNEL_OFPORT);
  t.deepEqual(outputs.map((o) => o.port), [port('web1').ofport]);
  const got = outputs[0]!.packet;
  t.is(got.ipv4_dst, port('web1').port.ip);
  t.is(got.eth_dst, port('web1').port.mac);
  t.is(got.eth_src, port('web1').routerMac);
  t.is(got.ipv4_src, INTERNET);
});

test("traffic inside the VPC is not translated: it is routed as before", (t) => {
  // routed to another tier, on the port the model's ACL allows
  const app1 = port('app1');
  const { outputs } = sim('hv1').inject(fromVm('web1', app1.port.ip, { tcp_dst: 8080 }), port('web1').ofport!);
  t.is(outputs.length, 1);
  t.is(outputs[0]!.packet.ipv4_src, port('web1').port.ip);
  t.is(outputs[0]!.packet.tun_ipv4_dst, app1.host.tunnelIp);
  t.is(outputs[0]!.packet.eth_dst, app1.port.mac);
});

test('isolation: the same address in another VPC, or a VM without a floating IP, is not translated', (t) => {
  // red1 has web1's address in VPC red, on the same hypervisor
  const fromRed = sim('hv1').inject(fromVm('red1', INTERNET), port('red1').ofport!);
  t.deepEqual(fromRed.outputs, [], 'no floating IP: the router has no route to the outside yet');
  // blue's floating IP arriving in red's VNI reaches nobody
  const inRed = sim('hv1').inject(fromGateway(70000, FIP_WEB1), TUNNEL_OFPORT);
  t.deepEqual(inRed.outputs, []);
  // a packet not sent to the router (not routed) is not translated either
  const notRouted = sim('hv1').inject(fromVm('web1', INTERNET, { eth_dst: '02:00:00:01:01:0c' }), port('web1').ofport!);
  t.false(notRouted.outputs.some((o) => o.packet.ipv4_src === FIP_WEB1));
});

test('a VPC routes only its egress routes to the outside', (t) => {
  const limited = viewOf(edit(model, (d) => (d.vpcs[0].egress = { routes: ['192.0.2.0/24'], snat: [] })));
  const s = new FlowTableSim(switchFlows(limited, PIPELINE, NORTH_SOUTH_COMPILERS).get(hv('hv1').datapathId)!);
  t.is(s.inject(fromVm('web1', INTERNET), port('web1').ofport!).outputs[0]?.packet.ipv4_src, FIP_WEB1);
  t.deepEqual(s.inject(fromVm('web1', '203.0.113.9'), port('web1').ofport!).outputs, []);
});

test('rebinding a floating IP moves its flows in one change of its owner: off the old hypervisor, onto the new', (t) => {
  const engine = new IncrementalCompiler();
  engine.update(northSouthGroups(PIPELINE, model, placesIn(view)));
  const rebound = edit(model, (d) => (d.floatingIps[0].port = 'app1'));
  const changes = engine.update(northSouthGroups(PIPELINE, rebound, placesIn(viewOf(rebound))));
  const tables = (hv: string) => new Set(changes.find((c) => c.dpid === model.hypervisors.find((h) => h.name === hv)!.datapathId)!.flows.map((f) => f.table));
  t.deepEqual(changes.map((c) => c.owner), [`fip:${FIP_WEB1}`, `fip:${FIP_WEB1}`]);
  t.true(tables('hv2').has('nat.inbound'), "the translation is on app1's hypervisor");
  t.deepEqual([...tables('hv1')], ['gw.external'], 'web1\'s hypervisor keeps only its gateway\'s part');
  t.true(changes.every((c) => c.flows.every((f) => f.cookie === makeCookie(NORTH_SOUTH_APP_ID, `fip:${FIP_WEB1}`))));
});

test('a floating IP whose port is not plugged in yet has no flows, nor a gateway whose segment port is not', (t) => {
  const unplugged = new Map(view.placement);
  unplugged.set(hv('hv1').datapathId, new Map());
  const owners = northSouthGroups(PIPELINE, model, placesIn(viewOf(model, unplugged))).flatMap((g) => [...g.owners()].map((o) => o.key));
  t.deepEqual(owners, ['fip:198.51.100.74', 'gateway:ext-a/hv2', 'gateway:ext-b/hv3', 'gateway:ext-b/hv4']);
});

test('a port plugged in under the same model gets its floating IP flows, on its hypervisor and its gateways', (t) => {
  const engine = new IncrementalCompiler();
  const unplugged = new Map(view.placement);
  unplugged.set(hv('hv1').datapathId, new Map());
  engine.update(northSouthGroups(PIPELINE, model, placesIn(viewOf(model, unplugged))));
  const changes = engine.update(northSouthGroups(PIPELINE, model, placesIn(view)));
  const name = (dpid: bigint) => model.hypervisors.find((h) => h.datapathId === dpid)!.name;
  t.deepEqual(changes.map((c) => [c.owner, name(c.dpid), c.flows.length]), [
    [`fip:${FIP_WEB1}`, 'hv1', 6],
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
  const atGateway = sim('hv2').inject(fromEdge(FIP_WEB1), uplink('hv2'));
  t.deepEqual(atGateway.outputs.map((o) => o.port), [TUNNEL_OFPORT]);
  const tunnelled = atGateway.outputs[0]!.packet;
  t.deepEqual([tunnelled.tunnel_id, tunnelled.tun_ipv4_dst, tunnelled.nw_ttl], [101n, hv('hv1').tunnelIp, 59]);
  const atHost = sim('hv1').inject({ ...tunnelled, tun_ipv4_src: hv('hv2').tunnelIp }, TUNNEL_OFPORT);
  t.deepEqual(atHost.outputs.map((o) => o.port), [port('web1').ofport]);
  t.deepEqual([atHost.outputs[0]!.packet.ipv4_dst, atHost.outputs[0]!.packet.eth_dst], [port('web1').port.ip, port('web1').port.mac]);
});

test('gateway inbound: a gateway that hosts the VM delivers to it directly', (t) => {
  const { outputs } = sim('hv1').inject(fromEdge(FIP_WEB1), uplink('hv1'));
  t.deepEqual(outputs.map((o) => o.port), [port('web1').ofport]);
  t.deepEqual([outputs[0]!.packet.ipv4_dst, outputs[0]!.packet.eth_src, outputs[0]!.packet.eth_dst], [port('web1').port.ip, port('web1').routerMac, port('web1').port.mac]);
});

test('gateway outbound: from the tunnel, a floating IP\'s packet goes to the next hop on the segment', (t) => {
  const out = sim('hv1').inject(fromVm('web1', INTERNET), port('web1').ofport!).outputs[0]!;
  t.is(out.packet.tun_ipv4_dst, hv('hv2').tunnelIp, 'web1 leaves by hv2 (gatewayFor)');
  const { outputs } = sim('hv2').inject({ ...out.packet, tun_ipv4_src: hv('hv1').tunnelIp }, TUNNEL_OFPORT);
  t.deepEqual(outputs.map((o) => o.port), [uplink('hv2')]);
  t.deepEqual([outputs[0]!.packet.eth_dst, outputs[0]!.packet.eth_src, outputs[0]!.packet.ipv4_src], [EDGE_MAC, model.floatingIps[0]!.mac, FIP_WEB1]);
  // the same packet in another VPC's VNI is not a floating IP's
  t.deepEqual(sim('hv2').inject({ ...out.packet, tunnel_id: 70000n }, TUNNEL_OFPORT).outputs, []);
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
