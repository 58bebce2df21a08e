// OpenFlow 1.3 bundles (ONF extension 230) as Open vSwitch speaks them:
// EXPERIMENTER messages with experimenter ONF and exp_type 2300 (control) or 2301 (add message).
import { decodeMessage, encodeMessage } from '../codec';
import { OFP_HEADER_LEN, OFPET, OFPT, ONF_VENDOR_ID } from '../constants';
import { OfDecodeError, OfEncodeError } from '../errors';
import type { OfMessage } from '../message';
import { Writer } from '../wire';
import { type ErrorMsg, type Experimenter, experimenterBody } from './basic';

export const ONFT_BUNDLE_CONTROL = 2300;
export const ONFT_BUNDLE_ADD_MESSAGE = 2301;

/** bundle flags */
export const OFPBF_ATOMIC = 1 << 0;
export const OFPBF_ORDERED = 1 << 1;

/** Indexed by OFPBCT code. */
const BUNDLE_CTRL_TYPES = [
  'open_request',
  'open_reply',
  'close_request',
  'close_reply',
  'commit_request',
  'commit_reply',
  'discard_request',
  'discard_reply',
] as const;
export type BundleCtrlType = (typeof BUNDLE_CTRL_TYPES)[number];

/** OFPBFC codes; under OF1.3 they arrive as OFPET_EXPERIMENTER errors (ONF, exp_type 2300 + code). */
export enum OFPBFC {
  UNKNOWN = 0,
  EPERM = 1,
  BAD_ID = 2,
  BUNDLE_EXIST = 3,
  BUNDLE_CLOSED = 4,
  OUT_OF_BUNDLES = 5,
  BAD_TYPE = 6,
  BAD_FLAGS = 7,
  MSG_BAD_LEN = 8,
  MSG_BAD_XID = 9,
  MSG_UNSUP = 10,
  MSG_CONFLICT = 11,
  MSG_TOO_MANY = 12,
  MSG_FAILED = 13,
  TIMEOUT = 14,
  BUNDLE_IN_PROGRESS = 15,
}
const ONFERR_BUNDLE_BASE = 2300;

/** bundle_id u32, type (control) or pad (add) u16, flags u16 */
export const BUNDLE_FIXED_LEN = 8;

/** The message types OVS accepts inside a bundle; anything else fails with OFPBFC_MSG_UNSUP. */
const BUNDLABLE: ReadonlySet<string> = new Set(['FLOW_MOD', 'GROUP_MOD', 'PORT_MOD', 'PACKET_OUT']);

export interface BundleControl {
  kind: 'control';
  xid: number;
  bundleId: number;
  ctlType: BundleCtrlType;
  flags: number;
  /** raw ofp_bundle_prop TLVs, if any (OVS sends none) */
  properties: Buffer;
}

export interface BundleAdd {
  kind: 'add';
  xid: number;
  bundleId: number;
  flags: number;
  message: OfMessage;
  /** raw bytes after the inner message, if any (OVS sends none) */
  properties: Buffer;
}

export type Bundle = BundleControl | BundleAdd;

function checkU32(v: number, field: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new OfEncodeError(`${field} ${v} is not a u32`, { field });
}

export function bundleControl(xid: number, bundleId: number, ctlType: BundleCtrlType, flags: number): Experimenter {
  checkU32(bundleId, 'bundleId');
  const code = BUNDLE_CTRL_TYPES.indexOf(ctlType);
  if (code < 0) throw new OfEncodeError(`unknown bundle control type '${String(ctlType)}'`, { field: 'ctlType' });
  const w = new Writer(BUNDLE_FIXED_LEN).u32(bundleId).u16(code).u16(flags);
  return { type: 'EXPERIMENTER', xid, experimenter: ONF_VENDOR_ID, expType: ONFT_BUNDLE_CONTROL, data: Buffer.from(w.finish()) };
}

/**
 * Wraps `inner` for bundle `bundleId`. OVS requires the inner message to carry the same xid as the
 * bundle message, so `inner` is encoded with `xid` whatever its own xid is.
 * `flags` must equal the flags the bundle was opened with (OVS: OFPBFC_BAD_FLAGS otherwise).
 */
