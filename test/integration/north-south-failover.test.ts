/**
 * Gateway failure and run-time BGP on real OVS and FRR (docs/north-south.md, Gateways and BGP), on
 * one multi-zone Mininet scenario: models/north-south.yaml plus hv5, a zone-a hypervisor that is
 * no gateway, holding web5 with a floating IP (so its traffic has two gateways to choose from).
 * The controller runs the overlay apps plus north-south, which makes the BFD ports and the select
 * group and drives every gateway's bgpd over its vty socket. The scenario's outside (the edge
 * router namespace on both zones' external segments, the internet namespace behind it) is built by
 * overlayUp; each gateway and the edge router run zebra, bfdd and bgpd (BFD 3 × 100 ms).
 *
 * A "silent" death is a blackhole (nftables drops everything the host sends and receives on that
 * link); nothing is killed, so nothing closes a session. Serial: the tests break and heal gateways;
 * the last one kills a gateway for good, with 20 TCP sessions from hv5 (web5's floating IP, web6's
 * SNAT) held across it.
 */
import test from 'ava';
import { once } from 'node:events';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isSeq, parseDocument } from 'yaml';
import { GATEWAY_BFD_INTERVAL_MS, gatewayBgpConfig } from '../../src/apps/north-south';
import { type Hypervisor, loadModelFile, type NetworkModel } from '../../src/model';
import { OVERLAY_APPS, analysePing, echoRequestsReceived, modelAppliedAt, overlayUp, startController, startPingIn, waitFor, type OutsideState, type OverlayScenario, type PingRun, type RunningController } from '../helpers/overlay';
import { Bgpd, type BgpRoutes, edgeBgpConfig } from '../helpers/frr';
import { floatingIpTranslations, gatewaysUp } from '../helpers/gateways';
import { REPO_ROOT } from '../helpers/paths';
import { NFT, TEST_STATE_DIR, run, spawnTracked } from '../helpers/run';
import { HeldSessions, longestSilenceMs, startEchoServer } from '../helpers/sessions';

const PREFIX = 'zmnf';
const dir = join(TEST_STATE_DIR, 'north-south-failover');
const modelFile = join(dir, 'model.yaml');
const BFD = { multiplier: 3, intervalMs: 100 } as const;
const BGP = { localAs: 65001, edgeAs: 65000, keepaliveSeconds: 1, holdSeconds: 3, bfd: BFD } as const;

let scenario: OverlayScenario | undefined;
let controller: RunningController | undefined;
const daemons: Bgpd[] = [];
let edge: Bgpd | undefined;
let outside: OutsideState;

/** models/north-south.yaml with hv5 (zone-a, no gateway) holding web5, bound to the spare floating IP, and web6, without one (SNAT) */
function writeModel(): void {
  const doc = parseDocument(readFileSync(join(REPO_ROOT, 'models', 'north-south.yaml'), 'utf8'));
  (doc.get('hypervisors') as { add(v: unknown): void }).add({ name: 'hv5', zone: 'zone-a', tunnelIp: '172.16.1.15', datapathId: '0x15' });
  (doc.get('ports') as { add(v: unknown): void }).add({ name: 'web5', vpc: 'blue', subnet: 'web', mac: '02:00:00:01:01:0f', ip: '10.1.1.15', hypervisor: 'hv5' });
  (doc.get('ports') as { add(v: unknown): void }).add({ name: 'web6', vpc: 'blue', subnet: 'web', mac: '02:00:00:01:01:10', ip: '10.1.1.16', hypervisor: 'hv5' });
  setPort(doc, '198.51.100.11', 'web5');
  writeFileSync(modelFile, doc.toString());
}

function setPort(doc: ReturnType<typeof parseDocument>, ip: string, port: string): void {
  const fips = doc.get('floatingIps');
  const entry = isSeq(fips) ? fips.items.find((item) => isMap(item) && item.get('ip') === ip) : undefined;
  if (!isMap(entry)) throw new Error(`no floating IP ${ip} in the model`);
  entry.set('port', port);
}

