import { join } from 'node:path';
import { ACL_TABLES, compileAcl } from '../../src/apps/acl';
import { ARP_RESPONDER_TABLES, compileArpResponder } from '../../src/apps/arp-responder';
import { DISTRIBUTED_ROUTER_TABLES, compileDistributedRouter } from '../../src/apps/distributed-router';
import { NORTH_SOUTH_TABLES, compileNorthSouth } from '../../src/apps/north-south';
import { type OverlayView, type PortView, buildOverlayView } from '../../src/apps/overlay';
import type { PortNumbers as Placement } from '../../src/sdk';
import { TUNNEL_MESH_TABLES, compileTunnelMesh } from '../../src/apps/tunnel-mesh';
import { type NetworkModel, TUNNEL_OFPORT, type VmPort, floatingIpDoc, loadBalancerDoc, loadModelFile, validateModel } from '../../src/model';
import { type FlowMod, OFPP, OFPTT_ALL, formatInstructions, formatMatch } from '../../src/openflow';
import { type Flow, tableMissFlows } from '../../src/sdk/flow';
import type { OwnerFlows } from '../../src/sdk/incremental';
import { Pipeline } from '../../src/sdk/pipeline';
import type { SimPacket } from '../../src/sdk/sim';
import { Tracer } from '../../src/cli/tracer';
import { REPO_ROOT } from '../helpers/paths';

/** the overlay's four apps (docs/pipeline.md numbers their tables) */
export const PIPELINE = new Pipeline([...TUNNEL_MESH_TABLES, ...ARP_RESPONDER_TABLES, ...DISTRIBUTED_ROUTER_TABLES, ...ACL_TABLES]);
/** the overlay with north-south: its tables come before classify and before l3 */
export const NORTH_SOUTH_PIPELINE = new Pipeline([...PIPELINE.tables, ...NORTH_SOUTH_TABLES]);

export const COMPILERS = {
  'tunnel-mesh': compileTunnelMesh,
  'arp-responder': compileArpResponder,
  'distributed-router': compileDistributedRouter,
  acl: compileAcl,
} as const;

type Compilers = Record<string, (pipeline: Pipeline, view: OverlayView) => ReadonlyMap<string, OwnerFlows>>;

export const NORTH_SOUTH_COMPILERS: Compilers = {
  ...COMPILERS,
  'north-south': (pipeline, view) => compileNorthSouth(pipeline, view.model, placesIn(view)),
};

/** the ports' and the gateways' places in a view's placement, as `ctx.placement` gives them */
export function placesIn(view: OverlayView) {
  return { place: placeIn(view), ofport: (dpid: bigint, name: string) => view.placement.get(dpid)?.get(name) };
}

/** a port's place in a view's placement, as `ctx.placement.place` gives it */
export function placeIn(view: OverlayView) {
  return (port: VmPort) => {
    const hypervisor = view.hypervisorByName.get(port.hypervisor);
    const ofport = hypervisor && view.placement.get(hypervisor.datapathId)?.get(port.interface);
    return ofport === undefined ? undefined : { port, hypervisor: hypervisor!, dpid: hypervisor!.datapathId, ofport };
  };
}

export function twoZones(): NetworkModel {
  return loadModelFile(join(REPO_ROOT, 'models', 'two-zones.yaml'));
}

export function northSouth(): NetworkModel {
  return loadModelFile(join(REPO_ROOT, 'models', 'north-south.yaml'));
}

/** models/north-south.yaml plus hv5, a zone-a hypervisor that is no gateway: its traffic out goes to the zone's gateways group */
export function northSouthWithHv5(): NetworkModel {
  return edit(northSouth(), (d) => d.hypervisors.push({ name: 'hv5', zone: 'zone-a', tunnelIp: '172.16.1.15', datapathId: '0x15' }));
}

/** every port of the model present, numbered 1, 2, … per hypervisor in model order, then the gateways' segment ports */
export function placeAll(model: NetworkModel): Placement {
  const byHv = new Map<bigint, Map<string, number>>();
  const plug = (hypervisor: string, name: string) => {
    const dpid = model.hypervisors.find((h) => h.name === hypervisor)!.datapathId;
    const ports = byHv.get(dpid) ?? new Map<string, number>();
    ports.set(name, ports.size + 1);
    byHv.set(dpid, ports);
  };
  for (const p of model.ports) plug(p.hypervisor, p.interface);
  for (const g of model.externalNetworks.flatMap((e) => e.gateways)) plug(g.hypervisor, g.interface);
  return byHv;
}

