import { ACL_APP_ID, ACL_TABLES, aclCounter, aclGroups } from '../apps/acl';
import { ARP_RESPONDER_APP_ID, ARP_RESPONDER_COUNTERS, ARP_RESPONDER_TABLES, arpResponderGroups } from '../apps/arp-responder';
import { DHCP_TABLES } from '../apps/dhcp-responder';
import { DISTRIBUTED_ROUTER_APP_ID, DISTRIBUTED_ROUTER_COUNTERS, DISTRIBUTED_ROUTER_TABLES, distributedRouterGroups } from '../apps/distributed-router';
import { LOAD_BALANCER_APP_ID, LOAD_BALANCER_TABLES, loadBalancerGroups, vipGroupKey } from '../apps/load-balancer';
import { type OverlayView, type PortView, buildOverlayView } from '../apps/overlay';
import { BUILTIN_APP_IDS } from '../apps/registry';
import { TUNNEL_MESH_APP_ID, TUNNEL_MESH_TABLES, tunnelMeshGroups } from '../apps/tunnel-mesh';
import { TUNNEL_OFPORT, cidrContains, hasIpv4, parseCidr, parseIpv4, portHasIpv4, type NetworkModel } from '../model';
import { OFPP, formatActions, formatInstructions, formatMatch, type GroupType } from '../openflow';
import { PIPELINE_APP_ID, appOfCookie, makeCookie } from '../sdk/cookie';
import type { FlowCount, FlowCounter } from '../sdk/counters';
import type { InstalledFlow } from '../sdk/diff';
import { type Group, groupIdOf } from '../sdk/group';
import type { OwnerGroup } from '../sdk/incremental';
import { Pipeline, type TableSpec } from '../sdk/pipeline';
import { CT_STATE, FlowTableSim, type SimGroupStep, type SimPacket, type SimStep } from '../sdk/sim';

/**
 * `zonemesh trace`: follows one packet through the flows installed on the switches (not the desired
 * state) with the SDK's FlowTableSim, across the Geneve tunnel to the destination's hypervisor, and
 * names the model object behind every flow from its cookie, as ovn-detrace does for OVN. Pure: the
 * command reads the switches and the model through the controller and hands them here.
 */

export type TraceProto = 'tcp' | 'udp' | 'icmp' | 'arp';

export interface TraceQuery {
  /** a VM port of the model */
  from: string;
  /** an IPv4 address */
  to: string;
  proto: TraceProto;
  /** destination port (tcp, udp) */
  port?: number;
  /** the conntrack state the ACL sees: 'new' (a first packet, ofproto/trace's default) or 'established' */
  ct: 'new' | 'established';
  /** IPv4 TTL as the VM sends it */
  ttl: number;
}

/** One switch as read from it: its flows (OFPMP_FLOW), its groups (OFPMP_GROUP_DESC) and its ports by name. */
export interface InstalledSnapshot {
  dpid: bigint;
  /** with their packet counters when read from a switch */
  flows: readonly (InstalledFlow & { readonly packetCount?: bigint })[];
  /** none read (a switch that does not describe its groups, an older controller): a flow's group is then a pipeline error */
  groups?: readonly Group[];
  ports: ReadonlyMap<string, number>;
}

export type TraceErrorKind = 'unknown_vm' | 'bad_address' | 'not_connected' | 'pipeline';

