import type { Action, CtFlush, LearnSpec } from '../../openflow';
import { NX_CT_F_COMMIT, NX_NAT_F_DST, NX_PORT_IN_PORT, fieldRef } from '../../openflow';
import { type Hypervisor, type LoadBalancer, TUNNEL_OFPORT, conntrackZone } from '../../model';
import { makeCookie } from '../../sdk/cookie';
import type { Flow } from '../../sdk/flow';
import { type Group, bucket, groupIdOf } from '../../sdk/group';
import { type OwnerDef, type OwnerFlows, type OwnerGroup, compileOwners } from '../../sdk/incremental';
import type { Pipeline, TableSpec } from '../../sdk/pipeline';
import { ETH, IP_PROTO, type OverlayView, type PortView, type VpcView, nextTable, onHosts, ownerFlows, vpcGroups } from '../overlay';

/**
 * Distributed load balancers (docs/load-balancers.md): a client's connection to a VIP is translated
 * on the client's own hypervisor, by a select group whose buckets do ct(commit, nat(dst=backend)) in
 * the VPC's conntrack zone, before the router; the rest of the pipeline then routes, filters (ACLs see
 * the backend's address and port) and tunnels it straight to the backend's hypervisor. Replies are
 * un-NATed on the client's hypervisor: arriving by tunnel before classify (lb.reply), or from a local
 * backend before the router (lb.vip). Client-IP affinity is learned: the bucket that picks a backend
 * for a new client writes a flow into lb.affinity (idle timeout = the affinity timeout) that picks it
 * again, with an ephemeral cookie the reconciler never deletes, so it survives a controller restart.
 */
export const LOAD_BALANCER_APP_ID = 35;
export const LB_REPLY_TABLE = 'lb.reply';
export const LB_VIP_TABLE = 'lb.vip';
export const LB_BACKEND_TABLE = 'lb.backend';
export const LB_AFFINITY_TABLE = 'lb.affinity';
/** the backend a client is bound to, by its port key: lb.affinity or a bucket → lb.backend */
export const LB_BACKEND_REG = 'reg2';

const TP = ['tcp_src', 'tcp_dst', 'udp_src', 'udp_dst'] as const;

export const LOAD_BALANCER_TABLES: readonly TableSpec[] = [
  // from the tunnel, before the overlay classifies it: replies of backends to this hypervisor's clients
  { name: LB_REPLY_TABLE, stage: 'probe', miss: 'next', matches: ['in_port', 'tunnel_id', 'eth_type', 'ip_proto', 'ipv4_src', ...TP] },
  // after ARP, before the router: VIP packets to their group, local backends' replies un-NATed
  { name: LB_VIP_TABLE, stage: 'nat', miss: 'next', matches: ['metadata', 'eth_type', 'ip_proto', 'ipv4_src', 'ipv4_dst', ...TP] },
  // reached only from lb.vip (affinity): the bound backend, else the group that binds one
  { name: LB_BACKEND_TABLE, stage: 'nat', miss: 'drop', matches: ['metadata', 'eth_type', 'ip_proto', 'ipv4_dst', 'tcp_dst', 'udp_dst', LB_BACKEND_REG] },
  // learned flows only, reached only by resubmit: a miss there must do nothing
  { name: LB_AFFINITY_TABLE, stage: 'nat', miss: 'drop', matches: [] },
];

const PRIORITY = { vip: 100, localReply: 90, tunnelReply: 100, bound: 200, pick: 100, learned: 100, skip: 1, noAffinity: 1 } as const;
const GLOBAL_OWNER = 'global';

export const lbOwnerKey = (lb: Pick<LoadBalancer, 'vpc' | 'name'>): string => `lb:${lb.vpc}/${lb.name}`;
/** one group per VIP port: the key of ctx.groupId */
export const vipGroupKey = (lb: LoadBalancer, port: number): string => `vip:${lb.vpc}/${lb.name}:${lb.protocol}:${port}`;
/** the ephemeral owner of the affinity flows that bind clients of `lb` to `backend`: deleted at once when it goes down */
export const affinityOwnerKey = (lb: LoadBalancer, backend: string): string => `affinity:${lb.vpc}/${lb.name}/${backend}`;
export const affinityCookie = (lb: LoadBalancer, backend: string): bigint => makeCookie(LOAD_BALANCER_APP_ID, affinityOwnerKey(lb, backend), true);

