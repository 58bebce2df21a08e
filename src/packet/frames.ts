import { buildPacket } from './build';
import { ArpOp, BROADCAST_MAC, IcmpType, Icmpv6Type, ZERO_MAC } from './constants';
import { PacketBuildError } from './errors';
import type { LayerSpec, ParsedPacket } from './layers';

/** Ready-made frames for the controller's own answers. */

function tag(vlan: number | undefined): LayerSpec[] {
  return vlan === undefined ? [] : [{ type: 'vlan', vid: vlan }];
}

/** An RFC 5227 ARP announcement: a broadcast request for our own address, target MAC zero. */
export function gratuitousArp(mac: string, ip: string, vlan?: number): Buffer {
  return buildPacket([
    { type: 'ethernet', dst: BROADCAST_MAC, src: mac },
    ...tag(vlan),
    { type: 'arp', op: ArpOp.REQUEST, senderMac: mac, senderIp: ip, targetMac: ZERO_MAC, targetIp: ip },
  ]);
}

export interface ArpReplyParams {
  /** the MAC that owns senderIp: the answer */
  senderMac: string;
  senderIp: string;
  /** the asker, from the request's sender fields */
  targetMac: string;
  targetIp: string;
  vlan?: number;
}

/** A unicast ARP reply from sender to target. */
export function arpReply(p: ArpReplyParams): Buffer {
  return buildPacket([
    { type: 'ethernet', dst: p.targetMac, src: p.senderMac },
    ...tag(p.vlan),
    { type: 'arp', op: ArpOp.REPLY, senderMac: p.senderMac, senderIp: p.senderIp, targetMac: p.targetMac, targetIp: p.targetIp },
  ]);
}

function notEchoRequest(layer: 'icmp' | 'icmpv6', icmpType: number): PacketBuildError {
  return new PacketBuildError(layer, `type ${icmpType} is not an echo request`, 'icmpType');
}

/**
 * The ICMP or ICMPv6 echo reply to an echo request, sent from the addresses the request was sent
 * to (so answer only requests addressed to you). VLAN tags, identifier, sequence and data are kept;
 * IPv6 extension headers are dropped; TTL/hop limit start afresh.
 */
export function echoReply(request: ParsedPacket): Buffer {
  const reply: LayerSpec[] = [];
  let sawEcho = false;
  for (const layer of request.layers) {
    switch (layer.type) {
      case 'ethernet':
        if (reply.length > 0) throw new PacketBuildError('ethernet', 'echo replies to tunnelled requests are not supported');
        reply.push({ type: 'ethernet', dst: layer.src, src: layer.dst });
        break;
      case 'vlan':
        reply.push({ type: 'vlan', pcp: layer.pcp, dei: layer.dei, vid: layer.vid });
        break;
      case 'ipv4':
        reply.push({ type: 'ipv4', src: layer.dst, dst: layer.src, dscp: layer.dscp });
        break;
      case 'ipv6':
        reply.push({ type: 'ipv6', src: layer.dst, dst: layer.src, trafficClass: layer.trafficClass, flowLabel: layer.flowLabel });
        break;
      case 'ipv6-ext':
        break;
      case 'icmp':
        if (layer.icmpType !== IcmpType.ECHO_REQUEST) throw notEchoRequest('icmp', layer.icmpType);
        reply.push({ type: 'icmp', icmpType: IcmpType.ECHO_REPLY });
        break;
      case 'icmpv6':
        if (layer.icmpType !== Icmpv6Type.ECHO_REQUEST) throw notEchoRequest('icmpv6', layer.icmpType);
        reply.push({ type: 'icmpv6', icmpType: Icmpv6Type.ECHO_REPLY });
        break;
      case 'icmp-echo':
        sawEcho = true;
        reply.push(layer);
        break;
      case 'raw':
        reply.push(layer);
        break;
      default:
        throw new PacketBuildError(layer.type, 'not part of an echo request');
    }
  }
  if (!sawEcho) throw new PacketBuildError('icmp-echo', 'the packet is not an echo request');
  return buildPacket(reply);
}

/** the all-nodes multicast group (RFC 4291) and its Ethernet address (RFC 2464: 33:33 + the low 32 bits) */
export const ALL_NODES_IPV6 = 'ff02::1';
export const ALL_NODES_MAC = '33:33:00:00:00:01';
/** RFC 4861 §7.1: ND messages travel with hop limit 255, so a receiver knows they were not routed */
export const ND_HOP_LIMIT = 255;

export interface RouterAdvertisementParams {
  /** the router's MAC and link-local address */
  routerMac: string;
  routerIp: string;
  /** a solicitor's MAC and address; absent: all nodes */
  dstMac?: string;
  dstIp?: string;
  /** 'ADDR' and length of the on-link prefix, autonomous when slaac */
  prefix: string;
  prefixLength: number;
  slaac: boolean;
  /** the O flag with SLAAC: other configuration (DNS) from stateless DHCPv6 */
  otherConfig?: boolean;
  mtu: number;
  /** seconds the router may be a default router */
  routerLifetime: number;
  /** seconds the prefix stays valid and preferred */
  validLifetime: number;
  preferredLifetime: number;
  /** the hop limit hosts should use; 0 leaves theirs */
  curHopLimit?: number;
}

/** An RA with the router's link-layer address, its MTU and one prefix; M and O set when not SLAAC (DHCPv6), O alone with otherConfig. */
export function routerAdvertisement(p: RouterAdvertisementParams): Buffer {
  return buildPacket([
    { type: 'ethernet', dst: p.dstMac ?? ALL_NODES_MAC, src: p.routerMac },
    { type: 'ipv6', src: p.routerIp, dst: p.dstIp ?? ALL_NODES_IPV6, hopLimit: ND_HOP_LIMIT },
    { type: 'icmpv6', icmpType: Icmpv6Type.ROUTER_ADVERTISEMENT },
    {
      type: 'ndp-ra',
      curHopLimit: p.curHopLimit ?? 0,
      managed: !p.slaac,
      other: !p.slaac || p.otherConfig === true,
      routerLifetime: p.routerLifetime,
      options: [
        { type: 'source-lla', mac: p.routerMac },
        { type: 'mtu', mtu: p.mtu },
        {
          type: 'prefix',
          prefix: p.prefix,
          prefixLength: p.prefixLength,
          onLink: true,
          autonomous: p.slaac,
          validLifetime: p.validLifetime,
          preferredLifetime: p.preferredLifetime,
        },
      ],
    },
  ]);
}
