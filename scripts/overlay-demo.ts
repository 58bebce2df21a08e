/**
 * What `npm run demo` does (scripts/demo.ts is only its command line): bring a model's scenario
 * up, start the controller (the overlay apps, dhcp-responder, north-south, load-balancer and
 * lb-health), let every VM take its address by DHCP (Debian's dhclient) and, on dual-stack subnets,
 * its IPv6 address by SLAAC from our router advertisements, check the overlay against the model
 * (IPv4 and IPv6 ping matrices, underlay, north-south, load balancers), print what it found, tear down.
 *
 * Every pair a check probes is picked from the model in use, and every line printed is made from
 * that model: test/integration/overlay-demo.test.ts runs this code on the default model, and
 * test/scripts/overlay-demo.test.ts and demo-lb.test.ts test the pickers on both example models.
 * On a model with external networks, scripts/demo-north-south.ts adds the outside (floating IPs,
 * SNAT, locality); on one with load balancers, scripts/demo-lb.ts adds split, affinity, failover.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PORT_KEYS, cidrsOverlap, ipv6CidrsOverlap, keyOf, loadModelFile, parseCidr, parseIpv6Cidr, type NetworkModel, type Subnet, type VmPort } from '../src/model';
import {
  DHCP_OVERLAY_APPS,
  ZONEMESH_MAIN,
  aclDecision,
  allowed,
  arpInTunnels,
  deniedInTunnels,
  dhcpMismatches,
  directPathCheck,
  expectedPing,
  hasIpv6,
  innerFlow,
  matrixMismatches,
  modelPort,
  overlayDown,
  overlayUp,
  portIpv6Of,
  readHypervisorsJson,
  settledPingMatrix,
  slaacMismatches,
  startController,
  OverlayScenario,
  type DhcpRun,
  type IpFamily,
  type OverlayState,
  type PingMatrix,
  type PingResult,
  type SlaacRun,
} from '../test/helpers/overlay';
import { REPO_ROOT } from '../test/helpers/paths';
import { freePort } from '../test/helpers/run';
import type { HttpSettings } from '../src/runtime';
import { ipv4Of } from '../src/testing';
import { loadBalancerChecks, startBackendServers, type LbReport } from './demo-lb';
import { northSouthChecks, northSouthCommands, type NorthSouthResult } from './demo-north-south';

/** Where a demo keeps its scenario and controller, and where it prints. */
export interface DemoOptions {
  /** the scenario's state directory; the controller's files go to its controller/ */
  stateDir: string;
  /** namespace prefix ('zm' plus up to 6 [a-z0-9]) */
  prefix: string;
  /** one line of output */
  out: (line: string) => void;
  /** ANSI colours (a terminal) */
  color?: boolean;
}

export interface DemoResult {
  ok: boolean;
  /** every VM got the model's lease by DHCP (undefined: not run, as in `check`) */
  dhcpOk?: boolean;
  /** the IPv4 ping matrix matches the model */
  matrixOk: boolean;
  /** the VMs' SLAAC and the IPv6 ping matrix against the model (undefined: no subnet has IPv6) */
  ipv6?: { slaacOk: boolean; matrixOk: boolean };
  verdicts: Verdict[];
  /** the load-balancer section (scripts/demo-lb.ts; undefined: not run) */
  lb?: LbReport;
  /** reach, egress and locality of the outside (undefined: the model has no external networks) */
  northSouth?: NorthSouthResult;
}

export interface Verdict {
  what: string;
  status: 'pass' | 'fail' | 'skip';
  detail: string[];
}

// ---- pairs, from the model ----

/** A pick from the model, or why the model offers none. */
export type Picked<T> = { pick: T } | { skipped: string };

/** A VM and another VM of its VPC. */
export interface PortPair {
  src: string;
  dst: string;
}

function zoneOf(model: NetworkModel, p: VmPort): string {
  return model.hypervisors.find((h) => h.name === p.hypervisor)!.zone;
}

function pingAllowed(model: NetworkModel, a: VmPort, b: VmPort): boolean {
  return allowed(model, a, b, 'icmp');
}

/** Ordered pairs of distinct VMs of one VPC on different hypervisors, in model order. */
function crossHypervisorPairs(model: NetworkModel): [VmPort, VmPort][] {
  return model.ports.flatMap((a) => model.ports.filter((b) => b.vpc === a.vpc && b.name !== a.name && b.hypervisor !== a.hypervisor).map((b): [VmPort, VmPort] => [a, b]));
}

const names = ([a, b]: [VmPort, VmPort]): PortPair => ({ src: a.name, dst: b.name });

