import { numberToMac } from '../openflow/addr';

const EMPTY = -1;
const INITIAL_CAPACITY = 1 << 10;

/**
 * MAC → port, as a learning switch keeps it: read straight from a frame's bytes, with no string
 * or boxed number per lookup. A Map keyed by 48-bit numbers cost ~5x as much per packet-in, its
 * keys being heap numbers scattered over the heap. Open addressing over typed arrays, the MAC's
 * two 24-bit halves as the key, at most half full.
 */
export class MacTable {
  private high = new Int32Array(INITIAL_CAPACITY).fill(EMPTY);
  private low = new Int32Array(INITIAL_CAPACITY);
  private ports = new Uint32Array(INITIAL_CAPACITY);
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** the port of the MAC at `frame[at .. at+6)`, if learned */
  get(frame: Uint8Array, at: number): number | undefined {
    const slot = this.find((frame[at]! << 16) | (frame[at + 1]! << 8) | frame[at + 2]!, (frame[at + 3]! << 16) | (frame[at + 4]! << 8) | frame[at + 5]!);
    return this.high[slot] === EMPTY ? undefined : this.ports[slot];
  }

  /** learns (or moves) the MAC at `frame[at .. at+6)`; returns whether that changed anything */
  set(frame: Uint8Array, at: number, port: number): boolean {
    const hi = (frame[at]! << 16) | (frame[at + 1]! << 8) | frame[at + 2]!;
    const lo = (frame[at + 3]! << 16) | (frame[at + 4]! << 8) | frame[at + 5]!;
    const slot = this.find(hi, lo);
    if (this.high[slot] !== EMPTY) {
      if (this.ports[slot] === port) return false;
      this.ports[slot] = port;
      return true;
    }
    this.high[slot] = hi;
    this.low[slot] = lo;
    this.ports[slot] = port;
    if (++this.count * 2 > this.high.length) this.rehash(this.high.length * 2, () => true);
    return true;
  }

  /** forgets every MAC learned on `port` (a port that went down) */
  forgetPort(port: number): void {
    this.rehash(this.high.length, (learnedOn) => learnedOn !== port);
  }

  /** learned entries, MACs as text, for tests and debugging */
  entries(): Map<string, number> {
    const out = new Map<string, number>();
    for (let s = 0; s < this.high.length; s++) {
      if (this.high[s] !== EMPTY) out.set(numberToMac(this.high[s]! * 0x1000000 + this.low[s]!), this.ports[s]!);
    }
    return out;
  }

  /** linear probing from the key's hash to its slot, or to the empty slot where it would go */
  private find(hi: number, lo: number): number {
    const mask = this.high.length - 1;
    let slot = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> 0;
    for (slot &= mask; ; slot = (slot + 1) & mask) {
      const h = this.high[slot]!;
      if (h === EMPTY || (h === hi && this.low[slot] === lo)) return slot;
    }
  }

  /** rebuilds the table at `capacity` with the entries whose port `keep` accepts: growth and bulk deletes alike */
  private rehash(capacity: number, keep: (port: number) => boolean): void {
    const { high, low, ports } = this;
    this.high = new Int32Array(capacity).fill(EMPTY);
    this.low = new Int32Array(capacity);
    this.ports = new Uint32Array(capacity);
    this.count = 0;
    for (let s = 0; s < high.length; s++) {
      if (high[s] === EMPTY || !keep(ports[s]!)) continue;
      const slot = this.find(high[s]!, low[s]!);
      this.high[slot] = high[s]!;
      this.low[slot] = low[s]!;
      this.ports[slot] = ports[s]!;
      this.count++;
    }
  }
}