export function viewOf(model: NetworkModel, placement = placeAll(model), previous?: OverlayView): OverlayView {
  return buildOverlayView(model, placement, previous);
}

/** The model without IPv6: no subnet prefix, and no rule that names IPv6 (icmp6 or an IPv6 CIDR). */
export function ipv4Only(model: NetworkModel): NetworkModel {
  return edit(model, (doc) => {
    for (const vpc of doc.vpcs) {
      for (const s of vpc.subnets) delete s.ipv6;
      vpc.acls = vpc.acls.filter((a: any) => a.protocol !== 'icmp6' && !a.remote?.cidr?.includes(':'));
    }
    for (const p of doc.ports) delete p.ipv6;
  });
}

/**
 * The two-zone demo with three ingress rules of db first: tcp 9000 from anywhere (no remote: both
 * families of the dual-stack tier), 9100 from web's IPv4 CIDR, 9200 from web's IPv6 prefix.
 */
export function withRemoteFamilyRules(model: NetworkModel): NetworkModel {
  return edit(model, (doc) => {
    const rule = (name: string, ports: number, remote?: { cidr: string }) => ({ name, subnet: 'db', direction: 'ingress', action: 'allow', protocol: 'tcp', ports, ...(remote && { remote }) });
    doc.vpcs[0].acls.unshift(rule('anyone-to-db-9000', 9000), rule('web-v4-to-db-9100', 9100, { cidr: '10.1.1.0/24' }), rule('web-v6-to-db-9200', 9200, { cidr: 'fd00:1:1::/64' }));
  });
}

/** a model document edited and validated again */
export function edit(model: NetworkModel, change: (doc: any) => void): NetworkModel {
  const doc = toDoc(model);
  change(doc);
  return validateModel(doc, 'test');
}

/** the model back as a document validateModel accepts */
export function toDoc(m: NetworkModel): any {
  return {
    zones: m.zones.map((z) => ({ ...z })),
    hypervisors: m.hypervisors.map((h) => ({ ...h, datapathId: `0x${h.datapathId.toString(16)}` })),
    vpcs: m.vpcs.map((v) => ({
      name: v.name,
      vni: v.vni,
      subnets: m.subnets.filter((s) => s.vpc === v.name).map(({ name, cidr, gateway, tunnelKey, ipv6 }) => ({ name, cidr, gateway, ...(tunnelKey === undefined ? {} : { tunnelKey }), ...(ipv6 === undefined ? {} : { ipv6 }) })),
      acls: m.acls
        .filter((a) => a.vpc === v.name)
        .map(({ vpc: _vpc, ports, ...a }) => ({ ...a, ...(ports ? { ports: `${ports.from}-${ports.to}` } : {}) })),
      ...egressOf(m, v.name),
      loadBalancers: m.loadBalancers.filter((lb) => lb.vpc === v.name).map(loadBalancerDoc),
    })),
    ports: m.ports.map((p) => ({ ...p })),
    externalNetworks: m.externalNetworks.map((e) => ({ ...e, gateways: e.gateways.map((g) => ({ ...g })) })),
    floatingIps: m.floatingIps.map(floatingIpDoc),
  };
}

function egressOf(m: NetworkModel, vpc: string) {
  const e = m.egress.find((x) => x.vpc === vpc);
  return e ? { egress: { routes: [...e.routes], snat: e.snat.map((a) => ({ ...a })) } } : {};
}

/** One flow as `ovs-ofctl dump-flows` prints it, with table names instead of numbers. */
export function flowText(f: Pick<Flow, 'table' | 'priority' | 'match' | 'instructions'>, pipeline = PIPELINE): string {
  const name = (id: string) => pipeline.tables.find((t) => t.id === Number(id))?.name ?? id;
  const match = formatMatch(f.match);
  const actions = formatInstructions(f.instructions)
    .replace(/goto_table:(\d+)/g, (_, id: string) => `goto_table:${name(id)}`)
    .replace(/table=(\d+)/g, (_, id: string) => `table=${name(id)}`);
  return `table=${f.table}, priority=${f.priority}${match ? `,${match}` : ''} actions=${actions}`;
}

