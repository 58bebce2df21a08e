/**
 * An in-process fake OpenFlow 1.3 switch speaking our codec over a real socket, for runtime tests
 * (and later reconciliation tests): scriptable handshake, echo, errors, split multipart replies,
 * raw bytes, a flow table with Open vSwitch's FLOW_MOD semantics that answers flow and aggregate stats (counters
 * settable), a group table with its GROUP_MOD semantics that answers group descriptions, and port
 * stats from settable counters.
 */
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import {
  Framer,
  OFP_MAX_MESSAGE_LEN,
  OFPBRC,
  OFPCR_ROLE,
  OFPCRR,
  OFPET,
  OFPRRFC,
  OFPFF_CHECK_OVERLAP,
  OFPFF_RESET_COUNTS,
  OFPFF_SEND_FLOW_REM,
  OFPBAC,
  OFPG_ALL,
  OFPG_ANY,
  OFPP,
  OFPT,
  OFPTT_ALL,
  Writer,
  decodeMessage,
  encodeMessage,
  encodeOxm,
  fieldSpec,
  isBundle,
  roleStatus,
  splitMultipartReply,
  type Action,
  type FlowMod,
  type FlowStats,
  type GroupDesc,
  type GroupMod,
  type Instruction,
  type Match,
  type MultipartReplyBody,
  type MultipartRequest,
  type OfDecodeError,
  type OfMessage,
  type OfMessageOf,
  type OfMessageType,
  type OxmTlv,
  type Port,
  type PortStats,
} from '../openflow';

// ---------------------------------------------------------------------------------------------
// Flow table
// ---------------------------------------------------------------------------------------------

/** OFPFMFC_* codes the table reports */
export const OFPFMFC_BAD_TABLE_ID = 2;
export const OFPFMFC_OVERLAP = 3;
/** OFPGMFC_* codes the group table reports */
export const OFPGMFC_GROUP_EXISTS = 0;
export const OFPGMFC_INVALID_GROUP = 1;
export const OFPGMFC_UNKNOWN_GROUP = 8;
/** the highest group id a group may have (OFPG_MAX) */
const OFPG_MAX = 0xffffff00;
/** OFPRR_DELETE */
const OFPRR_DELETE = 2;

/** One match field as OVS compares it: value and mask (all ones when the TLV has none). */
interface CanonicalField {
  value: Buffer;
  mask: Buffer;
}

/** A match normalized so that field order and explicit all-ones or all-zero masks do not matter. */
class CanonicalMatch {
  readonly fields = new Map<string, CanonicalField>();
  readonly key: string;

  constructor(match: Match) {
    for (const tlv of match) {
      const [id, field] = canonicalField(tlv);
      if (field.mask.some((b) => b !== 0)) this.fields.set(id, field); // an all-zero mask matches anything
    }
    this.key = [...this.fields.entries()]
      .map(([id, f]) => `${id}=${f.value.toString('hex')}/${f.mask.toString('hex')}`)
      .sort()
      .join(',');
  }

  /** OVS's loose match: the flow is at least as specific as `criteria` and agrees with it where `criteria` looks. */
  isSelectedBy(criteria: CanonicalMatch): boolean {
    for (const [id, c] of criteria.fields) {
      const f = this.fields.get(id);
      if (!f) return false;
      for (let i = 0; i < c.mask.length; i++) {
        if ((c.mask[i]! & ~f.mask[i]!) !== 0 || (f.value[i]! & c.mask[i]!) !== c.value[i]) return false;
      }
    }
    return true;
  }

  /** Some packet could match both (CHECK_OVERLAP): every field both constrain agrees on the bits both look at. */
  overlaps(other: CanonicalMatch): boolean {
    for (const [id, a] of this.fields) {
      const b = other.fields.get(id);
      if (!b) continue;
      for (let i = 0; i < a.mask.length; i++) {
        const common = a.mask[i]! & b.mask[i]!;
        if ((a.value[i]! & common) !== (b.value[i]! & common)) return false;
      }
    }
    return true;
  }
}

