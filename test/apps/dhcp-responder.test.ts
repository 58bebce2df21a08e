import test, { type ExecutionContext } from 'ava';
import { DhcpResponderApp, PortRateLimiter } from '../../src/apps/dhcp-responder';
import { APP_REGISTRY, bindAppServices } from '../../src/apps/registry';
import {
  AppSettingsError,
  BootpOp,
  BROADCAST_MAC,
  buildDhcp,
  buildDhcp6,
  buildPacket,
  DhcpMessageType,
  Dhcp6MessageType,
  Dhcp6OptionCode,
  Dhcp6Status,
  duidFromMac,
  parseDhcp6,
  routerLinkLocal,
  type Dhcp6Message,
  findLayer,
  OFPP,
  parseDhcp,
  parsePacket,
  type DhcpMessage,
  type DhcpOptions,
  type PacketOut,
  type SimPacket,
} from '../../src/sdk';
import { linkLocalAddress } from '../../src/model';
import { until } from '../controller/util';
import { FakeSwitch, FlowTableSim, TestModelStore, fakePort, runApps } from '../../src/testing';

const WEB1 = { mac: '02:00:00:01:01:0b', ip: '10.1.1.11' };
const WEB2 = { mac: '02:00:00:01:01:0c', ip: '10.1.1.12' };
const UNKNOWN_MAC = '02:00:00:99:99:99';
const GATEWAY = '10.1.1.1';
const TUNNEL = 4000;

/** hv1 has web1 (ofport 1) and web2 (ofport 2); web3 on hv2 makes hv1 tunnel the subnet's broadcasts */
function modelDoc() {
  return {
    zones: [{ name: 'a', underlay: '172.16.1.0/24' }],
    hypervisors: [
      { name: 'hv1', zone: 'a', tunnelIp: '172.16.1.11', datapathId: '0x11' },
      { name: 'hv2', zone: 'a', tunnelIp: '172.16.1.12', datapathId: '0x12' },
    ],
    vpcs: [
      {
        name: 'blue',
        vni: 7,
        subnets: [
          {
            name: 'web', cidr: '10.1.1.0/24', gateway: GATEWAY, dns: ['10.0.0.2'], domain: 'blue.internal', leaseTime: 3600, routes: [{ cidr: '192.168.0.0/16', via: '10.1.1.254' }],
            ipv6: { prefix: 'fd00:7:1::/64', slaac: true, dns: ['fd00:53::53', 'fd00:53::54'] },
          },
        ],
      },
    ],
    ports: [
      { name: 'web1', vpc: 'blue', subnet: 'web', ...WEB1, hypervisor: 'hv1', ofport: 1 },
      { name: 'web2', vpc: 'blue', subnet: 'web', ...WEB2, hypervisor: 'hv1', ofport: 2 },
      { name: 'web3', vpc: 'blue', subnet: 'web', mac: '02:00:00:01:01:0d', ip: '10.1.1.13', hypervisor: 'hv2', ofport: 1 },
    ],
  };
}

const hv1 = () => new FakeSwitch({ dpid: 0x11n, ports: [fakePort(1, 'web1'), fakePort(2, 'web2'), fakePort(TUNNEL, 'zm-tun')] });

let xid = 0x5000;

function clientMessage(mac: string, messageType: number, options: DhcpOptions = {}, fields: Partial<DhcpMessage> = {}): DhcpMessage {
  return {
    op: BootpOp.REQUEST, htype: 1, hlen: 6, hops: 0, xid: ++xid, secs: 0, broadcast: false,
    ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr: mac,
    options: { messageType, ...options }, ...fields,
  };
}

/** the frame a client sends: from 0.0.0.0 to the broadcast address, or from ciaddr when it has one */
function clientFrame(m: DhcpMessage, ethSrc = m.chaddr): Buffer {
  return buildPacket([
    { type: 'ethernet', dst: BROADCAST_MAC, src: ethSrc },
    { type: 'ipv4', src: m.ciaddr, dst: '255.255.255.255' },
    { type: 'udp', srcPort: 68, dstPort: 67 },
    { type: 'raw', data: buildDhcp(m) },
  ]);
}

