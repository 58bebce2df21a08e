import type { AclRule, Hypervisor, LoadBalancer, NetworkModel, Subnet, VmPort, Vpc } from '../../model';
import { FLOOD_KEYS, PORT_KEYS, assignKeys, hasIpv4, portIpv6 } from '../../model';
import { ETH } from './registers';
import type { PortNumbers as Placement } from '../../sdk';

/**
 * The model as the overlay apps compile it: grouped by VPC, with tunnel keys and placement resolved.
 * Views are interned across versions: a view object is reused whenever nothing it holds changed, so
 * `===` on views is the incremental engine's cheap change test. Model objects compare by identity
 * only: a store hands on every unchanged object as the previous version's very object (internModel
 * in src/model/intern.ts), so a YAML reload with one new port leaves every other view identical.
 */

export interface PortView {
  readonly port: VmPort;
  readonly vni: number;
  /** egress key within the VPC */
  readonly key: number;
  readonly subnetKey: number;
  /** its subnet's router MAC */
  readonly routerMac: string;
  /** its IPv6 address, given or by SLAAC (portIpv6); undefined on an IPv4-only subnet */
  readonly ipv6: string | undefined;
  readonly host: Hypervisor;
  /** the port's OpenFlow port on its hypervisor; undefined until the interface exists */
  readonly ofport: number | undefined;
}

export interface SubnetView {
  readonly subnet: Subnet;
  readonly vni: number;
  /** the subnet's key: source/destination tier in registers, flood domain in tunnel keys */
  readonly key: number;
  readonly ports: readonly PortView[];
  /** hypervisors with a port in the subnet, by name */
  readonly hosts: readonly Hypervisor[];
}

export interface VpcView {
  readonly vpc: Vpc;
  readonly subnets: readonly SubnetView[];
  readonly ports: readonly PortView[];
  /** hypervisors with a port in the VPC, by name: every one of them needs the VPC's shared flows */
  readonly hosts: readonly Hypervisor[];
  /** in evaluation order */
  readonly acls: readonly AclRule[];
  /** in model order */
  readonly loadBalancers: readonly LoadBalancer[];
  readonly portByName: ReadonlyMap<string, PortView>;
  readonly subnetByName: ReadonlyMap<string, SubnetView>;
}

export interface OverlayView {
  readonly model: NetworkModel;
  readonly placement: Placement;
  readonly hypervisors: readonly Hypervisor[];
  readonly hypervisorByName: ReadonlyMap<string, Hypervisor>;
  readonly vpcs: readonly VpcView[];
  readonly vpcByName: ReadonlyMap<string, VpcView>;
}

type IpEthType = typeof ETH.ip | typeof ETH.ipv6;

/** the IP versions a subnet carries, as ethertypes: IPv4 with a CIDR, IPv6 with a prefix */
export function subnetFamilies(subnet: Subnet): IpEthType[] {
  return [...(hasIpv4(subnet) ? [ETH.ip] : []), ...(subnet.ipv6 ? [ETH.ipv6] : [])];
}

/** the IP versions a port has an address of, as ethertypes */
export function portFamilies(p: PortView): IpEthType[] {
  return [...(p.port.ip === undefined ? [] : [ETH.ip]), ...(p.ipv6 === undefined ? [] : [ETH.ipv6])];
}

/** the model objects a VPC view was built from */
interface VpcInputs {
  vpc: Vpc;
  subnets: Subnet[];
  ports: VmPort[];
  acls: AclRule[];
  loadBalancers: LoadBalancer[];
}

/** the model lists a view was built from, and their objects by VPC */
interface Inputs {
  readonly vpcs: readonly Vpc[];
  readonly subnets: readonly Subnet[];
  readonly ports: readonly VmPort[];
  readonly acls: readonly AclRule[];
  readonly loadBalancers: readonly LoadBalancer[];
  readonly byVpc: ReadonlyMap<string, VpcInputs>;
  /** against the previous version: VPCs with an object added, removed or changed */
  readonly dirty?: ReadonlySet<string>;
  /** against the previous version: the same VPCs in the same order */
  readonly sameVpcs?: boolean;
}

/** kept beside each view so the next version can skip VPCs whose model objects are unchanged */
const inputsOf = new WeakMap<OverlayView, Inputs>();

