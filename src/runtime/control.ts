import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { OfSwitchError, formatDpid, removeStaleSocket, type SwitchSession } from '../controller';
import type { DesiredState } from './desired-state';
import { diffFlows } from '../sdk/diff';
import { readInstalledFlows, readInstalledGroups } from './reconciler';
import { OFPFF_SEND_FLOW_REM, OFPP, OFP_NO_BUFFER, encodeMessage, formatInstructions, formatMatch, splitMultipartReply, type FlowStats, type MultipartReply } from '../openflow';
import { documentOf, type ModelDocument, type NetworkModel } from '../model';
import type { Flow } from '../sdk/flow';
import type { Pipeline } from '../sdk/pipeline';
import { ControlSocketError } from './errors';

/**
 * The control endpoint: a Unix socket on which `zonemesh run` answers questions about the running
 * controller. One JSON request line in, one JSON response line out, then the connection closes.
 */
export type ControlRequest =
  | { op: 'flows'; /** see parseDpid; all switches when absent */ dpid?: string }
  /** what `zonemesh trace` simulates: every switch's installed flows as read now, its ports, and the model */
  | { op: 'installed' }
  /** `zonemesh trace --live`: the frame (hex) enters the switch's pipeline at table 0 as if it came in on inPort */
  | { op: 'packet-out'; dpid: string; inPort: number; data: string };

export interface SwitchFlows {
  dpid: string;
  /** `table 0 l2-learning.mac [l2] miss=controller`, one per pipeline table */
  tables: string[];
  /** ovs-ofctl-like lines, table order then priority high to low */
  desired: string[];
  installed: string[];
  /** what a full sync would send now */
  diff: { deletes: number; modifies: number; adds: number };
  /** this controller's role at the switch, as the switch last told it (EQUAL until a role request) */
  role: 'MASTER' | 'SLAVE' | 'EQUAL';
  /** the switch's master election generation id, from its last role reply or status (decimal) */
  generationId?: string;
  /** the controller the election says is master (a controller id), when it knows */
  master?: string;
}

export type ControlResponse = { ok: true; switches: SwitchFlows[] } | { ok: false; error: string };

/** One switch as `installed` reads it. */
export interface InstalledSwitch {
  dpid: string;
  /** as in SwitchFlows */
  tables: string[];
  ports: { name: string; portNo: number }[];
  /**
   * Its flows as the OFPMP_FLOW reply, re-encoded as OpenFlow (split into messages of at most
   * 64 KiB, hex): the wire format is the one serialisation of flows every reader already decodes.
   */
  flowStats: string[];
  /**
   * Its groups as the OFPMP_GROUP_DESC reply, encoded likewise (empty when the switch does not
   * describe its groups); absent from a controller older than this field.
   */
  groupDesc?: string[];
}

export type InstalledResponse = { ok: true; model: ModelDocument | null; switches: InstalledSwitch[] } | { ok: false; error: string };

export type PacketOutResponse = { ok: true } | { ok: false; error: string };

/** The response type of each request. */
export type ResponseTo<R extends ControlRequest> = R extends { op: 'installed' } ? InstalledResponse : R extends { op: 'packet-out' } ? PacketOutResponse : ControlResponse;

export type AnyControlResponse = ControlResponse | InstalledResponse | PacketOutResponse;

/** What the endpoint reads from the runtime. */
export interface ControlSource {
  readonly switches: ReadonlyMap<bigint, SwitchSession>;
  readonly desired: DesiredState;
  readonly pipeline: Pipeline;
  readonly ownedApps: ReadonlySet<number>;
  /** the model in force, if the runtime has one */
  model(): NetworkModel | undefined;
  /** who the election says is master of a switch */
  readonly roles: { masterOf(dpid: bigint): string | undefined };
}

const MAX_REQUEST_BYTES = 4096;
/** a client has this long to send its request line; then it is cut off */
export const CONTROL_IDLE_TIMEOUT_MS = 5_000;

/**
 * The directory of the default control socket: one only this user can write to, since whoever
 * can put a socket there answers `zonemesh flows`. `/run/zonemesh` for root,
 * `$XDG_RUNTIME_DIR/zonemesh` (the user's private runtime directory) otherwise, else a
 * `zonemesh-UID` directory under the temporary directory.
 */