async function dhcpOnly(t: ExecutionContext, settings = {}, doc: object = modelDoc(), sw = hv1()) {
  const apps = await runApps({ apps: { 'dhcp-responder': DhcpResponderApp }, model: new TestModelStore(doc), settings: { 'dhcp-responder': settings } });
  t.teardown(() => apps.stop());
  t.teardown(() => sw.close());
  const report = await apps.connect(sw);
  const app = apps.runtime.apps[0] as DhcpResponderApp;
  const tableId = apps.runtime.pipeline.table('dhcp-responder.in').id;
  /** sends a packet-in as the app's flow would */
  const packetIn = (frame: Buffer, inPort: number) =>
    sw.send({ type: 'PACKET_IN', xid: 0, bufferId: 0xffffffff, totalLen: frame.length, reason: 1, tableId, cookie: 0n, match: [{ field: 'in_port', value: inPort }], data: frame });
  /** the next packet-out; every packet-in before it that got no answer sent nothing */
  const nextOut = () => sw.nextMessage('PACKET_OUT');
  return { sw, app, report, packetIn, nextOut };
}

function answer(out: PacketOut) {
  const packet = parsePacket(out.data);
  return { packet, dhcp: parseDhcp(findLayer(packet, 'raw')!.data), port: (out.actions[0] as { port: number }).port };
}

test('DISCOVER → OFFER and REQUEST → ACK carry the model: address, mask, router, lease, DNS, domain, MTU 1400, routes', async (t) => {
  const { packetIn, nextOut } = await dhcpOnly(t);
  const discover = clientMessage(WEB1.mac, DhcpMessageType.DISCOVER, { parameterList: [1, 3, 6, 15, 26, 121] });
  let out = nextOut();
  packetIn(clientFrame(discover), 1);
  const offer = answer(await out);
  t.is(offer.port, 1);
  t.like(findLayer(offer.packet, 'ethernet'), { dst: WEB1.mac });
  t.like(findLayer(offer.packet, 'ipv4'), { src: GATEWAY, dst: WEB1.ip });
  t.like(findLayer(offer.packet, 'udp'), { srcPort: 67, dstPort: 68 });
  const expectedOptions = {
    serverId: GATEWAY, leaseTime: 3600, renewalTime: 1800, rebindingTime: 3150, subnetMask: '255.255.255.0', routers: [GATEWAY],
    dnsServers: ['10.0.0.2'], domainName: 'blue.internal', interfaceMtu: 1400,
    classlessRoutes: [{ cidr: '192.168.0.0/16', via: '10.1.1.254' }, { cidr: '0.0.0.0/0', via: GATEWAY }],
  };
  t.like(offer.dhcp, { op: BootpOp.REPLY, xid: discover.xid, yiaddr: WEB1.ip, siaddr: GATEWAY, chaddr: WEB1.mac });
  t.deepEqual(offer.dhcp.options, { messageType: DhcpMessageType.OFFER, ...expectedOptions });

  const request = clientMessage(WEB1.mac, DhcpMessageType.REQUEST, { requestedIp: WEB1.ip, serverId: GATEWAY }, { broadcast: true });
  out = nextOut();
  packetIn(clientFrame(request), 1);
  const ack = answer(await out);
  t.like(findLayer(ack.packet, 'ethernet'), { dst: BROADCAST_MAC });
  t.like(findLayer(ack.packet, 'ipv4'), { dst: '255.255.255.255' }, 'the BROADCAST flag asks for a broadcast answer');
  t.like(ack.dhcp, { xid: request.xid, yiaddr: WEB1.ip });
  t.deepEqual(ack.dhcp.options, { messageType: DhcpMessageType.ACK, ...expectedOptions });
});

test('the router MAC of the subnet sends the answers', async (t) => {
  const { packetIn, nextOut } = await dhcpOnly(t);
  const out = nextOut();
  packetIn(clientFrame(clientMessage(WEB2.mac, DhcpMessageType.DISCOVER)), 2);
  const offer = answer(await out);
  const routerMac = new TestModelStore(modelDoc()).current().subnets[0]!.routerMac;
  t.is(findLayer(offer.packet, 'ethernet')!.src, routerMac);
  t.is(offer.dhcp.yiaddr, WEB2.ip);
});