export function buildOverlayView(model: NetworkModel, placement: Placement, previous?: OverlayView): OverlayView {
  if (previous && previous.model === model && previous.placement === placement) return previous;
  const { hypervisors, hypervisorByName } =
    previous && previous.model.hypervisors === model.hypervisors ? previous : internHypervisors(model.hypervisors, previous);
  const previousInputs = previous && inputsOf.get(previous);
  const inputs = groupByVpc(model, previousInputs);
  const moved = previous ? movedHosts(hypervisors, hypervisorByName, placement, previous) : undefined;
  let vpcs: readonly VpcView[];
  let vpcByName: ReadonlyMap<string, VpcView>;
  let hostsKept = false;
  let patchedAt: number[] | undefined;
  if (previous && inputs.dirty && inputs.sameVpcs) {
    // the same VPCs in the same order: patch the previous list where a VPC's inputs or hosts changed
    const touched = new Set(inputs.dirty);
    if (moved!.size) {
      const byHost = vpcsByHost(previous);
      for (const host of moved!) for (const name of byHost.get(host) ?? []) touched.add(name);
    }
    const patched = previous.vpcs.slice();
    let byName: Map<string, VpcView> | undefined;
    hostsKept = true;
    patchedAt = [];
    for (const name of touched) {
      // a name no VPC has (an object naming a missing VPC) belongs to no view
      const before = previous.vpcByName.get(name);
      if (!before) continue;
      const after = buildVpc(inputs.byVpc.get(name)!, hypervisorByName, placement, before);
      if (after === before) continue;
      const at = patched.indexOf(before);
      patched[at] = after;
      patchedAt.push(at);
      (byName ??= new Map(previous.vpcByName)).set(name, after);
      hostsKept &&= after.hosts === before.hosts;
    }
    vpcs = byName ? patched : previous.vpcs;
    vpcByName = byName ?? previous.vpcByName;
  } else {
    const built: VpcView[] = [];
    for (const [name, input] of inputs.byVpc) {
      const before = previous?.vpcByName.get(name);
      const unchanged = before && input === previousInputs?.byVpc.get(name) && (moved!.size === 0 || !before.hosts.some((h) => moved!.has(h.name)));
      built.push(unchanged ? before : buildVpc(input, hypervisorByName, placement, before));
    }
    vpcs = built;
    vpcByName = new Map(built.map((v) => [v.vpc.name, v]));
  }
  const view: OverlayView = { model, placement, hypervisors, hypervisorByName, vpcs, vpcByName };
  inputsOf.set(view, inputs);
  // only the newest view keeps its patch: a patch holds the view before it, and a chain of them
  // would keep every model version since the start alive (a 3,000-hypervisor region: 0.5 MB a change)
  if (previous) patches.delete(previous);
  if (patchedAt) patches.set(view, { previous: previous!, at: patchedAt });
  const byHost = hostsKept && vpcsByHostOf.get(previous!);
  if (byHost) vpcsByHostOf.set(view, byHost);
  return view;
}

/** A view made from `previous` by replacing the VPC views at positions `at` (the rest are the very same). */
export interface ViewPatch {
  readonly previous: OverlayView;
  readonly at: readonly number[];
}

const patches = new WeakMap<OverlayView, ViewPatch>();

/** how `view` differs from the view it was patched from, if it was: per-VPC consumers can patch too */
export function viewPatch(view: OverlayView): ViewPatch | undefined {
  return patches.get(view);
}

/** hypervisor name → the VPCs with a port on it, kept beside each view while no VPC's hosts change */
const vpcsByHostOf = new WeakMap<OverlayView, ReadonlyMap<string, readonly string[]>>();

function vpcsByHost(view: OverlayView): ReadonlyMap<string, readonly string[]> {
  let byHost = vpcsByHostOf.get(view);
  if (byHost) return byHost;
  const index = new Map<string, string[]>();
  for (const vpc of view.vpcs) {
    for (const h of vpc.hosts) {
      const names = index.get(h.name);
      if (names) names.push(vpc.vpc.name);
      else index.set(h.name, [vpc.vpc.name]);
    }
  }
  vpcsByHostOf.set(view, (byHost = index));
  return byHost;
}

