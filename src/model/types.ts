/** The network model: the desired state every app compiles into flows. Plain, immutable data. */

export interface Zone {
  name: string;
  /** the zone's underlay subnet, e.g. 172.16.1.0/24 */
  underlay: string;
}

export interface Hypervisor {
  name: string;
  zone: string;
  /** this hypervisor's tunnel endpoint on the underlay */
  tunnelIp: string;
  /** OpenFlow datapath id of its integration bridge */
  datapathId: bigint;
  /** integration bridge name (default br-int) */
  bridge: string;
  /** where this hypervisor's OVSDB listens ('unix:/run/zm/hv1/db.sock'), for provisioning its tunnel port */
  ovsdb?: string;
}

/**
 * How this deployment reaches a hypervisor, when the model does not say (the run config's
 * `hypervisors`): merged into the model's hypervisor of that name, over what the model has.
 */
export interface HypervisorAccess {
  ovsdb?: string;
}

export interface Subnet {
  name: string;
  vpc: string;
  /** the IPv4 side, 'A.B.C.D/N'; absent on an IPv6-only subnet (which has `ipv6`): test with hasIpv4 */
  cidr?: string;
  /** the router's IPv4 address in `cidr`, present with it */
  gateway?: string;
  /** derived from (vpc, subnet) names, so restarts and failovers never change it */
  routerMac: string;
  /** the subnet's key (its tier in registers, its flood domain in tunnels), when pinned; otherwise derived from the name */
  tunnelKey?: number;
  /** DNS servers handed out by DHCP */
  dns?: readonly string[];
  /** DNS domain handed out by DHCP */
  domain?: string;
  /** DHCP lease time in seconds (the dhcp-responder's default when absent) */
  leaseTime?: number;
  /** static routes handed out by DHCP (option 121); `via` is on the subnet */
  routes?: readonly SubnetRoute[];
  /** the subnet's IPv6 side, when it is dual-stack or IPv6-only; the router's address on it is linkLocalAddress(routerMac) */
  ipv6?: SubnetIpv6;
}

export interface SubnetIpv6 {
  /** 'ADDR/N' with no host bits; a /64 when slaac */
  prefix: string;
  /** the router advertises the prefix for autoconfiguration, and ports without an `ipv6` take EUI-64 from their MAC */
  slaac: boolean;
  /** DNS servers handed out by stateless DHCPv6 (with the subnet's `domain` as search list); the RA then sets O */
  dns?: readonly string[];
}

export interface SubnetRoute {
  /** 'A.B.C.D/N', no host bits */
  cidr: string;
  via: string;
}

export interface Vpc {
  name: string;
  /** the VPC's 24-bit key: the Geneve VNI of every packet it tunnels */
  vni: number;
}

export interface VmPort {
  name: string;
  vpc: string;
  subnet: string;
  mac: string;
  /** IPv4 address in its subnet's `cidr`; absent on an IPv6-only subnet: test with portHasIpv4 */
  ip?: string;
  hypervisor: string;
  /** OVS interface name on the hypervisor's integration bridge */
  interface: string;
  /** OpenFlow port number, when pinned with ofport_request */
  ofport?: number;
  /** the port's egress key in its VPC (PORT_KEYS of derived.ts), when pinned; otherwise derived from the name */
  tunnelKey?: number;
  /** IPv6 address in its subnet's prefix; absent on a SLAAC subnet means EUI-64 from the MAC (portIpv6) */
  ipv6?: string;
}

export type AclProtocol = 'any' | 'tcp' | 'udp' | 'icmp' | 'icmp6';

/** An ordered security rule. Within a VPC, list order is evaluation order (first match wins). */
export interface AclRule {
  name: string;
  vpc: string;
  /** the tier the rule protects (ingress) or constrains (egress) */
  subnet: string;
  /** optionally only this port of the tier */
  port?: string;
  direction: 'ingress' | 'egress';
  action: 'allow' | 'deny';
  protocol: AclProtocol;
  /** inclusive destination port range for tcp/udp */
  ports?: { from: number; to: number };
  /**
   * the other side: another tier of the VPC or a CIDR (IPv4 or IPv6, and the rule guards that
   * family only); absent: any address, of both families where the rule's tier is dual-stack
   */
  remote?: { subnet: string } | { cidr: string };
}

