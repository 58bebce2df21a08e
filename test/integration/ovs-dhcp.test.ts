/**
 * dhcp-responder against a real Open vSwitch: `zonemesh run` with dhcp-responder and a model on
 * a netdev bridge with three namespaces. ISC dhclient and busybox udhcpc get the model's address,
 * mask, router and MTU 1400 (and udhcpc the classless routes); an unknown MAC, and a known MAC on
 * another port, get no lease, and /metrics counts each by reason. Then `dhclient -6 -S` (stateless
 * DHCPv6) gets the subnet's IPv6 DNS servers and search domain. The clients configure the
 * interface through the scenario's script (mininet/zmnet/dhcp-client.sh), so nothing of the host
 * (resolv.conf) is touched.
 */
import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOvsRunning, vsctl } from '../helpers/ovs';
import { samples, scrape } from '../helpers/metrics';
import { waitFor } from '../helpers/overlay';
import { REPO_ROOT } from '../helpers/paths';
import { ControllerProcess, testDir, until } from '../helpers/restart';
import { CommandError, freePort, run, spawnTracked } from '../helpers/run';
import { linkLocalAddress, routerMac } from '../../src/model';

const BRIDGE = 'zmd-dhcp';
const DPID = '0x0000000000000d1c';
const HOSTS = ['zmd-c1', 'zmd-c2', 'zmd-c3'] as const;
const veth = (i: number) => `zmd-v${i}`;
const VM1 = { mac: '02:00:00:00:0d:01', ip: '10.9.0.11' };
const VM2 = { mac: '02:00:00:00:0d:02', ip: '10.9.0.12' };
const UNKNOWN_MAC = '02:00:00:00:0d:99';
const DNS6 = ['fd00:9::53', 'fd00:9::54'];

const MODEL = `
zones: [{ name: lab, underlay: 172.16.9.0/24 }]
hypervisors: [{ name: hv1, zone: lab, tunnelIp: 172.16.9.11, datapathId: "${DPID}" }]
vpcs:
  - name: blue
    vni: 9
    subnets:
      - { name: web, cidr: 10.9.0.0/24, gateway: 10.9.0.1, dns: [10.9.0.2], domain: blue.test, leaseTime: 600,
          routes: [{ cidr: 192.168.50.0/24, via: 10.9.0.254 }], ipv6: { prefix: "fd00:9::/64", dns: ["${DNS6.join('", "')}"] } }
ports:
  - { name: vm1, vpc: blue, subnet: web, mac: "${VM1.mac}", ip: ${VM1.ip}, hypervisor: hv1, interface: ${veth(1)}, ofport: 1 }
  - { name: vm2, vpc: blue, subnet: web, mac: "${VM2.mac}", ip: ${VM2.ip}, hypervisor: hv1, interface: ${veth(2)}, ofport: 2 }
`;

/** configures eth0 for dhclient and udhcpc alike; keeps each event's environment as $ZM_DHCP_OUT/EVENT.env */
const CLIENT_SCRIPT = join(REPO_ROOT, 'mininet', 'zmnet', 'dhcp-client.sh');

const DHCLIENT_CONF = `
timeout 20;
retry 1;
request subnet-mask, routers, domain-name, domain-name-servers, interface-mtu;
`;

const sh = (args: readonly string[], timeoutMs = 30_000) => run(args[0]!, args.slice(1), { timeoutMs });
const inNs = (ns: string, args: readonly string[], timeoutMs?: number) => sh(['ip', 'netns', 'exec', ns, ...args], timeoutMs);