/** A trace that cannot be made, and why. */
export class TraceError extends Error {
  override readonly name = 'TraceError';
  constructor(
    readonly kind: TraceErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** Packet fields as JSON: numbers, strings, and 64-bit values as '0x…'. */
export type PacketFields = Record<string, number | string>;

export interface TraceStep {
  table: number;
  tableName: string;
  /** null: a miss with no table-miss flow */
  priority: number | null;
  cookie: string;
  match: string;
  actions: string;
  app: string;
  /** the owner's key ('port:web1', 'vpc:blue', 'table-miss'), or the cookie's owner hash when no model object has it */
  owner: string;
  /** the model object behind the owner, in words */
  about?: string;
  /** what the flow's packet counter counts: a drop reason or an ACL rule */
  counts?: FlowCount;
  /** --live: packets the flow counted while the marked packet went through (-1: the flow went away) */
  live?: number;
  /** the groups the flow ran (a load balancer's select group), with the bucket taken */
  groups?: TraceGroup[];
}

export interface TraceGroup {
  /** as the flow's group action shows it */
  groupId: number;
  type: GroupType;
  /** the owner's key ('vip:blue/spread:tcp:80'), or 'unknown' when no model object has the id */
  owner: string;
  about?: string;
  buckets: { weight: number; actions: string; taken: boolean }[];
}

export interface TraceHop {
  hypervisor: string;
  dpid: string;
  inPort: number;
  /** the packet as it entered this switch */
  packet: PacketFields;
  steps: TraceStep[];
}

export interface Delivery {
  hypervisor: string;
  port: number;
  /** the interface on that port */
  interface?: string;
  /** the model's VM port on that interface */
  vm?: string;
  /** sent back out of the port it came in on: the bridge answered (ARP reply, gateway echo reply) */
  reply: boolean;
  /** its headers as they leave the bridge */
  packet: PacketFields;
}

export interface Drop {
  hypervisor: string;
  table: string;
  /** snake_case: 'acl_rule', 'acl_default_deny', 'spoofguard', 'ttl_expired', 'no_route', 'unknown_arp', … */
  reason: string;
  /** the ACL rule, when one denied it */
  rule?: string;
  owner: string;
}

export interface TraceVerdict {
  /** delivered to another port; answered by the bridge; or dropped everywhere */
  result: 'delivered' | 'answered' | 'dropped' | 'controller';
  deliveries: Delivery[];
  /** where the flows sent the packet to the controller (an RS, a DHCP request, a probe reply) */
  punts: { hypervisor: string; packet: PacketFields }[];
  drops: Drop[];
}

export interface TraceResult {
  query: TraceQuery;
  /** the next hop's address the VM resolved with ARP first, and the MAC the bridge answered */
  resolved?: { ip: string; mac: string | null };
  /** the packet the VM sends (when the ARP went unanswered: its ARP request) */
  packet: PacketFields;
  hops: TraceHop[];
  verdict: TraceVerdict;
  /** --live: the packet sent for real, marked with this IP DSCP; whether every traced flow counted it */
  live?: { dscp: number | null; allSeen: boolean; waitedMs: number };
}

/** Every built-in app's tables: the specs behind the names the controller reports. */
const KNOWN_TABLES: ReadonlyMap<string, TableSpec> = new Map(
  [...TUNNEL_MESH_TABLES, ...ARP_RESPONDER_TABLES, ...DISTRIBUTED_ROUTER_TABLES, ...ACL_TABLES, ...DHCP_TABLES, ...LOAD_BALANCER_TABLES].map((t) => [t.name, t]),
);

/**
 * The controller's pipeline from its description lines (`table 0 classify [classify] miss=drop`),
 * with the built-in specs where known (drop reasons, match schemas); the ids must come out the same.
 */
export function pipelineOf(lines: readonly string[]): Pipeline {
  const parsed = lines.map((line) => {
    const m = /^table (\d+) (\S+) \[(\w+)\] miss=(\w+)$/.exec(line);
    if (!m) throw new TraceError('pipeline', `cannot read the controller's table line '${line}'`);
    return { id: Number(m[1]), spec: KNOWN_TABLES.get(m[2]!) ?? ({ name: m[2]!, stage: m[3], miss: m[4], matches: [] } as unknown as TableSpec) };
  });
  const first = parsed.length ? Math.min(...parsed.map((p) => p.id)) : 0;
  const pipeline = new Pipeline(
    parsed.sort((a, b) => a.id - b.id).map((p) => p.spec),
    first,
  );
  for (const p of parsed) {
    if (pipeline.table(p.spec.name).id !== p.id) throw new TraceError('pipeline', `table ${p.spec.name} is ${p.id} on the controller, ${pipeline.table(p.spec.name).id} here`);
  }
  return pipeline;
}

/** The overlay apps whose owners a cookie can name, with what their flows count. */
interface AppInfo {
  id: number;
  groups: (pipeline: Pipeline, view: OverlayView) => OwnerGroup[];
  tables: readonly TableSpec[];
  counters: (view: OverlayView) => readonly FlowCounter[];
}

const OVERLAY_APPS: readonly AppInfo[] = [
  { id: TUNNEL_MESH_APP_ID, groups: tunnelMeshGroups, tables: TUNNEL_MESH_TABLES, counters: () => [] },
  { id: ARP_RESPONDER_APP_ID, groups: arpResponderGroups, tables: ARP_RESPONDER_TABLES, counters: () => ARP_RESPONDER_COUNTERS },
  { id: DISTRIBUTED_ROUTER_APP_ID, groups: distributedRouterGroups, tables: DISTRIBUTED_ROUTER_TABLES, counters: () => DISTRIBUTED_ROUTER_COUNTERS },
  { id: ACL_APP_ID, groups: aclGroups, tables: ACL_TABLES, counters: (view) => [aclCounter(() => view)] },
  { id: LOAD_BALANCER_APP_ID, groups: loadBalancerGroups, tables: LOAD_BALANCER_TABLES, counters: () => [] },
];

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** Names cookies: the owner keys every app has for this model, hashed as the apps hash them. */
class OwnerBook {
  private readonly owners = new Map<bigint, string>();
  /** group id → its owner's key and the model object behind it */
  private readonly groupOwners = new Map<number, { key: string; about: string }>();
  private readonly counters: { appId: number; counter: FlowCounter }[] = [];

  constructor(
    private readonly pipeline: Pipeline,
    private readonly view: OverlayView,
  ) {
    this.owners.set(makeCookie(PIPELINE_APP_ID, 'table-miss'), 'table-miss');
    for (const app of OVERLAY_APPS) {
      if (!app.tables.every((t) => pipeline.has(t.name))) continue; // not running
      for (const group of app.groups(pipeline, view)) for (const def of group.owners()) this.owners.set(makeCookie(app.id, def.key), def.key);
      for (const counter of app.counters(view)) this.counters.push({ appId: app.id, counter });
    }
    for (const lb of view.vpcs.flatMap((v) => v.loadBalancers)) {
      for (const port of lb.ports) {
        const key = vipGroupKey(lb, port);
        this.groupOwners.set(groupIdOf(LOAD_BALANCER_APP_ID, key), { key, about: `load balancer ${lb.name} of VPC ${lb.vpc}: VIP ${lb.vip} ${lb.protocol} port ${port}` });
      }
    }
  }

  step(s: SimStep): TraceStep {
    const table = this.pipeline.tables.find((t) => t.id === s.tableId);
    const f = s.flow;
    const base = { table: s.tableId, tableName: table?.name ?? String(s.tableId), priority: f?.priority ?? null };
    if (!f) return { ...base, cookie: '-', match: '', actions: 'drop (no flow)', app: '-', owner: '-' };
    const appId = appOfCookie(f.cookie);
    const owner = this.owners.get(f.cookie) ?? `owner ${hex(f.cookie & ((1n << 55n) - 1n))}`;
    const about = this.about(owner);
    const counts = this.counts(f);
    return {
      ...base,
      cookie: hex(f.cookie),
      match: formatMatch(f.match),
      actions: this.named(formatInstructions(f.instructions)) || 'drop',
      app: appId === PIPELINE_APP_ID ? 'pipeline' : (BUILTIN_APP_IDS.get(appId) ?? `app ${appId}`),
      owner,
      ...(about && { about }),
      ...(counts && { counts }),
      ...(s.groups && { groups: s.groups.map((g) => this.group(g)) }),
    };
  }

  private group({ group, taken }: SimGroupStep): TraceGroup {
    const owner = this.groupOwners.get(group.groupId);
    return {
      groupId: group.groupId,
      type: group.groupType,
      owner: owner?.key ?? 'unknown',
      ...(owner && { about: owner.about }),
      buckets: group.buckets.map((b, i) => ({ weight: b.weight, actions: this.named(formatActions(b.actions)) || 'drop', taken: taken.includes(i) })),
    };
  }

  /** goto_table:7 → goto_table:acl.rules */
  private named(actions: string): string {
    const name = (id: string) => this.pipeline.tables.find((t) => t.id === Number(id))?.name ?? id;
    return actions.replace(/goto_table:(\d+)/g, (_, id: string) => `goto_table:${name(id)}`).replace(/table=(\d+)/g, (_, id: string) => `table=${name(id)}`);
  }

  private about(owner: string): string | undefined {
    const [kind, rest] = owner.split(':', 2) as [string, string | undefined];
    if (rest === undefined) return undefined;
    if (kind === 'port') {
      const p = this.portNamed(rest);
      return p && `port ${p.port.name}: VPC ${p.port.vpc}, subnet ${p.port.subnet}, ${p.port.ip ?? p.ipv6} ${p.port.mac} on ${p.host.name}`;
    }
    if (kind === 'vpc') return `VPC ${rest} (vni ${this.view.vpcByName.get(rest)?.vpc.vni})`;
    const [vpc, subnet] = rest.split('/');
    const s = this.view.vpcByName.get(vpc ?? '')?.subnetByName.get(subnet ?? '');
    return s && `subnet ${subnet} of VPC ${vpc}: ${hasIpv4(s.subnet) ? `${s.subnet.cidr}, gateway ${s.subnet.gateway}` : `${s.subnet.ipv6?.prefix} (IPv6 only)`}`;
  }

  private portNamed(name: string): PortView | undefined {
    for (const v of this.view.vpcs) {
      const p = v.portByName.get(name);
      if (p) return p;
    }
    return undefined;
  }

  /** what the flow counts, by its app's counters, else (a table-miss drop) by its table's drop reason */
  private counts(f: InstalledFlow): FlowCount | undefined {
    for (const { appId, counter } of this.counters) {
      if (appOfCookie(f.cookie) !== appId) continue;
      if (counter.owner !== undefined && makeCookie(appId, counter.owner) !== f.cookie) continue;
      if (counter.table !== undefined && this.pipeline.table(counter.table).id !== f.tableId) continue;
      const c = counter.count(f);
      if (c) return c;
    }
    const table = this.pipeline.tables.find((t) => t.id === f.tableId);
    if (appOfCookie(f.cookie) === PIPELINE_APP_ID && table?.miss === 'drop') return { kind: 'drop', reason: table.dropReason ?? 'table_miss' };
    return undefined;
  }
}

/** Pipeline state that does not travel in a tunnel: registers, metadata, conntrack, tunnel fields. */
const PIPELINE_FIELD = /^(x?reg\d+|metadata|ct_state|ct_zone|in_port|tunnel_id|tun_metadata\d+|tun_ipv4_(src|dst))$/;

function wireHeaders(p: SimPacket): SimPacket {
  return Object.fromEntries(Object.entries(p).filter(([k]) => !PIPELINE_FIELD.test(k)));
}

function fields(p: SimPacket): PacketFields {
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, typeof v === 'bigint' ? hex(v) : v]));
}

