import { OFP_HEADER_LEN } from './constants';
import { OfDecodeError } from './errors';

/**
 * Splits a byte stream into whole OpenFlow messages, whatever the chunking.
 * Memory is bounded: at most one partial message (< 64 KiB) is held between pushes.
 * A length field < 8 makes the stream unrecoverable (no resync is possible): `push` still
 * returns the messages framed before it, sets `error`, and throws that error on any later push.
 */
export class Framer {
  private pending: Buffer | null = null;
  private failed: OfDecodeError | null = null;
  /** stream offset of the first byte in `pending`, for error reports */
  private streamOffset = 0;

  /** the framing error that ended the stream, if any; check it after each push */
  get error(): OfDecodeError | null {
    return this.failed;
  }

  /** Returns the complete messages in this chunk (each a standalone Buffer slice). */
  push(chunk: Buffer): Buffer[] {
    if (this.failed) throw this.failed;
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: Buffer[] = [];
    let at = 0;
    while (buf.length - at >= OFP_HEADER_LEN) {
      const len = buf.readUInt16BE(at + 2);
      if (len < OFP_HEADER_LEN) {
        this.failed = new OfDecodeError('bad_length', `framing: message length ${len} < 8`, {
          offset: this.streamOffset + at,
          msgType: buf[at + 1],
          xid: buf.readUInt32BE(at + 4),
        });
        this.pending = null;
        return out;
      }
      if (buf.length - at < len) break;
      out.push(buf.subarray(at, at + len));
      at += len;
    }
    this.streamOffset += at;
    // Copy the tail so a retained partial message does not pin the caller's large chunk.
    this.pending = at < buf.length ? Buffer.from(buf.subarray(at)) : null;
    return out;
  }

  /** bytes held waiting for the rest of a message (always < 65536) */
  get buffered(): number {
    return this.pending?.length ?? 0;
  }
}
