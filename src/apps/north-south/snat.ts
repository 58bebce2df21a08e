/**
 * SNAT with a port block per VM (docs/north-south.md). The translation and its conntrack state live
 * on the VM's own hypervisor, in its VPC's conntrack zone: `ct(commit,nat(src=SNAT:lo-hi))` with a
 * block of source ports that is the VM's alone on its zone's SNAT address. Gateways stay stateless:
 * a reply to the SNAT address whose destination port falls in a VM's block (one masked match) is
 * tunnelled to that VM's hypervisor, where `ct(nat)` reverses it. ICMP has no field OpenFlow can
 * steer by (its echo identifier is no match field), so a gateway copies ICMP answers to the SNAT
 * address to every hypervisor of its zone that hosts a VM translated to it: `ct(nat)` there reverses it where
 * the VM's conntrack entry is, and finds nothing (so delivers nothing) everywhere else.
 */
import {
  type Action,
  type ExternalNetwork,
  type Flow,
  FlowBuilder,
  type Hypervisor,
  type NetworkModel,
  NX_CT_F_COMMIT,
  NX_NAT_F_SRC,
  type OwnerDef,
  type Pipeline,
  type PlacedPort,
  type SnatAddress,
  TUNNEL_OFPORT,
  type VmPort,
  arpAnswer,
  bySwitch,
  conntrackZone,
  derivedKey,
  floatingIpMac,
  makeCookie,
  output,
} from '../../sdk';
import {
  GATEWAY_TABLE,
  type GatewayAttachment,
  NAT_INBOUND_TABLE,
  NAT_OUTBOUND_TABLE,
  NORTH_SOUTH_APP_ID,
  type NorthSouthPlaces,
  TRACKED,
  UNTRACKED,
  attachmentOn,
  staysInside,
  toDestinations,
  toOutside,
  toSegment,
} from './flows';

/** source ports per VM: its concurrent connections to one destination address and port */
export const SNAT_BLOCK_SIZE = 1024;
/** ports below 1024 are never a source: block 0 is nobody's */
const FIRST_BLOCK = 1;
const BLOCKS = 0x10000 / SNAT_BLOCK_SIZE;
const ETH_IP = 0x0800;
const ETH_ARP = 0x0806;
const ARP_REQUEST = 1;
const PROTOCOLS = [
  { ip_proto: 6, field: 'tcp_dst' },
  { ip_proto: 17, field: 'udp_dst' },
] as const;
const ICMP = 1;
/**
 * The ICMP types that can answer a VM (echo reply; destination unreachable, time exceeded and
 * parameter problem about its connections): only these are copied, so a ping to the SNAT address
 * from outside is not multiplied across the zone.
 */
const ICMP_ANSWERS = [0, 3, 11, 12] as const;
/** a packet back from conntrack (+trk) is matched above the flows that sent it there, which match only untracked ones */
const PRIORITY = { translate: 100, translated: 300 } as const;

/** A VM that reaches the outside through its zone's SNAT address, and its block of source ports there. */
export interface SnatBinding {
  readonly port: VmPort;
  readonly network: ExternalNetwork;
  readonly address: SnatAddress;
  /** the block's first and last port */
  readonly lo: number;
  readonly hi: number;
}

/**
 * Every VM without a floating IP whose VPC has a SNAT address on an external network of the VM's
 * zone, with its block. A block is the VM's by its name's hash (`derivedKey`: every controller computes the same);
 * a VM whose block another VM of the same VPC and zone took first (in name order) takes the next
 * free one. At most 63 VMs per VPC and zone get a block; the rest are in `exhausted`.
 */
export function snatBindings(model: NetworkModel): { bindings: SnatBinding[]; exhausted: VmPort[] } {
  const bindings: SnatBinding[] = [];
  const exhausted: VmPort[] = [];
  if (!model.egress.some((e) => e.snat.length > 0)) return { bindings, exhausted };
  const floating = new Set(model.floatingIps.flatMap((f) => (f.port === undefined ? [] : [f.port])));
  const zoneOf = new Map(model.hypervisors.map((h) => [h.name, h.zone]));
  const snatOf = new Map(model.egress.map((e) => [e.vpc, e.snat]));
  const taken = new Map<string, Set<number>>();
  for (const port of [...model.ports].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const snat = snatOf.get(port.vpc);
    if (!snat?.length || floating.has(port.name)) continue;
    const zone = zoneOf.get(port.hypervisor);
    const network = model.externalNetworks.find((e) => e.zone === zone && snat.some((s) => s.network === e.name));
    if (!network) continue;
    const address = snat.find((s) => s.network === network.name)!;
    const used = taken.get(address.ip) ?? new Set<number>();
    taken.set(address.ip, used);
    const span = BLOCKS - FIRST_BLOCK;
    const preferred = derivedKey(port.name, { min: FIRST_BLOCK, max: BLOCKS - 1 }) - FIRST_BLOCK;
    const free = Array.from({ length: span }, (_, i) => FIRST_BLOCK + ((preferred + i) % span)).find((b) => !used.has(b));
    if (free === undefined) {
      exhausted.push(port);
      continue;
    }
    used.add(free);
    bindings.push({ port, network, address, lo: free * SNAT_BLOCK_SIZE, hi: free * SNAT_BLOCK_SIZE + SNAT_BLOCK_SIZE - 1 });
  }
  return { bindings, exhausted };
}