/** An edit of the watched model file, atomically (the controller watches it). */
function editModel(change: (doc: ReturnType<typeof parseDocument>) => void): void {
  const doc = parseDocument(readFileSync(modelFile, 'utf8'));
  change(doc);
  writeFileSync(`${modelFile}.tmp`, doc.toString());
  renameSync(`${modelFile}.tmp`, modelFile);
}

const vty = (hv: string) => join(dir, 'frr', hv);
const ICMP = 1;
/** the outside ping across the move: its interval, and the replies it waits for once zone-b announces the floating IP */
const OUTSIDE_PING_INTERVAL_MS = 50;
const OUTSIDE_PING_AFTER = 10;
/** zone-a's floating IPs, pinged from the internet while zone-b dies: web1's (on a gateway) and web5's (behind both gateways) */
const SURVIVING_FIPS = ['198.51.100.10', '198.51.100.11'];

test.before(async () => {
  mkdirSync(dir, { recursive: true });
  writeModel();
  const model = loadModelFile(modelFile);
  scenario = await overlayUp(modelFile, { stateDir: join(dir, 'net'), prefix: PREFIX });
  outside = scenario.state().outside!;
  await startFrr(model);
  controller = await startController(modelFile, scenario.hypervisorsJson, {
    apps: [...OVERLAY_APPS, 'north-south'],
    settings: { 'north-south': { bgpVtySockets: Object.fromEntries(model.externalNetworks.flatMap((e) => e.gateways.map((g) => [g.hypervisor, vty(g.hypervisor)]))) } },
  });
});

test.after.always(async () => {
  try {
    await controller?.stop();
  } finally {
    for (const d of daemons) await d.kill();
    await scenario?.down();
  }
});

/** zebra, bfdd and bgpd on every gateway and on the edge router */
async function startFrr(model: NetworkModel): Promise<void> {
  const state = scenario!.state();
  const gateways = outside.gateways.map((g) => g.ip);
  const edgeConfig = edgeBgpConfig({ localAs: BGP.edgeAs, routerId: model.externalNetworks[0]!.nextHop, gatewayAs: BGP.localAs, gateways, keepaliveSeconds: 1, holdSeconds: 3, maximumPaths: 2, bfd: BFD });
  daemons.push(
    ...(await Bgpd.startAll([
      ...outside.gateways.map((g) => ({ netns: state.hypervisors[g.hypervisor]!.netns, dir: vty(g.hypervisor), config: gatewayBgpConfig(model, g.hypervisor, BGP), opts: { bfd: true } })),
      { netns: outside.edge.netns, dir: vty('edge'), config: edgeConfig, opts: { bfd: true } },
    ])),
  );
  edge = daemons.at(-1);
}

/** a gateway's end of its link on the external segment, in the edge router's namespace */
const externalLink = (hv: string) => outside.gateways.find((g) => g.hypervisor === hv)!.edgeIface;

/** nftables, in a namespace, dropping everything in and out of one link: a host gone silent there, with nothing closed */
async function blackhole(netns: string, link: string): Promise<() => Promise<void>> {
  const table = `${PREFIX}bh_${link.replace(/-/g, '_')}`;
  const rules = `add table netdev ${table}; add chain netdev ${table} in { type filter hook ingress device "${link}" priority 0; policy drop; }; add chain netdev ${table} out { type filter hook egress device "${link}" priority 0; policy drop; }`;
  await run('ip', ['netns', 'exec', netns, NFT, rules]);
  return async () => void (await run('ip', ['netns', 'exec', netns, NFT, `delete table netdev ${table}`]));
}

async function edgeRoutesUntil(done: (r: BgpRoutes) => boolean, what: string, timeoutMs = 30_000): Promise<BgpRoutes> {
  return waitFor(what, () => edge!.routes().catch(() => ({}) as BgpRoutes), done, { timeoutMs, intervalMs: 20 });
}

/** Resolves once the edge router's BFD session to every gateway is up: only then does BFD, not the hold time, withdraw a silent one. */
async function edgeBfdUp(): Promise<void> {
  const gateways = outside.gateways.map((g) => g.ip);
  const peers = () =>
    edge!
      .vtysh('show bfd peers json')
      .then((out) => JSON.parse(out) as { peer: string; status: string }[])
      .catch(() => []);
  await waitFor("the edge router's BFD sessions to every gateway", peers, (p) => gateways.every((ip) => p.some((x) => x.peer === ip && x.status === 'up')), { timeoutMs: 20_000, intervalMs: 100 });
}

