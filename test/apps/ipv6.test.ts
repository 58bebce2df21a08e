import test from 'ava';
import { linkLocalAddress, routerLinkLocal } from '../../src/model';
import { OFPP } from '../../src/openflow';
import type { SimPacket } from '../../src/sdk/sim';
import { COMPILERS, type Delivery, Fabric, PIPELINE, edit, flowText, ipv4Only, twoZones, viewOf } from './helpers';

/**
 * IPv6 through the whole overlay (FlowTableSim per hypervisor, tunnels between them): the demo's two
 * dual-stack zones (blue web/app/db fd00:1:1..3::/64, red web fd00:1:1::/64 too), plus web3 beside
 * web1 on hv1.
 */
const model = edit(twoZones(), (doc) => {
  doc.ports.push({ name: 'web3', vpc: 'blue', subnet: 'web', mac: '02:00:00:01:01:0d', ip: '10.1.1.13', hypervisor: 'hv1' });
});
const fabric = () => new Fabric(viewOf(model));
const where = (ds: Delivery[]) => ds.map((d) => `${d.hv}:${d.port}`);
const ICMP6 = { eth_type: 0x86dd, ip_proto: 58 } as const;
const SOLICITED_NODE_MAC = '33:33:ff:00:00:01';

function ipv6Of(f: Fabric, vm: string): string {
  return f.vm(vm).ipv6!;
}

/** a multicast NS from a VM's link-local address, with its SLL option, as Linux sends one */
function ns(f: Fabric, from: string, target: string, extra: SimPacket = {}): SimPacket {
  const { mac } = f.vm(from).port;
  return { eth_src: mac, eth_dst: SOLICITED_NODE_MAC, ...ICMP6, ipv6_src: linkLocalAddress(mac), ipv6_dst: 'ff02::1:ff00:1', nw_ttl: 255, icmpv6_type: 135, icmpv6_code: 0, ipv6_nd_target: target, ipv6_nd_sll: mac, ...extra };
}

function ping6(f: Fabric, from: string, dst: { mac: string; ip: string }, extra: SimPacket = {}): SimPacket {
  const { mac } = f.vm(from).port;
  return { eth_src: mac, eth_dst: dst.mac, ...ICMP6, ipv6_src: ipv6Of(f, from), ipv6_dst: dst.ip, nw_ttl: 64, icmpv6_type: 128, icmpv6_code: 0, ...extra };
}

function tcp6(f: Fabric, from: string, to: string, dport: number, sport = 40000): SimPacket {
  const src = f.vm(from);
  return { eth_src: src.port.mac, eth_dst: src.routerMac, eth_type: 0x86dd, ip_proto: 6, ipv6_src: src.ipv6!, ipv6_dst: ipv6Of(f, to), nw_ttl: 64, tcp_src: sport, tcp_dst: dport };
}

const routerOf = (f: Fabric, vm: string) => f.view.vpcByName.get(f.vm(vm).port.vpc)!.subnetByName.get(f.vm(vm).port.subnet)!.subnet;

test('an NS for a VM of the subnet is answered on the local bridge with its NA, wherever the VM is; nothing is tunnelled', (t) => {
  const f = fabric();
  for (const [target, address] of [
    ['web3', ipv6Of(f, 'web3')],
    ['web2', ipv6Of(f, 'web2')],
    ['web2', linkLocalAddress(f.vm('web2').port.mac)],
  ] as const) {
    const asker = ns(f, 'web1', address);
    const out = f.send('web1', asker);
    t.deepEqual(where(out), [`hv1:${f.at('web1').port}`], `NS for ${target} ${address}: back to the asker`);
    t.like(out[0]!.packet, {
      eth_src: f.vm(target).port.mac,
      eth_dst: f.vm('web1').port.mac,
      ipv6_src: address,
      ipv6_dst: asker.ipv6_src,
      icmpv6_type: 136,
      ipv6_nd_target: address,
      // S and O flags; the SLL option retyped as a TLL holding the target's MAC
      nd_reserved: 0x6000_0000,
      nd_options_type: 2,
      ipv6_nd_tll: f.vm(target).port.mac,
      nw_ttl: 255,
    });
    t.deepEqual(f.tunnelled, []);
  }
});

