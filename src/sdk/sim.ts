import type { Action, FieldRef, Instruction, OxmTlv } from '../openflow';
import { OFPP, ValueKind, fieldSpec, formatIpv4, formatIpv6, formatMac, parseIpv4, parseIpv6, parseMac } from '../openflow';
import type { InstalledFlow } from './diff';
import type { Group } from './group';
import { NX_NAT_F_DST, NX_NAT_F_SRC } from '../openflow/nicira';
import { canonicalField } from './match';

/**
 * A fake multi-table switch that evaluates our flows, Faucet-style: for unit tests that ask
 * "where does this packet go?" without OVS. It covers what our apps use: match (with masks),
 * goto, write_metadata, set_field, reg_move, reg_load, dec_ttl, resubmit, ct (a tiny conntrack, with
 * source and destination NAT), select, fast_failover and all groups, output. Anything else is an
 * explicit SimUnsupportedError, never a silent guess.
 */

/** Packet header fields by canonical name ('eth_dst', 'ipv4_src', 'reg0', 'tunnel_id', 'tun_ipv4_dst', 'nw_ttl'…) */
export type SimPacket = Record<string, number | bigint | string>;

export interface SimOutput {
  port: number;
  packet: SimPacket;
}

/** One table lookup: the flow hit (none: a miss with no table-miss flow) and the packet it saw. */
export interface SimStep {
  tableId: number;
  priority?: number;
  flow?: InstalledFlow;
  /** the packet as the table matched it (registers, metadata, ct_state included) */
  packet: SimPacket;
  /** the groups the flow's actions ran, in order */
  groups?: SimGroupStep[];
}

/** A group a flow ran: its buckets, and which it took. */
export interface SimGroupStep {
  group: Group;
  /** indexes of the buckets taken: every one of an all group; one of a select or fast_failover group, none when no bucket is live */
  taken: number[];
}

export interface SimOptions {
  /**
   * The ct_state every ct recirculation resumes with, whatever the simulated conntrack holds, as
   * `ofproto/trace --ct-next` does (e.g. CT_STATE.trk | CT_STATE.est); unset: the tiny conntrack
   * decides, which gives a first packet trk|new like ofproto/trace's default.
   */
  ctState?: number;
  /**
   * The bucket a select group takes for a packet (an index into its buckets); unset: one of the
   * buckets of weight > 0 by a hash of the packet's 5-tuple, so one connection always takes the same
   * (weights above 0 are not simulated).
   */
  selectBucket?: (group: Group, packet: SimPacket) => number;
  /** ports whose liveness is down (BFD, carrier): a bucket watching one is never chosen */
  deadPorts?: ReadonlySet<number>;
}

export interface SimResult {
  outputs: SimOutput[];
  /** tables visited, in order, resubmits and recirculations included */
  trace: SimStep[];
  /** why nothing more happened: 'miss' in a table, 'ttl' expired, or 'done' */
  end: 'miss' | 'ttl' | 'done';
}

export class SimUnsupportedError extends Error {
  override readonly name = 'SimUnsupportedError';
}

const MAX_RESUBMIT_DEPTH = 64;

function kindOf(field: string): ValueKind {
  const spec = fieldSpec(field);
  if (!spec) throw new SimUnsupportedError(`unknown field ${field}`);
  return spec.kind;
}

function toBits(field: string, v: number | bigint | string | undefined): bigint {
  if (v === undefined) return 0n;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  const kind = kindOf(field);
  const bytes = kind === ValueKind.Mac ? parseMac(v) : kind === ValueKind.Ipv4 ? parseIpv4(v) : parseIpv6(v);
  return BigInt(`0x${bytes.toString('hex')}`);
}

function fromBits(field: string, bits: bigint): number | bigint | string {
  const kind = kindOf(field);
  const hex = (n: number) => Buffer.from(bits.toString(16).padStart(n * 2, '0'), 'hex');
  switch (kind) {
    case ValueKind.Mac:
      return formatMac(hex(6));
    case ValueKind.Ipv4:
      return formatIpv4(hex(4));
    case ValueKind.Ipv6:
      return formatIpv6(hex(16));
    case ValueKind.U64:
    case ValueKind.U128:
      return bits;
    default:
      return Number(bits);
  }
}

/** pipeline fields every packet has, zero until set (headers a packet lacks never match) */
const ZERO_UNTIL_SET = /^(x?reg\d+|metadata|tunnel_id|tun_metadata\d+|ct_state|ct_zone|pkt_mark)$/;