test("REQUEST for another address → NAK, broadcast; renewing (ciaddr) → ACK unicast; another server's offer taken → silence", async (t) => {
  const { app, packetIn, nextOut } = await dhcpOnly(t);
  let out = nextOut();
  const wrong = clientMessage(WEB1.mac, DhcpMessageType.REQUEST, { requestedIp: '10.1.1.99' });
  packetIn(clientFrame(wrong), 1);
  const nak = answer(await out);
  t.like(nak.dhcp, { xid: wrong.xid, yiaddr: '0.0.0.0', options: { messageType: DhcpMessageType.NAK, serverId: GATEWAY } });
  t.like(findLayer(nak.packet, 'ipv4'), { dst: '255.255.255.255' });

  out = nextOut();
  packetIn(clientFrame(clientMessage(WEB1.mac, DhcpMessageType.REQUEST, { requestedIp: WEB1.ip, serverId: '10.1.1.200' })), 1);
  const renew = clientMessage(WEB1.mac, DhcpMessageType.REQUEST, {}, { ciaddr: WEB1.ip });
  packetIn(clientFrame(renew), 1);
  const ack = answer(await out);
  t.like(ack.dhcp, { xid: renew.xid, ciaddr: WEB1.ip, yiaddr: WEB1.ip, options: { messageType: DhcpMessageType.ACK } });
  t.like(findLayer(ack.packet, 'ipv4'), { dst: WEB1.ip });
  t.is(app.unanswered.get('other_server'), 1);
});

test('INFORM → ACK with options and no lease; RELEASE and DECLINE get no answer and are counted', async (t) => {
  const { app, packetIn, nextOut } = await dhcpOnly(t);
  const out = nextOut();
  packetIn(clientFrame(clientMessage(WEB1.mac, DhcpMessageType.RELEASE, { serverId: GATEWAY }, { ciaddr: WEB1.ip })), 1);
  packetIn(clientFrame(clientMessage(WEB1.mac, DhcpMessageType.DECLINE, { requestedIp: WEB1.ip, serverId: GATEWAY })), 1);
  const inform = clientMessage(WEB1.mac, DhcpMessageType.INFORM, {}, { ciaddr: WEB1.ip });
  packetIn(clientFrame(inform), 1);
  const ack = answer(await out);
  t.like(ack.dhcp, { xid: inform.xid, yiaddr: '0.0.0.0', options: { messageType: DhcpMessageType.ACK, subnetMask: '255.255.255.0', interfaceMtu: 1400 } });
  t.is(ack.dhcp.options.leaseTime, undefined);
  t.like(findLayer(ack.packet, 'ipv4'), { dst: WEB1.ip });
  t.is(app.unanswered.get('released'), 1);
  t.is(app.unanswered.get('declined'), 1);
});

test('an unknown MAC, a known MAC on the wrong port, a chaddr that is not the sender, and garbage get nothing', async (t) => {
  const { app, packetIn, nextOut } = await dhcpOnly(t);
  const out = nextOut();
  packetIn(clientFrame(clientMessage(UNKNOWN_MAC, DhcpMessageType.DISCOVER)), 1);
  packetIn(clientFrame(clientMessage(WEB1.mac, DhcpMessageType.DISCOVER)), 2); // web1's MAC on web2's port
  packetIn(clientFrame(clientMessage(WEB2.mac, DhcpMessageType.DISCOVER), WEB1.mac), 1); // asks for web2's address from web1
  packetIn(clientFrame(clientMessage(WEB1.mac, DhcpMessageType.DISCOVER)).subarray(0, 100), 1);
  const good = clientMessage(WEB1.mac, DhcpMessageType.DISCOVER);
  packetIn(clientFrame(good), 1);
  t.is(answer(await out).dhcp.xid, good.xid, 'the first answer is the good request\'s');
  t.is(app.unanswered.get('unknown_mac'), 1);
  t.is(app.unanswered.get('wrong_port'), 2, "web1's MAC on port 2, and web2's chaddr from port 1");
  t.is(app.unanswered.get('malformed'), 1);
  t.is(app.unanswered.get('malformed', 0x11n), 1, 'counted for the switch it came from');
  t.is(app.replies.get('offer'), 1);
});

