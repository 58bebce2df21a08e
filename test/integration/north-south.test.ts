/**
 * North-south on real OVS and FRR (docs/north-south.md), on the multi-zone Mininet scenario with
 * models/north-south.yaml: each zone's gateways plugged into their external segment in the edge
 * router's namespace, an internet namespace with a web server behind it, the controller running
 * the overlay apps plus north-south, FRR's bgpd on every gateway and bgpd with zebra on the edge
 * router. One scenario for every test; serial, because the later tests kill a bgpd and edit the model.
 */
import test from 'ava';
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isSeq, parseDocument } from 'yaml';
import { gatewayBgpConfig, gatewayPrefixes, snatBindings } from '../../src/apps/north-south';
import { type NetworkModel, conntrackZone, loadModelFile } from '../../src/model';
import { findLayer } from '../../src/packet';
import { ipv4Of } from '../../src/testing';
import { OVERLAY_APPS, type OutsideState, type OverlayScenario, type PingRun, type RunningController, type UnderlayCapture, echoRequestsReceived, innerFlow, innerLayer, modelAppliedAt, overlayUp, startController, startPingIn, waitFor } from '../helpers/overlay';
import { Bgpd, type BgpRoutes, edgeBgpConfig } from '../helpers/frr';
import { floatingIpTranslations } from '../helpers/gateways';
import { REPO_ROOT } from '../helpers/paths';
import { TEST_STATE_DIR, run, spawnTracked } from '../helpers/run';
import { VM_WEB_PORT, VmWebServers, clientOf, httpGet, inNetns, listening, localityOf, pingFromInternet } from '../../scripts/demo-north-south';

const dir = join(TEST_STATE_DIR, 'north-south');
const modelFile = join(dir, 'model.yaml');
const BGP = { localAs: 65001, edgeAs: 65000, keepaliveSeconds: 1, holdSeconds: 3 } as const;
/** a second port the model's ACL opens to the outside (http-from-anywhere: 8080-8081) */
const VM_OTHER_PORT = 8081;
const FLOATING_VMS = ['web1', 'web2'] as const;
/** the outside ping across a rebinding or a move: its interval, and the replies it waits for once the new flows are in */
const OUTSIDE_PING_INTERVAL_MS = 50;
const OUTSIDE_PING_AFTER = 10;

let scenario: OverlayScenario | undefined;
let controller: RunningController | undefined;
let outside: OutsideState;
let model: NetworkModel;
const bgpds = new Map<string, Bgpd>();
let webServers: VmWebServers | undefined;

const fipOf = (vm: string) => model.floatingIps.find((f) => f.port === vm)!.ip;

test.before(async () => {
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(REPO_ROOT, 'models', 'north-south.yaml'), modelFile);
  model = loadModelFile(modelFile);
  scenario = await overlayUp(modelFile, { stateDir: join(dir, 'net'), prefix: 'zmgw' });
  outside = scenario.state().outside!;
  controller = await startController(modelFile, scenario.hypervisorsJson, { apps: [...OVERLAY_APPS, 'north-south'] });
  const state = scenario.state();
  webServers = await VmWebServers.start(state, FLOATING_VMS, join(dir, 'www'));
  const routerId = Object.values(outside.edge.segments)[0]!.ip;
  const edgeConfig = edgeBgpConfig({ localAs: BGP.edgeAs, routerId, gatewayAs: BGP.localAs, gateways: outside.gateways.map((g) => g.ip), keepaliveSeconds: BGP.keepaliveSeconds, holdSeconds: BGP.holdSeconds, maximumPaths: 2 });
  const routers = [
    ...outside.gateways.map((g) => ({ name: g.hypervisor, netns: state.hypervisors[g.hypervisor]!.netns, config: gatewayBgpConfig(model, g.hypervisor, BGP) })),
    { name: 'edge', netns: outside.edge.netns, config: edgeConfig, opts: { zebra: true } },
  ];
  const started = await Bgpd.startAll(routers.map((r) => ({ ...r, dir: join(dir, 'frr', r.name) })));
  routers.forEach((r, i) => bgpds.set(r.name, started[i]!));
  await listening(outside.internet.netns, outside.internet.webPort);
});