/** Whether a backend (a port name) of a load balancer is in rotation. */
export type Healthy = (lb: LoadBalancer, backend: string) => boolean;
export const ALL_HEALTHY: Healthy = () => true;

export function loadBalancerGroups(pipeline: Pipeline, view: OverlayView): OwnerGroup[] {
  return [{ key: GLOBAL_OWNER, token: view.hypervisors, owners: () => [globalOwner(pipeline, view.hypervisors)] }, ...vpcGroups(pipeline, view, vpcOwners)];
}

/** every owner's flows, for tests and `zonemesh flows` */
export function compileLoadBalancer(pipeline: Pipeline, view: OverlayView): Map<string, OwnerFlows> {
  return compileOwners(loadBalancerGroups(pipeline, view));
}

function globalOwner(pipeline: Pipeline, hypervisors: readonly Hypervisor[]): OwnerDef {
  return {
    key: GLOBAL_OWNER,
    signature: [hypervisors],
    compile: () => {
      const f = ownerFlows(pipeline, LOAD_BALANCER_APP_ID, GLOBAL_OWNER);
      return onHosts(hypervisors, [
        // whatever is not a VIP's skips lb.backend and lb.affinity, which only lb.vip's flows enter
        f(LB_VIP_TABLE).priority(PRIORITY.skip).goto(afterLb(pipeline)).build(),
        // a client with no binding yet: nothing loaded, lb.backend picks (not a drop: only resubmit comes here)
        f(LB_AFFINITY_TABLE).priority(PRIORITY.noAffinity).build(),
      ]);
    },
  };
}

function* vpcOwners(pipeline: Pipeline, vpc: VpcView): Iterable<OwnerDef> {
  if (vpc.loadBalancers.length === 0) return;
  for (const lb of vpc.loadBalancers) {
    const backends = lb.backends.map((b) => vpc.portByName.get(b.port));
    yield { key: lbOwnerKey(lb), signature: [lb, vpc.hosts, ...backends], compile: () => onHosts(vpc.hosts, lbFlows(pipeline, vpc, lb)) };
  }
  const key = `replies:${vpc.vpc.name}`;
  yield { key, signature: [vpc.loadBalancers, vpc.hosts, vpc.portByName], compile: () => onHosts(vpc.hosts, replyFlows(pipeline, key, vpc)) };
}

/** the table after the load balancer's: where translated packets go on (the router) */
function afterLb(pipeline: Pipeline): string {
  return nextTable(pipeline, LB_AFFINITY_TABLE);
}

interface Target {
  readonly view: PortView;
  readonly weight: number;
  readonly port: number;
}

function targets(vpc: VpcView, lb: LoadBalancer, vipPort: number): Target[] {
  return lb.backends.map((b) => ({ view: vpc.portByName.get(b.port)!, weight: b.weight, port: b.targetPort ?? vipPort }));
}

function tpFields(lb: LoadBalancer): { src: 'tcp_src' | 'udp_src'; dst: 'tcp_dst' | 'udp_dst' } {
  return lb.protocol === 'tcp' ? { src: 'tcp_src', dst: 'tcp_dst' } : { src: 'udp_src', dst: 'udp_dst' };
}

/** commit the connection translated to the backend, and go on (recirculated) in the router */
function natTo(pipeline: Pipeline, zone: number, t: Target): Action {
  const nat: Action = { type: 'nat', flags: NX_NAT_F_DST, ipv4Min: t.view.port.ip, protoMin: t.port };
  return { type: 'ct', flags: NX_CT_F_COMMIT, zone, recircTable: pipeline.table(afterLb(pipeline)).id, alg: 0, actions: [nat] };
}

