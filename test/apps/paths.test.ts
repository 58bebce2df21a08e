import test from 'ava';
import type { SimPacket } from '../../src/sdk/sim';
import { type Delivery, Fabric, edit, twoZones, viewOf } from './helpers';
import { ipv4Of } from '../../src/testing';

/**
 * "Where does this packet go?" across the whole overlay: every hypervisor's compiled pipeline in a
 * FlowTableSim, tunnels delivering to the hypervisor that owns tun_dst. Model: the demo's two zones,
 * plus web3 beside web1 on hv1, and a second red tier whose addresses equal blue's.
 */
function model() {
  return edit(twoZones(), (doc) => {
    doc.ports.push({ name: 'web3', vpc: 'blue', subnet: 'web', mac: '02:00:00:01:01:0d', ip: '10.1.1.13', hypervisor: 'hv1' });
    doc.vpcs[1].subnets.push({ name: 'app', cidr: '10.1.2.0/24', gateway: '10.1.2.1' });
    doc.ports.push({ name: 'redapp', vpc: 'red', subnet: 'app', mac: '02:00:00:02:02:0c', ip: '10.1.2.12', hypervisor: 'hv4' });
  });
}

const fabric = () => new Fabric(viewOf(model()));
const BROADCAST = 'ff:ff:ff:ff:ff:ff';

/** an IPv4 packet from a VM; `to` is a VM (its MAC) or a raw destination */
function ip(f: Fabric, from: string, to: string | { mac: string; ip: string }, extra: SimPacket = {}): SimPacket {
  const src = f.vm(from).port;
  const dst = typeof to === 'string' ? f.vm(to).port : to;
  return { eth_src: src.mac, eth_dst: dst.mac, eth_type: 0x0800, ipv4_src: ipv4Of(src), ipv4_dst: typeof to === 'string' ? ipv4Of(f.vm(to).port) : to.ip, nw_ttl: 64, ip_proto: 1, icmpv4_type: 8, icmpv4_code: 0, ...extra };
}

function tcp(f: Fabric, from: string, to: string | { mac: string; ip: string }, dport: number, sport = 40000): SimPacket {
  const { icmpv4_type: _t, icmpv4_code: _c, ...rest } = ip(f, from, to, { ip_proto: 6, tcp_src: sport, tcp_dst: dport });
  return rest;
}

/** a packet for another subnet: sent to the sender's own router MAC */
function routed(f: Fabric, from: string, to: string, extra: SimPacket = {}): SimPacket {
  return { ...ip(f, from, to, extra), eth_dst: f.vm(from).routerMac };
}

function arpRequest(f: Fabric, from: string, targetIp: string, ethDst = BROADCAST): SimPacket {
  const { port } = f.vm(from);
  return { eth_src: port.mac, eth_dst: ethDst, eth_type: 0x0806, arp_op: 1, arp_sha: port.mac, arp_spa: ipv4Of(port), arp_tha: '00:00:00:00:00:00', arp_tpa: targetIp };
}

const where = (ds: Delivery[]) => ds.map((d) => `${d.hv}:${d.port}`);

test('same subnet, same hypervisor: delivered locally, nothing tunnelled', (t) => {
  const f = fabric();
  const out = f.send('web1', ip(f, 'web1', 'web3'));
  t.deepEqual(where(out), [`hv1:${f.at('web3').port}`]);
  t.deepEqual(f.tunnelled, []);
  t.is(out[0]!.packet.nw_ttl, 64, 'switched, not routed');
});

test('same subnet, other zone: one tunnel straight to the owner, keyed by its port', (t) => {
  const f = fabric();
  const web2 = f.vm('web2');
  const out = f.send('web1', ip(f, 'web1', 'web2'));
  t.deepEqual(where(out), [`hv3:${web2.ofport}`]);
  t.deepEqual(f.tunnelled, [{ from: 'hv1', to: 'hv3', vni: 101n, egressKey: web2.key }]);
  t.is(out[0]!.packet.eth_dst, web2.port.mac);
});

test('routed across zones on the source hypervisor: MACs rewritten, TTL decremented, tunnelled to the destination', (t) => {
  const f = fabric();
  const app2 = f.vm('app2');
  const out = f.send('web1', routed(f, 'web1', 'app2'));
  t.deepEqual(where(out), [`hv4:${app2.ofport}`]);
  t.deepEqual(f.tunnelled, [{ from: 'hv1', to: 'hv4', vni: 101n, egressKey: app2.key }]);
  const p = out[0]!.packet;
  t.is(p.eth_src, app2.routerMac);
  t.is(p.eth_dst, app2.port.mac);
  t.is(p.nw_ttl, 63);
  t.is(p.ipv4_src, '10.1.1.11');
});