test.after.always(async () => {
  try {
    for (const b of bgpds.values()) await b.kill();
    webServers?.close();
    await controller?.stop();
  } finally {
    await scenario?.down();
  }
});

/** Polls the edge router's BGP routes until `done` holds; throws with the last routes after `timeoutMs`. */
async function routesUntil(done: (r: BgpRoutes) => boolean, timeoutMs: number): Promise<BgpRoutes> {
  const edge = bgpds.get('edge')!;
  return waitFor('edge BGP routes', () => edge.routes().catch(() => ({})), done, { timeoutMs, intervalMs: 100 });
}

/** The edge router's kernel routes that zebra installed from BGP: prefix → next hops. */
async function kernelRoutes(): Promise<BgpRoutes> {
  const routes = JSON.parse((await run('ip', ['-n', outside.edge.netns, '-j', 'route', 'show', 'proto', 'bgp'])).stdout) as { dst: string; gateway?: string; nexthops?: { gateway: string }[] }[];
  return Object.fromEntries(routes.map((r) => [r.dst.includes('/') ? r.dst : `${r.dst}/32`, (r.nexthops?.map((n) => n.gateway) ?? [r.gateway!]).sort()]));
}

/** what each gateway should announce, and by whom: prefix → the gateway addresses of its zone */
function expectedRoutes(): BgpRoutes {
  const out: BgpRoutes = {};
  for (const g of outside.gateways) for (const p of gatewayPrefixes(model, g.hypervisor)) out[p] = [...(out[p] ?? []), g.ip].sort();
  return out;
}

test.serial("BGP: the edge router learns each zone's floating IPs and SNAT addresses from both of its gateways, over the gateways' flows, and routes them by ECMP", async (t) => {
  const expected = expectedRoutes();
  t.is(Object.keys(expected).length, 6, 'two floating IPs and four SNAT addresses are bound');
  const learned = await routesUntil((r) => Object.entries(expected).every(([p, hops]) => r[p]?.length === hops.length), 60_000);
  t.deepEqual(learned, expected, "each zone's addresses from that zone's gateways only");
  const kernel = await waitFor('zebra\'s routes in the edge kernel', kernelRoutes, (r) => Object.keys(r).length === 6 && Object.values(r).every((h) => h.length === 2), { timeoutMs: 20_000, intervalMs: 200 });
  t.deepEqual(kernel, expected, 'installed as two-path ECMP routes');
});

/** Frames of a capture whose (outer or only) IPv4 header goes between a and b, either way. */
function plainFlow(capture: UnderlayCapture, a: string, b: string) {
  return capture.frames().filter(({ packet }) => {
    const ip = packet && findLayer(packet, 'ipv4');
    return ip && ((ip.src === a && ip.dst === b) || (ip.src === b && ip.dst === a));
  });
}

/** A VM fetches `path` from the internet web server. */
function fetchFromVm(vm: string, path: string) {
  return httpGet(scenario!.state().vms[vm]!.netns, `http://${outside.internet.ip}:${outside.internet.webPort}${path}`);
}

