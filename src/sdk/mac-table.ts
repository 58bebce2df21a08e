import { numberToMac } from '../openflow/addr';

const EMPTY = -1;
const INITIAL_CAPACITY = 1 << 10;

/**
 * Default bound of a MacTable: 4x Open vSwitch's own default `mac-table-size` (2048), room for a
 * broadcast domain of a few thousand hosts, and about 210 KiB of typed arrays when full.
 */
export const DEFAULT_MAC_TABLE_SIZE = 8192;
/** 2^24 entries take 2^25 slots of 13 bytes: 416 MiB, a bound no switch needs */
export const MAX_MAC_TABLE_SIZE = 1 << 24;

/**
 * MAC → port, as a learning switch keeps it: read straight from a frame's bytes, with no string
 * or boxed number per lookup. A Map keyed by 48-bit numbers cost ~5x as much per packet-in, its
 * keys being heap numbers scattered over the heap. Open addressing over typed arrays, the MAC's
 * two 24-bit halves as the key, at most half full.
 *
 * At most `maxEntries` MACs: a full table evicts one to learn a new one, by CLOCK (second chance),
 * an approximate LRU. Every hit sets the entry's reference bit (one byte store, no list to
 * relink); the eviction hand clears set bits as it passes and evicts the first entry whose bit is
 * clear. New entries start with the bit clear, so a flood of one-shot source MACs evicts its own
 * kind first and a MAC looked up or learned again since the hand last passed survives it.
 */
export class MacTable {
  readonly maxEntries: number;
  private high: Int32Array;
  private low: Int32Array;
  private ports: Uint32Array;
  /** CLOCK reference bits: set by a hit, cleared by the passing hand */
  private used: Uint8Array;
  /** 32 - log2(slots) */
  private shift: number;
  private count = 0;
  private hand = 0;
  private evicted = 0;

  constructor(maxEntries = DEFAULT_MAC_TABLE_SIZE) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1 || maxEntries > MAX_MAC_TABLE_SIZE) {
      throw new RangeError(`a MAC table holds 1 to ${MAX_MAC_TABLE_SIZE} entries, not ${maxEntries}`);
    }
    this.maxEntries = maxEntries;
    const capacity = Math.min(INITIAL_CAPACITY, 2 ** Math.ceil(Math.log2(maxEntries * 2)));
    this.high = new Int32Array(capacity).fill(EMPTY);
    this.low = new Int32Array(capacity);
    this.ports = new Uint32Array(capacity);
    this.used = new Uint8Array(capacity);
    this.shift = 32 - Math.log2(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** MACs evicted so far to make room for new ones */
  get evictions(): number {
    return this.evicted;
  }

  /** the port of the MAC at `frame[at .. at+6)`, if learned */
  get(frame: Uint8Array, at: number): number | undefined {
    const slot = this.find((frame[at]! << 16) | (frame[at + 1]! << 8) | frame[at + 2]!, (frame[at + 3]! << 16) | (frame[at + 4]! << 8) | frame[at + 5]!);
    if (this.high[slot] === EMPTY) return undefined;
    this.used[slot] = 1;
    return this.ports[slot];
  }

  /** learns (or moves) the MAC at `frame[at .. at+6)`, evicting one when full; returns whether that changed anything */
  set(frame: Uint8Array, at: number, port: number): boolean {
    const hi = (frame[at]! << 16) | (frame[at + 1]! << 8) | frame[at + 2]!;
    const lo = (frame[at + 3]! << 16) | (frame[at + 4]! << 8) | frame[at + 5]!;
    let slot = this.find(hi, lo);
    if (this.high[slot] !== EMPTY) {
      this.used[slot] = 1;
      if (this.ports[slot] === port) return false;
      this.ports[slot] = port;
      return true;
    }
    if (this.count === this.maxEntries) {
      this.evictOne();
      slot = this.find(hi, lo); // the eviction may have shifted entries into that slot's chain
    }
    this.high[slot] = hi;
    this.low[slot] = lo;
    this.ports[slot] = port;
    this.used[slot] = 0;
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

  /** the top bits of a multiplicative hash: its low bits depend only on the key's low bits */
  private home(hi: number, lo: number): number {
    return Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> this.shift;
  }

  /** linear probing from the key's hash to its slot, or to the empty slot where it would go */
  private find(hi: number, lo: number): number {
    const mask = this.high.length - 1;
    for (let slot = this.home(hi, lo); ; slot = (slot + 1) & mask) {
      const h = this.high[slot]!;
      if (h === EMPTY || (h === hi && this.low[slot] === lo)) return slot;
    }
  }

  /** CLOCK: the first entry past the hand whose reference bit is clear; set bits are cleared on the way */
  private evictOne(): void {
    const mask = this.high.length - 1;
    for (;;) {
      const slot = this.hand;
      this.hand = (slot + 1) & mask;
      if (this.high[slot] === EMPTY) continue;
      if (this.used[slot]) {
        this.used[slot] = 0;
        continue;
      }
      this.remove(slot);
      this.evicted++;
      return;
    }
  }

  /** deletes the entry at `slot` by shifting later entries of its probe chain back: no tombstones */
  private remove(slot: number): void {
    const mask = this.high.length - 1;
    let hole = slot;
    for (let next = (hole + 1) & mask; this.high[next] !== EMPTY; next = (next + 1) & mask) {
      const home = this.home(this.high[next]!, this.low[next]!);
      // the entry at `next` may fill the hole unless its home lies cyclically in (hole, next]
      const stays = hole < next ? home > hole && home <= next : home > hole || home <= next;
      if (stays) continue;
      this.high[hole] = this.high[next]!;
      this.low[hole] = this.low[next]!;
      this.ports[hole] = this.ports[next]!;
      this.used[hole] = this.used[next]!;
      hole = next;
    }
    this.high[hole] = EMPTY;
    this.count--;
  }

  /** rebuilds the table at `capacity` with the entries whose port `keep` accepts: growth and bulk deletes alike */
  private rehash(capacity: number, keep: (port: number) => boolean): void {
    const { high, low, ports, used } = this;
    this.high = new Int32Array(capacity).fill(EMPTY);
    this.low = new Int32Array(capacity);
    this.ports = new Uint32Array(capacity);
    this.used = new Uint8Array(capacity);
    this.shift = 32 - Math.log2(capacity);
    this.count = 0;
    this.hand = 0;
    for (let s = 0; s < high.length; s++) {
      if (high[s] === EMPTY || !keep(ports[s]!)) continue;
      const slot = this.find(high[s]!, low[s]!);
      this.high[slot] = high[s]!;
      this.low[slot] = low[s]!;
      this.ports[slot] = ports[s]!;
      this.used[slot] = used[s]!;
      this.count++;
    }
  }
}