function internHypervisors(fresh: readonly Hypervisor[], previous: OverlayView | undefined) {
  const hypervisorByName = new Map(fresh.map((h) => [h.name, h]));
  const hypervisors = interned([...hypervisorByName.values()], previous?.hypervisors);
  // a list of the very same hypervisors keeps the previous map: nothing downstream looks again
  return previous && hypervisors === previous.hypervisors ? previous : { hypervisors, hypervisorByName };
}

/** names of the hypervisors that are new, changed or whose port placement changed since `previous` */
function movedHosts(hypervisors: readonly Hypervisor[], byName: ReadonlyMap<string, Hypervisor>, placement: Placement, previous: OverlayView): Set<string> {
  const moved = new Set<string>();
  const sameHypervisors = byName === previous.hypervisorByName;
  if (!sameHypervisors) {
    for (const h of hypervisors) if (previous.hypervisorByName.get(h.name) !== h) moved.add(h.name);
    for (const h of previous.hypervisors) if (!byName.has(h.name)) moved.add(h.name);
  }
  if (placement === previous.placement) return moved;
  const byDpid = hypervisorsByDpid(hypervisors);
  for (const dpid of changedSwitches(placement, previous.placement)) {
    const h = byDpid.get(dpid);
    if (h) moved.add(h.name);
  }
  return moved;
}

/**
 * Switches whose placement map is not the previous one. Maps are replaced per switch in a copy of
 * the whole (src/runtime/placement.ts), which keeps the order: walk both in step, no lookups.
 */
function changedSwitches(now: Placement, before: Placement): bigint[] {
  const changed: bigint[] = [];
  if (now.size === before.size) {
    // keys and values apart: an entries() walk makes a [key, value] pair per switch per change
    const oldKeys = before.keys();
    const oldValues = before.values();
    const values = now.values();
    let inStep = true;
    for (const dpid of now.keys()) {
      const ports = values.next().value;
      if (oldKeys.next().value !== dpid) {
        inStep = false;
        break;
      }
      if (oldValues.next().value !== ports) changed.push(dpid);
    }
    if (inStep) return changed;
    changed.length = 0;
  }
  for (const [dpid, ports] of now) if (before.get(dpid) !== ports) changed.push(dpid);
  for (const dpid of before.keys()) if (!now.has(dpid)) changed.push(dpid);
  return changed;
}

const byDpidCache = new WeakMap<readonly Hypervisor[], ReadonlyMap<bigint, Hypervisor>>();

function hypervisorsByDpid(hypervisors: readonly Hypervisor[]): ReadonlyMap<bigint, Hypervisor> {
  let byDpid = byDpidCache.get(hypervisors);
  if (!byDpid) byDpidCache.set(hypervisors, (byDpid = new Map(hypervisors.map((h) => [h.datapathId, h]))));
  return byDpid;
}

/**
 * The model's objects by VPC. Lists are compared with the previous version's by their common head
 * and tail (the very same objects): only VPCs with an
 * object in between are regrouped, every other VPC keeps its previous inputs. A regrouped VPC's
 * lists are the previous ones with the changed part spliced in where that is certain (an append,
 * an edit or removal of objects they hold), so a one-port edit costs a walk of the lists, no copy.
 */
function groupByVpc(model: NetworkModel, previous: Inputs | undefined): Inputs {
  const lists = { vpcs: model.vpcs, subnets: model.subnets, ports: model.ports, acls: model.acls, loadBalancers: model.loadBalancers };
  if (!previous) return { ...lists, byVpc: groupAll(model, undefined) };
  const dirty = new Set<string>();
  const vpcs = changedBetween(model.vpcs, previous.vpcs, (v) => v.name, dirty);
  const subnets = changedBetween(model.subnets, previous.subnets, (s) => s.vpc, dirty);
  const ports = changedBetween(model.ports, previous.ports, (p) => p.vpc, dirty);
  const acls = changedBetween(model.acls, previous.acls, (a) => a.vpc, dirty);
  const loadBalancers = changedBetween(model.loadBalancers, previous.loadBalancers, (lb) => lb.vpc, dirty);
  const sameVpcs = vpcs === undefined;
  if (dirty.size === 0) return { ...lists, byVpc: previous.byVpc, dirty, sameVpcs };
  const spliced = sameVpcs ? spliceDirty(previous.byVpc, dirty, { subnets, ports, acls, loadBalancers }) : undefined;
  return { ...lists, byVpc: spliced ?? groupAll(model, dirty, previous.byVpc), dirty, sameVpcs };
}