const BROADCAST = 'ff:ff:ff:ff:ff:ff';
/** at most this many tunnel crossings: the overlay crosses one; more is a loop */
const MAX_HOPS = 4;

export interface TracerOptions {
  /**
   * One simulated switch each, kept from trace to trace, so conntrack remembers earlier packets (a
   * test's network); by default each trace starts afresh, every packet a first one, as in ofproto/trace.
   */
  keepConntrack?: boolean;
}

export class Tracer {
  private readonly view: OverlayView;
  private readonly book: OwnerBook;
  private readonly byTunnelIp: Map<string, string>;
  private readonly kept = new Map<string, FlowTableSim>();

  constructor(
    private readonly model: NetworkModel,
    pipeline: Pipeline,
    private readonly switches: ReadonlyMap<bigint, InstalledSnapshot>,
    private readonly options: TracerOptions = {},
  ) {
    const placement = new Map([...switches].map(([dpid, s]) => [dpid, s.ports]));
    this.view = buildOverlayView(model, placement);
    this.book = new OwnerBook(pipeline, this.view);
    this.byTunnelIp = new Map(model.hypervisors.map((h) => [h.tunnelIp, h.name]));
  }

  trace(query: TraceQuery): TraceResult {
    const src = this.model.ports.find((p) => p.name === query.from);
    if (!src) throw new TraceError('unknown_vm', `no VM port '${query.from}' in the model (known: ${this.model.ports.map((p) => p.name).join(', ')})`);
    const to = parseIpv4(query.to);
    if (to === undefined) throw new TraceError('bad_address', `'${query.to}' is not an IPv4 address`);
    const subnet = this.model.subnets.find((s) => s.vpc === src.vpc && s.name === src.subnet)!;
    // traces are of IPv4 packets so far
    if (!portHasIpv4(src) || !hasIpv4(subnet)) throw new TraceError('bad_address', `VM ${src.name} has no IPv4 address (subnet ${subnet.name} is IPv6-only): only IPv4 is traced`);
    const arp = (tpa: string): SimPacket => ({
      eth_src: src.mac,
      eth_dst: BROADCAST,
      eth_type: 0x0806,
      arp_op: 1,
      arp_spa: src.ip,
      arp_tpa: tpa,
      arp_sha: src.mac,
      arp_tha: '00:00:00:00:00:00',
    });
    if (query.proto === 'arp') return this.run(query, src.hypervisor, src.interface, arp(query.to));
    // The VM resolves its next hop first: the destination on its own subnet, else its gateway.
    const onLink = cidrContains(parseCidr(subnet.cidr)!, to);
    const nextHop = onLink ? query.to : subnet.gateway;
    const resolution = this.run({ ...query, proto: 'arp' }, src.hypervisor, src.interface, arp(nextHop));
    const mac = resolution.verdict.deliveries.find((d) => d.reply && d.packet.arp_op === 2)?.packet.arp_sha;
    if (typeof mac !== 'string') return { ...resolution, query, resolved: { ip: nextHop, mac: null } };
    const packet: SimPacket = { eth_src: src.mac, eth_dst: mac, eth_type: 0x0800, ipv4_src: src.ip, ipv4_dst: query.to, nw_ttl: query.ttl, ...l4(query) };
    return { ...this.run(query, src.hypervisor, src.interface, packet), resolved: { ip: nextHop, mac } };
  }

