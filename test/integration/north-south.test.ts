/**
 * Floating IPs on real OVS (docs/north-south.md), on the multi-zone Mininet scenario with
 * models/north-south.yaml and the controller running the overlay apps plus north-south. Gateways
 * do not forward to an external segment yet, so the proof stops at the gateway: outbound, a VM's
 * packet to the outside crosses the underlay already translated to its floating IP, in its VPC's
 * VNI, from its own hypervisor to a gateway of its own zone; inbound, OVS's own ofproto/trace of a
 * packet tunnelled from that gateway to the floating IP ends at the VM's port, translated back.
 * BGP: an edge router namespace on zone-a's external segment learns the zone's floating IPs and
 * SNAT addresses from FRR on both gateways (ECMP), and loses a killed gateway's paths. Rebinding the
 * floating IP in the model file moves its translation to the new port's hypervisor. Serial: the last
 * test edits the model.
 */
import test from 'ava';
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isSeq, parseDocument } from 'yaml';
import { gatewayBgpConfig, outboundGateways } from '../../src/apps/north-south';
import { TUNNEL_OFPORT, loadModelFile } from '../../src/model';
import { OVERLAY_APPS, innerFlow, innerLayer, overlayUp, startController, waitFor, type OverlayScenario, type RunningController } from '../helpers/overlay';
import { Bgpd, type BgpRoutes, edgeBgpConfig } from '../helpers/frr';
import { gatewaysUp } from '../helpers/gateways';
import { REPO_ROOT } from '../helpers/paths';
import { TEST_STATE_DIR, run } from '../helpers/run';

const dir = join(TEST_STATE_DIR, 'north-south');
const modelFile = join(dir, 'model.yaml');
const INTERNET = '192.0.2.80';

let scenario: OverlayScenario | undefined;
let controller: RunningController | undefined;

test.before(async () => {
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(REPO_ROOT, 'models', 'north-south.yaml'), modelFile);
  scenario = await overlayUp(modelFile, { stateDir: join(dir, 'net'), prefix: 'zmns' });
  controller = await startController(modelFile, scenario.hypervisorsJson, { apps: [...OVERLAY_APPS, 'north-south'] });
});

test.after.always(async () => {
  try {
    await controller?.stop();
  } finally {
    await scenario?.down();
  }
});

test.serial('outbound: a VM with a floating IP leaves translated, tunnelled to a gateway of its own zone only', async (t) => {
  const model = loadModelFile(modelFile);
  const web1 = model.ports.find((p) => p.name === 'web1')!;
  const host = model.hypervisors.find((h) => h.name === web1.hypervisor)!;
  const gateways = outboundGateways(model, host).map((g) => g.tunnelIp);
  const fip = model.floatingIps.find((f) => f.port === 'web1')!;
  await gatewaysUp(scenario!.state(), model, host.name);
  const capture = await scenario!.startCapture('fip-out', { where: 'uplinks' });
  // nothing answers yet (no gateway forwarding): the capture is the evidence
  await scenario!.ping('web1', INTERNET, 3);
  await capture.stop();
  const frames = capture.tunnelFrames();
  const translated = innerFlow(frames, fip.ip, INTERNET);
  t.true(translated.length >= 3, `${translated.length} translated frames on the underlay`);
  for (const f of translated) {
    t.deepEqual([f.outerSrc, f.vni], [host.tunnelIp, 101]);
    t.true(gateways.includes(f.outerDst), `${f.outerDst} is a gateway of web1's zone`);
    t.is(innerLayer(f, 'ethernet')?.src, fip.mac);
  }
  t.deepEqual(innerFlow(frames, web1.ip, INTERNET), [], 'the VM address never crosses the underlay toward the outside');
  const zoneB = new Set(model.hypervisors.filter((h) => h.zone === 'zone-b').map((h) => h.tunnelIp));
  t.deepEqual(translated.filter((f) => zoneB.has(f.outerDst) || zoneB.has(f.outerSrc)), [], 'never into another zone');
});

