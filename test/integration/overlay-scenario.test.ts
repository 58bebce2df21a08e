/**
 * The controller-driven overlay on the Mininet scenario (models/three-zones.yaml; `npm run demo`
 * runs the default model in overlay-demo.test.ts): the ping
 * matrix matches the model, tunnelled packets take the direct path between hypervisors in the
 * VPC's key, no ARP crosses a tunnel, ACLs hold (denied traffic never enters a tunnel), VPCs with
 * overlapping addresses stay apart, and the overlay follows a VM that moves.
 *
 * A scenario is a copy of the model in its own directory (the VM-move test edits it), the
 * scenario up, the real controller process on the copy started with startController
 * (test/helpers/overlay.ts: it dials every br-int.mgmt, hands over each hypervisor's OVSDB socket
 * and waits until every switch is in sync), and the ping matrix matching the model. The tests that
 * leave it as they found it (matrix, direct path, ARP, ACL) share one, serially; the DHCP and
 * VM-move tests each bring up their own, and every scenario is torn down after its last test.
 *
 * Expectations come from the model through `allowed` (test/helpers/overlay.ts): same VPC only; the
 * VPC's rules in list order, and the first that matches decides, ingress or egress; no match:
 * allowed within a tier, denied between tiers. ACLs are stateful: replies of an allowed flow pass.
 */
import test from 'ava';
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isSeq, parseDocument } from 'yaml';
import { PORT_KEYS, keyOf, loadModelFile, type NetworkModel, type VmPort } from '../../src/model';
import { TcpFlag } from '../../src/packet';
import {
  DHCP_OVERLAY_APPS,
  THREE_ZONES_MODEL,
  allowed,
  arpInTunnels,
  deniedInTunnels,
  dhcpFrames,
  dhcpMismatches,
  directPathCheck,
  innerFlow,
  innerLayer,
  matrixMismatches,
  modelPort,
  overlayUp,
  startController,
  waitFor,
  type Addressing,
  type DhcpRun,
  type OverlayScenario,
  type OverlayState,
  type PingMatrix,
  type RunningController,
  type TunnelFrame,
} from '../helpers/overlay';
import { pickDeniedPairs } from '../../scripts/overlay-demo';
import { TEST_STATE_DIR } from '../helpers/run';
import { ipv4Of } from '../../src/testing';

const CONVERGE_MS = 30_000;

async function converged(scenario: OverlayScenario, model: NetworkModel): Promise<PingMatrix> {
  return waitFor(
    'the ping matrix matches the model',
    () => scenario.pingMatrix({ count: 3 }),
    (m) => matrixMismatches(model, m).length === 0,
    { timeoutMs: CONVERGE_MS, intervalMs: 1000, describe: (m) => matrixMismatches(model, m).join('; ') },
  );
}

const port = modelPort;
/** Geneve, and DHCP outside a tunnel */
const DHCP_OR_TUNNEL = 'udp port 6081 or udp port 67 or udp port 68';

// ---- the fixture ----

interface Ctx {
  scenario: OverlayScenario;
  state: OverlayState;
  modelFile: string;
  model: NetworkModel;
  controller: RunningController;
  /** with addressing 'dhcp': every VM's dhclient run, and the DHCP frames an underlay capture around it saw */
  dhcp?: { run: DhcpRun; onUnderlay: string[] };
}

interface Opened {
  ctx: Ctx;
  close(): Promise<void>;
}

/**
 * The scenario and the controller on a copy of the model, once the ping matrix matches it. With
 * addressing 'dhcp' the VMs come up with nothing and the controller runs dhcp-responder too: every
 * VM runs dhclient at once, under a capture of every uplink, before the ping matrix has to converge.
 */