/** what changed in one model list: its objects outside the common head and tail, by VPC */
interface ListChange<T> {
  /** no object of the previous list before this index changed */
  readonly head: number;
  /** the previous list's changed part reached its end: everything was appended after the head */
  readonly atEnd: boolean;
  readonly added: ReadonlyMap<string, T[]>;
  readonly removed: ReadonlyMap<string, T[]>;
}

/**
 * The objects of either list outside their common head and tail, by VPC (all of them in `dirty`);
 * undefined when there are none. Objects compare by identity (a store interns a re-read model's).
 */
function changedBetween<T extends object>(now: readonly T[], before: readonly T[], vpcOf: (item: T) => string, dirty: Set<string>): ListChange<T> | undefined {
  if (now === before) return undefined;
  const shorter = Math.min(now.length, before.length);
  let head = 0;
  // the scan of a one-port edit walks every port of the model
  while (head < shorter && now[head] === before[head]) head++;
  let tail = 0;
  while (tail < shorter - head && now[now.length - 1 - tail] === before[before.length - 1 - tail]) tail++;
  if (head + tail === now.length && head + tail === before.length) return undefined;
  const byVpc = (list: readonly T[]) => {
    const out = new Map<string, T[]>();
    for (let i = head; i < list.length - tail; i++) {
      const vpc = vpcOf(list[i]!);
      dirty.add(vpc);
      const items = out.get(vpc);
      if (items) items.push(list[i]!);
      else out.set(vpc, [list[i]!]);
    }
    return out;
  };
  return { head, atEnd: tail === 0, added: byVpc(now), removed: byVpc(before) };
}

/** the dirty VPCs' inputs spliced from their previous ones, or undefined where that is not certain */
function spliceDirty(
  previous: ReadonlyMap<string, VpcInputs>,
  dirty: ReadonlySet<string>,
  change: { subnets?: ListChange<Subnet>; ports?: ListChange<VmPort>; acls?: ListChange<AclRule>; loadBalancers?: ListChange<LoadBalancer> },
): Map<string, VpcInputs> | undefined {
  const byVpc = new Map(previous);
  for (const name of dirty) {
    const old = previous.get(name);
    if (!old) return undefined;
    const subnets = splice(old.subnets, change.subnets, name);
    const ports = splice(old.ports, change.ports, name);
    const acls = splice(old.acls, change.acls, name);
    const loadBalancers = splice(old.loadBalancers, change.loadBalancers, name);
    if (!subnets || !ports || !acls || !loadBalancers) return undefined;
    byVpc.set(name, { vpc: old.vpc, subnets, ports, acls, loadBalancers });
  }
  return byVpc;
}

/**
 * A VPC's list after `change`: its removed objects (found in `old` by identity, in a row) replaced
 * by its added ones, or the added ones after all of `old` when nothing of it was removed and the
 * change is an append. Undefined when the place is not certain.
 */
function splice<T>(old: T[], change: ListChange<T> | undefined, vpc: string): T[] | undefined {
  const added = change?.added.get(vpc) ?? [];
  const removed = change?.removed.get(vpc) ?? [];
  if (added.length === 0 && removed.length === 0) return old;
  if (removed.length === 0) return change!.atEnd ? old.concat(added) : change!.head === 0 ? added.concat(old) : undefined;
  const at = old.indexOf(removed[0]!);
  if (at < 0 || removed.some((item, i) => old[at + i] !== item)) return undefined;
  return [...old.slice(0, at), ...added, ...old.slice(at + removed.length)];
}

