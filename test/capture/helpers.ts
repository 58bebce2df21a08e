import { buildPacket, TcpFlag } from '../../src/packet';

export interface PcapFrame {
  seconds: number;
  /** nanoseconds; written as microseconds unless the file is a nanosecond pcap */
  nanos: number;
  data: Buffer;
}

export interface PcapOptions {
  littleEndian?: boolean;
  nanos?: boolean;
  linkType?: number;
}

/** A classic libpcap file holding `frames`. */
export function writePcap(frames: readonly PcapFrame[], opts: PcapOptions = {}): Buffer {
  const le = opts.littleEndian ?? true;
  const u32 = (b: Buffer, v: number, at: number) => (le ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at));
  const u16 = (b: Buffer, v: number, at: number) => (le ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  const head = Buffer.alloc(24);
  u32(head, opts.nanos ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  u16(head, 2, 4);
  u16(head, 4, 6);
  u32(head, 262144, 16);
  u32(head, opts.linkType ?? 1, 20);
  const records = frames.map((f) => {
    const rec = Buffer.alloc(16);
    u32(rec, f.seconds, 0);
    u32(rec, opts.nanos ? f.nanos : Math.floor(f.nanos / 1000), 4);
    u32(rec, f.data.length, 8);
    u32(rec, f.data.length, 12);
    return Buffer.concat([rec, f.data]);
  });
  return Buffer.concat([head, ...records]);
}

export interface SegmentSpec {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  syn?: boolean;
  payload?: Buffer;
}

/** An Ethernet frame with one TCP segment, over IPv6 when the addresses are. */
export function tcpFrame(s: SegmentSpec): Buffer {
  const ip = s.src.includes(':') ? ({ type: 'ipv6', src: s.src, dst: s.dst } as const) : ({ type: 'ipv4', src: s.src, dst: s.dst } as const);
  return buildPacket([
    { type: 'ethernet', src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' },
    ip,
    { type: 'tcp', srcPort: s.srcPort, dstPort: s.dstPort, seq: s.seq >>> 0, flags: s.syn ? TcpFlag.SYN : TcpFlag.ACK | TcpFlag.PSH },
    ...(s.payload && s.payload.length > 0 ? [{ type: 'raw', data: s.payload } as const] : []),
  ]);
}

/** `stream` cut at `cuts` into segments numbered from sequence number `start`. */
export function segmentsOf(stream: Buffer, start: number, cuts: readonly number[]): { seq: number; payload: Buffer }[] {
  const bounds = [0, ...cuts, stream.length];
  return bounds.slice(1).map((end, i) => ({ seq: (start + bounds[i]!) >>> 0, payload: stream.subarray(bounds[i], end) }));
}
