/**
 * OpenFlow 1.3 actions (ofp_action_*), with Nicira extensions from ./nicira.
 * Decode dispatches on the type code; encode computes every length and pad.
 */
import { NX_VENDOR_ID } from './constants';
import { OfDecodeError, OfEncodeError } from './errors';
import {
  NX_ACTION_MIN_LEN,
  decodeNiciraAction,
  decodeOxmPadded,
  encodeNiciraAction,
  type NiciraAction,
} from './nicira';
import { encodeOxm, type OxmTlv } from './oxm';
import { putU16, putU32, type Reader, type Writer } from './wire';

export enum OFPAT {
  OUTPUT = 0,
  COPY_TTL_OUT = 11,
  COPY_TTL_IN = 12,
  SET_MPLS_TTL = 15,
  DEC_MPLS_TTL = 16,
  PUSH_VLAN = 17,
  POP_VLAN = 18,
  PUSH_MPLS = 19,
  POP_MPLS = 20,
  SET_QUEUE = 21,
  GROUP = 22,
  SET_NW_TTL = 23,
  DEC_NW_TTL = 24,
  SET_FIELD = 25,
  PUSH_PBB = 26,
  POP_PBB = 27,
  EXPERIMENTER = 0xffff,
}

export const OFP_ACTION_HEADER_LEN = 8;
export const OFP_ACTION_OUTPUT_LEN = 16;

export type StandardAction =
  | { type: 'output'; port: number; maxLen: number }
  | { type: 'copy_ttl_out' }
  | { type: 'copy_ttl_in' }
  | { type: 'set_mpls_ttl'; ttl: number }
  | { type: 'dec_mpls_ttl' }
  | { type: 'push_vlan'; ethertype: number }
  | { type: 'pop_vlan' }
  | { type: 'push_mpls'; ethertype: number }
  | { type: 'pop_mpls'; ethertype: number }
  | { type: 'set_queue'; queueId: number }
  | { type: 'group'; groupId: number }
  | { type: 'set_nw_ttl'; ttl: number }
  | { type: 'dec_nw_ttl' }
  | { type: 'set_field'; field: OxmTlv }
  | { type: 'push_pbb'; ethertype: number }
  | { type: 'pop_pbb' }
  /** an experimenter action we do not model: the bytes after the experimenter id, padding included */
  | { type: 'experimenter'; experimenter: number; data: Buffer };

export type Action = StandardAction | NiciraAction;
export type ActionType = Action['type'];

/** decodes actions until the reader's window is exhausted */
export function decodeActions(r: Reader): Action[] {
  const actions: Action[] = [];
  while (r.remaining > 0) actions.push(decodeAction(r));
  return actions;
}

function decodeAction(r: Reader): Action {
  const at = r.offset;
  const start = r.pos;
  const room = r.remaining;
  if (room < OFP_ACTION_HEADER_LEN) {
    throw new OfDecodeError('bad_length', `${room} trailing bytes cannot hold an action`, { offset: at });
  }
  const type = r.u16();
  const len = r.u16();
  if (len < OFP_ACTION_HEADER_LEN || (len & 7) !== 0) {
    throw new OfDecodeError('bad_length', `action type ${type}: length ${len} is not a multiple of 8 (min 8)`, { offset: at });
  }
  if (len > room) {
    throw new OfDecodeError('bad_length', `action type ${type}: length ${len} overruns its list (${room} bytes left)`, {
      offset: at,
    });
  }
  const end = start + len;
  let action: Action;
  switch (type) {
    case OFPAT.OUTPUT:
      expectActionLen(len, OFP_ACTION_OUTPUT_LEN, 'output', at);
      action = { type: 'output', port: r.u32(), maxLen: r.u16() };
      break;
    case OFPAT.COPY_TTL_OUT:
      expectActionLen(len, 8, 'copy_ttl_out', at);
      action = { type: 'copy_ttl_out' };
      break;
    case OFPAT.COPY_TTL_IN:
      expectActionLen(len, 8, 'copy_ttl_in', at);
      action = { type: 'copy_ttl_in' };
      break;
    case OFPAT.SET_MPLS_TTL:
      expectActionLen(len, 8, 'set_mpls_ttl', at);
      action = { type: 'set_mpls_ttl', ttl: r.u8() };
      break;
    case OFPAT.DEC_MPLS_TTL:
      expectActionLen(len, 8, 'dec_mpls_ttl', at);
      action = { type: 'dec_mpls_ttl' };
      break;
    case OFPAT.PUSH_VLAN:
      expectActionLen(len, 8, 'push_vlan', at);
      action = { type: 'push_vlan', ethertype: r.u16() };
      break;
    case OFPAT.POP_VLAN:
      expectActionLen(len, 8, 'pop_vlan', at);
      action = { type: 'pop_vlan' };
      break;
    case OFPAT.PUSH_MPLS:
      expectActionLen(len, 8, 'push_mpls', at);
      action = { type: 'push_mpls', ethertype: r.u16() };
      break;
    case OFPAT.POP_MPLS:
      expectActionLen(len, 8, 'pop_mpls', at);
      action = { type: 'pop_mpls', ethertype: r.u16() };
      break;
    case OFPAT.SET_QUEUE:
      expectActionLen(len, 8, 'set_queue', at);
      action = { type: 'set_queue', queueId: r.u32() };
      break;
    case OFPAT.GROUP:
      expectActionLen(len, 8, 'group', at);
      action = { type: 'group', groupId: r.u32() };
      break;
    case OFPAT.SET_NW_TTL:
      expectActionLen(len, 8, 'set_nw_ttl', at);
      action = { type: 'set_nw_ttl', ttl: r.u8() };
      break;
    case OFPAT.DEC_NW_TTL:
      expectActionLen(len, 8, 'dec_nw_ttl', at);
      action = { type: 'dec_nw_ttl' };
      break;
    case OFPAT.SET_FIELD:
      action = { type: 'set_field', field: decodeOxmPadded(r, end, 'set_field', at) };
      break;
    case OFPAT.PUSH_PBB:
      expectActionLen(len, 8, 'push_pbb', at);
      action = { type: 'push_pbb', ethertype: r.u16() };
      break;
    case OFPAT.POP_PBB:
      expectActionLen(len, 8, 'pop_pbb', at);
      action = { type: 'pop_pbb' };
      break;
    case OFPAT.EXPERIMENTER: {
      const experimenter = r.u32();
      if (experimenter !== NX_VENDOR_ID) {
        action = { type: 'experimenter', experimenter, data: r.copy(len - 8) };
        break;
      }
      if (len < NX_ACTION_MIN_LEN) {
        throw new OfDecodeError('bad_length', `Nicira action: length ${len} < ${NX_ACTION_MIN_LEN}`, { offset: at });
      }
      action = decodeNiciraAction(r, r.u16(), len, end, at, decodeActions);
      break;
    }
    default:
      throw new OfDecodeError('bad_action', `unknown action type ${type}`, { offset: at });
  }
  r.pos = end; // past the padding
  return action;
}

