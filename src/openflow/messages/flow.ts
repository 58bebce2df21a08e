// Flow-table and datapath messages: flow_mod, packet_in/out, flow_removed, port_status.
import { decodeActions, encodeActions, type Action } from '../actions';
import type { AnyMessageCodec, MessageCodec } from '../codec';
import { OFPFC } from '../constants';
import { OfDecodeError, OfEncodeError } from '../errors';
import { decodeInstructions, encodeInstructions, type Instruction } from '../instructions';
import { decodeMatch, encodeMatch, type Match } from '../oxm';
import { decodePort, encodePort, OFP_PORT_LEN, type Port } from '../port';
import { putU16, putU32, putU64, putU8 } from '../wire';
import { expectBodyLength, expectMinBodyLength } from './basic';

export type FlowModCommand = 'add' | 'modify' | 'modify_strict' | 'delete' | 'delete_strict';

export interface FlowMod {
  type: 'FLOW_MOD';
  xid: number;
  cookie: bigint;
  cookieMask: bigint;
  tableId: number;
  command: FlowModCommand;
  idleTimeout: number;
  hardTimeout: number;
  priority: number;
  bufferId: number;
  outPort: number;
  outGroup: number;
  flags: number;
  importance?: never; // OF1.4+, not in 1.3
  match: Match;
  instructions: Instruction[];
}

export interface PacketIn {
  type: 'PACKET_IN';
  xid: number;
  bufferId: number;
  totalLen: number;
  /** OFPR_NO_MATCH 0, OFPR_ACTION 1, OFPR_INVALID_TTL 2 */
  reason: number;
  tableId: number;
  cookie: bigint;
  match: Match;
  /**
   * The frame, as a view into the bytes the message was decoded from (no copy: packet-ins are the
   * hot path). A handler that keeps it beyond its own run should copy it, or it pins the whole read.
   */
  data: Buffer;
}

export interface PacketOut {
  type: 'PACKET_OUT';
  xid: number;
  bufferId: number;
  inPort: number;
  actions: Action[];
  data: Buffer;
}

export interface FlowRemoved {
  type: 'FLOW_REMOVED';
  xid: number;
  cookie: bigint;
  priority: number;
  /** OFPRR_IDLE_TIMEOUT 0, HARD_TIMEOUT 1, DELETE 2, GROUP_DELETE 3 */
  reason: number;
  tableId: number;
  durationSec: number;
  durationNsec: number;
  idleTimeout: number;
  hardTimeout: number;
  packetCount: bigint;
  byteCount: bigint;
  match: Match;
}

export interface PortStatus {
  type: 'PORT_STATUS';
  xid: number;
  /** OFPPR_ADD 0, DELETE 1, MODIFY 2 */
  reason: number;
  desc: Port;
}

export type FlowMessage = FlowMod | PacketIn | PacketOut | FlowRemoved | PortStatus;


// Fixed parts of the bodies (after the 8-byte header), from the OF1.3 structs.
export const OFP_FLOW_MOD_FIXED_LEN = 40;
export const OFP_PACKET_IN_FIXED_LEN = 16;
export const OFP_FLOW_REMOVED_FIXED_LEN = 40;
export const OFP_PORT_STATUS_BODY_LEN = 8 + OFP_PORT_LEN;
export const OFP_PACKET_OUT_FIXED_LEN = 16;
/** the smallest ofp_match: an empty OXM list padded to 8 bytes */
export const OFP_MATCH_MIN_LEN = 8;

/** Indexed by OFPFC code. */
const FLOW_MOD_COMMANDS: readonly FlowModCommand[] = ['add', 'modify', 'modify_strict', 'delete', 'delete_strict'];

export function flowModCommandCode(command: FlowModCommand): OFPFC {
  const code = FLOW_MOD_COMMANDS.indexOf(command);
  if (code < 0) throw new OfEncodeError(`unknown flow_mod command '${String(command)}'`, { field: 'command' });
  return code;
}

const flowModCodec: MessageCodec<'FLOW_MOD'> = {
  type: 'FLOW_MOD',
  decode(r, xid) {
    expectMinBodyLength(r, OFP_FLOW_MOD_FIXED_LEN + OFP_MATCH_MIN_LEN, 'ofp_flow_mod');
    const cookie = r.u64();
    const cookieMask = r.u64();
    const tableId = r.u8();
    const commandAt = r.offset;
    const commandCode = r.u8();
    const command = FLOW_MOD_COMMANDS[commandCode];
    if (command === undefined) {
      throw new OfDecodeError('bad_value', `flow_mod command ${commandCode} is not an OFPFC_* code`, { offset: commandAt });
    }
    const idleTimeout = r.u16();
    const hardTimeout = r.u16();
    const priority = r.u16();
    const bufferId = r.u32();
    const outPort = r.u32();
    const outGroup = r.u32();
    const flags = r.u16();
    r.skip(2);
    const match = decodeMatch(r);
    const instructions = decodeInstructions(r.sub(r.remaining, 'flow_mod instructions'));
    return {
      type: 'FLOW_MOD', xid, cookie, cookieMask, tableId, command, idleTimeout, hardTimeout, priority,
      bufferId, outPort, outGroup, flags, match, instructions,
    };
  },
  encode(w, msg) {
    const at = w.claim(OFP_FLOW_MOD_FIXED_LEN);
    const b = w.buf;
    putU64(b, at, msg.cookie);
    putU64(b, at + 8, msg.cookieMask);
    putU8(b, at + 16, msg.tableId);
    b[at + 17] = flowModCommandCode(msg.command);
    putU16(b, at + 18, msg.idleTimeout);
    putU16(b, at + 20, msg.hardTimeout);
    putU16(b, at + 22, msg.priority);
    putU32(b, at + 24, msg.bufferId);
    putU32(b, at + 28, msg.outPort);
    putU32(b, at + 32, msg.outGroup);
    putU16(b, at + 36, msg.flags);
    b[at + 38] = 0;
    b[at + 39] = 0;
    encodeMatch(w, msg.match);
    encodeInstructions(w, msg.instructions);
  },
};