/** an owner's flows by switch */
export function perSwitch(owner: OwnerFlows): Map<bigint, readonly Flow[]> {
  return new Map(owner.flatMap(({ dpids, flows }) => dpids.map((dpid) => [dpid, flows] as const)));
}

/** an app's compiled owners as text: one block per owner and switch, in a stable order */
export function ownersText(owners: ReadonlyMap<string, OwnerFlows>, hvName: (dpid: bigint) => string, pipeline = PIPELINE): string {
  const blocks: string[] = [];
  for (const [owner, lists] of [...owners].sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const [dpid, flows] of [...perSwitch(lists)].sort(([a], [b]) => (hvName(a) < hvName(b) ? -1 : 1))) {
      blocks.push(`# ${owner} @ ${hvName(dpid)}\n${flows.map((f) => flowText(f, pipeline)).join('\n')}`);
    }
  }
  return `${blocks.join('\n')}\n`;
}

/** all apps' flows plus table-miss flows, per switch */
export function switchFlows(view: OverlayView, pipeline = PIPELINE, compilers: Compilers = COMPILERS): Map<bigint, Flow[]> {
  const out = new Map<bigint, Flow[]>(view.hypervisors.map((h) => [h.datapathId, [...tableMissFlows(pipeline)]]));
  for (const compile of Object.values(compilers)) {
    for (const owner of compile(pipeline, view).values()) for (const { dpids, flows } of owner) for (const dpid of dpids) out.get(dpid)!.push(...flows);
  }
  return out;
}

export interface Delivery {
  hv: string;
  port: number;
  packet: SimPacket;
}

/**
 * The whole overlay as one fake network: the tracer of `zonemesh trace` on every hypervisor's
 * compiled flows, conntrack kept from packet to packet; a packet leaving by the tunnel port arrives
 * at the hypervisor owning its tun_dst.
 */
export class Fabric {
  private readonly tracer: Tracer;
  private readonly byTunnelIp: Map<string, string>;
  /** every tunnel hop of the last send */
  tunnelled: { from: string; to: string; vni: bigint; egressKey: number }[] = [];

  constructor(readonly view: OverlayView) {
    const flows = switchFlows(view);
    const switches = new Map(view.hypervisors.map((h) => [h.datapathId, { dpid: h.datapathId, flows: flows.get(h.datapathId)!, ports: view.placement.get(h.datapathId) ?? new Map() }]));
    this.tracer = new Tracer(view.model, PIPELINE, switches, { keepConntrack: true });
    this.byTunnelIp = new Map(view.hypervisors.map((h) => [h.tunnelIp, h.name]));
  }

  vm(name: string): PortView {
    for (const vpc of this.view.vpcs) {
      const p = vpc.portByName.get(name);
      if (p) return p;
    }
    throw new Error(`no port ${name}`);
  }

  /** where a VM port's packets arrive */
  at(name: string): { hv: string; port: number } {
    const p = this.vm(name);
    return { hv: p.host.name, port: p.ofport! };
  }

  /** send `packet` from VM port `from`; returns every delivery to a VM port, in order, then every punt to the controller (port CONTROLLER) */
  send(from: string, packet: SimPacket): Delivery[] {
    const { hv, port } = this.at(from);
    const { hops, verdict } = this.tracer.follow(hv, port, packet);
    this.tunnelled = hops
      .filter((h) => h.inPort === TUNNEL_OFPORT)
      .map((h) => ({ from: this.byTunnelIp.get(String(h.packet.tun_ipv4_src))!, to: h.hypervisor, vni: BigInt(h.packet.tunnel_id!), egressKey: Number(h.packet.tun_metadata0) }));
    return [
      ...verdict.deliveries.map((d) => ({ hv: d.hypervisor, port: d.port, packet: d.packet })),
      ...verdict.punts.map((p) => ({ hv: p.hypervisor, port: OFPP.CONTROLLER, packet: p.packet })),
    ];
  }
}

/** a FLOW_MOD as one line: command, then the flow as dump-flows prints it (deletes by cookie say so) */
export function flowModText(fm: FlowMod): string {
  if (fm.command === 'delete' && fm.tableId === OFPTT_ALL) return `delete cookie=0x${fm.cookie.toString(16)}/-1`;
  const table = PIPELINE.tables.find((t) => t.id === fm.tableId)!.name;
  return `${fm.command} ${flowText({ ...fm, table, instructions: fm.instructions })}`;
}