function canonicalField(tlv: OxmTlv): [string, CanonicalField] {
  const w = new Writer(64);
  encodeOxm(w, tlv);
  const bytes = w.finish();
  const header = bytes.readUInt32BE(0);
  const hasMask = (header & 0x100) !== 0;
  const length = header & 0xff;
  const prefix = header >>> 16 !== 0xffff ? 0 : tlv.field === 'unknown' ? 4 : fieldSpec(tlv.field)!.prefixBytes;
  const id = `${((header & ~0x1ff) >>> 0).toString(16)}:${bytes.subarray(4, 4 + prefix).toString('hex')}`;
  const payload = bytes.subarray(4 + prefix, 4 + length);
  const n = hasMask ? payload.length / 2 : payload.length;
  const mask = hasMask ? Buffer.from(payload.subarray(n)) : Buffer.alloc(n, 0xff);
  // The codec refuses value bits outside the mask, so value and mask are already canonical.
  return [id, { value: Buffer.from(payload.subarray(0, n)), mask }];
}

export interface FakeFlow {
  tableId: number;
  priority: number;
  cookie: bigint;
  idleTimeout: number;
  hardTimeout: number;
  flags: number;
  match: Match;
  instructions: Instruction[];
  /** process.hrtime.bigint() at install or replacement */
  installedAt: bigint;
  /** what flow stats report; a test sets them as if packets had matched */
  packetCount: bigint;
  byteCount: bigint;
  readonly canonical: CanonicalMatch;
}

/** Which flows a delete, modify or stats request selects. */
export interface FlowSelector {
  tableId: number;
  cookie: bigint;
  cookieMask: bigint;
  outPort: number;
  outGroup: number;
  match: Match;
  /** strict: same match and priority; otherwise OVS's loose match */
  strict?: { priority: number };
}

export type FlowModOutcome =
  | { ok: true; removed: FakeFlow[] }
  | { ok: false; errType: number; code: number };

function actionsOf(insts: readonly Instruction[]): Action[] {
  return insts.flatMap((i) => (i.type === 'apply_actions' || i.type === 'write_actions' ? i.actions : []));
}

/**
 * Flow tables with Open vSwitch's OF1.3 FLOW_MOD semantics: add replaces a flow with the same
 * match and priority; modify changes only instructions and never adds; delete and stats select
 * by table (OFPTT_ALL for all), cookie/mask, out_port/out_group and a loose match; the strict
 * variants need the same match and priority.
 */
export class FakeFlowTable {
  /** table id → (priority|match key) → flow */
  private readonly tables = new Map<number, Map<string, FakeFlow>>();

  /** with `groups`, a flow whose actions name a group missing there is refused, as OVS does (BAD_OUT_GROUP) */
  constructor(
    readonly nTables: number,
    private readonly groups?: FakeGroupTable,
  ) {}

  get size(): number {
    let n = 0;
    for (const t of this.tables.values()) n += t.size;
    return n;
  }

  flows(): FakeFlow[] {
    return [...this.tables.values()].flatMap((t) => [...t.values()]);
  }

  apply(fm: FlowMod): FlowModOutcome {
    const deleting = fm.command === 'delete' || fm.command === 'delete_strict';
    if ((fm.tableId === OFPTT_ALL && !deleting) || (fm.tableId !== OFPTT_ALL && fm.tableId >= this.nTables)) {
      return { ok: false, errType: OFPET.FLOW_MOD_FAILED, code: OFPFMFC_BAD_TABLE_ID };
    }
    const groups = this.groups;
    if (!deleting && groups && actionsOf(fm.instructions).some((a) => a.type === 'group' && !groups.has(a.groupId))) {
      return { ok: false, errType: OFPET.BAD_ACTION, code: OFPBAC.BAD_OUT_GROUP };
    }
    switch (fm.command) {
      case 'add':
        return this.add(fm);
      case 'modify':
      case 'modify_strict':
        // out_port/out_group filter only deletes (OF1.3 §7.3.4.1, OVS alike)
        for (const f of this.select({ ...fm, outPort: OFPP.ANY, outGroup: OFPG_ANY, ...(fm.command === 'modify_strict' && { strict: { priority: fm.priority } }) })) {
          f.instructions = fm.instructions;
          if (fm.flags & OFPFF_RESET_COUNTS) {
            f.installedAt = process.hrtime.bigint();
            f.packetCount = f.byteCount = 0n;
          }
        }
        return { ok: true, removed: [] };
      case 'delete':
      case 'delete_strict': {
        const removed = this.select({ ...fm, ...(fm.command === 'delete_strict' && { strict: { priority: fm.priority } }) });
        for (const f of removed) this.tables.get(f.tableId)!.delete(flowKey(f.priority, f.canonical));
        return { ok: true, removed };
      }
    }
  }