test('routed between two tiers of one hypervisor never leaves it', (t) => {
  const f = fabric();
  const out = f.send('app2', routed(f, 'app2', 'db1'));
  t.deepEqual(where(out), [`hv4:${f.vm('db1').ofport}`]);
  t.deepEqual(f.tunnelled, []);
});

test('TTL 1 is dropped by the router, never forwarded', (t) => {
  const f = fabric();
  t.deepEqual(f.send('web1', routed(f, 'web1', 'app2', { nw_ttl: 1 })), []);
  t.deepEqual(f.send('web1', routed(f, 'web1', 'app2', { nw_ttl: 0 })), []);
  t.deepEqual(f.tunnelled, []);
});

test('unknown destinations behind the router are dropped', (t) => {
  const f = fabric();
  t.deepEqual(f.send('web1', routed(f, 'web1', 'app2', { ipv4_dst: '10.1.2.99' })), []);
  t.deepEqual(f.tunnelled, []);
});

test('the gateway answers ping from flows: addresses swapped, echo reply, back out of the asking port', (t) => {
  const f = fabric();
  const web1 = f.vm('web1');
  const out = f.send('web1', { ...ip(f, 'web1', { mac: web1.routerMac, ip: '10.1.1.1' }), nw_ttl: 1 });
  t.deepEqual(where(out), [`hv1:${web1.ofport}`]);
  t.like(out[0]!.packet, { eth_src: web1.routerMac, eth_dst: web1.port.mac, ipv4_src: '10.1.1.1', ipv4_dst: '10.1.1.11', icmpv4_type: 0 });
});

test('ARP for a VM of the subnet, anywhere, is answered by the local bridge and never tunnelled', (t) => {
  const f = fabric();
  const web1 = f.vm('web1').port;
  const web2 = f.vm('web2').port;
  const out = f.send('web1', arpRequest(f, 'web1', ipv4Of(web2)));
  t.deepEqual(where(out), [`hv1:${f.vm('web1').ofport}`]);
  t.like(out[0]!.packet, { arp_op: 2, eth_src: web2.mac, eth_dst: web1.mac, arp_sha: web2.mac, arp_spa: web2.ip, arp_tha: web1.mac, arp_tpa: web1.ip });
  t.deepEqual(f.tunnelled, []);
});

test('ARP for the gateway gets its router MAC, broadcast or unicast', (t) => {
  const f = fabric();
  const web1 = f.vm('web1');
  for (const dst of [BROADCAST, web1.routerMac]) {
    const out = f.send('web1', arpRequest(f, 'web1', '10.1.1.1', dst));
    t.is(out.length, 1);
    t.like(out[0]!.packet, { arp_op: 2, arp_sha: web1.routerMac, arp_spa: '10.1.1.1' });
  }
});

test('ARP for unknown addresses, other tiers, or oneself is dropped, never flooded', (t) => {
  const f = fabric();
  for (const ipAddr of ['10.1.1.99', '10.1.2.12', '10.1.1.11']) t.deepEqual(f.send('web1', arpRequest(f, 'web1', ipAddr)), [], ipAddr);
  t.deepEqual(f.tunnelled, []);
});

test('unicast ARP (a cache refresh) reaches the owner through its tunnel', (t) => {
  const f = fabric();
  const web2 = f.vm('web2');
  const out = f.send('web1', arpRequest(f, 'web1', ipv4Of(web2.port), web2.port.mac));
  t.deepEqual(where(out), [`hv3:${web2.ofport}`]);
});

test('broadcast reaches the local ports of the subnet and one copy per hypervisor hosting it, no other', (t) => {
  const f = fabric();
  const out = f.send('web1', ip(f, 'web1', { mac: BROADCAST, ip: '10.1.1.255' }, { ip_proto: 17, udp_src: 68, udp_dst: 67 }));
  t.deepEqual(where(out).sort(), [`hv1:${f.vm('web3').ofport}`, `hv3:${f.vm('web2').ofport}`]);
  t.deepEqual(f.tunnelled, [{ from: 'hv1', to: 'hv3', vni: 101n, egressKey: f.view.vpcByName.get('blue')!.subnetByName.get('web')!.key }]);
});

test('multicast from a tier without remote members stays on its hypervisor', (t) => {
  const f = fabric();
  t.deepEqual(f.send('db1', ip(f, 'db1', { mac: '01:00:5e:00:00:fb', ip: '224.0.0.251' }, { ip_proto: 17, udp_src: 5353, udp_dst: 5353 })), []);
  t.deepEqual(f.tunnelled, []);
});

