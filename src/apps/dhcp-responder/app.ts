/**
 * Distributed DHCP: every hypervisor's VM ports are answered by the controller from the model, so
 * there is no DHCP agent to fail. Only a port's own MAC on its own switch port gets an answer, and
 * DHCP is never forwarded (so never tunnelled). Built on the public SDK alone.
 *
 *   zonemesh run --apps dhcp-responder,tunnel-mesh,… --model FILE
 *
 * Its table is in the intercept stage, before classify and spoofguard: a DISCOVER is sent from
 * 0.0.0.0, which spoofguard would drop. Dual-stack ports get stateless DHCPv6 too (dhcp6.ts).
 */
import {
  AppSettingsError,
  APP_SETTINGS,
  BootpOp,
  BROADCAST_MAC,
  buildDhcp,
  buildPacket,
  DHCP_CLIENT_PORT,
  DHCP_SERVER_PORT,
  DhcpMessageType,
  DhcpParseError,
  Dhcp6ParseError,
  EthType,
  findLayer,
  inject,
  injectable,
  IpProto,
  parseDhcp,
  parseDhcp6,
  PipelineError,
  SwitchEventCounts,
  toController,
  type AppContext,
  type AppSettings,
  type DhcpMessage,
  type Dhcp6Message,
  type DhcpOptions,
  type EventCounter,
  type Flow,
  type FlowCounter,
  type MatchSpec,
  type PacketIn,
  type Placement,
  type PlacedPort,
  OVERLAY_MTU,
  type SubnetInfo,
  type Ipv4SubnetInfo,
  type VmPort,
  type WithIpv4Port,
  portHasIpv4,
  type TableSpec,
  type ZonemeshApp,
} from '../../sdk';
import { DHCP6_REPLY_TYPES, dhcp6Answer, dhcp6Flows, dhcp6ReplyFrame, type Dhcp6ReplyType } from './dhcp6';

export const DHCP_RESPONDER_APP_ID = 20;
export const DHCP_TABLE = 'dhcp-responder.in';
export const DEFAULT_LEASE_SECONDS = 86_400;
const ZERO_IP = '0.0.0.0';

/** what an answer needs of a subnet with IPv4: its numbers, DHCP options and router MAC */
export type Ipv4Subnet = Ipv4SubnetInfo & Pick<SubnetInfo, 'subnet' | 'routerMac'>;
const BROADCAST_IP = '255.255.255.255';

const PRIORITY = { client: 200, wrongPort: 150, unknownMac: 100, fromServer: 90 } as const;
const DHCP_MATCH = { eth_type: EthType.IPV4, ip_proto: IpProto.UDP } as const;
const OWNER = { clients: 'clients', drops: 'drop:dhcp' } as const;
/** what each drop flow's packets count as, by its priority (zonemesh_dropped_packets_total{reason}) */
const DROP_REASONS: ReadonlyMap<number, string> = new Map([
  [PRIORITY.wrongPort, 'dhcp_wrong_port'],
  [PRIORITY.unknownMac, 'dhcp_unknown_mac'],
  [PRIORITY.fromServer, 'dhcp_from_vm_server'],
]);

export const DHCP_TABLES: readonly TableSpec[] = [
  { name: DHCP_TABLE, stage: 'intercept', miss: 'next', matches: ['in_port', 'eth_src', 'eth_type', 'ip_proto', 'ipv6_dst', 'udp_src', 'udp_dst'] },
];

/**
 * A switch's DHCP flows: each placed port's own MAC on its own ofport goes to the controller; any
 * other DHCP client packet is dropped (a MAC of a port of this switch on another port, then any
 * other MAC: unknown here, or arriving from the tunnel), and so is any DHCP server packet from a
 * VM. Nothing DHCP goes on to the overlay. The drops are told apart by priority, for the metrics.
 */
export function dhcpFlows(ctx: Pick<AppContext, 'flow'>, placed: readonly PlacedPort[]): { clients: Flow[]; drops: Flow[] } {
  // a port of an IPv6-only subnet has no DHCPv4 lease: its DHCP is dropped as an unknown MAC's
  const ports = placed.filter(({ port }) => portHasIpv4(port));
  const fromClient = { ...DHCP_MATCH, udp_src: DHCP_CLIENT_PORT, udp_dst: DHCP_SERVER_PORT };
  const clients = ports.map(({ port, ofport }) =>
    ctx.flow(DHCP_TABLE, OWNER.clients).priority(PRIORITY.client).match({ in_port: ofport, eth_src: port.mac, ...fromClient }).apply(toController()).build(),
  );
  const drop = (priority: number, match: MatchSpec) => ctx.flow(DHCP_TABLE, OWNER.drops).priority(priority).match(match).build();
  const drops = [
    ...[...new Set(ports.map(({ port }) => port.mac))].map((mac) => drop(PRIORITY.wrongPort, { eth_src: mac, ...fromClient })),
    drop(PRIORITY.unknownMac, fromClient),
    drop(PRIORITY.fromServer, { ...DHCP_MATCH, udp_src: DHCP_SERVER_PORT, udp_dst: DHCP_CLIENT_PORT }),
  ];
  return { clients, drops };
}

