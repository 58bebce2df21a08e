/** One direction of a TCP connection, as a capture saw it. */
export interface TcpSegment {
  /** sequence number of the first payload byte (of the SYN itself when `syn`) */
  seq: number;
  syn: boolean;
  payload: Buffer;
}

/** Signed distance a - b in 32-bit sequence space (RFC 1982 arithmetic). */
function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

interface HeldSegment {
  seq: number;
  data: Buffer;
}

/**
 * Rebuilds the byte stream of one TCP direction from segments in any order: data ahead of
 * the next expected byte waits until the hole before it fills; bytes already delivered
 * (retransmissions, overlaps, keepalives) are dropped. Delivery is in sequence order only.
 */
export class TcpReassembler {
  /** next sequence number to deliver */
  private next: number;
  /** out-of-order data, sorted by distance from `next` */
  private held: HeldSegment[] = [];
  private heldTotal = 0;

  /** `start` is the first byte's sequence number: ISN + 1 after a SYN, else the first segment's seq. */
  constructor(start: number) {
    this.next = start >>> 0;
  }

  static fromFirstSegment(seg: TcpSegment): TcpReassembler {
    return new TcpReassembler(seg.syn ? seg.seq + 1 : seg.seq);
  }

  /** Returns the bytes this segment makes contiguous (possibly several held segments). */
  push(seg: TcpSegment): Buffer[] {
    if (seg.payload.length === 0) return [];
    // data carried on a SYN (TCP Fast Open) starts after the SYN's own sequence number
    const seq = (seg.syn ? seg.seq + 1 : seg.seq) >>> 0;
    const out: Buffer[] = [];
    if (!this.deliver(seq, seg.payload, out)) this.hold(seq, seg.payload);
    this.drain(out);
    return out;
  }

  /** bytes waiting behind a hole */
  get heldBytes(): number {
    return this.heldTotal;
  }

  /** sequence number of the first missing byte, when data waits behind it */
  get holeAt(): number | undefined {
    return this.held.length > 0 ? this.next : undefined;
  }

  /** Appends the new part of `data` to `out` when it starts at or before `next`; false if it lies ahead. */
  private deliver(seq: number, data: Buffer, out: Buffer[]): boolean {
    const ahead = seqDiff(seq, this.next);
    if (ahead > 0) return false;
    const fresh = data.length + ahead; // bytes past `next`
    if (fresh > 0) {
      out.push(data.subarray(-ahead));
      this.next = (this.next + fresh) >>> 0;
    }
    return true;
  }

  private hold(seq: number, data: Buffer): void {
    const dist = seqDiff(seq, this.next);
    let i = 0;
    while (i < this.held.length && seqDiff(this.held[i]!.seq, this.next) < dist) i++;
    const same = this.held[i];
    if (same && same.seq === seq) {
      // a retransmission of held data: keep the longer copy
      if (data.length <= same.data.length) return;
      this.heldTotal -= same.data.length;
      this.held.splice(i, 1);
    }
    // copied, because the caller's capture buffer may be reused before the hole fills
    this.held.splice(i, 0, { seq, data: Buffer.from(data) });
    this.heldTotal += data.length;
  }

  private drain(out: Buffer[]): void {
    while (this.held.length > 0) {
      const first = this.held[0]!;
      if (!this.deliver(first.seq, first.data, out)) return;
      this.held.shift();
      this.heldTotal -= first.data.length;
    }
  }
}