export function defaultControlDir(uid = process.geteuid?.() ?? userInfo().uid, env: NodeJS.ProcessEnv = process.env): string {
  if (uid === 0) return '/run/zonemesh';
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'zonemesh');
  return join(tmpdir(), `zonemesh-${uid}`);
}

/**
 * Refuses the directory of a control socket unless only we (or root) can create or replace
 * entries in it: it must be a real directory (not a symlink), owned by us or by root, and not
 * group- or world-writable. Otherwise another local user could listen at the path first and
 * answer for us, or put a file in the way.
 */
export function checkControlDir(socketPath: string): void {
  const dir = dirname(socketPath);
  let st;
  try {
    st = lstatSync(dir);
  } catch (e) {
    throw new ControlSocketError(`cannot use ${dir} for the control socket: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, socketPath);
  }
  const uid = process.geteuid?.() ?? userInfo().uid;
  const mode = (st.mode & 0o777).toString(8).padStart(3, '0');
  let problem: string | undefined;
  if (!st.isDirectory()) problem = 'is not a directory';
  else if (st.uid !== uid && st.uid !== 0) problem = `is owned by uid ${st.uid}, not by this user (uid ${uid}) or root`;
  else if (st.mode & 0o022) problem = `is writable by other users (mode ${mode})`;
  if (problem) throw new ControlSocketError(`refusing the control socket ${socketPath}: its directory ${dir} ${problem}`, socketPath);
}

/** Creates the control socket's directory (mode 0700) if it is missing, then checks it. */
export function prepareControlDir(socketPath: string): void {
  try {
    mkdirSync(dirname(socketPath), { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new ControlSocketError(`cannot create ${dirname(socketPath)} for the control socket: ${(e as Error).message}`, socketPath);
    }
  }
  checkControlDir(socketPath);
}

/** ovs-ofctl dump-flows style: ` cookie=0x…, duration=1.5s, table=0, n_packets=3, n_bytes=180, priority=100,in_port=1 actions=output:2` */
export function formatFlowLine(f: Omit<Flow, 'table'> & Partial<Pick<FlowStats, 'durationSec' | 'durationNsec' | 'packetCount' | 'byteCount'>>): string {
  const parts = [`cookie=0x${f.cookie.toString(16)}`];
  if (f.durationSec !== undefined) parts.push(`duration=${f.durationSec}.${String(Math.floor((f.durationNsec ?? 0) / 1e6)).padStart(3, '0')}s`);
  parts.push(`table=${f.tableId}`);
  if (f.packetCount !== undefined) parts.push(`n_packets=${f.packetCount}`, `n_bytes=${f.byteCount ?? 0n}`);
  if (f.idleTimeout) parts.push(`idle_timeout=${f.idleTimeout}`);
  if (f.hardTimeout) parts.push(`hard_timeout=${f.hardTimeout}`);
  const match = formatMatch(f.match);
  const flags = f.flags & OFPFF_SEND_FLOW_REM ? 'send_flow_rem ' : '';
  return ` ${parts.join(', ')}, ${flags}priority=${f.priority}${match ? `,${match}` : ''} actions=${formatInstructions(f.instructions)}`;
}

function sortedLines<T extends { tableId: number; priority: number }>(flows: readonly T[], format: (f: T) => string): string[] {
  return [...flows].sort((a, b) => a.tableId - b.tableId || b.priority - a.priority).map(format);
}

async function switchFlows(source: ControlSource, dpid: bigint, session: SwitchSession): Promise<SwitchFlows> {
  const installed = await readInstalledFlows(session);
  const desired = source.desired.flows(dpid);
  const diff = diffFlows(desired, installed, source.ownedApps);
  const master = source.roles.masterOf(dpid);
  return {
    dpid: formatDpid(dpid),
    tables: source.pipeline.describe().split('\n').filter(Boolean),
    desired: sortedLines(desired, formatFlowLine),
    installed: sortedLines(installed, formatFlowLine),
    diff: { deletes: diff.deletes.length, modifies: diff.modifies.length, adds: diff.adds.length },
    role: session.role.toUpperCase() as SwitchFlows['role'],
    ...(session.generationId !== undefined && { generationId: String(session.generationId) }),
    ...(master !== undefined && { master }),
  };
}

/** '0x1f', 16 hex digits as ovs-ofctl prints them, or decimal. */
export function parseDpid(text: string): bigint | undefined {
  try {
    return BigInt(/^[0-9a-f]{16}$/i.test(text) ? `0x${text}` : text);
  } catch {
    return undefined;
  }
}

/** A request as the endpoint acts on it (the cluster primary too, before asking its workers). */
export type CheckedControlRequest = { op: 'flows'; dpid?: bigint } | { op: 'installed' } | { op: 'packet-out'; dpid: bigint; inPort: number; data: Buffer };

/** a frame long enough for an Ethernet header, short enough for one request line */
const PACKET_OUT_BYTES = { min: 14, max: 1600 } as const;

/** Checks one request; a string says what is wrong with it. */
export function checkControlRequest(request: unknown): CheckedControlRequest | string {
  const req = request as { op?: unknown; dpid?: unknown; inPort?: unknown; data?: unknown } | null;
  if (req?.op === 'installed') return { op: 'installed' };
  if (req?.op === 'packet-out') {
    const dpid = parseDpid(String(req.dpid));
    if (dpid === undefined) return `'${req.dpid}' is not a datapath id`;
    if (typeof req.inPort !== 'number' || !Number.isInteger(req.inPort) || req.inPort < 1 || req.inPort > OFPP.MAX) return `inPort ${req.inPort} is not a port number`;
    const { min, max } = PACKET_OUT_BYTES;
    if (typeof req.data !== 'string' || !/^([0-9a-f]{2})+$/i.test(req.data) || req.data.length < 2 * min || req.data.length > 2 * max) return `data is not a frame of ${min}..${max} bytes in hex`;
    return { op: 'packet-out', dpid, inPort: req.inPort, data: Buffer.from(req.data, 'hex') };
  }
  if (req?.op !== 'flows') return `unknown request ${JSON.stringify(req?.op)}; known: flows, installed, packet-out`;
  if (req.dpid === undefined) return { op: 'flows' };
  const dpid = parseDpid(String(req.dpid));
  return dpid === undefined ? `'${req.dpid}' is not a datapath id` : { op: 'flows', dpid };
}

/** The flows of this runtime's switches: all of them, or the one with `dpid` (none when it is not connected here). */
export function localFlows(source: ControlSource, dpid?: bigint): Promise<SwitchFlows[]> {
  const targets = [...source.switches.entries()].filter(([d]) => dpid === undefined || d === dpid);
  return Promise.all(targets.map(([d, session]) => switchFlows(source, d, session)));
}

/** The installed flows and ports of this runtime's switches, read from them now. */
export function localInstalled(source: ControlSource): Promise<InstalledSwitch[]> {
  const tables = source.pipeline.describe().split('\n').filter(Boolean);
  return Promise.all(
    [...source.switches.entries()].map(async ([dpid, session]) => {
      const encoded = (body: MultipartReply['body']) => splitMultipartReply({ type: 'MULTIPART_REPLY', xid: 0, flags: 0, body }).map((m) => encodeMessage(m).toString('hex'));
      const [flows, groups] = await Promise.all([readInstalledFlows(session), readGroupsIfDescribed(session)]);
      return {
        dpid: formatDpid(dpid),
        tables,
        ports: [...session.ports.values()].map((p) => ({ name: p.name, portNo: p.portNo })),
        flowStats: encoded({ mpType: 'FLOW', flows }),
        groupDesc: encoded({ mpType: 'GROUP_DESC', groups }),
      };
    }),
  );
}

/** the switch's groups; none when it refuses OFPMP_GROUP_DESC, as the reconciler then syncs flows only */
async function readGroupsIfDescribed(session: SwitchSession) {
  try {
    return await readInstalledGroups(session);
  } catch (e) {
    if (e instanceof OfSwitchError) return [];
    throw e;
  }
}

/** The answer to an `installed` request from one runtime. */
export async function answerInstalled(source: ControlSource): Promise<InstalledResponse> {
  const model = source.model();
  return { ok: true, model: model ? documentOf(model) : null, switches: await localInstalled(source) };
}

/** Sends the frame into the switch's pipeline (PACKET_OUT, output:TABLE) and waits for the switch to have processed it. */
export async function answerPacketOut(source: ControlSource, req: Extract<CheckedControlRequest, { op: 'packet-out' }>): Promise<PacketOutResponse> {
  const session = source.switches.get(req.dpid);
  if (!session) return { ok: false, error: notConnected(req.dpid, [...source.switches.keys()].map(formatDpid)) };
  session.send({ type: 'PACKET_OUT', xid: 0, bufferId: OFP_NO_BUFFER, inPort: req.inPort, actions: [{ type: 'output', port: OFPP.TABLE, maxLen: 0 }], data: req.data });
  const { errors } = await session.barrier();
  return errors.length ? { ok: false, error: `the switch refused the packet-out: ${errors.map((e) => e.message).join('; ')}` } : { ok: true };
}

/** The answer to a request for a switch that is not there; `connected` lists those that are. */
export function notConnected(dpid: bigint, connected: readonly string[]): string {
  return `switch ${formatDpid(dpid)} is not connected (connected: ${connected.join(', ') || 'none'})`;
}

async function answer(source: ControlSource, request: unknown): Promise<AnyControlResponse> {
  const req = checkControlRequest(request);
  if (typeof req === 'string') return { ok: false, error: req };
  if (req.op === 'installed') return answerInstalled(source);
  if (req.op === 'packet-out') return answerPacketOut(source, req);
  const switches = await localFlows(source, req.dpid);
  if (req.dpid !== undefined && switches.length === 0) return { ok: false, error: notConnected(req.dpid, [...source.switches.keys()].map(formatDpid)) };
  return { ok: true, switches };
}

export class ControlServer {
  private constructor(
    private readonly server: Server,
    readonly path: string,
    /** open client connections, which close() must not wait for */
    private readonly clients: ReadonlySet<Socket>,
  ) {}

  static listen(path: string, source: ControlSource, log: Logger): Promise<ControlServer> {
    return ControlServer.serve(path, (request) => answer(source, request), log);
  }

  /** Answers requests with `answer` (a cluster primary asks its workers); its rejections become error responses. */
  /** Answers requests with `answer` (a cluster primary asks its workers); its rejections become error responses. Throws ControlSocketError when the path cannot be ours. */
  static async serve(path: string, respond: (request: unknown) => Promise<AnyControlResponse>, log: Logger): Promise<ControlServer> {
    prepareControlDir(path);
    try {
      await removeStaleSocket(path);
    } catch (e) {
      throw new ControlSocketError(`${(e as Error).message} (another 'zonemesh run' with this control socket?)`, path);
    }
    const clients = new Set<Socket>();
    const server = createServer((socket) => {
      clients.add(socket);
      socket.once('close', () => clients.delete(socket));
      serve(socket, respond, log);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // whatever the umask: the directory keeps others out already, the mode says so too
    chmodSync(path, 0o600);
    log.info({ control: path }, 'control endpoint listening');
    return new ControlServer(server, path, clients);
  }

  /** Stops listening and cuts off every client, answered or not. */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.clients) socket.destroy();
    return closed;
  }
}

function serve(socket: Socket, respond: (request: unknown) => Promise<AnyControlResponse>, log: Logger): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('error', () => undefined); // a client that goes away early is no concern of ours
  socket.setTimeout(CONTROL_IDLE_TIMEOUT_MS, () => socket.destroy());
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    const end = buffered.indexOf('\n');
    if (end < 0 && buffered.length < MAX_REQUEST_BYTES) return;
    socket.removeAllListeners('data');
    socket.setTimeout(0); // the answer may take a while: reading a switch's flows
    let request: unknown;
    try {
      request = JSON.parse(end < 0 ? buffered : buffered.slice(0, end));
    } catch {
      return void socket.end(`${JSON.stringify({ ok: false, error: 'request is not one line of JSON' })}\n`);
    }
    respond(request)
      .catch((e: unknown): AnyControlResponse => {
        log.warn({ err: e }, 'control request failed');
        return { ok: false, error: (e as Error)?.message ?? String(e) };
      })
      .then((response) => socket.end(`${JSON.stringify(response)}\n`));
  });
}

/** Sends one request to a control endpoint and resolves with its response; rejects with ControlSocketError when the path's directory is not to be trusted (see checkControlDir). */
export function queryControl<R extends ControlRequest>(path: string, request: R, timeoutMs = 15_000): Promise<ResponseTo<R>> {
  return new Promise((resolve, reject) => {
    checkControlDir(path);
    const socket = connect(path);
    let text = '';
    const timer = setTimeout(() => socket.destroy(new Error(`no answer from ${path} within ${timeoutMs} ms`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(text) as ResponseTo<R>);
      } catch {
        reject(new Error(`${path} answered something that is not JSON: ${text.slice(0, 200)}`));
      }
    });
  });
}
