import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './run';

const OPENFLOW_PORT = 6653;
const ETH_IPV4_TCP_HEADERS = 14 + 20 + 20;
/** IPv4's total-length field bounds what one frame can carry */
const MAX_PAYLOAD = 0xffff - 20 - 20;

/** A pcap (LINKTYPE_ETHERNET, microsecond timestamps) holding `frames`, one second apart. */
export function ethernetPcap(frames: readonly Buffer[]): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0); // pcap magic, microsecond timestamps
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(0x40000, 16); // snaplen
  header.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  const records = frames.map((frame, i) => {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(i + 1, 0); // one second apart, so frame.number and time agree
    rec.writeUInt32LE(frame.length, 8);
    rec.writeUInt32LE(frame.length, 12);
    return Buffer.concat([rec, frame]);
  });
  return Buffer.concat([header, ...records]);
}

/**
 * A pcap holding each payload as one TCP segment to port 6653. Every segment gets its own
 * source port, hence its own TCP stream, so that Wireshark dissects each message by itself
 * and a bad length in one cannot swallow the next.
 */
export function openflowPcap(payloads: readonly Buffer[]): Buffer {
  const frames = payloads.map((payload, i) => {
    if (payload.length > MAX_PAYLOAD) throw new Error(`message ${i} is ${payload.length} bytes, over ${MAX_PAYLOAD}`);
    const frame = Buffer.alloc(ETH_IPV4_TCP_HEADERS + payload.length);
    Buffer.from('020000000002020000000001', 'hex').copy(frame, 0);
    frame.writeUInt16BE(0x0800, 12);
    const ip = 14;
    frame.writeUInt8(0x45, ip);
    frame.writeUInt16BE(20 + 20 + payload.length, ip + 2);
    frame.writeUInt16BE(0x4000, ip + 6); // don't fragment
    frame.writeUInt8(64, ip + 8);
    frame.writeUInt8(6, ip + 9); // TCP
    Buffer.from([127, 0, 0, 1, 127, 0, 0, 2]).copy(frame, ip + 12);
    frame.writeUInt16BE(ipv4Checksum(frame.subarray(ip, ip + 20)), ip + 10);
    const tcp = ip + 20;
    frame.writeUInt16BE(20000 + (i % 40000), tcp);
    frame.writeUInt16BE(OPENFLOW_PORT, tcp + 2);
    frame.writeUInt32BE(1, tcp + 4); // seq
    frame.writeUInt32BE(1, tcp + 8); // ack
    frame.writeUInt8(5 << 4, tcp + 12); // header length 20
    frame.writeUInt8(0x18, tcp + 13); // PSH, ACK
    frame.writeUInt16BE(0xffff, tcp + 14); // window
    payload.copy(frame, tcp + 20);
    return frame;
  });
  return ethernetPcap(frames);
}

function ipv4Checksum(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) sum += header.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** A node of tshark's `-T json --no-duplicate-keys` tree: repeated keys become arrays. */
export type TsharkNode = { [key: string]: string | TsharkNode | (string | TsharkNode)[] };

export interface ExpertInfo {
  message: string;
  severity: number;
  group: number;
}

export interface TsharkFrame {
  /** e.g. 'eth:ethertype:ip:tcp:openflow:openflow_v4' */
  protocols: string;
  /** the openflow_v4 layer: one object, or an array when a frame held several messages */
  openflow?: TsharkNode | TsharkNode[];
  /** Wireshark's "Malformed Packet" marker */
  malformed: boolean;
  experts: ExpertInfo[];
}

/** Wireshark's expert-info severity "warning" (epan/proto.h); "note" is below it, "error" above */
const PI_WARN = 0x00600000;

/** Every value stored under `key` anywhere below `node`, in document order. */
export function fieldValues(node: unknown, key: string): string[] {
  const out: string[] = [];
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(walk);
    if (!n || typeof n !== 'object') return;
    for (const [k, v] of Object.entries(n)) {
      if (k === key) (Array.isArray(v) ? v : [v]).forEach((x) => typeof x === 'string' && out.push(x));
      walk(v);
    }
  };
  walk(node);
  return out;
}

/** Every object below `node` that has `key`: e.g. each OXM field, each action. */
export function nodesWith(node: unknown, key: string): TsharkNode[] {
  const out: TsharkNode[] = [];
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(walk);
    if (!n || typeof n !== 'object') return;
    if (key in n) out.push(n as TsharkNode);
    Object.values(n).forEach(walk);
  };
  walk(node);
  return out;
}

function expertsIn(node: unknown): ExpertInfo[] {
  return nodesWith(node, '_ws.expert.message').map((e) => ({
    message: String(e['_ws.expert.message']),
    severity: Number(e['_ws.expert.severity']),
    group: Number(e['_ws.expert.group']),
  }));
}

/**
 * Dissects raw OpenFlow messages with tshark, all in one pcap and one tshark run (start-up,
 * about 0.3 s, would otherwise dominate), and returns one frame per message, in order.
 */
export async function tsharkDissect(messages: readonly Buffer[]): Promise<TsharkFrame[]> {
  const dir = mkdtempSync(join(tmpdir(), 'zm-tshark-'));
  try {
    const pcap = join(dir, 'of.pcap');
    writeFileSync(pcap, openflowPcap(messages));
    const { stdout } = await run(
      'tshark',
      ['-r', pcap, '-d', `tcp.port==${OPENFLOW_PORT},openflow`, '-T', 'json', '--no-duplicate-keys', '-J', 'frame openflow_v4 _ws.malformed'],
      { timeoutMs: 300_000 },
    );
    const packets = JSON.parse(stdout) as { _source: { layers: TsharkNode } }[];
    if (packets.length !== messages.length) throw new Error(`tshark returned ${packets.length} frames for ${messages.length} messages`);
    return packets.map(({ _source: { layers } }) => ({
      protocols: fieldValues(layers['frame'], 'frame.protocols')[0] ?? '',
      openflow: layers['openflow_v4'] as TsharkNode | TsharkNode[] | undefined,
      malformed: '_ws.malformed' in layers,
      experts: expertsIn(layers),
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Dissects Ethernet frames with tshark (one run) and returns each frame's layers as
 * `-T json --no-duplicate-keys` gives them, limited to the protocols named in `layers`.
 */
export async function tsharkFrames(frames: readonly Buffer[], layers: readonly string[]): Promise<TsharkNode[]> {
  const dir = mkdtempSync(join(tmpdir(), 'zm-tshark-'));
  try {
    const pcap = join(dir, 'frames.pcap');
    writeFileSync(pcap, ethernetPcap(frames));
    const { stdout } = await run('tshark', ['-r', pcap, '-T', 'json', '--no-duplicate-keys', '-J', layers.join(' ')], { timeoutMs: 300_000 });
    return (JSON.parse(stdout) as { _source: { layers: TsharkNode } }[]).map((p) => p._source.layers);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Expert infos at warning level or above, and the Malformed marker: what a clean decode must not have. */
export function problems(frame: TsharkFrame): string[] {
  const out = frame.experts.filter((e) => e.severity >= PI_WARN).map((e) => e.message);
  if (frame.malformed) out.push('Malformed Packet');
  return out;
}
