import type { Action, OxmFieldName } from '../../openflow';
import { fieldRef } from '../../openflow';

/**
 * Per-packet state the overlay apps hand each other. metadata holds the packet's VPC (its vni,
 * written by classify). Keys are the 32-bit egress keys of src/model/derived.ts, unique within a VPC.
 */
export const REG = {
  /** destination port's subnet key (l2 → acl) */
  dstSubnet: 'reg4',
  /** source port's subnet key (classify → arp, l3, l2 flood, acl) */
  srcSubnet: 'reg5',
  /** source port's key (classify → arp, acl) */
  srcPort: 'reg6',
  /** egress key: the destination port's key or a subnet's flood key (l2 → output) */
  egress: 'reg7',
  /** 1 while arp.responder turns an NS into its NA (arp.responder → arp.responder, nd.ts) */
  ndAnswer: 'reg3',
} as const satisfies Record<string, OxmFieldName>;

export type OverlayReg = (typeof REG)[keyof typeof REG];

export function setReg(reg: OverlayReg, value: number): Action {
  return { type: 'set_field', field: { field: reg, value } };
}

/** move a whole field (same width) onto another: eth_src → eth_dst and the like */
export function moveField(src: OxmFieldName, dst: OxmFieldName, nBits: number): Action {
  return { type: 'reg_move', src: fieldRef(src), dst: fieldRef(dst), nBits, srcOfs: 0, dstOfs: 0 };
}

export { output } from '../../sdk/actions';

/** ethertypes and IP protocols the overlay matches on */
export const ETH = { ip: 0x0800, arp: 0x0806, ipv6: 0x86dd } as const;
export const IP_PROTO = { icmp: 1, tcp: 6, udp: 17, icmp6: 58 } as const;
/** ICMPv6 types of neighbour discovery (RFC 4861) */
export const ICMPV6 = { rs: 133, ra: 134, ns: 135, na: 136 } as const;
export const BROADCAST = 'ff:ff:ff:ff:ff:ff';
export const MULTICAST = { value: '01:00:00:00:00:00', mask: '01:00:00:00:00:00' };