export interface DhcpResponderSettings {
  /** DHCP packets a port may send up before it is limited */
  readonly burst: number;
  /** tokens a port gets back per second */
  readonly perSecond: number;
}

export const DEFAULT_DHCP_SETTINGS: DhcpResponderSettings = { burst: 10, perSecond: 1 };

/** Reads `settings.dhcp-responder`; throws AppSettingsError naming every bad field. */
export function parseDhcpSettings(raw: unknown): DhcpResponderSettings {
  const s = (raw ?? {}) as Record<string, unknown>;
  const issues = Object.keys(s)
    .filter((k) => !(k in DEFAULT_DHCP_SETTINGS))
    .map((k) => ({ path: k, problem: 'is not a setting of dhcp-responder (known: burst, perSecond)' }));
  const { burst = DEFAULT_DHCP_SETTINGS.burst, perSecond = DEFAULT_DHCP_SETTINGS.perSecond } = s;
  if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 1 || burst > 1000) issues.push({ path: 'burst', problem: 'must be an integer in 1..1000' });
  if (typeof perSecond !== 'number' || !(perSecond > 0 && perSecond <= 1000)) issues.push({ path: 'perSecond', problem: 'must be a number in (0, 1000]' });
  if (issues.length) throw new AppSettingsError('dhcp-responder', issues);
  return { burst: burst as number, perSecond: perSecond as number };
}

/**
 * Why a packet that reached the controller got no answer; the app counts each. (The switch drops
 * unknown and misplaced MACs itself; 'unknown_mac' and 'wrong_port' here are packets that matched a
 * flow while the model or the ports were changing, or a `chaddr` other than the frame's source.)
 */
export type DhcpIgnored = 'rate_limited' | 'malformed' | 'unknown_mac' | 'wrong_port' | 'other_server' | 'released' | 'declined' | 'not_a_request' | 'stateful' | 'no_ipv4';

/** The replies the app sends, by DHCP message type (DHCPv6's with a 6). */
export type DhcpReplyType = 'offer' | 'ack' | 'nak' | Dhcp6ReplyType;
const REPLY_TYPES: ReadonlyMap<number | undefined, DhcpReplyType> = new Map([
  [DhcpMessageType.OFFER, 'offer'],
  [DhcpMessageType.ACK, 'ack'],
  [DhcpMessageType.NAK, 'nak'],
]);

/** The most ports whose token buckets are kept; the oldest is forgotten (and so refilled) first. */
const MAX_BUCKETS = 65_536;

/** A token bucket per (switch, port): what bounds the packet-ins one VM can make us answer. */
export class PortRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly settings: DhcpResponderSettings,
    private readonly now: () => number = () => performance.now(),
  ) {}

  take(dpid: bigint, port: number): boolean {
    const key = `${dpid}/${port}`;
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.settings.burst, at: now };
    this.buckets.delete(key); // re-inserted last: the map's order is least recently used first
    b.tokens = Math.min(this.settings.burst, b.tokens + ((now - b.at) / 1000) * this.settings.perSecond);
    b.at = now;
    const allowed = b.tokens >= 1;
    if (allowed) b.tokens -= 1;
    this.buckets.set(key, b);
    if (this.buckets.size > MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value!);
    return allowed;
  }
}

/** The options every OFFER and ACK carries, from the port's subnet in the model. */
function subnetOptions(subnet: Ipv4Subnet): DhcpOptions {
  const { dns, domain, routes } = subnet.subnet;
  return {
    serverId: subnet.gateway,
    subnetMask: subnet.mask,
    routers: [subnet.gateway],
    interfaceMtu: OVERLAY_MTU,
    ...(dns && { dnsServers: [...dns] }),
    ...(domain && { domainName: domain }),
    // a client that gets option 121 ignores option 3 (RFC 3442), so the default route goes in too
    ...(routes?.length && { classlessRoutes: [...routes, { cidr: '0.0.0.0/0', via: subnet.gateway }] }),
  };
}

function leaseOptions(subnet: Ipv4Subnet): DhcpOptions {
  const lease = subnet.subnet.leaseTime ?? DEFAULT_LEASE_SECONDS;
  return { leaseTime: lease, renewalTime: Math.floor(lease / 2), rebindingTime: Math.floor((lease * 7) / 8) };
}