test('the router answers NS for its link-local address with the router flag, from its router MAC', (t) => {
  const f = fabric();
  const router = routerOf(f, 'web1');
  const out = f.send('web1', ns(f, 'web1', routerLinkLocal(router)));
  t.deepEqual(where(out), [`hv1:${f.at('web1').port}`]);
  t.like(out[0]!.packet, { eth_src: router.routerMac, ipv6_src: routerLinkLocal(router), icmpv6_type: 136, nd_reserved: 0xe000_0000, ipv6_nd_tll: router.routerMac });
  // unicast too: the router has no owner port to pass it on to
  const unicast = f.send('web1', ns(f, 'web1', routerLinkLocal(router), { eth_dst: router.routerMac }));
  t.like(unicast[0]!.packet, { icmpv6_type: 136, ipv6_nd_tll: router.routerMac });
});

test('unknown targets, other tiers, other VPCs and DAD get no answer and never reach a tunnel', (t) => {
  const f = fabric();
  const cases: [string, SimPacket][] = [
    ['unknown target', ns(f, 'web1', 'fd00:1:1::99')],
    ['another tier', ns(f, 'web1', ipv6Of(f, 'app1'))],
    // red's web has blue web's prefix: blue's addresses are not red's neighbours
    ['another VPC', ns(f, 'red1', ipv6Of(f, 'web2'))],
    ['DAD for a neighbour', ns(f, 'web1', ipv6Of(f, 'web3'), { ipv6_src: '::', ipv6_nd_sll: '00:00:00:00:00:00' })],
    ['DAD for itself', ns(f, 'web1', ipv6Of(f, 'web1'), { ipv6_src: '::', ipv6_nd_sll: '00:00:00:00:00:00' })],
  ];
  for (const [what, packet] of cases) {
    const from = packet.eth_src === f.vm('red1').port.mac ? 'red1' : 'web1';
    t.deepEqual(where(f.send(from, packet)), [], what);
    t.deepEqual(f.tunnelled, [], what);
  }
});

test('a unicast NS (unreachability detection) goes to its owner, as unicast ARP does', (t) => {
  const f = fabric();
  const web2 = f.vm('web2');
  const out = f.send('web1', ns(f, 'web1', ipv6Of(f, 'web2'), { eth_dst: web2.port.mac, ipv6_dst: ipv6Of(f, 'web2') }));
  t.deepEqual(where(out), [`hv3:${web2.ofport}`]);
  t.is(out[0]!.packet.icmpv6_type, 135, 'the NS itself, for web2 to answer');
});

test('spoofguard: own IPv6 and link-local sources pass; another source, an RA or an NA for another address is dropped at the port', (t) => {
  const f = fabric();
  const web1 = f.vm('web1').port;
  const web3 = f.vm('web3');
  const toWeb3 = { mac: web3.port.mac, ip: ipv6Of(f, 'web3') };
  t.deepEqual(where(f.send('web1', ping6(f, 'web1', toWeb3))), [`hv1:${web3.ofport}`], 'own global address');
  t.deepEqual(where(f.send('web1', ping6(f, 'web1', { mac: web3.port.mac, ip: linkLocalAddress(web3.port.mac) }, { ipv6_src: linkLocalAddress(web1.mac) }))), [`hv1:${web3.ofport}`], 'own link-local');
  const refused: [string, SimPacket][] = [
    ["web2's source", ping6(f, 'web1', toWeb3, { ipv6_src: ipv6Of(f, 'web2') })],
    ['a made-up source', ping6(f, 'web1', toWeb3, { ipv6_src: 'fd00:1:1::66' })],
    ['another MAC', ping6(f, 'web1', toWeb3, { eth_src: '02:00:00:00:00:99' })],
    ['an RA', { eth_src: web1.mac, eth_dst: '33:33:00:00:00:01', ...ICMP6, ipv6_src: linkLocalAddress(web1.mac), ipv6_dst: 'ff02::1', icmpv6_type: 134, icmpv6_code: 0 }],
    ["an NA for web3's address", { eth_src: web1.mac, eth_dst: web3.port.mac, ...ICMP6, ipv6_src: ipv6Of(f, 'web1'), ipv6_dst: ipv6Of(f, 'web3'), icmpv6_type: 136, icmpv6_code: 0, ipv6_nd_target: ipv6Of(f, 'web3') }],
  ];
  for (const [what, packet] of refused) {
    t.deepEqual(where(f.send('web1', packet)), [], what);
    t.deepEqual(f.tunnelled, [], what);
  }
  const ownNa = { eth_src: web1.mac, eth_dst: web3.port.mac, ...ICMP6, ipv6_src: ipv6Of(f, 'web1'), ipv6_dst: ipv6Of(f, 'web3'), icmpv6_type: 136, icmpv6_code: 0, ipv6_nd_target: ipv6Of(f, 'web1') };
  t.deepEqual(where(f.send('web1', ownNa)), [`hv1:${web3.ofport}`], 'a unicast NA for its own address reaches the asker');
});