  select(s: FlowSelector): FakeFlow[] {
    const criteria = new CanonicalMatch(s.match);
    const out: FakeFlow[] = [];
    const tables = s.tableId === OFPTT_ALL ? [...this.tables.values()] : [this.tables.get(s.tableId) ?? new Map<string, FakeFlow>()];
    for (const table of tables) {
      for (const f of table.values()) {
        if ((f.cookie & s.cookieMask) !== (s.cookie & s.cookieMask)) continue;
        if (s.strict ? f.priority !== s.strict.priority || f.canonical.key !== criteria.key : !f.canonical.isSelectedBy(criteria)) continue;
        if (s.outPort !== OFPP.ANY && !actionsOf(f.instructions).some((a) => a.type === 'output' && a.port === s.outPort)) continue;
        if (s.outGroup !== OFPG_ANY && !actionsOf(f.instructions).some((a) => a.type === 'group' && a.groupId === s.outGroup)) continue;
        out.push(f);
      }
    }
    return out;
  }

  private add(fm: FlowMod): FlowModOutcome {
    const canonical = new CanonicalMatch(fm.match);
    let table = this.tables.get(fm.tableId);
    if (!table) this.tables.set(fm.tableId, (table = new Map()));
    const key = flowKey(fm.priority, canonical);
    if (fm.flags & OFPFF_CHECK_OVERLAP) {
      for (const f of table.values()) {
        if (f.priority === fm.priority && f.canonical.key !== canonical.key && f.canonical.overlaps(canonical)) {
          return { ok: false, errType: OFPET.FLOW_MOD_FAILED, code: OFPFMFC_OVERLAP };
        }
      }
    }
    table.set(key, {
      tableId: fm.tableId,
      priority: fm.priority,
      cookie: fm.cookie,
      idleTimeout: fm.idleTimeout,
      hardTimeout: fm.hardTimeout,
      flags: fm.flags,
      match: fm.match,
      instructions: fm.instructions,
      installedAt: process.hrtime.bigint(),
      packetCount: 0n,
      byteCount: 0n,
      canonical,
    });
    return { ok: true, removed: [] };
  }
}

/**
 * A group table with Open vSwitch's OF1.3 GROUP_MOD semantics: add refuses an existing id, modify an
 * unknown one; delete of an unknown id is no error, OFPG_ALL deletes every group, and deleting a group
 * deletes the flows of `flows` that reference it.
 */
export class FakeGroupTable {
  private readonly byId = new Map<number, GroupDesc>();

  get size(): number {
    return this.byId.size;
  }

  has(groupId: number): boolean {
    return this.byId.has(groupId);
  }

  /** every group, by id, as GROUP_DESC reports them */
  groups(): GroupDesc[] {
    return [...this.byId.values()].sort((a, b) => a.groupId - b.groupId);
  }

  apply(gm: GroupMod, flows: FakeFlowTable): FlowModOutcome {
    const failed = (code: number): FlowModOutcome => ({ ok: false, errType: OFPET.GROUP_MOD_FAILED, code });
    const desc = (): GroupDesc => ({ groupType: gm.groupType, groupId: gm.groupId, buckets: gm.buckets });
    switch (gm.command) {
      case 'add':
        if (gm.groupId > OFPG_MAX) return failed(OFPGMFC_INVALID_GROUP);
        if (this.byId.has(gm.groupId)) return failed(OFPGMFC_GROUP_EXISTS);
        this.byId.set(gm.groupId, desc());
        return { ok: true, removed: [] };
      case 'modify':
        if (!this.byId.has(gm.groupId)) return failed(OFPGMFC_UNKNOWN_GROUP);
        this.byId.set(gm.groupId, desc());
        return { ok: true, removed: [] };
      case 'delete': {
        const ids = gm.groupId === OFPG_ALL ? [...this.byId.keys()] : this.byId.has(gm.groupId) ? [gm.groupId] : [];
        const removed: FakeFlow[] = [];
        for (const id of ids) {
          this.byId.delete(id);
          const outcome = flows.apply({ ...DELETE_EVERYWHERE, outGroup: id });
          if (outcome.ok) removed.push(...outcome.removed);
        }
        return { ok: true, removed };
      }
    }
  }
}

