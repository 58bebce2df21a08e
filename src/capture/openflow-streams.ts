import { OfDecodeError } from '../openflow/errors';
import { Framer } from '../openflow/framer';
import { CaptureError } from './pcap';
import { TcpReassembler, type TcpSegment } from './tcp-reassembly';

/** A TCP segment with the addresses that name its connection. */
export interface AddressedSegment extends TcpSegment {
  /** address text: dotted quad, or RFC 5952 IPv6 */
  srcAddr: string;
  dstAddr: string;
  srcPort: number;
  dstPort: number;
}

/** One direction of a TCP connection, as "addr:port" (IPv6 in brackets). */
export interface StreamEnds {
  src: string;
  dst: string;
}

export interface Timestamp {
  seconds: number;
  nanos: number;
}

export type StreamEvent =
  /** a complete OpenFlow message; `at` is when its last segment was captured */
  | { kind: 'message'; stream: StreamEnds; at: Timestamp; bytes: Buffer }
  /** the direction cannot be followed any further; nothing more is reported for it */
  | { kind: 'stream_error'; stream: StreamEnds; at: Timestamp; error: OfDecodeError | CaptureError };

export const OPENFLOW_PORTS: readonly number[] = [6653, 6633];

/** out-of-order bytes held for one direction before the hole before them is given up on */
const MAX_HELD_BYTES = 64 * 1024 * 1024;

interface Direction {
  ends: StreamEnds;
  /** initial sequence number, when the SYN was captured */
  isn: number | undefined;
  reassembler: TcpReassembler;
  framer: Framer;
  broken: boolean;
}

function endpoint(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/**
 * Follows every TCP direction to or from an OpenFlow port: reassembles it, frames it into
 * messages, and reports each message (or why a direction cannot be followed) through `emit`.
 */
export class OpenFlowStreams {
  private readonly directions = new Map<string, Direction>();

  constructor(
    private readonly ports: ReadonlySet<number>,
    private readonly emit: (e: StreamEvent) => void,
  ) {}

  push(seg: AddressedSegment, at: Timestamp): void {
    if (!this.ports.has(seg.srcPort) && !this.ports.has(seg.dstPort)) return;
    const src = endpoint(seg.srcAddr, seg.srcPort);
    const dst = endpoint(seg.dstAddr, seg.dstPort);
    const key = `${src} ${dst}`;
    let d = this.directions.get(key);
    if (d && seg.syn && d.isn !== seg.seq) {
      // a new connection on the same addresses and ports
      this.close(d, at);
      d = undefined;
    }
    if (!d) {
      // A pure ACK cannot start a direction: a keepalive's seq lies one byte before the stream.
      if (!seg.syn && seg.payload.length === 0) return;
      d = { ends: { src, dst }, isn: seg.syn ? seg.seq : undefined, reassembler: TcpReassembler.fromFirstSegment(seg), framer: new Framer(), broken: false };
      this.directions.set(key, d);
    }
    if (d.broken) return;
    for (const chunk of d.reassembler.push(seg)) {
      for (const bytes of d.framer.messages(chunk)) this.emit({ kind: 'message', stream: d.ends, at, bytes });
      if (d.framer.error) return this.breakOff(d, at, d.framer.error);
    }
    if (d.reassembler.heldBytes > MAX_HELD_BYTES) {
      this.breakOff(d, at, this.holeError(d));
    }
  }

  /** Reports, for every direction, data the capture ended without completing. */
  finish(at: Timestamp): void {
    for (const d of this.directions.values()) this.close(d, at);
    this.directions.clear();
  }

  private close(d: Direction, at: Timestamp): void {
    if (d.broken) return;
    if (d.reassembler.holeAt !== undefined) return this.breakOff(d, at, this.holeError(d));
    if (d.framer.buffered > 0) {
      this.breakOff(d, at, new OfDecodeError('truncated', `the stream ends inside a message (${d.framer.buffered} bytes of it captured)`));
    }
  }

  private holeError(d: Direction): CaptureError {
    return new CaptureError(
      `the capture lacks data (dropped, or cut by the snaplen): ${d.reassembler.heldBytes} bytes wait behind a hole at seq ${d.reassembler.holeAt}`,
    );
  }

  private breakOff(d: Direction, at: Timestamp, error: OfDecodeError | CaptureError): void {
    d.broken = true;
    this.emit({ kind: 'stream_error', stream: d.ends, at, error });
  }
}