/** What the server says to a client message from a port: a reply, or why there is none. */
export function dhcpAnswer(request: DhcpMessage, port: WithIpv4Port<VmPort>, subnet: Ipv4Subnet): DhcpMessage | DhcpIgnored {
  const reply = (messageType: number, yiaddr: string, options: DhcpOptions): DhcpMessage => ({
    ...request,
    op: BootpOp.REPLY,
    hops: 0,
    secs: 0,
    ciaddr: messageType === DhcpMessageType.NAK ? ZERO_IP : request.ciaddr,
    yiaddr,
    siaddr: messageType === DhcpMessageType.NAK ? ZERO_IP : subnet.gateway,
    options: { messageType, ...options },
  });
  const { messageType, requestedIp, serverId } = request.options;
  switch (messageType) {
    case DhcpMessageType.DISCOVER:
      return reply(DhcpMessageType.OFFER, port.ip, { ...leaseOptions(subnet), ...subnetOptions(subnet) });
    case DhcpMessageType.REQUEST: {
      if (serverId !== undefined && serverId !== subnet.gateway) return 'other_server'; // the client took another server's offer
      const asked = requestedIp ?? request.ciaddr;
      if (asked !== port.ip) return reply(DhcpMessageType.NAK, ZERO_IP, { serverId: subnet.gateway, message: `${asked} is not this port's address` });
      return reply(DhcpMessageType.ACK, port.ip, { ...leaseOptions(subnet), ...subnetOptions(subnet) });
    }
    case DhcpMessageType.INFORM: // configured by hand: options only, no lease (RFC 2131 §3.4)
      return reply(DhcpMessageType.ACK, ZERO_IP, subnetOptions(subnet));
    case DhcpMessageType.RELEASE: // the model keeps the address for the port: nothing to free
      return 'released';
    case DhcpMessageType.DECLINE:
      return 'declined';
    default:
      return 'not_a_request';
  }
}

/** The frame that carries `reply` to the client, from the subnet's router (RFC 2131 §4.1). */
export function replyFrame(reply: DhcpMessage, subnet: Ipv4Subnet): Buffer {
  const toBroadcast = reply.options.messageType === DhcpMessageType.NAK || reply.broadcast;
  const ipDst = reply.ciaddr !== ZERO_IP ? reply.ciaddr : toBroadcast ? BROADCAST_IP : reply.yiaddr;
  return buildPacket([
    { type: 'ethernet', dst: ipDst === BROADCAST_IP ? BROADCAST_MAC : reply.chaddr, src: subnet.routerMac },
    { type: 'ipv4', src: subnet.gateway, dst: ipDst, ttl: 64 },
    { type: 'udp', srcPort: DHCP_SERVER_PORT, dstPort: DHCP_CLIENT_PORT },
    { type: 'raw', data: buildDhcp(reply) },
  ]);
}

/**
 * The placed port a packet came from, if both its source MAC and `chaddr` are that port's own;
 * otherwise whether either MAC is another port's of this switch ('wrong_port') or none ('unknown_mac').
 */
function clientPort(placement: Placement, pin: PacketIn, chaddr: string): PlacedPort | 'unknown_mac' | 'wrong_port' {
  const ports = placement.portsOn(pin.dpid);
  const placed = ports.find((p) => p.ofport === pin.inPort);
  if (placed && placed.port.mac === pin.ethernet?.src && placed.port.mac === chaddr) return placed;
  return ports.some((p) => p.port.mac === pin.ethernet?.src || p.port.mac === chaddr) ? 'wrong_port' : 'unknown_mac';
}

@injectable()
export class DhcpResponderApp implements ZonemeshApp {
  readonly name = 'dhcp-responder';
  readonly appId = DHCP_RESPONDER_APP_ID;
  readonly tables = DHCP_TABLES;
  readonly flowCounters: readonly FlowCounter[] = [
    {
      owner: OWNER.drops,
      count: ({ priority }) => {
        const reason = DROP_REASONS.get(priority);
        return reason === undefined ? undefined : { kind: 'drop', reason };
      },
    },
  ];
  /** replies sent, by type, per switch */
  readonly replies = new SwitchEventCounts<DhcpReplyType>();
  /** packet-ins not answered, by reason, per switch */
  readonly unanswered = new SwitchEventCounts<DhcpIgnored>();
  readonly eventCounters: readonly EventCounter[] = [
    { name: 'dhcp_replies', help: 'DHCP replies the dhcp-responder app sent, by type (offer, ack, nak; DHCPv6 reply6, advertise6).', label: 'type', read: () => this.replies.read() },
    {
      name: 'dhcp_unanswered',
      help: 'DHCP packets that reached the dhcp-responder app and got no answer, by reason (rate_limited, malformed, unknown_mac, wrong_port, other_server, released, declined, not_a_request, stateful, no_ipv4).',
      label: 'reason',
      read: () => this.unanswered.read(),
    },
  ];
  private readonly limiter: PortRateLimiter;

