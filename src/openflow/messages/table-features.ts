// struct ofp_table_features and its properties (OFPMP_TABLE_FEATURES bodies).
import { OfDecodeError, OfEncodeError } from '../errors';
import type { Reader, Writer } from '../wire';
import { decodeAll, patchLength, structReader } from './group-meter-queue';

export const OFP_TABLE_FEATURES_FIXED_LEN = 64;
export const OFP_MAX_TABLE_NAME_LEN = 32;
const OFP_TABLE_FEATURE_PROP_HEADER_LEN = 4;
const OFP_TABLE_FEATURE_PROP_EXPERIMENTER_MIN_LEN = 12;
const OXM_CLASS_EXPERIMENTER = 0xffff;

/**
 * An instruction or action as table features list it: its type and, for experimenter types,
 * the bytes after the 4-byte type/length header (experimenter id, subtype) kept raw.
 */
export interface TlvId {
  type: number;
  data: Buffer;
}

/** An OXM field as table features list it: the 32-bit header, plus the experimenter id for class 0xffff. */
export interface OxmId {
  header: number;
  experimenter?: number;
}

/** Indexed by OFPTFPT_* code; null marks codes the spec leaves unused. */
const PROP_TYPES = [
  'instructions', 'instructions_miss',
  'next_tables', 'next_tables_miss',
  'write_actions', 'write_actions_miss',
  'apply_actions', 'apply_actions_miss',
  'match', null,
  'wildcards', null,
  'write_setfield', 'write_setfield_miss',
  'apply_setfield', 'apply_setfield_miss',
] as const;
const OFPTFPT_EXPERIMENTER = 0xfffe;
const OFPTFPT_EXPERIMENTER_MISS = 0xffff;

type PropTypeName = Exclude<(typeof PROP_TYPES)[number], null>;
export type InstructionPropType = Extract<PropTypeName, `instructions${string}`>;
export type NextTablesPropType = Extract<PropTypeName, `next_tables${string}`>;
export type ActionsPropType = Extract<PropTypeName, `${string}_actions${string}`>;
export type OxmPropType = Extract<PropTypeName, 'match' | 'wildcards' | `${string}_setfield${string}`>;

export type TableFeatureProp =
  | { type: InstructionPropType; instructionIds: TlvId[] }
  | { type: NextTablesPropType; tableIds: number[] }
  | { type: ActionsPropType; actionIds: TlvId[] }
  | { type: OxmPropType; oxmIds: OxmId[] }
  /** `data`: experimenter-defined bytes after exp_type (Ryu shows them as uint32 words) */
  | { type: 'experimenter' | 'experimenter_miss'; experimenter: number; expType: number; data: Buffer };

/** struct ofp_table_features */
export interface TableFeatures {
  tableId: number;
  name: string;
  metadataMatch: bigint;
  metadataWrite: bigint;
  /** OFPTC_* bits */
  config: number;
  maxEntries: number;
  properties: TableFeatureProp[];
}

function decodeTlvId(r: Reader): TlvId {
  const id = structReader(r, 2, 4, 'table feature id');
  const type = id.u16();
  id.skip(2);
  return { type, data: id.copy(id.remaining) };
}

function encodeTlvId(w: Writer, id: TlvId): void {
  const start = w.pos;
  w.u16(id.type).u16(0).bytes(id.data);
  patchLength(w, start, 2);
}

function decodeOxmId(r: Reader): OxmId {
  const at = r.offset;
  const header = r.remaining >= 4 ? r.u32() : undefined;
  const isExperimenter = header !== undefined && header >>> 16 === OXM_CLASS_EXPERIMENTER;
  if (header === undefined || (isExperimenter && r.remaining < 4)) {
    throw new OfDecodeError('bad_length', 'OXM id cut short by its property length', { offset: at });
  }
  return isExperimenter ? { header, experimenter: r.u32() } : { header };
}

function encodeOxmId(w: Writer, id: OxmId): void {
  const isExperimenter = id.header >>> 16 === OXM_CLASS_EXPERIMENTER;
  if (isExperimenter !== (id.experimenter !== undefined)) {
    throw new OfEncodeError(`OXM id 0x${(id.header >>> 0).toString(16)}: an experimenter id goes with class 0xffff and only with it`, {
      field: 'oxmIds',
    });
  }
  w.u32(id.header);
  if (id.experimenter !== undefined) w.u32(id.experimenter);
}