/** VPC inputs grouped from the model: every VPC, or only the `dirty` ones with the rest from `previous` */
function groupAll(model: NetworkModel, dirty: ReadonlySet<string> | undefined, previous?: ReadonlyMap<string, VpcInputs>): Map<string, VpcInputs> {
  const byVpc = new Map<string, VpcInputs>();
  const fresh = new Map<string, VpcInputs>();
  for (const v of model.vpcs) {
    const kept = dirty && !dirty.has(v.name) ? previous!.get(v.name) : undefined;
    if (kept) byVpc.set(v.name, kept);
    else {
      const input: VpcInputs = { vpc: v, subnets: [], ports: [], acls: [], loadBalancers: [] };
      byVpc.set(v.name, input);
      fresh.set(v.name, input);
    }
  }
  // lists are usually grouped by VPC: remember the last VPC's inputs instead of a lookup per item
  let last: string | undefined;
  let input: VpcInputs | undefined;
  const inputOf = (vpc: string) => (vpc === last ? input : (input = fresh.get((last = vpc))));
  for (const s of model.subnets) inputOf(s.vpc)?.subnets.push(s);
  for (const p of model.ports) inputOf(p.vpc)?.ports.push(p);
  for (const a of model.acls) inputOf(a.vpc)?.acls.push(a);
  for (const lb of model.loadBalancers) inputOf(lb.vpc)?.loadBalancers.push(lb);
  return byVpc;
}

function buildVpc(input: VpcInputs, hypervisors: ReadonlyMap<string, Hypervisor>, placement: Placement, before?: VpcView): VpcView {
  const vpc = input.vpc;
  const vni = vpc.vni;
  const subnetKeys = assignKeys(input.subnets, FLOOD_KEYS);
  const portKeys = assignKeys(input.ports, PORT_KEYS);
  const rawSubnets = new Map(input.subnets.map((s) => [s.name, s]));

  const portsBySubnet = new Map<string, PortView[]>(input.subnets.map((s) => [s.name, []]));
  const ports = input.ports.map((port) => {
    const old = before?.portByName.get(port.name);
    const host = hypervisors.get(port.hypervisor)!;
    const fresh: PortView = {
      port,
      vni,
      key: portKeys.get(port.name)!,
      subnetKey: subnetKeys.get(port.subnet)!,
      routerMac: rawSubnets.get(port.subnet)!.routerMac,
      ipv6: portIpv6(port, rawSubnets.get(port.subnet)!),
      host,
      ofport: placement.get(host.datapathId)?.get(port.interface) ?? port.ofport,
    };
    const view = old && sameFields(old, fresh) ? old : fresh;
    portsBySubnet.get(port.subnet)!.push(view);
    return view;
  });

  const subnets = input.subnets.map((subnet) => {
    const old = before?.subnetByName.get(subnet.name);
    const members = interned(portsBySubnet.get(subnet.name)!, old?.ports);
    const fresh: SubnetView = {
      subnet,
      vni,
      key: subnetKeys.get(subnet.name)!,
      ports: members,
      hosts: interned(hostsOf(members), old?.hosts),
    };
    return old && sameFields(old, fresh) ? old : fresh;
  });

  const acls = interned(input.acls, before?.acls);
  const loadBalancers = interned(input.loadBalancers, before?.loadBalancers);
  const allPorts = interned(ports, before?.ports);
  const allSubnets = interned(subnets, before?.subnets);
  const hosts = interned(hostsOf(allPorts), before?.hosts);
  if (before && before.vpc === vpc && before.ports === allPorts && before.subnets === allSubnets && before.hosts === hosts && before.acls === acls && before.loadBalancers === loadBalancers) {
    return before;
  }
  return {
    vpc,
    subnets: allSubnets,
    ports: allPorts,
    hosts,
    acls,
    loadBalancers,
    portByName: new Map(allPorts.map((p) => [p.port.name, p])),
    subnetByName: new Map(allSubnets.map((s) => [s.subnet.name, s])),
  };
}

function hostsOf(ports: readonly PortView[]): Hypervisor[] {
  return [...new Set(ports.map((p) => p.host))].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function sameElements<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** the old array when it holds the very same elements, so unchanged lists keep their identity */
function interned<T>(fresh: T[], old: readonly T[] | undefined): readonly T[] {
  return old && sameElements(fresh, old) ? old : fresh;
}

/** Every field the very same (===): a field added to a view type is compared without a change here. */
function sameFields<T extends object>(a: T, b: T): boolean {
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  for (const k in x) if (x[k] !== y[k]) return false;
  for (const k in y) if (!(k in x) && y[k] !== undefined) return false;
  return true;
}
