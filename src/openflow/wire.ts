import { OfDecodeError, OfEncodeError } from './errors';

/**
 * Bounds-checked big-endian reader over a Buffer window.
 * Every read checks `end` first, so a decode can never read past its container
 * and never raises a RangeError: it raises OfDecodeError('truncated') instead.
 */
export class Reader {
  /** absolute position in `buf` */
  pos: number;

  constructor(
    readonly buf: Buffer,
    start = 0,
    /** absolute end (exclusive) of the window this reader may read */
    readonly end = buf.length,
    /** absolute offset of the enclosing message start, used to report offsets relative to it */
    readonly base = start,
  ) {
    this.pos = start;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** offset relative to the enclosing message, for error reports */
  get offset(): number {
    return this.pos - this.base;
  }

  need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end) {
      throw new OfDecodeError('truncated', `${what}: need ${n} bytes, have ${this.end - this.pos}`, {
        offset: this.offset,
      });
    }
  }

  u8(): number {
    if (this.pos + 1 > this.end) this.need(1, 'u8');
    return this.buf[this.pos++]!;
  }

  u16(): number {
    if (this.pos + 2 > this.end) this.need(2, 'u16');
    const b = this.buf;
    const v = (b[this.pos]! << 8) | b[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  u32(): number {
    if (this.pos + 4 > this.end) this.need(4, 'u32');
    const b = this.buf;
    // byte reads: readUInt32BE's argument checks cost more than the read
    const v = ((b[this.pos]! << 24) | (b[this.pos + 1]! << 16) | (b[this.pos + 2]! << 8) | b[this.pos + 3]!) >>> 0;
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    if (this.pos + 8 > this.end) this.need(8, 'u64');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** a sub-slice (shares memory with the input) */
  bytes(n: number): Buffer {
    this.need(n, 'bytes');
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** an independent copy, for values kept beyond the input buffer's life */
  copy(n: number): Buffer {
    const source = this.bytes(n);
    // allocUnsafe+set: Buffer.from(view) takes twice as long for the small frames packet-ins carry
    const out = Buffer.allocUnsafe(n);
    out.set(source);
    return out;
  }

  skip(n: number): void {
    this.need(n, 'padding');
    this.pos += n;
  }

  /** fixed-width NUL-padded string, as port and table names are */
  str(n: number): string {
    const raw = this.bytes(n);
    const nul = raw.indexOf(0);
    return raw.toString('utf8', 0, nul === -1 ? n : nul);
  }

  /**
   * A reader over the next `len` bytes, which the caller must consume through the sub-reader.
   * `len` must lie inside this window; the parent advances past it.
   */
  sub(len: number, what: string): Reader {
    if (len < 0 || this.pos + len > this.end) {
      throw new OfDecodeError('bad_length', `${what}: length ${len} overruns its container (${this.end - this.pos} left)`, {
        offset: this.offset,
      });
    }
    const r = new Reader(this.buf, this.pos, this.pos + len, this.base);
    this.pos += len;
    return r;
  }
}

/**
 * Splits a u64 into 32-bit halves: a DataView's BigInt store is several times faster than
 * writeBigUInt64BE or BigInt shifts and masks, which allocate.
 */
const u64Halves = new DataView(new ArrayBuffer(8));

function outOfRange(v: unknown, bits: number): OfEncodeError {
  return new OfEncodeError(`value ${String(v)} does not fit an unsigned ${bits}-bit field`);
}

/**
 * Stores at an absolute offset of a region the caller claimed (Writer.claim), with the same range
 * checks as Writer's methods: fixed-size structs are written field by field without a bounds
 * check per field, which the hot messages (flow_mod, packet_out) repay.
 */
export function putU8(b: Buffer, at: number, v: number): void {
  if (typeof v !== 'number' || (v & 0xff) !== v) throw outOfRange(v, 8);
  b[at] = v;
}

export function putU16(b: Buffer, at: number, v: number): void {
  if (typeof v !== 'number' || (v & 0xffff) !== v) throw outOfRange(v, 16);
  b[at] = v >>> 8;
  b[at + 1] = v & 0xff;
}

export function putU32(b: Buffer, at: number, v: number): void {
  if (typeof v !== 'number' || v >>> 0 !== v) throw outOfRange(v, 32);
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

export function putU64(b: Buffer, at: number, v: bigint): void {
  if (v === 0n) {
    // most cookie masks, metadata masks and counters: no bigint arithmetic at all
    for (let i = at; i < at + 8; i++) b[i] = 0;
    return;
  }
  // asUintN is one builtin call; two BigInt comparisons cost twice as much
  if (typeof v !== 'bigint' || BigInt.asUintN(64, v) !== v) throw outOfRange(v, 64);
  u64Halves.setBigUint64(0, v);
  const high = u64Halves.getUint32(0);
  const low = u64Halves.getUint32(4);
  b[at] = high >>> 24;
  b[at + 1] = (high >>> 16) & 0xff;
  b[at + 2] = (high >>> 8) & 0xff;
  b[at + 3] = high & 0xff;
  b[at + 4] = low >>> 24;
  b[at + 5] = (low >>> 16) & 0xff;
  b[at + 6] = (low >>> 8) & 0xff;
  b[at + 7] = low & 0xff;
}

/** Growable big-endian writer. `patchU16` fills in lengths once a structure is complete. */
export class Writer {
  buf: Buffer;
  pos = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): this {
    if (typeof v !== 'number' || (v & 0xff) !== v) throw outOfRange(v, 8);
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    if (typeof v !== 'number' || (v & 0xffff) !== v) throw outOfRange(v, 16);
    this.ensure(2);
    this.buf[this.pos++] = (v >>> 8) & 0xff;
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    // integer in range, without `v % 1`: a float modulo (fmod) for every value above 2^31 (OFPP_ANY …)
    if (typeof v !== 'number' || v >>> 0 !== v) throw outOfRange(v, 32);
    this.ensure(4);
    const b = this.buf;
    b[this.pos++] = v >>> 24;
    b[this.pos++] = (v >>> 16) & 0xff;
    b[this.pos++] = (v >>> 8) & 0xff;
    b[this.pos++] = v & 0xff;
    return this;
  }

  u64(v: bigint): this {
    if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) throw outOfRange(v, 64);
    u64Halves.setBigUint64(0, v);
    return this.u32(u64Halves.getUint32(0)).u32(u64Halves.getUint32(4));
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  zeros(n: number): this {
    this.ensure(n);
    // pads are a few bytes: a loop beats Buffer.fill's argument checking
    const b = this.buf;
    for (let end = this.pos + n; this.pos < end; ) b[this.pos++] = 0;
    return this;
  }

  /** Advances past `n` bytes the caller fills in itself (at the returned offset, in `buf`). */
  claim(n: number): number {
    this.ensure(n);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  /** fixed-width NUL-padded string; longer input is an encode error, never silently cut */
  str(s: string, n: number, field: string): this {
    const b = Buffer.from(s, 'utf8');
    if (b.length > n) throw new OfEncodeError(`${field}: ${b.length} bytes exceed ${n}`, { field });
    this.bytes(b);
    return this.zeros(n - b.length);
  }

  /** zero bytes up to the next multiple of `align`, counted from `from` */
  padTo(align: number, from = 0): this {
    const rem = (this.pos - from) % align;
    return rem === 0 ? this : this.zeros(align - rem);
  }

  patchU16(at: number, v: number): void {
    if (v > 0xffff) throw new OfEncodeError(`length ${v} exceeds 65535`);
    this.buf[at] = (v >>> 8) & 0xff;
    this.buf[at + 1] = v & 0xff;
  }

  /** the written bytes (a view; copy if the writer is reused) */
  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}