test.serial('reachability and locality: from the internet, ping and HTTP reach the floating IP of a VM in every zone, and its traffic enters and leaves in its own zone only', async (t) => {
  const internet = outside.internet;
  const underlay = await scenario!.startCapture('ns-underlay', { where: 'uplinks' });
  const external = await scenario!.startCapture('ns-outside', { where: 'outside' });
  try {
    for (const vm of FLOATING_VMS) {
      const fip = fipOf(vm);
      t.deepEqual(await pingFromInternet(outside, fip), { sent: 3, received: 3 }, `internet → ${vm} (${fip})`);
      const http = await httpGet(internet.netns, `http://${fip}:${VM_WEB_PORT}/`);
      t.deepEqual([http.status, http.body], ['200', vm], `internet → http://${fip}:${VM_WEB_PORT}/ served by ${vm}: ${http.error}`);
      // and out: the VM fetches a page from the internet, which sees its floating IP
      const out = await fetchFromVm(vm, `/?from=${vm}`);
      t.is(out.status, '200', `${vm} → internet: ${out.error}`);
    }
  } finally {
    await underlay.stop();
    await external.stop();
  }
  const frames = { tunnelled: underlay.tunnelFrames(), external: external.frames() };
  for (const vm of FLOATING_VMS) {
    t.is(clientOf(outside, `/?from=${vm}`), fipOf(vm), `the internet server saw ${vm} as its floating IP`);
    // its tunnelled frames between its zone's hypervisors only, both ways on its zone's gateways' links only, never untranslated
    const l = localityOf(model, frames, model.ports.find((p) => p.name === vm)!, { via: 'floating IP', address: fipOf(vm) }, internet.ip);
    t.log(`${vm}: ${l.tunnelled} tunnelled frames (${l.tunnels.join(', ')}), ${l.outbound} out and ${l.inbound} in on the external links (${l.segments.join(', ')})`);
    t.deepEqual(l.stray, [], `${vm}'s north-south traffic stays in ${l.zone}`);
    t.true(l.ok, `${vm}: both directions cross ${l.zone}'s external links`);
  }
  // web1's hypervisor is a gateway: its outbound leaves by its own segment port, never by the underlay
  const web1 = model.ports.find((p) => p.name === 'web1')!;
  t.deepEqual(innerFlow(underlay.tunnelFrames(), fipOf('web1'), internet.ip), [], "web1's outbound does not cross the underlay");
  const outbound = plainFlow(external, fipOf('web1'), internet.ip).filter((f) => findLayer(f.packet!, 'ipv4')!.src === fipOf('web1'));
  t.true(outbound.length > 0 && outbound.every((f) => f.at === web1.hypervisor), `web1's outbound on ${web1.hypervisor}'s external link: ${[...new Set(outbound.map((f) => f.at))].join(', ')}`);
  t.true(outbound.every((f) => findLayer(f.packet!, 'ethernet')?.src === model.floatingIps.find((x) => x.port === 'web1')!.mac), "from its floating IP's MAC");
});


/** An edit of the watched model file, atomically (the controller watches it). */
function editModel(change: (doc: ReturnType<typeof parseDocument>) => void): void {
  const doc = parseDocument(readFileSync(modelFile, 'utf8'));
  change(doc);
  writeFileSync(`${modelFile}.tmp`, doc.toString());
  renameSync(`${modelFile}.tmp`, modelFile);
}

/** VPC blue's ACL rules in a model document */
function blueAcls(doc: ReturnType<typeof parseDocument>) {
  const vpcs = doc.get('vpcs');
  const blue = isSeq(vpcs) ? vpcs.items.find((v) => isMap(v) && v.get('name') === 'blue') : undefined;
  const acls = isMap(blue) ? blue.get('acls') : undefined;
  if (!isSeq(acls)) throw new Error(`no acls of VPC blue in ${modelFile}`);
  return acls;
}

/** curl from the internet namespace: the HTTP status, or curl's exit code (28: timed out, 7: refused) */
function httpFromInternet(url: string, timeoutSeconds: number): Promise<string> {
  return inNetns(outside.internet.netns, ['curl', '-sS', '-m', String(timeoutSeconds), '-o', '/dev/null', '-w', '%{http_code}', url]).then((r) => (r.code === 0 ? r.stdout : `exit ${String(r.code)}`));
}

