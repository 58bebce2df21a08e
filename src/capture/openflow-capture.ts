import { TcpFlag, tryParsePacket, type Layer } from '../packet';
import { OpenFlowStreams, type AddressedSegment, type StreamEvent, type Timestamp } from './openflow-streams';
import { CaptureError, LINKTYPE_ETHERNET, readPcap, type PcapSummary } from './pcap';

const NO_PAYLOAD = Buffer.alloc(0);

/**
 * The TCP segment in an Ethernet frame, or undefined when the frame is not TCP over IP or
 * cannot be parsed (a frame cut by the snaplen then shows up as a hole in its stream).
 * The first IP and TCP headers count: OpenFlow runs on the outer connection, not inside tunnels.
 */
export function tcpSegmentOf(frame: Buffer): AddressedSegment | undefined {
  const parsed = tryParsePacket(frame);
  if (!parsed.ok) return undefined;
  const { layers } = parsed.packet;
  const ipAt = layers.findIndex((l) => l.type === 'ipv4' || l.type === 'ipv6');
  if (ipAt < 0) return undefined;
  const ip = layers[ipAt] as Extract<Layer, { type: 'ipv4' | 'ipv6' }>;
  let tcpAt = ipAt + 1;
  while (layers[tcpAt]?.type === 'ipv6-ext') tcpAt++;
  const tcp = layers[tcpAt];
  if (tcp?.type !== 'tcp') return undefined;
  const after = layers[tcpAt + 1];
  return {
    srcAddr: ip.src,
    dstAddr: ip.dst,
    srcPort: tcp.srcPort,
    dstPort: tcp.dstPort,
    seq: tcp.seq,
    syn: (tcp.flags & TcpFlag.SYN) !== 0,
    payload: after?.type === 'raw' ? after.data : NO_PAYLOAD,
  };
}

/**
 * Reads a pcap capture and reports every OpenFlow message on the given TCP ports, in capture
 * order, through `emit`. Rejects with CaptureError for a file it cannot read to the end.
 */
export async function readOpenFlowCapture(path: string, ports: ReadonlySet<number>, emit: (e: StreamEvent) => void): Promise<PcapSummary> {
  const streams = new OpenFlowStreams(ports, emit);
  let last: Timestamp = { seconds: 0, nanos: 0 };
  const summary = await readPcap(path, (record) => {
    if (record.linkType !== LINKTYPE_ETHERNET) {
      throw new CaptureError(`link type ${record.linkType} is not supported (Ethernet only; capture on an Ethernet-like interface, not 'any')`);
    }
    last = { seconds: record.seconds, nanos: record.nanos };
    const seg = tcpSegmentOf(record.data);
    if (seg) streams.push(seg, last);
  });
  streams.finish(last);
  return summary;
}
