/**
 * The multi-zone overlay scenario for system tests: brings mininet/zonemesh_net.py's topology
 * up and down, and wraps its probes (VM ping matrix, underlay ping matrix, underlay captures,
 * TCP checks with nc, VM move). Every run of the script is a tracked process, and everything it
 * leaves running has a pidfile under the scenario's state directory, which lies under
 * TEST_STATE_DIR: scripts/test.sh kills it whatever way a test ends, and deletes the zm* netns.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { EGRESS_KEY_OPTION } from '../../src/apps/tunnel-mesh/geneve-option';
import {
  PORT_KEYS,
  cidrContains,
  ipv6CidrContains,
  keyOf,
  parseCidr,
  parseIpv4,
  parseIpv6Address,
  parseIpv6Cidr,
  portIpv6,
  routerLinkLocal,
  type AclRule,
  type NetworkModel,
  type Subnet,
  type VmPort,
} from '../../src/model';
import { findLayer, tryParsePacket, type Layer, type ParsedPacket } from '../../src/packet';
import { OVERLAY_MTU, subnetInfo } from '../../src/sdk';
import { queryControl, type HttpSettings, type MetricsSettings, type SwitchFlows } from '../../src/runtime';
import { readPcapFrames } from '../packet/helpers';
import { REPO_ROOT } from './paths';
import { CommandError, TEST_STATE_DIR, run, spawnTracked } from './run';
import { ipv4InfoOf, ipv4Of } from '../../src/testing';

export const OVERLAY_SCRIPT = join(REPO_ROOT, 'mininet', 'zonemesh_net.py');
/** Mininet imports only under the Debian python */
export const MININET_PYTHON = '/usr/bin/python3';
export const TWO_ZONES_MODEL = join(REPO_ROOT, 'models', 'two-zones.yaml');
/** the second example: 3 zones, 3 VPCs, ACL rules of both directions */
export const THREE_ZONES_MODEL = join(REPO_ROOT, 'models', 'three-zones.yaml');

export type ControllerMode = 'dial' | 'listen';
/** the VMs' addresses: the model's, set when the scenario comes up, or by DHCP from the controller later */
export type Addressing = 'static' | 'dhcp';
export type DhcpClient = 'dhclient' | 'udhcpc';

/** One hypervisor in hypervisors.json: what the controller needs to reach it. */
export interface HypervisorEndpoints {
  /** from the controller's side: 'unix:PATH' = dial the bridge's socket (dial mode), 'punix:PATH' = listen there (listen mode) */
  openflow: string;
  /** 'unix:RUNDIR/db.sock', the hypervisor's own ovsdb-server */
  ovsdb: string;
  mode: ControllerMode;
  /** the socket path of `openflow` without its scheme */
  socket: string;
  /** the bridge's passive management socket (RUNDIR/br-int.mgmt), in both modes */
  mgmt: string;
  rundir: string;
  netns: string;
  bridge: string;
  tunnelIp: string;
  /** '0x' and 16 hex digits */
  datapathId: string;
  zone: string;
}

export type HypervisorsJson = Record<string, HypervisorEndpoints>;

export interface HypervisorState extends HypervisorEndpoints {
  prefixLen: number;
  gateway: string;
  physBridge: string;
  uplink: string;
  physMac: string;
  bridgeMac: string;
  unixctl: string;
}

export interface VmState {
  netns: string;
  vpc: string;
  subnet: string;
  mac: string;
  ip: string;
  prefixLen: number;
  gateway: string;
  hypervisor: string;
  /** the OVS-side veth name on the hypervisor */
  interface: string;
  ofport: number | null;
  /** the VM-side interface (eth0) */
  iface: string;
  /** a dual-stack port's IPv6 address (the model's, or EUI-64), which `slaac` must give eth0; null on IPv4-only subnets */
  ip6: string | null;
}

/** state.json: every name and path of a scenario. */
export interface OverlayState {
  version: number;
  prefix: string;
  stateDir: string;
  model: string | null;
  controllerMode: ControllerMode;
  addressing: Addressing;
  hypervisorsJson: string;
  captureDir: string;
  router: {
    netns: string;
    zones: Record<string, { bridge: string; cidr: string; gateway: string; mac: string }>;
    /** hypervisor -> the router's end of its uplink */
    uplinks: Record<string, string>;
  };
  hypervisors: Record<string, HypervisorState>;
  vms: Record<string, VmState>;
  /** with external networks in the model: the edge router, the internet and the gateways' segment ports */
  outside: OutsideState | null;
}

/** The outside of a scenario whose model has external networks (zonemesh_net.py, docs/north-south.md). */
export interface OutsideState {
  edge: { netns: string; segments: Record<string, { bridge: string; ip: string; prefixLen: number; mac: string }>; internetIface: string; internetIp: string };
  internet: { netns: string; iface: string; ip: string; prefixLen: number; gateway: string; webPort: number; webLog: string; webPid: string };
  gateways: { network: string; hypervisor: string; ip: string; prefixLen: number; interface: string; edgeIface: string }[];
}

export interface UpResult {
  stateDir: string;
  stateFile: string;
  hypervisorsJson: string;
  controllerMode: ControllerMode;
  hypervisors: HypervisorsJson;
  /** seconds per bring-up phase, and 'total' */
  timings: Record<string, number>;
}

export interface DownReport {
  stopped: number[];
  namespaces: string[];
  elapsedMs: number;
}

export interface PingResult {
  src: string;
  dst: string;
  ip: string;
  /** who owns `ip` in the source's VPC ('self' = the source itself); equals dst unless VPCs reuse the IP */
  target: string;
  sent: number;
  received: number;
  /** at least one reply */
  ok: boolean;
}

export type IpFamily = 4 | 6;

/** A VM's IPv6 after `slaac` (mininet/zmnet/slaac.py). */
export interface SlaacVmResult {
  vm: string;
  /** the address the model gives the port */
  expected: string;
  /** eth0's global addresses, 'ADDR/64' */
  inet6: string[];
  tentative: boolean;
  defaultVia: string | null;
  /** /proc/sys/net/ipv6/conf/eth0/mtu: the RA's MTU (it starts at 1280) */
  mtu: number | null;
  /** exactly the expected address, past DAD, and a default route */
  ok: boolean;
  elapsedMs: number;
}

