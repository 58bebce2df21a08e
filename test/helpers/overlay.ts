/**
 * The multi-zone overlay scenario for system tests: brings mininet/zonemesh_net.py's topology
 * up and down, and wraps its probes (VM ping matrix, underlay ping matrix, underlay captures,
 * TCP checks with nc, VM move). Every run of the script is a tracked process, and everything it
 * leaves running has a pidfile under the scenario's state directory, which lies under
 * TEST_STATE_DIR: scripts/test.sh kills it whatever way a test ends, and deletes the zm* netns.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findLayer, tryParsePacket, type Layer, type ParsedPacket } from '../../src/packet';
import { readPcapFrames } from '../packet/helpers';
import { REPO_ROOT } from './paths';
import { CommandError, TEST_STATE_DIR, spawnTracked } from './run';

export const OVERLAY_SCRIPT = join(REPO_ROOT, 'mininet', 'zonemesh_net.py');
/** Mininet imports only under the Debian python */
export const MININET_PYTHON = '/usr/bin/python3';
export const TWO_ZONES_MODEL = join(REPO_ROOT, 'models', 'two-zones.yaml');

export type ControllerMode = 'dial' | 'listen';

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
}

/** state.json: every name and path of a scenario. */
export interface OverlayState {
  version: number;
  prefix: string;
  stateDir: string;
  model: string | null;
  controllerMode: ControllerMode;
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

export interface PingMatrix {
  vms: string[];
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

export interface CaptureManifest {
  name: string;
  where: 'uplinks' | 'zones';
  filter: string | null;
  netns: string;
  /** keyed by hypervisor (uplinks) or zone (zones) */
  files: Record<string, { iface: string; pcap: string; pidfile: string; log: string; pid: number; frames?: number }>;
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
  pingMatrix(opts: { count?: number; wait?: number; pairs?: 'all' | 'vpc' } = {}): Promise<PingMatrix> {
    const args = this.args('pingmatrix', '--json', '--count', String(opts.count ?? 2), '--wait', String(opts.wait ?? 1), '--pairs', opts.pairs ?? 'all');
    return scriptJson(args, 120_000);
  }

  /** `target`: a VM name (its IP) or an IP. */
  ping(src: string, target: string, count = 3): Promise<PingResult> {
    return scriptJson(this.args('ping', src, target, '--count', String(count)), 60_000, [0, 1]);
  }

  /** hypervisor -> hypervisor -> its tunnel IP answered a ping from the other's namespace */
  underlayMatrix(): Promise<Record<string, Record<string, boolean>>> {
    return scriptJson(this.args('underlay'), 60_000, [0, 1]);
  }

  /** Starts tcpdump on every hypervisor uplink (or zone bridge) in the router namespace; resolves once all listen. */
  async startCapture(name: string, opts: { where?: 'uplinks' | 'zones'; filter?: string } = {}): Promise<UnderlayCapture> {
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
    [...scenarioArgs(stateDir, prefix), 'up', modelFile, '--controller-mode', opts.mode ?? 'dial'],
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

export interface RunningController {
  stop(): Promise<void>;
}

/**
 * Starts zonemesh's controller on a model file, connected to every hypervisor listed in
 * hypervisors.json (dial: connect to `openflow`; listen: listen on `socket`), with its apps
 * (tunnel mesh through `ovsdb`, L2/L3, ARP responder, ACL).
 */
export async function startController(modelFile: string, hypervisorsJson: string): Promise<RunningController> {
  void modelFile;
  void hypervisorsJson;
  throw new Error('controller wiring not available');
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
      return [{ at, index, outerSrc: outer.src, outerDst: outer.dst, kind: tunnel.type, vni: tunnel.vni, inner: packet.layers.slice(i + 1) }];
    });
  }
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
