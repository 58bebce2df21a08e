/**
 * North-south in `npm run demo` (issue 11, docs/north-south.md), on a model with external
 * networks: from the internet namespace, a ping and an HTTP GET to each floating IP (its VM serves
 * a page naming itself); each VM fetches a page from the internet's web server, whose access log
 * says which address it saw, against the model (the VM's floating IP, or its VPC's SNAT address in
 * the VM's zone); and, from tcpdump on every hypervisor uplink and every gateway's segment link
 * during both, that each VM's north-south traffic stays in its own zone.
 *
 * The probes and what they are checked against are shared with test/integration/north-south.test.ts.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_ROUTES, snatBindings } from '../src/apps/north-south';
import { cidrContains, parseCidr, parseIpv4, type NetworkModel, type VmPort } from '../src/model';
import type { Layer } from '../src/packet';
import { waitFor, type CapturedFrame, type OutsideState, type OverlayScenario, type OverlayState, type TunnelFrame } from '../test/helpers/overlay';

/** the VMs with a floating IP serve HTTP on this port */
export const VM_WEB_PORT = 8080;

// ---- what the model says ----

/** How a VM reaches a destination outside, by the model. */
export type EgressWay =
  | { via: 'floating IP'; address: string }
  | { via: 'SNAT'; address: string; network: string; lo: number; hi: number }
  | { via: 'none'; why: string };

function covers(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const a = parseIpv4(ip);
  return c !== undefined && a !== undefined && cidrContains(c, a);
}

/** The way out of `port` to `destination`: its floating IP, else its SNAT address and port block, if its VPC routes there. */
export function expectedEgress(model: NetworkModel, port: VmPort, destination: string): EgressWay {
  const fip = model.floatingIps.find((f) => f.port === port.name);
  const routes = model.egress.find((e) => e.vpc === port.vpc)?.routes ?? (fip ? DEFAULT_ROUTES : []);
  if (!routes.some((r) => covers(r, destination))) return { via: 'none', why: `VPC ${port.vpc} routes ${routes.length ? routes.join(', ') : 'nothing'} to the outside, not ${destination}` };
  if (fip) return { via: 'floating IP', address: fip.ip };
  const b = snatBindings(model).bindings.find((x) => x.port.name === port.name);
  if (b) return { via: 'SNAT', address: b.address.ip, network: b.network.name, lo: b.lo, hi: b.hi };
  return { via: 'none', why: `no floating IP, and no SNAT address of VPC ${port.vpc} (or no port block left) in its zone` };
}

function describeWay(model: NetworkModel, port: VmPort, way: EgressWay): string {
  if (way.via === 'floating IP') return `${way.address} (its floating IP)`;
  if (way.via === 'SNAT') return `${way.address} (VPC ${port.vpc}'s SNAT address on ${way.network}, ${zoneOf(model, port)}; its ports ${way.lo}-${way.hi})`;
  return `no way out: ${way.why}`;
}

function zoneOf(model: NetworkModel, port: VmPort): string {
  return model.hypervisors.find((h) => h.name === port.hypervisor)!.zone;
}

// ---- probes ----

export interface NetnsResult {
  /** null when killed (by the timeout) */
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command in a network namespace, whatever its exit code (a failed ping or curl is an
 * answer); rejects only when it cannot start. Straight `ip netns exec`: the probes run many at once.
 */
export function inNetns(netns: string, command: readonly string[], timeoutMs = 20_000): Promise<NetnsResult> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', netns, ...command], { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number' && !error.killed) reject(error);
      else resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

export interface PingCount {
  sent: number;
  received: number;
}

/** `count` pings from the internet namespace to `ip`, 200 ms apart. */
export async function pingFromInternet(outside: OutsideState, ip: string, count = 3): Promise<PingCount> {
  const r = await inNetns(outside.internet.netns, ['ping', '-n', '-c', String(count), '-i', '0.2', '-W', '2', ip]);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  return { sent: Number(m?.[1] ?? count), received: Number(m?.[2] ?? 0) };
}

export interface HttpGet {
  /** '000' when nothing answered */
  status: string;
  body: string;
  /** curl's complaint, if any */
  error: string;
}

/** An HTTP GET with curl in a namespace, 10 s at most. */
export async function httpGet(netns: string, url: string): Promise<HttpGet> {
  const r = await inNetns(netns, ['curl', '-sS', '-m', '10', '-w', '\\n%{http_code}', url]);
  const lines = r.stdout.split('\n');
  return { status: lines.pop() || '000', body: lines.join('\n'), error: r.stderr.trim() };
}

/** The client address the internet web server logged for the latest request of `path`. */
export function clientOf(outside: OutsideState, path: string): string | undefined {
  const line = readFileSync(outside.internet.webLog, 'utf8')
    .split('\n')
    .filter((l) => l.includes(`"GET ${path} `))
    .pop();
  return line?.split(' ')[0];
}

