import type { Action } from '../../openflow';
import { NX_CT_F_COMMIT, NX_CT_RECIRC_NONE } from '../../openflow';
import type { Hypervisor } from '../../model';
import { makeCookie } from '../../sdk/cookie';
import { PipelineError } from '../../sdk/errors';
import { type Flow, FlowBuilder } from '../../sdk/flow';
import type { OwnerDef, OwnerFlows, OwnerGroup, SwitchFlows } from '../../sdk/incremental';
import type { Pipeline } from '../../sdk/pipeline';
import { type OverlayView, type VpcView, viewPatch } from './view';

/** Flow builders for one owner: every flow carries the owner's cookie (computed once). */
export function ownerFlows(pipeline: Pipeline, appId: number, owner: string): (table: string) => FlowBuilder {
  const cookie = makeCookie(appId, owner);
  return (table) => new FlowBuilder(pipeline, pipeline.table(table), cookie);
}

/**
 * The table after `table`: where an app hands a packet on to whichever app comes next, so apps
 * compose without naming each other's tables.
 */
export function nextTable(pipeline: Pipeline, table: string): string {
  const next = pipeline.successor(pipeline.table(table));
  if (!next) throw new PipelineError(`no table follows '${table}'`);
  return next.name;
}

/** each host list's dpids, and its dpids but one's (the one with its own flows), made once per list */
const dpidsOf = new WeakMap<readonly Hypervisor[], { all: readonly bigint[]; without: Map<bigint, readonly bigint[]> }>();

function hostDpids(hosts: readonly Hypervisor[]) {
  let d = dpidsOf.get(hosts);
  if (!d) dpidsOf.set(hosts, (d = { all: hosts.map((h) => h.datapathId), without: new Map() }));
  return d;
}

/** one `[dpid]` per switch, for the switch of an owner with flows of its own (bounded: a region has fewer switches) */
const singles = new Map<bigint, readonly bigint[]>();

function only(dpid: bigint): readonly bigint[] {
  let list = singles.get(dpid);
  if (!list) {
    if (singles.size >= 1 << 16) singles.clear();
    singles.set(dpid, (list = [dpid]));
  }
  return list;
}

/** one flow list on every hypervisor of `hosts` (shared, not copied), but for the switches of `overrides`, which get their own */
export function onHosts(hosts: readonly Hypervisor[], flows: readonly Flow[], overrides: readonly [bigint, readonly Flow[]][] = []): OwnerFlows {
  const d = hostDpids(hosts);
  if (overrides.length === 0) return d.all.length ? [{ dpids: d.all, flows }] : [];
  if (overrides.length === 1) {
    // a port's owner: its own hypervisor's list and everyone else's, the usual case by far
    const [own, list] = overrides[0]!;
    let rest = d.without.get(own);
    if (!rest) d.without.set(own, (rest = d.all.filter((dpid) => dpid !== own)));
    const mine: SwitchFlows = { dpids: only(own), flows: list };
    return rest.length ? [{ dpids: rest, flows }, mine] : [mine];
  }
  const dpids = d.all.filter((dpid) => !overrides.some(([own]) => own === dpid));
  const own = overrides.map(([dpid, list]): SwitchFlows => ({ dpids: only(dpid), flows: list }));
  return dpids.length ? [{ dpids, flows }, ...own] : own;
}

/** one commit action per zone (16 bits: the map is bounded), shared by the flows of its VPC */
const commits = new Map<number, Action>();

/** commit the connection in the VPC's conntrack zone; the packet goes on */
export function ctCommit(zone: number): Action {
  let commit = commits.get(zone);
  if (!commit) commits.set(zone, (commit = { type: 'ct', flags: NX_CT_F_COMMIT, zone, recircTable: NX_CT_RECIRC_NONE, alg: 0, actions: [] }));
  return commit;
}

/** send the packet through conntrack in `zone` and continue it, tracked, in table `tableId` */
export function ctTrack(zone: number, tableId: number): Action {
  return { type: 'ct', flags: 0, zone, recircTable: tableId, alg: 0, actions: [] };
}

/** an app's owners of one VPC */
export type VpcOwners = (pipeline: Pipeline, vpc: VpcView) => Iterable<OwnerDef>;

interface VpcGroups {
  readonly byVpc: WeakMap<VpcView, OwnerGroup>;
  /** the last view's groups */
  last?: { view: OverlayView; groups: readonly OwnerGroup[] };
}

const vpcGroupCache = new WeakMap<VpcOwners, WeakMap<Pipeline, VpcGroups>>();

/**
 * One owner group per VPC, its view the token. A group is made once per (app, pipeline, VPC view),
 * and the list of a view patched from the last one (viewPatch) is the last list patched likewise,
 * so a new view of a large model costs work only for the VPCs that changed.
 */
export function vpcGroups(pipeline: Pipeline, view: OverlayView, owners: VpcOwners): readonly OwnerGroup[] {
  let byPipeline = vpcGroupCache.get(owners);
  if (!byPipeline) vpcGroupCache.set(owners, (byPipeline = new WeakMap()));
  let cache = byPipeline.get(pipeline);
  if (!cache) byPipeline.set(pipeline, (cache = { byVpc: new WeakMap() }));
  const { byVpc, last } = cache;
  if (last?.view === view) return last.groups;
  const groupOf = (vpc: VpcView) => {
    let group = byVpc.get(vpc);
    if (!group) byVpc.set(vpc, (group = { key: `vpc:${vpc.vpc.name}`, token: vpc, owners: () => owners(pipeline, vpc) }));
    return group;
  };
  const patch = viewPatch(view);
  let groups: OwnerGroup[];
  if (patch && last?.view === patch.previous) {
    groups = last.groups.slice();
    for (const at of patch.at) groups[at] = groupOf(view.vpcs[at]!);
  } else groups = view.vpcs.map(groupOf);
  cache.last = { view, groups };
  return groups;
}