  /** the VM's port on its hypervisor's bridge */
  private portOf(hvName: string, iface: string): number {
    const snapshot = this.snapshotOf(hvName);
    const inPort = snapshot.ports.get(iface);
    if (inPort === undefined) throw new TraceError('not_connected', `interface ${iface} is not on ${hvName}'s bridge (ports: ${[...snapshot.ports.keys()].join(', ')})`);
    return inPort;
  }

  private snapshotOf(hvName: string): InstalledSnapshot {
    const hv = this.model.hypervisors.find((h) => h.name === hvName)!;
    const snapshot = this.switches.get(hv.datapathId);
    if (!snapshot) throw new TraceError('not_connected', `${hv.name}'s switch ${hex(hv.datapathId)} is not connected to the controller`);
    return snapshot;
  }

  private run(query: TraceQuery, hv: string, iface: string, packet: SimPacket): TraceResult {
    return { query, packet: fields(packet), ...this.follow(hv, this.portOf(hv, iface), packet, query.ct) };
  }

  /** Follows `packet`, as it is, from port `inPort` of the hypervisor's switch: no ARP first. */
  follow(hypervisor: string, inPort: number, packet: SimPacket, ct: TraceQuery['ct'] = 'new'): Pick<TraceResult, 'hops' | 'verdict'> {
    const hops: TraceHop[] = [];
    const verdict: TraceVerdict = { result: 'dropped', deliveries: [], punts: [], drops: [] };
    this.walk(hypervisor, inPort, packet, ct, hops, verdict, 0);
    if (verdict.deliveries.some((d) => !d.reply)) verdict.result = 'delivered';
    else if (verdict.deliveries.length) verdict.result = 'answered';
    return { hops, verdict };
  }