test('ACL: an allowed rule lets a new connection through, committed at the source', (t) => {
  const f = fabric();
  t.deepEqual(where(f.send('web1', { ...tcp(f, 'web1', 'app2', 8080), eth_dst: f.vm('web1').routerMac })), [`hv4:${f.vm('app2').ofport}`]);
});

test('ACL: between tiers, anything not allowed is denied at the source, before any tunnel', (t) => {
  const f = fabric();
  const web1 = f.vm('web1').routerMac;
  t.deepEqual(f.send('web1', { ...tcp(f, 'web1', 'app2', 22), eth_dst: web1 }), []);
  t.deepEqual(f.send('web1', routed(f, 'web1', 'db1')), [], 'db takes ping from app only');
  t.deepEqual(f.send('app2', { ...tcp(f, 'app2', 'web1', 8080), eth_dst: f.vm('app2').routerMac }), [], 'rules are directional');
  t.deepEqual(f.tunnelled, []);
});

test('ACL: replies pass through conntrack without a rule of their own, on both hypervisors', (t) => {
  const f = fabric();
  const web1 = f.vm('web1');
  const app2 = f.vm('app2');
  f.send('web1', { ...tcp(f, 'web1', 'app2', 8080, 41000), eth_dst: web1.routerMac });
  const reply = { ...tcp(f, 'app2', 'web1', 41000, 8080), eth_dst: app2.routerMac };
  t.deepEqual(where(f.send('app2', reply)), [`hv1:${web1.ofport}`]);
  t.deepEqual(f.send('app2', { ...reply, tcp_src: 8081 }), [], 'only the committed connection');
});

test('ACL: within a tier everything is allowed, IP or ARP', (t) => {
  const f = fabric();
  t.is(f.send('web1', tcp(f, 'web1', 'web2', 22)).length, 1);
  const web3 = f.vm('web3').port;
  t.is(f.send('web1', arpRequest(f, 'web1', ipv4Of(web3), web3.mac)).length, 1);
});

test('two VPCs with equal addresses never meet: lookup, ARP and tunnel keys carry the VPC', (t) => {
  const f = fabric();
  const red2 = f.vm('red2');
  const web2 = f.vm('web2');
  t.is(red2.port.ip, web2.port.ip);
  const arp = f.send('red1', arpRequest(f, 'red1', ipv4Of(red2.port)));
  t.is(arp[0]!.packet.arp_sha, red2.port.mac);
  t.deepEqual(where(f.send('red1', ip(f, 'red1', 'red2'))), [`hv4:${red2.ofport}`]);
  t.deepEqual(f.tunnelled, [{ from: 'hv1', to: 'hv4', vni: 70_000n, egressKey: 5000 }], "red's vni and red2's pinned key, both above 12 bits");
  t.deepEqual(f.send('red1', ip(f, 'red1', 'web2')), [], "blue's MAC is unknown in red");
  t.deepEqual(f.send('web1', ip(f, 'web1', 'red2')), [], "red's MAC is unknown in blue");
});

test('conntrack zones are per VPC: a blue connection does not open the same addresses in red', (t) => {
  const f = fabric();
  f.send('web1', { ...tcp(f, 'web1', 'app2', 8080, 42000), eth_dst: f.vm('web1').routerMac });
  const redapp = f.vm('redapp');
  t.is(redapp.port.ip, f.vm('app2').port.ip);
  const lookalikeReply = { ...tcp(f, 'redapp', 'red1', 42000, 8080), eth_dst: redapp.routerMac };
  t.deepEqual(f.send('redapp', lookalikeReply), [], 'red has no rule from app to web, and blue state is not red state');
});

test('spoofed sources are dropped at the first hop', (t) => {
  const f = fabric();
  t.deepEqual(f.send('web1', ip(f, 'web1', 'web3', { ipv4_src: '10.1.1.50' })), []);
  t.deepEqual(f.send('web1', ip(f, 'web1', 'web3', { eth_src: '02:00:00:00:00:66' })), []);
  t.deepEqual(f.send('web1', { ...arpRequest(f, 'web1', '10.1.1.13'), arp_spa: '10.1.1.50' }), []);
  t.deepEqual(f.send('web1', { ...arpRequest(f, 'web1', '10.1.1.13'), arp_sha: '02:00:00:00:00:66' }), []);
  t.deepEqual(f.send('web1', { eth_src: f.vm('web1').port.mac, eth_dst: BROADCAST, eth_type: 0x86dd }), [], 'only IPv4 and ARP are modelled');
});
