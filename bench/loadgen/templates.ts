/**
 * Pre-encoded messages for the load generator and the null controller. Every hot-path
 * message is encoded once with our codec; afterwards only its xid, in_port and MACs are
 * patched in place, at offsets found by encoding sentinels (so they follow the codec, not
 * hand-counted struct layouts).
 */
import {
  OFP_NO_BUFFER,
  OFPCML_NO_BUFFER,
  OFPP,
  OFPG_ANY,
  encodeMessage,
  type FlowMod,
  type PacketIn,
  type PacketOut,
} from '../../src/openflow';
import { buildPacket } from '../../src/packet';

/** bytes of the Ethernet frame carried by every packet-in (no FCS), like cbench's */
export const FRAME_LEN = 64;

/** OFPT codes the generator reads off raw headers */
export const T = {
  HELLO: 0,
  ERROR: 1,
  ECHO_REQUEST: 2,
  ECHO_REPLY: 3,
  FEATURES_REQUEST: 5,
  PACKET_IN: 10,
  PACKET_OUT: 13,
  FLOW_MOD: 14,
  MULTIPART_REQUEST: 18,
  BARRIER_REQUEST: 20,
} as const;

const SENTINEL_PORT = 0x7a6d1234;
const SENTINEL_DST = '0a:bb:cc:dd:ee:01';
const SENTINEL_SRC = '0a:bb:cc:dd:ee:02';

function find(buf: Buffer, needle: Buffer, what: string): number {
  const at = buf.indexOf(needle);
  if (at < 0 || buf.indexOf(needle, at + 1) >= 0) throw new Error(`template: ${what} not found exactly once`);
  return at;
}

const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
const mac = (s: string) => Buffer.from(s.replace(/:/g, ''), 'hex');

/** A 64-byte Ethernet/IPv4/UDP frame between the sentinel MACs. */
export function templateFrame(): Buffer {
  const frame = buildPacket([
    { type: 'ethernet', dst: SENTINEL_DST, src: SENTINEL_SRC, ethType: 0x0800 },
    {
      type: 'ipv4', dscp: 0, ecn: 0, totalLength: 0, identification: 1, dontFragment: false, moreFragments: false,
      fragmentOffset: 0, ttl: 64, protocol: 17, checksum: 0, src: '10.0.0.1', dst: '10.0.0.2', options: Buffer.alloc(0),
    },
    { type: 'udp', srcPort: 5000, dstPort: 5001, length: 0, checksum: 0 },
    { type: 'raw', data: Buffer.alloc(FRAME_LEN - 14 - 20 - 8, 0x5a) },
  ] as Parameters<typeof buildPacket>[0]);
  if (frame.length !== FRAME_LEN) throw new Error(`template frame is ${frame.length} bytes, expected ${FRAME_LEN}`);
  return frame;
}

/** An unbuffered table-miss PACKET_IN with in_port in its match and a 64-byte frame. */
export interface PacketInTemplate {
  bytes: Buffer;
  /** offset of the in_port OXM value */
  inPortAt: number;
  /** offset of the frame's destination MAC (source MAC follows at +6) */
  dstAt: number;
}

/** ofp_packet_in: header 8, buffer_id 4, total_len 2, reason 1, then table_id (checked below) */
export const PACKET_IN_TABLE_ID_AT = 15;

export function packetInTemplate(): PacketInTemplate {
  const msg: PacketIn = {
    type: 'PACKET_IN',
    xid: 0,
    bufferId: OFP_NO_BUFFER,
    totalLen: FRAME_LEN,
    reason: 0,
    tableId: 0,
    cookie: 0n,
    match: [{ field: 'in_port', value: SENTINEL_PORT }],
    data: templateFrame(),
  };
  if (encodeMessage({ ...msg, tableId: 0xab })[PACKET_IN_TABLE_ID_AT] !== 0xab) throw new Error('template: table_id offset');
  const bytes = encodeMessage(msg);
  const inPortAt = find(bytes, u32(SENTINEL_PORT), 'in_port');
  const dstAt = find(bytes, mac(SENTINEL_DST), 'eth_dst');
  if (find(bytes, mac(SENTINEL_SRC), 'eth_src') !== dstAt + 6) throw new Error('template: eth_src does not follow eth_dst');
  return { bytes, inPortAt, dstAt };
}

/**
 * What the null controller answers to each packet-in: simple_switch_13's FLOW_MOD
 * (in_port, eth_dst, eth_src -> output) followed by a PACKET_OUT carrying the frame.
 */
export interface ResponseTemplate {
  flowMod: Buffer;
  fmInPortAt: number;
  fmDstAt: number;
  fmSrcAt: number;
  fmOutPortAt: number;
  packetOut: Buffer;
  poInPortAt: number;
  poOutPortAt: number;
  poDataAt: number;
}

export function responseTemplate(): ResponseTemplate {
  const OUT = 0x7a6d4321;
  const fm: FlowMod = {
    type: 'FLOW_MOD', xid: 0, cookie: 0n, cookieMask: 0n, tableId: 0, command: 'add', idleTimeout: 0, hardTimeout: 0,
    priority: 1, bufferId: OFP_NO_BUFFER, outPort: OFPP.ANY, outGroup: OFPG_ANY, flags: 0,
    match: [
      { field: 'in_port', value: SENTINEL_PORT },
      { field: 'eth_dst', value: SENTINEL_DST },
      { field: 'eth_src', value: SENTINEL_SRC },
    ],
    instructions: [{ type: 'apply_actions', actions: [{ type: 'output', port: OUT, maxLen: 0 }] }],
  };
  const flowMod = encodeMessage(fm);
  const po: PacketOut = {
    type: 'PACKET_OUT', xid: 0, bufferId: OFP_NO_BUFFER, inPort: SENTINEL_PORT,
    actions: [{ type: 'output', port: OUT, maxLen: OFPCML_NO_BUFFER }],
    data: templateFrame(),
  };
  const packetOut = encodeMessage(po);
  return {
    flowMod,
    fmInPortAt: find(flowMod, u32(SENTINEL_PORT), 'flow_mod in_port'),
    fmDstAt: find(flowMod, mac(SENTINEL_DST), 'flow_mod eth_dst'),
    fmSrcAt: find(flowMod, mac(SENTINEL_SRC), 'flow_mod eth_src'),
    fmOutPortAt: find(flowMod, u32(OUT), 'flow_mod output'),
    packetOut,
    poInPortAt: find(packetOut, u32(SENTINEL_PORT), 'packet_out in_port'),
    poOutPortAt: find(packetOut, u32(OUT), 'packet_out output'),
    poDataAt: packetOut.length - FRAME_LEN,
  };
}