/** conntrack reverses the translation of a reply and hands it back to nat.inbound, addressed to the VM again */
function untranslation(pipeline: Pipeline, zone: number): Action {
  return { type: 'ct', flags: 0, zone, recircTable: pipeline.table(NAT_INBOUND_TABLE).id, alg: 0, actions: [{ type: 'nat', flags: 0 }] };
}

/**
 * One owner per translated VM (its hypervisor and its zone's gateways), one per SNAT address (its
 * network's gateways, and the hypervisors hosting its VMs).
 */
export function snatOwners(pipeline: Pipeline, model: NetworkModel, places: NorthSouthPlaces, attachments: readonly GatewayAttachment[]): OwnerDef[] {
  const placedBindings = snatBindings(model).bindings.flatMap((b) => {
    const placed = places.place(b.port);
    return placed ? [{ b, placed }] : [];
  });
  const vms = placedBindings.map(({ b, placed }): OwnerDef => {
    const key = `snat:${b.port.name}`;
    const gateways = attachments.filter((a) => a.host.zone === placed.hypervisor.zone);
    return { key, signature: [model, placed.dpid, placed.ofport, ...gateways.map((a) => a.uplink)], compile: () => bySwitch(snatVmFlows(pipeline, model, key, b, placed, gateways)) };
  });
  const addresses = model.egress.flatMap((e) =>
    e.snat.flatMap((address): OwnerDef[] => {
      const gateways = attachments.filter((a) => a.network.name === address.network);
      if (gateways.length === 0) return [];
      const key = `snat-address:${address.ip}`;
      const vni = BigInt(model.vpcs.find((v) => v.name === e.vpc)!.vni);
      const hosts = [...new Map(placedBindings.filter(({ b }) => b.address.ip === address.ip).map(({ placed }) => [placed.dpid, placed.hypervisor])).values()];
      return [{ key, signature: [model, ...gateways.map((a) => a.uplink), ...hosts], compile: () => bySwitch(snatAddressFlows(pipeline, key, address, vni, gateways, hosts)) }];
    }),
  );
  return [...vms, ...addresses];
}

function snatVmFlows(pipeline: Pipeline, model: NetworkModel, owner: string, b: SnatBinding, placed: PlacedPort, gateways: readonly GatewayAttachment[]): Map<bigint, Flow[]> {
  const cookie = makeCookie(NORTH_SOUTH_APP_ID, owner);
  const f = (table: string, priority: number = PRIORITY.translate) => new FlowBuilder(pipeline, pipeline.table(table), cookie).priority(priority);
  const { port, ofport } = placed;
  const vni = BigInt(model.vpcs.find((v) => v.name === port.vpc)!.vni);
  const zone = conntrackZone(Number(vni));
  const subnet = model.subnets.find((s) => s.vpc === port.vpc && s.name === port.subnet)!;
  const routes = model.egress.find((e) => e.vpc === port.vpc)!.routes;
  const out = toOutside(model, placed, vni, b.network.name, gateways);
  const block = { value: b.lo, mask: 0xffff & ~(SNAT_BLOCK_SIZE - 1) };
  const untranslate = untranslation(pipeline, zone);
  const replies = (match: object) => PROTOCOLS.map((p) => ({ ...match, eth_type: ETH_IP, ip_proto: p.ip_proto, ipv4_dst: b.address.ip, [p.field]: block }));

  const host: Flow[] = [
    ...replies({ in_port: TUNNEL_OFPORT, tunnel_id: vni, ct_state: UNTRACKED }).map((m) => f(NAT_INBOUND_TABLE).match(m).apply(untranslate).build()),
    // from the tunnel, or from the segment when this hypervisor is the gateway: no in_port
    f(NAT_INBOUND_TABLE, PRIORITY.translated)
      .match({ ct_state: TRACKED, tunnel_id: vni, eth_type: ETH_IP, ipv4_dst: port.ip })
      .apply({ type: 'set_field', field: { field: 'eth_src', value: subnet.routerMac } }, { type: 'set_field', field: { field: 'eth_dst', value: port.mac } }, output(ofport))
      .build(),
  ];
  if (out) {
    // ICMP keeps its identifier: ports are TCP's and UDP's, and no gateway could steer by it anyway
    const translate = (ports: boolean): Action => ({
      type: 'ct',
      flags: NX_CT_F_COMMIT,
      zone,
      recircTable: pipeline.table(NAT_OUTBOUND_TABLE).id,
      alg: 0,
      actions: [{ type: 'nat', flags: NX_NAT_F_SRC, ipv4Min: b.address.ip, ipv4Max: b.address.ip, ...(ports && { protoMin: b.lo, protoMax: b.hi }) }],
    });
    const routed = { in_port: ofport, eth_type: ETH_IP, eth_dst: subnet.routerMac };
    const protocols = [...PROTOCOLS.map((p) => ({ ip_proto: p.ip_proto, ports: true })), { ip_proto: ICMP, ports: false }];
    host.push(
      ...staysInside(pipeline, model, cookie, placed),
      ...routes.flatMap((route) => protocols.map((p) => f(NAT_OUTBOUND_TABLE).match({ ...routed, ct_state: UNTRACKED, ip_proto: p.ip_proto, ...toDestinations(route) }).apply(translate(p.ports)).build())),
      f(NAT_OUTBOUND_TABLE, PRIORITY.translated)
        .match({ ...routed, ct_state: TRACKED, ipv4_src: b.address.ip })
        .apply({ type: 'set_field', field: { field: 'eth_src', value: floatingIpMac(b.address.ip) } }, { type: 'dec_nw_ttl' }, ...out)
        .build(),
    );
  }
  const byDpid = new Map<bigint, Flow[]>([[placed.dpid, host]]);
  // every gateway of the VM's zone steers the VM's block to the VM's hypervisor
  const toHost: Action[] = [{ type: 'set_field', field: { field: 'tunnel_id', value: vni } }, { type: 'set_field', field: { field: 'tun_ipv4_dst', value: placed.hypervisor.tunnelIp } }, output(TUNNEL_OFPORT)];
  const local: Action[] = [{ type: 'set_field', field: { field: 'tunnel_id', value: vni } }, untranslate];
  for (const name of new Set(gateways.map((a) => a.host.name))) {
    const a = attachmentOn(gateways, name, b.network.name)!;
    const steer = replies({ in_port: a.uplink }).map((m) =>
      f(GATEWAY_TABLE)
        .match(m)
        .apply({ type: 'dec_nw_ttl' }, ...(name === placed.hypervisor.name ? local : toHost))
        .build(),
    );
    byDpid.set(a.host.datapathId, [...(byDpid.get(a.host.datapathId) ?? []), ...steer]);
  }
  return byDpid;
}