function propTypeName(code: number, offset: number): TableFeatureProp['type'] {
  if (code === OFPTFPT_EXPERIMENTER) return 'experimenter';
  if (code === OFPTFPT_EXPERIMENTER_MISS) return 'experimenter_miss';
  const name = PROP_TYPES[code];
  if (!name) throw new OfDecodeError('unknown_type', `table feature property type ${code}`, { offset });
  return name;
}

function propTypeCode(name: TableFeatureProp['type']): number {
  if (name === 'experimenter') return OFPTFPT_EXPERIMENTER;
  if (name === 'experimenter_miss') return OFPTFPT_EXPERIMENTER_MISS;
  const code = PROP_TYPES.indexOf(name);
  if (code < 0) throw new OfEncodeError(`unknown table feature property '${String(name)}'`, { field: 'properties' });
  return code;
}

/** Padding after a property: its length field excludes it, the enclosing table features include it. */
function propPadding(len: number): number {
  return (8 - (len % 8)) % 8;
}

function decodeProp(r: Reader): TableFeatureProp {
  const at = r.offset;
  const p = structReader(r, 2, OFP_TABLE_FEATURE_PROP_HEADER_LEN, 'ofp_table_feature_prop');
  const len = p.remaining;
  const type = propTypeName(p.u16(), at);
  p.skip(2);
  const pad = propPadding(len);
  if (r.remaining < pad) {
    throw new OfDecodeError('bad_length', `table feature property ${type}: ${pad} bytes of padding overrun its table`, { offset: at });
  }
  r.skip(pad);
  switch (type) {
    case 'instructions':
    case 'instructions_miss':
      return { type, instructionIds: decodeAll(p, decodeTlvId) };
    case 'next_tables':
    case 'next_tables_miss':
      return { type, tableIds: [...p.bytes(p.remaining)] };
    case 'write_actions':
    case 'write_actions_miss':
    case 'apply_actions':
    case 'apply_actions_miss':
      return { type, actionIds: decodeAll(p, decodeTlvId) };
    case 'experimenter':
    case 'experimenter_miss': {
      if (len < OFP_TABLE_FEATURE_PROP_EXPERIMENTER_MIN_LEN) {
        throw new OfDecodeError('bad_length', `table feature property ${type}: length ${len} < 12`, { offset: at });
      }
      return { type, experimenter: p.u32(), expType: p.u32(), data: p.copy(p.remaining) };
    }
    default:
      return { type, oxmIds: decodeAll(p, decodeOxmId) };
  }
}

function encodeProp(w: Writer, prop: TableFeatureProp): void {
  const start = w.pos;
  w.u16(propTypeCode(prop.type)).u16(0);
  switch (prop.type) {
    case 'instructions':
    case 'instructions_miss':
      for (const id of prop.instructionIds) encodeTlvId(w, id);
      break;
    case 'next_tables':
    case 'next_tables_miss':
      for (const t of prop.tableIds) w.u8(t);
      break;
    case 'write_actions':
    case 'write_actions_miss':
    case 'apply_actions':
    case 'apply_actions_miss':
      for (const id of prop.actionIds) encodeTlvId(w, id);
      break;
    case 'experimenter':
    case 'experimenter_miss':
      w.u32(prop.experimenter).u32(prop.expType).bytes(prop.data);
      break;
    default:
      for (const id of prop.oxmIds) encodeOxmId(w, id);
  }
  patchLength(w, start, 2);
  w.zeros(propPadding(w.pos - start));
}

export function decodeTableFeatures(r: Reader): TableFeatures {
  const t = structReader(r, 0, OFP_TABLE_FEATURES_FIXED_LEN, 'ofp_table_features');
  t.skip(2);
  const tableId = t.u8();
  t.skip(5);
  const name = t.str(OFP_MAX_TABLE_NAME_LEN);
  const metadataMatch = t.u64();
  const metadataWrite = t.u64();
  const config = t.u32();
  const maxEntries = t.u32();
  return { tableId, name, metadataMatch, metadataWrite, config, maxEntries, properties: decodeAll(t, decodeProp) };
}

export function encodeTableFeatures(w: Writer, f: TableFeatures): void {
  const start = w.pos;
  w.u16(0).u8(f.tableId).zeros(5).str(f.name, OFP_MAX_TABLE_NAME_LEN, 'table_features.name');
  w.u64(f.metadataMatch).u64(f.metadataWrite).u32(f.config).u32(f.maxEntries);
  for (const p of f.properties) encodeProp(w, p);
  patchLength(w, start, 0);
}
