/**
 * Dual-stack on a real Open vSwitch: `zonemesh run` with the four overlay apps on a netdev bridge
 * and four Linux namespaces (web1, web2, web3 in tier web; app1 in tier app). The VMs configure
 * IPv6 by SLAAC from our RAs; their neighbour solicitations are answered by the bridge; IPv6 is
 * routed with the hop limit decremented once; ACLs hold, and an ICMPv6 error about an allowed flow
 * passes as related; a VM's RA and a spoofed source are dropped at its port. One scenario for all assertions.
 */
import test, { type ExecutionContext } from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { linkLocalAddress, parseIpv6Cidr, routerMac, slaacAddress } from '../../src/model';
import { routerAdvertisement } from '../../src/packet';
import { assertOvsRunning, vsctl } from '../helpers/ovs';
import { ControllerProcess, testDir, until } from '../helpers/restart';
import { freePort, run, spawnTracked } from '../helpers/run';

const BRIDGE = 'zmv6-br';
const DPID = '0x0000000000000f06';
const PREFIX = { web: 'fd00:9:1::/64', app: 'fd00:9:2::/64' } as const;
const VMS = [
  { name: 'web1', ns: 'zmv6-web1', subnet: 'web', mac: '02:00:00:00:0f:01', ip: '10.9.1.11' },
  { name: 'web2', ns: 'zmv6-web2', subnet: 'web', mac: '02:00:00:00:0f:02', ip: '10.9.1.12' },
  { name: 'web3', ns: 'zmv6-web3', subnet: 'web', mac: '02:00:00:00:0f:03', ip: '10.9.1.13' },
  { name: 'app1', ns: 'zmv6-app1', subnet: 'app', mac: '02:00:00:00:0f:04', ip: '10.9.2.11' },
] as const;
type Vm = (typeof VMS)[number];
const veth = (i: number) => `zmv6-v${i + 1}`;
const [WEB1, WEB2, WEB3, APP1] = VMS;
const ipv6Of = (vm: Vm) => slaacAddress(parseIpv6Cidr(PREFIX[vm.subnet])!, vm.mac);
const routerLinkLocalOf = (subnet: keyof typeof PREFIX) => linkLocalAddress(routerMac('blue', subnet));

/** allowed from web to app, and closed on app1: its ICMPv6 port unreachable must come back as related */
const CLOSED_UDP_PORT = 9999;

const MODEL = `
zones: [{ name: lab, underlay: 172.16.9.0/24 }]
hypervisors: [{ name: hv1, zone: lab, tunnelIp: 172.16.9.11, datapathId: "${DPID}" }]
vpcs:
  - name: blue
    vni: 9
    subnets:
      - { name: web, cidr: 10.9.1.0/24, gateway: 10.9.1.1, ipv6: { prefix: "${PREFIX.web}", slaac: true } }
      - { name: app, cidr: 10.9.2.0/24, gateway: 10.9.2.1, ipv6: { prefix: "${PREFIX.app}", slaac: true } }
    acls:
      - { name: web-to-app-ping6, subnet: app, direction: ingress, action: allow, protocol: icmp6, remote: { subnet: web } }
      - { name: web-to-app-udp, subnet: app, direction: ingress, action: allow, protocol: udp, ports: ${CLOSED_UDP_PORT}, remote: { subnet: web } }
ports:
${VMS.map((vm, i) => `  - { name: ${vm.name}, vpc: blue, subnet: ${vm.subnet}, mac: "${vm.mac}", ip: ${vm.ip}, hypervisor: hv1, interface: ${veth(i)}, ofport: ${i + 1} }`).join('\n')}
`;

const sh = (args: readonly string[], timeoutMs = 30_000) => run(args[0]!, args.slice(1), { timeoutMs });
const inNs = (vm: Vm, args: readonly string[], timeoutMs?: number) => sh(['ip', 'netns', 'exec', vm.ns, ...args], timeoutMs);

async function destroy(t: ExecutionContext): Promise<void> {
  await vsctl(['--if-exists', 'del-br', BRIDGE]).catch((e: Error) => t.log(`del-br ${BRIDGE}: ${e.message}`));
  for (const [i, vm] of VMS.entries()) {
    await sh(['ip', 'link', 'del', veth(i)]).catch(() => undefined);
    await sh(['ip', 'netns', 'del', vm.ns]).catch(() => undefined);
  }
}