const zoneGatewayIps = (model: NetworkModel, zone: string) =>
  model.externalNetworks
    .filter((e) => e.zone === zone)
    .flatMap((e) => e.gateways.map((g) => g.ip))
    .sort();

interface Failover {
  dead: Hypervisor;
  survivor: Hypervisor;
  /** seconds since the epoch */
  failedAt: number;
  /** from the failure to web5's first echo request toward the survivor */
  gapMs: number;
  /** web5's echo requests sent to the dead gateway meanwhile */
  lost: number;
  /** echo requests toward anywhere but the survivor after the first one toward it */
  backToDead: number;
  /** packets toward a hypervisor outside zone-a */
  outOfZone: number;
  /** web5's ping to the internet server, both ways: replies and the longest time between two */
  ping: PingRun;
  /** every Geneve frame on hv5's uplink, both ways */
  frames: UplinkFrame[];
}

/** A Geneve frame on a hypervisor's uplink: outer addresses, and the inner packet's addresses, protocol and ports */
interface UplinkFrame {
  time: number;
  outerSrc: string;
  outerDst: string;
  src: string;
  dst: string;
  proto: number;
  srcPort?: number;
  dstPort?: number;
}

async function uplinkFrames(pcap: string): Promise<UplinkFrame[]> {
  const fields = ['frame.time_epoch', 'ip.src', 'ip.dst', 'ip.proto', 'tcp.srcport', 'tcp.dstport'];
  const out = (await run('tshark', ['-r', pcap, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,', ...fields.flatMap((f) => ['-e', f])])).stdout;
  return out
    .trim()
    .split('\n')
    .map((l) => l.split('\t'))
    .filter(([, src]) => src?.includes(','))
    .map(([time, src, dst, proto, srcPort, dstPort]) => {
      const [outerSrc, inner] = src!.split(',');
      const [outerDst, innerDst] = dst!.split(',');
      return { time: Number(time), outerSrc: outerSrc!, outerDst: outerDst!, src: inner!, dst: innerDst!, proto: Number(proto!.split(',').at(-1)), ...(srcPort && { srcPort: Number(srcPort), dstPort: Number(dstPort) }) };
    });
}

/**
 * web5 pings the outside at 50 pps (`pings` of them); the gateway its flow hashed to fails (`fail`)
 * mid-stream. What hv5 sent is read from its uplink's capture: when its packets turned to the other
 * gateway. `beforeFail` runs once the ping's gateway is known (from the datapath flows, so before
 * any other traffic of hv5's starts) and at least 500 ms before the failure.
 */
async function failOverDuring(name: string, fail: (dead: Hypervisor) => Promise<void>, opts: { pings?: number; beforeFail?: () => Promise<void> } = {}): Promise<Failover> {
  const model = loadModelFile(modelFile);
  const state = scenario!.state();
  const hv5 = state.hypervisors.hv5!;
  const gateways = ['hv1', 'hv2'].map((n) => model.hypervisors.find((h) => h.name === n)!);
  await gatewaysUp(state, model, 'hv5');
  const capture = await scenario!.startCapture(name, { where: 'uplinks', filter: 'udp dst port 6081' });
  const ping = scenario!.exec('web5', ['ping', '-D', '-n', '-c', String(opts.pings ?? 200), '-i', '0.02', outside.internet.ip], 30_000).then(
    (r) => r.stdout,
    (e: Error) => e.message,
  );
  // which gateway the flow hashed to: the datapath flow's tunnel header says
  const carrier = await waitFor(
    "web5's datapath flow to a gateway",
    async () => (await run('ovs-appctl', ['-t', hv5.unixctl, 'dpctl/dump-flows'])).stdout.match(/tnl_push\(.*?dst=(172\.16\.1\.1[12])/)?.[1],
    (ip) => ip !== undefined,
    { timeoutMs: 5_000, intervalMs: 100 },
  );
  await opts.beforeFail?.();
  await new Promise((r) => setTimeout(r, 500));
  const dead = gateways.find((g) => g.tunnelIp === carrier)!;
  const survivor = gateways.find((g) => g !== dead)!;
  const failedAt = Date.now() / 1000;
  await fail(dead);
  const pinged = analysePing(await ping, 'web5', outside.internet.ip, 20);
  await capture.stop();
  const frames = await uplinkFrames(capture.manifest.files.hv5!.pcap);
  const sent = frames.filter((f) => f.outerSrc === hv5.tunnelIp);
  const after = sent.filter((f) => f.time >= failedAt && f.proto === ICMP);
  const first = after.find((f) => f.outerDst === survivor.tunnelIp);
  if (!first) throw new Error(`${name}: no echo request toward ${survivor.name} after ${dead.name} failed; after: ${JSON.stringify(after.slice(0, 5))}`);
  const zoneA = new Set(model.hypervisors.filter((h) => h.zone === 'zone-a').map((h) => h.tunnelIp));
  return {
    dead,
    survivor,
    failedAt,
    gapMs: Math.round((first.time - failedAt) * 1000),
    lost: after.filter((f) => f.outerDst === dead.tunnelIp).length,
    backToDead: after.filter((f) => f.time > first.time && f.outerDst !== survivor.tunnelIp).length,
    outOfZone: sent.filter((f) => !zoneA.has(f.outerDst)).length,
    ping: pinged,
    frames,
  };
}

test.serial('failover: a gateway gone silent leaves the select group by BFD, and its traffic moves to the other gateway within 1 s', async (t) => {
  const model = loadModelFile(modelFile);
  const state = scenario!.state();
  await gatewaysUp(state, model, 'hv5');
  const groups = (await run('ovs-ofctl', ['-O', 'OpenFlow13', 'dump-groups', `unix:${state.hypervisors.hv5!.mgmt}`])).stdout;
  t.is((groups.match(/bucket=/g) ?? []).length, 2, groups);
  t.regex(groups, /type=select/);
  const heals: (() => Promise<void>)[] = [];
  try {
    const r = await failOverDuring('failover-silent', async (dead) => void heals.push(await blackhole(state.router.netns, state.router.uplinks[dead.name]!)));
    t.log(`${r.dead.name} silenced: web5's packets reach ${r.survivor.name} after ${r.gapMs} ms (${r.lost} packets sent to the dead gateway meanwhile; BFD ${BFD.multiplier} × ${GATEWAY_BFD_INTERVAL_MS} ms)`);
    // logged, not bounded: silent on the underlay only, the gateway keeps its BGP session on the segment, and the edge router may hash replies to it
    t.log(`web5's ping to the internet meanwhile: ${r.ping.received}/${r.ping.sent} replies, longest gap ${r.ping.longestGapMs} ms`);
    t.true(r.gapMs <= 1000, `gap ${r.gapMs} ms`);
    t.is(r.backToDead, 0, 'once moved, nothing goes back to the dead gateway');
    t.is(r.outOfZone, 0, 'never to another zone');
  } finally {
    for (const heal of heals) await heal();
  }
  await gatewaysUp(state, model, 'hv5', 10_000);
});

test.serial('BGP: each zone\'s prefixes by ECMP; a silent gateway withdrawn by BFD, then a dead zone\'s floating IPs leave the edge router\'s table while the surviving zone\'s answer the internet without loss', async (t) => {
  const model = loadModelFile(modelFile);
  const zoneA = zoneGatewayIps(model, 'zone-a');
  const zoneB = zoneGatewayIps(model, 'zone-b');
  const prefixesA = ['198.51.100.10/32', '198.51.100.11/32', '198.51.100.20/32', '198.51.100.21/32'];
  const prefixesB = ['198.51.100.74/32', '198.51.100.84/32', '198.51.100.85/32'];
  const learned = await edgeRoutesUntil((r) => [...prefixesA, ...prefixesB].every((p) => r[p]?.length === 2), 'both zones learned by ECMP');
  t.deepEqual(Object.keys(learned).sort(), [...prefixesA, ...prefixesB].sort());
  for (const p of prefixesA) t.deepEqual(learned[p], zoneA, p);
  for (const p of prefixesB) t.deepEqual(learned[p], zoneB, p);

  const heals: (() => Promise<void>)[] = [];
  try {
    // one gateway of zone-a gone silent on its external segment
    const silent = model.externalNetworks.find((e) => e.zone === 'zone-a')!.gateways[0]!;
    await edgeBfdUp();
    let at = Date.now();
    heals.push(await blackhole(outside.edge.netns, externalLink(silent.hypervisor)));
    await edgeRoutesUntil((r) => prefixesA.every((p) => r[p]?.length === 1 && r[p]![0] !== silent.ip), 'the silent gateway withdrawn', 10_000);
    const silentMs = Date.now() - at;
    t.log(`${silent.hypervisor} silent: its paths withdrawn at the edge router after ${silentMs} ms (BFD ${BFD.multiplier} × ${BFD.intervalMs} ms, hold time ${BGP.holdSeconds} s, polled every 20 ms)`);
    t.true(silentMs < 1000, `${silentMs} ms`);

    // zone-a whole again before zone-b dies, so that a loss in zone-a could only be zone-b's doing
    await heals.pop()!();
    await edgeRoutesUntil((r) => prefixesA.every((p) => r[p]?.length === 2), "zone-a's gateway back", 10_000);
    // zone-b dies whole: both its gateways silent at once, while the internet pings zone-a's floating IPs
    const survivors = await Promise.all(SURVIVING_FIPS.map((ip) => startPingIn(outside.internet.netns, 'internet', ip, OUTSIDE_PING_INTERVAL_MS)));
    at = Date.now();
    for (const g of model.externalNetworks.find((e) => e.zone === 'zone-b')!.gateways) heals.push(await blackhole(outside.edge.netns, externalLink(g.hypervisor)));
    const after = await edgeRoutesUntil((r) => prefixesB.every((p) => r[p] === undefined), 'the dead zone withdrawn', 10_000);
    const zoneMs = Date.now() - at;
    await new Promise((r) => setTimeout(r, 500)); // and a while after the withdrawal
    const pinged = await Promise.all(survivors.map((p) => p.stop()));
    t.log(`zone-b dead: its prefixes gone from the edge router after ${zoneMs} ms`);
    for (const p of pinged) t.log(`the internet's ping to ${p.ip} (zone-a) meanwhile: ${p.received}/${p.sent} replies, lost ${JSON.stringify(p.lost)}, longest gap ${p.longestGapMs} ms`);
    t.true(zoneMs < 1000, `${zoneMs} ms`);
    t.deepEqual(Object.keys(after).sort(), prefixesA, "zone-a's stay, by both its gateways");
    for (const p of pinged) t.deepEqual(p.lost, [], `${p.ip} in the surviving zone: no loss while zone-b died (${p.received}/${p.sent})`);
    const kernel = (await run('ip', ['-n', outside.edge.netns, 'route', 'show', 'proto', 'bgp'])).stdout;
    for (const p of prefixesB) t.notRegex(kernel, new RegExp(`^${p.replace('/32', '').replaceAll('.', '\\.')}\\b`, 'm'), `${p} not in the edge router's kernel table:\n${kernel}`);
    for (const p of prefixesA) t.regex(kernel, new RegExp(`^${p.replace('/32', '').replaceAll('.', '\\.')} `, 'm'), kernel);
  } finally {
    for (const heal of heals) await heal();
  }
  await edgeRoutesUntil((r) => [...prefixesA, ...prefixesB].every((p) => r[p]?.length === 2), 'all paths back after healing');
});

/** tcpdump's ARP lines on an edge router bridge as they come: time (s), source MAC, the ARP text */
async function arpWatch(bridge: string): Promise<{ lines: { time: number; src: string; text: string }[]; stop: () => Promise<void> }> {
  const child = spawnTracked('ip', ['netns', 'exec', outside.edge.netns, 'tcpdump', '-l', '-n', '-e', '-tt', '-i', bridge, 'arp']);
  const lines: { time: number; src: string; text: string }[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    for (const l of chunk.split('\n')) {
      const m = /^(\d+\.\d+) ([0-9a-f:]{17}) > .*?: (.*)$/.exec(l);
      if (m) lines.push({ time: Number(m[1]), src: m[2]!, text: m[3]! });
    }
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  await waitFor(`tcpdump on ${bridge} listening`, async () => stderr, (e) => e.includes('listening on'), { timeoutMs: 10_000, intervalMs: 50 });
  return {
    lines,
    stop: async () => {
      const exited = once(child, 'exit');
      child.kill('SIGINT');
      await exited;
    },
  };
}

test.serial('run time: a floating IP moved with its VM to another zone is announced from the new zone (BGP, gratuitous ARP) and withdrawn from the old, with an outside ping across the move answered again within 1 s', async (t) => {
  const model = loadModelFile(modelFile);
  const fip = '198.51.100.10/32';
  const zoneB = zoneGatewayIps(model, 'zone-b');
  const segmentB = model.externalNetworks.find((e) => e.zone === 'zone-b')!;
  const arps = await arpWatch(outside.edge.segments[segmentB.name]!.bridge);
  const ping = await startPingIn(outside.internet.netns, 'internet', '198.51.100.10', OUTSIDE_PING_INTERVAL_MS);
  t.true(ping.received > 0, `the internet pings web1's floating IP before the move: ${ping.text}`);
  let pinged: PingRun;
  let answeredAgain = false;
  const at = Date.now();
  let routes: BgpRoutes;
  let movedMs: number;
  let doneAt: number;
  let flowsAt: number;
  let web1Echoes = 0;
  const web1Netns = scenario!.state().vms.web1!.netns;
  try {
    // web1's veth moves from hv1 (zone-a) to hv3 (zone-b) while the model says so
    const moved = scenario!.move('web1', 'hv3').then((r) => ((movedMs = Date.now() - at), r));
    const translating = waitFor("web1's inbound translation on hv3", () => floatingIpTranslations(scenario!.state(), 'hv3', '198.51.100.10'), (f) => f.length > 0, { timeoutMs: 10_000, intervalMs: 20 }).then(() => Date.now());
    editModel((doc) => {
      const ports = doc.get('ports');
      const web1 = isSeq(ports) ? ports.items.find((p) => isMap(p) && p.get('name') === 'web1') : undefined;
      if (!isMap(web1)) throw new Error('no web1');
      web1.set('hypervisor', 'hv3');
    });
    t.deepEqual(await moved, { port: 'web1', from: 'hv1', to: 'hv3', moved: true });
    flowsAt = await translating;
    routes = await edgeRoutesUntil((r) => JSON.stringify(r[fip]) === JSON.stringify(zoneB), `${fip} by zone-b's gateways only`, 10_000);
    doneAt = Date.now();
    // the counter first: every reply counted after `before` answers an echo it counts
    const echoesBefore = await echoRequestsReceived(web1Netns);
    const before = ping.received;
    answeredAgain = await waitFor('the outside ping answered again', async () => ping.received, (n) => n >= before + OUTSIDE_PING_AFTER, { timeoutMs: 5_000, intervalMs: 50 }).then(() => true, () => false);
    web1Echoes = (await echoRequestsReceived(web1Netns)) - echoesBefore;
  } finally {
    pinged = await ping.stop();
  }
  // the controller's file store waits for the edit to settle (debounce, two equal reads) before applying it
  const applied = modelAppliedAt(controller!.logFile, at);
  t.truthy(applied, 'the controller applied the edit');
  t.log(
    `web1 moved to hv3: its veth moved ${movedMs!} ms after the start (the file written at 0 ms); the model applied at ${applied! - at} ms (file store debounce + settle), ` +
      `its inbound translation on hv3 seen at ${flowsAt! - at} ms, ${fip} by zone-b's gateways only at the edge router at ${doneAt! - at} ms (${doneAt! - applied!} ms after the model applied)`,
  );
  t.log(
    `the internet's ping to ${fip} across the move: ${pinged.received}/${pinged.sent} replies, longest gap ${pinged.longestGapMs} ms` +
      `${pinged.gap ? ` (${Math.round(pinged.gap.from * 1000) - at} to ${Math.round(pinged.gap.to * 1000) - at} ms after the start)` : ''}, lost ${pinged.lost.join(' ') || 'none'}`,
  );
  t.deepEqual(routes[fip], zoneB);
  t.true(doneAt! - applied! <= 1000, `${doneAt! - applied!} ms`);
  t.true(answeredAgain, `${OUTSIDE_PING_AFTER} replies once zone-b announces it`);
  t.true(web1Echoes >= OUTSIDE_PING_AFTER, `web1, on hv3 now, got the echo requests since: ${web1Echoes}`);
  t.true(pinged.longestGapMs <= 1000, `longest gap ${pinged.longestGapMs} ms`);
  const mac = model.floatingIps.find((f) => f.ip === '198.51.100.10')!.mac;
  const garps = () => arps.lines.filter((l) => l.src === mac && l.text.includes('who-has 198.51.100.10') && l.text.includes('tell 198.51.100.10'));
  try {
    await waitFor('a gratuitous ARP from each zone-b gateway', async () => garps().length, (n) => n >= segmentB.gateways.length, { timeoutMs: 5_000, intervalMs: 50 });
  } finally {
    await arps.stop();
  }
  const garpMs = Math.round(garps()[0]!.time * 1000) - applied!;
  t.log(`gratuitous ARPs for 198.51.100.10 from ${mac} on ${segmentB.name}: ${garps().length}, the first ${garpMs} ms after the controller applied the model`);
  t.true(garpMs <= 1000, `${garpMs} ms`);
  const zoneAConfig = (await run('vtysh', ['--vty_socket', vty('hv1'), '-c', 'show running-config'])).stdout;
  t.notRegex(zoneAConfig, /network 198\.51\.100\.10\/32/, 'hv1\'s bgpd no longer originates it');
});

/** the internet's echo server for the sessions held across a gateway's death */
const ECHO_PORT = 7007;
const TCP = 6;
/** sessions per VM of hv5: web5's through its floating IP, web6's through SNAT */
const SESSIONS: Record<string, number> = { web5: 10, web6: 10 };
/** the sessions are judged this long after the kill, */
const SESSIONS_SETTLE_S = 3;
/** by the echoes of the second before (10 expected) */
const SURVIVOR_ECHOES = 5;

test.serial('a gateway killed (its OVS and its FRR): its traffic moves within 1 s, its routes leave the edge router, TCP sessions through it survive', async (t) => {
  const model = loadModelFile(modelFile);
  const state = scenario!.state();
  // as routers commonly do, the edge router hashes its ECMP routes by the 5-tuple: the sessions come back by both gateways
  await run('ip', ['netns', 'exec', outside.edge.netns, 'sysctl', '-q', '-w', 'net.ipv4.fib_multipath_hash_policy=1']);
  const server = await startEchoServer(outside.internet.netns, outside.internet.ip, ECHO_PORT);
  const held: HeldSessions[] = [];
  try {
    let withdrawn: Promise<number> | undefined;
    const kill = async (dead: Hypervisor) => {
      const ip = model.externalNetworks.flatMap((e) => e.gateways).find((g) => g.hypervisor === dead.name)?.ip;
      const killedAt = Date.now();
      await run('kill', ['-KILL', readFileSync(join(state.hypervisors[dead.name]!.rundir, 'ovs-vswitchd.pid'), 'utf8').trim()]);
      await daemons.find((d) => d.netns === state.hypervisors[dead.name]!.netns)!.kill();
      withdrawn = edgeRoutesUntil((routes) => Object.values(routes).every((hops) => !hops.includes(ip!)), `${dead.name}'s paths withdrawn`, 10_000).then(() => Date.now() - killedAt);
    };
    // the sessions start once the ping's gateway is known (their datapath flows would hide its), so the ping runs longer
    const openSessions = async () => {
      for (const [vm, n] of Object.entries(SESSIONS)) held.push(await HeldSessions.start(state.vms[vm]!.netns, outside.internet.ip, ECHO_PORT, n, vm));
    };
    const r = await failOverDuring('failover-killed', kill, { pings: 300, beforeFail: openSessions });
    const withdrawnMs = await withdrawn!;
    t.log(`${r.dead.name}'s ovs-vswitchd and FRR killed: web5's packets reach ${r.survivor.name} after ${r.gapMs} ms (${r.lost} packets sent to it meanwhile); its paths gone from the edge router after ${withdrawnMs} ms`);
    t.log(`web5's ping to the internet, both ways: ${r.ping.received}/${r.ping.sent} replies, longest gap ${r.ping.longestGapMs} ms (lost: ${r.ping.lost.join(' ')})`);

    // the sessions: which gateway carried each before the kill (hv5's uplink, by the address and port the server saw), and whether it still exchanges data
    const settled = r.failedAt + SESSIONS_SETTLE_S;
    await new Promise((res) => setTimeout(res, Math.max(0, settled * 1000 - Date.now())));
    const stoppedAt = Date.now() / 1000;
    const reports = (await Promise.all(held.map((h) => h.stop()))).flat();
    const before = r.frames.filter((f) => f.time < r.failedAt && f.proto === TCP);
    const sessions = reports.map((s) => {
      const peer = server.peers.get(s.id);
      if (!peer) throw new Error(`the server never saw session ${s.id}`);
      const out = new Set(before.filter((f) => f.src === peer.ip && f.srcPort === peer.port).map((f) => f.outerDst));
      const back = new Set(before.filter((f) => f.dst === peer.ip && f.dstPort === peer.port).map((f) => f.outerSrc));
      return {
        ...s,
        out: out.has(r.dead.tunnelIp),
        back: back.has(r.dead.tunnelIp),
        seen: out.size > 0 && back.size > 0,
        lastSecond: s.echoes.filter((at) => at > stoppedAt - 1).length,
        silenceMs: longestSilenceMs(s.echoes, r.failedAt, stoppedAt),
      };
    });
    const survived = sessions.filter((s) => s.error === null && s.lastSecond >= SURVIVOR_ECHOES);
    const viaDead = sessions.filter((s) => s.out || s.back);
    const silences = sessions.map((s) => s.silenceMs).sort((a, b) => a - b);
    t.log(
      `${reports.length} TCP sessions (${Object.entries(SESSIONS).map(([vm, n]) => `${n} from ${vm}`).join(', ')}, a line each way every 100 ms): ` +
        `${viaDead.length} went through ${r.dead.name} before it died (${Object.keys(SESSIONS).map((vm) => `${viaDead.filter((s) => s.id.startsWith(`${vm}-`)).length} of ${vm}'s`).join(', ')}; ` +
        `${sessions.filter((s) => s.out).length} outbound, ${sessions.filter((s) => s.back).length} inbound); ` +
        `${survived.length}/${reports.length} still exchange data ${Math.round((stoppedAt - r.failedAt) * 1000)} ms after the kill; longest silence per session: median ${silences[silences.length >> 1]} ms, max ${silences.at(-1)} ms`,
    );
    // asserted once everything is logged: a slow failover is told with what it did to the sessions
    t.true(r.gapMs <= 1000, `gap ${r.gapMs} ms`);
    t.true(r.ping.longestGapMs <= 1000, `ping gap ${r.ping.longestGapMs} ms`);
    t.is(r.backToDead, 0);
    t.is(r.outOfZone, 0);
    t.true(withdrawnMs < 1000, `${withdrawnMs} ms`);
    t.deepEqual(
      sessions.filter((s) => !s.seen).map((s) => s.id),
      [],
      'every session seen both ways on hv5\'s uplink before the kill',
    );
    t.true(viaDead.length > 0, 'some sessions went through the killed gateway');
    t.deepEqual(
      sessions.filter((s) => !survived.includes(s)).map((s) => `${s.id}: ${s.error ?? `${s.lastSecond} echoes in the last second`}`),
      [],
      'every session survived',
    );
  } finally {
    await Promise.allSettled(held.map((h) => h.stop()));
    server.process.kill('SIGKILL');
  }
});