const DELETE_EVERYWHERE: FlowMod = {
  type: 'FLOW_MOD',
  xid: 0,
  cookie: 0n,
  cookieMask: 0n,
  tableId: OFPTT_ALL,
  command: 'delete',
  idleTimeout: 0,
  hardTimeout: 0,
  priority: 0,
  bufferId: 0xffffffff,
  outPort: OFPP.ANY,
  outGroup: OFPG_ANY,
  flags: 0,
  match: [],
  instructions: [],
};

function flowKey(priority: number, m: CanonicalMatch): string {
  return `${priority}|${m.key}`;
}

function flowStats(f: FakeFlow): FlowStats {
  const age = process.hrtime.bigint() - f.installedAt;
  return {
    tableId: f.tableId,
    durationSec: Number(age / 1_000_000_000n),
    durationNsec: Number(age % 1_000_000_000n),
    priority: f.priority,
    idleTimeout: f.idleTimeout,
    hardTimeout: f.hardTimeout,
    flags: f.flags,
    cookie: f.cookie,
    packetCount: f.packetCount,
    byteCount: f.byteCount,
    match: f.match,
    instructions: f.instructions,
  };
}

// ---------------------------------------------------------------------------------------------
// Switch
// ---------------------------------------------------------------------------------------------

export function fakePort(portNo: number, name = `p${portNo}`): Port {
  const mac = `02:00:00:00:${((portNo >> 8) & 0xff).toString(16).padStart(2, '0')}:${(portNo & 0xff).toString(16).padStart(2, '0')}`;
  return { portNo, hwAddr: mac, name, config: 0, state: 0, curr: 0, advertised: 0, supported: 0, peer: 0, currSpeed: 10_000_000, maxSpeed: 10_000_000 };
}

/** The counters of one port as PORT_STATS reports them; a test sets the ones it needs. */
export type FakePortCounters = Omit<PortStats, 'portNo'>;

const ZERO_PORT_COUNTERS: FakePortCounters = {
  rxPackets: 0n, txPackets: 0n, rxBytes: 0n, txBytes: 0n, rxDropped: 0n, txDropped: 0n, rxErrors: 0n, txErrors: 0n,
  rxFrameErr: 0n, rxOverErr: 0n, rxCrcErr: 0n, collisions: 0n, durationSec: 0, durationNsec: 0,
};

export interface FakeSwitchOptions {
  dpid?: bigint;
  ports?: Port[];
  nTables?: number;
  /** non-zero makes this an auxiliary connection */
  auxiliaryId?: number;
  /** bytes sent instead of our OF1.3 HELLO (e.g. an OF1.0 HELLO) */
  helloBytes?: Buffer;
  /** request types this switch never answers */
  unanswered?: Iterable<OfMessageType>;
  /** answer a message with OFPT_ERROR instead of processing it */
  errorFor?: (msg: OfMessage) => { errType: number; code: number } | undefined;
  /** multipart replies are split into messages of at most this many bytes, REPLY_MORE on all but the last */
  maxReplyBytes?: number;
  /** keep every received message in `received` (default true; turn off for load tests) */
  record?: boolean;
  /** tell a demoted master with ONFT_ROLE_STATUS, as OVS does (default true); false: it learns from IS_SLAVE errors */
  sendsRoleStatus?: boolean;
}

/** What OVS refuses from a SLAVE connection with OFPBRC_IS_SLAVE. */
const SLAVE_REFUSED: ReadonlySet<OfMessageType> = new Set(['FLOW_MOD', 'GROUP_MOD', 'PORT_MOD', 'TABLE_MOD', 'METER_MOD', 'PACKET_OUT']);
const U64_MAX = (1n << 64n) - 1n;

