import { OFP_HEADER_LEN } from './constants';
import { OfDecodeError } from './errors';

/**
 * Receives one complete message: `buf[at .. at+length)`. The bytes are valid only during the
 * call if `buf` is reused by its owner; sockets hand Node a fresh chunk per read, so views stay valid.
 * Returning false pauses the push: the rest of the chunk is kept, and the next push (an empty chunk
 * will do) visits it first.
 */
export type FrameVisitor = (buf: Buffer, at: number, length: number) => boolean | void;

/**
 * Splits a byte stream into whole OpenFlow messages, whatever the chunking.
 * Messages are handed out as offsets into the chunk, not as slices: a Buffer view costs
 * about as much as decoding a small message, and a controller frames every message it receives.
 * Memory is bounded: at most one partial message (< 64 KiB), or the rest of a paused chunk, is held between pushes.
 * A length field < 8 makes the stream unrecoverable (no resync is possible): `push` still
 * visits the messages framed before it, sets `error`, and throws that error on any later push.
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

  /** Visits the complete messages this chunk finishes, in stream order. */
  push(chunk: Buffer, visit: FrameVisitor): void {
    if (this.failed) throw this.failed;
    const buf = this.pending ? (chunk.length === 0 ? this.pending : Buffer.concat([this.pending, chunk])) : chunk;
    this.pending = null;
    let at = 0;
    while (buf.length - at >= OFP_HEADER_LEN) {
      const len = (buf[at + 2]! << 8) | buf[at + 3]!;
      if (len < OFP_HEADER_LEN) {
        this.failed = new OfDecodeError('bad_length', `framing: message length ${len} < 8`, {
          offset: this.streamOffset + at,
          msgType: buf[at + 1],
          xid: buf.readUInt32BE(at + 4),
        });
        return;
      }
      if (buf.length - at < len) break;
      const start = at;
      at += len;
      if (visit(buf, start, len) === false) {
        this.streamOffset += at;
        // a view, not a copy: a paused push is resumed right after (see SwitchSession)
        if (at < buf.length) this.pending = buf.subarray(at);
        return;
      }
    }
    this.streamOffset += at;
    // Copy the tail so a retained partial message does not pin the caller's large chunk.
    if (at < buf.length) this.pending = Buffer.from(buf.subarray(at));
  }

  /** Every complete message in the chunk as its own view: for tools, where convenience beats speed. */
  messages(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.push(chunk, (buf, at, length) => {
      out.push(buf.subarray(at, at + length));
    });
    return out;
  }

  /** bytes held waiting for the rest of a message (< 65536), or for a paused push to resume */
  get buffered(): number {
    return this.pending?.length ?? 0;
  }
}
