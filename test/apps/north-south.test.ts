import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BgpConfigError,
  BgpVtyError,
  GATEWAY_BFD_UDP_PORT,
  NORTH_SOUTH_APP_ID,
  NotAGatewayError,
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
  VtyBgpSpeakers,
} from '../../src/apps/north-south';
import { AppSettingsError } from '../../src/sdk';
import { type NetworkModel, TUNNEL_OFPORT } from '../../src/model';
import { makeCookie } from '../../src/sdk/cookie';
import { IncrementalCompiler } from '../../src/sdk/incremental';
import { FlowTableSim, type SimPacket } from '../../src/sdk/sim';
import { NORTH_SOUTH_COMPILERS, NORTH_SOUTH_PIPELINE as PIPELINE, edit, northSouth, placeIn, switchFlows, viewOf } from './helpers';

/**
 * Floating IPs through the whole compiled pipeline of a hypervisor (every overlay app plus
 * north-south), in the FlowTableSim: what leaves, by which port, with which headers.
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
  // hv1 is a gateway itself: its VMs leave by the zone's other gateway
  t.is(out.packet.tun_ipv4_dst, hv('hv2').tunnelIp);
});

/** the north-south model with hv5, a zone-a hypervisor that is no gateway, now holding web1 */
const withHv5 = edit(model, (d) => {
  d.hypervisors.push({ name: 'hv5', zone: 'zone-a', tunnelIp: '172.16.1.15', datapathId: '0x15' });
  d.ports.find((p: { name: string }) => p.name === 'web1').hypervisor = 'hv5';
});

test('failover: a select group over the zone\'s gateways, each bucket watching its BFD port; a dead port\'s bucket is skipped', (t) => {
  const hv5 = withHv5.hypervisors.find((h) => h.name === 'hv5')!;
  const group = gatewaysGroups(NORTH_SOUTH_APP_ID, withHv5, bfdOfport(withHv5)).get(hv5.datapathId)!;
  t.is(group.groupType, 'select');
  t.deepEqual(group.buckets.map((b) => [b.watchPort, b.weight]), [[100, 100], [101, 100]], 'ECMP: one equal bucket per gateway, hv1 and hv2');
  const v = viewOf(withHv5);
  const s = (dead: number[]) => {
    const sim5 = new FlowTableSim(switchFlows(v, PIPELINE, NORTH_SOUTH_COMPILERS).get(hv5.datapathId)!, [group]);
    const p = v.vpcs.flatMap((x) => x.ports).find((x) => x.port.name === 'web1')!;
    const pkt = { eth_src: p.port.mac, eth_dst: p.routerMac, eth_type: 0x0800, ipv4_src: p.port.ip, ipv4_dst: INTERNET, ip_proto: 6, tcp_src: 40000, tcp_dst: 80, nw_ttl: 64 };
    return sim5.inject(pkt, p.ofport!, { deadPorts: new Set(dead) }).outputs.map((o) => [o.port, o.packet.tun_ipv4_dst, o.packet.ipv4_src]);
  };
  t.deepEqual(s([]), [[TUNNEL_OFPORT, hv('hv1').tunnelIp, FIP_WEB1]]);
  t.deepEqual(s([100]), [[TUNNEL_OFPORT, hv('hv2').tunnelIp, FIP_WEB1]], 'hv1\'s BFD down: hv2 carries it');
  t.deepEqual(s([100, 101]), [], 'no live gateway: dropped, never sent to another zone');
  // a gateway port the switch has not reported yet has no bucket
  const half = gatewaysGroups(NORTH_SOUTH_APP_ID, withHv5, (_dpid, name) => (name === gatewayPortName(hv('hv2')) ? 7 : undefined)).get(hv5.datapathId)!;
  t.deepEqual(half.buckets.map((b) => b.watchPort), [7]);
});

test('BFD peers: a hypervisor watches its zone\'s gateways; a gateway answers every hypervisor of its zone', (t) => {
  const names = (h: string) => bfdPeers(withHv5, withHv5.hypervisors.find((x) => x.name === h)!).map((p) => p.name);
  t.deepEqual(names('hv5'), ['hv1', 'hv2']);
  t.deepEqual(names('hv1'), ['hv2', 'hv5']);
  t.deepEqual(names('hv3'), ['hv4'], 'never a session into another zone');
  t.is(gatewayPortName(hv('hv1')), 'zm-gw-ac10010b');
});

test('BFD ports: one ovs-vsctl transaction sets every peer\'s port and deletes ours to former peers only', (t) => {
  const hv5 = { ...withHv5.hypervisors.find((h) => h.name === 'hv5')!, ovsdb: 'unix:/run/hv5/db.sock' };
  const args = gatewayPortsCommand(hv5, [hv('hv1')], ['web1', 'zm-tun', 'zm-gw-ac10010b', 'zm-gw-ac10010c']);
  t.deepEqual(args, [
    '--db=unix:/run/hv5/db.sock',
    '--timeout=10',
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
  const s = new FlowTableSim(switchFlows(limited, PIPELINE, NORTH_SOUTH_COMPILERS).get(hv('hv1').datapathId)!, groupsOf(limited.model, hv('hv1').datapathId));
  t.is(s.inject(fromVm('web1', INTERNET), port('web1').ofport!).outputs[0]?.packet.ipv4_src, FIP_WEB1);
  t.deepEqual(s.inject(fromVm('web1', '203.0.113.9'), port('web1').ofport!).outputs, []);
});

test('rebinding a floating IP moves its flows in one change of its owner: cleared on the old hypervisor, set on the new', (t) => {
  const engine = new IncrementalCompiler();
  engine.update(northSouthGroups(PIPELINE, model, placeIn(view)));
  const rebound = edit(model, (d) => (d.floatingIps[0].port = 'app1'));
  const changes = engine.update(northSouthGroups(PIPELINE, rebound, placeIn(viewOf(rebound))));
  t.deepEqual(
    changes.map((c) => [c.owner, model.hypervisors.find((h) => h.datapathId === c.dpid)!.name, c.flows.length]),
    [
      [`fip:${FIP_WEB1}`, 'hv2', 4],
      [`fip:${FIP_WEB1}`, 'hv1', 0],
    ],
  );
  t.true(changes[0]!.flows.every((f) => f.cookie === makeCookie(NORTH_SOUTH_APP_ID, `fip:${FIP_WEB1}`)));
});

test('a floating IP whose port is not plugged in yet has no flows', (t) => {
  const unplugged = new Map(view.placement);
  unplugged.set(hv('hv1').datapathId, new Map());
  const owners = northSouthGroups(PIPELINE, model, placeIn(viewOf(model, unplugged))).flatMap((g) => [...g.owners()].map((o) => o.key));
  t.deepEqual(owners, ['fip:198.51.100.74']);
});

test('a port plugged in under the same model gets its floating IP flows', (t) => {
  const engine = new IncrementalCompiler();
  const unplugged = new Map(view.placement);
  unplugged.set(hv('hv1').datapathId, new Map());
  engine.update(northSouthGroups(PIPELINE, model, placeIn(viewOf(model, unplugged))));
  const changes = engine.update(northSouthGroups(PIPELINE, model, placeIn(view)));
  t.deepEqual(changes.map((c) => [c.owner, c.flows.length]), [[`fip:${FIP_WEB1}`, 4]]);
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
  const dir = mkdtempSync(join(tmpdir(), 'zm-vty-'));
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