function matches(pkt: SimPacket, tlv: OxmTlv): boolean {
  if (tlv.field === 'unknown') throw new SimUnsupportedError('unknown OXM in a match');
  const field = canonicalField(tlv.field);
  const have = pkt[field] ?? (ZERO_UNTIL_SET.test(field) ? 0 : undefined);
  if (have === undefined) return false;
  const mask = tlv.mask === undefined ? -1n : toBits(field, tlv.mask);
  return (toBits(field, have) & mask) === (toBits(field, tlv.value) & mask);
}

function bitRange(nBits: number, ofs: number): bigint {
  return ((1n << BigInt(nBits)) - 1n) << BigInt(ofs);
}

function readRef(pkt: SimPacket, ref: FieldRef, ofs: number, nBits: number): bigint {
  const f = canonicalField(ref.name);
  return (toBits(f, pkt[f]) >> BigInt(ofs)) & ((1n << BigInt(nBits)) - 1n);
}

function writeRef(pkt: SimPacket, ref: FieldRef, ofs: number, nBits: number, value: bigint): void {
  const f = canonicalField(ref.name);
  const range = bitRange(nBits, ofs);
  pkt[f] = fromBits(f, (toBits(f, pkt[f]) & ~range) | ((value << BigInt(ofs)) & range));
}

/** 5-tuple key, the same for both directions of a connection */
function connKey(p: SimPacket, zone: number): { key: string; reply: boolean } {
  const a = `${p.ipv4_src ?? p.ipv6_src}:${p.tcp_src ?? p.udp_src ?? ''}`;
  const b = `${p.ipv4_dst ?? p.ipv6_dst}:${p.tcp_dst ?? p.udp_dst ?? ''}`;
  return { key: `${zone}|${p.ip_proto}|${[a, b].sort().join('|')}`, reply: a > b };
}

/** the transport ports' field names of a packet (tcp or udp), if it has them */
function portFields(p: SimPacket): { src: string; dst: string } | undefined {
  if (p.tcp_dst !== undefined) return { src: 'tcp_src', dst: 'tcp_dst' };
  if (p.udp_dst !== undefined) return { src: 'udp_src', dst: 'udp_dst' };
  return undefined;
}

/** one side of a connection's addresses, as NAT rewrites it */
interface SimEndpoint {
  side: 'src' | 'dst';
  ip: string;
  port?: number;
}

/**
 * A committed connection, under the key of one of its tuples: `opener` is the `reply` flag of the
 * direction that opened it. A NAT stores two: the original tuple, whose opening direction gets
 * `rewrite` (the backend as destination, or the SNAT address as source), and the translated one,
 * whose other direction gets `restore` (the original address back on the other side).
 */
interface SimConn {
  opener: boolean;
  rewrite?: SimEndpoint;
  restore?: SimEndpoint;
}

/** the packet's address and transport port on one side */
function endpointOf(p: SimPacket, side: 'src' | 'dst'): SimEndpoint {
  const ports = portFields(p);
  return { side, ip: String(p[`ipv4_${side}`]), ...(ports && { port: Number(p[ports[side]]) }) };
}

/** the packet with one side's address (and port, when given) replaced */
function rewritten(p: SimPacket, to: SimEndpoint): SimPacket {
  const ports = portFields(p);
  return { ...p, [`ipv4_${to.side}`]: to.ip, ...(ports && to.port !== undefined && { [ports[to.side]]: to.port }) };
}

/** FNV-1a of a string: a stable stand-in for OVS's hash of a connection */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** ct_state bits (OVS) */
export const CT_STATE = { new: 0x01, est: 0x02, rel: 0x04, rpl: 0x08, inv: 0x10, trk: 0x20 } as const;

export class FlowTableSim {
  private readonly tables = new Map<number, InstalledFlow[]>();
  /** committed connections by the key of each of their tuples */
  private readonly conntrack = new Map<string, SimConn>();
  private readonly groups: ReadonlyMap<number, Group>;

  constructor(flows: readonly InstalledFlow[], groups: readonly Group[] = []) {
    this.groups = new Map(groups.map((g) => [g.groupId, g]));
    for (const f of flows) {
      const list = this.tables.get(f.tableId) ?? [];
      list.push(f);
      this.tables.set(f.tableId, list);
    }
    for (const list of this.tables.values()) list.sort((a, b) => b.priority - a.priority);
  }

  private options: SimOptions = {};

  /** Send a packet in on `inPort` and follow it through the pipeline from table 0. */
  inject(packet: SimPacket, inPort: number, options: SimOptions = {}): SimResult {
    this.options = options;
    const result: SimResult = { outputs: [], trace: [], end: 'done' };
    const pkt: SimPacket = { ...packet, in_port: inPort, metadata: packet.metadata ?? 0n };
    this.runTable(pkt, 0, result, 0);
    return result;
  }

