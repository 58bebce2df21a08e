import type { Action } from '../../openflow';
import { NX_PORT_IN_PORT, OFPP } from '../../openflow';
import type { FlowBuilder } from '../../sdk/flow';
import type { MatchSpec } from '../../sdk/match';
import type { Pipeline } from '../../sdk/pipeline';
import { ETH, ICMPV6, IP_PROTO, MULTICAST, REG, moveField, output } from '../overlay';

/**
 * IPv6 neighbour discovery on the local bridge, as ARP: a multicast NS for an address of the
 * asker's subnet (a VM's global or link-local address, the router's link-local) is turned into its
 * NA in place and sent back; any other multicast NS or NA, and every RA, is dropped, so ND never
 * floods the tunnels (RS go on to the distributed router, which answers them). Unicast NS (neighbour unreachability detection) goes on to its owner.
 *
 * The NA takes two passes through arp.responder, because OVS 3.1 accepts `set_field:…->nd_tll`
 * only in a flow whose match says NA, and applies nd_options_type before nd_sll, so rewriting the
 * SLL option and then retyping it is not possible in one flow (ofproto/trace: `set(nd_ext(…)),
 * set(nd(sll=…))`). Pass 1, on the NS: addresses, ICMPv6 type 136, the R/S/O flags (nd_reserved),
 * the SLL option retyped as TLL (nd_options_type=2), reg3=1, resubmit. Pass 2, on the NA marked by
 * reg3: nd_tll = the target's MAC, IN_PORT. Linux accepts the result (test/integration/ovs-ipv6.test.ts).
 */

/** nd_reserved holds the NA's first 32 bits after the checksum: R, S, O */
const NA_FLAGS = { solicited: 0x4000_0000, override: 0x2000_0000, router: 0x8000_0000 } as const;
const TARGET_LLA_OPTION = 2;
const ANSWERING = 1;

/** the ND fields every ND flow matches first (prerequisites: OVS checks them while parsing a match) */
export const ICMP6: MatchSpec = { eth_type: ETH.ipv6, ip_proto: IP_PROTO.icmp6 };

export const ND_MATCH_FIELDS = ['ipv6_src', 'ip_proto', 'icmpv6_type', 'ipv6_nd_target', REG.ndAnswer] as const;

/** Pass 1: the NS for `target` becomes its NA from `mac`, and is looked up again for pass 2. */
export function ndAnswerActions(pipeline: Pipeline, mac: string, target: string, router: boolean): Action[] {
  const flags = NA_FLAGS.solicited | NA_FLAGS.override | (router ? NA_FLAGS.router : 0);
  return [
    moveField('eth_src', 'eth_dst', 48),
    { type: 'set_field', field: { field: 'eth_src', value: mac } },
    moveField('ipv6_src', 'ipv6_dst', 128),
    { type: 'set_field', field: { field: 'ipv6_src', value: target } },
    { type: 'set_field', field: { field: 'icmpv6_type', value: ICMPV6.na } },
    { type: 'set_field', field: { field: 'nd_reserved', value: flags >>> 0 } },
    { type: 'set_field', field: { field: 'nd_options_type', value: TARGET_LLA_OPTION } },
    { type: 'set_field', field: { field: REG.ndAnswer, value: ANSWERING } },
    { type: 'resubmit_table', inPort: NX_PORT_IN_PORT, tableId: pipeline.table('arp.responder').id },
  ];
}

/** the NS for `target` that pass 1 answers, asked from subnet `subnetKey` of VPC `vni` */
export function nsFor(vni: number, subnetKey: number, target: string): MatchSpec {
  return { metadata: BigInt(vni), [REG.srcSubnet]: subnetKey, icmpv6_type: ICMPV6.ns, ipv6_nd_target: target, ...ICMP6 };
}

/** Pass 2: the NA pass 1 made for `target` gets the target's MAC in its TLL option and goes back. */
export function ndAnswerFinish(f: FlowBuilder, priority: number, vni: number, mac: string, target: string) {
  return f
    .priority(priority)
    .match({ metadata: BigInt(vni), [REG.ndAnswer]: ANSWERING, icmpv6_type: ICMPV6.na, ipv6_nd_target: target, ...ICMP6 })
    .apply({ type: 'set_field', field: { field: 'ipv6_nd_tll', value: mac } }, output(OFPP.IN_PORT))
    .build();
}

/**
 * Every hypervisor: DAD (from ::) is never answered (our addresses come from the model); multicast
 * NS and NA nobody answered, and RAs, never leave. RS go on to the router (l3.gateway), which answers them.
 */
export function ndDropMatches(): MatchSpec[] {
  return [
    { ...ICMP6, ipv6_src: '::', icmpv6_type: ICMPV6.ns },
    { ...ICMP6, icmpv6_type: ICMPV6.ns, eth_dst: MULTICAST },
    { ...ICMP6, icmpv6_type: ICMPV6.na, eth_dst: MULTICAST },
    { ...ICMP6, icmpv6_type: ICMPV6.ra },
  ];
}