test('a port of an IPv6-only subnet gets no DHCPv4: its DHCP is dropped by the switch, and one that reaches the app anyway is counted no_ipv4', async (t) => {
  const doc = modelDoc();
  const v6a = { name: 'v6a', vpc: 'blue', subnet: 'v6', mac: '02:00:00:01:06:0a', hypervisor: 'hv1', ofport: 3 };
  (doc.vpcs[0]!.subnets as object[]).push({ name: 'v6', ipv6: { prefix: 'fd00:7:6::/64', slaac: true } });
  (doc.ports as object[]).push(v6a);
  const sw = new FakeSwitch({ dpid: 0x11n, ports: [fakePort(1, 'web1'), fakePort(2, 'web2'), fakePort(3, 'v6a'), fakePort(TUNNEL, 'zm-tun')] });
  const { app, packetIn, nextOut } = await dhcpOnly(t, {}, doc, sw);
  const sim = new FlowTableSim(sw.flowTable.flows());
  const discover = (mac: string, inPort: number) => sim.inject({ eth_src: mac, eth_dst: BROADCAST_MAC, eth_type: 0x0800, ip_proto: 17, ipv4_src: '0.0.0.0', ipv4_dst: '255.255.255.255', udp_src: 68, udp_dst: 67, ip_ttl: 64 }, inPort);
  t.deepEqual(discover(WEB1.mac, 1).outputs.map((o) => o.port), [OFPP.CONTROLLER], 'web1 (dual-stack subnet) still goes up');
  t.deepEqual(discover(v6a.mac, 3).outputs, [], "v6a's DHCP is dropped on the switch");
  const out = nextOut();
  packetIn(clientFrame(clientMessage(v6a.mac, DhcpMessageType.DISCOVER)), 3);
  const good = clientMessage(WEB1.mac, DhcpMessageType.DISCOVER);
  packetIn(clientFrame(good), 1);
  t.is(answer(await out).dhcp.xid, good.xid, 'the first answer is web1\'s');
  t.is(app.unanswered.get('no_ipv4'), 1);
});

test('each port is rate-limited by its own token bucket', async (t) => {
  const { app, sw, packetIn } = await dhcpOnly(t, { burst: 3, perSecond: 0.001 });
  const sent = [1, 1, 1, 1, 1, 2, 2].map((port) => {
    const m = clientMessage(port === 1 ? WEB1.mac : WEB2.mac, DhcpMessageType.DISCOVER);
    packetIn(clientFrame(m), port);
    return m.xid;
  });
  // packet-ins are answered in order: once port 2's second answer is out, port 1 has had all of its
  await until(() => sw.count('PACKET_OUT') >= 5);
  const answered = sw.received.filter((m): m is PacketOut => m.type === 'PACKET_OUT').map((out) => answer(out).dhcp.xid);
  t.deepEqual(answered, [...sent.slice(0, 3), ...sent.slice(5)], 'port 1 got three answers, port 2 its own two');
  t.is(app.unanswered.get('rate_limited'), 2);
});

test('the token bucket refills at its rate and forgets the oldest port past its bound', (t) => {
  let now = 0;
  const limiter = new PortRateLimiter({ burst: 2, perSecond: 2 }, () => now);
  t.deepEqual([1, 2, 3].map(() => limiter.take(1n, 5)), [true, true, false]);
  now = 499;
  t.false(limiter.take(1n, 5));
  now = 1000; // 0.998 tokens kept at 499, plus 1.002
  t.deepEqual([1, 2, 3].map(() => limiter.take(1n, 5)), [true, true, false]);
  t.true(limiter.take(2n, 5), 'another switch\'s port 5 has its own bucket');
  for (let port = 1000; port < 1000 + 65_536; port++) limiter.take(1n, port);
  t.true(limiter.take(1n, 5), 'forgotten: a full bucket again');
});

test("bad settings stop the app at start, naming the setting", (t) => {
  t.throws(() => new DhcpResponderApp({ 'dhcp-responder': { burts: 3 } }), { instanceOf: AppSettingsError, message: /burts: is not a setting of dhcp-responder/ });
  t.throws(() => new DhcpResponderApp({ 'dhcp-responder': { perSecond: 0 } }), { instanceOf: AppSettingsError, message: /perSecond: must be a number/ });
});