  private lookup(pkt: SimPacket, tableId: number): InstalledFlow | undefined {
    return this.tables.get(tableId)?.find((f) => f.match.every((t) => matches(pkt, t)));
  }

  private runTable(pkt: SimPacket, tableId: number, result: SimResult, depth: number): boolean {
    if (depth > MAX_RESUBMIT_DEPTH) throw new SimUnsupportedError('resubmit depth exceeded (a loop?)');
    const flow = this.lookup(pkt, tableId);
    const step: SimStep = { tableId, priority: flow?.priority, ...(flow && { flow }), packet: { ...pkt } };
    result.trace.push(step);
    if (!flow) {
      result.end = 'miss';
      return false;
    }
    return this.runInstructions(pkt, flow.instructions, result, depth, step);
  }

  private runInstructions(pkt: SimPacket, insts: readonly Instruction[], result: SimResult, depth: number, step: SimStep): boolean {
    let next: number | undefined;
    for (const inst of insts) {
      switch (inst.type) {
        case 'apply_actions':
          if (!this.runActions(pkt, inst.actions, result, depth, step)) return false;
          break;
        case 'write_metadata':
          pkt.metadata = ((pkt.metadata as bigint) & ~inst.metadataMask) | (inst.metadata & inst.metadataMask);
          break;
        case 'goto_table':
          next = inst.tableId;
          break;
        default:
          throw new SimUnsupportedError(`instruction ${inst.type}`);
      }
    }
    return next === undefined ? true : this.runTable(pkt, next, result, depth + 1);
  }

  /** `step`: the table step whose flow runs these actions, which records the groups they run */
  private runActions(pkt: SimPacket, actions: readonly Action[], result: SimResult, depth: number, step: SimStep): boolean {
    for (const a of actions) {
      switch (a.type) {
        case 'output':
          // OpenFlow never sends a packet back where it came from unless told so with IN_PORT
          if (a.port === OFPP.IN_PORT) result.outputs.push({ port: pkt.in_port as number, packet: { ...pkt } });
          else if (a.port !== pkt.in_port) result.outputs.push({ port: a.port, packet: { ...pkt } });
          break;
        case 'set_field': {
          if (a.field.field === 'unknown') throw new SimUnsupportedError('set_field of an unknown OXM');
          pkt[canonicalField(a.field.field)] = a.field.value;
          break;
        }
        case 'reg_move':
          writeRef(pkt, a.dst, a.dstOfs, a.nBits, readRef(pkt, a.src, a.srcOfs, a.nBits));
          break;
        case 'reg_load':
          writeRef(pkt, a.dst, a.ofs, a.nBits, a.value);
          break;
        case 'dec_ttl':
        case 'dec_nw_ttl': {
          const ttl = Number(pkt.nw_ttl ?? 64);
          if (ttl <= 1) {
            result.end = 'ttl';
            return false;
          }
          pkt.nw_ttl = ttl - 1;
          break;
        }
        case 'resubmit':
        case 'resubmit_table': {
          const table = a.type === 'resubmit_table' && a.tableId !== 255 ? a.tableId : undefined;
          if (table === undefined) throw new SimUnsupportedError('resubmit without a table');
          this.runTable({ ...pkt }, table, result, depth + 1);
          break;
        }
        case 'group':
          this.runGroup(pkt, a.groupId, result, depth, step);
          break;
        case 'ct':
          if (a.actions.some((n) => n.type !== 'nat')) throw new SimUnsupportedError('ct with nested actions other than nat');
          {
            const { state, zone } = this.conntrackStep(pkt, a);
            // only a recirculated copy sees the new ct_state; without table= the packet goes on as it was
            if (a.recircTable !== 255) {
              this.runTable({ ...pkt, ct_state: state, ct_zone: zone }, a.recircTable, result, depth + 1);
              return false; // recirculation: the original packet stops here
            }
          }
          break;
        default:
          throw new SimUnsupportedError(`action ${a.type}`);
      }
    }
    return true;
  }

