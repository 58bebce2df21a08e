import type { AclRule, ExternalNetwork, FloatingIp, Hypervisor, LoadBalancer, NetworkModel, Subnet, VmPort, Vpc, VpcEgress, Zone } from './types';

/** A model document's parts, in the shape of models/*.yaml: what validateModel reads back. */
export interface ZoneDoc {
  name: string;
  underlay: string;
}
export interface HypervisorDoc {
  name: string;
  zone: string;
  tunnelIp: string;
  datapathId: string;
  bridge: string;
  ovsdb?: string;
}
export type SubnetDoc = Omit<Subnet, 'vpc' | 'routerMac'>;
export interface AclDoc {
  name: string;
  subnet: string;
  port?: string;
  direction: AclRule['direction'];
  action: AclRule['action'];
  protocol: AclRule['protocol'];
  ports?: number | string;
  remote?: AclRule['remote'];
}
export type EgressDoc = Omit<VpcEgress, 'vpc'>;
export interface VpcDoc {
  name: string;
  vni: number;
  subnets: SubnetDoc[];
  acls?: AclDoc[];
  egress?: EgressDoc;
  loadBalancers?: LoadBalancerDoc[];
}
export type LoadBalancerDoc = Omit<LoadBalancer, 'vpc'>;
export type PortDoc = VmPort;
export type ExternalNetworkDoc = ExternalNetwork;
/** the MAC is derived from the address */
export type FloatingIpDoc = Omit<FloatingIp, 'mac'>;
export interface ModelDocument {
  zones: ZoneDoc[];
  hypervisors: HypervisorDoc[];
  vpcs: VpcDoc[];
  ports: PortDoc[];
  externalNetworks?: ExternalNetworkDoc[];
  floatingIps?: FloatingIpDoc[];
}

export const zoneDoc = (z: Zone): ZoneDoc => ({ name: z.name, underlay: z.underlay });

export function hypervisorDoc(h: Hypervisor): HypervisorDoc {
  return {
    name: h.name,
    zone: h.zone,
    tunnelIp: h.tunnelIp,
    datapathId: `0x${h.datapathId.toString(16)}`,
    bridge: h.bridge,
    ...(h.ovsdb === undefined ? {} : { ovsdb: h.ovsdb }),
  };
}

export const vpcDoc = (v: Vpc): Pick<VpcDoc, 'name' | 'vni'> => ({ name: v.name, vni: v.vni });

/** routerMac is derived and the VPC is the subnet's parent: neither is written */
export const subnetDoc = ({ vpc: _vpc, routerMac: _routerMac, ...doc }: Subnet): SubnetDoc => doc;

export function aclDoc(a: AclRule): AclDoc {
  return {
    name: a.name,
    subnet: a.subnet,
    ...(a.port === undefined ? {} : { port: a.port }),
    direction: a.direction,
    action: a.action,
    protocol: a.protocol,
    ...(a.ports === undefined ? {} : { ports: a.ports.from === a.ports.to ? a.ports.from : `${a.ports.from}-${a.ports.to}` }),
    ...(a.remote === undefined ? {} : { remote: a.remote }),
  };
}

export const portDoc = (p: VmPort): PortDoc => ({ ...p });

export const floatingIpDoc = ({ mac: _mac, ...doc }: FloatingIp): FloatingIpDoc => doc;

/** the VPC is the load balancer's parent: not written */
export const loadBalancerDoc = ({ vpc: _vpc, ...doc }: LoadBalancer): LoadBalancerDoc => doc;

/**
 * The document of a valid model: validateModel(documentOf(m)) equals m. Defaults the file left out
 * (bridge, interface, ACL names) are written out; derived values (router MACs) are not.
 */
export function documentOf(model: NetworkModel): ModelDocument {
  return {
    zones: model.zones.map(zoneDoc),
    hypervisors: model.hypervisors.map(hypervisorDoc),
    vpcs: model.vpcs.map((v) => {
      const acls = model.acls.filter((a) => a.vpc === v.name).map(aclDoc);
      const egress = model.egress.find((e) => e.vpc === v.name);
      const loadBalancers = model.loadBalancers.filter((lb) => lb.vpc === v.name).map(loadBalancerDoc);
      return {
        ...vpcDoc(v),
        subnets: model.subnets.filter((s) => s.vpc === v.name).map(subnetDoc),
        ...(acls.length ? { acls } : {}),
        ...(egress ? { egress: { routes: egress.routes, snat: egress.snat } } : {}),
        ...(loadBalancers.length ? { loadBalancers } : {}),
      };
    }),
    ports: model.ports.map(portDoc),
    ...(model.externalNetworks.length ? { externalNetworks: [...model.externalNetworks] } : {}),
    ...(model.floatingIps.length ? { floatingIps: model.floatingIps.map(floatingIpDoc) } : {}),
  };
}
