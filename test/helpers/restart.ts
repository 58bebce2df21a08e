/**
 * The lab of the restart and config-change tests: two host namespaces wired by veths into a
 * userspace (netdev) bridge on the system OVS, `zonemesh run` with the static-flows app as a real
 * process, and readers for what OVS, ping and the controller's JSON log say.
 */
import type { ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STATIC_FLOWS_APP_ID } from '../../src/apps/static-flows';
import type { SwitchFlows } from '../../src/runtime';
import { PIPELINE_APP_ID, makeCookie } from '../../src/sdk';
import { ofctl, vsctl } from './ovs';
import { REPO_ROOT } from './paths';
import { TEST_STATE_DIR, run, spawnTracked } from './run';

export const CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns something other than undefined; throws `what` (and the last probe error) at the deadline. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await delay(everyMs);
  }
}


// ---------------------------------------------------------------- the flows

/** One static flow: the config's YAML and how `ovs-ofctl dump-flows --no-names` prints it. */
export interface StaticFlow {
  name: string;
  /** `{ name: …, priority: …, match: …, actions: … }`, one YAML flow mapping */
  yaml: string;
  /** the dump line after `table=0, ` without counters: `priority=100,arp,in_port=1 actions=output:2` */
  ovs: string;
}

const flow = (name: string, body: string, ovs: string): StaticFlow => ({ name, yaml: `{ name: ${name}, ${body} }`, ovs });

/**
 * IPv4 and ARP between h1 (port 1, 10.0.0.1) and h2 (port 2, 10.0.0.2), plus flows that carry
 * nothing in the ping (other shapes: drop, masked match, set_field, controller output).
 */
export const BASE_FLOWS: readonly StaticFlow[] = [
  flow('h1-arp', 'priority: 100, match: { in_port: 1, eth_type: 0x0806 }, actions: [{ output: 2 }]', 'priority=100,arp,in_port=1 actions=output:2'),
  flow('h2-arp', 'priority: 100, match: { in_port: 2, eth_type: 0x0806 }, actions: [{ output: 1 }]', 'priority=100,arp,in_port=2 actions=output:1'),
  flow('h1-ip', 'priority: 100, match: { in_port: 1, eth_type: 0x0800, ipv4_dst: 10.0.0.2 }, actions: [{ output: 2 }]', 'priority=100,ip,in_port=1,nw_dst=10.0.0.2 actions=output:2'),
  flow('h2-ip', 'priority: 100, match: { in_port: 2, eth_type: 0x0800, ipv4_dst: 10.0.0.1 }, actions: [{ output: 1 }]', 'priority=100,ip,in_port=2,nw_dst=10.0.0.1 actions=output:1'),
  flow('x-ipv6', 'priority: 50, match: { eth_type: 0x86dd }, actions: []', 'priority=50,ipv6 actions=drop'),
  flow('x-udp', 'priority: 60, match: { eth_type: 0x0800, ip_proto: 17, udp_dst: 9999 }, actions: [{ output: controller }]', 'priority=60,udp,tp_dst=9999 actions=CONTROLLER:65535'),
  flow('x-group-src', 'priority: 40, match: { eth_src: "01:00:00:00:00:00/01:00:00:00:00:00" }, actions: []', 'priority=40,dl_src=01:00:00:00:00:00/01:00:00:00:00:00 actions=drop'),
  flow(
    'x-gw',
    'priority: 70, match: { in_port: 1, eth_type: 0x0800, ipv4_dst: 10.0.9.0/24 }, actions: [{ set_field: { eth_dst: "02:00:00:00:00:02" } }, { output: 2 }]',
    'priority=70,ip,in_port=1,nw_dst=10.0.9.0/24 actions=set_field:02:00:00:00:00:02->eth_dst,output:2',
  ),
];

/** the static-flows table's miss flow (miss: drop), owned by the pipeline */
export const MISS_RULE = `cookie=0x${makeCookie(PIPELINE_APP_ID, 'table-miss').toString(16)}, table=0, priority=0 actions=drop`;

/** Each flow as a dump line without duration and counters: `cookie=0x…, table=0, priority=… actions=…`. */
export function expectedRules(flows: readonly StaticFlow[]): string[] {
  return [...flows.map((f) => `cookie=0x${makeCookie(STATIC_FLOWS_APP_ID, f.name).toString(16)}, table=0, ${f.ovs}`), MISS_RULE].sort();
}

export function runConfigYaml(port: number, control: string, flows: readonly StaticFlow[]): string {
  return [
    'apps: [static-flows]',
    `listen: ['tcp:127.0.0.1:${port}']`,
    `control: ${control}`,
    'settings:',
    '  static-flows:',
    '    miss: drop',
    '    flows:',
    ...flows.map((f) => `      - ${f.yaml}`),
    '',
  ].join('\n');
}