test.serial("ACL: a rule applied at run time denies the floating IPs' inbound port from the internet, while an allowed port answers, until it is removed", async (t) => {
  const state = scenario!.state();
  // web1 is reached on its own gateway (the segment straight into the pipeline), web2 by tunnel from its zone's other gateway
  const vms = FLOATING_VMS.map((name) => ({ ...state.vms[name]!, name, fip: fipOf(name), hypervisor: model.ports.find((p) => p.name === name)!.hypervisor }));
  const others = vms.map((vm) => spawnTracked('ip', ['netns', 'exec', vm.netns, 'python3', '-m', 'http.server', String(VM_OTHER_PORT), '--bind', vm.ip]));
  const rule = { name: 'no-8080-from-outside', subnet: 'web', direction: 'ingress', action: 'deny', protocol: 'tcp', ports: VM_WEB_PORT, remote: { cidr: '0.0.0.0/0' } };
  // the rule's flows on the VMs' hypervisors, where the ACL meets the translated packet
  const denyFlows = async () => {
    const dumps = await Promise.all(vms.map((vm) => run('ovs-ofctl', ['-O', 'OpenFlow13', 'dump-flows', `unix:${state.hypervisors[vm.hypervisor]!.mgmt}`, `tcp,tp_dst=${VM_WEB_PORT}`])));
    return dumps.map((d) => d.stdout.split('\n').filter((l) => l.includes('actions=drop')).length);
  };
  for (const vm of vms) {
    await listening(vm.netns, VM_OTHER_PORT);
    t.is(await httpFromInternet(`http://${vm.fip}:${VM_OTHER_PORT}/`, 10), '200', `${vm.name}'s other port answers before the rule`);
  }
  t.deepEqual(await denyFlows(), [0, 0]);
  editModel((doc) => blueAcls(doc).items.unshift(doc.createNode(rule)));
  try {
    await waitFor("the deny rule on the VMs' hypervisors", denyFlows, (n) => n.every((x) => x === 1), { timeoutMs: 15_000, intervalMs: 100 });
    for (const vm of vms) {
      const startedAt = Date.now();
      t.is(await httpFromInternet(`http://${vm.fip}:${VM_WEB_PORT}/`, 3), 'exit 28', `internet → ${vm.name} (${vm.fip}:${VM_WEB_PORT}) denied: the SYN is dropped, curl times out`);
      t.log(`${vm.name}: the connection attempt to ${vm.fip}:${VM_WEB_PORT} gave up after ${Date.now() - startedAt} ms`);
      t.is(await httpFromInternet(`http://${vm.fip}:${VM_OTHER_PORT}/`, 10), '200', `internet → ${vm.name} (${vm.fip}:${VM_OTHER_PORT}) still answers`);
      t.deepEqual(await pingFromInternet(outside, vm.fip, 2), { sent: 2, received: 2 }, `ping to ${vm.name}, allowed by its own rule, answers`);
    }
  } finally {
    editModel((doc) => {
      const acls = blueAcls(doc);
      acls.items = acls.items.filter((a) => !(isMap(a) && a.get('name') === rule.name));
    });
    for (const o of others) o.kill();
  }
  await waitFor('the deny rule gone', denyFlows, (n) => n.every((x) => x === 0), { timeoutMs: 15_000, intervalMs: 100 });
  for (const vm of vms) t.is(await httpFromInternet(`http://${vm.fip}:${VM_WEB_PORT}/`, 10), '200', `${vm.name}'s port answers again once the rule is removed`);
});