test('an RS goes up to the controller from l3.gateway and nowhere else; IPv4-only subnets have no IPv6 at all', (t) => {
  const f = fabric();
  const { mac } = f.vm('web1').port;
  const rs = { eth_src: mac, eth_dst: '33:33:00:00:00:02', ...ICMP6, ipv6_src: linkLocalAddress(mac), ipv6_dst: 'ff02::2', nw_ttl: 255, icmpv6_type: 133, icmpv6_code: 0 };
  t.deepEqual(where(f.send('web1', rs)), [`hv1:${OFPP.CONTROLLER}`]);
  t.deepEqual(where(f.send('web1', { ...rs, ipv6_src: '::' })), [`hv1:${OFPP.CONTROLLER}`], 'before it has a link-local address');
  t.deepEqual(f.tunnelled, []);
  const v4 = new Fabric(viewOf(ipv4Only(twoZones())));
  t.deepEqual(where(v4.send('web1', rs)), [], 'spoofguard drops IPv6 of an IPv4-only port');
});

test('routed IPv6 goes once, straight to the destination hypervisor, one hop less; the router answers ping6', (t) => {
  const f = fabric();
  const app1 = f.vm('app1');
  const out = f.send('web1', ping6(f, 'web1', { mac: f.vm('web1').routerMac, ip: ipv6Of(f, 'app1') }));
  t.deepEqual(where(out), [`hv2:${app1.ofport}`]);
  t.deepEqual(f.tunnelled, [{ from: 'hv1', to: 'hv2', vni: 101n, egressKey: app1.key }]);
  t.like(out[0]!.packet, { nw_ttl: 63, eth_src: app1.routerMac, eth_dst: app1.port.mac });
  // hop limit 1 expires at the router
  t.deepEqual(where(f.send('web1', ping6(f, 'web1', { mac: f.vm('web1').routerMac, ip: ipv6Of(f, 'app1') }, { nw_ttl: 1 }))), []);
  const router = routerOf(f, 'web1');
  const echo = f.send('web1', ping6(f, 'web1', { mac: router.routerMac, ip: routerLinkLocal(router) }, { ipv6_src: linkLocalAddress(f.vm('web1').port.mac) }));
  t.deepEqual(where(echo), [`hv1:${f.at('web1').port}`]);
  t.like(echo[0]!.packet, { icmpv6_type: 129, ipv6_src: routerLinkLocal(router), ipv6_dst: linkLocalAddress(f.vm('web1').port.mac), eth_src: router.routerMac });
});