  private simOf(hvName: string, snapshot: InstalledSnapshot): FlowTableSim {
    if (!this.options.keepConntrack) return new FlowTableSim(snapshot.flows, snapshot.groups);
    let sim = this.kept.get(hvName);
    if (!sim) this.kept.set(hvName, (sim = new FlowTableSim(snapshot.flows, snapshot.groups)));
    return sim;
  }

  private walk(hvName: string, inPort: number, packet: SimPacket, ct: TraceQuery['ct'], hops: TraceHop[], verdict: TraceVerdict, depth: number): void {
    const snapshot = this.snapshotOf(hvName);
    const hv = this.model.hypervisors.find((h) => h.name === hvName)!;
    const result = this.simOf(hvName, snapshot).inject(packet, inPort, ct === 'established' ? { ctState: CT_STATE.trk | CT_STATE.est } : {});
    const steps = result.trace.map((s) => this.book.step(s));
    hops.push({ hypervisor: hvName, dpid: hex(snapshot.dpid), inPort, packet: fields(packet), steps });
    const ifaceOf = (port: number) => [...snapshot.ports].find(([, n]) => n === port)?.[0];
    for (const out of result.outputs) {
      if (out.port === TUNNEL_OFPORT) {
        const peer = this.byTunnelIp.get(String(out.packet.tun_ipv4_dst));
        if (!peer) {
          verdict.drops.push({ hypervisor: hvName, table: steps.at(-1)?.tableName ?? '-', reason: 'tunnel_to_unknown_ip', owner: steps.at(-1)?.owner ?? '-' });
          continue;
        }
        if (depth + 1 > MAX_HOPS) throw new TraceError('pipeline', `the packet crossed more than ${MAX_HOPS} tunnels (a loop?)`);
        const tunnelled = {
          ...wireHeaders(out.packet),
          tunnel_id: out.packet.tunnel_id ?? 0n,
          tun_metadata0: out.packet.tun_metadata0 ?? 0,
          tun_ipv4_src: hv.tunnelIp,
          tun_ipv4_dst: String(out.packet.tun_ipv4_dst),
        };
        this.walk(peer, TUNNEL_OFPORT, tunnelled, ct, hops, verdict, depth + 1);
      } else if (out.port === OFPP.CONTROLLER) {
        verdict.result = 'controller';
        verdict.punts.push({ hypervisor: hvName, packet: fields(wireHeaders(out.packet)) });
      } else {
        const iface = ifaceOf(out.port);
        const vm = iface === undefined ? undefined : this.model.ports.find((p) => p.hypervisor === hvName && p.interface === iface)?.name;
        const delivery = { hypervisor: hvName, port: out.port, ...(iface !== undefined && { interface: iface }), ...(vm !== undefined && { vm }) };
        verdict.deliveries.push({ ...delivery, reply: out.port === inPort, packet: fields(wireHeaders(out.packet)) });
      }
    }
    if (result.outputs.length === 0) verdict.drops.push(dropOf(hvName, steps, result.end));
  }
}