function lbFlows(pipeline: Pipeline, vpc: VpcView, lb: LoadBalancer): Flow[] {
  const f = ownerFlows(pipeline, LOAD_BALANCER_APP_ID, lbOwnerKey(lb));
  const zone = conntrackZone(vpc.vpc.vni);
  const tp = tpFields(lb);
  return lb.ports.flatMap((port) => {
    const vip = { metadata: BigInt(vpc.vpc.vni), eth_type: ETH.ip, ip_proto: IP_PROTO[lb.protocol], ipv4_dst: lb.vip, [tp.dst]: port };
    const group: Action = { type: 'group', groupId: groupIdOf(LOAD_BALANCER_APP_ID, vipGroupKey(lb, port)) };
    if (!lb.sessionAffinity) return [f(LB_VIP_TABLE).priority(PRIORITY.vip).match(vip).apply(group).build()];
    const lookup: Action = { type: 'resubmit_table', inPort: NX_PORT_IN_PORT, tableId: pipeline.table(LB_AFFINITY_TABLE).id };
    return [
      f(LB_VIP_TABLE).priority(PRIORITY.vip).match(vip).apply(lookup).goto(LB_BACKEND_TABLE).build(),
      f(LB_BACKEND_TABLE).priority(PRIORITY.pick).match(vip).apply(group).build(),
      ...targets(vpc, lb, port).map((t) =>
        f(LB_BACKEND_TABLE)
          .priority(PRIORITY.bound)
          .match({ ...vip, [LB_BACKEND_REG]: t.view.key })
          .apply(learnBinding(pipeline, lb, t), natTo(pipeline, zone, t))
          .build(),
      ),
    ];
  });
}

const ref = fieldRef;
const same = (field: string, nBits: number): LearnSpec => ({ type: 'match', nBits, src: { field: ref(field), ofs: 0 }, dst: ref(field), dstOfs: 0 });

/**
 * The flow that binds this client (VPC, source IP) and VIP port to the backend: learned afresh by
 * each packet, so its idle timeout counts from the client's last packet to the VIP.
 */
function learnBinding(pipeline: Pipeline, lb: LoadBalancer, t: Target): Action {
  const tp = tpFields(lb);
  return {
    type: 'learn',
    idleTimeout: lb.sessionAffinity!.timeoutSeconds,
    hardTimeout: 0,
    priority: PRIORITY.learned,
    cookie: affinityCookie(lb, t.view.port.name),
    flags: 0,
    tableId: pipeline.table(LB_AFFINITY_TABLE).id,
    finIdleTimeout: 0,
    finHardTimeout: 0,
    specs: [
      { type: 'match', nBits: 16, src: { value: BigInt(ETH.ip) }, dst: ref('eth_type'), dstOfs: 0 },
      { type: 'match', nBits: 8, src: { value: BigInt(IP_PROTO[lb.protocol]) }, dst: ref('ip_proto'), dstOfs: 0 },
      same('metadata', 64),
      same('ipv4_src', 32),
      same('ipv4_dst', 32),
      same(tp.dst, 16),
      { type: 'load', nBits: 32, src: { value: BigInt(t.view.key) }, dst: ref(LB_BACKEND_REG), dstOfs: 0 },
    ],
  };
}

/**
 * Replies of every backend (address, protocol, port) of the VPC's load balancers meet ct(nat) in the
 * VPC's zone, which gives them the VIP back on the hypervisor that translated their connection and
 * changes nothing elsewhere (a connection made to the backend directly has no NAT). One owner per
 * VPC: two load balancers may share a backend and its port.
 */
function replyFlows(pipeline: Pipeline, owner: string, vpc: VpcView): Flow[] {
  const f = ownerFlows(pipeline, LOAD_BALANCER_APP_ID, owner);
  const zone = conntrackZone(vpc.vpc.vni);
  const unNat = (table: string): Action => ({ type: 'ct', flags: 0, zone, recircTable: pipeline.table(table).id, alg: 0, actions: [{ type: 'nat', flags: 0 }] });
  const seen = new Set<string>();
  const flows: Flow[] = [];
  for (const lb of vpc.loadBalancers) {
    const tp = tpFields(lb);
    for (const port of lb.ports) {
      for (const t of targets(vpc, lb, port)) {
        const id = `${t.view.port.ip}/${lb.protocol}/${t.port}`;
        if (seen.has(id)) continue;
        seen.add(id);
        const reply = { eth_type: ETH.ip, ip_proto: IP_PROTO[lb.protocol], ipv4_src: t.view.port.ip, [tp.src]: t.port };
        flows.push(
          f(LB_REPLY_TABLE).priority(PRIORITY.tunnelReply).match({ in_port: TUNNEL_OFPORT, tunnel_id: BigInt(vpc.vpc.vni), ...reply }).apply(unNat(nextTable(pipeline, LB_REPLY_TABLE))).build(),
          f(LB_VIP_TABLE).priority(PRIORITY.localReply).match({ metadata: BigInt(vpc.vpc.vni), ...reply }).apply(unNat(afterLb(pipeline))).build(),
        );
      }
    }
  }
  return flows;
}

