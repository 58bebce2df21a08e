/**
 * The overlay model the benchmarks generate (bench/compile.ts, bench/api-latency.ts): H hypervisors
 * in 10 zones, 10 ports each; H/4 VPCs of 40 ports, each spread over 8 hypervisors (5 ports on each,
 * so every hypervisor serves 2 VPCs); 3 tiers per VPC with the same CIDRs in every VPC; 5 ACL rules
 * per VPC (one a port range). Each port's interface is named as the port.
 */
import type { AclRule, Hypervisor, NetworkModel, Subnet, VmPort } from '../src/model';
import { routerMac } from '../src/model';

export const ZONES = 10;
export const PORTS_PER_HV = 10;
export const HVS_PER_VPC = 8;
export const TIERS = ['web', 'app', 'db'] as const;

const hex2 = (n: number) => (n & 0xff).toString(16).padStart(2, '0');

export function generate(hvCount: number): { model: NetworkModel; placement: Map<bigint, Map<string, number>> } {
  if (hvCount % 4) throw new Error('sizes must be multiples of 4');
  const zones = Array.from({ length: ZONES }, (_, z) => ({ name: `zone${z}`, underlay: `172.${16 + z}.0.0/16` }));
  const hypervisors: Hypervisor[] = Array.from({ length: hvCount }, (_, h) => {
    const n = Math.floor(h / ZONES) + 1;
    return { name: `hv${h}`, zone: `zone${h % ZONES}`, tunnelIp: `172.${16 + (h % ZONES)}.${n >> 8}.${n & 0xff}`, datapathId: BigInt(h + 1), bridge: 'br-int' };
  });
  const vpcCount = hvCount / 4;
  const vpcs = Array.from({ length: vpcCount }, (_, v) => ({ name: `vpc${v}`, vni: v + 1 }));
  const subnets: Subnet[] = vpcs.flatMap((v) =>
    TIERS.map((tier, i) => ({ name: tier, vpc: v.name, cidr: `10.0.${i + 1}.0/24`, gateway: `10.0.${i + 1}.1`, routerMac: routerMac(v.name, tier) })),
  );
  const ports: VmPort[] = [];
  const placement = new Map<bigint, Map<string, number>>();
  const perHv = PORTS_PER_HV / 2;
  for (const v of vpcs) {
    for (let i = 0; i < HVS_PER_VPC * perHv; i++) {
      const hv = hypervisors[((v.vni - 1) * 4 + Math.floor(i / perHv)) % hvCount]!;
      const p = port(v.name, v.vni, i, hv);
      ports.push(p);
      plug(placement, hv, p);
    }
  }
  const rule = (name: string, subnet: string, from: string, protocol: AclRule['protocol'], ports?: AclRule['ports']): Omit<AclRule, 'vpc'> => ({
    name,
    subnet,
    direction: 'ingress',
    action: 'allow',
    protocol,
    ...(ports ? { ports } : {}),
    remote: { subnet: from },
  });
  const rules = [
    rule('web-app-http', 'app', 'web', 'tcp', { from: 8080, to: 8080 }),
    rule('web-app-ping', 'app', 'web', 'icmp'),
    rule('app-db-sql', 'db', 'app', 'tcp', { from: 5432, to: 5432 }),
    rule('app-db-ping', 'db', 'app', 'icmp'),
    rule('web-app-range', 'app', 'web', 'udp', { from: 8000, to: 8100 }),
  ];
  const acls: AclRule[] = vpcs.flatMap((v) => rules.map((r) => ({ ...r, name: `${v.name}-${r.name}`, vpc: v.name })));
  return { model: { zones, hypervisors, vpcs, subnets, ports, acls, externalNetworks: [], floatingIps: [], egress: [], loadBalancers: [] }, placement };
}

export function port(vpc: string, vni: number, i: number, hv: Hypervisor, name = `${vpc}-p${i}`): VmPort {
  const tier = i % 3;
  const host = Math.floor(i / 3) + 10;
  return { name, vpc, subnet: TIERS[tier]!, mac: `02:${hex2(vni >> 8)}:${hex2(vni)}:00:${hex2(tier + 1)}:${hex2(host)}`, ip: `10.0.${tier + 1}.${host}`, hypervisor: hv.name, interface: name };
}