export interface SlaacRun {
  vms: Record<string, SlaacVmResult>;
  elapsedMs: number;
}

export interface PingMatrix {
  vms: string[];
  family: IpFamily;
  count: number;
  elapsedMs: number;
  pairs: PingResult[];
}

export interface NcResult {
  src: string;
  ip: string;
  port: number;
  ok: boolean;
  elapsedMs: number;
  detail: string;
}

/** hypervisor uplinks and zone bridges in the underlay router; gateways' segment ports in the edge router (scenarios with external networks) */
export type CaptureWhere = 'uplinks' | 'zones' | 'outside';

export interface CaptureManifest {
  name: string;
  where: CaptureWhere;
  filter: string | null;
  netns: string;
  /** keyed by hypervisor (uplinks, outside) or zone (zones) */
  files: Record<string, { iface: string; pcap: string; pidfile: string; log: string; pid: number; frames?: number }>;
}

/** One VM's DHCP client run (zonemesh_net.py dhcp). */
export interface DhcpVmResult {
  vm: string;
  client: DhcpClient;
  /** the client exited 0 with a lease */
  ok: boolean;
  /** null: killed at the deadline */
  exitCode: number | null;
  elapsedMs: number;
  /** what the client was told (its script's environment when bound) */
  lease: { ip?: string; mask?: string; router?: string; mtu?: number; leaseTime?: number; server?: string; staticRoutes?: string } | null;
  /** eth0 afterwards, as `ip` shows it */
  interface: { inet: string | null; mtu: number | null; mac: string | null; defaultVia: string | null };
  /** the client's last lines of output */
  output: string[];
}

export interface DhcpRun {
  client: DhcpClient;
  elapsedMs: number;
  vms: Record<string, DhcpVmResult>;
}

export interface ScenarioStatus {
  namespaces: Record<string, boolean>;
  hypervisors: Record<string, { daemons: Record<string, boolean>; bridges: string[]; ports: string[]; socket: boolean | null }>;
}

interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs zonemesh_net.py as a tracked process. Resolves with its output whatever its exit code
 * (ping and nc checks exit 1 for "no"); rejects when it cannot start, is killed or times out.
 */
function runScript(args: readonly string[], timeoutMs: number): Promise<ScriptResult> {
  const fullArgs = [OVERLAY_SCRIPT, ...args];
  return new Promise((resolve, reject) => {
    const child = spawnTracked(MININET_PYTHON, fullArgs);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new CommandError(MININET_PYTHON, fullArgs, { code: null, timedOut: false, stdout, stderr: e.message }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (signal || timedOut) reject(new CommandError(MININET_PYTHON, fullArgs, { code, signal, timedOut, stdout, stderr }));
      else resolve({ code, stdout, stderr });
    });
  });
}

/** Runs the script and parses its JSON output; `okCodes` are the exit codes that still carry a result. */
async function scriptJson<T>(args: readonly string[], timeoutMs: number, okCodes: readonly number[] = [0]): Promise<T> {
  const r = await runScript(args, timeoutMs);
  if (r.code === null || !okCodes.includes(r.code)) {
    throw new CommandError(MININET_PYTHON, [OVERLAY_SCRIPT, ...args], { code: r.code, timedOut: false, stdout: r.stdout, stderr: r.stderr });
  }
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`zonemesh_net.py ${args.join(' ')}: output is not JSON: ${r.stdout.slice(0, 500)} ${r.stderr.slice(-500)}`);
  }
}

export interface OverlayOptions {
  /** default TEST_STATE_DIR/overlay */
  stateDir?: string;
  /** namespace name prefix, 'zm' plus up to 6 [a-z0-9] (default 'zmt'; by-hand runs default to 'zm') */
  prefix?: string;
  /** default 'dial' */
  mode?: ControllerMode;
  /** default 'static'; with 'dhcp', run `dhcp()` once the controller (with dhcp-responder) is in sync */
  addressing?: Addressing;
}

const DEFAULT_PREFIX = 'zmt';

function scenarioArgs(stateDir: string, prefix: string): string[] {
  return ['--state', stateDir, '--prefix', prefix];
}

/** A running scenario. Read `state()` again after `move`: it rewrites state.json. */
export class OverlayScenario {
  constructor(
    readonly stateDir: string,
    readonly prefix: string,
    readonly up: UpResult,
  ) {}

  /** the file the controller reads */
  get hypervisorsJson(): string {
    return this.up.hypervisorsJson;
  }

  state(): OverlayState {
    return JSON.parse(readFileSync(join(this.stateDir, 'state.json'), 'utf8')) as OverlayState;
  }

  private args(...rest: string[]): string[] {
    return [...scenarioArgs(this.stateDir, this.prefix), ...rest];
  }

  down(): Promise<DownReport> {
    return overlayDown(this.stateDir, this.prefix);
  }

  status(): Promise<ScenarioStatus> {
    return scriptJson(this.args('status'), 30_000);
  }

  /** Every VM pings every other VM (concurrently); `pairs: 'vpc'` keeps same-VPC pairs only. */
  pingMatrix(opts: { count?: number; wait?: number; pairs?: 'all' | 'vpc'; family?: IpFamily } = {}): Promise<PingMatrix> {
    const args = this.args('pingmatrix', '--json', '--count', String(opts.count ?? 2), '--wait', String(opts.wait ?? 1), '--pairs', opts.pairs ?? 'all', '--family', String(opts.family ?? 4));
    return scriptJson(args, 120_000);
  }

  /** `target`: a VM name (its IP) or an IP. */
  ping(src: string, target: string, count = 3): Promise<PingResult> {
    return scriptJson(this.args('ping', src, target, '--count', String(count)), 60_000, [0, 1]);
  }

  /**
   * Runs a DHCP client in the VMs (all by default) at once, each giving up after `timeoutSec`
   * (udhcpc: that many DISCOVERs, 1 s apart); resolves with every VM's result, leases or not.
   */
  dhcp(opts: { vms?: readonly string[]; client?: DhcpClient; timeoutSec?: number } = {}): Promise<DhcpRun> {
    const timeoutSec = opts.timeoutSec ?? 10;
    const args = this.args('dhcp', ...(opts.vms ?? []), '--client', opts.client ?? 'dhclient', '--timeout', String(timeoutSec));
    return scriptJson(args, 30_000 + timeoutSec * 1000, [0, 1]);
  }

