/**
 * What the health checks need from the model and the switches, as data: one check target per
 * backend of a load balancer with a health check, and the flows that send a backend VM's answers to
 * the controller on its own hypervisor.
 *
 * A check is a TCP connection from the backend subnet's router (its gateway address and router MAC)
 * to the backend's port, sent as PACKET_OUTs straight into the VM's switch port. The VM answers its
 * gateway, an address it already resolves on-link, so no route and no extra address is needed in
 * the VM; the flow, in the `intercept` stage, takes those answers before spoofguard and the router.
 */
import { CHECK_PORT_BASE } from './checker';
import { EthType, IpProto, hasIpv4, portHasIpv4, toController, type AppContext, type Flow, type HealthCheck, type NetworkModel, type Placement, type TableSpec } from '../../sdk';

export const LB_HEALTH_APP_ID = 36;
export const CHECK_TABLE = 'lb-health.answers';
const PRIORITY = 100;

export const LB_HEALTH_TABLES: readonly TableSpec[] = [
  { name: CHECK_TABLE, stage: 'intercept', miss: 'next', matches: ['in_port', 'eth_src', 'eth_type', 'ipv4_src', 'ipv4_dst', 'ip_proto', 'tcp_src', 'tcp_dst'], maskable: ['tcp_dst'] },
];

/** One backend of one load balancer, where and how it is checked. */
export interface CheckTarget {
  /** 'vpc/load balancer/port' */
  readonly key: string;
  readonly vpc: string;
  readonly loadBalancer: string;
  /** the backend's VM port name */
  readonly port: string;
  readonly hypervisor: string;
  readonly dpid: bigint;
  /** the VM's switch port, undefined while it is not plugged in */
  readonly ofport: number | undefined;
  readonly vmMac: string;
  readonly vmIp: string;
  /** the port the backend serves on: its targetPort, or the VIP's first port */
  readonly tcpPort: number;
  /** the subnet's gateway and router MAC: where checks come from */
  readonly sourceIp: string;
  readonly sourceMac: string;
  readonly check: HealthCheck;
}

/** Every backend of every load balancer that has a health check, placed on its switch. */
export function checkTargets(model: NetworkModel, placement: Placement): CheckTarget[] {
  const ports = new Map(model.ports.map((p) => [p.name, p]));
  const subnets = new Map(model.subnets.map((s) => [`${s.vpc}/${s.name}`, s]));
  const hypervisors = new Map(model.hypervisors.map((h) => [h.name, h]));
  const targets: CheckTarget[] = [];
  for (const lb of model.loadBalancers) {
    if (!lb.healthCheck) continue;
    for (const backend of lb.backends) {
      const port = ports.get(backend.port);
      const subnet = port && subnets.get(`${port.vpc}/${port.subnet}`);
      const hv = port && hypervisors.get(port.hypervisor);
      // validation guarantees all three, and IPv4 (load balancers are IPv4 only); a model that lacks one has nothing to check here
      if (!port || !subnet || !hv || !portHasIpv4(port) || !hasIpv4(subnet)) continue;
      targets.push({
        key: `${lb.vpc}/${lb.name}/${port.name}`,
        vpc: lb.vpc,
        loadBalancer: lb.name,
        port: port.name,
        hypervisor: hv.name,
        dpid: hv.datapathId,
        ofport: placement.place(port)?.ofport,
        vmMac: port.mac,
        vmIp: port.ip,
        tcpPort: backend.targetPort ?? lb.ports[0]!,
        sourceIp: subnet.gateway,
        sourceMac: subnet.routerMac,
        check: lb.healthCheck,
      });
    }
  }
  return targets;
}

/**
 * Every switch's flows: for each plugged-in backend, its VM's TCP packets from its own port, MAC
 * and address, from the checked port to the gateway's check ports, go to the controller. Backends
 * sharing a VM and port share the flow.
 */
export function checkFlows(ctx: Pick<AppContext, 'flow'>, targets: readonly CheckTarget[]): Map<bigint, Flow[]> {
  const bySwitch = new Map<bigint, Map<string, Flow>>();
  for (const t of targets) {
    if (t.ofport === undefined) continue;
    let flows = bySwitch.get(t.dpid);
    if (!flows) bySwitch.set(t.dpid, (flows = new Map()));
    const match = {
      in_port: t.ofport,
      eth_src: t.vmMac,
      eth_type: EthType.IPV4,
      ipv4_src: t.vmIp,
      ipv4_dst: t.sourceIp,
      ip_proto: IpProto.TCP,
      tcp_src: t.tcpPort,
      tcp_dst: { value: CHECK_PORT_BASE, mask: CHECK_PORT_BASE },
    };
    const key = `${t.ofport}/${t.vmIp}/${t.tcpPort}/${t.sourceIp}`;
    if (!flows.has(key)) flows.set(key, ctx.flow(CHECK_TABLE, 'checks').priority(PRIORITY).match(match).apply(toController()).build());
  }
  return new Map([...bySwitch].map(([dpid, flows]) => [dpid, [...flows.values()]]));
}