test.serial("SNAT: each VM without a floating IP fetches a page from the internet and pings it as its zone's SNAT address, from a source port of its own block; nothing from outside reaches it", async (t) => {
  const { bindings } = snatBindings(model);
  t.deepEqual(bindings.map((b) => b.port.name), ['app1', 'red1', 'red2']);
  const underlay = await scenario!.startCapture('ns-snat-underlay', { where: 'uplinks' });
  const external = await scenario!.startCapture('ns-snat', { where: 'outside' });
  try {
    for (const b of bindings) {
      const got = await fetchFromVm(b.port.name, `/?from=${b.port.name}`);
      t.is(got.status, '200', `${b.port.name} → internet: ${got.error}`);
      t.is(clientOf(outside, `/?from=${b.port.name}`), b.address.ip, `the server saw ${b.port.name} as ${b.address.network}'s SNAT address of VPC ${b.port.vpc}`);
      const ping = await scenario!.exec(b.port.name, ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '2', outside.internet.ip]).catch((e: Error) => ({ stdout: e.message }));
      t.regex(ping.stdout, / 3 received/, `${b.port.name} pings the internet: ${ping.stdout}`);
      t.notRegex(ping.stdout, /DUP!/, 'each reply once');
      // the translation, as the VM's hypervisor holds it: whether conntrack kept the echo identifier
      const vni = model.vpcs.find((v) => v.name === b.port.vpc)!.vni;
      const conntrack = (await run('ovs-appctl', ['-t', scenario!.state().hypervisors[b.port.hypervisor]!.unixctl, 'dpctl/dump-conntrack', `zone=${conntrackZone(vni)}`])).stdout;
      const entry = conntrack.split('\n').find((l) => l.startsWith('icmp,') && l.includes(`orig=(src=${b.port.ip},dst=${outside.internet.ip}`));
      t.regex(entry ?? '', new RegExp(`reply=\\(src=${outside.internet.ip.replaceAll('.', '\\.')},dst=${b.address.ip.replaceAll('.', '\\.')},`), `${b.port.name}'s ping translated to ${b.address.ip} on ${b.port.hypervisor}: ${entry ?? conntrack}`);
      t.log(`${b.port.name}'s ping in ${b.port.hypervisor}'s conntrack: ${entry}`);
    }
    // in app1's block, but no connection of app1's: conntrack has nothing to reverse
    const app1 = bindings[0]!;
    const probe = await inNetns(outside.internet.netns, ['curl', '-sS', '-m', '2', `http://${app1.address.ip}:${app1.lo + 7}/`]);
    t.regex(probe.stderr, /timed out/, 'a SYN to the SNAT address in app1\'s block gets nowhere');
  } finally {
    await underlay.stop();
    await external.stop();
  }
  const captured = { tunnelled: underlay.tunnelFrames(), external: external.frames() };
  for (const b of bindings) {
    const l = localityOf(model, captured, b.port, { via: 'SNAT', address: b.address.ip, network: b.network.name, lo: b.lo, hi: b.hi }, outside.internet.ip);
    t.deepEqual(l.stray, [], `${b.port.name}'s SNAT traffic stays in ${l.zone}: its tunnels and gateway links only, never untranslated`);
    t.true(l.ok, `${b.port.name}: both directions on ${l.zone}'s gateway links (${l.segments.join(', ')}), in its block`);
    const frames = plainFlow(external, b.address.ip, outside.internet.ip);
    const ports = frames.flatMap((f) => {
      const ip = findLayer(f.packet!, 'ipv4')!;
      const tcp = findLayer(f.packet!, 'tcp');
      return tcp ? [ip.src === b.address.ip ? tcp.srcPort : tcp.dstPort] : [];
    });
    t.log(`${b.port.name}: ${l.tunnelled} tunnelled frames, ${frames.length} on the external links as ${b.address.ip}, ports ${[...new Set(ports)].join(', ')} (block ${b.lo}-${b.hi})`);
    const echoes = frames.flatMap((f) => {
      const ip = findLayer(f.packet!, 'ipv4')!;
      const echo = findLayer(f.packet!, 'icmp-echo');
      return echo ? [`${ip.src === b.address.ip ? 'request' : 'reply'} id ${echo.identifier} at ${f.at}`] : [];
    });
    t.log(`${b.port.name}'s ping on the external links: ${[...new Set(echoes)].join(', ')}`);
    t.true(echoes.some((e) => e.startsWith('request')) && echoes.some((e) => e.startsWith('reply')), `${b.port.name}'s echo requests and replies as ${b.address.ip}`);
    t.deepEqual(plainFlow(external, ipv4Of(b.port), outside.internet.ip).map((f) => f.at), [], `${b.port.name}'s own address never on an external link`);
    t.true(ports.length > 0 && ports.every((p) => p >= b.lo && p <= b.hi), `${b.port.name}'s connection uses ports of its block`);
  }
});

test.serial("BGP: a killed gateway's paths are withdrawn at the edge router, and its zone's floating IP stays reachable through the other", async (t) => {
  const ext = model.externalNetworks.find((e) => e.zone === 'zone-a')!;
  const [killed, survivor] = ext.gateways;
  const zoneA = Object.entries(expectedRoutes()).filter(([, hops]) => hops.includes(survivor!.ip)).map(([p]) => p);
  const killedAt = Date.now();
  await bgpds.get(killed!.hypervisor)!.kill();
  await routesUntil((r) => zoneA.every((p) => r[p]?.length === 1 && r[p]![0] === survivor!.ip), 10_000);
  // a killed process's kernel closes its session at once; a dead host's would last up to the hold time
  t.log(`gateway ${killed!.hypervisor}'s bgpd killed: its paths withdrawn at the edge router after ${Date.now() - killedAt} ms (hold time ${BGP.holdSeconds} s)`);
  await waitFor('the withdrawal in the edge kernel', kernelRoutes, (r) => zoneA.every((p) => r[p]?.length === 1), { timeoutMs: 10_000, intervalMs: 100 });
  t.deepEqual(await pingFromInternet(outside, fipOf('web1')), { sent: 3, received: 3 }, 'web1 through the surviving gateway');
});

