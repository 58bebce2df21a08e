// Open vSwitch's conntrack flush (Nicira extension NXT_CT_FLUSH, OVS 3.1 and later; OF1.3
// EXPERIMENTER 0x2320): deletes the connection-tracking entries of a zone that match a partial
// original and/or reply tuple. Layout as OVS 3.1's ovs-ofctl ct-flush writes it: nx_ct_flush
// (ip_proto, 7 pad bytes), then properties padded to 8 bytes: the original tuple, the reply tuple
// (each 4 pad bytes, then nested address and port properties) and the zone.
import { NX_VENDOR_ID, OFP_HEADER_LEN, OFPT } from '../constants';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from '../addr';
import { OfDecodeError, OfEncodeError } from '../errors';
import { Reader, Writer } from '../wire';
import { type Experimenter, experimenterBody, niciraMessage } from './basic';

export const NXT_CT_FLUSH = 32;

/** A partial tuple: an absent field matches anything. Addresses are IPv4 or IPv6 text. */
export interface CtTuple {
  src?: string;
  dst?: string;
  srcPort?: number;
  dstPort?: number;
}

export interface CtFlush {
  /** absent: every zone */
  zone?: number;
  /** IP protocol (6 TCP, 17 UDP); 0 matches any */
  ipProto: number;
  orig?: CtTuple;
  reply?: CtTuple;
}

/** property types: nx_ct_flush's, then a tuple's nested ones */
const PROP = { orig: 0, reply: 1, zone: 2 } as const;
const TUPLE_PROP = { src: 0, dst: 1, srcPort: 2, dstPort: 3 } as const;
const PROP_HEADER_LEN = 4;
const FLUSH_FIXED_LEN = 8;
/** an IPv4 address travels IPv4-mapped: ::ffff:a.b.c.d */
const V4_MAPPED_PREFIX = Buffer.from('00000000000000000000ffff', 'hex');

function address(s: string, field: string): Buffer {
  try {
    return s.includes(':') ? parseIpv6(s) : Buffer.concat([V4_MAPPED_PREFIX, parseIpv4(s)]);
  } catch (e) {
    throw new OfEncodeError(`ct flush ${field}: ${(e as Error).message}`, { field });
  }
}

function formatAddress(b: Buffer): string {
  return b.subarray(0, 12).equals(V4_MAPPED_PREFIX) ? formatIpv4(b, 12) : formatIpv6(b);
}

/** A property: type, length (header + value, unpadded), value, zeros to 8 bytes. */
function property(w: Writer, type: number, value: (w: Writer) => void): void {
  const start = w.pos;
  w.u16(type).u16(0);
  value(w);
  w.patchU16(start + 2, w.pos - start);
  w.padTo(8, start);
}

function tuple(w: Writer, type: number, t: CtTuple, which: string): void {
  if (t.src === undefined && t.dst === undefined && t.srcPort === undefined && t.dstPort === undefined) return;
  property(w, type, () => {
    w.zeros(4);
    if (t.src !== undefined) property(w, TUPLE_PROP.src, () => w.bytes(address(t.src!, `${which}.src`)));
    if (t.dst !== undefined) property(w, TUPLE_PROP.dst, () => w.bytes(address(t.dst!, `${which}.dst`)));
    // OVS pads a 16-bit property value to 32 bits and counts the pad in the length
    if (t.srcPort !== undefined) property(w, TUPLE_PROP.srcPort, () => w.u16(t.srcPort!).zeros(2));
    if (t.dstPort !== undefined) property(w, TUPLE_PROP.dstPort, () => w.u16(t.dstPort!).zeros(2));
  });
}

/** NXT_CT_FLUSH; the switch answers only with an error (OVS refuses it from a slave connection). */
export function ctFlush(xid: number, flush: CtFlush): Experimenter {
  const w = new Writer(128).u8(flush.ipProto).zeros(7);
  if (flush.orig) tuple(w, PROP.orig, flush.orig, 'orig');
  if (flush.reply) tuple(w, PROP.reply, flush.reply, 'reply');
  if (flush.zone !== undefined) property(w, PROP.zone, () => w.u16(flush.zone!).zeros(2));
  return niciraMessage(xid, NXT_CT_FLUSH, Buffer.from(w.finish()));
}

export function isCtFlush(exp: Experimenter): boolean {
  return exp.experimenter === NX_VENDOR_ID && exp.expType === NXT_CT_FLUSH;
}

/** Each property of `r` in turn: its type and a reader over its value; the padding skipped. */
function* properties(r: Reader, what: string): Generator<[number, Reader]> {
  while (r.remaining > 0) {
    const type = r.u16();
    const len = r.u16();
    if (len < PROP_HEADER_LEN) throw new OfDecodeError('bad_length', `${what} property ${type}: length ${len} is shorter than its header`, { offset: r.offset - 2 });
    const value = r.sub(len - PROP_HEADER_LEN, `${what} property ${type}`);
    r.skip(Math.min(r.remaining, (8 - (len % 8)) % 8));
    yield [type, value];
  }
}

function decodeTuple(r: Reader, which: string): CtTuple {
  r.skip(4);
  const t: CtTuple = {};
  for (const [type, v] of properties(r, `ct flush ${which} tuple`)) {
    if (type === TUPLE_PROP.src) t.src = formatAddress(v.bytes(16));
    else if (type === TUPLE_PROP.dst) t.dst = formatAddress(v.bytes(16));
    else if (type === TUPLE_PROP.srcPort) t.srcPort = v.u16();
    else if (type === TUPLE_PROP.dstPort) t.dstPort = v.u16();
    else throw new OfDecodeError('unknown_type', `ct flush ${which} tuple: property type ${type}`, { offset: v.offset - PROP_HEADER_LEN });
  }
  return t;
}

/** Decodes NXT_CT_FLUSH; offsets in errors count from the start of the EXPERIMENTER message. */
export function decodeCtFlush(exp: Experimenter): CtFlush | OfDecodeError {
  const context = { msgType: OFPT.EXPERIMENTER, xid: exp.xid };
  if (!isCtFlush(exp)) {
    return new OfDecodeError('unknown_type', `experimenter 0x${exp.experimenter.toString(16)} exp_type ${exp.expType} is not NXT_CT_FLUSH`, { ...context, offset: OFP_HEADER_LEN });
  }
  try {
    const r = experimenterBody(exp);
    r.need(FLUSH_FIXED_LEN, 'nx_ct_flush');
    const flush: CtFlush = { ipProto: r.u8() };
    r.skip(7);
    for (const [type, v] of properties(r, 'ct flush')) {
      if (type === PROP.orig) flush.orig = decodeTuple(v, 'orig');
      else if (type === PROP.reply) flush.reply = decodeTuple(v, 'reply');
      else if (type === PROP.zone) flush.zone = v.u16();
      else throw new OfDecodeError('unknown_type', `ct flush: property type ${type}`, { offset: v.offset - PROP_HEADER_LEN });
    }
    return flush;
  } catch (e) {
    if (e instanceof OfDecodeError) return e.withContext(context);
    throw e;
  }
}