/** Resolves once something listens on TCP `port` in a namespace. */
export async function listening(netns: string, port: number): Promise<void> {
  await waitFor(`a listener on port ${port} in ${netns}`, () => inNetns(netns, ['ss', '-Hltn', `sport = :${port}`]).then((r) => r.stdout.trim() !== ''), (up) => up, { timeoutMs: 30_000, intervalMs: 100 });
}

/** Python's web server in VMs, each serving an index.html that names its VM, until close(). */
export class VmWebServers {
  private constructor(private readonly servers: ChildProcess[]) {}

  /** `dir`/VM/index.html for each VM; resolves once every server listens on VM_WEB_PORT. */
  static async start(state: OverlayState, vms: readonly string[], dir: string): Promise<VmWebServers> {
    const servers = vms.map((vm) => {
      const root = join(dir, vm);
      mkdirSync(root, { recursive: true });
      writeFileSync(join(root, 'index.html'), vm);
      // in the VM's namespace: it dies with the namespace if nothing else stops it
      return spawn('ip', ['netns', 'exec', state.vms[vm]!.netns, 'python3', '-m', 'http.server', String(VM_WEB_PORT), '--directory', root], { stdio: 'ignore' });
    });
    const started = new VmWebServers(servers);
    try {
      await Promise.all(vms.map((vm) => listening(state.vms[vm]!.netns, VM_WEB_PORT)));
    } catch (e) {
      started.close();
      throw e;
    }
    return started;
  }

  close(): void {
    for (const s of this.servers) s.kill();
  }
}

// ---- locality ----

/** The IPv4 addresses and TCP/UDP ports of a packet's layers, if it is IPv4. */
function flowOf(layers: readonly Layer[]): { src: string; dst: string; sport?: number; dport?: number } | undefined {
  const ip = layers.find((l) => l.type === 'ipv4');
  if (ip?.type !== 'ipv4') return undefined;
  const l4 = layers.find((l) => l.type === 'tcp' || l.type === 'udp');
  return { src: ip.src, dst: ip.dst, ...(l4 && (l4.type === 'tcp' || l4.type === 'udp') && { sport: l4.srcPort, dport: l4.dstPort }) };
}

/** What the captures saw during the probes: Geneve frames on the uplinks, frames on the gateways' segment links. */
export interface NorthSouthFrames {
  tunnelled: readonly TunnelFrame[];
  external: readonly CapturedFrame[];
}

export interface Locality {
  vm: string;
  zone: string;
  /** the VM's outside address, and its port block for SNAT */
  address: string;
  block?: { lo: number; hi: number };
  /** the VM's frames on the segment links, each way, and whose links they crossed */
  outbound: number;
  inbound: number;
  segments: string[];
  /** the VM's tunnelled frames, and between which hypervisors */
  tunnelled: number;
  tunnels: string[];
  /** frames of its address, or of its own untranslated address, toward `peer` outside its zone's hypervisors and links */
  stray: string[];
  ok: boolean;
}

/**
 * Where `port`'s traffic with `peer` (an outside address) went: every frame of its outside address
 * must be on its zone's hypervisors (tunnels between them, their segment links), none of its own
 * address; and both directions must show on the segment links, so that an empty capture fails.
 */
export function localityOf(model: NetworkModel, frames: NorthSouthFrames, port: VmPort, way: Exclude<EgressWay, { via: 'none' }>, peer: string): Locality {
  const zone = zoneOf(model, port);
  const hvs = model.hypervisors.filter((h) => h.zone === zone);
  const names = new Set(hvs.map((h) => h.name));
  const byTunnelIp = new Map(model.hypervisors.map((h) => [h.tunnelIp, h.name]));
  const inZone = (tip: string) => names.has(byTunnelIp.get(tip) ?? '');
  const block = way.via === 'SNAT' ? { lo: way.lo, hi: way.hi } : undefined;
  const between = (f: ReturnType<typeof flowOf>, a: string) => f !== undefined && ((f.src === a && f.dst === peer) || (f.src === peer && f.dst === a));
  const ours = (f: NonNullable<ReturnType<typeof flowOf>>) => {
    if (!block) return true;
    const p = f.src === way.address ? f.sport : f.dport;
    return p !== undefined && p >= block.lo && p <= block.hi;
  };
  const stray: string[] = [];
  const tunnels = new Set<string>();
  let tunnelled = 0;
  for (const t of frames.tunnelled) {
    const f = flowOf(t.inner);
    if (between(f, port.ip ?? '')) stray.push(`${f!.src} -> ${f!.dst} untranslated in a tunnel at ${t.at}`);
    if (!between(f, way.address)) continue;
    if (!names.has(t.at) || !inZone(t.outerSrc) || !inZone(t.outerDst)) stray.push(`${f!.src} -> ${f!.dst} in a tunnel ${t.outerSrc} -> ${t.outerDst} at ${t.at}`);
    if (!ours(f!)) continue;
    tunnelled++;
    tunnels.add(`${byTunnelIp.get(t.outerSrc) ?? t.outerSrc}->${byTunnelIp.get(t.outerDst) ?? t.outerDst}`);
  }
  const segments = new Set<string>();
  let [outbound, inbound] = [0, 0];
  for (const x of frames.external) {
    const f = x.packet && flowOf(x.packet.layers);
    if (between(f, port.ip ?? '')) stray.push(`${f!.src} -> ${f!.dst} untranslated on ${x.at}'s segment link`);
    if (!between(f, way.address)) continue;
    if (!names.has(x.at)) stray.push(`${f!.src} -> ${f!.dst} on ${x.at}'s segment link`);
    if (!ours(f!)) continue;
    if (f!.src === way.address) outbound++;
    else inbound++;
    segments.add(x.at);
  }
  return {
    vm: port.name,
    zone,
    address: way.address,
    ...(block && { block }),
    outbound,
    inbound,
    segments: [...segments].sort(),
    tunnelled,
    tunnels: [...tunnels].sort(),
    stray,
    ok: stray.length === 0 && outbound > 0 && inbound > 0,
  };
}