async function openOverlay(name: string, addressing: Addressing = 'static'): Promise<Opened> {
  const dir = join(TEST_STATE_DIR, name);
  mkdirSync(dir, { recursive: true });
  const modelFile = join(dir, 'model.yaml');
  copyFileSync(THREE_ZONES_MODEL, modelFile);
  const model = loadModelFile(modelFile);
  const scenario = await overlayUp(modelFile, { stateDir: join(dir, 'net'), prefix: 'zmo', addressing });
  let controller: RunningController | undefined;
  const close = async () => {
    try {
      await controller?.stop();
    } finally {
      await scenario.down();
    }
  };
  try {
    controller = await startController(modelFile, scenario.hypervisorsJson, addressing === 'dhcp' ? { apps: DHCP_OVERLAY_APPS } : {});
    let dhcp: Ctx['dhcp'];
    if (addressing === 'dhcp') {
      const capture = await scenario.startCapture('dhcp-leases', { filter: DHCP_OR_TUNNEL });
      const run = await scenario.dhcp({ client: 'dhclient' });
      await capture.stop();
      dhcp = { run, onUnderlay: dhcpFrames(capture) };
      // the matrix cannot converge without addresses: say why here rather than as unreachable pairs
      const unleased = dhcpMismatches(model, run);
      if (unleased.length) throw new Error(`DHCP: ${unleased.join('; ')}`);
    }
    await converged(scenario, model);
    return { ctx: { scenario, state: scenario.state(), modelFile, model, controller, ...(dhcp && { dhcp }) }, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** A scenario of its own for a test that changes it (addresses, placement); the shared one goes down first (one prefix). */
async function withOverlay(name: string, fn: (ctx: Ctx) => Promise<void>, addressing: Addressing = 'static'): Promise<void> {
  await closeShared();
  const opened = await openOverlay(name, addressing);
  try {
    await fn(opened.ctx);
  } finally {
    await opened.close();
  }
}

/** The static scenario that the serial tests which leave it as they found it share: brought up by the first of them. */
let shared: Promise<Opened> | undefined;

async function onShared(fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  shared ??= openOverlay('overlay-shared');
  await fn((await shared).ctx);
}

async function closeShared(): Promise<void> {
  const opened = shared;
  shared = undefined;
  await (await opened?.catch(() => undefined))?.close();
}

test.after.always(closeShared);

/** Moves a port to another hypervisor in the model file, atomically (the controller watches the file). */
function setPortHypervisor(modelFile: string, portName: string, hypervisor: string): void {
  const doc = parseDocument(readFileSync(modelFile, 'utf8'));
  const ports = doc.get('ports');
  if (!isSeq(ports)) throw new Error('model has no ports list');
  const entry = ports.items.find((item) => isMap(item) && item.get('name') === portName);
  if (!isMap(entry)) throw new Error(`no port ${portName} in ${modelFile}`);
  entry.set('hypervisor', hypervisor);
  writeFileSync(`${modelFile}.tmp`, doc.toString());
  renameSync(`${modelFile}.tmp`, modelFile);
}

/** ms from `since` (epoch ms) to the last incremental flow change the controller's log reports after it */
function sentSince(logFile: string, since: number): number | undefined {
  const times = readFileSync(logFile, 'utf8')
    .split('\n')
    .flatMap((l) => {
      try {
        const j = JSON.parse(l) as { time: number; kind?: string; msg?: string };
        return j.msg === 'sent the difference' && j.kind === 'incremental' && j.time >= since ? [j.time - since] : [];
      } catch {
        return [];
      }
    });
  return times.length ? Math.max(...times) : undefined;
}

/** The VM a tunnelled frame's inner IPv4 header comes from and goes to, resolved in the VPC of its key. */
function frameEnds(model: NetworkModel, f: TunnelFrame): { vpc: string; src?: VmPort; dst?: VmPort } | undefined {
  const ip = innerLayer(f, 'ipv4');
  if (!ip) return undefined;
  // the VNI is the VPC's (docs/pipeline.md)
  const vpc = model.vpcs.find((v) => v.vni === f.vni);
  if (!vpc) throw new Error(`VNI ${f.vni} at ${f.at} names no VPC`);
  const inVpc = model.ports.filter((p) => p.vpc === vpc.name);
  return { vpc: vpc.name, src: inVpc.find((p) => p.ip === ip.src), dst: inVpc.find((p) => p.ip === ip.dst) };
}

function describeFrame(f: TunnelFrame): string {
  const ip = innerLayer(f, 'ipv4');
  return `${f.at}#${f.index} ${f.outerSrc}->${f.outerDst} VNI ${f.vni} egress key ${f.egressKey} inner ${ip ? `${ip.src}->${ip.dst}` : f.inner[0]?.type}`;
}

// ---- the tests ----

test.serial('the ping matrix matches the model: VPC isolation, tiers, ACLs', async (t) => {
  await onShared(async ({ scenario, model }) => {
    const m = await scenario.pingMatrix({ count: 3 });
    t.deepEqual(matrixMismatches(model, m), []);
    // the model has both kinds of pair, so the matrix proves something either way
    t.true(m.pairs.some((r) => r.ok) && m.pairs.some((r) => !r.ok));
    const ok = (src: string, dst: string) => m.pairs.find((r) => r.src === src && r.dst === dst)?.ok;
    t.true(ok('front1', 'front2'), 'same tier across zones');
    t.true(ok('front1', 'api2'), 'front -> api icmp allowed, across zones');
    t.false(ok('front2', 'api1'), "front2's egress deny comes before the api tier's ingress allow");
    t.false(ok('front1', 'store1'), 'front -> store denied');
    t.false(ok('api2', 'store1'), 'the store refuses api2 by its address, before it admits the api tier');
    t.true(ok('api1', 'store1'), 'api -> store allowed');
    t.true(ok('console1', 'metrics1') && !ok('metrics1', 'console1'), "the console's egress allow lets it ping the metrics tier, not back");
    t.false(ok('lab1', 'api1'), 'lab has no route into shop');
  });
});

test.serial('tunnelled packets go straight from the source hypervisor to the destination, in the VPC key', async (t) => {
  await onShared(async ({ scenario, state, model }) => {
    // a routed cross-zone ping alone first: front1 (front, n1, north) -> api2 (api, e1, east)
    t.not(state.hypervisors[port(model, 'front1').hypervisor]!.zone, state.hypervisors[port(model, 'api2').hypervisor]!.zone);
    const routed = await scenario.startCapture('routed', { filter: 'udp port 6081' });
    const ping = await scenario.ping('front1', 'api2', 5);
    await routed.stop();
    t.true(ping.ok && ping.received === ping.sent, `front1 -> api2: ${ping.received}/${ping.sent}`);
    const direct = directPathCheck(state, model, routed.tunnelFrames(), 'front1', 'api2', ping);
    t.log(direct.summary.join('\n'));
    t.deepEqual(direct.problems, [], 'each request and reply once, straight between the two hypervisors, routed at the source');

    const capture = await scenario.startCapture('direct', { filter: 'udp port 6081' });
    const m = await scenario.pingMatrix({ count: 3, pairs: 'vpc' });
    await capture.stop();
    const frames = capture.tunnelFrames();
    t.deepEqual(matrixMismatches(model, m), []);
    const denied = pickDeniedPairs(model);
    t.true('pick' in denied, 'the model denies pings across hypervisors');
    t.deepEqual(deniedInTunnels(model, 'pick' in denied ? denied.pick : [], frames), [], 'denied pings never enter a tunnel');
    t.true(m.pairs.some((r) => r.target !== 'self' && !r.ok && port(model, r.src).hypervisor !== port(model, r.target).hypervisor), 'the matrix has denied cross-hypervisor pairs');
    t.true(frames.length > 0, 'Geneve frames on the underlay');
    const tip = (hv: string) => state.hypervisors[hv]!.tunnelIp;
    for (const f of frames) {
      t.is(f.kind, 'geneve');
      const ends = frameEnds(model, f);
      if (!ends?.src || !ends.dst) {
        t.fail(`frame with no VM at one end: ${describeFrame(f)}`);
        continue;
      }
      const [src, dst] = [ends.src, ends.dst];
      t.not(src.hypervisor, dst.hypervisor, `same-hypervisor traffic stays local: ${describeFrame(f)}`);
      t.is(f.outerSrc, tip(src.hypervisor), `outer source is ${src.name}'s hypervisor: ${describeFrame(f)}`);
      t.is(f.outerDst, tip(dst.hypervisor), `outer destination is ${dst.name}'s hypervisor: ${describeFrame(f)}`);
      t.true(f.at === src.hypervisor || f.at === dst.hypervisor, `seen only on the two uplinks: ${describeFrame(f)}`);
      t.is(f.egressKey, keyOf(dst, PORT_KEYS), `the Geneve option carries ${dst.name}'s egress key: ${describeFrame(f)}`);
    }
    // every reachable pair on different hypervisors left its hypervisor and arrived at the other
    for (const r of m.pairs.filter((x) => x.ok && x.target === x.dst)) {
      const [a, b] = [port(model, r.src), port(model, r.dst)];
      if (a.hypervisor === b.hypervisor) {
        t.is(innerFlow(frames, ipv4Of(a), ipv4Of(b), true).filter((f) => frameEnds(model, f)?.vpc === a.vpc).length, 0, `${r.src}<->${r.dst} on one hypervisor never tunnelled`);
        continue;
      }
      const flow = innerFlow(frames, ipv4Of(a), ipv4Of(b)).filter((f) => frameEnds(model, f)?.vpc === a.vpc);
      t.true(flow.some((f) => f.at === a.hypervisor), `${r.src}->${r.dst} on ${a.hypervisor}'s uplink`);
      t.true(flow.some((f) => f.at === b.hypervisor), `${r.src}->${r.dst} on ${b.hypervisor}'s uplink`);
    }
  });
});

test.serial('no ARP crosses a tunnel: neighbours are answered on the local hypervisor', async (t) => {
  await onShared(async ({ scenario, state, model }) => {
    for (const vm of Object.keys(state.vms)) {
      const r = await scenario.exec(vm, ['ip', 'neigh', 'flush', 'all']);
      t.is(r.code, 0, r.stderr);
    }
    const capture = await scenario.startCapture('noarp', { filter: 'udp port 6081 or arp' });
    const m = await scenario.pingMatrix({ count: 2, pairs: 'vpc' });
    await capture.stop();
    t.true(m.pairs.some((r) => r.ok), 'the pings needed fresh neighbour entries');
    const frames = capture.tunnelFrames();
    t.true(frames.length > 0);
    t.deepEqual(arpInTunnels(frames).map(describeFrame), [], 'no decapsulated frame is ARP');
    t.true(frames.every((f) => f.inner[0]?.type === 'ethernet'));
    // and yet the VMs resolved their neighbours again, to the right MACs: answered on their own hypervisor
    const neigh = async (vm: string, ip: string) => (await scenario.exec(vm, ['ip', '-4', 'neigh', 'show', ip])).stdout;
    const [front1, front2] = [state.vms.front1!, state.vms.front2!];
    t.regex(await neigh('front1', front2.ip), new RegExp(`lladdr ${front2.mac}`), 'front1 resolved front2 (on another hypervisor)');
    t.regex(await neigh('front1', front1.gateway), new RegExp(`lladdr ${model.subnets.find((x) => x.vpc === 'shop' && x.name === 'front')!.routerMac}`), 'front1 resolved its gateway to the router MAC');
  });
});

test.serial('ACL: allowed TCP connects, denied TCP is dropped before it enters a tunnel', async (t) => {
  await onShared(async ({ scenario, state, model }) => {
    const checks: { src: string; dst: string; port: number }[] = [
      { src: 'front1', dst: 'api1', port: 8443 }, // front-to-api-https
      { src: 'front1', dst: 'api2', port: 8443 }, // ... across zones
      { src: 'front1', dst: 'api1', port: 9090 }, // not the allowed port
      { src: 'api1', dst: 'store1', port: 5432 }, // api-to-store, any port
      { src: 'front1', dst: 'store1', port: 5432 }, // the store admits the api tier only
      { src: 'api2', dst: 'front2', port: 8443 }, // front admits nothing from other tiers
      { src: 'front1', dst: 'front2', port: 9090 }, // same tier: everything
      { src: 'front2', dst: 'api1', port: 8443 }, // front2-retired, an egress deny before the ingress allow
      { src: 'api2', dst: 'store1', port: 5432 }, // store-refuses-api2, a CIDR deny before api-to-store
      { src: 'console1', dst: 'metrics1', port: 9100 }, // console-scrapes-metrics, an egress allow to a CIDR
      { src: 'metrics1', dst: 'console1', port: 9100 }, // nothing lets metrics open connections to the console
    ];
    const expected = checks.map((c) => allowed(model, port(model, c.src), port(model, c.dst), 'tcp', c.port));
    t.deepEqual(expected, [true, true, false, true, false, false, true, false, false, true, false], 'the model says');
    const listeners = new Set(checks.map((c) => `${c.dst}:${c.port}`));
    for (const l of listeners) {
      const [vm, p] = l.split(':');
      await scenario.ncListen(vm!, Number(p));
    }
    const capture = await scenario.startCapture('acl', { filter: 'udp port 6081' });
    const results = await Promise.all(checks.map((c) => scenario.ncCheck(c.src, c.dst, c.port, 3)));
    await capture.stop();
    checks.forEach((c, i) => t.is(results[i]!.ok, expected[i], `${c.src} -> ${c.dst}:${c.port}`));
    // ICMP between the same VMs is allowed by its own rule, while 9090 is not
    t.true(allowed(model, port(model, 'front1'), port(model, 'api1'), 'icmp'));
    t.true((await scenario.ping('front1', 'api1', 2)).ok, 'front1 -> api1 ping');
    t.true((await scenario.ping('api1', 'store1', 2)).ok, 'api1 -> store1 ping');
    // a denied SYN never shows up inside a tunnel
    const frames = capture.tunnelFrames();
    checks.forEach((c, i) => {
      if (expected[i]) return;
      const [a, b] = [state.vms[c.src]!, state.vms[c.dst]!];
      const syns = innerFlow(frames, a.ip, b.ip).filter((f) => {
        const tcp = innerLayer(f, 'tcp');
        return tcp?.dstPort === c.port && (tcp.flags & TcpFlag.SYN) !== 0;
      });
      t.deepEqual(syns.map(describeFrame), [], `denied ${c.src} -> ${c.dst}:${c.port} is not tunnelled`);
    });
    // and an allowed cross-hypervisor connection is
    const front1 = state.vms.front1!;
    const api1 = state.vms.api1!;
    t.true(innerFlow(frames, front1.ip, api1.ip).some((f) => innerLayer(f, 'tcp')?.dstPort === 8443));
    await scenario.ncStop();
  });
});

test.serial('VPCs that reuse addresses: every VM gets its own lease by DHCP (dhclient and udhcpc), unknown and misplaced MACs get none, no DHCP in a tunnel; lab reaches lab, never shop', async (t) => {
  await withOverlay(
    'overlay-vpcs',
    async ({ scenario, state, model, dhcp }) => {
      const lab2 = state.vms.lab2!;
      const front2 = state.vms.front2!;
      t.is(lab2.ip, front2.ip, 'the model reuses the address');
      // dhclient in every VM, at once: the fixture failed unless each has the model's address, mask, router and MTU 1400
      const leases = dhcp!.run;
      t.log(`dhclient in ${Object.keys(leases.vms).length} VMs at once: ${leases.elapsedMs} ms; ${Object.values(leases.vms).map((v) => `${v.vm} ${v.interface.inet} via ${v.lease?.router} mtu ${v.interface.mtu} (${v.elapsedMs} ms)`).join(', ')}`);
      t.deepEqual(Object.keys(leases.vms).sort(), Object.keys(state.vms).sort());
      t.is(leases.vms.lab2!.lease?.ip, leases.vms.front2!.lease?.ip, 'one address, leased in each VPC');
      t.deepEqual(dhcp!.onUnderlay, [], 'no DHCP on the underlay, in a tunnel or not');

      const capture = await scenario.startCapture('vpcs', { filter: DHCP_OR_TUNNEL });
      // busybox udhcpc in front1 and lab1: the same address in two VPCs
      const udhcpc = await scenario.dhcp({ vms: ['front1', 'lab1'], client: 'udhcpc' });
      t.deepEqual(dhcpMismatches(model, udhcpc), [], 'udhcpc too');
      t.is(udhcpc.vms.front1!.lease?.ip, udhcpc.vms.lab1!.lease?.ip, 'one address, leased in each VPC');
      // lab1 with an unknown MAC, then with api2's (a port of the same hypervisor): no lease either time
      const lab1 = state.vms.lab1!;
      t.is(port(model, 'api2').hypervisor, lab1.hypervisor);
      for (const mac of ['02:00:00:99:99:01', state.vms.api2!.mac]) {
        t.is((await scenario.exec('lab1', ['ip', 'link', 'set', lab1.iface, 'address', mac])).code, 0);
        const refused = (await scenario.dhcp({ vms: ['lab1'], client: 'udhcpc', timeoutSec: 3 })).vms.lab1!;
        t.false(refused.ok, `lab1 with ${mac} got a lease: ${JSON.stringify(refused.lease)}`);
        t.is(refused.lease, null);
        t.is(refused.interface.inet, null, `lab1 with ${mac} has no address`);
      }
      t.is((await scenario.exec('lab1', ['ip', 'link', 'set', lab1.iface, 'address', lab1.mac])).code, 0);
      t.deepEqual(dhcpMismatches(model, await scenario.dhcp({ vms: ['lab1'], client: 'udhcpc' })), [], 'its own MAC again: the lease again');
      const r = await scenario.ping('lab1', lab2.ip);
      await capture.stop();
      t.deepEqual(dhcpFrames(capture), [], 'no DHCP on the underlay, in a tunnel or not');
      t.true(r.ok, 'lab1 reaches lab2');
      const frames = innerFlow(capture.tunnelFrames(), lab1.ip, lab2.ip);
      t.true(frames.length > 0);
      // (VNIs and pinned keys above 12 bits: the default model's red, in overlay-demo.test.ts)
      const lab = model.vpcs.find((v) => v.name === 'lab')!;
      for (const f of frames) {
        t.is(f.vni, lab.vni, `lab's VNI: ${describeFrame(f)}`);
        t.is(f.egressKey, keyOf(port(model, 'lab2'), PORT_KEYS), `lab2's egress key in the Geneve option: ${describeFrame(f)}`);
        t.is(f.outerDst, state.hypervisors[lab2.hypervisor]!.tunnelIp, `to lab2's hypervisor, not front2's: ${describeFrame(f)}`);
        t.not(f.at, front2.hypervisor);
      }
      t.false((await scenario.ping('lab1', state.vms.api1!.ip, 2)).ok, 'shop-only subnet unreachable from lab');
    },
    'dhcp',
  );
});

test.serial('VM move: the overlay follows a VM to another hypervisor when the model says so', async (t) => {
  await withOverlay('overlay-move', async ({ scenario, modelFile, controller }) => {
    const before = scenario.state();
    t.is(before.vms.api2!.hypervisor, 'e1');
    // pings every 50 ms across the move to n1: api1 (n2) -> api2 switched, front1 (n1) -> api2 routed, then on one hypervisor
    const pings = [await scenario.startPing('api1', 'api2', 50), await scenario.startPing('front1', 'api2', 50)];
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    // the topology moves the VM, the model file tells the controller
    await scenario.move('api2', 'n1');
    const movedMs = Date.now() - t0;
    const edited = Date.now();
    setPortHypervisor(modelFile, 'api2', 'n1');
    const model = loadModelFile(modelFile);
    t.is(port(model, 'api2').hypervisor, 'n1');
    // the controller's reaction: flow changes sent after the edit, then every switch in sync.
    // (Only then the ping matrix: api2's own pings would ARP before its new port has flows, and
    // Linux retries ARP after 1 s, holding api2's replies meanwhile: that measures the probe.)
    const appliedMs = await waitFor('flow changes for the model edit', async () => sentSince(controller.logFile, edited), (ms) => ms !== undefined, { timeoutMs: 10_000, intervalMs: 50 });
    await controller.waitInSync();
    await new Promise((r) => setTimeout(r, 1000));
    const runs = await Promise.all(pings.map((p) => p.stop()));
    pings.forEach((p) => writeFileSync(join(TEST_STATE_DIR, 'overlay-move', `ping-${p.src}.txt`), p.text));
    await converged(scenario, model);
    const report = runs.map((r) => ({ ...r, lost: r.lost.length }));
    writeFileSync(join(TEST_STATE_DIR, 'overlay-move', 'interruption.json'), `${JSON.stringify({ movedMs, appliedMs, runs: report }, null, 2)}\n`);
    for (const r of runs) {
      t.log(
        `${r.src} -> api2 (${r.ip}) every ${r.intervalMs} ms across the move: ${r.received}/${r.sent} replies, ${r.lost.length} lost, ` +
          `longest gap between replies ${r.longestGapMs} ms (moving the VM took ${movedMs} ms, the controller's flows were out ${appliedMs} ms after the model edit)`,
      );
      t.true(r.received > 0 && r.lost.length > 0, `${r.src}: the move interrupted the pings (or the measurement measures nothing)`);
      t.true(r.lost.every((seq) => seq < r.sent - 10), `${r.src}: replies came back after the move: lost ${r.lost.join(',')} of ${r.sent}`);
      t.true(r.longestGapMs < 10_000, `${r.src}: interruption ${r.longestGapMs} ms`);
    }

    const state = scenario.state();
    const capture = await scenario.startCapture('move', { filter: 'udp port 6081' });
    const fromApi1 = await scenario.ping('api1', 'api2'); // n2 -> n1, same tier
    const fromFront1 = await scenario.ping('front1', 'api2'); // both on n1 now, front -> api
    await capture.stop();
    t.true(fromApi1.ok && fromFront1.ok);
    const frames = capture.tunnelFrames();
    const [api1, api2, front1] = [state.vms.api1!, state.vms.api2!, state.vms.front1!];
    const toApi2 = innerFlow(frames, api1.ip, api2.ip);
    t.true(toApi2.length > 0, 'api1 -> api2 is tunnelled');
    for (const f of toApi2) t.is(f.outerDst, state.hypervisors.n1!.tunnelIp, `to api2's new hypervisor: ${describeFrame(f)}`);
    t.false(frames.some((f) => f.at === 'e1'), "nothing goes to api2's old hypervisor");
    t.is(innerFlow(frames, front1.ip, api2.ip, true).length, 0, 'front1 and api2 share n1: nothing tunnelled');
  });
});
