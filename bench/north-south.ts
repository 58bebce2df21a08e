/**
 * North-south through zonemesh against a plain Linux NAT router, in the same run (issue 11): TCP
 * throughput (iperf 2) from the internet to a VM through its floating IP and from a VM out through
 * SNAT, and new connections per second out through SNAT, one after another and a few in parallel.
 *
 * zonemesh: the Mininet scenario of models/north-south.yaml (OVS's userspace datapath), the
 * controller running the overlay apps and north-south; web1 (floating IP 198.51.100.10) and red1
 * (SNAT 198.51.100.21) are on hv1, a gateway, whose br-int translates and forwards between them
 * and its segment port. The baseline: a router namespace on the same external segment, nftables
 * DNAT for its "floating IP" and SNAT for egress, its inside port and two VMs on a second bridge of
 * hv1's own ovs-vswitchd (netdev, NORMAL): one pass through the same userspace datapath, as
 * zonemesh's one pass through hv1's br-int (BENCHMARKS.md says why that is fair). The edge router
 * routes each side's addresses to its own box (/32s, as BGP would, without ECMP's coin toss).
 * Rounds interleave the two (zonemesh, nft; then nft, zonemesh; ...), since the machine is shared.
 *
 *   npx tsc -p . && npm run bench:ns     # -- --seconds 5 --rounds 3 --connections 300 --parallel 4 --prefix zmnp
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { OVERLAY_APPS, type OverlayScenario, type OverlayState, type RunningController, overlayDown, overlayUp, startController, waitFor } from '../test/helpers/overlay';
import { REPO_ROOT } from '../test/helpers/paths';
import { NFT, TEST_STATE_DIR, run, spawnTracked } from '../test/helpers/run';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '300' },
    parallel: { type: 'string', default: '4' },
    prefix: { type: 'string', default: 'zmnp' },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const CONNECTIONS = Number(values.connections);
const PARALLEL = Number(values.parallel);
const PREFIX = values.prefix;
const STATE = join(TEST_STATE_DIR, 'ns-bench');
const MODEL = join(STATE, 'model.yaml');
const IPERF_PORT = 5001;
/** the connection server listens on this many ports, so that no SNAT port block (1,024 per destination) runs out while closed connections linger in conntrack */
const CPS_PORTS = { first: 9000, count: 64 };
/** connections to one destination, to find where a port block runs out (a VM's is 1,024 ports) */
const BURST = 1500;

/** zonemesh's side: VMs on hv1, a gateway of zone-a; its address on the segment is the edge router's next hop for them */
const ZONEMESH = { gateway: 'hv1', fipVm: 'web1', fip: '198.51.100.10', snatVm: 'red1', snat: '198.51.100.21' } as const;
/** the baseline: a router on the same segment (ext-a, 198.51.100.0/26), its inside 10.9.9.0/24 */
const BASELINE = {
  segment: 'ext-a',
  router: { netns: `${PREFIX}bnat`, ext: '198.51.100.40', extPrefix: 26, int: '10.9.9.1' },
  fipVm: { netns: `${PREFIX}bfip`, ip: '10.9.9.11' },
  snatVm: { netns: `${PREFIX}bsnt`, ip: '10.9.9.12' },
  fip: '198.51.100.41',
  snat: '198.51.100.42',
  bridge: `${PREFIX}-nat`,
  /** the VMs' MTU, as the overlay's */
  mtu: 1400,
} as const;

let scenario: OverlayScenario | undefined;
let controller: RunningController | undefined;
const servers: ChildProcess[] = [];

const inNs = (netns: string, args: readonly string[], timeoutMs?: number) => run('ip', ['netns', 'exec', netns, ...args], { timeoutMs });

/** the baseline's namespaces (their veths go with them; its bridge goes with hv1's OVS) */
async function removeBaseline(): Promise<void> {
  for (const ns of [BASELINE.router.netns, BASELINE.fipVm.netns, BASELINE.snatVm.netns]) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
}

async function teardown(): Promise<void> {
  for (const s of servers) s.kill('SIGKILL');
  await controller?.stop();
  await removeBaseline();
  await (scenario?.down() ?? overlayDown(join(STATE, 'net'), PREFIX));
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void teardown().finally(() => process.exit(130)));

/**
 * The baseline router, its two VMs and their bridge. Every veth that touches OVS's userspace
 * datapath has TX checksum offload off (it does not complete partial checksums), and so does the
 * router's segment link, as the gateways' segment links have.
 */