// ---- the demo's section ----

export interface FloatingIpReach {
  ip: string;
  vm: string;
  ping: PingCount;
  http: HttpGet;
  ok: boolean;
}

export interface Egress {
  vm: string;
  expected: EgressWay;
  http: HttpGet;
  /** the client address the internet server logged */
  seen?: string;
  ok: boolean;
}

export interface NorthSouthResult {
  ok: boolean;
  reach: FloatingIpReach[];
  egress: Egress[];
  locality: Locality[];
}

/** The printer of scripts/overlay-demo.ts. */
export interface DemoPrinter {
  say(line?: string): void;
  bold(s: string): string;
  dim(s: string): string;
  green(s: string): string;
  red(s: string): string;
}

/**
 * The north-south section: reach, egress, locality, printed; undefined (and one line saying so)
 * when the model has no external networks. `workDir` holds the VMs' web pages.
 */
export async function northSouthChecks(scenario: OverlayScenario, model: NetworkModel, p: DemoPrinter, workDir: string): Promise<NorthSouthResult | undefined> {
  const { say, bold, dim, green, red } = p;
  const state = scenario.state();
  const outside = state.outside;
  if (!outside || model.externalNetworks.length === 0) {
    say(dim('North-south: skipped: the model has no external networks'));
    return undefined;
  }
  const t0 = Date.now();
  const internet = outside.internet;
  const where = (port: VmPort) => `${port.name} ${dim(`${port.vpc}/${port.subnet}@${port.hypervisor} ${zoneOf(model, port)}`)}`;
  const networks = model.externalNetworks.map((e) => `${e.name} ${e.cidr} (${e.zone}: gateways ${e.gateways.map((g) => g.hypervisor).join(', ')})`);
  say(bold(`North-south: the internet ${internet.ip} behind the edge router; ${networks.join(', ')}`));
  say(dim('  the edge router reaches floating IPs and SNAT addresses on-link, the gateways answer its ARP (BGP: test/integration/north-south.test.ts)'));

  const bound = model.floatingIps.flatMap((f) => {
    const port = model.ports.find((x) => x.name === f.port);
    return port ? [{ ip: f.ip, port }] : [];
  });
  // both captures, the VMs' web servers and the internet's at once; on a failure, what started stops
  const started = await Promise.allSettled([
    scenario.startCapture('demo-ns-underlay', { where: 'uplinks', filter: 'udp port 6081' }),
    scenario.startCapture('demo-ns-outside', { where: 'outside', filter: 'ip' }),
    VmWebServers.start(state, bound.map((b) => b.port.name), join(workDir, 'www')),
    listening(internet.netns, internet.webPort),
  ]);
  const [underlay, segments, servers] = started;
  if (underlay.status === 'rejected' || segments.status === 'rejected' || servers.status === 'rejected' || started[3].status === 'rejected') {
    if (servers.status === 'fulfilled') servers.value.close();
    for (const c of [underlay, segments]) if (c.status === 'fulfilled') await c.value.stop();
    throw (started.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;
  }
  let reach: FloatingIpReach[];
  let fetched: { port: VmPort; expected: EgressWay; http: HttpGet; path: string }[];
  try {
    reach = await Promise.all(
      bound.map(async ({ ip, port }) => {
        const [ping, http] = await Promise.all([pingFromInternet(outside, ip), httpGet(internet.netns, `http://${ip}:${VM_WEB_PORT}/`)]);
        return { ip, vm: port.name, ping, http, ok: ping.received === ping.sent && http.status === '200' && http.body === port.name };
      }),
    );
    const run = Date.now().toString(36);
    fetched = await Promise.all(
      model.ports
        .filter((port) => port.ip !== undefined)
        .map(async (port) => {
          const path = `/?demo=${run}&from=${port.name}`;
          return { port, expected: expectedEgress(model, port, internet.ip), http: await httpGet(state.vms[port.name]!.netns, `http://${internet.ip}:${internet.webPort}${path}`), path };
        }),
    );
  } finally {
    servers.value.close();
    await underlay.value.stop();
    await segments.value.stop();
  }

  say(`  From the internet: 3 pings and an HTTP GET of :${VM_WEB_PORT}/ to each floating IP, answered by a web server in its VM with the VM's name`);
  const ipWidth = Math.max(...reach.map((r) => r.ip.length));
  for (const r of reach) {
    const port = model.ports.find((x) => x.name === r.vm)!;
    const got = `ping ${r.ping.received}/${r.ping.sent}  HTTP ${r.http.status}${r.http.status === '200' ? ` "${r.http.body}"` : ` ${r.http.error}`}`;
    say(`    ${r.ip.padEnd(ipWidth)} -> ${where(port)}  ${got}  ${r.ok ? green('ok') : red('MISMATCH')}`);
  }

  say(`  Egress: every VM with an IPv4 address fetches http://${internet.ip}:${internet.webPort}/; the address the internet server logged, against the model`);
  const egress: Egress[] = fetched.map(({ port, expected, http, path }) => {
    const seen = http.status === '200' ? clientOf(outside, path) : undefined;
    const ok = expected.via === 'none' ? http.status === '000' : http.status === '200' && seen === expected.address;
    return { vm: port.name, expected, http, ...(seen && { seen }), ok };
  });
  const nameWidth = Math.max(...model.ports.map((x) => where(x).length));
  for (const e of egress) {
    const port = model.ports.find((x) => x.name === e.vm)!;
    const got = e.http.status === '200' ? `seen as ${e.seen ?? 'nothing logged'}` : `no page (${e.http.error || `HTTP ${e.http.status}`})`;
    say(`    ${where(port).padEnd(nameWidth)}  ${got.padEnd(24)} expected ${describeWay(model, port, e.expected)}  ${e.ok ? green('ok') : red('MISMATCH')}`);
  }

  const frames: NorthSouthFrames = { tunnelled: underlay.value.tunnelFrames(), external: segments.value.frames() };
  say(`  Locality: tcpdump on every hypervisor uplink and every gateway's segment link during both (${frames.tunnelled.length} Geneve frames, ${frames.external.length} on the segments)`);
  const locality = egress.flatMap((e) => {
    const way = e.expected;
    return way.via === 'none' ? [] : [localityOf(model, frames, model.ports.find((x) => x.name === e.vm)!, way, internet.ip)];
  });
  for (const l of locality) {
    const block = l.block ? ` ports ${l.block.lo}-${l.block.hi}` : '';
    const tunnels = l.tunnelled ? `${l.tunnelled} in tunnels ${l.tunnels.join(', ')}` : 'none in a tunnel';
    say(`    ${l.ok ? green('PASS') : red('FAIL')}  ${l.vm} (${l.zone}, ${l.address}${block}): ${l.outbound} frames out and ${l.inbound} in on the segment links of ${l.segments.join(', ') || 'no gateway'}; ${tunnels}; nothing outside ${l.zone}, nothing untranslated`);
    for (const s of l.stray.slice(0, 5)) say(dim(`          ${s}`));
  }

  const ok = reach.every((r) => r.ok) && egress.every((e) => e.ok) && locality.every((l) => l.ok);
  const summary = `${reach.filter((r) => r.ok).length}/${reach.length} floating IPs reached from the internet, ${egress.filter((e) => e.ok).length}/${egress.length} VMs out as the model says, ${locality.filter((l) => l.ok).length}/${locality.length} VMs' north-south traffic in their own zone (${((Date.now() - t0) / 1000).toFixed(1)} s)`;
  say(ok ? green(`  north-south: ${summary}`) : red(`  north-south: ${summary}`));
  return { ok, reach, egress, locality };
}

/** Commands to try the outside by hand (`net`: the scenario script with its options), or undefined without one. */
export function northSouthCommands(model: NetworkModel, stateDir: string, net: string): string[] | undefined {
  const state = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as OverlayState;
  if (!state.outside) return undefined;
  const { ip, webPort } = state.outside.internet;
  const fip = model.floatingIps.find((f) => f.port !== undefined);
  const snat = snatBindings(model).bindings[0];
  return [...(fip ? [`${net} exec internet ping -c3 ${fip.ip}`] : []), ...(snat ? [`${net} exec ${snat.port.name} curl -sS -I http://${ip}:${webPort}/`] : [])];
}
