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