/** Replaces a file the way editors do (write aside, rename over), so a watcher never reads half of it. */
export function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.new`, text);
  renameSync(`${path}.new`, path);
}

// ---------------------------------------------------------------- OVS

export interface Dumped {
  cookie: string;
  durationS: number;
  packets: number;
  /** the line without duration and counters */
  rule: string;
}

/** `ovs-ofctl dump-flows --no-names`, sorted by rule; `at` brackets the moment OVS sampled the durations. */
export async function dump(bridge: string): Promise<{ flows: Dumped[]; at: { start: number; end: number } }> {
  const start = Date.now();
  const out = await ofctl(['dump-flows', '--no-names', bridge]);
  const end = Date.now();
  return { flows: parseFlowDump(out), at: { start, end } };
}

/** The flows of an `ovs-ofctl dump-flows --no-names` output, sorted by rule. */
export function parseFlowDump(out: string): Dumped[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith(' cookie='))
    .map((l) => ({
      cookie: /cookie=(0x[0-9a-f]+)/.exec(l)![1]!,
      durationS: Number(/duration=([\d.]+)s/.exec(l)![1]),
      packets: Number(/n_packets=(\d+)/.exec(l)![1]),
      rule: l.replace(/ duration=[\d.]+s,| n_packets=\d+,| n_bytes=\d+,/g, '').trim(),
    }))
    .sort((a, b) => (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0)); // the order of expectedRules' sort()
}

/**
 * A dump once the bridge is quiet: OVS folds datapath counters into its flows only every half second
 * or so, so counters read right after traffic can still grow. Waits until two dumps `settleMs` apart
 * agree on every counter.
 */
export async function quietDump(bridge: string, settleMs = 1_200, timeoutMs = 30_000): Promise<Awaited<ReturnType<typeof dump>>> {
  let last = await dump(bridge);
  return until('quiet counters', timeoutMs, async () => {
    await delay(settleMs);
    const d = await dump(bridge);
    const same = d.flows.length === last.flows.length && d.flows.every((f, i) => f.rule === last.flows[i]!.rule && f.packets === last.flows[i]!.packets);
    last = d;
    return same ? d : undefined;
  }, 0);
}

export interface Lab {
  bridge: string;
  hosts: [string, string];
  /** host i is 10.0.0.i on port i, with MAC 02:00:00:00:00:0i */
  ip: (host: 1 | 2) => string;
  /**
   * Creates the bridge with both veths at ports 1 and 2 and its controller in the add-br transaction
   * (a bridge's first controller flushes its flows): fail_mode=secure, OpenFlow 1.3, netdev.
   */
  addBridge(controller: string): Promise<void>;
  /** deletes the bridge, the veths and the namespaces; safe to call twice */
  destroy(): Promise<void>;
}

async function sh(args: readonly string[]): Promise<string> {
  return (await run(args[0]!, args.slice(1), { timeoutMs: 20_000 })).stdout;
}

/**
 * Two host namespaces `${prefix}-h1`/`-h2` (IPv6 off, so nothing talks unasked) with veths
 * `${prefix}1`/`2` for bridge `prefix`. A leftover of an earlier run is removed first; `t.teardown`
 * removes everything.
 *
 * Create the bridge once the controller listens: OVS doubles its reconnect backoff (1, 2, 4, 8 s;
 * `max_backoff` did not cap it here) while nobody answers, and a connection that lasts less than
 * the backoff doubles it again on the next disconnect.
 */
export async function createLab(t: ExecutionContext, prefix: string): Promise<Lab> {
  const bridge = prefix;
  const hosts: [string, string] = [`${prefix}-h1`, `${prefix}-h2`];
  const veth = (i: number) => `${prefix}${i}`;
  const destroy = async () => {
    await vsctl(['--if-exists', 'del-br', bridge]).catch((e: Error) => t.log(`del-br ${bridge}: ${e.message}`));
    for (const i of [1, 2]) {
      // deleting one end of a veth deletes both, now; a deleted namespace takes its end along only later
      await sh(['ip', 'link', 'del', veth(i)]).catch(() => undefined);
      await sh(['ip', 'netns', 'del', hosts[i - 1]!]).catch(() => undefined);
    }
  };
  await destroy();
  t.teardown(destroy);
  for (const i of [1, 2] as const) {
    const ns = hosts[i - 1]!;
    const inNs = (...args: string[]) => sh(['ip', 'netns', 'exec', ns, ...args]);
    await sh(['ip', 'netns', 'add', ns]);
    await sh(['ip', 'link', 'add', veth(i), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await sh(['sysctl', '-qw', `net.ipv6.conf.${veth(i)}.disable_ipv6=1`]);
    await inNs('sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.eth0.disable_ipv6=1');
    await inNs('ip', 'link', 'set', 'eth0', 'address', `02:00:00:00:00:0${i}`);
    await inNs('ip', 'addr', 'add', `10.0.0.${i}/24`, 'dev', 'eth0');
    await inNs('ip', 'link', 'set', 'eth0', 'up');
    await inNs('ip', 'link', 'set', 'lo', 'up');
    await sh(['ip', 'link', 'set', veth(i), 'up']);
  }
  const addBridge = async (controller: string) => {
    await vsctl([
      '--', 'add-br', bridge,
      '--', 'set', 'bridge', bridge, 'datapath_type=netdev', 'fail_mode=secure', 'protocols=OpenFlow13',
      '--', 'set-controller', bridge, controller,
      '--', 'set', 'controller', bridge, 'max_backoff=1000',
      '--', 'add-port', bridge, veth(1), '--', 'set', 'interface', veth(1), 'ofport_request=1',
      '--', 'add-port', bridge, veth(2), '--', 'set', 'interface', veth(2), 'ofport_request=2',
    ]);
  };
  return { bridge, hosts, ip: (h) => `10.0.0.${h}`, addBridge, destroy };
}

// ---------------------------------------------------------------- ping

export interface PingSummary {
  transmitted: number;
  received: number;
  lossPct: number;
}

export function parsePing(out: string): PingSummary | undefined {
  const m = /(\d+) packets transmitted, (\d+) received(?:, \+\d+ \w+)*, ([\d.]+)% packet loss/.exec(out);
  return m ? { transmitted: Number(m[1]), received: Number(m[2]), lossPct: Number(m[3]) } : undefined;
}

export interface Ping {
  child: ChildProcess;
  /** resolves when ping exits, with its summary and whole output */
  done: Promise<{ code: number | null; out: string; summary: PingSummary | undefined; endedAt: number }>;
}

/** ping from a host namespace, tracked (scripts/test.sh kills it by pid if the test dies). */
export function startPing(t: ExecutionContext, ns: string, dst: string, args: readonly string[]): Ping {
  const child = spawnTracked('ip', ['netns', 'exec', ns, 'ping', ...args, dst]);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const done = once(child, 'exit').then(([code]) => ({ code: code as number | null, out, summary: parsePing(out), endedAt: Date.now() }));
  return { child, done };
}

/** A short ping and its summary (no throw on loss). */
export async function pingOnce(t: ExecutionContext, ns: string, dst: string, count: number): Promise<PingSummary | undefined> {
  return (await startPing(t, ns, dst, ['-c', String(count), '-i', '0.2', '-W', '1']).done).summary;
}

// ---------------------------------------------------------------- the controller

/** One line of pino's JSON log. */
export type LogLine = Record<string, unknown> & { level: number; time: number; msg: string };

/** `zonemesh run --config FILE` (or `zonemesh run ARGS`) as a tracked child process, with its log parsed line by line. */
export class ControllerProcess {
  readonly child: ChildProcess;
  /** Date.now() just before the spawn */
  readonly spawnedAt: number;
  readonly lines: LogLine[] = [];
  private raw = '';
  private partial = '';

  constructor(t: ExecutionContext, config: string | readonly string[]) {
    this.spawnedAt = Date.now();
    this.child = spawnTracked(process.execPath, [CLI, 'run', ...(typeof config === 'string' ? ['--config', config] : config)]);
    t.teardown(() => this.kill('SIGKILL'));
    this.child.stdout!.on('data', (d: Buffer) => this.take(d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.raw += d.toString()));
  }

  private take(text: string): void {
    this.raw += text;
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop()!;
    for (const p of parts) {
      try {
        this.lines.push(JSON.parse(p) as LogLine);
      } catch {
        // not a log line; it stays in `log`
      }
    }
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** the end of the raw log, for failure messages */
  tail(chars = 4000): string {
    return this.raw.slice(-chars);
  }

  /** The first log line from `from` on that matches; throws with the log's tail if the process exits or time runs out. */
  async waitFor(what: string, match: (l: LogLine) => boolean, timeoutMs = 30_000, from = 0): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find(match);
      if (hit) return hit;
      if (!this.running) throw new Error(`controller exited (${this.child.exitCode ?? this.child.signalCode}) before ${what}; its log ends:\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`controller: no ${what} within ${timeoutMs} ms; its log ends:\n${this.tail()}`);
      await delay(25);
    }
  }

  /** the log line of the next full sync (the one a switch connection starts) */
  fullSync(timeoutMs = 30_000, from = 0): Promise<LogLine> {
    return this.waitFor('full sync', (l) => l.component === 'reconciler' && l.kind === 'full', timeoutMs, from);
  }

  /** Sends `signal` and resolves when the process has exited (at once if it already has). */
  async kill(signal: NodeJS.Signals): Promise<void> {
    if (!this.running) return;
    const exited = once(this.child, 'exit');
    this.child.kill(signal);
    await exited;
  }

  /** log lines at warn or above */
  problems(): LogLine[] {
    return this.lines.filter((l) => l.level >= 40);
  }
}

/** `zonemesh flows --json` against a control socket. */
export async function zonemeshFlows(control: string): Promise<{ status: number; switches: SwitchFlows[] }> {
  try {
    const { stdout } = await run(process.execPath, [CLI, 'flows', '--control', `unix:${control}`, '--json'], { timeoutMs: 30_000 });
    return { status: 0, switches: JSON.parse(stdout) };
  } catch (e) {
    const details = (e as { details?: { code?: number; stdout?: string } }).details;
    if (details?.code === 1 && details.stdout) return { status: 1, switches: JSON.parse(details.stdout) };
    throw e;
  }
}

/** A fresh directory for one test's config and control socket. */
export function testDir(name: string): string {
  const dir = join(TEST_STATE_DIR, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}