test('ACLs hold for IPv6: icmp6 and tcp rules between tiers, default deny, replies of allowed connections pass', (t) => {
  const f = fabric();
  const viaRouter = (from: string, to: string) => ({ mac: f.vm(from).routerMac, ip: ipv6Of(f, to) });
  t.is(f.send('web1', ping6(f, 'web1', viaRouter('web1', 'app1'))).length, 1, 'web → app icmp6 allowed (web-to-app-ping6)');
  t.deepEqual(where(f.send('web1', ping6(f, 'web1', viaRouter('web1', 'db1')))), [], 'web → db denied');
  t.deepEqual(f.tunnelled, [], 'denied at the source: never tunnelled');
  // a fresh fabric: the simulator's conntrack knows no ICMP ids, so web1's ping would make this a reply
  const g = fabric();
  t.deepEqual(where(g.send('app1', ping6(g, 'app1', viaRouter('app1', 'web1')))), [], 'app → web: no rule, denied');
  // the tcp rule of a dual-stack tier holds for IPv6 too, and the reply finds the connection
  t.is(f.send('web1', tcp6(f, 'web1', 'app1', 8080)).length, 1, 'web → app tcp 8080');
  t.deepEqual(where(f.send('web1', tcp6(f, 'web1', 'app1', 22))), [], 'web → app tcp 22 denied');
  const reply = { ...tcp6(f, 'app1', 'web1', 40000, 8080) };
  t.is(f.send('app1', reply).length, 1, 'the reply of an allowed connection passes');
  t.deepEqual(where(f.send('app1', tcp6(f, 'app1', 'web1', 40001, 8080))), [], 'a new connection from app is not a reply');
});

/**
 * An IPv6-only tier beside the dual-stack ones: blue's `v6` (fd00:1:6::/64, SLAAC, no cidr) with v6a
 * on hv1 and v6b on hv3; app admits icmp6 from it, nothing else does.
 */
const v6Model = edit(twoZones(), (doc) => {
  delete doc.vpcs[0].egress; // SNAT is IPv4 only: a VPC with an IPv6-only tier has none
  doc.vpcs[0].subnets.push({ name: 'v6', ipv6: { prefix: 'fd00:1:6::/64', slaac: true } });
  doc.vpcs[0].acls.push({ name: 'v6-to-app-ping6', subnet: 'app', direction: 'ingress', action: 'allow', protocol: 'icmp6', remote: { subnet: 'v6' } });
  doc.ports.push({ name: 'v6a', vpc: 'blue', subnet: 'v6', mac: '02:00:00:01:06:0a', hypervisor: 'hv1' });
  doc.ports.push({ name: 'v6b', vpc: 'blue', subnet: 'v6', mac: '02:00:00:01:06:0b', hypervisor: 'hv3' });
});

test('an IPv6-only tier: NS answered on the local bridge for its VMs and its router, nothing tunnelled', (t) => {
  const f = new Fabric(viewOf(v6Model));
  const v6a = f.vm('v6a');
  t.is(v6a.port.ip, undefined);
  t.is(v6a.ipv6, 'fd00:1:6::ff:fe01:60a', 'SLAAC: EUI-64 of its MAC');
  const asker = ns(f, 'v6a', ipv6Of(f, 'v6b'));
  const out = f.send('v6a', asker);
  t.deepEqual(where(out), [`hv1:${f.at('v6a').port}`]);
  t.like(out[0]!.packet, { eth_src: f.vm('v6b').port.mac, icmpv6_type: 136, ipv6_nd_target: ipv6Of(f, 'v6b'), ipv6_nd_tll: f.vm('v6b').port.mac });
  const router = routerOf(f, 'v6a');
  const toRouter = f.send('v6a', ns(f, 'v6a', routerLinkLocal(router)));
  t.deepEqual(where(toRouter), [`hv1:${f.at('v6a').port}`]);
  t.like(toRouter[0]!.packet, { eth_src: router.routerMac, icmpv6_type: 136, ipv6_nd_target: routerLinkLocal(router) });
  t.deepEqual(f.tunnelled, []);
});