/** dhcp-responder with the overlay apps, hv1 connected and in sync */
async function withOverlayOnHv1(t: ExecutionContext) {
  const apps = await runApps({
    apps: { 'dhcp-responder': DhcpResponderApp, 'tunnel-mesh': APP_REGISTRY['tunnel-mesh']!, 'arp-responder': APP_REGISTRY['arp-responder']!, 'distributed-router': APP_REGISTRY['distributed-router']!, acl: APP_REGISTRY.acl! },
    model: new TestModelStore(modelDoc()),
    bindServices: bindAppServices,
  });
  t.teardown(() => apps.stop());
  const sw = hv1();
  t.teardown(() => sw.close());
  t.like(await apps.connect(sw), { errors: 0 });
  return { apps, sw };
}

test('with the overlay: a DHCP broadcast from a VM reaches only the controller, never a tunnel or another port (FlowTableSim over the flows the switch got)', async (t) => {
  const { apps, sw } = await withOverlayOnHv1(t);
  t.is(apps.runtime.pipeline.tables[0]!.name, 'dhcp-responder.in');
  const sim = new FlowTableSim(sw.flowTable.flows());
  const udp = (src: string, ipSrc: string, sport: number, dport: number) => ({
    eth_src: src, eth_dst: BROADCAST_MAC, eth_type: 0x0800, ip_proto: 17, ipv4_src: ipSrc, ipv4_dst: '255.255.255.255', udp_src: sport, udp_dst: dport, ip_ttl: 64,
  });
  const ports = (packet: SimPacket, inPort: number) => sim.inject(packet, inPort).outputs.map((o) => o.port);
  /** the drop reason the metrics give the flow that ended the packet's way in table 0 */
  const dhcpTable = apps.runtime.pipeline.table('dhcp-responder.in').id;
  const [counter] = (apps.runtime.apps.find((a) => a.name === 'dhcp-responder') as DhcpResponderApp).flowCounters;
  const dropReason = (packet: SimPacket, inPort: number) => {
    const { trace } = sim.inject(packet, inPort);
    const hit = trace[0]!;
    const flow = sw.flowTable.flows().find((f) => f.tableId === dhcpTable && f.priority === hit.priority);
    return trace.length === 1 && flow ? counter!.count({ tableId: dhcpTable, priority: hit.priority!, cookie: flow.cookie }) : undefined;
  };

  t.deepEqual(ports(udp(WEB1.mac, '0.0.0.0', 68, 67), 1), [OFPP.CONTROLLER]);
  t.deepEqual(ports(udp(WEB1.mac, WEB1.ip, 68, 67), 1), [OFPP.CONTROLLER], 'a renewal from the port\'s own address too');
  t.deepEqual(ports(udp(WEB1.mac, '0.0.0.0', 68, 67), 2), [], 'web1\'s MAC on web2\'s port: dropped');
  t.deepEqual(dropReason(udp(WEB1.mac, '0.0.0.0', 68, 67), 2), { kind: 'drop', reason: 'dhcp_wrong_port' });
  t.deepEqual(ports(udp(UNKNOWN_MAC, '0.0.0.0', 68, 67), 1), [], 'unknown MAC: dropped');
  t.deepEqual(dropReason(udp(UNKNOWN_MAC, '0.0.0.0', 68, 67), 1), { kind: 'drop', reason: 'dhcp_unknown_mac' });
  t.deepEqual(ports(udp(WEB1.mac, WEB1.ip, 67, 68), 1), [], 'a VM playing DHCP server: dropped');
  t.deepEqual(dropReason(udp(WEB1.mac, WEB1.ip, 67, 68), 1), { kind: 'drop', reason: 'dhcp_from_vm_server' });
  t.deepEqual(ports({ ...udp(WEB1.mac, '0.0.0.0', 68, 67), tunnel_id: 0x7001n }, TUNNEL), [], 'DHCP out of a tunnel: dropped');
  t.deepEqual(dropReason({ ...udp('02:00:00:01:01:0d', '0.0.0.0', 68, 67), tunnel_id: 0x7001n }, TUNNEL), { kind: 'drop', reason: 'dhcp_unknown_mac' }, "web3's (on hv2) from the tunnel");
  // the same broadcast on another UDP port is flooded in the subnet, through the tunnel: the test can tell
  t.deepEqual(ports(udp(WEB1.mac, WEB1.ip, 68, 1067), 1).sort((a, b) => a - b), [2, TUNNEL]);
});

