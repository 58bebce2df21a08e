import { OFP_HEADER_LEN, OFP_MAX_MESSAGE_LEN, OFP_VERSION, OFPT } from './constants';
import { OfDecodeError, OfEncodeError } from './errors';
import type { OfMessage, OfMessageOf, OfMessageType } from './message';
import { putU32, Reader, Writer } from './wire';
import { basicCodecs } from './messages/basic';
import { flowCodecs } from './messages/flow';
import { groupMeterQueueCodecs } from './messages/group-meter-queue';
import { multipartCodecs } from './messages/multipart';

/**
 * One codec unit per message type, Ryu-style: decode and encode of the body
 * (everything after the 8-byte header) side by side.
 */
export interface MessageCodec<T extends OfMessageType> {
  readonly type: T;
  /** `r` is a window over the body; it must be consumed exactly. */
  decode(r: Reader, xid: number): OfMessageOf<T>;
  encode(w: Writer, msg: OfMessageOf<T>): void;
}

export type AnyMessageCodec = { [T in OfMessageType]: MessageCodec<T> }[OfMessageType];

/** The registry, by OFPT code: owned here, so importing this module alone decodes every type. */
const byCode: (AnyMessageCodec | undefined)[] = [];
for (const c of [...basicCodecs, ...flowCodecs, ...multipartCodecs, ...groupMeterQueueCodecs]) byCode[OFPT[c.type]] = c;

export type DecodeResult = { ok: true; message: OfMessage } | { ok: false; error: OfDecodeError };

/**
 * Decodes exactly one message occupying `buf[at .. at+length)`.
 * Never throws: every failure is returned as a typed OfDecodeError carrying offset, type and xid.
 */
export function decodeMessage(buf: Buffer, at = 0): DecodeResult {
  if (buf.length - at < OFP_HEADER_LEN) {
    return fail(new OfDecodeError('truncated', `header: need 8 bytes, have ${buf.length - at}`, { offset: 0 }));
  }
  // the header as locals, not an object: this runs for every message received
  const version = buf[at]!;
  const type = buf[at + 1]!;
  const length = (buf[at + 2]! << 8) | buf[at + 3]!;
  const xid = ((buf[at + 4]! << 24) | (buf[at + 5]! << 16) | (buf[at + 6]! << 8) | buf[at + 7]!) >>> 0;
  if (version !== OFP_VERSION) {
    return fail(new OfDecodeError('bad_version', `version 0x${version.toString(16)} is not OpenFlow 1.3`, { msgType: type, xid, offset: 0 }));
  }
  if (length < OFP_HEADER_LEN) return fail(new OfDecodeError('bad_length', `header length ${length} < 8`, { msgType: type, xid, offset: 0 }));
  if (length > buf.length - at) {
    return fail(new OfDecodeError('truncated', `header length ${length} > ${buf.length - at} bytes available`, { msgType: type, xid, offset: 0 }));
  }
  const codec = byCode[type];
  if (!codec) return fail(new OfDecodeError('unknown_type', `unknown message type ${type}`, { msgType: type, xid, offset: 0 }));
  try {
    const r = new Reader(buf, at + OFP_HEADER_LEN, at + length, at);
    const message = codec.decode(r, xid);
    if (r.remaining !== 0) {
      throw new OfDecodeError('bad_length', `${codec.type}: ${r.remaining} trailing bytes`, { offset: r.offset });
    }
    return { ok: true, message };
  } catch (e) {
    if (e instanceof OfDecodeError) return fail(e.withContext({ msgType: type, xid }));
    // A codec bug must still surface as a typed error, never as a crash of the caller.
    return fail(new OfDecodeError('bad_value', `internal decode failure: ${(e as Error)?.message ?? String(e)}`, { msgType: type, xid }, { cause: e }));
  }
}

function fail(error: OfDecodeError): DecodeResult {
  return { ok: false, error };
}

/** Decodes one message, throwing the typed OfDecodeError on failure. */
export function decodeMessageOrThrow(buf: Buffer, at = 0): OfMessage {
  const res = decodeMessage(buf, at);
  if (!res.ok) throw res.error;
  return res.message;
}

/** fits most messages a controller sends (flow_mod, packet_out) without the writer growing */
const ENCODE_INITIAL_BYTES = 256;

/**
 * Encodes a message into `w` (appending) with `xid` in its header (default: the message's own).
 * Lengths are computed, never taken from the object.
 */
export function encodeMessageInto(w: Writer, msg: OfMessage, xid = msg.xid): void {
  const code = OFPT[msg.type];
  const codec = byCode[code] as MessageCodec<OfMessageType> | undefined;
  if (!codec) throw new OfEncodeError(`no codec for message type ${msg.type}`, { msgType: code, xid });
  const start = w.claim(OFP_HEADER_LEN);
  const b = w.buf;
  b[start] = OFP_VERSION;
  b[start + 1] = code;
  putU32(b, start + 4, xid);
  try {
    codec.encode(w, msg);
  } catch (e) {
    if (e instanceof OfEncodeError) throw new OfEncodeError(e.message, { msgType: code, xid, ...e.context });
    throw e;
  }
  const len = w.pos - start;
  if (len > OFP_MAX_MESSAGE_LEN) {
    throw new OfEncodeError(`${msg.type} is ${len} bytes, over the 65535-byte OpenFlow limit`, { msgType: code, xid });
  }
  w.patchU16(start + 2, len);
}

/** Encodes one message into a fresh Buffer. */
export function encodeMessage(msg: OfMessage): Buffer {
  const w = new Writer(ENCODE_INITIAL_BYTES);
  encodeMessageInto(w, msg);
  // the writer is ours alone, so its bytes need no copy
  return w.finish();
}