/** A routed cross-zone ping: two VMs of one VPC, in different tiers and zones, that the model lets ping. */
export function pickRoutedCrossZone(model: NetworkModel): Picked<[VmPort, VmPort]> {
  const pair = crossHypervisorPairs(model).find(([a, b]) => a.subnet !== b.subnet && zoneOf(model, a) !== zoneOf(model, b) && pingAllowed(model, a, b));
  return pair ? { pick: pair } : { skipped: 'skipped: no two VMs of one VPC, in different tiers and zones, may ping each other' };
}

/** Pings whose neighbour resolution a flooding overlay would carry through a tunnel: allowed, between hypervisors. */
export function pickArpPairs(model: NetworkModel): Picked<PortPair[]> {
  const pairs = crossHypervisorPairs(model).filter(([a, b]) => pingAllowed(model, a, b));
  return pairs.length > 0 ? { pick: pairs.map(names) } : { skipped: 'skipped: no two VMs of one VPC on different hypervisors may ping each other' };
}

/** Pings the ACLs deny between hypervisors: only these could leak into a tunnel. */
export function pickDeniedPairs(model: NetworkModel): Picked<PortPair[]> {
  const pairs = crossHypervisorPairs(model).filter(([a, b]) => !pingAllowed(model, a, b));
  return pairs.length > 0 ? { pick: pairs.map(names) } : { skipped: 'skipped: the ACLs deny no ping between two VMs of one VPC on different hypervisors' };
}

export interface OverlapProbe {
  /** pings `owner.ip` */
  from: VmPort;
  /** the VM of from's VPC with that IP, on another hypervisor, which the model lets `from` ping */
  owner: VmPort;
  /** a VM of another VPC with the same IP, which must never see the ping */
  other: VmPort;
}

/**
 * A VM pinging an address that its VPC and another VPC both use, where the model lets the ping
 * reach the owner in its own VPC; preferably with the other VPC's VM on a third hypervisor, where
 * a frame would show that the VPCs mixed.
 */
export function pickOverlap(model: NetworkModel): Picked<OverlapProbe> {
  const found: OverlapProbe[] = [];
  for (const other of model.ports) {
    for (const from of model.ports) {
      if (from.vpc === other.vpc) continue;
      const owner = model.ports.find((p) => p.vpc === from.vpc && p.ip === other.ip && p.name !== from.name);
      if (owner && owner.hypervisor !== from.hypervisor && pingAllowed(model, from, owner)) found.push({ from, owner, other });
    }
  }
  const pick = found.find((c) => c.other.hypervisor !== c.from.hypervisor && c.other.hypervisor !== c.owner.hypervisor) ?? found[0];
  return pick ? { pick } : { skipped: 'skipped: no pair of VPCs shares an address with an allowed path' };
}

/** A subnet's address space of one family, if it has one, and whether another one overlaps it. */
const SPACES: Record<IpFamily, { of: (s: Subnet) => string | undefined; overlap: (a: string, b: string) => boolean }> = {
  4: {
    of: (s) => s.cidr,
    overlap: (a, b) => {
      const [x, y] = [parseCidr(a), parseCidr(b)];
      return x !== undefined && y !== undefined && cidrsOverlap(x, y);
    },
  },
  6: {
    of: (s) => s.ipv6?.prefix,
    overlap: (a, b) => {
      const [x, y] = [parseIpv6Cidr(a), parseIpv6Cidr(b)];
      return x !== undefined && y !== undefined && ipv6CidrsOverlap(x, y);
    },
  },
};

/** 'VPCs a and b share 10.0.0.0/24; …', from the model's subnets (IPv4 CIDRs or IPv6 prefixes), or that none overlap. */
export function sharedAddressSpace(model: NetworkModel, family: IpFamily = 4): string {
  const { of, overlap } = SPACES[family];
  const found: string[] = [];
  model.subnets.forEach((s, i) => {
    for (const t of model.subnets.slice(i + 1)) {
      const [a, b] = [of(s), of(t)];
      if (s.vpc === t.vpc || a === undefined || b === undefined || !overlap(a, b)) continue;
      found.push(a === b ? `VPCs ${s.vpc} and ${t.vpc} share ${a}` : `VPCs ${s.vpc} (${a}) and ${t.vpc} (${b}) overlap`);
    }
  });
  return found.length > 0 ? found.join('; ') : `no two VPCs share IPv${family} addresses`;
}

// ---- output ----