  /**
   * Enables IPv6 in the VMs of dual-stack subnets (all by default) now that the controller answers
   * their router solicitations; resolves with every VM's SLAAC result once all have it or `timeoutSec` passed.
   */
  slaac(opts: { vms?: readonly string[]; timeoutSec?: number } = {}): Promise<SlaacRun> {
    const timeoutSec = opts.timeoutSec ?? 15;
    return scriptJson(this.args('slaac', ...(opts.vms ?? []), '--timeout', String(timeoutSec)), 30_000 + timeoutSec * 1000, [0, 1]);
  }

  /** hypervisor -> hypervisor -> its tunnel IP answered a ping from the other's namespace */
  underlayMatrix(): Promise<Record<string, Record<string, boolean>>> {
    return scriptJson(this.args('underlay'), 60_000, [0, 1]);
  }

  /** Starts tcpdump on every hypervisor uplink (or zone bridge) in the router namespace; resolves once all listen. */
  async startCapture(name: string, opts: { where?: CaptureWhere; filter?: string } = {}): Promise<UnderlayCapture> {
    const args = this.args('capture', 'start', name, '--where', opts.where ?? 'uplinks', ...(opts.filter ? ['--filter', opts.filter] : []));
    const manifest = await scriptJson<CaptureManifest>(args, 30_000);
    return new UnderlayCapture(this, manifest);
  }

  /** @internal used by UnderlayCapture */
  stopCapture(name: string): Promise<CaptureManifest> {
    return scriptJson(this.args('capture', 'stop', name), 30_000);
  }

  /** A TCP listener (nc -lk) in a VM until ncStop or down. */
  async ncListen(vm: string, port: number): Promise<void> {
    await scriptJson(this.args('nc', 'listen', vm, String(port)), 30_000);
  }

  /** Whether a TCP connection from `src` to target:port completes within timeoutSec (nc -z). */
  ncCheck(src: string, target: string, port: number, timeoutSec = 2): Promise<NcResult> {
    return scriptJson(this.args('nc', 'check', src, target, String(port), '--timeout', String(timeoutSec)), 30_000 + timeoutSec * 1000, [0, 1]);
  }

  async ncStop(vm?: string, port?: number): Promise<void> {
    await scriptJson(this.args('nc', 'stop', ...(vm ? [vm] : []), ...(port !== undefined ? [String(port)] : [])), 30_000);
  }

  /** Physically moves a VM to another hypervisor (veth out of the old br-int, a new pair into the new one, same MAC/IP). */
  move(port: string, hypervisor: string): Promise<{ port: string; from: string; to: string; moved: boolean }> {
    return scriptJson(this.args('move', port, hypervisor), 30_000);
  }

  /**
   * Starts `ping -D -i intervalMs` from a VM to another VM's IP (or an IP) and resolves once the
   * first reply is in (or after 5 s); stop() it to get the longest gap between replies.
   */
  async startPing(src: string, target: string, intervalMs = 50): Promise<ContinuousPing> {
    const st = this.state();
    const vm = st.vms[src];
    if (!vm) throw new Error(`no VM ${src}`);
    return startPingIn(vm.netns, src, st.vms[target]?.ip ?? target, intervalMs);
  }

  /** Runs a command in a node's namespace (a hypervisor gets OVS_RUNDIR of its own OVS). */
  async exec(node: string, command: readonly string[], timeoutMs = 30_000): Promise<ScriptResult> {
    return runScript(this.args('exec', node, ...command), timeoutMs);
  }
}

/**
 * Brings the scenario up from a model file (YAML or JSON). Whatever an earlier crashed run left
 * in the same state directory is torn down first.
 */
export async function overlayUp(modelFile: string, opts: OverlayOptions = {}): Promise<OverlayScenario> {
  const stateDir = opts.stateDir ?? join(TEST_STATE_DIR, 'overlay');
  const prefix = opts.prefix ?? DEFAULT_PREFIX;
  await overlayDown(stateDir, prefix);
  const up = await scriptJson<UpResult>(
    [...scenarioArgs(stateDir, prefix), 'up', modelFile, '--controller-mode', opts.mode ?? 'dial', '--addressing', opts.addressing ?? 'static'],
    120_000,
  );
  return new OverlayScenario(stateDir, prefix, up);
}

/** Tears a scenario down by its pidfiles and names; idempotent, also after a crash. */
export function overlayDown(stateDir: string, prefix = DEFAULT_PREFIX): Promise<DownReport> {
  return scriptJson([...scenarioArgs(stateDir, prefix), 'down'], 60_000);
}

export function readHypervisorsJson(path: string): HypervisorsJson {
  return JSON.parse(readFileSync(path, 'utf8')) as HypervisorsJson;
}

// ---- the controller ----

/** The overlay apps, in pipeline order within their stages (docs/pipeline.md). */
export const OVERLAY_APPS = ['tunnel-mesh', 'arp-responder', 'distributed-router', 'acl'] as const;
/** The overlay apps and DHCP from the model (docs/dhcp.md): for a scenario with `addressing: 'dhcp'` */
export const DHCP_OVERLAY_APPS = ['dhcp-responder', ...OVERLAY_APPS] as const;

/** The compiled command line; `npm run build` (tsc) makes it. */
export const ZONEMESH_MAIN = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

export interface ControllerOptions {
  /** where the run config, log, pidfile and control socket go (default: the scenario's state directory + /controller) */
  dir?: string;
  apps?: readonly string[];
  logLevel?: 'debug' | 'info' | 'warn';
  /** keep running after this process exits (the demo): own process group, not waited for */
  detached?: boolean;
  /** how long to wait until every switch is connected and in sync and every tunnel port is ready (default 30 s) */
  syncTimeoutMs?: number;
  /** the run config's `settings` (app name → its settings) */
  settings?: Record<string, unknown>;
  /** serve the live page (run config `http`) */
  http?: HttpSettings;
  /** serve Prometheus metrics (run config `metrics`) */
  metrics?: MetricsSettings;
}

