import type { Action, FieldRef, Instruction, OxmTlv } from '../openflow';
import { OFPP, ValueKind, fieldSpec, formatIpv4, formatIpv6, formatMac, parseIpv4, parseIpv6, parseMac } from '../openflow';
import type { InstalledFlow } from './diff';
import type { Group } from './group';
import { canonicalField } from './match';

/**
 * A fake multi-table switch that evaluates our flows, Faucet-style: for unit tests that ask
 * "where does this packet go?" without OVS. It covers what our apps use: match (with masks),
 * goto, write_metadata, set_field, reg_move, reg_load, dec_ttl, resubmit, ct (a tiny conntrack),
 * group (select and fast_failover: the first live bucket), output. Anything else is an explicit
 * SimUnsupportedError, never a silent guess.
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
}

export interface SimOptions {
  /**
   * The ct_state every ct recirculation resumes with, whatever the simulated conntrack holds, as
   * `ofproto/trace --ct-next` does (e.g. CT_STATE.trk | CT_STATE.est); unset: the tiny conntrack
   * decides, which gives a first packet trk|new like ofproto/trace's default.
   */
  ctState?: number;
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

/** ct_state bits (OVS) */
export const CT_STATE = { new: 0x01, est: 0x02, rel: 0x04, rpl: 0x08, inv: 0x10, trk: 0x20 } as const;

export class FlowTableSim {
  private readonly tables = new Map<number, InstalledFlow[]>();
  /** committed connections: key → the direction that opened it */
  private readonly conntrack = new Map<string, boolean>();

  private readonly groups = new Map<number, Group>();

  constructor(flows: readonly InstalledFlow[], groups: readonly Group[] = []) {
    for (const g of groups) this.groups.set(g.groupId, g);
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
    result.trace.push({ tableId, priority: flow?.priority, ...(flow && { flow }), packet: { ...pkt } });
    if (!flow) {
      result.end = 'miss';
      return false;
    }
    return this.runInstructions(pkt, flow.instructions, result, depth);
  }

  private runInstructions(pkt: SimPacket, insts: readonly Instruction[], result: SimResult, depth: number): boolean {
    let next: number | undefined;
    for (const inst of insts) {
      switch (inst.type) {
        case 'apply_actions':
          if (!this.runActions(pkt, inst.actions, result, depth)) return false;
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

  private runActions(pkt: SimPacket, actions: readonly Action[], result: SimResult, depth: number): boolean {
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
          this.runGroup(pkt, a.groupId, result, depth);
          break;
        case 'ct':
          if (a.actions.length) throw new SimUnsupportedError('ct with nested actions (nat, exec)');
          {
            const state = this.conntrackStep(pkt, a);
            // only a recirculated copy sees the new ct_state; without table= the packet goes on as it was
            if (a.recircTable !== 255) {
              this.runTable({ ...pkt, ct_state: state }, a.recircTable, result, depth + 1);
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
   * OVS hashes a select group's packet over its live buckets; the sim takes the first live one, so
   * a test sees a deterministic choice and, with `deadPorts`, the failover.
   */
  private runGroup(pkt: SimPacket, groupId: number, result: SimResult, depth: number): void {
    const group = this.groups.get(groupId);
    if (!group) throw new SimUnsupportedError(`group ${groupId} is not installed`);
    if (group.groupType !== 'select' && group.groupType !== 'fast_failover') throw new SimUnsupportedError(`group type ${group.groupType}`);
    const live = group.buckets.find((b) => !this.options.deadPorts?.has(b.watchPort));
    if (live) this.runActions({ ...pkt }, live.actions, result, depth + 1);
  }

  /** the ct_state conntrack gives the packet; commits it when asked */
  private conntrackStep(pkt: SimPacket, ct: Extract<Action, { type: 'ct' }>): number {
    const zone = typeof ct.zone === 'number' ? ct.zone : Number(readRef(pkt, ct.zone.field, ct.zone.ofs, ct.zone.nBits));
    const { key, reply } = connKey(pkt, zone);
    const opener = this.conntrack.get(key);
    if ((ct.flags & 1) !== 0 && opener === undefined) this.conntrack.set(key, reply); // commit
    if (this.options.ctState !== undefined) return this.options.ctState;
    return opener === undefined ? CT_STATE.trk | CT_STATE.new : CT_STATE.trk | CT_STATE.est | (opener !== reply ? CT_STATE.rpl : 0);
  }
}