export function plug(placement: Map<bigint, Map<string, number>>, hv: Hypervisor, p: VmPort): void {
  const ports = placement.get(hv.datapathId) ?? new Map<string, number>();
  ports.set(p.interface, ports.size + 1);
  placement.set(hv.datapathId, ports);
}

/** round trip through the model document format, to prove the generated model valid */
export function toDocument(m: NetworkModel): unknown {
  return {
    zones: m.zones,
    hypervisors: m.hypervisors.map((h) => ({ ...h, datapathId: `0x${h.datapathId.toString(16)}` })),
    vpcs: m.vpcs.map((v) => ({
      ...v,
      subnets: m.subnets.filter((s) => s.vpc === v.name).map(({ name, cidr, gateway }) => ({ name, cidr, gateway })),
      acls: m.acls.filter((a) => a.vpc === v.name).map(({ vpc: _v, ports, ...a }) => ({ ...a, ...(ports ? { ports: `${ports.from}-${ports.to}` } : {}) })),
    })),
    ports: m.ports,
  };
}

/** the health check of the generated load balancers: docs/load-balancers.md's recommended timings */
const LB_HEALTH = { type: 'tcp', intervalSeconds: 1, timeoutSeconds: 0.3, rise: 2, fall: 2 } as const;
/** backends of each VPC's load balancer (app-tier ports) and of the wide VPC's (spread over its hypervisors) */
export const LB_BACKENDS = 4;
export const WIDE_LB_BACKENDS = 8;
export const WIDE_VPC = 'wide';

/**
 * The generated model with load balancers (bench/scale.ts --lb): in every VPC one VIP in the web
 * tier in front of LB_BACKENDS app ports, whose groups are on the VPC's 8 hypervisors; and VPC
 * `wide` with one port on each of the first `wideHosts` hypervisors, whose VIP (in front of
 * WIDE_LB_BACKENDS of them, spread over the zones) has its group on every one of them. Each
 * hypervisor holds a flow or more per port of the wide VPC, so it costs `wideHosts` × ports flows.
 */
export function withLoadBalancers(model: NetworkModel, placement: Map<bigint, Map<string, number>>, wideHosts: number): NetworkModel {
  const lb = (vpc: string, subnet: string, vip: string, backends: readonly VmPort[]) => ({
    name: 'lb',
    vpc,
    subnet,
    vip,
    protocol: 'tcp' as const,
    ports: [80],
    backends: backends.map((p) => ({ port: p.name, targetPort: 8080, weight: 1 })),
    healthCheck: LB_HEALTH,
    zoneAffinity: false,
  });
  const appPorts = new Map<string, VmPort[]>();
  for (const p of model.ports) if (p.subnet === 'app') appPorts.set(p.vpc, [...(appPorts.get(p.vpc) ?? []), p]);
  const loadBalancers = model.vpcs.map((v) => lb(v.name, 'web', '10.0.1.250', appPorts.get(v.name)!.slice(0, LB_BACKENDS)));
  if (wideHosts === 0) return { ...model, loadBalancers };
  const vni = model.vpcs.length + 1;
  const subnet: Subnet = { name: 'web', vpc: WIDE_VPC, cidr: '10.1.0.0/20', gateway: '10.1.0.1', routerMac: routerMac(WIDE_VPC, 'web') };
  const ports = model.hypervisors.slice(0, wideHosts).map((hv, i): VmPort => {
    const host = i + 10;
    const p = { name: `${WIDE_VPC}-p${i}`, vpc: WIDE_VPC, subnet: 'web', mac: `02:${hex2(vni >> 8)}:${hex2(vni)}:00:${hex2(host >> 8)}:${hex2(host)}`, ip: `10.1.${host >> 8}.${host & 0xff}`, hypervisor: hv.name, interface: `${WIDE_VPC}-p${i}` };
    plug(placement, hv, p);
    return p;
  });
  const spread = Array.from({ length: WIDE_LB_BACKENDS }, (_, k) => ports[Math.floor((k * ports.length) / WIDE_LB_BACKENDS)]!);
  return {
    ...model,
    vpcs: [...model.vpcs, { name: WIDE_VPC, vni }],
    subnets: [...model.subnets, subnet],
    ports: [...model.ports, ...ports],
    loadBalancers: [...loadBalancers, lb(WIDE_VPC, 'web', '10.1.0.250', spread)],
  };
}
