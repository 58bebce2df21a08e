/**
 * Stateless DHCPv6 (RFC 8415 §6.1): a dual-stack port's Information-Request is answered with the
 * subnet's IPv6 DNS servers and its domain as search list; addresses come from SLAAC (or the
 * model), never from DHCPv6. Built on the public SDK alone.
 */
import {
  ALL_DHCP_SERVERS,
  buildDhcp6,
  buildPacket,
  DHCP6_CLIENT_PORT,
  DHCP6_SERVER_PORT,
  Dhcp6MessageType,
  Dhcp6Status,
  duidFromMac,
  EthType,
  IpProto,
  routerLinkLocal,
  toController,
  type AppContext,
  type Dhcp6Message,
  type Dhcp6Options,
  type Flow,
  type MatchSpec,
  type PlacedPort,
  type Subnet,
} from '../../sdk';

const UDP6 = { eth_type: EthType.IPV6, ip_proto: IpProto.UDP } as const;
const FROM_CLIENT = { ...UDP6, udp_src: DHCP6_CLIENT_PORT, udp_dst: DHCP6_SERVER_PORT } as const;

/** What the app does with one DHCPv6 client message, or why it does nothing. */
export type Dhcp6Ignored = 'other_server' | 'stateful' | 'not_a_request' | 'malformed';
export type Dhcp6ReplyType = 'reply6' | 'advertise6';

export const DHCP6_PRIORITY = { client: 200, wrongPort: 150, unknownMac: 100, fromServer: 90 } as const;

/**
 * A switch's DHCPv6 flows, beside the DHCPv4 ones in the same table and with the same shape: a
 * dual-stack port's own MAC on its own ofport, to All_DHCP_Relay_Agents_and_Servers, goes to the
 * controller; every other client message is dropped (misplaced MAC, unknown MAC, unicast to a
 * server), and so is a VM playing server. None goes on, so none crosses a tunnel.
 */
export function dhcp6Flows(ctx: Pick<AppContext, 'flow'>, table: string, owners: { clients: string; drops: string }, ports: readonly PlacedPort[], dualStack: (p: PlacedPort) => boolean) {
  const clients: Flow[] = ports
    .filter(dualStack)
    .map(({ port, ofport }) =>
      ctx.flow(table, owners.clients).priority(DHCP6_PRIORITY.client).match({ in_port: ofport, eth_src: port.mac, ...FROM_CLIENT, ipv6_dst: ALL_DHCP_SERVERS }).apply(toController()).build(),
    );
  const drop = (priority: number, match: MatchSpec) => ctx.flow(table, owners.drops).priority(priority).match(match).build();
  const drops = [
    ...[...new Set(ports.map(({ port }) => port.mac))].map((mac) => drop(DHCP6_PRIORITY.wrongPort, { eth_src: mac, ...FROM_CLIENT })),
    drop(DHCP6_PRIORITY.unknownMac, FROM_CLIENT),
    drop(DHCP6_PRIORITY.fromServer, { ...UDP6, udp_src: DHCP6_SERVER_PORT, udp_dst: DHCP6_CLIENT_PORT }),
  ];
  return { clients, drops };
}

/** The options of the subnet: its IPv6 DNS servers and its domain as the search list (RFC 3646). */
function subnetOptions(subnet: Subnet): Dhcp6Options {
  return {
    ...(subnet.ipv6?.dns && { dnsServers: [...subnet.ipv6.dns] }),
    ...(subnet.domain && { domainList: [subnet.domain] }),
  };
}

const hasIa = (m: Dhcp6Message) => (m.options.identityAssociations?.length ?? 0) > 0;

/**
 * The server's answer to a client message (RFC 8415 §16, §18.3):
 * - Information-Request: Reply with the subnet's options; discarded if it names another server or
 *   carries an IA (§16.12).
 * - Solicit: Advertise with status NoAddrsAvail and the options. §18.3.9 says a server that will
 *   assign no addresses MUST send that rather than stay silent; the client ignores it (§18.2.9) and
 *   falls back to SLAAC and Information-Request, which is what a stateless subnet wants. Discarded
 *   without a Client Identifier or with a Server Identifier (§16.2).
 * - Request, Renew, Rebind, Confirm, Release, Decline: nothing; we never gave an address, so there is
 *   no binding to speak of, and a client only sends them to a server that did.
 */
export function dhcp6Answer(request: Dhcp6Message, subnet: Subnet): Dhcp6Message | Dhcp6Ignored {
  const serverId = duidFromMac(subnet.routerMac);
  const reply = (messageType: number, extra: Dhcp6Options = {}): Dhcp6Message => ({
    messageType,
    transactionId: request.transactionId,
    options: { ...(request.options.clientId && { clientId: request.options.clientId }), serverId, ...extra, ...subnetOptions(subnet) },
  });
  const { clientId, serverId: named } = request.options;
  switch (request.messageType) {
    case Dhcp6MessageType.INFORMATION_REQUEST:
      if (named && !named.equals(serverId)) return 'other_server';
      return hasIa(request) ? 'malformed' : reply(Dhcp6MessageType.REPLY);
    case Dhcp6MessageType.SOLICIT:
      if (!clientId || named) return 'malformed';
      return reply(Dhcp6MessageType.ADVERTISE, { status: { code: Dhcp6Status.NO_ADDRS_AVAIL, message: 'stateless DHCPv6 only: addresses come from router advertisements' } });
    case Dhcp6MessageType.REQUEST:
    case Dhcp6MessageType.RENEW:
    case Dhcp6MessageType.REBIND:
    case Dhcp6MessageType.CONFIRM:
    case Dhcp6MessageType.RELEASE:
    case Dhcp6MessageType.DECLINE:
      return 'stateful';
    default:
      return 'not_a_request';
  }
}

export const DHCP6_REPLY_TYPES: ReadonlyMap<number, Dhcp6ReplyType> = new Map([
  [Dhcp6MessageType.REPLY, 'reply6'],
  [Dhcp6MessageType.ADVERTISE, 'advertise6'],
]);

/** The frame that carries `reply` to the client: from the router's link-local address and MAC to the client's (RFC 8415 §18.3.10). */
export function dhcp6ReplyFrame(reply: Dhcp6Message, subnet: Subnet, client: { mac: string; ip: string }): Buffer {
  return buildPacket([
    { type: 'ethernet', dst: client.mac, src: subnet.routerMac },
    { type: 'ipv6', src: routerLinkLocal(subnet), dst: client.ip },
    { type: 'udp', srcPort: DHCP6_SERVER_PORT, dstPort: DHCP6_CLIENT_PORT },
    { type: 'raw', data: buildDhcp6(reply) },
  ]);
}