export interface RunningController {
  readonly pid: number;
  /** the model file the controller watches: edit it (atomically) to change the network */
  readonly modelFile: string;
  /** the run config written for it: apps, model, dial/listen targets, each hypervisor's ovsdb, control socket */
  readonly configFile: string;
  /** `zonemesh flows --control unix:PATH` asks it */
  readonly controlSocket: string;
  /** its JSON log (stdout and stderr) */
  readonly logFile: string;
  readonly pidFile: string;
  /** desired and installed flows of every connected switch, from the control socket */
  flows(): Promise<SwitchFlows[]>;
  /** Resolves once every switch of hypervisors.json is connected and in sync (throws after timeoutMs). */
  waitInSync(timeoutMs?: number): Promise<SyncStatus>;
  /** SIGTERM, then SIGKILL after 5 s; idempotent */
  stop(): Promise<void>;
}

export interface SyncStatus {
  /** dpid ('0x…' as in hypervisors.json) → connected and nothing to send */
  switches: Record<string, { connected: boolean; inSync: boolean; desired: number; installed: number }>;
  /** hypervisors whose tunnel port the controller reported ready */
  tunnelPorts: string[];
  elapsedMs: number;
}

/** The run config for the overlay on a scenario: every hypervisor's OpenFlow target and OVSDB socket from hypervisors.json. */
export function overlayRunConfig(modelFile: string, hypervisors: HypervisorsJson, control: string, apps: readonly string[] = OVERLAY_APPS, logLevel = 'info') {
  const eps = Object.values(hypervisors);
  return {
    apps: [...apps],
    model: resolve(modelFile),
    // dial mode: connect to each bridge's br-int.mgmt; listen mode: each bridge connects to us
    dial: eps.filter((h) => h.mode === 'dial').map((h) => h.openflow),
    listen: eps.filter((h) => h.mode === 'listen').map((h) => `unix:${h.socket}`),
    hypervisors: Object.fromEntries(Object.entries(hypervisors).map(([name, h]) => [name, { ovsdb: h.ovsdb }])),
    control,
    logLevel,
  };
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function logTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** The hypervisors whose tunnel port the controller's log reports ready (the tunnel-mesh app provisions them through OVSDB). */
export function tunnelPortsReady(logFile: string): string[] {
  const ready = new Set<string>();
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return [];
  }
  for (const line of text.split('\n')) {
    if (!line.includes('tunnel port ready')) continue;
    try {
      const hv = (JSON.parse(line) as { hypervisor?: string }).hypervisor;
      if (hv) ready.add(hv);
    } catch {
      // a line cut by a concurrent write: read again on the next poll
    }
  }
  return [...ready].sort();
}

/** When (ms since the epoch) the controller's log first says 'model applied' at or after `since`. */
export function modelAppliedAt(logFile: string, since: number): number | undefined {
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('"model applied"')) continue;
    const { time } = JSON.parse(line) as { time: number };
    if (time >= since) return time;
  }
  return undefined;
}

/**
 * Starts zonemesh's controller (`node dist/src/cli/main.js run --config …`) on a model file with the
 * overlay apps, connected to every hypervisor listed in hypervisors.json (dial: connect to its
 * `openflow` target, the bridge's br-int.mgmt; listen: listen on its `socket`), each hypervisor's
 * `ovsdb` socket handed over through the run config's `hypervisors` (the model file stays the
 * user's desired state, and the controller watches it). Resolves once every switch is connected
 * and in sync and every tunnel port is provisioned. The process has a pidfile in `dir`.
 */
