/**
 * The tunnel monitor's probes, as data: which hypervisor probes which, the flows that reflect a
 * probe and return it to the controller, and the probe frame itself.
 *
 * A probe is a PACKET_OUT on the prober `from` into its Geneve port with VNI 0 (no VPC has it: VNIs
 * are 1..16,777,215) and `tun_dst` = the target `to`. On `to`, the probe table (stage `probe`, before
 * the overlay's classify) reflects it: a request from `from`'s tunnel IP gets the reply MAC and goes
 * back out of the tunnel to `from`. On `from`, a reply from `to`'s tunnel IP goes to the controller.
 * Flows exist per pair, so a hypervisor reflects only to model hypervisors that probe it (a spoofed
 * tunnel source cannot make it send probes elsewhere) and sends up only replies of its own pairs.
 */
import {
  OFPP,
  OFP_NO_BUFFER,
  TUNNEL_OFPORT,
  ownerHash,
  output,
  toController,
  type Action,
  type AppContext,
  type Flow,
  type Hypervisor,
  type NetworkModel,
  type PacketOut,
  type TableSpec,
} from '../../sdk';

export const TUNNEL_MONITOR_APP_ID = 25;
export const PROBE_TABLE = 'tunnel-monitor.probe';
/** never a VPC's (validation keeps VNIs in 1..0xffffff) */
export const PROBE_VNI = 0n;
/** locally administered unicast MACs: a probe on its way out, and on its way back */
export const PROBE_REQUEST_MAC = '0e:00:5a:4d:00:01';
export const PROBE_REPLY_MAC = '0e:00:5a:4d:00:02';
const PROBE_SOURCE_MAC = '0e:00:5a:4d:00:00';
/** IEEE 802 local experimental ethertype 1 */
export const PROBE_ETHERTYPE = 0x88b5;
const MAGIC = 0x5a4d5450; // 'ZMTP'
const ETHERNET_HEADER_BYTES = 14;
/** magic, nonce, sequence number; padded to the 46-byte Ethernet minimum */
const PAYLOAD_BYTES = 46;
const PRIORITY = 100;

export const TUNNEL_MONITOR_TABLES: readonly TableSpec[] = [
  { name: PROBE_TABLE, stage: 'probe', miss: 'next', matches: ['in_port', 'tunnel_id', 'tun_ipv4_src', 'eth_dst'] },
];

/** One monitored tunnel: `from` sends the probes and gets them back from `to`. */
export interface ProbePair {
  readonly from: Hypervisor;
  readonly to: Hypervisor;
  /** 'hv1/hv2': the pair's owner key and its name in logs */
  readonly key: string;
}

export type PairSelection = 'all' | 'shared-vpc';

/**
 * The pairs to monitor: every two hypervisors of the model, or only those hosting ports of a
 * common VPC (the tunnels traffic can take). One pair per two hypervisors, probed from the side a
 * hash of the two names picks: stable whatever else the model holds, and about half of each
 * hypervisor's pairs are probed from it, so packet-ins spread over the switches.
 */