function expectActionLen(len: number, expected: number, what: string, at: number): void {
  if (len !== expected) throw new OfDecodeError('bad_length', `${what}: length ${len}, expected ${expected}`, { offset: at });
}

export function encodeActions(w: Writer, actions: readonly Action[]): void {
  for (let i = 0; i < actions.length; i++) encodeAction(w, actions[i]!);
}

function encodeOutput(w: Writer, port: number, maxLen: number): void {
  const at = w.claim(OFP_ACTION_OUTPUT_LEN);
  const b = w.buf;
  b[at] = 0;
  b[at + 1] = OFPAT.OUTPUT;
  b[at + 2] = 0;
  b[at + 3] = OFP_ACTION_OUTPUT_LEN;
  putU32(b, at + 4, port);
  putU16(b, at + 8, maxLen);
  for (let i = at + 10; i < at + OFP_ACTION_OUTPUT_LEN; i++) b[i] = 0;
}

function encodeAction(w: Writer, a: Action): void {
  switch (a.type) {
    case 'output':
      return encodeOutput(w, a.port, a.maxLen);
    case 'copy_ttl_out':
      return emptyAction(w, OFPAT.COPY_TTL_OUT);
    case 'copy_ttl_in':
      return emptyAction(w, OFPAT.COPY_TTL_IN);
    case 'set_mpls_ttl':
      w.u16(OFPAT.SET_MPLS_TTL).u16(8).u8(a.ttl).zeros(3);
      return;
    case 'dec_mpls_ttl':
      return emptyAction(w, OFPAT.DEC_MPLS_TTL);
    case 'push_vlan':
      return ethertypeAction(w, OFPAT.PUSH_VLAN, a.ethertype);
    case 'pop_vlan':
      return emptyAction(w, OFPAT.POP_VLAN);
    case 'push_mpls':
      return ethertypeAction(w, OFPAT.PUSH_MPLS, a.ethertype);
    case 'pop_mpls':
      return ethertypeAction(w, OFPAT.POP_MPLS, a.ethertype);
    case 'set_queue':
      w.u16(OFPAT.SET_QUEUE).u16(8).u32(a.queueId);
      return;
    case 'group':
      w.u16(OFPAT.GROUP).u16(8).u32(a.groupId);
      return;
    case 'set_nw_ttl':
      w.u16(OFPAT.SET_NW_TTL).u16(8).u8(a.ttl).zeros(3);
      return;
    case 'dec_nw_ttl':
      return emptyAction(w, OFPAT.DEC_NW_TTL);
    case 'set_field': {
      const start = w.pos;
      w.u16(OFPAT.SET_FIELD).u16(0);
      encodeOxm(w, a.field, 'shortest');
      w.padTo(8, start);
      w.patchU16(start + 2, w.pos - start);
      return;
    }
    case 'push_pbb':
      return ethertypeAction(w, OFPAT.PUSH_PBB, a.ethertype);
    case 'pop_pbb':
      return emptyAction(w, OFPAT.POP_PBB);
    case 'experimenter': {
      const start = w.pos;
      w.u16(OFPAT.EXPERIMENTER).u16(0).u32(a.experimenter).bytes(a.data);
      w.padTo(8, start);
      w.patchU16(start + 2, w.pos - start);
      return;
    }
    default:
      if (!encodeNiciraAction(w, a, encodeActions)) {
        throw new OfEncodeError(`unknown action type '${String((a as { type?: unknown }).type)}'`, { field: 'type' });
      }
  }
}

function emptyAction(w: Writer, type: OFPAT): void {
  w.u16(type).u16(8).zeros(4);
}

function ethertypeAction(w: Writer, type: OFPAT, ethertype: number): void {
  w.u16(type).u16(8).u16(ethertype).zeros(2);
}