test('an IPv6-only tier: routed IPv6 to a dual-stack tier goes once, straight, one hop less, as its ACLs allow; denied never tunnelled', (t) => {
  const f = new Fabric(viewOf(v6Model));
  const app1 = f.vm('app1');
  const viaRouter = (to: string) => ({ mac: f.vm('v6a').routerMac, ip: ipv6Of(f, to) });
  const out = f.send('v6a', ping6(f, 'v6a', viaRouter('app1')));
  t.deepEqual(where(out), [`hv2:${app1.ofport}`], 'v6 → app icmp6 allowed (v6-to-app-ping6)');
  t.deepEqual(f.tunnelled, [{ from: 'hv1', to: 'hv2', vni: 101n, egressKey: app1.key }]);
  t.like(out[0]!.packet, { nw_ttl: 63, eth_src: app1.routerMac, eth_dst: app1.port.mac, ipv6_src: ipv6Of(f, 'v6a') });
  t.deepEqual(where(f.send('v6a', ping6(f, 'v6a', viaRouter('db1')))), [], 'v6 → db: no rule, denied');
  t.deepEqual(f.tunnelled, [], 'denied at the source');
  t.deepEqual(where(f.send('v6a', tcp6(f, 'v6a', 'app1', 8080))), [], 'v6 → app tcp 8080: the web rule does not cover v6');
  const g = new Fabric(viewOf(v6Model));
  t.deepEqual(where(g.send('app1', ping6(g, 'app1', { mac: app1.routerMac, ip: ipv6Of(g, 'v6a') }))), [], 'app → v6: no rule, denied');
  t.is(g.send('web1', ping6(g, 'web1', { mac: g.vm('web1').routerMac, ip: ipv6Of(g, 'v6b') })).length, 0, 'web → v6: no rule, denied');
});

test('an IPv6-only tier has no IPv4 at all: no IPv4 or ARP flow of its ports or subnet, and its IPv4 and ARP are dropped at the port', (t) => {
  const view = viewOf(v6Model);
  // the v6 tier's own flows, by the protocol shorthand dump-flows gives their match
  const matches = Object.values(COMPILERS).flatMap((compile) =>
    [...compile(PIPELINE, view)]
      .filter(([owner]) => /^(port:v6[ab]|subnet:blue\/v6)$/.test(owner))
      .flatMap(([owner, lists]) => lists.flatMap((l) => l.flows).map((flow) => `${owner}: ${flowText(flow).split(' actions=')[0]}`)),
  );
  t.true(matches.filter((m) => /,(ipv6|icmp6|tcp6|udp6)(,|$)/.test(m)).length > 10, 'its IPv6 flows are there');
  t.deepEqual(matches.filter((m) => /,(ip|arp|icmp|tcp|udp)(,|$)/.test(m)), [], 'and no IPv4 or ARP one');
  const f = new Fabric(view);
  const { mac } = f.vm('v6a').port;
  const arp = { eth_src: mac, eth_dst: 'ff:ff:ff:ff:ff:ff', eth_type: 0x0806, arp_op: 1, arp_sha: mac, arp_spa: '10.1.6.5', arp_tha: '00:00:00:00:00:00', arp_tpa: '10.1.2.11' };
  t.deepEqual(where(f.send('v6a', arp)), [], 'ARP from an IPv6-only port');
  const ip4 = { eth_src: mac, eth_dst: f.vm('v6a').routerMac, eth_type: 0x0800, ipv4_src: '10.1.6.5', ipv4_dst: '10.1.2.11', nw_ttl: 64, ip_proto: 1, icmpv4_type: 8, icmpv4_code: 0 };
  t.deepEqual(where(f.send('v6a', ip4)), [], 'IPv4 from an IPv6-only port');
  t.deepEqual(f.tunnelled, []);
  // the dual-stack tiers keep their IPv4: web1 still reaches app1 over IPv4
  const web1 = f.vm('web1');
  const ping = { eth_src: web1.port.mac, eth_dst: web1.routerMac, eth_type: 0x0800, ipv4_src: '10.1.1.11', ipv4_dst: '10.1.2.11', nw_ttl: 64, ip_proto: 1, icmpv4_type: 8, icmpv4_code: 0 };
  t.deepEqual(where(f.send('web1', ping)), [`hv2:${f.vm('app1').ofport}`]);
});