async function buildBaseline(state: OverlayState): Promise<void> {
  const outside = state.outside!;
  const hv = state.hypervisors[ZONEMESH.gateway]!;
  const segment = outside.edge.segments[BASELINE.segment]!;
  const { router, fipVm, snatVm } = BASELINE;
  for (const ns of [router.netns, fipVm.netns, snatVm.netns]) {
    await run('ip', ['netns', 'add', ns]);
    await inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
  }
  const vsctl = (...args: string[]) => run('ovs-vsctl', ['--timeout=20', `--db=${hv.ovsdb}`, ...args]);
  await vsctl('add-br', BASELINE.bridge, '--', 'set', 'bridge', BASELINE.bridge, 'datapath_type=netdev', 'fail_mode=standalone');
  /** a veth from `ns` (named `inside`) to the bridge on hv1 (named `outside`) */
  const plugIn = async (ns: string, inside: string, outsideName: string) => {
    await inNs(ns, ['ip', 'link', 'add', inside, 'mtu', String(BASELINE.mtu), 'type', 'veth', 'peer', 'name', outsideName, 'mtu', String(BASELINE.mtu), 'netns', hv.netns]);
    await inNs(ns, ['ethtool', '-K', inside, 'tx', 'off']);
    await inNs(hv.netns, ['ethtool', '-K', outsideName, 'tx', 'off']);
    await inNs(hv.netns, ['ip', 'link', 'set', outsideName, 'up']);
    await vsctl('add-port', BASELINE.bridge, outsideName);
    await inNs(ns, ['ip', 'link', 'set', inside, 'up']);
  };
  await plugIn(router.netns, 'int', `${PREFIX}-bi`);
  await inNs(router.netns, ['ip', 'addr', 'add', `${router.int}/24`, 'dev', 'int']);
  for (const [vm, tag] of [[fipVm, 'bf'], [snatVm, 'bs']] as const) {
    await plugIn(vm.netns, 'eth0', `${PREFIX}-${tag}`);
    await inNs(vm.netns, ['ip', 'addr', 'add', `${vm.ip}/24`, 'dev', 'eth0']);
    await inNs(vm.netns, ['ip', 'route', 'add', 'default', 'via', router.int]);
  }
  // the segment link: into the edge router's bridge of ext-a, as a gateway's
  const edgeEnd = `${PREFIX}-bx`;
  await inNs(router.netns, ['ip', 'link', 'add', 'ext', 'type', 'veth', 'peer', 'name', edgeEnd, 'netns', outside.edge.netns]);
  await inNs(router.netns, ['ethtool', '-K', 'ext', 'tx', 'off']);
  await inNs(outside.edge.netns, ['ethtool', '-K', edgeEnd, 'tx', 'off']);
  await inNs(outside.edge.netns, ['ip', 'link', 'set', edgeEnd, 'master', segment.bridge, 'up']);
  await inNs(router.netns, ['ip', 'addr', 'add', `${router.ext}/${router.extPrefix}`, 'dev', 'ext']);
  await inNs(router.netns, ['ip', 'link', 'set', 'ext', 'up']);
  await inNs(router.netns, ['ip', 'route', 'add', 'default', 'via', segment.ip]);
  await inNs(router.netns, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  const rules = [
    'add table ip nat',
    'add chain ip nat pre { type nat hook prerouting priority dstnat; }',
    'add chain ip nat post { type nat hook postrouting priority srcnat; }',
    `add rule ip nat pre ip daddr ${BASELINE.fip} dnat to ${fipVm.ip}`,
    `add rule ip nat post oifname "ext" ip saddr ${fipVm.ip} snat to ${BASELINE.fip}`,
    `add rule ip nat post oifname "ext" ip saddr ${snatVm.ip} snat to ${BASELINE.snat}`,
  ];
  await inNs(router.netns, [NFT, rules.join('; ')]);
  // each side's addresses routed to its own box, as BGP would (one path: ECMP would send some runs through hv2 and a tunnel)
  const gatewayIp = outside.gateways.find((g) => g.hypervisor === ZONEMESH.gateway)!.ip;
  for (const [address, via] of [[ZONEMESH.fip, gatewayIp], [ZONEMESH.snat, gatewayIp], [BASELINE.fip, router.ext], [BASELINE.snat, router.ext]]) {
    await inNs(outside.edge.netns, ['ip', 'route', 'replace', `${address}/32`, 'via', via]);
  }
}

/** One side of the comparison: where the clients and servers run and whom the internet talks to. */
interface Side {
  name: string;
  /** the VM with a floating IP, and that address */
  fipNetns: string;
  fip: string;
  /** the VM that leaves through SNAT */
  snatNetns: string;
}

/** accept, one byte, close: on every port of CPS_PORTS */
const CONNECTION_SERVER = `
import selectors, socket, sys
ip, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sel = selectors.DefaultSelector()
for port in range(first, first + count):
    s = socket.create_server((ip, port), backlog=256)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print('listening', flush=True)
while True:
    for key, _ in sel.select():
        try:
            conn, _ = key.fileobj.accept()
        except BlockingIOError:
            continue
        try:
            conn.send(b'x')
        except OSError:
            pass
        conn.close()
`;

/**
 * N connections to ip over the server's first COUNT ports in turn, spread over P threads: connect,
 * read its byte, close. With STOP=1, one thread that stops at the first failure.
 */
const CONNECTION_CLIENT = `
import json, socket, sys, threading, time
ip, first, count, n, parallel, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == '1'
failures, done = [], [0]
def worker(k):
    for i in range(k, n, parallel):
        try:
            s = socket.create_connection((ip, first + i % count), timeout=5)
            s.recv(1)
            s.close()
            done[0] += 1
        except OSError as e:
            failures.append(repr(e))
            if stop:
                return
threads = [threading.Thread(target=worker, args=(k,)) for k in range(parallel)]
start = time.monotonic()
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({'seconds': time.monotonic() - start, 'done': done[0], 'failures': failures[:5], 'failed': len(failures)}))
`;

interface ConnectionRun {
  seconds: number;
  done: number;
  failed: number;
  failures: string[];
}

/** `n` new connections from `clientNs` to the internet's connection server (over `ports` of its ports), `parallel` at a time */
async function connections(clientNs: string, internetIp: string, n: number, opts: { parallel: number; ports: number; stopAtFailure?: boolean }): Promise<ConnectionRun> {
  const args = [internetIp, CPS_PORTS.first, opts.ports, n, opts.parallel, opts.stopAtFailure ? 1 : 0].map(String);
  const { stdout } = await inNs(clientNs, ['python3', '-c', CONNECTION_CLIENT, ...args], 300_000);
  return JSON.parse(stdout) as ConnectionRun;
}

/** connections per second, all of which must succeed */
async function connectionRate(clientNs: string, internetIp: string, n: number, parallel: number): Promise<number> {
  const r = await connections(clientNs, internetIp, n, { parallel, ports: CPS_PORTS.count });
  if (r.failed > 0) throw new Error(`${clientNs}: ${r.failed} of ${n} connections failed: ${r.failures.join('; ')}`);
  return n / r.seconds;
}

async function startServer(netns: string, command: readonly string[], ready: (out: string) => boolean): Promise<void> {
  const child = spawnTracked('ip', ['netns', 'exec', netns, ...command]);
  servers.push(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  await waitFor(`${command[0]} in ${netns}`, async () => out, ready, { timeoutMs: 10_000, intervalMs: 50 });
}

/** iperf 2 from `clientNs` to `ip` for SECONDS: bits per second */
async function throughput(clientNs: string, ip: string, seconds = SECONDS): Promise<number> {
  const { stdout } = await inNs(clientNs, ['iperf', '-c', ip, '-p', String(IPERF_PORT), '-t', String(seconds), '-y', 'C'], (seconds + 30) * 1000);
  const bps = Number(stdout.trim().split('\n').at(-1)?.split(',').at(-1));
  if (!(bps > 0)) throw new Error(`iperf ${clientNs} -> ${ip}: ${stdout}`);
  return bps;
}

const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
const median = (xs: readonly number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function main(): Promise<void> {
  console.log(`# north-south: zonemesh against an nftables router (node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}), load average ${load()} before the scenario`);
  mkdirSync(STATE, { recursive: true });
  // floating IPs take only what an ACL allows from outside: open iperf's port on the web tier
  const anchor = '      - { name: ping-web-from-anywhere,';
  const model = readFileSync(join(REPO_ROOT, 'models', 'north-south.yaml'), 'utf8');
  if (!model.includes(anchor)) throw new Error(`models/north-south.yaml has no line starting "${anchor.trim()}" to add the iperf rule after`);
  const iperfRule = `      - { name: iperf-from-anywhere, subnet: web, direction: ingress, action: allow, protocol: tcp, ports: ${IPERF_PORT}, remote: { cidr: 0.0.0.0/0 } }\n`;
  writeFileSync(MODEL, model.replace(anchor, iperfRule + anchor));
  await removeBaseline(); // what a crashed run left; overlayUp clears the scenario's
  scenario = await overlayUp(MODEL, { stateDir: join(STATE, 'net'), prefix: PREFIX });
  const state = scenario.state();
  controller = await startController(MODEL, scenario.hypervisorsJson, { apps: [...OVERLAY_APPS, 'north-south'] });
  await buildBaseline(state);
  const internet = state.outside!.internet;
  const sides: Side[] = [
    { name: 'zonemesh', fipNetns: state.vms[ZONEMESH.fipVm]!.netns, fip: ZONEMESH.fip, snatNetns: state.vms[ZONEMESH.snatVm]!.netns },
    { name: 'nft', fipNetns: BASELINE.fipVm.netns, fip: BASELINE.fip, snatNetns: BASELINE.snatVm.netns },
  ];
  const listening = (out: string) => out.includes('listening');
  for (const ns of [internet.netns, ...sides.map((s) => s.fipNetns)]) await startServer(ns, ['iperf', '-s', '-p', String(IPERF_PORT)], (out) => out.includes('Server listening'));
  await startServer(internet.netns, ['python3', '-u', '-c', CONNECTION_SERVER, internet.ip, String(CPS_PORTS.first), String(CPS_PORTS.count)], listening);

  const kinds: { name: string; unit: string; measure: (s: Side) => Promise<number> }[] = [
    { name: `TCP in, internet → floating IP (iperf, ${SECONDS} s)`, unit: 'Mbit/s', measure: async (s) => (await throughput(internet.netns, s.fip)) / 1e6 },
    { name: `TCP out, VM → internet through SNAT (iperf, ${SECONDS} s)`, unit: 'Mbit/s', measure: async (s) => (await throughput(s.snatNetns, internet.ip)) / 1e6 },
    { name: `new connections through SNAT, one after another (${CONNECTIONS})`, unit: 'conn/s', measure: (s) => connectionRate(s.snatNetns, internet.ip, CONNECTIONS, 1) },
    { name: `new connections through SNAT, ${PARALLEL} in parallel (${CONNECTIONS})`, unit: 'conn/s', measure: (s) => connectionRate(s.snatNetns, internet.ip, CONNECTIONS, PARALLEL) },
  ];
  // unmeasured: ARP, the first datapath flows, conntrack's first entries
  for (const s of sides) {
    await waitFor(`${s.name}: the floating IP answers`, () => throughput(internet.netns, s.fip, 1).catch(() => 0), (bps) => bps > 0, { timeoutMs: 60_000, intervalMs: 1000 });
    await throughput(s.snatNetns, internet.ip, 1);
    await connectionRate(s.snatNetns, internet.ip, 50, PARALLEL);
  }
  console.log(`scenario and baseline up; ${ROUNDS} rounds, the two sides interleaved; load average ${load()}`);
  const results = new Map<string, Map<string, number[]>>(kinds.map((k) => [k.name, new Map(sides.map((s) => [s.name, []]))]));
  const loads: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const kind of kinds) {
      for (const side of order) results.get(kind.name)!.get(side.name)!.push(await kind.measure(side));
    }
    loads.push(load());
    console.log(`round ${round + 1}: load average ${load()}`);
  }
  // last, since it fills a port block for conntrack's timeout: how many connections to one destination before the first fails
  const burst: Record<string, ConnectionRun> = {};
  for (const s of sides) burst[s.name] = await connections(s.snatNetns, internet.ip, BURST, { parallel: 1, ports: 1, stopAtFailure: true });
  writeFileSync(join(STATE, 'results.json'), `${JSON.stringify({ loads, burst, results: Object.fromEntries([...results].map(([k, m]) => [k, Object.fromEntries(m)])) }, null, 2)}\n`);
  console.log(`load average ${load()} after the last round`);
  const fmt = (xs: readonly number[]) => xs.map((x) => x.toFixed(0)).join(', ');
  console.log('| measure | zonemesh per round | median | nft router per round | median | zonemesh ÷ nft |');
  console.log('|---|---|---:|---|---:|---:|');
  for (const kind of kinds) {
    const [zm, nft] = sides.map((s) => results.get(kind.name)!.get(s.name)!);
    console.log(`| ${kind.name}, ${kind.unit} | ${fmt(zm!)} | ${median(zm!).toFixed(0)} | ${fmt(nft!)} | ${median(nft!).toFixed(0)} | ${(median(zm!) / median(nft!)).toFixed(2)} |`);
  }
  for (const [side, r] of Object.entries(burst)) {
    console.log(`${side}: ${BURST} connections to one destination (${internet.ip}:${CPS_PORTS.first}) back to back: ${r.done} succeeded${r.failed ? `, then one failed: ${r.failures[0]}` : ''} (${r.seconds.toFixed(1)} s)`);
  }
}

main()
  .catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => void teardown());