/** Binds a floating IP to another port in the model file, atomically (the controller watches it). */
function rebind(ip: string, port: string): void {
  editModel((doc) => {
    const fips = doc.get('floatingIps');
    const entry = isSeq(fips) ? fips.items.find((item) => isMap(item) && item.get('ip') === ip) : undefined;
    if (!isMap(entry)) throw new Error(`no floating IP ${ip} in ${modelFile}`);
    entry.set('port', port);
  });
}

test.serial('rebinding: the floating IP moves to the new port, on its hypervisor, and off the old one, with an outside ping across it answered again within 1 s', async (t) => {
  const fip = fipOf('web1');
  const ping = await startPingIn(outside.internet.netns, 'internet', fip, OUTSIDE_PING_INTERVAL_MS);
  t.true(ping.received > 0, `the internet pings web1's floating IP before the rebinding: ${ping.text}`);
  const state = scenario!.state();
  const app1Echoes = await echoRequestsReceived(state.vms.app1!.netns);
  const writtenAt = Date.now();
  rebind(fip, 'app1');
  const rebound = loadModelFile(modelFile);
  const app1 = rebound.ports.find((p) => p.name === 'app1')!;
  const host = rebound.hypervisors.find((h) => h.name === app1.hypervisor)!;
  const natFlows = (hv: string) => floatingIpTranslations(state, hv, fip);
  let pinged: PingRun;
  let answeredAgain = false;
  try {
    await waitFor("the inbound translation on app1's hypervisor", () => natFlows(host.name), (f) => f.length >= 1, { timeoutMs: 10_000, intervalMs: 100 });
    const flowsAt = Date.now();
    const before = ping.received;
    answeredAgain = await waitFor('the outside ping answered again', async () => ping.received, (n) => n >= before + OUTSIDE_PING_AFTER, { timeoutMs: 5_000, intervalMs: 50 }).then(() => true, () => false);
    pinged = await ping.stop();
    const applied = modelAppliedAt(controller!.logFile, writtenAt);
    t.truthy(applied, 'the controller applied the edit');
    t.log(
      `rebinding ${fip} from web1 to app1: the controller applied the model ${applied! - writtenAt} ms after the file was written (file store debounce + settle), app1's translation seen ${flowsAt - applied!} ms after that; ` +
        `the internet's ping: ${pinged.received}/${pinged.sent} replies, longest gap ${pinged.longestGapMs} ms${pinged.gap ? ` (${Math.round(pinged.gap.from * 1000) - writtenAt} to ${Math.round(pinged.gap.to * 1000) - writtenAt} ms after the write)` : ''}, lost ${pinged.lost.join(' ') || 'none'}`,
    );
  } finally {
    await ping.stop();
  }
  t.true(answeredAgain, `${OUTSIDE_PING_AFTER} replies once app1's translation is in`);
  t.true((await echoRequestsReceived(state.vms.app1!.netns)) - app1Echoes >= OUTSIDE_PING_AFTER, 'app1 got the echo requests since');
  t.true(pinged.longestGapMs <= 1000, `longest gap ${pinged.longestGapMs} ms`);
  t.deepEqual(await natFlows('hv1'), [], "gone from web1's hypervisor");
  const out = await fetchFromVm('app1', '/?from=app1');
  t.is(out.status, '200', `app1 → internet: ${out.error}`);
  t.is(clientOf(outside, '/?from=app1'), fip, 'the internet sees app1 as the floating IP');
  t.deepEqual(await pingFromInternet(outside, fip, 2), { sent: 2, received: 2 }, 'the floating IP answers from app1');
});

test.serial('SNAT isolation: two VPCs with the same address on one hypervisor fetch at the same time, each as its own SNAT address, each getting its own reply', async (t) => {
  // after the rebinding, blue's web1 (10.1.1.11 on hv1) has no floating IP: it SNATs beside red's red1 (10.1.1.11 on hv1)
  const rebound = loadModelFile(modelFile);
  const pair = snatBindings(rebound).bindings.filter((b) => b.port.name === 'web1' || b.port.name === 'red1');
  t.deepEqual(pair.map((b) => [b.port.name, b.port.ip, b.port.hypervisor]), [['red1', '10.1.1.11', 'hv1'], ['web1', '10.1.1.11', 'hv1']]);
  const root = join(outside.internet.webLog, '..');
  for (const b of pair) writeFileSync(join(root, `for-${b.port.name}.txt`), `a page for ${b.port.name} (${b.port.vpc})`);
  const got = await Promise.all(pair.map((b) => fetchFromVm(b.port.name, `/for-${b.port.name}.txt`)));
  pair.forEach((b, i) => {
    t.deepEqual([got[i]!.status, got[i]!.body], ['200', `a page for ${b.port.name} (${b.port.vpc})`], `${b.port.name}: ${got[i]!.error}`);
    t.is(clientOf(outside, `/for-${b.port.name}.txt`), b.address.ip, `the server saw ${b.port.name} as VPC ${b.port.vpc}'s SNAT address`);
  });
});