export function bundleAdd(xid: number, bundleId: number, flags: number, inner: OfMessage): Experimenter {
  checkU32(bundleId, 'bundleId');
  if (!BUNDLABLE.has(inner.type)) {
    throw new OfEncodeError(`${inner.type} cannot be bundled (only FLOW_MOD, GROUP_MOD, PORT_MOD, PACKET_OUT)`, { field: 'inner' });
  }
  const innerBytes = encodeMessage({ ...inner, xid });
  const w = new Writer(BUNDLE_FIXED_LEN + innerBytes.length).u32(bundleId).u16(0).u16(flags).bytes(innerBytes);
  return { type: 'EXPERIMENTER', xid, experimenter: ONF_VENDOR_ID, expType: ONFT_BUNDLE_ADD_MESSAGE, data: Buffer.from(w.finish()) };
}

export function isBundle(exp: Experimenter): boolean {
  return exp.experimenter === ONF_VENDOR_ID && (exp.expType === ONFT_BUNDLE_CONTROL || exp.expType === ONFT_BUNDLE_ADD_MESSAGE);
}

/**
 * Decodes an ONF bundle experimenter message. Errors carry the EXPERIMENTER type, the xid and
 * offsets counted from the start of the whole EXPERIMENTER message.
 */
export function decodeBundle(exp: Experimenter): Bundle | OfDecodeError {
  const ctx = { msgType: OFPT.EXPERIMENTER, xid: exp.xid };
  try {
    return decodeBundleBody(exp);
  } catch (e) {
    if (e instanceof OfDecodeError) return e.withContext(ctx);
    return new OfDecodeError('bad_value', `internal bundle decode failure: ${(e as Error)?.message ?? String(e)}`, ctx);
  }
}

function decodeBundleBody(exp: Experimenter): Bundle {
  if (!isBundle(exp)) {
    throw new OfDecodeError(
      'unknown_type',
      `experimenter 0x${exp.experimenter.toString(16)} exp_type ${exp.expType} is not an ONF bundle message`,
      { offset: OFP_HEADER_LEN },
    );
  }
  const r = experimenterBody(exp);
  if (r.remaining < BUNDLE_FIXED_LEN) {
    throw new OfDecodeError('bad_length', `bundle: body is ${r.remaining} bytes, need at least ${BUNDLE_FIXED_LEN}`, { offset: r.offset });
  }
  const bundleId = r.u32();
  const typeAt = r.offset;
  const typeCode = r.u16();
  const flags = r.u16();

  if (exp.expType === ONFT_BUNDLE_CONTROL) {
    const ctlType = BUNDLE_CTRL_TYPES[typeCode];
    if (ctlType === undefined) throw new OfDecodeError('bad_value', `bundle control type ${typeCode} is not an OFPBCT_* code`, { offset: typeAt });
    return { kind: 'control', xid: exp.xid, bundleId, ctlType, flags, properties: r.copy(r.remaining) };
  }

  const innerAt = r.offset;
  if (r.remaining < OFP_HEADER_LEN) {
    throw new OfDecodeError('bad_length', `bundle add: ${r.remaining} bytes cannot hold the inner message header`, { offset: innerAt });
  }
  const res = decodeMessage(exp.data, r.pos);
  if (!res.ok) {
    const inner = res.error;
    throw new OfDecodeError(inner.kind, `bundle add inner message: ${inner.message}`, { offset: innerAt + (inner.context.offset ?? 0) });
  }
  const message = res.message;
  if (message.xid !== exp.xid) {
    throw new OfDecodeError('bad_value', `bundle add: inner xid ${message.xid} differs from the bundle's ${exp.xid}`, { offset: innerAt + 4 });
  }
  if (!BUNDLABLE.has(message.type)) {
    throw new OfDecodeError('bad_value', `bundle add: ${message.type} cannot be bundled`, { offset: innerAt + 1 });
  }
  r.skip(exp.data.readUInt16BE(r.pos + 2));
  return { kind: 'add', xid: exp.xid, bundleId, flags, message, properties: r.copy(r.remaining) };
}

/** The OFPBFC code of a bundle failure reported by OVS under OF1.3, or undefined for other errors. */
export function bundleErrorCode(err: ErrorMsg): OFPBFC | undefined {
  if (err.errType !== OFPET.EXPERIMENTER || err.experimenter !== ONF_VENDOR_ID) return undefined;
  const code = err.code - ONFERR_BUNDLE_BASE;
  return OFPBFC[code] === undefined ? undefined : code;
}