test.serial('inbound: OVS delivers a packet tunnelled to the floating IP to the VM, translated back', async (t) => {
  const model = loadModelFile(modelFile);
  const state = scenario!.state();
  const web1 = model.ports.find((p) => p.name === 'web1')!;
  const host = model.hypervisors.find((h) => h.name === web1.hypervisor)!;
  const gateway = outboundGateways(model, host)[0]!;
  const fip = model.floatingIps.find((f) => f.port === 'web1')!;
  const flow = [
    `in_port=${TUNNEL_OFPORT}`,
    'tun_id=0x65',
    `tun_src=${gateway.tunnelIp}`,
    `tun_dst=${host.tunnelIp}`,
    'dl_src=0e:00:00:00:00:01',
    'dl_dst=0e:00:00:00:00:02',
    'icmp',
    `nw_src=${INTERNET}`,
    `nw_dst=${fip.ip}`,
    'nw_ttl=60',
    'icmp_type=8',
  ].join(',');
  const trace = async (f: string) => (await run('ovs-appctl', ['-t', state.hypervisors[host.name]!.unixctl, 'ofproto/trace', 'br-int', f])).stdout;
  const stdout = await trace(flow);
  const final = /^Final flow: (.*)$/m.exec(stdout)?.[1] ?? '';
  t.regex(final, new RegExp(`nw_dst=${web1.ip.replaceAll('.', '\\.')}\\b`), stdout);
  t.regex(final, new RegExp(`dl_dst=${web1.mac}`), stdout);
  const hvState = state.hypervisors[host.name]!;
  const ofport = (await run('ovs-vsctl', [`--db=${hvState.ovsdb}`, 'get', 'interface', state.vms.web1!.interface, 'ofport'])).stdout.trim();
  t.regex(stdout, new RegExp(`^\\s+output:${ofport}$`, 'm'), stdout);
  // another VPC's VNI with the same floating IP goes nowhere near web1
  const other = await trace(flow.replace('tun_id=0x65', 'tun_id=0x11170'));
  t.notRegex(other, new RegExp(`^\\s+output:${ofport}$`, 'm'), other);
});

const BGP = { localAs: 65001, edgeAs: 65000, keepaliveSeconds: 1, holdSeconds: 3 } as const;
const EDGE_NETNS = 'zmnsedge';

/** Polls the edge router's routes until `done` holds; throws with the last routes after `timeoutMs`. */
async function routesUntil(edge: Bgpd, done: (r: BgpRoutes) => boolean, timeoutMs: number): Promise<BgpRoutes> {
  const deadline = Date.now() + timeoutMs;
  let last: BgpRoutes = {};
  while (Date.now() < deadline) {
    last = await edge.routes().catch(() => ({}));
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`edge routes did not converge: ${JSON.stringify(last)}`);
}

