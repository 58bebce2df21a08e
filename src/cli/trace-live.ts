import { formatMatch } from '../openflow';
import { TcpFlag, buildPacket, type LayerSpec } from '../packet';
import type { InstalledSnapshot, PacketFields, TraceResult } from './tracer';

/**
 * `zonemesh trace --live`: the traced packet, built for real and marked with an IP DSCP of its own,
 * goes into the source switch's pipeline (PACKET_OUT to table 0 as if from the VM's port); the
 * switches' flow counters, read before and after, say which of the traced flows it went through.
 */

/** DSCP 43: no standard codepoint, so a capture can tell the traced packet (tcpdump 'ip[1] & 0xfc == 0xac') */
export const LIVE_DSCP = 43;

/** The frame a VM would send for the traced packet (IPv4 marked with LIVE_DSCP). */
export function frameOf(p: PacketFields): Buffer {
  const s = (k: string) => String(p[k]);
  const n = (k: string) => Number(p[k]);
  const layers: LayerSpec[] = [{ type: 'ethernet', dst: s('eth_dst'), src: s('eth_src') }];
  if (n('eth_type') === 0x0806) {
    layers.push({ type: 'arp', op: n('arp_op'), senderMac: s('arp_sha'), senderIp: s('arp_spa'), targetMac: s('arp_tha'), targetIp: s('arp_tpa') });
    return buildPacket(layers);
  }
  layers.push({ type: 'ipv4', src: s('ipv4_src'), dst: s('ipv4_dst'), ttl: n('nw_ttl'), dscp: LIVE_DSCP });
  if (p.ip_proto === 6) layers.push({ type: 'tcp', srcPort: n('tcp_src'), dstPort: n('tcp_dst'), flags: TcpFlag.SYN, window: 64240 });
  else if (p.ip_proto === 17) layers.push({ type: 'udp', srcPort: n('udp_src'), dstPort: n('udp_dst') }, { type: 'raw', data: Buffer.from('zonemesh trace') });
  else layers.push({ type: 'icmp', icmpType: 8, code: 0 }, { type: 'icmp-echo', identifier: 0x7a6d, sequence: 1 });
  return buildPacket(layers);
}

const flowId = (table: number, priority: number | null, cookie: string, match: string) => `${table}/${priority}/${cookie}/${match}`;

function counters(switches: ReadonlyMap<bigint, InstalledSnapshot>): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const [dpid, s] of switches) {
    for (const f of s.flows) out.set(`0x${dpid.toString(16)}|${flowId(f.tableId, f.priority, `0x${f.cookie.toString(16)}`, formatMatch(f.match))}`, (f as { packetCount?: bigint }).packetCount ?? 0n);
  }
  return out;
}

/** Packets each traced step's flow counted between the two reads (-1: the flow is gone), in trace order. */
export function countedSteps(result: TraceResult, before: ReadonlyMap<bigint, InstalledSnapshot>, after: ReadonlyMap<bigint, InstalledSnapshot>): number[][] {
  const [was, now] = [counters(before), counters(after)];
  return result.hops.map((hop) =>
    hop.steps.map((step) => {
      const key = `${hop.dpid}|${flowId(step.table, step.priority, step.cookie, step.match)}`;
      const [a, b] = [was.get(key), now.get(key)];
      return a === undefined || b === undefined ? -1 : Number(b - a);
    }),
  );
}
