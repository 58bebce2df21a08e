import type { AclRule, Hypervisor, NetworkModel, Subnet, VmPort, Vpc } from '../../model';
import { FLOOD_KEYS, PORT_KEYS, assignKeys, portIpv6, sameData } from '../../model';
import type { PortNumbers as Placement } from '../../sdk';

/**
 * The model as the overlay apps compile it: grouped by VPC, with tunnel keys and placement resolved.
 * Views are interned across versions: a view object is reused whenever nothing it holds changed, so
 * `===` on views is the incremental engine's cheap change test (a YAML reload with one new port
 * leaves every other view identical).
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

/** the model objects a VPC view was built from */
interface VpcInputs {
  vpc: Vpc;
  subnets: Subnet[];
  ports: VmPort[];
  acls: AclRule[];
}

/** kept beside each view so the next version can skip VPCs whose model objects are the very same */
const inputsOf = new WeakMap<OverlayView, ReadonlyMap<string, VpcInputs>>();

export function buildOverlayView(model: NetworkModel, placement: Placement, previous?: OverlayView): OverlayView {
  if (previous && previous.model === model && previous.placement === placement) return previous;
  const { hypervisors, hypervisorByName } =
    previous && previous.model.hypervisors === model.hypervisors ? previous : internHypervisors(model.hypervisors, previous);
  const previousInputs = previous && inputsOf.get(previous);
  const inputs = groupByVpc(model, previousInputs);
  const vpcs: VpcView[] = [];
  for (const [name, input] of inputs) {
    const before = previous?.vpcByName.get(name);
    const unchanged = before && input === previousInputs?.get(name) && hostsUnchanged(before, hypervisorByName, placement, previous!);
    vpcs.push(unchanged ? before : buildVpc(input, hypervisorByName, placement, before));
  }
  const vpcByName = new Map(vpcs.map((v) => [v.vpc.name, v]));
  const view: OverlayView = { model, placement, hypervisors, hypervisorByName, vpcs, vpcByName };
  inputsOf.set(view, inputs);
  return view;
}

function internHypervisors(fresh: readonly Hypervisor[], previous: OverlayView | undefined) {
  const hypervisorByName = new Map<string, Hypervisor>();
  for (const h of fresh) {
    const old = previous?.hypervisorByName.get(h.name);
    hypervisorByName.set(h.name, old && sameData(old, h) ? old : h);
  }
  return { hypervisors: interned([...hypervisorByName.values()], previous?.hypervisors), hypervisorByName };
}

interface Walk {
  before: VpcInputs | undefined;
  /** still the very same objects, in the same order, as `before` */
  same: boolean;
  subnets: number;
  ports: number;
  acls: number;
  fresh?: VpcInputs;
}

/**
 * The model's objects by VPC. A VPC whose objects are all the very same as last time keeps its
 * previous inputs: an unchanged VPC costs a comparison, not a copy.
 */
function groupByVpc(model: NetworkModel, previous: ReadonlyMap<string, VpcInputs> | undefined): Map<string, VpcInputs> {
  const walks = new Map<string, Walk>();
  for (const vpc of model.vpcs) {
    const before = previous?.get(vpc.name);
    walks.set(vpc.name, { before, same: before?.vpc === vpc, subnets: 0, ports: 0, acls: 0 });
  }
  // lists are usually grouped by VPC: remember the last VPC's walk instead of a lookup per item
  let walk: Walk | undefined;
  let vpc: string | undefined;
  const walkOf = (name: string) => (name === vpc ? walk! : (walk = walks.get((vpc = name))!));
  for (const s of model.subnets) {
    const w = walkOf(s.vpc);
    if (w.same && w.before!.subnets[w.subnets] !== s) w.same = false;
    w.subnets++;
  }
  for (const p of model.ports) {
    const w = walkOf(p.vpc);
    if (w.same && w.before!.ports[w.ports] !== p) w.same = false;
    w.ports++;
  }
  for (const a of model.acls) {
    const w = walkOf(a.vpc);
    if (w.same && w.before!.acls[w.acls] !== a) w.same = false;
    w.acls++;
  }
  const byVpc = new Map<string, VpcInputs>();
  let changed = false;
  for (const v of model.vpcs) {
    const w = walks.get(v.name)!;
    const b = w.before;
    if (w.same && b!.subnets.length === w.subnets && b!.ports.length === w.ports && b!.acls.length === w.acls) {
      byVpc.set(v.name, b!);
    } else {
      byVpc.set(v.name, (w.fresh = { vpc: v, subnets: [], ports: [], acls: [] }));
      changed = true;
    }
  }
  if (changed) {
    for (const s of model.subnets) walkOf(s.vpc).fresh?.subnets.push(s);
    for (const p of model.ports) walkOf(p.vpc).fresh?.ports.push(p);
    for (const a of model.acls) walkOf(a.vpc).fresh?.acls.push(a);
  }
  return byVpc;
}

/** the VPC's hypervisors and their port placement are as `previous` had them (checked only where either changed) */
function hostsUnchanged(before: VpcView, hypervisors: ReadonlyMap<string, Hypervisor>, placement: Placement, previous: OverlayView): boolean {
  const sameHypervisors = hypervisors === previous.hypervisorByName;
  const samePlacement = placement === previous.placement;
  return (
    (sameHypervisors && samePlacement) ||
    before.hosts.every((h) => (sameHypervisors || hypervisors.get(h.name) === h) && (samePlacement || placement.get(h.datapathId) === previous.placement.get(h.datapathId)))
  );
}

function buildVpc(input: VpcInputs, hypervisors: ReadonlyMap<string, Hypervisor>, placement: Placement, before?: VpcView): VpcView {
  const vpc = before && sameData(before.vpc, input.vpc) ? before.vpc : input.vpc;
  const vni = vpc.vni;
  const subnetKeys = assignKeys(input.subnets, FLOOD_KEYS);
  const portKeys = assignKeys(input.ports, PORT_KEYS);
  const rawSubnets = new Map(input.subnets.map((s) => [s.name, s]));

  const portsBySubnet = new Map<string, PortView[]>(input.subnets.map((s) => [s.name, []]));
  const ports = input.ports.map((raw) => {
    const old = before?.portByName.get(raw.name);
    const port = old && sameData(old.port, raw) ? old.port : raw;
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
      subnet: old && sameData(old.subnet, subnet) ? old.subnet : subnet,
      vni,
      key: subnetKeys.get(subnet.name)!,
      ports: members,
      hosts: interned(hostsOf(members), old?.hosts),
    };
    return old && sameFields(old, fresh) ? old : fresh;
  });

  const acls = interned(
    input.acls.map((a, i) => {
      const old = before?.acls[i];
      return old && sameData(old, a) ? old : a;
    }),
    before?.acls,
  );
  const allPorts = interned(ports, before?.ports);
  const allSubnets = interned(subnets, before?.subnets);
  const hosts = interned(hostsOf(allPorts), before?.hosts);
  if (before && before.vpc === vpc && before.ports === allPorts && before.subnets === allSubnets && before.hosts === hosts && before.acls === acls) {
    return before;
  }
  return {
    vpc,
    subnets: allSubnets,
    ports: allPorts,
    hosts,
    acls,
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