/**
 * A load balancer's select groups, one per VIP port, on every hypervisor of its VPC: one bucket per
 * backend in rotation there (`rotation`), weighted.
 */
export function lbGroups(pipeline: Pipeline, vpc: VpcView, lb: LoadBalancer, healthy: Healthy): Map<bigint, Group[]> {
  const zone = conntrackZone(vpc.vpc.vni);
  const out = new Map<bigint, Group[]>();
  for (const host of vpc.hosts) {
    out.set(
      host.datapathId,
      lb.ports.map((port) => ({
        groupId: groupIdOf(LOAD_BALANCER_APP_ID, vipGroupKey(lb, port)),
        groupType: 'select',
        buckets: rotation(vpc, lb, port, host, healthy).map((t) => bucket(lb.sessionAffinity ? bindTo(pipeline, t) : [natTo(pipeline, zone, t)], t.weight)),
      })),
    );
  }
  return out;
}

/**
 * The backends a VIP port sends new connections to from `host`: healthy and of weight > 0; with zone
 * affinity, only those of the host's zone while one of them is healthy. When no backend is healthy,
 * every backend of weight > 0 is (fail open: a checker that cannot reach the backends does not
 * blackhole the VIP).
 */
function rotation(vpc: VpcView, lb: LoadBalancer, port: number, host: Hypervisor, healthy: Healthy): Target[] {
  const weighted = targets(vpc, lb, port).filter((t) => t.weight > 0);
  const up = weighted.filter((t) => healthy(lb, t.view.port.name));
  const inRotation = up.length ? up : weighted;
  const local = lb.zoneAffinity ? inRotation.filter((t) => t.view.host.zone === host.zone && up.includes(t)) : [];
  return local.length ? local : inRotation;
}

/**
 * The conntrack flushes, per hypervisor, that forget the connections a dead backend was given through
 * the VIP, wherever it is out of rotation now. Unanswered ones (SYN_SENT) would keep their NAT for
 * OVS's 30 s, and a client that reuses such a source port meets the dead backend again, its new SYN
 * outside the old entry's window: a timeout long after the failover. A client retransmitting an old
 * SYN after the flush is balanced afresh. Only the VIP's translations are flushed (original
 * destination the VIP and port, reply source the backend and its port): connections made to the
 * backend directly stay.
 */
export function deadBackendFlushes(vpc: VpcView, lb: LoadBalancer, backend: string, healthy: Healthy): Map<bigint, CtFlush[]> {
  const zone = conntrackZone(vpc.vpc.vni);
  const out = new Map<bigint, CtFlush[]>();
  for (const host of vpc.hosts) {
    const flushes = lb.ports.flatMap((port) => {
      const dead = targets(vpc, lb, port).find((t) => t.view.port.name === backend);
      if (!dead || rotation(vpc, lb, port, host, healthy).some((t) => t.view === dead.view)) return [];
      return [{ zone, ipProto: IP_PROTO[lb.protocol], orig: { dst: lb.vip, dstPort: port }, reply: { src: dead.view.port.ip, srcPort: dead.port } }];
    });
    if (flushes.length) out.set(host.datapathId, flushes);
  }
  return out;
}

/** with affinity, a bucket only names the backend; lb.backend's flow for it learns the binding and translates */
function bindTo(pipeline: Pipeline, t: Target): Action[] {
  return [
    { type: 'set_field', field: { field: LB_BACKEND_REG, value: t.view.key } },
    { type: 'resubmit_table', inPort: NX_PORT_IN_PORT, tableId: pipeline.table(LB_BACKEND_TABLE).id },
  ];
}