test.serial('BGP: the edge router learns zone-a\'s floating IPs and SNAT addresses from both gateways, and drops a killed gateway\'s paths', async (t) => {
  const model = loadModelFile(modelFile);
  const state = scenario!.state();
  const ext = model.externalNetworks.find((e) => e.zone === 'zone-a')!;
  const prefixLen = ext.cidr.split('/')[1]!;
  const bgpds: Bgpd[] = [];
  await run('ip', ['netns', 'add', EDGE_NETNS]);
  try {
    const inEdge = (...args: string[]) => run('ip', ['-n', EDGE_NETNS, ...args]);
    await inEdge('link', 'set', 'lo', 'up');
    await inEdge('link', 'add', 'zmns-ext-a', 'type', 'bridge');
    await inEdge('addr', 'add', `${ext.nextHop}/${prefixLen}`, 'dev', 'zmns-ext-a');
    await inEdge('link', 'set', 'zmns-ext-a', 'up');
    for (const g of ext.gateways) {
      const netns = state.hypervisors[g.hypervisor]!.netns;
      const [edgeEnd, gatewayEnd] = [`zmnse-${g.hypervisor}`, `zmnsg-${g.hypervisor}`];
      await inEdge('link', 'add', edgeEnd, 'type', 'veth', 'peer', 'name', gatewayEnd, 'netns', netns);
      await inEdge('link', 'set', edgeEnd, 'master', 'zmns-ext-a', 'up');
      await run('ip', ['-n', netns, 'addr', 'add', `${g.ip}/${prefixLen}`, 'dev', gatewayEnd]);
      await run('ip', ['-n', netns, 'link', 'set', gatewayEnd, 'up']);
      bgpds.push(await Bgpd.start(netns, join(dir, 'frr', g.hypervisor), gatewayBgpConfig(model, g.hypervisor, BGP)));
    }
    const gatewayIps = ext.gateways.map((g) => g.ip).sort();
    const edge = await Bgpd.start(
      EDGE_NETNS,
      join(dir, 'frr', 'edge'),
      edgeBgpConfig({ localAs: BGP.edgeAs, routerId: ext.nextHop, gatewayAs: BGP.localAs, gateways: gatewayIps, keepaliveSeconds: BGP.keepaliveSeconds, holdSeconds: BGP.holdSeconds, maximumPaths: 2 }),
    );
    bgpds.push(edge);
    const expected = ['198.51.100.10/32', '198.51.100.20/32', '198.51.100.21/32'];
    const learned = await routesUntil(edge, (r) => expected.every((p) => r[p]?.length === 2), 30_000);
    t.deepEqual(Object.keys(learned).sort(), expected, "zone-a's only: web2's floating IP and zone-b's SNAT addresses are zone-b's to announce");
    for (const p of expected) t.deepEqual(learned[p], gatewayIps, `${p} by both gateways`);

    const killedAt = Date.now();
    await bgpds[0]!.kill();
    const survivor = ext.gateways[1]!.ip;
    await routesUntil(edge, (r) => expected.every((p) => r[p]?.length === 1 && r[p]![0] === survivor), 10_000);
    // a killed process's kernel closes its session at once; a dead host's would last up to the hold time
    t.log(`gateway ${ext.gateways[0]!.hypervisor}'s bgpd killed: its paths withdrawn at the edge router after ${Date.now() - killedAt} ms (hold time ${BGP.holdSeconds} s)`);
  } finally {
    for (const b of bgpds) await b.kill();
    // the veths go with the namespace; their gateway ends with it
    await run('ip', ['netns', 'del', EDGE_NETNS]);
  }
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
  const before = loadModelFile(modelFile);
  const fip = before.floatingIps.find((f) => f.port === 'web1')!;
  rebind(fip.ip, 'app1');
  const model = loadModelFile(modelFile);
  const state = scenario!.state();
  const app1 = model.ports.find((p) => p.name === 'app1')!;
  const host = model.hypervisors.find((h) => h.name === app1.hypervisor)!;
  const natFlows = async (hv: string) =>
    (await run('ovs-ofctl', ['-O', 'OpenFlow13', 'dump-flows', `unix:${state.hypervisors[hv]!.mgmt}`, `ip,nw_dst=${fip.ip}`])).stdout.split('\n').filter((l) => l.includes('tun_id='));
  await waitFor('the inbound translation on app1\'s hypervisor', () => natFlows(host.name), (f) => f.length === 1, { timeoutMs: 10_000, intervalMs: 100 });
  t.deepEqual(await natFlows('hv1'), [], 'gone from web1\'s hypervisor');
  await gatewaysUp(state, model, host.name);
  const capture = await scenario!.startCapture('fip-rebound', { where: 'uplinks' });
  await scenario!.ping('app1', INTERNET, 3);
  await scenario!.ping('web1', INTERNET, 2);
  await capture.stop();
  const frames = capture.tunnelFrames();
  const translated = innerFlow(frames, fip.ip, INTERNET);
  t.true(translated.length >= 3, `${translated.length} translated frames`);
  const gateways = outboundGateways(model, host).map((g) => g.tunnelIp);
  for (const f of translated) t.true(f.outerSrc === host.tunnelIp && gateways.includes(f.outerDst), `${f.outerSrc} → ${f.outerDst}`);
  const web1 = model.ports.find((p) => p.name === 'web1')!;
  t.deepEqual(innerFlow(frames, web1.ip, INTERNET), [], 'web1 has no floating IP now: its packets do not leave');
});
