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
import { type NetworkModel, loadModelFile } from '../../src/model';
import { findLayer } from '../../src/packet';
import { OVERLAY_APPS, type OutsideState, type OverlayScenario, type RunningController, type UnderlayCapture, innerFlow, overlayUp, startController, waitFor } from '../helpers/overlay';
import { Bgpd, type BgpRoutes, edgeBgpConfig } from '../helpers/frr';
import { REPO_ROOT } from '../helpers/paths';
import { TEST_STATE_DIR, run } from '../helpers/run';
import { VM_WEB_PORT, VmWebServers, clientOf, httpGet, inNetns, listening, localityOf, pingFromInternet } from '../../scripts/demo-north-south';

const dir = join(TEST_STATE_DIR, 'north-south');
const modelFile = join(dir, 'model.yaml');
const BGP = { localAs: 65001, edgeAs: 65000, keepaliveSeconds: 1, holdSeconds: 3 } as const;
const FLOATING_VMS = ['web1', 'web2'] as const;

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
  for (const g of outside.gateways) {
    bgpds.set(g.hypervisor, await Bgpd.start(state.hypervisors[g.hypervisor]!.netns, join(dir, 'frr', g.hypervisor), gatewayBgpConfig(model, g.hypervisor, BGP)));
  }
  const routerId = Object.values(outside.edge.segments)[0]!.ip;
  const edgeConfig = edgeBgpConfig({ localAs: BGP.edgeAs, routerId, gatewayAs: BGP.localAs, gateways: outside.gateways.map((g) => g.ip), keepaliveSeconds: BGP.keepaliveSeconds, holdSeconds: BGP.holdSeconds, maximumPaths: 2 });
  bgpds.set('edge', await Bgpd.start(outside.edge.netns, join(dir, 'frr', 'edge'), edgeConfig, { zebra: true }));
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


test.serial("SNAT: each VM without a floating IP fetches a page from the internet as its zone's SNAT address, from a source port of its own block; nothing from outside reaches it", async (t) => {
  const { bindings } = snatBindings(model);
  t.deepEqual(bindings.map((b) => b.port.name), ['app1', 'red1', 'red2']);
  const underlay = await scenario!.startCapture('ns-snat-underlay', { where: 'uplinks' });
  const external = await scenario!.startCapture('ns-snat', { where: 'outside' });
  try {
    for (const b of bindings) {
      const got = await fetchFromVm(b.port.name, `/?from=${b.port.name}`);
      t.is(got.status, '200', `${b.port.name} → internet: ${got.error}`);
      t.is(clientOf(outside, `/?from=${b.port.name}`), b.address.ip, `the server saw ${b.port.name} as ${b.address.network}'s SNAT address of VPC ${b.port.vpc}`);
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
  const doc = parseDocument(readFileSync(modelFile, 'utf8'));
  const fips = doc.get('floatingIps');
  const entry = isSeq(fips) ? fips.items.find((item) => isMap(item) && item.get('ip') === ip) : undefined;
  if (!isMap(entry)) throw new Error(`no floating IP ${ip} in ${modelFile}`);
  entry.set('port', port);
  writeFileSync(`${modelFile}.tmp`, doc.toString());
  renameSync(`${modelFile}.tmp`, modelFile);
}

test.serial('rebinding: the floating IP moves to the new port, on its hypervisor, and off the old one', async (t) => {
  const fip = fipOf('web1');
  rebind(fip, 'app1');
  const rebound = loadModelFile(modelFile);
  const state = scenario!.state();
  const app1 = rebound.ports.find((p) => p.name === 'app1')!;
  const host = rebound.hypervisors.find((h) => h.name === app1.hypervisor)!;
  const natFlows = async (hv: string) =>
    (await run('ovs-ofctl', ['-O', 'OpenFlow13', 'dump-flows', `unix:${state.hypervisors[hv]!.mgmt}`, `ip,nw_dst=${fip}`])).stdout.split('\n').filter((l) => l.includes('actions=set_field:') && l.includes('->ip_dst'));
  await waitFor("the inbound translation on app1's hypervisor", () => natFlows(host.name), (f) => f.length >= 1, { timeoutMs: 10_000, intervalMs: 100 });
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