test.serial("SNAT ICMP: two VMs behind one SNAT address on different hypervisors ping the internet at once; the gateways copy each reply to both, and each VM gets its own replies once", async (t) => {
  // unbinding the floating IP (now app1's) puts web1 (hv1) and app1 (hv2) both behind blue's zone-a SNAT address
  const fip = fipOf('web1'); // the initial model's name for it
  editModel((doc) => {
    const fips = doc.get('floatingIps');
    const entry = isSeq(fips) ? fips.items.find((item) => isMap(item) && item.get('ip') === fip) : undefined;
    if (!isMap(entry)) throw new Error(`no floating IP ${fip} in ${modelFile}`);
    entry.delete('port');
  });
  const unbound = loadModelFile(modelFile);
  const pair = snatBindings(unbound).bindings.filter((b) => b.port.name === 'web1' || b.port.name === 'app1');
  t.deepEqual(pair.map((b) => [b.port.name, b.port.hypervisor, b.address.ip]), [['app1', 'hv2', '198.51.100.20'], ['web1', 'hv1', '198.51.100.20']]);
  const snat = pair[0]!.address.ip;
  const state = scenario!.state();
  const tunnelIp = (hv: string) => unbound.hypervisors.find((h) => h.name === hv)!.tunnelIp;
  // each gateway copies echo replies to the other (and takes its own through conntrack)
  const copiesTo = async (gw: string, other: string) =>
    (await run('ovs-ofctl', ['-O', 'OpenFlow13', 'dump-flows', `unix:${state.hypervisors[gw]!.mgmt}`, `icmp,nw_dst=${snat},icmp_type=0`])).stdout.includes(`set_field:${tunnelIp(other)}->tun_dst`);
  await waitFor('the echo-reply copies on both gateways', async () => [await copiesTo('hv1', 'hv2'), await copiesTo('hv2', 'hv1')], (c) => c.every(Boolean), { timeoutMs: 15_000, intervalMs: 100 });
  const underlay = await scenario!.startCapture('ns-snat-icmp', { where: 'uplinks' });
  let pings: { stdout: string }[];
  try {
    pings = await Promise.all(pair.map((b) => scenario!.exec(b.port.name, ['ping', '-n', '-c', '5', '-i', '0.2', '-W', '2', outside.internet.ip]).catch((e: Error) => ({ stdout: e.message }))));
  } finally {
    await underlay.stop();
  }
  pair.forEach((b, i) => {
    t.regex(pings[i]!.stdout, / 5 received/, `${b.port.name} (${b.port.hypervisor}): ${pings[i]!.stdout}`);
    t.notRegex(pings[i]!.stdout, /DUP!/, `${b.port.name} gets each of its replies once`);
  });
  // the copies of the replies on the underlay, between the zone's two hypervisors: each reply entered at one gateway and went to the other
  const copies = innerFlow(underlay.tunnelFrames(), outside.internet.ip, snat).filter((f) => innerLayer(f, 'icmp')?.icmpType === 0);
  const byPath = [...new Set(copies.map((f) => `${f.outerSrc}->${f.outerDst}`))];
  t.log(`echo replies to ${snat} copied over the underlay: ${copies.length} frames at the uplinks (${byPath.join(', ')}) for 10 replies`);
  t.true(copies.length > 0, 'the replies are copied to the hypervisor that did not receive them');
  t.deepEqual(byPath.filter((p) => ![`${tunnelIp('hv1')}->${tunnelIp('hv2')}`, `${tunnelIp('hv2')}->${tunnelIp('hv1')}`].includes(p)), [], 'within zone-a only');
});