async function createHosts(t: ExecutionContext, dir: string) {
  const pidfiles: string[] = [];
  const destroy = async () => {
    for (const pidfile of pidfiles) {
      const pid = existsSync(pidfile) ? Number(readFileSync(pidfile, 'utf8').trim()) : NaN;
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    }
    await vsctl(['--if-exists', 'del-br', BRIDGE]).catch((e: Error) => t.log(`del-br ${BRIDGE}: ${e.message}`));
    for (const [i, ns] of HOSTS.entries()) {
      await sh(['ip', 'link', 'del', veth(i + 1)]).catch(() => undefined);
      await sh(['ip', 'netns', 'del', ns]).catch(() => undefined);
    }
  };
  await destroy();
  t.teardown(destroy);
  for (const [i, ns] of HOSTS.entries()) {
    await sh(['ip', 'netns', 'add', ns]);
    await sh(['ip', 'link', 'add', veth(i + 1), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await sh(['sysctl', '-qw', `net.ipv6.conf.${veth(i + 1)}.disable_ipv6=1`]);
    await inNs(ns, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.eth0.disable_ipv6=1']);
    await inNs(ns, ['ip', 'link', 'set', 'eth0', 'address', [VM1.mac, VM2.mac, UNKNOWN_MAC][i]!]);
    // the userspace datapath does not complete checksums a veth leaves to offload
    await inNs(ns, ['ethtool', '-K', 'eth0', 'tx', 'off']);
    await inNs(ns, ['ip', 'link', 'set', 'eth0', 'up']);
    await sh(['ip', 'link', 'set', veth(i + 1), 'up']);
    await sh(['mkdir', '-p', join(dir, ns)]);
  }
  return { pidfiles };
}

async function addBridge(controllerPort: number) {
  await vsctl([
    '--', 'add-br', BRIDGE,
    '--', 'set', 'bridge', BRIDGE, 'datapath_type=netdev', 'fail_mode=secure', 'protocols=OpenFlow13', `other-config:datapath-id=${DPID.slice(2)}`,
    '--', 'set-controller', BRIDGE, `tcp:127.0.0.1:${controllerPort}`,
    '--', 'set', 'controller', BRIDGE, 'max_backoff=1000',
    ...HOSTS.flatMap((_, i) => ['--', 'add-port', BRIDGE, veth(i + 1), '--', 'set', 'interface', veth(i + 1), `ofport_request=${i + 1}`]),
  ]);
}

/** what `ip` says about eth0 in `ns`: its IPv4 address with prefix, MTU and routes */
async function interfaceState(ns: string) {
  const addr = (await inNs(ns, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
  const link = (await inNs(ns, ['ip', '-o', 'link', 'show', 'dev', 'eth0'])).stdout;
  const routes = (await inNs(ns, ['ip', '-4', 'route', 'show', 'dev', 'eth0'])).stdout;
  return { inet: /inet (\S+)/.exec(addr)?.[1], mtu: Number(/mtu (\d+)/.exec(link)?.[1]), routes: routes.trim().split('\n').map((l) => l.trim()) };
}

function udhcpc(ns: string, dir: string, tries: number) {
  const args = ['netns', 'exec', ns, 'env', `ZM_DHCP_OUT=${join(dir, ns)}`, 'busybox', 'udhcpc', '-n', '-q', '-f', '-i', 'eth0', '-s', CLIENT_SCRIPT];
  return run('ip', [...args, '-t', String(tries), '-T', '1', '-A', '1', '-O', 'mtu', '-O', 'staticroutes'], { timeoutMs: 60_000 });
}

/** the DHCPv6 server messages OVS sent to a VM's veth while `during` runs: type, source, destination, DNS servers */
async function captured(dir: string, iface: string, during: () => Promise<unknown>): Promise<string[][]> {
  const file = join(dir, `${iface}-dhcp6.pcap`);
  const tcpdump = spawnTracked('tcpdump', ['-i', iface, '--immediate-mode', '-U', '-Z', 'root', '-w', file, 'udp dst port 546']);
  let stderr = '';
  tcpdump.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await until(`tcpdump listening on ${iface}`, 10_000, () => /listening on/.test(stderr) || undefined);
  try {
    await during();
  } finally {
    tcpdump.kill('SIGTERM');
    await new Promise((r) => tcpdump.once('exit', r));
  }
  const fields = ['dhcpv6.msgtype', 'ipv6.src', 'ipv6.dst', 'dhcpv6.dns_server'];
  const { stdout } = await sh(['tshark', '-r', file, '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])]);
  return stdout.split('\n').filter((l) => l !== '').map((l) => l.split('|'));
}

test.before(assertOvsRunning);

test.serial('dhclient and udhcpc get the model\'s address, mask, router and MTU 1400; unknown or misplaced MACs get no lease; dhclient -6 -S gets the IPv6 DNS servers and domain', async (t) => {
  t.timeout(240_000);
  const dir = testDir('ovs-dhcp');
  const modelFile = join(dir, 'model.yaml');
  writeFileSync(modelFile, MODEL);
  const { pidfiles } = await createHosts(t, dir);
  const [port, metricsPort] = [await freePort(), await freePort()];
  const config = join(dir, 'run.yaml');
  writeFileSync(config, `apps: [dhcp-responder]\nmodel: ${modelFile}\nlisten: ['tcp:127.0.0.1:${port}']\nmetrics: { listen: '127.0.0.1:${metricsPort}', pollIntervalMs: 1000 }\n`);
  const ctl = new ControllerProcess(t, config);
  await ctl.waitFor('apps started', (l) => l.msg === 'apps started', 60_000);
  await addBridge(port);
  await ctl.fullSync(60_000);

  // ISC dhclient in zmd-c1 (vm1): -1 tries once and fails after the config's timeout
  const pidfile = join(dir, 'dhclient.pid');
  pidfiles.push(pidfile);
  writeFileSync(join(dir, 'dhclient.conf'), DHCLIENT_CONF);
  const [c1, c2, c3] = HOSTS;
  const dhclient = await run('ip', ['netns', 'exec', c1, 'dhclient', '-1', '-v', '-cf', join(dir, 'dhclient.conf'), '-sf', CLIENT_SCRIPT, '-e', `ZM_DHCP_OUT=${join(dir, c1)}`, '-lf', join(dir, 'dhclient.leases'), '-pf', pidfile, 'eth0'], {
    timeoutMs: 60_000,
  });
  t.log(dhclient.stderr.split('\n').filter((l) => /DHCP/.test(l)).join('\n'));
  t.regex(dhclient.stderr, new RegExp(`DHCPACK of ${VM1.ip.replace(/\./g, '\\.')} from 10\\.9\\.0\\.1`));
  const vm1 = await interfaceState(c1);
  t.is(vm1.inet, `${VM1.ip}/24`);
  t.is(vm1.mtu, 1400);
  t.true(vm1.routes.includes('default via 10.9.0.1'), vm1.routes.join('\n'));
  const bound = readFileSync(join(dir, c1, 'BOUND.env'), 'utf8');
  t.regex(bound, /new_domain_name_servers='?10\.9\.0\.2/);
  t.regex(bound, /new_domain_name='?blue\.test/);
  t.regex(bound, /new_dhcp_lease_time='?600/);

  // busybox udhcpc in zmd-c2 (vm2)
  const got = await udhcpc(c2, dir, 5);
  t.log(got.stderr.trim());
  t.regex(got.stderr, new RegExp(`lease of ${VM2.ip.replace(/\./g, '\\.')} obtained from 10\\.9\\.0\\.1, lease time 600`));
  const vm2 = await interfaceState(c2);
  t.is(vm2.inet, `${VM2.ip}/24`);
  t.is(vm2.mtu, 1400);
  t.true(vm2.routes.includes('default via 10.9.0.1'), vm2.routes.join('\n'));
  t.true(vm2.routes.includes('192.168.50.0/24 via 10.9.0.254'), vm2.routes.join('\n'));

  // zmd-c3: an unknown MAC on port 3, then vm1's MAC on port 3: no answer either time
  for (const mac of [UNKNOWN_MAC, VM1.mac]) {
    await inNs(c3, ['ip', 'link', 'set', 'eth0', 'address', mac]);
    const refused = await udhcpc(c3, dir, 3).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.true(refused instanceof CommandError, `udhcpc with ${mac} on port 3 got a lease`);
    t.is((await interfaceState(c3)).inet, undefined);
  }
  // the switch dropped both, and the metrics say why (the flows' counters, polled every second)
  const drops = await waitFor(
    'both refusals counted',
    async () => {
      const text = await scrape(metricsPort);
      const sum = (name: string, labels: Record<string, string>) => samples(text, name, labels).reduce((n, s) => n + s.value, 0);
      const drop = (reason: string) => sum('zonemesh_dropped_packets_total', { reason, table: 'dhcp-responder.in' });
      return { unknownMac: drop('dhcp_unknown_mac'), wrongPort: drop('dhcp_wrong_port'), offers: sum('zonemesh_dhcp_replies_total', { type: 'offer' }) };
    },
    (d) => d.unknownMac >= 3 && d.wrongPort >= 3,
    { timeoutMs: 10_000, intervalMs: 500 },
  );
  t.log(`dropped by the switch: unknown MAC ${drops.unknownMac}, wrong port ${drops.wrongPort}; offers ${drops.offers}`);
  t.true(drops.offers >= 2, 'OFFERs to dhclient and udhcpc');

  // stateless DHCPv6: vm1 (IPv6 on, no DAD: its link-local is usable at once) asks with `dhclient -6 -S`
  await inNs(c1, ['sysctl', '-qw', 'net.ipv6.conf.eth0.accept_dad=0', 'net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.eth0.disable_ipv6=0']);
  await until('vm1 has its link-local address', 10_000, async () => (await inNs(c1, ['ip', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'link'])).stdout.includes('inet6 fe80::') || undefined);
  const out6 = join(dir, `${c1}-v6`);
  await sh(['mkdir', '-p', out6]);
  const pidfile6 = join(dir, 'dhclient6.pid');
  pidfiles.push(pidfile6);
  const replies = await captured(dir, veth(1), async () => {
    const inform = await run('ip', ['netns', 'exec', c1, 'dhclient', '-6', '-S', '-1', '-v', '-sf', CLIENT_SCRIPT, '-e', `ZM_DHCP_OUT=${out6}`, '-lf', join(dir, 'dhclient6.leases'), '-pf', pidfile6, 'eth0'], { timeoutMs: 60_000 });
    t.log(inform.stderr.split('\n').filter((l) => /Reply|Info-Request/.test(l)).join('\n'));
    // ISC dhclient 4.4 runs its script with reason RENEW6 for a stateless Reply
    await until('dhclient -6 configured vm1', 20_000, () => existsSync(join(out6, 'RENEW6.env')) || undefined);
  });
  const inform6 = readFileSync(join(out6, 'RENEW6.env'), 'utf8');
  t.regex(inform6, new RegExp(`new_dhcp6_name_servers='?${DNS6.join(' ')}`));
  t.regex(inform6, /new_dhcp6_domain_search='?"?blue\.test\.?/);
  // the server's DUID-LL (type 3, Ethernet) is the router MAC, as dhclient prints it: hex bytes without leading zeros
  const duid = ['0', '3', '0', '1', ...routerMac('blue', 'web').split(':').map((b) => parseInt(b, 16).toString(16))].join(':');
  t.true(inform6.includes(`new_dhcp6_server_id=${duid}`), `server DUID ${duid}: ${inform6}`);
  // on the wire: one Reply (7), from the router's link-local address to vm1's, with both servers
  t.deepEqual(replies, [['7', linkLocalAddress(routerMac('blue', 'web')), linkLocalAddress(VM1.mac), DNS6.join(',')]]);
  const reply6 = await waitFor('the DHCPv6 Reply counted', async () => samples(await scrape(metricsPort), 'zonemesh_dhcp_replies_total', { type: 'reply6' }).reduce((n, s) => n + s.value, 0), (n) => n >= 1, { timeoutMs: 10_000, intervalMs: 500 });
  t.is(reply6, 1);
  t.deepEqual(ctl.problems(), [], 'no warning or error logged');
});