function l4(q: TraceQuery): SimPacket {
  const sport = 40000;
  if (q.proto === 'tcp') return { ip_proto: 6, tcp_src: sport, tcp_dst: q.port ?? 80 };
  if (q.proto === 'udp') return { ip_proto: 17, udp_src: sport, udp_dst: q.port ?? 53 };
  return { ip_proto: 1, icmpv4_type: 8, icmpv4_code: 0 };
}

/** why a hop ended with no output: what its last flow counts, else that it dropped */
function dropOf(hypervisor: string, steps: readonly TraceStep[], end: 'miss' | 'ttl' | 'done'): Drop {
  const last = steps.at(-1);
  const at = { hypervisor, table: last?.tableName ?? '-', owner: last?.owner ?? '-' };
  if (end === 'ttl') return { ...at, reason: 'ttl_expired' };
  if (end === 'miss' || !last) return { ...at, reason: 'table_miss' };
  if (last.counts?.kind === 'acl_rule') return { ...at, reason: 'acl_rule', rule: last.counts.rule };
  if (last.counts?.kind === 'drop') return { ...at, reason: last.counts.reason };
  return { ...at, reason: 'dropped_by_flow' };
}

/** The trace as text: one block per switch, one line per table, then the verdict. */
export function formatTrace(r: TraceResult): string {
  const lines: string[] = [];
  const q = r.query;
  lines.push(`trace ${q.proto}${q.port !== undefined ? ` port ${q.port}` : ''} from ${q.from} to ${q.to}, conntrack ${q.ct}${q.proto === 'arp' ? '' : `, ttl ${q.ttl}`}`);
  if (r.resolved) lines.push(r.resolved.mac ? `ARP: ${r.resolved.ip} is at ${r.resolved.mac} (answered by the bridge)` : `ARP: nobody answers for ${r.resolved.ip}: the VM never sends the packet; traced: its ARP request`);
  const shown = (k: string, v: number | string) => (k === 'eth_type' ? `0x${v.toString(16).padStart(4, '0')}` : v);
  lines.push(`packet: ${Object.entries(r.packet).map(([k, v]) => `${k}=${shown(k, v)}`).join(',')}`);
  for (const hop of r.hops) {
    lines.push('', `${hop.hypervisor} (dpid ${hop.dpid}), in_port ${hop.inPort}${hop.inPort === TUNNEL_OFPORT ? ` (tunnel from ${hop.packet.tun_ipv4_src}, vni ${Number(hop.packet.tunnel_id)}, egress key 0x${Number(hop.packet.tun_metadata0).toString(16)})` : ''}`);
    for (const s of hop.steps) {
      lines.push(` ${String(s.table).padStart(2)}. ${s.tableName}  priority ${s.priority ?? '-'}${s.match ? `, ${s.match}` : ''}  cookie ${s.cookie}`);
      lines.push(`     actions: ${s.actions}`);
      const counted = s.counts ? (s.counts.kind === 'acl_rule' ? `; ACL rule ${s.counts.rule} of VPC ${s.counts.vpc}` : `; counts drops: ${s.counts.reason}`) : '';
      lines.push(`     owner: ${s.app} ${s.owner}${s.about ? ` (${s.about})` : ''}${counted}`);
      for (const g of s.groups ?? []) {
        const taken = g.buckets.flatMap((b, i) => (b.taken ? [i] : []));
        const took = taken.length === 0 ? 'no bucket live: dropped' : g.type === 'all' ? 'every bucket taken' : `bucket ${taken.join(', ')} of ${g.buckets.length} taken`;
        lines.push(`     group ${g.groupId} ${g.type}, ${g.owner}${g.about ? ` (${g.about})` : ''}: ${took}`);
        for (const [i, b] of g.buckets.entries()) lines.push(`     ${b.taken ? '*' : ' '} bucket ${i}${g.type === 'select' ? ` weight ${b.weight}` : ''}: ${b.actions}`);
      }
      if (s.live !== undefined) lines.push(`     live: ${s.live > 0 ? `seen (n_packets +${s.live})` : s.live === 0 ? 'NOT seen' : 'the flow is gone'}`);
    }
  }
  lines.push('', `verdict: ${verdictLine(r.verdict)}`);
  if (r.live) {
    const mark = r.live.dscp === null ? 'an ARP packet, unmarked' : `a real packet marked DSCP ${r.live.dscp}`;
    lines.push(`live: ${mark}, sent into ${r.hops[0]?.hypervisor}'s pipeline: ${r.live.allSeen ? 'every flow above counted it' : `not every flow above counted it within ${r.live.waitedMs} ms`}`);
  }
  return lines.join('\n');
}

export function verdictLine(v: TraceVerdict): string {
  const where = (d: Delivery) => `${d.vm ?? d.interface ?? 'port'} (port ${d.port}) on ${d.hypervisor}`;
  const drop = (d: Drop) => `${d.reason === 'acl_rule' ? `ACL rule ${d.rule}` : d.reason} in ${d.table} on ${d.hypervisor} (owner ${d.owner})`;
  switch (v.result) {
    case 'delivered':
      return `delivered to ${v.deliveries.filter((d) => !d.reply).map(where).join(', ')}`;
    case 'answered':
      return `answered by the bridge, back to ${v.deliveries.map(where).join(', ')}`;
    case 'controller':
      return `sent to the controller by ${v.punts.map((p) => p.hypervisor).join(', ')}`;
    case 'dropped':
      return `dropped: ${v.drops.map(drop).join('; ') || 'no output'}`;
  }
}