const packetInCodec: MessageCodec<'PACKET_IN'> = {
  type: 'PACKET_IN',
  decode(r, xid) {
    expectMinBodyLength(r, OFP_PACKET_IN_FIXED_LEN + OFP_MATCH_MIN_LEN + 2, 'ofp_packet_in');
    const bufferId = r.u32();
    const totalLen = r.u16();
    const reason = r.u8();
    const tableId = r.u8();
    const cookie = r.u64();
    const match = decodeMatch(r);
    // Two pad bytes align the Ethernet payload's IP header on a 4-byte boundary.
    r.skip(2);
    return { type: 'PACKET_IN', xid, bufferId, totalLen, reason, tableId, cookie, match, data: r.bytes(r.remaining) };
  },
  encode(w, msg) {
    w.u32(msg.bufferId).u16(msg.totalLen).u8(msg.reason).u8(msg.tableId).u64(msg.cookie);
    encodeMatch(w, msg.match);
    w.zeros(2).bytes(msg.data);
  },
};

const flowRemovedCodec: MessageCodec<'FLOW_REMOVED'> = {
  type: 'FLOW_REMOVED',
  decode(r, xid) {
    expectMinBodyLength(r, OFP_FLOW_REMOVED_FIXED_LEN + OFP_MATCH_MIN_LEN, 'ofp_flow_removed');
    const cookie = r.u64();
    const priority = r.u16();
    const reason = r.u8();
    const tableId = r.u8();
    const durationSec = r.u32();
    const durationNsec = r.u32();
    const idleTimeout = r.u16();
    const hardTimeout = r.u16();
    const packetCount = r.u64();
    const byteCount = r.u64();
    const match = decodeMatch(r);
    return {
      type: 'FLOW_REMOVED', xid, cookie, priority, reason, tableId, durationSec, durationNsec,
      idleTimeout, hardTimeout, packetCount, byteCount, match,
    };
  },
  encode(w, msg) {
    w.u64(msg.cookie).u16(msg.priority).u8(msg.reason).u8(msg.tableId);
    w.u32(msg.durationSec).u32(msg.durationNsec).u16(msg.idleTimeout).u16(msg.hardTimeout);
    w.u64(msg.packetCount).u64(msg.byteCount);
    encodeMatch(w, msg.match);
  },
};

const portStatusCodec: MessageCodec<'PORT_STATUS'> = {
  type: 'PORT_STATUS',
  decode(r, xid) {
    expectBodyLength(r, OFP_PORT_STATUS_BODY_LEN, 'ofp_port_status');
    const reason = r.u8();
    r.skip(7);
    return { type: 'PORT_STATUS', xid, reason, desc: decodePort(r) };
  },
  encode(w, msg) {
    w.u8(msg.reason).zeros(7);
    encodePort(w, msg.desc);
  },
};

const packetOutCodec: MessageCodec<'PACKET_OUT'> = {
  type: 'PACKET_OUT',
  decode(r, xid) {
    expectMinBodyLength(r, OFP_PACKET_OUT_FIXED_LEN, 'ofp_packet_out');
    const bufferId = r.u32();
    const inPort = r.u32();
    const actionsLen = r.u16();
    r.skip(6);
    const actions = decodeActions(r.sub(actionsLen, 'packet_out actions'));
    return { type: 'PACKET_OUT', xid, bufferId, inPort, actions, data: r.copy(r.remaining) };
  },
  encode(w, msg) {
    const at = w.claim(OFP_PACKET_OUT_FIXED_LEN);
    const b = w.buf;
    putU32(b, at, msg.bufferId);
    putU32(b, at + 4, msg.inPort);
    for (let i = at + 8; i < at + 16; i++) b[i] = 0;
    encodeActions(w, msg.actions);
    w.patchU16(at + 8, w.pos - at - OFP_PACKET_OUT_FIXED_LEN);
    w.bytes(msg.data);
  },
};

export const flowCodecs: readonly AnyMessageCodec[] = [flowModCodec, packetInCodec, flowRemovedCodec, portStatusCodec, packetOutCodec];