  /**
   * A select group takes one live bucket (selectBucket, else by the packet's hash), a fast_failover
   * group its first live one, an all group every bucket; each on a copy. A bucket is live while its
   * watch port is not in `deadPorts` (and, for select, its weight is above 0).
   */
  private runGroup(pkt: SimPacket, groupId: number, result: SimResult, depth: number, step: SimStep): void {
    const group = this.groups.get(groupId);
    if (!group) throw new SimUnsupportedError(`group ${groupId} is not in the simulated switch`);
    const ran: SimGroupStep = { group, taken: [] };
    (step.groups ??= []).push(ran);
    if (group.groupType === 'all') {
      ran.taken = group.buckets.map((_, i) => i);
      for (const b of group.buckets) this.runActions({ ...pkt }, b.actions, result, depth + 1, step);
      return;
    }
    const live = group.buckets.map((b, i) => ({ b, i })).filter(({ b }) => !this.options.deadPorts?.has(b.watchPort));
    let chosen: number | undefined;
    if (group.groupType === 'fast_failover') chosen = live[0]?.i;
    else if (group.groupType === 'select') {
      const weighted = live.filter(({ b }) => b.weight > 0);
      // no live bucket: the group drops, as OVS does
      if (weighted.length > 0) chosen = this.options.selectBucket ? this.options.selectBucket(group, pkt) : weighted[hashString(connKey(pkt, 0).key) % weighted.length]!.i;
    } else throw new SimUnsupportedError(`${group.groupType} group`);
    if (chosen === undefined) return;
    const bucket = group.buckets[chosen];
    if (!bucket) throw new SimUnsupportedError(`group ${groupId} has no bucket ${chosen}`);
    ran.taken = [chosen];
    this.runActions({ ...pkt }, bucket.actions, result, depth + 1, step);
  }

  /**
   * The ct_state conntrack gives the packet; commits it when asked, and translates it with nat. A
   * packet already tracked in the zone keeps its state and translation, as on OVS's userspace
   * datapath, which reuses the connection the packet carries: an ACL after a load balancer's NAT sees
   * a first packet as new, with its translated addresses.
   */
  private conntrackStep(pkt: SimPacket, ct: Extract<Action, { type: 'ct' }>): { state: number; zone: number } {
    const zone = typeof ct.zone === 'number' ? ct.zone : Number(readRef(pkt, ct.zone.field, ct.zone.ofs, ct.zone.nBits));
    if (pkt.ct_zone === zone && (Number(pkt.ct_state ?? 0) & CT_STATE.trk) !== 0) return { state: Number(pkt.ct_state), zone };
    const { key, reply } = connKey(pkt, zone);
    const conn = this.conntrack.get(key);
    const nat = ct.actions.find((a): a is Extract<Action, { type: 'nat' }> => a.type === 'nat');
    const state = this.options.ctState ?? (conn === undefined ? CT_STATE.trk | CT_STATE.new : CT_STATE.trk | CT_STATE.est | (conn.opener !== reply ? CT_STATE.rpl : 0));
    if (conn === undefined && (ct.flags & 1) !== 0) this.commit(pkt, zone, key, reply, nat);
    const now = this.conntrack.get(key);
    if (nat && now) this.translate(pkt, now, now.opener === reply);
    return { state, zone };
  }

  private commit(pkt: SimPacket, zone: number, key: string, reply: boolean, nat: Extract<Action, { type: 'nat' }> | undefined): void {
    const side = nat?.ipv4Min === undefined ? undefined : (nat.flags & NX_NAT_F_DST) !== 0 ? 'dst' : (nat.flags & NX_NAT_F_SRC) !== 0 ? 'src' : undefined;
    if (!nat?.ipv4Min || !side) {
      this.conntrack.set(key, { opener: reply });
      return;
    }
    if (nat.ipv4Max !== undefined && nat.ipv4Max !== nat.ipv4Min) throw new SimUnsupportedError('nat to an address range');
    const from = endpointOf(pkt, side);
    const translatedWith = (port: number | undefined) => rewritten(pkt, { side, ip: nat.ipv4Min!, ...(port !== undefined && { port }) });
    // the range's lowest port whose translated tuple is free, as OVS's conntrack picks it
    let port: number | undefined;
    if (from.port !== undefined && nat.protoMin !== undefined) {
      port = nat.protoMin;
      while (port <= (nat.protoMax ?? nat.protoMin) && this.conntrack.has(connKey(translatedWith(port), zone).key)) port++;
      if (port > (nat.protoMax ?? nat.protoMin)) return; // the range is exhausted: not committed, untranslated
    }
    const t = connKey(translatedWith(port), zone);
    this.conntrack.set(key, { opener: reply, rewrite: { side, ip: nat.ipv4Min, ...(port !== undefined && { port }) } });
    this.conntrack.set(t.key, { opener: t.reply, restore: { ...from, side: side === 'dst' ? 'src' : 'dst' } });
  }

  /** `original`: the packet goes the way the connection was opened */
  private translate(pkt: SimPacket, conn: SimConn, original: boolean): void {
    const change = original ? conn.rewrite : conn.restore;
    if (change) Object.assign(pkt, rewritten(pkt, change));
  }
}