test('listed after tunnel-mesh, its intercept table is still table 0, before classify', async (t) => {
  const running = await runApps({ apps: { 'tunnel-mesh': APP_REGISTRY['tunnel-mesh']!, 'dhcp-responder': DhcpResponderApp }, model: new TestModelStore(modelDoc()), bindServices: bindAppServices });
  t.teardown(() => running.stop());
  t.is(running.runtime.pipeline.tables[0]?.name, 'dhcp-responder.in');
  t.true(running.runtime.pipeline.tables.findIndex((tb) => tb.stage === 'classify') > 0);
});

const ROUTER_MAC = new TestModelStore(modelDoc()).current().subnets[0]!.routerMac;
const CLIENT_DUID = Buffer.from('0003000102000000d601', 'hex');

function client6(messageType: number, options: Dhcp6Message['options'] = {}): Dhcp6Message {
  return { messageType, transactionId: ++xid & 0xffffff, options: { clientId: CLIENT_DUID, elapsedTime: 0, requestedOptions: [23, 24], ...options } };
}

/** what a DHCPv6 client sends: from its link-local address to All_DHCP_Relay_Agents_and_Servers */
function client6Frame(m: Dhcp6Message, mac = WEB1.mac): Buffer {
  return buildPacket([
    { type: 'ethernet', dst: '33:33:00:01:00:02', src: mac },
    { type: 'ipv6', src: linkLocalAddress(mac), dst: 'ff02::1:2', hopLimit: 1 },
    { type: 'udp', srcPort: 546, dstPort: 547 },
    { type: 'raw', data: buildDhcp6(m) },
  ]);
}

test('DHCPv6 Information-Request → Reply from the router link-local: DNS servers, domain search list, DUID-LL of the router MAC', async (t) => {
  const { app, packetIn, nextOut } = await dhcpOnly(t);
  const request = client6(Dhcp6MessageType.INFORMATION_REQUEST);
  const out = nextOut();
  packetIn(client6Frame(request), 1);
  const sent = await out;
  t.is((sent.actions[0] as { port: number }).port, 1);
  const packet = parsePacket(sent.data);
  t.like(findLayer(packet, 'ethernet'), { src: ROUTER_MAC, dst: WEB1.mac });
  t.like(findLayer(packet, 'ipv6'), { src: routerLinkLocal({ routerMac: ROUTER_MAC }), dst: linkLocalAddress(WEB1.mac) });
  t.like(findLayer(packet, 'udp'), { srcPort: 547, dstPort: 546 });
  t.deepEqual(parseDhcp6(findLayer(packet, 'raw')!.data), {
    messageType: Dhcp6MessageType.REPLY,
    transactionId: request.transactionId,
    options: { clientId: CLIENT_DUID, serverId: duidFromMac(ROUTER_MAC), dnsServers: ['fd00:53::53', 'fd00:53::54'], domainList: ['blue.internal'] },
  });
  t.is(app.replies.get('reply6', 0x11n), 1);
});