  constructor(@inject(APP_SETTINGS) settings: AppSettings) {
    this.limiter = new PortRateLimiter(parseDhcpSettings(settings[this.name]));
  }

  start(ctx: AppContext): void {
    if (ctx.pipeline.tables[0]?.name !== DHCP_TABLE) {
      throw new PipelineError(`${DHCP_TABLE} must be the first table, but '${ctx.pipeline.tables[0]?.name}' (another intercept app) comes before it`);
    }
    let switches = new Set<bigint>();
    ctx.on(ctx.placement.changes$, (placement) => {
      const now = new Set(ctx.model.current().hypervisors.map((h) => h.datapathId));
      for (const dpid of switches) if (!now.has(dpid)) Object.values(OWNER).forEach((owner) => ctx.setFlows(dpid, owner, []));
      for (const dpid of now) {
        const ports = placement.portsOn(dpid);
        const v4 = dhcpFlows(ctx, ports);
        const v6 = dhcp6Flows(ctx, DHCP_TABLE, OWNER, ports, ({ port }) => ctx.model.subnetOf(port).subnet.ipv6 !== undefined);
        ctx.setFlows(dpid, OWNER.clients, [...v4.clients, ...v6.clients]);
        ctx.setFlows(dpid, OWNER.drops, [...v4.drops, ...v6.drops]);
      }
      switches = now;
    });
    ctx.on(ctx.events.packetIn$, (pin) => {
      if (pin.tableId !== ctx.pipeline.table(DHCP_TABLE).id) return; // another app's packet
      const outcome = pin.ethernet?.ethType === EthType.IPV6 ? this.answer6(ctx, pin) : this.answer(ctx, pin);
      if (typeof outcome !== 'string') this.replies.add(pin.dpid, outcome.sent);
      else {
        this.unanswered.add(pin.dpid, outcome);
        ctx.log.debug({ dpid: pin.dpid.toString(16), inPort: pin.inPort, outcome }, 'DHCP packet not answered');
      }
    });
  }

  /** the type of the reply sent, or why there was none */
  private answer(ctx: AppContext, pin: PacketIn): { sent: DhcpReplyType } | DhcpIgnored {
    if (!this.limiter.take(pin.dpid, pin.inPort)) return 'rate_limited';
    const payload = pin.packet && findLayer(pin.packet, 'raw');
    if (!payload || !findLayer(pin.packet, 'udp')) return 'malformed';
    let request: DhcpMessage;
    try {
      request = parseDhcp(payload.data);
    } catch (e) {
      if (e instanceof DhcpParseError) return 'malformed';
      throw e;
    }
    if (request.op !== BootpOp.REQUEST) return 'not_a_request';
    const placed = clientPort(ctx.placement, pin, request.chaddr);
    if (typeof placed === 'string') return placed;
    const info = ctx.model.subnetOf(placed.port);
    // no client flow sends these up (dhcpFlows): a packet of the moment the model changed
    if (!info.ipv4 || !portHasIpv4(placed.port)) return 'no_ipv4';
    const subnet = { ...info.ipv4, subnet: info.subnet, routerMac: info.routerMac };
    const reply = dhcpAnswer(request, placed.port, subnet);
    if (typeof reply === 'string') return reply;
    ctx.packetOut(pin.dpid, replyFrame(reply, subnet), { to: pin.inPort });
    return { sent: REPLY_TYPES.get(reply.options.messageType)! };
  }

  /** DHCPv6: the packet's source MAC must be the port's own on its own ofport (there is no chaddr) */
  private answer6(ctx: AppContext, pin: PacketIn): { sent: DhcpReplyType } | DhcpIgnored {
    if (!this.limiter.take(pin.dpid, pin.inPort)) return 'rate_limited';
    const ip = pin.packet && findLayer(pin.packet, 'ipv6');
    const payload = pin.packet && findLayer(pin.packet, 'raw');
    if (!ip || !payload || !findLayer(pin.packet, 'udp')) return 'malformed';
    const mac = pin.ethernet!.src;
    const placed = clientPort(ctx.placement, pin, mac);
    if (typeof placed === 'string') return placed;
    const { subnet } = ctx.model.subnetOf(placed.port);
    let request: Dhcp6Message;
    try {
      request = parseDhcp6(payload.data);
    } catch (e) {
      if (e instanceof Dhcp6ParseError) return 'malformed';
      throw e;
    }
    const reply = dhcp6Answer(request, subnet);
    if (typeof reply === 'string') return reply;
    ctx.packetOut(pin.dpid, dhcp6ReplyFrame(reply, subnet, { mac, ip: ip.src }), { to: pin.inPort });
    return { sent: DHCP6_REPLY_TYPES.get(reply.messageType)! };
  }
}