class Printer {
  constructor(private readonly opts: DemoOptions) {}
  private paint = (code: number) => (s: string) => (this.opts.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  readonly green = this.paint(32);
  readonly red = this.paint(31);
  readonly bold = this.paint(1);
  readonly dim = this.paint(2);
  say = (line = '') => this.opts.out(line);
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Why the model expects this ping (of `family`) to reach or not. */
function why(model: NetworkModel, r: PingResult, family: IpFamily): string {
  if (r.target === 'self') return `${r.ip} is ${r.src}'s own address in VPC ${modelPort(model, r.src).vpc}`;
  const [a, b] = [modelPort(model, r.src), modelPort(model, r.target)];
  const alias = r.target !== r.dst ? `${r.ip} is ${r.target} in VPC ${a.vpc} (not ${r.dst}, VPC ${modelPort(model, r.dst).vpc}); ` : '';
  if (a.vpc !== b.vpc) return `${r.ip} is ${b.name}'s address in VPC ${b.vpc}; VPC ${a.vpc} has no such address, and VPCs never reach each other`;
  const d = aclDecision(model, a, b, family === 4 ? 'icmp' : 'icmp6');
  if (d.by === 'rule') return `${alias}${a.subnet} -> ${b.subnet}: ACL ${d.rule.name} (${d.rule.direction} ${d.rule.action}, the first rule that matches)`;
  if (d.by === 'same-tier') return `${alias}same tier (${a.vpc}/${a.subnet}), no rule says otherwise`;
  return `${alias}${a.subnet} -> ${b.subnet}: no ACL rule lets ${a.subnet} ping ${b.subnet}`;
}

function printMatrix(p: Printer, model: NetworkModel, m: PingMatrix): boolean {
  const { say, bold, dim, green, red } = p;
  const ports = new Map(model.ports.map((x) => [x.name, x]));
  const where = (name: string) => `${ports.get(name)!.vpc}/${ports.get(name)!.subnet}@${ports.get(name)!.hypervisor}`;
  const address = m.family === 4 ? 'IP' : 'IPv6 address';
  say(bold(`IPv${m.family} ping matrix: every VM pings every other VM's ${address} (${m.count} pings each, ${m.pairs.length} pairs, ${secs(m.elapsedMs)})`));
  say(dim(`  expected from the model: VPC, tier, ACL rules (stateful, first match wins); ${sharedAddressSpace(model, m.family)}`));
  const width = Math.max(...m.vms.map((v) => v.length)) + 2;
  const corner = 'src \\ dst';
  const first = Math.max(width, corner.length + 1);
  say(`  ${corner.padEnd(first)}${m.vms.map((v) => v.padStart(width)).join('')}`);
  const cell = new Map(m.pairs.map((r) => [`${r.src}>${r.dst}`, r]));
  for (const s of m.vms) {
    const row = m.vms.map((d) => {
      const r = cell.get(`${s}>${d}`);
      if (!r) return '·'.padStart(width);
      const want = expectedPing(model, r, m.family);
      const text = `${r.target !== r.dst ? '~' : ''}${r.ok ? 'yes' : 'no'}`.padStart(width);
      return r.ok === want ? (r.ok ? green(text) : text) : red(`${text.slice(1)}!`);
    });
    say(`  ${s.padEnd(first)}${row.join('')}`);
  }
  say(dim("  yes/no = got a reply or not, as the model expects; ! = differs from the model; ~ = the IP is another VM's (or the source's own) in the source's VPC"));
  say();
  say(bold('  Per pair: expected / actual / why'));
  const labelWidth = Math.max(...m.vms.map((v) => v.length + 1 + where(v).length));
  const nameWidth = Math.max(...m.vms.map((v) => v.length));
  const ipWidth = Math.max(...m.pairs.map((r) => r.ip.length));
  for (const r of m.pairs) {
    const want = expectedPing(model, r, m.family);
    const verdict = r.ok === want ? green('ok') : red('MISMATCH');
    const label = `${r.src} ${dim(where(r.src))}${' '.repeat(labelWidth - r.src.length - 1 - where(r.src).length)}`;
    const got = r.ok ? `reach ${r.received}/${r.sent}` : `blocked 0/${r.sent}`;
    say(`  ${label} -> ${r.dst.padEnd(nameWidth)} ${r.ip.padEnd(ipWidth)} expected ${(want ? 'reach' : 'blocked').padEnd(7)} got ${got.padEnd(11)} ${verdict}  ${dim(why(model, r, m.family))}`);
  }
  const bad = matrixMismatches(model, m);
  say(bad.length === 0 ? green(`  IPv${m.family} matrix: all ${m.pairs.length} pairs as the model says`) : red(`  IPv${m.family} matrix: ${bad.length} pairs differ from the model:\n    ${bad.join('\n    ')}`));
  return bad.length === 0;
}

/** Each VM's lease against the model; true when all match. */
function printLeases(p: Printer, model: NetworkModel, run: DhcpRun): boolean {
  const { say, bold, dim, green, red } = p;
  const results = model.ports.flatMap((port) => (run.vms[port.name] ? [{ port, r: run.vms[port.name]! }] : []));
  say(bold(`DHCP: ${run.client} in all ${results.length} VMs at once, answered by dhcp-responder from the model (${secs(run.elapsedMs)})`));
  const bad = dhcpMismatches(model, run);
  const where = ({ port }: (typeof results)[number]) => `${port.name} ${dim(`${port.vpc}/${port.subnet}@${port.hypervisor}`)}`;
  const width = Math.max(...results.map((x) => where(x).length));
  for (const x of results) {
    const { r } = x;
    const mark = bad.some((b) => b.startsWith(`${r.vm} `)) ? red('MISMATCH') : green('ok');
    const lease = r.lease?.leaseTime === undefined ? '' : `, lease ${r.lease.leaseTime} s`;
    say(`  ${where(x).padEnd(width)}  ${r.interface.inet ?? 'no address'} router ${r.lease?.router ?? '-'} MTU ${r.interface.mtu}${lease} ${dim(`(${secs(r.elapsedMs)})`)}  ${mark}`);
  }
  say(bad.length === 0 ? green(`  leases: all ${results.length} as the model says (address, mask, router, MTU 1400)`) : red(`  leases: ${bad.length} differ from the model:\n    ${bad.join('\n    ')}`));
  return bad.length === 0;
}

/** Each dual-stack VM's IPv6 after SLAAC against the model; true when all match. */
function printSlaac(p: Printer, model: NetworkModel, run: SlaacRun): boolean {
  const { say, bold, dim, green, red } = p;
  const ports = model.ports.filter((port) => portIpv6Of(model, port) !== undefined);
  say(bold(`SLAAC: IPv6 enabled in all ${ports.length} dual-stack VMs at once, configured from the distributed router's advertisements (${secs(run.elapsedMs)})`));
  const bad = slaacMismatches(model, run);
  const where = (port: VmPort) => `${port.name} ${dim(`${port.vpc}/${port.subnet}@${port.hypervisor}`)}`;
  const width = Math.max(...ports.map((port) => where(port).length));
  for (const port of ports) {
    const r = run.vms[port.name];
    const mark = bad.some((b) => b.startsWith(`${port.name}:`)) ? red('MISMATCH') : green('ok');
    say(`  ${where(port).padEnd(width)}  ${r?.inet6.join(', ') || 'no address'} default via ${r?.defaultVia ?? '-'} MTU ${r?.mtu ?? '-'}  ${mark}`);
  }
  say(
    bad.length === 0
      ? green(`  SLAAC: all ${ports.length} as the model says (EUI-64 address in the subnet's /64, default route via the router's link-local address, MTU 1400)`)
      : red(`  SLAAC: ${bad.length} differ from the model:\n    ${bad.join('\n    ')}`),
  );
  return bad.length === 0;
}

function printVerdicts(p: Printer, title: string, verdicts: Verdict[]): void {
  p.say(p.bold(title));
  for (const v of verdicts) {
    const mark = v.status === 'pass' ? p.green('PASS') : v.status === 'fail' ? p.red('FAIL') : p.dim('SKIP');
    p.say(`  ${mark}  ${v.what}`);
    for (const d of v.detail) p.say(p.dim(`        ${d}`));
  }
}

// ---- the underlay checks ----

const passIf = (ok: boolean): Verdict['status'] => (ok ? 'pass' : 'fail');

async function routedCrossZoneCheck(scenario: OverlayScenario, model: NetworkModel, state: OverlayState): Promise<Verdict> {
  const what = 'routed cross-zone ping';
  const picked = pickRoutedCrossZone(model);
  if ('skipped' in picked) return { what: `${what}: ${picked.skipped}`, status: 'skip', detail: [] };
  const [src, dst] = picked.pick;
  const hv = (p: VmPort) => `${p.hypervisor} (${state.hypervisors[p.hypervisor]!.zone}, ${state.hypervisors[p.hypervisor]!.tunnelIp})`;
  const capture = await scenario.startCapture('demo-routed', { filter: 'udp port 6081' });
  const ping = await scenario.ping(src.name, dst.name, 5);
  await capture.stop();
  const direct = directPathCheck(state, model, capture.tunnelFrames(), src.name, dst.name, ping);
  return {
    what: `${what} ${src.name} (${src.subnet}) on ${hv(src)} -> ${dst.name} (${dst.subnet}) on ${hv(dst)}: ${ping.received}/${ping.sent} replies; every packet once, straight from hypervisor to hypervisor (no trombone), routed at the source`,
    status: passIf(ping.received === ping.sent && ping.sent > 0 && direct.problems.length === 0),
    detail: [...direct.summary, ...direct.problems],
  };
}

/** The pairs of `wanted` the matrix did not ping, or whose outcome was not `ok`. */
function notAsPinged(m: PingMatrix, wanted: readonly PortPair[], ok: boolean): string[] {
  return wanted.flatMap((w) => {
    const r = m.pairs.find((x) => x.src === w.src && x.target === w.dst);
    if (!r) return [`${w.src} -> ${w.dst} was not pinged`];
    return r.ok === ok ? [] : [`${w.src} -> ${w.dst}: ${r.ok ? 'reached' : 'no reply'}, the model says ${ok ? 'reach' : 'blocked'}`];
  });
}

/** The same-VPC matrix with every neighbour cache flushed, captured: no ARP in tunnels, no denied ping in tunnels. */
async function matrixInTunnelsChecks(scenario: OverlayScenario, model: NetworkModel, state: OverlayState): Promise<Verdict[]> {
  const arpPick = pickArpPairs(model);
  const deniedPick = pickDeniedPairs(model);
  if ('skipped' in arpPick && 'skipped' in deniedPick) {
    return [
      { what: `no ARP in any tunnel: ${arpPick.skipped}`, status: 'skip', detail: [] },
      { what: `denied traffic absent from the underlay: ${deniedPick.skipped}`, status: 'skip', detail: [] },
    ];
  }
  for (const vm of Object.keys(state.vms)) await scenario.exec(vm, ['ip', 'neigh', 'flush', 'all']);
  const capture = await scenario.startCapture('demo-matrix', { filter: 'udp port 6081' });
  const m = await scenario.pingMatrix({ count: 2, pairs: 'vpc' });
  await capture.stop();
  const frames = capture.tunnelFrames();
  const verdicts: Verdict[] = [];
  if ('skipped' in arpPick) verdicts.push({ what: `no ARP in any tunnel: ${arpPick.skipped}`, status: 'skip', detail: [] });
  else {
    const arp = arpInTunnels(frames);
    const unanswered = notAsPinged(m, arpPick.pick, true);
    verdicts.push({
      what: `no ARP in any tunnel: neighbour caches of all VMs flushed, then every VM pinged the others of its VPC; ${arpPick.pick.length} allowed pairs across hypervisors had to resolve a neighbour; ${frames.length} Geneve frames decapsulated, ${arp.length} ARP`,
      status: passIf(arp.length === 0 && frames.length > 0 && unanswered.length === 0),
      detail: [...arp.slice(0, 5).map((f) => `ARP at ${f.at}: ${f.outerSrc} -> ${f.outerDst}`), ...unanswered],
    });
  }
  if ('skipped' in deniedPick) verdicts.push({ what: `denied traffic absent from the underlay: ${deniedPick.skipped}`, status: 'skip', detail: [] });
  else {
    const leaked = deniedInTunnels(model, deniedPick.pick, frames);
    const answered = notAsPinged(m, deniedPick.pick, false);
    verdicts.push({
      what: `denied traffic absent from the underlay: ${deniedPick.pick.length} pairs of one VPC on different hypervisors that the ACLs deny pinged, ${leaked.length} of their echo requests in a tunnel (the ACL drops at the source)`,
      status: passIf(leaked.length === 0 && answered.length === 0),
      detail: [...leaked.slice(0, 5), ...answered],
    });
  }
  return verdicts;
}

/** The same IP goes to its owner in the sender's VPC, in that VPC's key, never to the other VPC's VM. */
async function vpcsApartCheck(scenario: OverlayScenario, model: NetworkModel, state: OverlayState): Promise<Verdict> {
  const picked = pickOverlap(model);
  if ('skipped' in picked) return { what: `VPCs stay apart: ${picked.skipped}`, status: 'skip', detail: [] };
  const { from, owner, other } = picked.pick;
  const vpc = model.vpcs.find((v) => v.name === from.vpc)!;
  const capture = await scenario.startCapture('demo-vpcs', { filter: 'udp port 6081' });
  const r = await scenario.ping(from.name, ipv4Of(owner), 3);
  await capture.stop();
  const flow = innerFlow(capture.tunnelFrames(), ipv4Of(from), ipv4Of(owner));
  const key = keyOf(owner, PORT_KEYS);
  const wrong = flow.filter((f) => f.vni !== vpc.vni || f.egressKey !== key || f.outerDst !== state.hypervisors[owner.hypervisor]!.tunnelIp);
  const atOther = other.hypervisor !== owner.hypervisor && other.hypervisor !== from.hypervisor ? flow.filter((f) => f.at === other.hypervisor) : [];
  return {
    what: `VPCs stay apart: ${from.name} (${from.vpc}) -> ${owner.ip} reaches ${owner.name} on ${owner.hypervisor}, never ${other.name} (${other.vpc}, same IP, on ${other.hypervisor}); ${flow.length} frames, all in ${from.vpc}'s VNI ${vpc.vni} with ${owner.name}'s egress key ${key} in the Geneve option`,
    status: passIf(r.ok && flow.length > 0 && wrong.length === 0 && atOther.length === 0),
    detail: [...wrong, ...atOther].slice(0, 5).map((f) => `frame at ${f.at} ${f.outerSrc} -> ${f.outerDst} VNI ${f.vni} egress key ${f.egressKey}`),
  };
}

export async function underlayChecks(scenario: OverlayScenario, model: NetworkModel): Promise<Verdict[]> {
  const state = scenario.state();
  return [await routedCrossZoneCheck(scenario, model, state), ...(await matrixInTunnelsChecks(scenario, model, state)), await vpcsApartCheck(scenario, model, state)];
}

/**
 * The IPv4 ping matrix (once it matches, or after 20 s); on a dual-stack model SLAAC in the VMs and
 * the IPv6 matrix likewise; then the underlay checks. Prints them all and the verdict (with the
 * leases' outcome, when given).
 */
export async function runChecks(scenario: OverlayScenario, model: NetworkModel, opts: DemoOptions, run: { dhcpOk?: boolean; lbFailover: boolean }): Promise<DemoResult> {
  const { dhcpOk } = run;
  const p = new Printer(opts);
  p.say();
  const matrixOk = printMatrix(p, model, await settledPingMatrix(scenario, model, { family: 4 }));
  let ipv6: DemoResult['ipv6'];
  if (hasIpv6(model)) {
    p.say();
    const slaacOk = printSlaac(p, model, await scenario.slaac());
    p.say();
    ipv6 = { slaacOk, matrixOk: printMatrix(p, model, await settledPingMatrix(scenario, model, { family: 6 })) };
  }
  p.say();
  const verdicts = await underlayChecks(scenario, model);
  printVerdicts(p, 'Underlay check: tcpdump on every hypervisor uplink (router namespace), Geneve decapsulated with src/packet', verdicts);
  p.say();
  const northSouth = await northSouthChecks(scenario, model, p, join(opts.stateDir, 'north-south'));
  p.say();
  const lb = await loadBalancerChecks(scenario, model, { logFile: join(controllerDir(opts), 'zonemesh.log'), failover: run.lbFailover });
  printVerdicts(p, `Load balancers: each backend VM serves its name; new connections from the model's clients to its VIPs (${secs(lb.elapsedMs)})`, lb.verdicts);
  p.say();
  const underlayOk = verdicts.every((v) => v.status !== 'fail');
  const lbOk = lb.verdicts.every((v) => v.status !== 'fail');
  const ok = dhcpOk !== false && matrixOk && ipv6?.slaacOk !== false && ipv6?.matrixOk !== false && underlayOk && northSouth?.ok !== false && lbOk;
  const skipped = [...verdicts, ...lb.verdicts].filter((v) => v.status === 'skip').length;
  const failed = [
    dhcpOk === false && 'DHCP leases',
    !matrixOk && 'IPv4 ping matrix',
    ipv6?.slaacOk === false && 'SLAAC',
    ipv6?.matrixOk === false && 'IPv6 ping matrix',
    !underlayOk && 'underlay check',
    northSouth?.ok === false && 'north-south',
    !lbOk && 'load balancers',
  ]
    .filter(Boolean)
    .join(' and ');
  p.say(ok ? p.green(p.bold(`Verdict: PASS — the overlay does what the model says${skipped ? ` (${skipped} checks skipped: the model has no pair for them)` : ''}`)) : p.red(p.bold(`Verdict: FAIL — ${failed}`)));
  return { ok, ...(dhcpOk !== undefined && { dhcpOk }), matrixOk, ...(ipv6 && { ipv6 }), verdicts, ...(northSouth && { northSouth }), lb };
}

// ---- the demo's controller and scenario ----

const DEFAULT_PREFIX = 'zm';
const DEFAULT_STATE = '/tmp/zm/zm';

function controllerDir(opts: DemoOptions): string {
  return join(opts.stateDir, 'controller');
}

function runningPid(opts: DemoOptions): number | undefined {
  try {
    const pid = Number(readFileSync(join(controllerDir(opts), 'zonemesh.pid'), 'utf8').trim());
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('main.js') && cmd.includes('run') ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function stopController(opts: DemoOptions): Promise<number | undefined> {
  const pid = runningPid(opts);
  rmSync(join(controllerDir(opts), 'zonemesh.pid'), { force: true }); // its exit handler died with the demo that started it
  if (pid === undefined) return undefined;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 100));
  if (existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
  return pid;
}

/** The demo controller's page and metrics, at ports free when it started. */
async function demoEndpoints(): Promise<{ http: HttpSettings; metrics: HttpSettings }> {
  const [page, metrics] = [await freePort(), await freePort()];
  return { http: { listen: `127.0.0.1:${page}`, pollIntervalMs: 2_000 }, metrics: { listen: `127.0.0.1:${metrics}`, pollIntervalMs: 2_000 } };
}

/** The URLs of the page and the metrics its run config names. */
function endpointUrls(configFile: string): { page?: string; metrics?: string } {
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as { http?: HttpSettings; metrics?: HttpSettings };
  return { ...(config.http && { page: `http://${config.http.listen}/` }), ...(config.metrics && { metrics: `http://${config.metrics.listen}/metrics` }) };
}

/** How to explore what is left running, with this model's names. */
function printRunning(p: Printer, opts: DemoOptions, model: NetworkModel, ctl: { pid: number; logFile: string; controlSocket: string; modelFile: string; configFile: string }): void {
  const here = (path: string) => relative(process.cwd(), path) || path;
  const where = opts.prefix === DEFAULT_PREFIX && opts.stateDir === DEFAULT_STATE ? '' : ` --state ${opts.stateDir} --prefix ${opts.prefix}`;
  const net = `/usr/bin/python3 ${here(join(REPO_ROOT, 'mininet', 'zonemesh_net.py'))}${where}`;
  const npm = `${where ? `ZM_STATE=${opts.stateDir} ZM_PREFIX=${opts.prefix} ` : ''}npm run demo --`;
  const hv = model.hypervisors[0];
  const routed = pickRoutedCrossZone(model);
  const [a, b] = 'pick' in routed ? routed.pick : (model.ports.flatMap((x) => model.ports.filter((y) => y !== x && pingAllowed(model, x, y)).map((y) => [x, y]))[0] ?? []);
  p.say();
  p.say(p.bold('Left running for you to explore'));
  p.say(`  controller   pid ${ctl.pid}, log ${ctl.logFile}, watching ${here(ctl.modelFile)}`);
  const urls = endpointUrls(ctl.configFile);
  if (urls.page) p.say(`  live page    ${urls.page}   ${p.dim('(zones, hypervisors, VMs, tunnels, counters: docs/live-page.md)')}`);
  if (urls.metrics) p.say(`  metrics      ${urls.metrics}`);
  p.say(`  flows        node ${here(ZONEMESH_MAIN)} flows --control unix:${ctl.controlSocket}${hv ? ` ${p.dim(`[--dpid 0x${hv.datapathId.toString(16)}]`)}` : ''}`);
  p.say(`  pings        ${net} pingmatrix${a && b ? `   ${p.dim('|')}   ${net} exec ${a.name} ping -c3 ${b.ip}` : ''}`);
  if (hv) p.say(`  a hypervisor ${net} exec ${hv.name} ovs-ofctl -O OpenFlow13 dump-flows ${hv.bridge}`);
  const outside = northSouthCommands(model, opts.stateDir, net);
  if (outside?.length) p.say(`  outside      ${outside.join(`   ${p.dim('|')}   `)}`);
  p.say(`  checks again ${npm} check`);
  p.say(p.bold(`Tear down:     ${npm} down`) + p.dim(`   (stops the controller and the hypervisors' OVS instances, deletes the demo's ${opts.prefix}* namespaces)`));
}

/** Scenario up, controller up (left running, detached), checks. */
/** the overlay apps, DHCP for the VMs' addresses, the tunnel monitor for the live page's mesh, floating IPs and SNAT, the model's load balancers and their health checks */
const DEMO_APPS = [...DHCP_OVERLAY_APPS, 'tunnel-monitor', 'north-south', 'load-balancer', 'lb-health'];

export async function demoUp(modelFile: string, opts: DemoOptions): Promise<DemoResult> {
  const p = new Printer(opts);
  const { say, bold, dim, red } = p;
  const model = loadModelFile(modelFile);
  const zones = new Set(model.hypervisors.map((h) => h.zone));
  say(bold(`zonemesh demo: ${relative(process.cwd(), modelFile) || modelFile}`));
  const vpcs = model.vpcs.map((v) => `${v.name} (${model.subnets.filter((s) => s.vpc === v.name).map((s) => `${s.name} ${s.cidr}${s.ipv6 ? ` ${s.ipv6.prefix}` : ''}`).join(', ')})`);
  say(`  ${zones.size} zones, ${model.hypervisors.length} hypervisors, ${model.vpcs.length} VPCs: ${vpcs.join(', ')}; ${model.ports.length} VMs`);
  const stopped = await stopController(opts);
  if (stopped) say(dim(`  stopped the previous demo's controller (pid ${stopped})`));
  const t0 = Date.now();
  const scenario = await overlayUp(modelFile, { stateDir: opts.stateDir, prefix: opts.prefix, addressing: 'dhcp' });
  say(`  scenario up in ${secs(Date.now() - t0)}: one network namespace per hypervisor (${opts.prefix}h-*) with its own ovsdb-server and ovs-vswitchd, VMs in ${opts.prefix}v-* (no address yet: DHCP, and SLAAC on dual-stack subnets), underlay router ${opts.prefix}ul; state ${opts.stateDir}`);
  const t1 = Date.now();
  const ctl = await startController(modelFile, scenario.hypervisorsJson, {
    dir: controllerDir(opts),
    detached: true,
    apps: DEMO_APPS,
    // 10 probes a second per pair: the page's tunnel mesh shows liveness and round trips (docs/tunnel-monitor.md)
    settings: { 'tunnel-monitor': { intervalMs: 100 } },
    ...(await demoEndpoints()),
  }).catch((e: unknown) => {
    say(red(`  the controller did not come up: ${(e as Error).message}`));
    say(`  tear down: npm run demo -- down`);
    return undefined;
  });
  if (!ctl) return { ok: false, matrixOk: false, verdicts: [] };
  const sync = await ctl.waitInSync();
  const hvs = readHypervisorsJson(scenario.hypervisorsJson);
  say(`  controller pid ${ctl.pid} (apps ${DEMO_APPS.join(', ')}) dialled ${Object.keys(hvs).length} ${model.hypervisors[0]?.bridge ?? 'br-int'}.mgmt sockets; in sync after ${secs(Date.now() - t1)}:`);
  const tipWidth = Math.max(...Object.values(hvs).map((h) => h.tunnelIp.length));
  for (const [name, h] of Object.entries(hvs)) {
    const s = sync.switches[h.datapathId]!;
    say(`    ${name} ${h.zone} tunnel ${h.tunnelIp.padEnd(tipWidth)} dpid ${h.datapathId}  ${s.installed} flows installed = desired, Geneve port zm-tun ${sync.tunnelPorts.includes(name) ? 'ready' : 'MISSING'}`);
  }
  say();
  const dhcpOk = printLeases(p, model, await scenario.dhcp({ client: 'dhclient' }));
  // the load balancers' backends serve from now on: in rotation well before their checks below
  await startBackendServers(scenario, model);
  const result = await runChecks(scenario, model, opts, { dhcpOk, lbFailover: true });
  printRunning(p, opts, model, ctl);
  return result;
}

/** The checks again, on the demo left running. */
export async function demoCheck(opts: DemoOptions): Promise<DemoResult> {
  const p = new Printer(opts);
  const pid = runningPid(opts);
  const stateFile = join(opts.stateDir, 'state.json');
  if (pid === undefined || !existsSync(stateFile)) {
    p.say(p.red(`no running demo in ${opts.stateDir}: npm run demo`));
    return { ok: false, matrixOk: false, verdicts: [] };
  }
  const st = JSON.parse(readFileSync(stateFile, 'utf8')) as OverlayState;
  const config = JSON.parse(readFileSync(join(controllerDir(opts), 'run.json'), 'utf8')) as { model: string };
  const model = loadModelFile(config.model);
  const scenario = new OverlayScenario(opts.stateDir, opts.prefix, { stateDir: opts.stateDir, stateFile, hypervisorsJson: st.hypervisorsJson, controllerMode: st.controllerMode, hypervisors: readHypervisorsJson(st.hypervisorsJson), timings: {} });
  p.say(p.bold(`zonemesh demo: checking the running demo (controller pid ${pid}, model ${config.model})`));
  const result = await runChecks(scenario, model, opts, { lbFailover: false });
  printRunning(p, opts, model, { pid, logFile: join(controllerDir(opts), 'zonemesh.log'), controlSocket: join(controllerDir(opts), 'control.sock'), modelFile: config.model, configFile: join(controllerDir(opts), 'run.json') });
  return result;
}

/** Controller stopped, scenario torn down; idempotent. */
export async function demoDown(opts: DemoOptions): Promise<void> {
  const pid = await stopController(opts);
  const report = await overlayDown(opts.stateDir, opts.prefix);
  new Printer(opts).say(`zonemesh demo: ${pid ? `controller (pid ${pid}) stopped, ` : ''}scenario down: ${report.namespaces.length} namespaces deleted, ${report.stopped.length} processes stopped (${report.elapsedMs} ms)`);
}