test('DHCPv6 Solicit → Advertise with NoAddrsAvail; stateful messages, another server, an IA in an Information-Request, a misplaced MAC and garbage get nothing', async (t) => {
  const { app, packetIn, nextOut } = await dhcpOnly(t);
  let out = nextOut();
  const solicit = client6(Dhcp6MessageType.SOLICIT, { identityAssociations: [{ code: Dhcp6OptionCode.IA_NA, body: Buffer.alloc(12) }] });
  packetIn(client6Frame(solicit), 1);
  const advertise = parseDhcp6(findLayer(parsePacket((await out).data), 'raw')!.data);
  t.like(advertise, { messageType: Dhcp6MessageType.ADVERTISE, transactionId: solicit.transactionId });
  t.is(advertise.options.status?.code, Dhcp6Status.NO_ADDRS_AVAIL);
  t.is(advertise.options.identityAssociations, undefined, 'no address offered');

  out = nextOut();
  packetIn(client6Frame(client6(Dhcp6MessageType.REQUEST, { serverId: duidFromMac(ROUTER_MAC) })), 1);
  packetIn(client6Frame(client6(Dhcp6MessageType.RENEW)), 1);
  packetIn(client6Frame(client6(Dhcp6MessageType.INFORMATION_REQUEST, { serverId: duidFromMac('0a:00:00:00:00:99') })), 1);
  packetIn(client6Frame(client6(Dhcp6MessageType.INFORMATION_REQUEST, { identityAssociations: [{ code: Dhcp6OptionCode.IA_NA, body: Buffer.alloc(12) }] })), 1);
  packetIn(client6Frame(client6(Dhcp6MessageType.SOLICIT, { clientId: undefined })), 1);
  packetIn(client6Frame(client6(Dhcp6MessageType.INFORMATION_REQUEST)), 2); // web1's MAC on web2's port
  packetIn(client6Frame(client6(Dhcp6MessageType.INFORMATION_REQUEST), UNKNOWN_MAC), 1);
  packetIn(client6Frame(client6(Dhcp6MessageType.INFORMATION_REQUEST)).subarray(0, 70), 1);
  const good = client6(Dhcp6MessageType.INFORMATION_REQUEST, { serverId: duidFromMac(ROUTER_MAC) });
  packetIn(client6Frame(good), 1);
  t.is(parseDhcp6(findLayer(parsePacket((await out).data), 'raw')!.data).transactionId, good.transactionId, 'the first answer is the good request\'s');
  t.is(app.unanswered.get('stateful'), 2);
  t.is(app.unanswered.get('other_server'), 1);
  t.is(app.unanswered.get('malformed'), 3, 'IA in an Information-Request, a Solicit without Client Identifier, a cut message');
  t.is(app.unanswered.get('wrong_port'), 1);
  t.is(app.unanswered.get('unknown_mac'), 1);
  t.deepEqual([app.replies.get('advertise6'), app.replies.get('reply6')], [1, 1]);
});

test('with the overlay: DHCPv6 to ff02::1:2 reaches only the controller, any other DHCPv6 is dropped, none enters a tunnel (FlowTableSim)', async (t) => {
  const { sw } = await withOverlayOnHv1(t);
  const sim = new FlowTableSim(sw.flowTable.flows());
  const udp6 = (mac: string, dst: string, sport: number, dport: number): SimPacket => ({
    eth_src: mac, eth_dst: '33:33:00:01:00:02', eth_type: 0x86dd, ip_proto: 17, ipv6_src: linkLocalAddress(mac), ipv6_dst: dst, udp_src: sport, udp_dst: dport, ip_ttl: 1,
  });
  const ports = (packet: SimPacket, inPort: number) => sim.inject(packet, inPort).outputs.map((o) => o.port);
  t.deepEqual(ports(udp6(WEB1.mac, 'ff02::1:2', 546, 547), 1), [OFPP.CONTROLLER]);
  t.deepEqual(ports(udp6(WEB1.mac, 'ff02::1:2', 546, 547), 2), [], "web1's MAC on web2's port");
  t.deepEqual(ports(udp6(UNKNOWN_MAC, 'ff02::1:2', 546, 547), 1), [], 'unknown MAC');
  t.deepEqual(ports({ ...udp6(WEB1.mac, 'ff02::1:2', 546, 547), tunnel_id: 0x7001n }, TUNNEL), [], 'out of a tunnel');
  t.deepEqual(ports({ ...udp6(WEB2.mac, 'fd00:7:1::99', 546, 547), eth_dst: '02:00:00:01:01:0d' }, 2), [], 'unicast to a server elsewhere');
  t.deepEqual(ports(udp6(WEB1.mac, 'fe80::ff:fe01:10c', 547, 546), 1), [], 'a VM playing DHCPv6 server');
  // the same multicast on another UDP port goes on to the overlay, which floods it in the subnet: the test can tell
  t.true(ports(udp6(WEB1.mac, 'ff02::1:2', 546, 1547), 1).includes(TUNNEL));
});