export async function startController(modelFile: string, hypervisorsJson: string, opts: ControllerOptions = {}): Promise<RunningController> {
  const hypervisors = readHypervisorsJson(hypervisorsJson);
  const dir = opts.dir ?? join(dirname(hypervisorsJson), 'controller');
  mkdirSync(dir, { recursive: true });
  const configFile = join(dir, 'run.json');
  const logFile = join(dir, 'zonemesh.log');
  const pidFile = join(dir, 'zonemesh.pid');
  const controlSocket = join(dir, 'control.sock');
  const config = {
    ...overlayRunConfig(modelFile, hypervisors, controlSocket, opts.apps, opts.logLevel),
    ...(opts.settings && { settings: opts.settings }),
    ...(opts.http && { http: opts.http }),
    ...(opts.metrics && { metrics: opts.metrics }),
  };
  writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
  const log = openSync(logFile, 'w');
  const child = spawn(process.execPath, [ZONEMESH_MAIN, 'run', '--config', configFile], {
    stdio: ['ignore', log, log],
    detached: opts.detached ?? false,
    cwd: REPO_ROOT,
  });
  closeSync(log);
  if (child.pid === undefined) {
    const error = await new Promise<Error>((r) => child.once('error', r));
    throw new Error(`cannot start the controller: ${error.message}`);
  }
  const pid = child.pid;
  writeFileSync(pidFile, `${pid}\n`);
  let exited = false;
  child.once('exit', () => {
    exited = true;
    rmSync(pidFile, { force: true });
  });
  if (opts.detached) child.unref();

  const handle: RunningController = {
    pid,
    modelFile: config.model,
    configFile,
    controlSocket,
    logFile,
    pidFile,
    async flows() {
      const r = await queryControl(controlSocket, { op: 'flows' });
      if (!r.ok) throw new Error(`controller: ${r.error}`);
      return r.switches;
    },
    async waitInSync(timeoutMs = opts.syncTimeoutMs ?? 30_000) {
      const t0 = Date.now();
      const wanted = Object.values(hypervisors).map((h) => BigInt(h.datapathId));
      const withOvsdb = Object.keys(hypervisors).sort();
      return waitFor(
        'every switch connected and in sync, every tunnel port ready',
        async (): Promise<SyncStatus> => {
          if (exited || !alive(pid)) throw new Error(`the controller exited; its log ends:\n${logTail(logFile)}`);
          let switches: SwitchFlows[] = [];
          if (existsSync(controlSocket)) switches = await handle.flows().catch(() => []);
          const status: SyncStatus = { switches: {}, tunnelPorts: tunnelPortsReady(logFile), elapsedMs: Date.now() - t0 };
          for (const dpid of wanted) {
            const s = switches.find((x) => BigInt(`0x${x.dpid}`) === dpid);
            const inSync = s !== undefined && s.diff.adds + s.diff.modifies + s.diff.deletes === 0;
            status.switches[`0x${dpid.toString(16).padStart(16, '0')}`] = { connected: s !== undefined, inSync, desired: s?.desired.length ?? 0, installed: s?.installed.length ?? 0 };
          }
          return status;
        },
        (st) => Object.values(st.switches).every((s) => s.inSync && s.desired > 0) && withOvsdb.every((hv) => st.tunnelPorts.includes(hv)),
        { timeoutMs, intervalMs: 200, describe: (st) => `${JSON.stringify(st)}; log:\n${logTail(logFile)}` },
      );
    },
    async stop() {
      if (exited || !alive(pid)) return;
      const gone = new Promise<void>((r) => (exited ? r() : child.once('exit', () => r())));
      process.kill(pid, 'SIGTERM');
      const timer = setTimeout(() => alive(pid) && process.kill(pid, 'SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    },
  };
  try {
    await handle.waitInSync();
  } catch (e) {
    await handle.stop();
    throw e;
  }
  return handle;
}

// ---- what the model allows ----

/** icmp6 stands for IPv6 traffic: the oracle models IPv6 pings only */
export type Proto = 'icmp' | 'icmp6' | 'tcp' | 'udp';

function remoteMatches(model: NetworkModel, rule: AclRule, peer: VmPort, proto: Proto): boolean {
  const { remote } = rule;
  if (remote === undefined) return true;
  if ('subnet' in remote) return remote.subnet === peer.subnet;
  // a CIDR names its family (docs/pipeline.md, acl.rules): it never matches the other one
  if (proto === 'icmp6') {
    const cidr = parseIpv6Cidr(remote.cidr);
    const ip = parseIpv6Address(portIpv6Of(model, peer) ?? '');
    return cidr !== undefined && ip !== undefined && ipv6CidrContains(cidr, ip);
  }
  const cidr = parseCidr(remote.cidr);
  const ip = parseIpv4(ipv4Of(peer));
  return cidr !== undefined && ip !== undefined && cidrContains(cidr, ip);
}

/** The protocol and destination port part of a rule: port ranges apply to tcp and udp only (validation refuses them elsewhere). */
function protoMatches(rule: AclRule, proto: Proto, port?: number): boolean {
  if (rule.protocol !== 'any' && rule.protocol !== proto) return false;
  return !rule.ports || (port !== undefined && port >= rule.ports.from && port <= rule.ports.to);
}

/** What decides whether `src` may open a flow to `dst`: the first matching rule, or the tier default. */
export type AclDecision =
  | { allowed: boolean; by: 'rule'; rule: AclRule }
  | { allowed: boolean; by: 'same-tier' | 'no-rule' | 'other-vpc' };

/**
 * Whether the model lets `src` open a `proto` flow (to `port`) to `dst`, as the acl app compiles
 * it (src/apps/acl/flows.ts): same VPC only; the VPC's rules in list order, ingress and egress
 * alike, and the first that matches decides (an ingress rule of the destination's tier with the
 * source as remote, an egress rule of the source's tier with the destination as remote); no match:
 * allowed within a tier, denied between tiers. ACLs are stateful: replies of an allowed flow pass.
 */
export function aclDecision(model: NetworkModel, src: VmPort, dst: VmPort, proto: Proto, port?: number): AclDecision {
  if (src.vpc !== dst.vpc) return { allowed: false, by: 'other-vpc' };
  const rule = model.acls.find(
    (a) =>
      a.vpc === src.vpc &&
      protoMatches(a, proto, port) &&
      (a.direction === 'ingress'
        ? a.subnet === dst.subnet && (a.port === undefined || a.port === dst.name) && remoteMatches(model, a, src, proto)
        : a.subnet === src.subnet && (a.port === undefined || a.port === src.name) && remoteMatches(model, a, dst, proto)),
  );
  if (rule) return { allowed: rule.action === 'allow', by: 'rule', rule };
  return src.subnet === dst.subnet ? { allowed: true, by: 'same-tier' } : { allowed: false, by: 'no-rule' };
}

export function allowed(model: NetworkModel, src: VmPort, dst: VmPort, proto: Proto, port?: number): boolean {
  return aclDecision(model, src, dst, proto, port).allowed;
}

export function modelPort(model: NetworkModel, name: string): VmPort {
  const p = model.ports.find((x) => x.name === name);
  if (!p) throw new Error(`no port ${name} in the model`);
  return p;
}

export function subnetOf(model: NetworkModel, port: VmPort): Subnet {
  return model.subnets.find((s) => s.vpc === port.vpc && s.name === port.subnet)!;
}

/** a port's IPv6 address in the model (given or EUI-64), undefined on an IPv4-only subnet */
export function portIpv6Of(model: NetworkModel, port: VmPort): string | undefined {
  return portIpv6(port, subnetOf(model, port));
}

/** a VM's IPv6 address in the model; throws when it has none */
export function vmIpv6(model: NetworkModel, name: string): string {
  const address = portIpv6Of(model, modelPort(model, name));
  if (!address) throw new Error(`${name} has no IPv6 address in the model`);
  return address;
}

/** A ping reaches `target` (the owner of the IP in the source's VPC); pinging oneself always works. */
export function expectedPing(model: NetworkModel, r: PingResult, family: IpFamily = 4): boolean {
  return r.target === 'self' || allowed(model, modelPort(model, r.src), modelPort(model, r.target), family === 4 ? 'icmp' : 'icmp6');
}

/** Every pair whose reachability differs from what the model says, described. */
export function matrixMismatches(model: NetworkModel, m: PingMatrix): string[] {
  return m.pairs
    .filter((r) => r.ok !== expectedPing(model, r, m.family))
    .map((r) => `${r.src}->${r.dst}(${r.ip}${r.target !== r.dst ? ` = ${r.target}` : ''}): ${r.ok ? 'reachable' : 'unreachable'}, model says ${r.ok ? 'no' : 'yes'}`);
}

/**
 * The ping matrix of one family once it matches the model (flows and neighbour state may still be
 * settling), else the last one after `timeoutMs`: check it with matrixMismatches.
 */
export async function settledPingMatrix(scenario: OverlayScenario, model: NetworkModel, opts: { family?: IpFamily; count?: number; timeoutMs?: number } = {}): Promise<PingMatrix> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    const m = await scenario.pingMatrix({ count: opts.count ?? 3, family: opts.family ?? 4 });
    if (matrixMismatches(model, m).length === 0 || Date.now() > deadline) return m;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Whether any subnet of the model has an IPv6 prefix (its VMs then take SLAAC and answer ping6). */
export function hasIpv6(model: NetworkModel): boolean {
  return model.subnets.some((s) => s.ipv6 !== undefined);
}

// ---- SLAAC ----

/**
 * Every VM of a dual-stack subnet whose IPv6 after a SLAAC run is not what the model gives it,
 * described: exactly its model address (EUI-64 or given) in the /64, a default route via its
 * router's link-local address, the RA's MTU 1400.
 */
export function slaacMismatches(model: NetworkModel, run: SlaacRun): string[] {
  return model.ports.flatMap((port) => {
    const address = portIpv6Of(model, port);
    if (address === undefined) return [];
    const r = run.vms[port.name];
    if (!r) return [`${port.name}: no SLAAC result`];
    const router = routerLinkLocal(subnetOf(model, port));
    const problems = [
      r.inet6.join(',') !== `${address}/64` && `addresses ${r.inet6.join(', ') || 'none'}, the model says ${address}/64`,
      r.tentative && 'address still tentative (DAD)',
      r.defaultVia !== router && `default route via ${r.defaultVia ?? 'none'}, the router is ${router}`,
      r.mtu !== OVERLAY_MTU && `MTU ${r.mtu}, expected ${OVERLAY_MTU}`,
    ].filter((p): p is string => typeof p === 'string');
    return problems.length ? [`${port.name}: ${problems.join('; ')}`] : [];
  });
}

// ---- DHCP ----

/**
 * Every VM of a DHCP run that did not get what the model gives its port, described: a lease, the
 * port's address with its subnet's mask, the gateway as router and default route, MTU 1400 on eth0.
 */
export function dhcpMismatches(model: NetworkModel, run: DhcpRun): string[] {
  return Object.values(run.vms).flatMap((r) => {
    const port = modelPort(model, r.vm);
    const subnet = ipv4InfoOf(subnetInfo(subnetOf(model, port)));
    const want = { inet: `${ipv4Of(port)}/${subnet.prefix}`, mask: subnet.mask, router: subnet.gateway, mtu: OVERLAY_MTU };
    const got = { inet: r.interface.inet, mask: r.lease?.mask, router: r.lease?.router, defaultVia: r.interface.defaultVia, mtu: r.interface.mtu };
    const problems = [
      !r.ok && `no lease (${r.client} exit ${r.exitCode} after ${r.elapsedMs} ms: ${r.output.slice(-2).join(' / ')})`,
      got.inet !== want.inet && `eth0 ${got.inet ?? 'has no address'}, the model says ${want.inet}`,
      got.mask !== want.mask && `mask ${got.mask}, the model says ${want.mask}`,
      got.router !== want.router && `router ${got.router}, the model says ${want.router}`,
      got.defaultVia !== want.router && `default route via ${got.defaultVia}, the model says ${want.router}`,
      got.mtu !== want.mtu && `MTU ${got.mtu}, expected ${want.mtu}`,
    ].filter((p): p is string => typeof p === 'string');
    return problems.length ? [`${r.vm} (${r.client}): ${problems.join('; ')}`] : [];
  });
}

// ---- continuous ping ----

export interface PingRun {
  src: string;
  ip: string;
  intervalMs: number;
  sent: number;
  received: number;
  /** the longest time between two consecutive replies (ms): the interruption, plus one interval */
  longestGapMs: number;
  /** the echo sequence numbers that got no reply (the last one sent excepted) */
  lost: number[];
  /** the gap's ends, seconds since the epoch (ping -D) */
  gap?: { from: number; to: number };
}

/** ping -D output: '[1795444486.123456] 64 bytes from 10.1.2.12: icmp_seq=5 ttl=63 time=0.51 ms' */
export function analysePing(output: string, src: string, ip: string, intervalMs: number): PingRun {
  const replies = new Map<number, number>();
  for (const m of output.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+) /gm)) {
    const seq = Number(m[2]);
    if (!replies.has(seq)) replies.set(seq, Number(m[1]));
  }
  const stats = /(\d+) packets transmitted, (\d+) received/.exec(output);
  const sent = stats ? Number(stats[1]) : Math.max(0, ...replies.keys());
  const times = [...replies.entries()].sort((a, b) => a[0] - b[0]).map(([, at]) => at);
  let longest = 0;
  let gap: PingRun['gap'];
  for (let i = 1; i < times.length; i++) {
    const d = times[i]! - times[i - 1]!;
    if (d * 1000 > longest) {
      longest = d * 1000;
      gap = { from: times[i - 1]!, to: times[i]! };
    }
  }
  // the last request may still have been on its way when ping was stopped: not lost
  const lost: number[] = [];
  for (let seq = 1; seq < sent; seq++) if (!replies.has(seq)) lost.push(seq);
  return { src, ip, intervalMs, sent, received: replies.size, longestGapMs: Math.round(longest), lost, ...(gap && { gap }) };
}

/**
 * Starts `ping -D -i intervalMs` in a namespace (`src` names it in the results) and resolves once the
 * first reply is in (or after 5 s); stop() it to get the longest gap between replies.
 */
export async function startPingIn(netns: string, src: string, ip: string, intervalMs = 50): Promise<ContinuousPing> {
  const child = spawnTracked('ip', ['netns', 'exec', netns, 'ping', '-n', '-D', '-i', String(intervalMs / 1000), ip]);
  const ping = new ContinuousPing(child, src, ip, intervalMs);
  const deadline = Date.now() + 5_000;
  while (ping.received === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return ping;
}

/** The ICMP echo requests a namespace's kernel has received (/proc/net/snmp is per namespace). */
export async function echoRequestsReceived(netns: string): Promise<number> {
  const [names, values] = (await run('ip', ['netns', 'exec', netns, 'cat', '/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Icmp:'));
  const at = names?.split(' ').indexOf('InEchos') ?? -1;
  if (at < 0 || !values) throw new Error(`no Icmp InEchos in ${netns}'s /proc/net/snmp`);
  return Number(values.split(' ')[at]);
}

/** A ping running in a namespace until stopped (SIGINT), then analysed. */
export class ContinuousPing {
  private output = '';
  private readonly done: Promise<void>;

  constructor(
    private readonly child: ChildProcess,
    readonly src: string,
    readonly ip: string,
    readonly intervalMs: number,
  ) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    this.done = new Promise((r) => child.once('close', () => r()));
  }

  /** ping's output so far */
  get text(): string {
    return this.output;
  }

  /** replies so far */
  get received(): number {
    return (this.output.match(/ bytes from /g) ?? []).length;
  }

  async stop(): Promise<PingRun> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGINT');
    await this.done;
    return analysePing(this.output, this.src, this.ip, this.intervalMs);
  }
}

// ---- the underlay check ----

/** One echo request or reply of a ping, as captured inside tunnels. */
interface EchoSighting {
  frame: TunnelFrame;
  kind: 'request' | 'reply';
  seq: number;
  ttl: number;
}

function echoes(frames: readonly TunnelFrame[], a: string, b: string, vni: number, identifierOk: (id: number) => boolean = () => true): EchoSighting[] {
  return innerFlow(frames, a, b, true).flatMap((frame) => {
    const ip = innerLayer(frame, 'ipv4')!;
    const icmp = innerLayer(frame, 'icmp');
    const echo = innerLayer(frame, 'icmp-echo');
    if (!icmp || !echo || frame.vni !== vni || !identifierOk(echo.identifier)) return [];
    if (icmp.icmpType !== 8 && icmp.icmpType !== 0) return [];
    return [{ frame, kind: icmp.icmpType === 8 ? 'request' : 'reply', seq: echo.sequence, ttl: ip.ttl } as EchoSighting];
  });
}

export interface DirectPathReport {
  src: string;
  dst: string;
  /** echo requests sent and replies received by ping */
  sent: number;
  received: number;
  /** each problem found; empty = every request and reply went once, directly, from the source hypervisor's tunnel IP to the destination's */
  problems: string[];
  /** 'hv1 172.16.1.11 -> 172.16.2.14 (seen on hv1, hv4), 3 requests, TTL 63' */
  summary: string[];
}

/**
 * Checks a routed cross-hypervisor ping in a capture of every uplink: each echo request appears
 * exactly once on the source hypervisor's uplink and once on the destination's, nowhere else,
 * outer source = the source hypervisor's tunnel IP, outer destination = the destination's, in the
 * VPC's VNI with the destination port's egress key in the Geneve option (so the receiving
 * hypervisor delivers without a lookup), already routed (TTL 63); the replies the same way back.
 */
export function directPathCheck(state: OverlayState, model: NetworkModel, frames: readonly TunnelFrame[], src: string, dst: string, ping: PingResult): DirectPathReport {
  const [a, b] = [modelPort(model, src), modelPort(model, dst)];
  const vni = model.vpcs.find((v) => v.name === a.vpc)!.vni;
  const tip = (hv: string) => state.hypervisors[hv]!.tunnelIp;
  const problems: string[] = [];
  const summary: string[] = [];
  const seen = echoes(frames, ipv4Of(a), ipv4Of(b), vni);
  const legs = [
    { kind: 'request' as const, from: a, to: b, expected: ping.sent },
    { kind: 'reply' as const, from: b, to: a, expected: ping.received },
  ];
  for (const leg of legs) {
    const mine = seen.filter((e) => e.kind === leg.kind && innerLayer(e.frame, 'ipv4')!.src === leg.from.ip);
    const seqs = [...new Set(mine.map((e) => e.seq))].sort((x, y) => x - y);
    if (seqs.length !== leg.expected) problems.push(`${leg.expected} echo ${leg.kind}s ${leg.from.name} -> ${leg.to.name} expected in tunnels, saw ${seqs.length} (seq ${seqs.join(',')})`);
    for (const seq of seqs) {
      const copies = mine.filter((e) => e.seq === seq);
      const where = copies.map((e) => e.frame.at).sort();
      const want = [leg.from.hypervisor, leg.to.hypervisor].sort();
      if (where.join() !== want.join()) problems.push(`${leg.kind} seq ${seq} seen on ${where.join(', ')}; expected once on ${want.join(' and ')}`);
      for (const e of copies) {
        const f = e.frame;
        if (f.outerSrc !== tip(leg.from.hypervisor) || f.outerDst !== tip(leg.to.hypervisor)) {
          problems.push(`${leg.kind} seq ${seq} at ${f.at}: ${f.outerSrc} -> ${f.outerDst}, expected ${tip(leg.from.hypervisor)} -> ${tip(leg.to.hypervisor)}`);
        }
        if (e.ttl !== 63) problems.push(`${leg.kind} seq ${seq} at ${f.at}: inner TTL ${e.ttl}, expected 63 (routed once, at the source)`);
        if (f.egressKey !== keyOf(leg.to, PORT_KEYS)) problems.push(`${leg.kind} seq ${seq} at ${f.at}: egress key ${f.egressKey}, expected ${keyOf(leg.to, PORT_KEYS)} (${leg.to.name}'s)`);
        if (f.kind !== 'geneve') problems.push(`${leg.kind} seq ${seq} at ${f.at}: ${f.kind}, expected geneve`);
      }
    }
    summary.push(
      `${leg.kind === 'request' ? 'requests' : 'replies '} ${leg.from.name}@${leg.from.hypervisor} ${tip(leg.from.hypervisor)} -> ${leg.to.name}@${leg.to.hypervisor} ${tip(leg.to.hypervisor)}: ` +
        `${seqs.length} in tunnels, ${mine.length} sightings on ${[...new Set(mine.map((e) => e.frame.at))].sort().join(' + ') || 'no uplink'}, VNI ${vni}, egress key ${[...new Set(mine.map((e) => e.frame.egressKey))].join('/') || '-'}, inner TTL ${[...new Set(mine.map((e) => e.ttl))].join('/') || '-'}`,
    );
  }
  return { src, dst, sent: ping.sent, received: ping.received, problems, summary };
}

/** Tunnelled frames whose inner packet is ARP. */
export function arpInTunnels(frames: readonly TunnelFrame[]): TunnelFrame[] {
  return frames.filter((f) => innerLayer(f, 'arp') !== undefined);
}

/**
 * Echo requests of denied pings (each pair: a VM and the VM of its own VPC it pinged) found in a
 * tunnel, in the source's VPC key: the ACL drops at the source, so there must be none.
 */
export function deniedInTunnels(model: NetworkModel, pairs: readonly { src: string; dst: string }[], frames: readonly TunnelFrame[]): string[] {
  const found: string[] = [];
  for (const pair of pairs) {
    const [a, b] = [modelPort(model, pair.src), modelPort(model, pair.dst)];
    const vni = model.vpcs.find((v) => v.name === a.vpc)!.vni;
    const requests = echoes(frames, ipv4Of(a), ipv4Of(b), vni).filter((e) => e.kind === 'request' && innerLayer(e.frame, 'ipv4')!.src === a.ip);
    for (const e of requests) found.push(`${pair.src} -> ${pair.dst} echo request seq ${e.seq} at ${e.frame.at} (${e.frame.outerSrc} -> ${e.frame.outerDst})`);
  }
  return found;
}

// ---- captures ----

/** One encapsulated frame seen on the underlay. */
export interface TunnelFrame {
  /** capture point: hypervisor (uplinks) or zone (zones) */
  at: string;
  /** index of the frame in its pcap */
  index: number;
  outerSrc: string;
  outerDst: string;
  kind: 'geneve' | 'vxlan';
  vni: number;
  /** the value of the overlay's egress-key Geneve option (src/apps/tunnel-mesh/geneve-option.ts), if the frame has it */
  egressKey: number | undefined;
  /** the decapsulated frame's layers, from its Ethernet header on */
  inner: Layer[];
}

export interface CapturedFrame {
  at: string;
  index: number;
  packet: ParsedPacket | undefined;
  /** why the frame did not parse */
  error?: string;
}

/** A running (then stopped) underlay capture, and readers for its pcaps. */
export class UnderlayCapture {
  private stopped?: CaptureManifest;

  constructor(
    private readonly scenario: OverlayScenario,
    readonly manifest: CaptureManifest,
  ) {}

  /** Stops every tcpdump (the pcaps are complete afterwards); idempotent. */
  async stop(): Promise<CaptureManifest> {
    this.stopped ??= await this.scenario.stopCapture(this.manifest.name);
    return this.stopped;
  }

  /** Every frame of every pcap, parsed (stop first). */
  frames(): CapturedFrame[] {
    if (!this.stopped) throw new Error(`capture ${this.manifest.name} is still running: stop() it first`);
    const out: CapturedFrame[] = [];
    for (const [at, file] of Object.entries(this.stopped.files)) {
      readPcapFrames(file.pcap).forEach((buf, index) => {
        const r = tryParsePacket(buf);
        out.push(r.ok ? { at, index, packet: r.packet } : { at, index, packet: undefined, error: r.error.message });
      });
    }
    return out;
  }

  /** The Geneve and VXLAN frames, with their outer addresses, VNI and inner layers. */
  tunnelFrames(): TunnelFrame[] {
    return this.frames().flatMap(({ at, index, packet }) => {
      if (!packet) return [];
      const i = packet.layers.findIndex((l) => l.type === 'geneve' || l.type === 'vxlan');
      if (i < 0) return [];
      const tunnel = packet.layers[i] as Extract<Layer, { type: 'geneve' | 'vxlan' }>;
      const outer = findLayer(packet, 'ipv4');
      if (!outer) return [];
      const option = tunnel.type === 'geneve' ? tunnel.options.find((o) => o.optionClass === EGRESS_KEY_OPTION.optionClass && o.optionType === EGRESS_KEY_OPTION.optionType) : undefined;
      const egressKey = option?.data.length === EGRESS_KEY_OPTION.optionLength ? option.data.readUInt32BE(0) : undefined;
      return [{ at, index, outerSrc: outer.src, outerDst: outer.dst, kind: tunnel.type, vni: tunnel.vni, egressKey, inner: packet.layers.slice(i + 1) }];
    });
  }
}

/** Frames of a capture that carry DHCP (UDP port 67 or 68), outside or inside a tunnel, described. */
export function dhcpFrames(capture: UnderlayCapture): string[] {
  const isDhcp = (l: Layer) => l.type === 'udp' && [l.srcPort, l.dstPort].some((p) => p === 67 || p === 68);
  return capture.frames().flatMap(({ at, index, packet }) => {
    if (!packet?.layers.some(isDhcp)) return [];
    const tunnel = packet.layers.find((l) => l.type === 'geneve' || l.type === 'vxlan');
    return [`${at}#${index}: DHCP ${tunnel ? `inside ${tunnel.type} VNI ${tunnel.vni}` : 'on the underlay'}`];
  });
}

/** The first inner layer of a type in a tunnelled frame. */
export function innerLayer<T extends Layer['type']>(frame: TunnelFrame, type: T): Extract<Layer, { type: T }> | undefined {
  return frame.inner.find((l) => l.type === type) as Extract<Layer, { type: T }> | undefined;
}

/** Tunnelled frames whose inner IPv4 packet goes from srcIp to dstIp (either direction with `both`). */
export function innerFlow(frames: readonly TunnelFrame[], srcIp: string, dstIp: string, both = false): TunnelFrame[] {
  return frames.filter((f) => {
    const ip = innerLayer(f, 'ipv4');
    if (!ip) return false;
    return (ip.src === srcIp && ip.dst === dstIp) || (both && ip.src === dstIp && ip.dst === srcIp);
  });
}

/** Polls `probe` until it returns a value `done` accepts, or throws with the last value seen. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  opts: { timeoutMs?: number; intervalMs?: number; describe?: (value: T) => string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`${what}: not reached within ${opts.timeoutMs ?? 30_000} ms; last: ${opts.describe ? opts.describe(value) : JSON.stringify(value)}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 500));
  }
}