/** A gateway hypervisor's own address on its zone's external segment (its BGP session's source). */
export interface ExternalGateway {
  hypervisor: string;
  ip: string;
  /** the gateway's port on the segment, on its bridge (default: the network's name) */
  interface: string;
}

/** The outside as one zone sees it: an L2 segment its gateway hypervisors attach to (docs/north-south.md). */
export interface ExternalNetwork {
  name: string;
  zone: string;
  /** the segment's addresses: gateways, floating IPs and SNAT addresses are drawn from it */
  cidr: string;
  /** the edge router's address on the segment: every packet to the outside goes there */
  nextHop: string;
  /** the next hop's MAC, given statically (no ARP resolution yet): without it, gateways send nothing out */
  nextHopMac?: string;
  /** the zone's gateway hypervisors, sharing its load */
  gateways: readonly ExternalGateway[];
}

/** An external address translated 1:1 to a VM port's address; rebinding changes `port`. */
export interface FloatingIp {
  ip: string;
  /** the external network it is drawn from */
  network: string;
  /** the VM port it is bound to; unbound when absent */
  port?: string;
  /** derived from the address, so a rebinding's gratuitous ARP announces the same MAC from anywhere */
  mac: string;
}

/** A VPC's way out: what it routes to the outside, and the addresses it is translated to per zone. */
export interface VpcEgress {
  vpc: string;
  /** destinations routed to the outside (default 0.0.0.0/0); the VPC's own subnets always win */
  routes: readonly string[];
  /** the VPC's SNAT addresses, at most one per external network */
  snat: readonly SnatAddress[];
}

export interface SnatAddress {
  network: string;
  ip: string;
}

/**
 * A VIP of a VPC: each connection to one of `ports` on `vip` is meant to go to one backend, chosen by
 * weight, its destination rewritten to the backend's address and `targetPort`. Model only so far: no
 * app compiles it yet (docs/load-balancers.md).
 */
export interface LoadBalancer {
  name: string;
  vpc: string;
  /** the subnet the VIP is an address of */
  subnet: string;
  vip: string;
  protocol: 'tcp' | 'udp';
  /** the VIP's ports, each sent to the same port of the backend unless the backend says otherwise */
  ports: readonly number[];
  backends: readonly LoadBalancerBackend[];
  healthCheck?: HealthCheck;
  /** prefer backends in the client's zone while any of them is healthy */
  zoneAffinity: boolean;
  /** one client IP keeps its backend for this long after its last connection */
  sessionAffinity?: { timeoutSeconds: number };
}

export interface LoadBalancerBackend {
  /** a VM port of the load balancer's VPC */
  port: string;
  /** the backend's own port, when it differs from the VIP's */
  targetPort?: number;
  /** share of new connections relative to the other backends; 0 takes none (default 1) */
  weight: number;
}

export interface HealthCheck {
  type: 'tcp' | 'http';
  /** http: the path of the GET, and the status it must answer */
  path?: string;
  expectStatus?: number;
  /** between two checks of a backend; whole or fractional seconds, to the millisecond */
  intervalSeconds: number;
  /** a check unanswered this long fails (at most the interval); to the millisecond */
  timeoutSeconds: number;
  /** consecutive successes that bring a backend back, failures that take it out */
  rise: number;
  fall: number;
}

export interface NetworkModel {
  zones: readonly Zone[];
  hypervisors: readonly Hypervisor[];
  vpcs: readonly Vpc[];
  subnets: readonly Subnet[];
  ports: readonly VmPort[];
  acls: readonly AclRule[];
  externalNetworks: readonly ExternalNetwork[];
  floatingIps: readonly FloatingIp[];
  /** one per VPC that reaches the outside */
  egress: readonly VpcEgress[];
  loadBalancers: readonly LoadBalancer[];
}

export const EMPTY_MODEL: NetworkModel = { zones: [], hypervisors: [], vpcs: [], subnets: [], ports: [], acls: [], externalNetworks: [], floatingIps: [], egress: [], loadBalancers: [] };