export function probePairs(model: NetworkModel, selection: PairSelection): ProbePair[] {
  const hypervisors = [...model.hypervisors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const vpcsOf = new Map<string, Set<string>>();
  for (const p of model.ports) {
    let vpcs = vpcsOf.get(p.hypervisor);
    if (!vpcs) vpcsOf.set(p.hypervisor, (vpcs = new Set()));
    vpcs.add(p.vpc);
  }
  const shareVpc = (a: Hypervisor, b: Hypervisor) => [...(vpcsOf.get(a.name) ?? [])].some((v) => vpcsOf.get(b.name)?.has(v));
  const pairs: ProbePair[] = [];
  hypervisors.forEach((a, i) => {
    for (const b of hypervisors.slice(i + 1)) {
      if (selection === 'shared-vpc' && !shareVpc(a, b)) continue;
      const [from, to] = ownerHash(`${a.name}|${b.name}`) & 1n ? [b, a] : [a, b];
      pairs.push({ from, to, key: `${from.name}/${to.name}` });
    }
  });
  return pairs;
}

const setField = (field: 'tunnel_id' | 'tun_ipv4_dst' | 'eth_dst', value: bigint | string): Action => ({ type: 'set_field', field: { field, value } }) as Action;

/** The pair's flows: the reflection on `to`, the return to the controller on `from`. */
export function pairFlows(ctx: Pick<AppContext, 'flow'>, pair: ProbePair): { reflect: Flow; reply: Flow } {
  const owner = `pair:${pair.key}`;
  const fromTunnel = (peer: Hypervisor, ethDst: string) => ({ in_port: TUNNEL_OFPORT, tunnel_id: PROBE_VNI, tun_ipv4_src: peer.tunnelIp, eth_dst: ethDst });
  const reflect = ctx
    .flow(PROBE_TABLE, owner)
    .priority(PRIORITY)
    .match(fromTunnel(pair.from, PROBE_REQUEST_MAC))
    .apply(setField('eth_dst', PROBE_REPLY_MAC), setField('tun_ipv4_dst', pair.from.tunnelIp), output(OFPP.IN_PORT))
    .build();
  const reply = ctx.flow(PROBE_TABLE, owner).priority(PRIORITY).match(fromTunnel(pair.to, PROBE_REPLY_MAC)).apply(toController()).build();
  return { reflect, reply };
}

/** Every switch's probe flows for `pairs`, by datapath id: one owner per pair. */
export function probeFlows(ctx: Pick<AppContext, 'flow'>, pairs: readonly ProbePair[]): Map<bigint, Map<string, Flow[]>> {
  const bySwitch = new Map<bigint, Map<string, Flow[]>>();
  const add = (hv: Hypervisor, owner: string, flow: Flow) => {
    let owners = bySwitch.get(hv.datapathId);
    if (!owners) bySwitch.set(hv.datapathId, (owners = new Map()));
    owners.set(owner, [...(owners.get(owner) ?? []), flow]);
  };
  for (const pair of pairs) {
    const { reflect, reply } = pairFlows(ctx, pair);
    add(pair.to, `pair:${pair.key}`, reflect);
    add(pair.from, `pair:${pair.key}`, reply);
  }
  return bySwitch;
}

/** The probe frame: `nonce` tells this controller's probes from anyone else's, `seq` which probe it is. */
export function probeFrame(nonce: number, seq: number): Buffer {
  const frame = Buffer.alloc(ETHERNET_HEADER_BYTES + PAYLOAD_BYTES);
  Buffer.from(PROBE_REQUEST_MAC.replaceAll(':', ''), 'hex').copy(frame, 0);
  Buffer.from(PROBE_SOURCE_MAC.replaceAll(':', ''), 'hex').copy(frame, 6);
  frame.writeUInt16BE(PROBE_ETHERTYPE, 12);
  frame.writeUInt32BE(MAGIC, 14);
  frame.writeUInt32BE(nonce >>> 0, 18);
  frame.writeUInt32BE(seq >>> 0, 22);
  return frame;
}

/** nonce and sequence number of a returned probe; undefined for any other frame */
export function parseProbe(frame: Buffer): { nonce: number; seq: number } | undefined {
  if (frame.length < ETHERNET_HEADER_BYTES + 12 || frame.readUInt16BE(12) !== PROBE_ETHERTYPE || frame.readUInt32BE(14) !== MAGIC) return undefined;
  return { nonce: frame.readUInt32BE(18), seq: frame.readUInt32BE(22) };
}

/** The PACKET_OUT that sends a probe frame from `pair.from` through its tunnel port to `pair.to`. */
export function probePacketOut(pair: ProbePair, frame: Buffer): PacketOut {
  return {
    type: 'PACKET_OUT',
    xid: 0,
    bufferId: OFP_NO_BUFFER,
    inPort: OFPP.CONTROLLER,
    actions: [setField('tunnel_id', PROBE_VNI), setField('tun_ipv4_dst', pair.to.tunnelIp), output(TUNNEL_OFPORT)],
    data: frame,
  };
}