/** the VMs' namespaces, their links down until the bridge has its flows */
async function createVms(): Promise<void> {
  for (const [i, vm] of VMS.entries()) {
    await sh(['ip', 'netns', 'add', vm.ns]);
    await sh(['ip', 'link', 'add', veth(i), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', vm.ns]);
    // the host side of the veth stays silent: no IPv6 of its own on the bridge
    await sh(['sysctl', '-qw', `net.ipv6.conf.${veth(i)}.disable_ipv6=1`]);
    await inNs(vm, ['ip', 'link', 'set', 'eth0', 'address', vm.mac]);
    await inNs(vm, ['sysctl', '-qw', 'net.ipv6.conf.eth0.accept_ra=1', 'net.ipv6.conf.eth0.addr_gen_mode=0']);
    // the userspace datapath does not complete checksums a veth leaves to offload
    await inNs(vm, ['ethtool', '-K', 'eth0', 'tx', 'off']);
    await inNs(vm, ['ip', 'addr', 'add', `${vm.ip}/24`, 'dev', 'eth0']);
    await sh(['ip', 'link', 'set', veth(i), 'up']);
  }
}

async function addBridge(controllerPort: number): Promise<void> {
  await vsctl([
    '--', 'add-br', BRIDGE,
    '--', 'set', 'bridge', BRIDGE, 'datapath_type=netdev', 'fail_mode=secure', 'protocols=OpenFlow13', `other-config:datapath-id=${DPID.slice(2)}`,
    '--', 'set-controller', BRIDGE, `tcp:127.0.0.1:${controllerPort}`,
    '--', 'set', 'controller', BRIDGE, 'max_backoff=1000',
    ...VMS.flatMap((_, i) => ['--', 'add-port', BRIDGE, veth(i), '--', 'set', 'interface', veth(i), `ofport_request=${i + 1}`]),
  ]);
}

/** what a VM configured from the RAs: global addresses, IPv6 default route, IPv6 MTU */
async function slaacState(vm: Vm) {
  const addr = (await inNs(vm, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'])).stdout;
  const route = (await inNs(vm, ['ip', '-6', 'route', 'show', 'default'])).stdout.trim();
  const mtu = Number((await inNs(vm, ['cat', '/proc/sys/net/ipv6/conf/eth0/mtu'])).stdout.trim());
  return { inet6: [...addr.matchAll(/inet6 (\S+)/g)].map((m) => m[1]!), route, mtu };
}

/** true when `count` ping6 from vm to dst all come back; the replies' hop limits */
async function ping6(vm: Vm, dst: string, opts: { count?: number; from?: string } = {}): Promise<{ ok: boolean; ttls: number[] }> {
  const args = ['ping', '-6', '-n', '-c', String(opts.count ?? 2), '-i', '0.2', '-W', '1', ...(opts.from ? ['-I', opts.from] : []), dst];
  const out = await inNs(vm, args).then((r) => r.stdout, (e: { details?: { stdout?: string } }) => e.details?.stdout ?? '');
  const ttls = [...out.matchAll(/ttl=(\d+)/g)].map((m) => Number(m[1]));
  return { ok: / 0% packet loss/.test(out), ttls };
}

/** packets seen on a host-side veth (what OVS sent the VM) while `during` runs, as tshark field rows */
async function captured(dir: string, iface: string, fields: readonly string[], during: () => Promise<unknown>): Promise<string[][]> {
  const file = join(dir, `${iface}.pcap`);
  const tcpdump = spawnTracked('tcpdump', ['-i', iface, '--immediate-mode', '-U', '-Z', 'root', '-w', file, 'icmp6']);
  let stderr = '';
  tcpdump.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await until(`tcpdump listening on ${iface}`, 10_000, () => /listening on/.test(stderr) || undefined);
  await during();
  tcpdump.kill('SIGTERM');
  await new Promise((r) => tcpdump.once('exit', r));
  const { stdout } = await sh(['tshark', '-r', file, '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])]);
  return stdout.split('\n').filter((l) => l !== '').map((l) => l.split('|'));
}

/** n_packets of the flows whose dump-flows line matches */
async function packetsOf(match: RegExp): Promise<number> {
  const { stdout } = await sh(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows', BRIDGE]);
  return stdout.split('\n').filter((l) => match.test(l)).reduce((n, l) => n + Number(/n_packets=(\d+)/.exec(l)?.[1] ?? 0), 0);
}

test.before(assertOvsRunning);

test.serial('dual-stack VMs: SLAAC from our RAs, ND answered by the bridge, routed and filtered IPv6 (ICMPv6 errors related), rogue RA and spoofed source dropped', async (t) => {
  t.timeout(180_000);
  const dir = testDir('ovs-ipv6');
  await destroy(t);
  t.teardown(() => destroy(t));
  const modelFile = join(dir, 'model.yaml');
  writeFileSync(modelFile, MODEL);
  await createVms();
  const port = await freePort();
  const ctl = new ControllerProcess(t, ['--apps', 'tunnel-mesh,arp-responder,distributed-router,acl', '--model', modelFile, '--listen', `tcp:127.0.0.1:${port}`]);
  await ctl.waitFor('apps started', (l) => l.msg === 'apps started', 60_000);
  await addBridge(port);
  await ctl.fullSync(60_000);
  for (const vm of VMS) await inNs(vm, ['ip', 'link', 'set', 'eth0', 'up']);

  // SLAAC: each VM's RS is answered (and the periodic RA reaches it): EUI-64 address, default route via the router's link-local, MTU 1400
  for (const vm of VMS) {
    const state = await until(`${vm.name}'s SLAAC address`, 30_000, async () => {
      const s = await slaacState(vm);
      return s.inet6.length > 0 && s.route !== '' ? s : undefined;
    });
    t.deepEqual(state.inet6, [`${ipv6Of(vm)}/64`], vm.name);
    t.regex(state.route, new RegExp(`^default via ${routerLinkLocalOf(vm.subnet)} dev eth0 proto ra`), vm.name);
    t.is(state.mtu, 1400, vm.name);
  }
  // addresses must have finished DAD before they can be used as sources
  for (const vm of VMS) await until(`${vm.name} out of DAD`, 10_000, async () => !/tentative/.test((await inNs(vm, ['ip', '-6', 'addr', 'show', 'dev', 'eth0'])).stdout) || undefined);

  // ND: web1 resolves web2 and the router; no NS for web2's address ever reaches web2
  await inNs(WEB1, ['ip', '-6', 'neigh', 'flush', 'dev', 'eth0']);
  const answerFlow = new RegExp(`icmp_type=135,nd_target=${ipv6Of(WEB2)} actions`);
  const answered = await packetsOf(answerFlow);
  const toWeb2 = await captured(dir, veth(1), ['icmpv6.type', 'icmpv6.nd.ns.target_address'], async () => {
    t.true((await ping6(WEB1, ipv6Of(WEB2))).ok, 'web1 → web2 ping6');
  });
  t.deepEqual(toWeb2.filter(([type, target]) => type === '135' && target === ipv6Of(WEB2)), [], 'the bridge answered web1\'s NS for web2');
  t.true(toWeb2.some(([type]) => type === '128'), `the echo request reached web2: ${JSON.stringify(toWeb2)}`);
  t.regex((await inNs(WEB1, ['ip', '-6', 'neigh', 'show', ipv6Of(WEB2)])).stdout, new RegExp(`lladdr ${WEB2.mac}`));
  t.true((await packetsOf(answerFlow)) > answered, "the NS hit the bridge's answer flow for web2");
  t.true((await ping6(WEB1, `${routerLinkLocalOf('web')}%eth0`)).ok, 'ping6 of the router');
  t.regex((await inNs(WEB1, ['ip', '-6', 'neigh', 'show', routerLinkLocalOf('web')])).stdout, new RegExp(`lladdr ${routerMac('blue', 'web')} router`));

  // routing: web1 → app1 allowed (icmp6 rule), the reply one hop less; app1 → web1 has no rule
  const routed = await ping6(WEB1, ipv6Of(APP1));
  t.true(routed.ok, 'web1 → app1 routed');
  t.deepEqual(routed.ttls, [63, 63], 'the reply crossed the router once: hop limit 64 - 1');
  t.false((await ping6(APP1, ipv6Of(WEB1), { count: 1 })).ok, 'app1 → web1 denied');
  // the ICMPv6 error about an allowed UDP flow passes app → web as related, though no rule allows app → web
  const udp = `import socket,sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect((sys.argv[1], ${CLOSED_UDP_PORT}))
s.send(b'x')
try:
    s.recv(16)
    print('data')
except ConnectionRefusedError:
    print('refused')
except socket.timeout:
    print('timeout')`;
  t.is((await inNs(WEB1, ['python3', '-c', udp, ipv6Of(APP1)])).stdout.trim(), 'refused', "app1's port unreachable reached web1");

  // web3 sends an RA for a prefix of its own, and pings web2 from web1's address: both dropped at its port
  const rogue = routerAdvertisement({ routerMac: WEB3.mac, routerIp: linkLocalAddress(WEB3.mac), prefix: 'fd00:bad::', prefixLength: 64, slaac: true, mtu: 1400, routerLifetime: 1800, validLifetime: 3600, preferredLifetime: 3600 });
  const raDrops = await packetsOf(/in_port=3,.*icmp_type=134 actions=drop/);
  await inNs(WEB3, ['python3', '-c', "import socket,sys; s=socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('eth0', 0)); s.send(bytes.fromhex(sys.argv[1]))", rogue.toString('hex')]);
  await until('the rogue RA counted at web3\'s port', 10_000, async () => (await packetsOf(/in_port=3,.*icmp_type=134 actions=drop/)) > raDrops || undefined);
  t.deepEqual((await slaacState(WEB2)).inet6, [`${ipv6Of(WEB2)}/64`], 'web2 took no address from the rogue RA');
  // web3 first resolves web2 from its own address: the spoofed ping then tests the source alone, not an NS from it
  t.true((await ping6(WEB3, ipv6Of(WEB2), { count: 1, from: ipv6Of(WEB3) })).ok, 'web3 with its own source passes');
  await inNs(WEB3, ['ip', '-6', 'addr', 'add', `${ipv6Of(WEB1)}/128`, 'dev', 'eth0', 'nodad']);
  const spoofguardMiss = /table=1, .*priority=0 actions=drop/;
  const spoofDrops = await packetsOf(spoofguardMiss);
  t.false((await ping6(WEB3, ipv6Of(WEB2), { count: 1, from: ipv6Of(WEB1) })).ok, "web3 with web1's source is dropped");
  t.true((await packetsOf(spoofguardMiss)) > spoofDrops, "dropped by spoofguard's miss, at web3's port");
  t.deepEqual(ctl.problems(), [], 'no warning or error logged');
});