export type FakeConnectTarget =
  | { transport: 'tcp'; port: number; host?: string }
  | { transport: 'unix'; path: string }
  | { transport: 'tls'; options: ConnectionOptions };

export type FakeListenTarget = { transport: 'tcp'; port?: number; host?: string } | { transport: 'unix'; path: string };

interface Waiter {
  predicate: (m: OfMessage) => boolean;
  resolve: (m: OfMessage) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class FakeSwitch {
  readonly dpid: bigint;
  readonly ports: Port[];
  readonly flowTable: FakeFlowTable;
  readonly groupTable = new FakeGroupTable();
  readonly unanswered: Set<OfMessageType>;
  errorFor: FakeSwitchOptions['errorFor'];
  maxReplyBytes: number;
  /** decoded messages from the controller, in order (when recording) */
  readonly received: OfMessage[] = [];
  readonly decodeErrors: OfDecodeError[] = [];
  /** messages received per type, always counted */
  readonly counts = new Map<OfMessageType, number>();
  /** 'data' events on the current connection: how many pieces the controller's bytes arrived in */
  receivedChunks = 0;
  /** connections accepted or made so far */
  connections = 0;
  /** the current connection's role (OFPCR_ROLE); a new connection starts EQUAL */
  role: OFPCR_ROLE = OFPCR_ROLE.EQUAL;
  /** the switch's master election id, kept across connections as OVS keeps it per bridge */
  electionId: bigint | undefined;
  /** writes refused with IS_SLAVE, and role requests refused as STALE */
  refusedWrites = 0;
  staleRefusals = 0;
  /** port number → counters PORT_STATS reports (zeros for a port not here) */
  readonly portCounters = new Map<number, Partial<FakePortCounters>>();

  private readonly options: FakeSwitchOptions;
  private socket: Socket | undefined;
  private framer = new Framer();
  private server: Server | undefined;
  private waiters: Waiter[] = [];
  private closeWaiters: Array<() => void> = [];

  constructor(options: FakeSwitchOptions = {}) {
    this.options = options;
    this.dpid = options.dpid ?? 1n;
    this.ports = options.ports ?? [fakePort(1), fakePort(2)];
    this.flowTable = new FakeFlowTable(options.nTables ?? 254, this.groupTable);
    this.unanswered = new Set(options.unanswered ?? []);
    this.errorFor = options.errorFor;
    this.maxReplyBytes = options.maxReplyBytes ?? OFP_MAX_MESSAGE_LEN;
  }

  /** Connects to a controller (the switch's active mode); resolves once the socket is up. */
  async connect(target: FakeConnectTarget): Promise<this> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s =
        target.transport === 'tls'
          ? tlsConnect(target.options, () => resolve(s))
          : target.transport === 'unix'
            ? netConnect(target.path, () => resolve(s))
            : netConnect(target.port, target.host ?? '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
    this.attach(socket);
    return this;
  }

  /** Listens for a controller (passive mode, like OVS's br-int.mgmt); a new connection replaces the current one. Returns the TCP port. */
  async listen(target: FakeListenTarget): Promise<number | undefined> {
    const server = createServer((s) => {
      this.socket?.destroy();
      this.attach(s);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (target.transport === 'unix') server.listen(target.path, resolve);
      else server.listen(target.port ?? 0, target.host ?? '127.0.0.1', resolve);
    });
    const address = server.address();
    return typeof address === 'object' && address ? address.port : undefined;
  }

  get connected(): boolean {
    return this.socket !== undefined && !this.socket.destroyed;
  }

  /** Resolves when the current connection closes (at once if there is none). */
  waitClosed(timeoutMs = 5_000): Promise<void> {
    if (!this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fake switch ${this.dpid}: connection still open after ${timeoutMs} ms`)), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * Resolves with the first message of `type` satisfying `predicate` that arrives after this call.
   * Start waiting before doing what should cause the message.
   */
  nextMessage<T extends OfMessageType>(type: T, predicate: (m: OfMessageOf<T>) => boolean = () => true, timeoutMs = 5_000): Promise<OfMessageOf<T>> {
    const matches = (m: OfMessage): boolean => m.type === type && predicate(m as OfMessageOf<T>);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate: matches,
        resolve: resolve as (m: OfMessage) => void,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new Error(`fake switch ${this.dpid}: no ${type} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Resolves with the first message of `type` satisfying `predicate` received already (`received`), or arriving later. */
  firstMessage<T extends OfMessageType>(type: T, predicate: (m: OfMessageOf<T>) => boolean = () => true, timeoutMs = 5_000): Promise<OfMessageOf<T>> {
    const seen = this.received.find((m) => m.type === type && predicate(m as OfMessageOf<T>));
    return seen ? Promise.resolve(seen as OfMessageOf<T>) : this.nextMessage(type, predicate, timeoutMs);
  }

  count(type: OfMessageType): number {
    return this.counts.get(type) ?? 0;
  }

  send(msg: OfMessage): void {
    this.sendRaw(encodeMessage(msg));
  }

  /** Writes bytes as they are: malformed input, pre-encoded bursts. False when the socket buffers them: see `writable`. */
  sendRaw(bytes: Buffer): boolean {
    return this.socket?.write(bytes) ?? false;
  }

  /** Resolves when the socket has taken what `sendRaw` buffered, or is gone. */
  writable(): Promise<void> {
    const socket = this.socket;
    if (!socket || socket.destroyed || socket.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        socket.off('drain', done).off('close', done);
        resolve();
      };
      socket.on('drain', done).on('close', done);
    });
  }

  /** Stops reading the socket so the controller's writes back up (backpressure tests). */
  pauseReading(): void {
    this.socket?.pause();
  }

  resumeReading(): void {
    this.socket?.resume();
  }

  /**
   * Another controller's ROLE_REQUEST MASTER with `generationId`, as OVS applies it: the election id
   * moves on and a MASTER connection becomes SLAVE, told by ONFT_ROLE_STATUS (unless sendsRoleStatus is false).
   */
  otherControllerBecomesMaster(generationId: bigint): void {
    this.electionId = generationId;
    if (this.role !== OFPCR_ROLE.MASTER) return;
    this.role = OFPCR_ROLE.SLAVE;
    if (this.options.sendsRoleStatus !== false) this.send(roleStatus(0, OFPCR_ROLE.SLAVE, OFPCRR.MASTER_REQUEST, generationId));
  }

  /** Drops the current connection (a switch that goes away without a goodbye). */
  disconnect(): void {
    this.socket?.destroy();
  }

  /** Closes the connection and any listener (the switch process ends). */
  async close(): Promise<void> {
    this.socket?.destroy();
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new Error(`fake switch ${this.dpid} closed`));
    }
    this.waiters = [];
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    this.connections++;
    this.role = OFPCR_ROLE.EQUAL;
    this.framer = new Framer();
    this.receivedChunks = 0;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined); // a reset by the controller is a normal end here
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined;
      const waiters = this.closeWaiters;
      this.closeWaiters = [];
      for (const w of waiters) w();
    });
    this.sendRaw(this.options.helloBytes ?? encodeMessage({ type: 'HELLO', xid: 1, elements: [{ type: 'versionbitmap', versions: [4] }] }));
  }

  private onData(chunk: Buffer): void {
    this.receivedChunks++;
    let frames: Buffer[];
    try {
      frames = this.framer.messages(chunk);
    } catch (e) {
      this.decodeErrors.push(e as OfDecodeError);
      this.socket?.destroy();
      return;
    }
    for (const frame of frames) {
      const res = decodeMessage(frame);
      if (!res.ok) {
        this.decodeErrors.push(res.error);
        continue;
      }
      this.onMessage(res.message, frame);
    }
  }

  private onMessage(msg: OfMessage, frame: Buffer): void {
    this.counts.set(msg.type, (this.counts.get(msg.type) ?? 0) + 1);
    if (this.options.record !== false) this.received.push(msg);
    if (this.waiters.length > 0) {
      const still: Waiter[] = [];
      for (const w of this.waiters) {
        if (w.predicate(msg)) {
          clearTimeout(w.timer);
          w.resolve(msg);
        } else {
          still.push(w);
        }
      }
      this.waiters = still;
    }
    if (this.unanswered.has(msg.type)) return;
    if (this.role === OFPCR_ROLE.SLAVE && (SLAVE_REFUSED.has(msg.type) || (msg.type === 'EXPERIMENTER' && isBundle(msg)))) {
      this.refusedWrites++;
      return this.replyError(msg.xid, OFPET.BAD_REQUEST, OFPBRC.IS_SLAVE, frame);
    }
    const scripted = this.errorFor?.(msg);
    if (scripted) return this.replyError(msg.xid, scripted.errType, scripted.code, frame);
    this.respond(msg, frame);
  }

  private respond(msg: OfMessage, frame: Buffer): void {
    switch (msg.type) {
      case 'ECHO_REQUEST':
        return this.send({ type: 'ECHO_REPLY', xid: msg.xid, data: msg.data });
      case 'FEATURES_REQUEST':
        return this.send({
          type: 'FEATURES_REPLY',
          xid: msg.xid,
          datapathId: this.dpid,
          nBuffers: 0,
          nTables: this.flowTable.nTables,
          auxiliaryId: this.options.auxiliaryId ?? 0,
          capabilities: 0x4f,
          reserved: 0,
        });
      case 'BARRIER_REQUEST':
        return this.send({ type: 'BARRIER_REPLY', xid: msg.xid });
      case 'ROLE_REQUEST':
        return this.onRoleRequest(msg, frame);
      case 'GET_CONFIG_REQUEST':
        return this.send({ type: 'GET_CONFIG_REPLY', xid: msg.xid, flags: 0, missSendLen: 128 });
      case 'MULTIPART_REQUEST':
        return this.respondMultipart(msg, frame);
      case 'FLOW_MOD':
      case 'GROUP_MOD': {
        const outcome = this.applyMod(msg);
        if (!outcome.ok) return this.replyError(msg.xid, outcome.errType, outcome.code, frame);
        for (const f of outcome.removed) {
          if (!(f.flags & OFPFF_SEND_FLOW_REM)) continue;
          const s = flowStats(f);
          this.send({
            type: 'FLOW_REMOVED',
            xid: 0,
            cookie: s.cookie,
            priority: s.priority,
            reason: OFPRR_DELETE,
            tableId: s.tableId,
            durationSec: s.durationSec,
            durationNsec: s.durationNsec,
            idleTimeout: s.idleTimeout,
            hardTimeout: s.hardTimeout,
            packetCount: 0n,
            byteCount: 0n,
            match: s.match,
          });
        }
        return;
      }
      default:
        return; // HELLO, ERROR, ECHO_REPLY, PACKET_OUT, SET_CONFIG …: recorded only
    }
  }

  /** A flow-mod or group-mod applied to this switch's tables. */
  applyMod(mod: FlowMod | GroupMod): FlowModOutcome {
    return mod.type === 'FLOW_MOD' ? this.flowTable.apply(mod) : this.groupTable.apply(mod, this.flowTable);
  }

  /**
   * Applies `mods` in order, all or none, as OVS commits an ordered atomic bundle: they are tried
   * on copies of the tables first. Returns the first refused mod with its error, or undefined.
   */
  applyAtomically(mods: readonly (FlowMod | GroupMod)[]): { mod: FlowMod | GroupMod; errType: number; code: number } | undefined {
    const groups = new FakeGroupTable();
    for (const g of this.groupTable.groups()) groups.apply({ type: 'GROUP_MOD', xid: 0, command: 'add', ...g }, this.flowTable);
    const flows = new FakeFlowTable(this.flowTable.nTables, groups);
    for (const f of this.flowTable.flows()) flows.apply({ ...DELETE_EVERYWHERE, command: 'add', tableId: f.tableId, priority: f.priority, cookie: f.cookie, idleTimeout: f.idleTimeout, hardTimeout: f.hardTimeout, flags: f.flags, match: f.match, instructions: f.instructions });
    for (const mod of mods) {
      const outcome = mod.type === 'FLOW_MOD' ? flows.apply(mod) : groups.apply(mod, flows);
      if (!outcome.ok) return { mod, errType: outcome.errType, code: outcome.code };
    }
    for (const mod of mods) this.applyMod(mod);
    return undefined;
  }

  /** OVS's handle_role_request: MASTER and SLAVE requests carry a generation that must not go back (wrapping compare). */
  private onRoleRequest(msg: OfMessageOf<'ROLE_REQUEST'>, frame: Buffer): void {
    if (msg.role > OFPCR_ROLE.SLAVE) return this.replyError(msg.xid, OFPET.ROLE_REQUEST_FAILED, OFPRRFC.BAD_ROLE, frame);
    if (msg.role !== OFPCR_ROLE.NOCHANGE) {
      if (msg.role !== OFPCR_ROLE.EQUAL) {
        if (this.electionId !== undefined && BigInt.asIntN(64, msg.generationId - this.electionId) < 0n) {
          this.staleRefusals++;
          return this.replyError(msg.xid, OFPET.ROLE_REQUEST_FAILED, OFPRRFC.STALE, frame);
        }
        this.electionId = msg.generationId;
      }
      this.role = msg.role;
    }
    this.send({ type: 'ROLE_REPLY', xid: msg.xid, role: this.role, generationId: this.electionId ?? U64_MAX });
  }

  private respondMultipart(req: MultipartRequest, frame: Buffer): void {
    let body: MultipartReplyBody;
    switch (req.body.mpType) {
      case 'DESC':
        body = { mpType: 'DESC', mfrDesc: 'zonemesh', hwDesc: 'fake switch', swDesc: 'test', serialNum: '0', dpDesc: `fake ${this.dpid}` };
        break;
      case 'PORT_DESC':
        body = { mpType: 'PORT_DESC', ports: this.ports };
        break;
      case 'FLOW':
        body = { mpType: 'FLOW', flows: this.flowTable.select(req.body).map(flowStats) };
        break;
      case 'AGGREGATE': {
        const flows = this.flowTable.select(req.body);
        const sum = (f: (x: FakeFlow) => bigint) => flows.reduce((n, x) => n + f(x), 0n);
        body = { mpType: 'AGGREGATE', packetCount: sum((x) => x.packetCount), byteCount: sum((x) => x.byteCount), flowCount: flows.length };
        break;
      }
      case 'GROUP_DESC':
        body = { mpType: 'GROUP_DESC', groups: this.groupTable.groups() };
        break;
      case 'PORT_STATS': {
        const portNo = req.body.portNo;
        const ports = this.ports.filter((p) => portNo === OFPP.ANY || p.portNo === portNo);
        body = { mpType: 'PORT_STATS', ports: ports.map((p) => ({ ...ZERO_PORT_COUNTERS, ...this.portCounters.get(p.portNo), portNo: p.portNo })) };
        break;
      }
      default:
        return this.replyError(req.xid, OFPET.BAD_REQUEST, OFPBRC.BAD_MULTIPART, frame);
    }
    for (const part of splitMultipartReply({ type: 'MULTIPART_REPLY', xid: req.xid, flags: 0, body }, this.maxReplyBytes)) this.send(part);
  }

  private replyError(xid: number, errType: number, code: number, offending: Buffer): void {
    this.send({ type: 'ERROR', xid, errType, code, data: Buffer.from(offending.subarray(0, 64)) });
  }
}

/** An OF1.0 HELLO: what a switch that cannot speak 1.3 sends. */
export function of10Hello(xid = 1): Buffer {
  const b = Buffer.alloc(8);
  b[0] = 0x01;
  b[1] = OFPT.HELLO;
  b.writeUInt16BE(8, 2);
  b.writeUInt32BE(xid, 4);
  return b;
}

/** A header-only message with any version/type/length, for malformed-input tests. */
export function rawHeader(type: number, length: number, xid: number, version = 0x04): Buffer {
  const b = Buffer.alloc(Math.max(length, 8));
  b[0] = version;
  b[1] = type;
  b.writeUInt16BE(length, 2);
  b.writeUInt32BE(xid, 4);
  return b;
}
