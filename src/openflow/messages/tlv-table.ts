// Open vSwitch's TLV table (Nicira extension, OF1.3 EXPERIMENTER with experimenter 0x2320):
// which Geneve option (class, type, length) each tun_metadataN field stands for on a bridge.
// Layouts follow OVS include/openflow/nicira-ext.h (nx_tlv_table_mod, nx_tlv_table_reply, nx_tlv_map).
import { NX_VENDOR_ID, OFP_HEADER_LEN, OFPT } from '../constants';
import { OfDecodeError, OfEncodeError } from '../errors';
import { Writer } from '../wire';
import { type Experimenter, experimenterBody, niciraMessage } from './basic';

export const NXT_TLV_TABLE_MOD = 24;
export const NXT_TLV_TABLE_REQUEST = 25;
export const NXT_TLV_TABLE_REPLY = 26;

/** nx_tlv_table_mod commands */
export type TlvTableCommand = 'add' | 'delete' | 'clear';
const COMMANDS: readonly TlvTableCommand[] = ['add', 'delete', 'clear'];

/** One mapping: Geneve option (class, type) of `length` bytes (a multiple of 4, up to 124) ↔ tun_metadata<index> */
export interface TlvMapping {
  optionClass: number;
  optionType: number;
  optionLength: number;
  index: number;
}

export interface TlvTableReply {
  /** bytes of option data the switch can hold over all mappings */
  maxOptionSpace: number;
  /** number of tun_metadata fields */
  maxFields: number;
  mappings: TlvMapping[];
}

const TLV_MAP_LEN = 8;
const TABLE_MOD_FIXED_LEN = 8;
const TABLE_REPLY_FIXED_LEN = 16;
/** the largest option OVS maps (tun_metadata fields are 124 bytes) */
const MAX_OPTION_LENGTH = 124;

function checkMapping(m: TlvMapping): void {
  const bad = (field: keyof TlvMapping, why: string) => new OfEncodeError(`TLV mapping ${field} ${String(m[field])} ${why}`, { field });
  if (!Number.isInteger(m.optionClass) || m.optionClass < 0 || m.optionClass > 0xffff) throw bad('optionClass', 'is not a u16');
  if (!Number.isInteger(m.optionType) || m.optionType < 0 || m.optionType > 0xff) throw bad('optionType', 'is not a u8');
  if (!Number.isInteger(m.optionLength) || m.optionLength <= 0 || m.optionLength > MAX_OPTION_LENGTH || m.optionLength % 4 !== 0) {
    throw bad('optionLength', `is not a multiple of 4 in 4..${MAX_OPTION_LENGTH}`);
  }
  if (!Number.isInteger(m.index) || m.index < 0 || m.index > 0xffff) throw bad('index', 'is not a u16');
}

/** NXT_TLV_TABLE_MOD: add, delete (by index) or clear the bridge's mappings. OVS refuses to add an index that is already mapped. */
export function tlvTableMod(xid: number, command: TlvTableCommand, mappings: readonly TlvMapping[]): Experimenter {
  const w = new Writer(TABLE_MOD_FIXED_LEN + mappings.length * TLV_MAP_LEN).u16(COMMANDS.indexOf(command)).zeros(6);
  for (const m of mappings) {
    checkMapping(m);
    w.u16(m.optionClass).u8(m.optionType).u8(m.optionLength).u16(m.index).zeros(2);
  }
  return niciraMessage(xid, NXT_TLV_TABLE_MOD, Buffer.from(w.finish()));
}

/** NXT_TLV_TABLE_REQUEST: answered by NXT_TLV_TABLE_REPLY with the same xid */
export function tlvTableRequest(xid: number): Experimenter {
  return niciraMessage(xid, NXT_TLV_TABLE_REQUEST, Buffer.alloc(0));
}

/** Decodes NXT_TLV_TABLE_REPLY; offsets in errors count from the start of the EXPERIMENTER message. */
export function decodeTlvTableReply(exp: Experimenter): TlvTableReply | OfDecodeError {
  const ctx = { msgType: OFPT.EXPERIMENTER, xid: exp.xid };
  if (exp.experimenter !== NX_VENDOR_ID || exp.expType !== NXT_TLV_TABLE_REPLY) {
    return new OfDecodeError('unknown_type', `experimenter 0x${exp.experimenter.toString(16)} exp_type ${exp.expType} is not NXT_TLV_TABLE_REPLY`, {
      ...ctx,
      offset: OFP_HEADER_LEN,
    });
  }
  const r = experimenterBody(exp);
  if (r.remaining < TABLE_REPLY_FIXED_LEN || (r.remaining - TABLE_REPLY_FIXED_LEN) % TLV_MAP_LEN !== 0) {
    return new OfDecodeError('bad_length', `TLV table reply: body of ${r.remaining} bytes is not ${TABLE_REPLY_FIXED_LEN} + n × ${TLV_MAP_LEN}`, {
      ...ctx,
      offset: r.offset,
    });
  }
  const maxOptionSpace = r.u32();
  const maxFields = r.u16();
  r.skip(10);
  const mappings: TlvMapping[] = [];
  while (r.remaining > 0) {
    const optionClass = r.u16();
    const optionType = r.u8();
    const optionLength = r.u8();
    const index = r.u16();
    r.skip(2);
    mappings.push({ optionClass, optionType, optionLength, index });
  }
  return { maxOptionSpace, maxFields, mappings };
}