/**
 * On each gateway of its network: ARP for the address answered, its VPC's translated packets out to
 * the next hop, and ICMP to the address copied to every hypervisor in `hosts` (those hosting a VM
 * translated to it). On each of those: ICMP from the tunnel to the address through `ct(nat)`, which
 * un-NATs it where the VM's connection is (then nat.inbound's `+trk` flow of the VM delivers it).
 */
function snatAddressFlows(pipeline: Pipeline, owner: string, address: SnatAddress, vni: bigint, gateways: readonly GatewayAttachment[], hosts: readonly Hypervisor[]): Map<bigint, Flow[]> {
  const f = (table = GATEWAY_TABLE) => new FlowBuilder(pipeline, pipeline.table(table), makeCookie(NORTH_SOUTH_APP_ID, owner)).priority(PRIORITY.translate);
  const mac = floatingIpMac(address.ip);
  const zone = conntrackZone(Number(vni));
  const untranslate = untranslation(pipeline, zone);
  const icmp = { eth_type: ETH_IP, ip_proto: ICMP, ipv4_dst: address.ip };
  const byDpid = new Map<bigint, Flow[]>(
    hosts.map((h) => [h.datapathId, [f(NAT_INBOUND_TABLE).match({ ...icmp, in_port: TUNNEL_OFPORT, tunnel_id: vni, ct_state: UNTRACKED }).apply(untranslate).build()]]),
  );
  for (const a of gateways) {
    const flows = [f().match({ in_port: a.uplink, eth_type: ETH_ARP, arp_op: ARP_REQUEST, arp_tpa: address.ip }).apply(...arpAnswer(mac, address.ip)).build()];
    const segment = toSegment(a);
    if (segment) flows.push(f().match({ in_port: TUNNEL_OFPORT, tunnel_id: vni, eth_type: ETH_IP, ipv4_src: address.ip }).apply(...segment).build());
    if (hosts.length > 0) {
      // the copies leave before conntrack takes the local one: actions after ct(table=…) see the packet as it was
      const copies = hosts.filter((h) => h.name !== a.host.name).flatMap((h): Action[] => [{ type: 'set_field', field: { field: 'tun_ipv4_dst', value: h.tunnelIp } }, output(TUNNEL_OFPORT)]);
      const local = hosts.some((h) => h.name === a.host.name) ? [untranslate] : [];
      const actions: Action[] = [{ type: 'dec_nw_ttl' }, { type: 'set_field', field: { field: 'tunnel_id', value: vni } }, ...copies, ...local];
      flows.push(...ICMP_ANSWERS.map((icmpv4_type) => f().match({ ...icmp, in_port: a.uplink, icmpv4_type }).apply(...actions).build()));
    }
    byDpid.set(a.host.datapathId, [...(byDpid.get(a.host.datapathId) ?? []), ...flows]);
  }
  return byDpid;
}
