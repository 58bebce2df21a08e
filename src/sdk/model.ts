import type { Observable } from 'rxjs';
import { cidrContains, parseCidr, parseIpv4, prefixMask } from '../model/addressing';
import { hasIpv4, type WithIpv4Subnet } from '../model/families';
import type { Hypervisor, NetworkModel, Subnet, VmPort } from '../model/types';
import type { ModelStore } from '../model/store';

/** 0x0a010100 → '10.1.1.0' */
function dottedQuad(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

/** the MTU a VM of the overlay gets (DHCP option 26, the RA's MTU option): a VM's 1500-byte frames would not fit a Geneve packet on a 1500-byte underlay */
export const OVERLAY_MTU = 1400;

/** A subnet with the numbers a DHCP or ARP answer needs, computed from its CIDR. */
export interface SubnetInfo {
  readonly subnet: Subnet;
  /** the router's MAC on this subnet */
  readonly routerMac: string;
  /** the IPv4 side; absent on an IPv6-only subnet */
  readonly ipv4?: Ipv4SubnetInfo;
}

export interface Ipv4SubnetInfo {
  /** '10.1.1.0' */
  readonly network: string;
  /** 24 */
  readonly prefix: number;
  /** '255.255.255.0' */
  readonly mask: string;
  /** '10.1.1.255' */
  readonly broadcast: string;
  /** the subnet's router address, answered by the overlay's router */
  readonly gateway: string;
  contains(ip: string): boolean;
}

/** The port a lookup found several of: narrow it with `where`. */
export class AmbiguousPortError extends Error {
  override readonly name = 'AmbiguousPortError';
  constructor(
    readonly mac: string,
    readonly ports: readonly string[],
  ) {
    super(`MAC ${mac} belongs to ports ${ports.join(', ')}; pass { vpc } or { hypervisor } to choose`);
  }
}

/** A model that names no such object: a lookup by a name the model does not have. */
export class ModelLookupError extends Error {
  override readonly name = 'ModelLookupError';
  constructor(
    message: string,
    /** where in the model: 'subnets[web]' */
    readonly path: string,
  ) {
    super(message);
  }
}

/** `ctx.model`: the network model the controller runs with, and lookups into it. */
export interface ModelAccess {
  /** the model now */
  current(): NetworkModel;
  /** the current model on subscription, then every accepted change (a refused edit emits nothing) */
  readonly changes$: Observable<NetworkModel>;
  /** a port by name */
  port(name: string): VmPort | undefined;
  /**
   * The port with this MAC (lower case, 'aa:bb:…'). MACs are unique within a VPC only: throws
   * AmbiguousPortError when several ports match, so pass the VPC or the hypervisor a packet came from.
   */
  portByMac(mac: string, where?: { readonly vpc?: string; readonly hypervisor?: string }): VmPort | undefined;
  /** a port's subnet, with its IPv4 mask and gateway when it has IPv4 */
  subnetOf(port: VmPort): SubnetInfo;
  subnet(vpc: string, name: string): SubnetInfo | undefined;
  hypervisor(name: string): Hypervisor | undefined;
}

export function subnetInfo(subnet: Subnet): SubnetInfo {
  return { subnet, routerMac: subnet.routerMac, ...(hasIpv4(subnet) && { ipv4: ipv4SubnetInfo(subnet) }) };
}

function ipv4SubnetInfo(subnet: WithIpv4Subnet<Subnet>): Ipv4SubnetInfo {
  const cidr = parseCidr(subnet.cidr);
  // validated models only reach apps: a bad CIDR here is a bug in whoever built the model
  if (!cidr) throw new ModelLookupError(`subnet ${subnet.vpc}/${subnet.name}: '${subnet.cidr}' is not a CIDR`, `subnets[${subnet.name}].cidr`);
  const mask = prefixMask(cidr.prefix);
  return {
    network: dottedQuad(cidr.network),
    prefix: cidr.prefix,
    mask: dottedQuad(mask),
    broadcast: dottedQuad((cidr.network | ~mask) >>> 0),
    gateway: subnet.gateway,
    contains: (ip) => {
      const n = parseIpv4(ip);
      return n !== undefined && cidrContains(cidr, n);
    },
  };
}

/** What one model version's lookups need, built once per version. */
class ModelIndex {
  readonly ports = new Map<string, VmPort>();
  readonly portsByMac = new Map<string, VmPort[]>();
  readonly subnets = new Map<string, SubnetInfo>();
  readonly hypervisors = new Map<string, Hypervisor>();

  constructor(readonly model: NetworkModel) {
    for (const p of model.ports) {
      this.ports.set(p.name, p);
      const same = this.portsByMac.get(p.mac);
      if (same) same.push(p);
      else this.portsByMac.set(p.mac, [p]);
    }
    for (const s of model.subnets) this.subnets.set(`${s.vpc}/${s.name}`, subnetInfo(s));
    for (const h of model.hypervisors) this.hypervisors.set(h.name, h);
  }
}

/** ModelAccess over a model store. */
export class StoreModelAccess implements ModelAccess {
  private index: ModelIndex | undefined;
  readonly changes$: Observable<NetworkModel>;

  constructor(private readonly store: Pick<ModelStore, 'model$' | 'current'>) {
    this.changes$ = store.model$;
  }

  current(): NetworkModel {
    return this.store.current();
  }

  private indexed(): ModelIndex {
    const model = this.store.current();
    if (this.index?.model !== model) this.index = new ModelIndex(model);
    return this.index;
  }

  port(name: string): VmPort | undefined {
    return this.indexed().ports.get(name);
  }

  portByMac(mac: string, where: { readonly vpc?: string; readonly hypervisor?: string } = {}): VmPort | undefined {
    const found = (this.indexed().portsByMac.get(mac.toLowerCase()) ?? []).filter(
      (p) => (where.vpc === undefined || p.vpc === where.vpc) && (where.hypervisor === undefined || p.hypervisor === where.hypervisor),
    );
    if (found.length > 1) throw new AmbiguousPortError(mac, found.map((p) => p.name));
    return found[0];
  }

  subnetOf(port: VmPort): SubnetInfo {
    const info = this.subnet(port.vpc, port.subnet);
    if (!info) throw new ModelLookupError(`port ${port.name}: no subnet ${port.vpc}/${port.subnet} in the model`, `ports[${port.name}].subnet`);
    return info;
  }

  subnet(vpc: string, name: string): SubnetInfo | undefined {
    return this.indexed().subnets.get(`${vpc}/${name}`);
  }

  hypervisor(name: string): Hypervisor | undefined {
    return this.indexed().hypervisors.get(name);
  }
}
