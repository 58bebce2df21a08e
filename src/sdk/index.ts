/**
 * The zonemesh SDK, `zonemesh/sdk`: everything an app is written with (docs/writing-apps.md).
 * Apps import from here only; `zonemesh/testing` holds what their tests need besides.
 */
export * from './app';
export * from './actions';
export * from './cookie';
export * from './counters';
export * from './errors';
export * from './flow';
export * from './group';
export * from './match';
export * from './model';
export * from './packet-in';
export * from './pipeline';
export * from './placement';
export * from './incremental';
export * from './sim';
export * from './di';
export * from './mac-table';
export * from './health-source';
export * from './tunnel-health';
export * from './backend-health';
export * from './vsctl';

// OpenFlow: the reserved ports and constants flows and packet-outs use, and the message types apps send
export { OFPP, OFP_NO_BUFFER, OFPCML_NO_BUFFER, OFPTT_ALL, OFPFF_SEND_FLOW_REM } from '../openflow/constants';
export { NX_CT_F_COMMIT, NX_CT_RECIRC_NONE, NX_NAT_F_SRC } from '../openflow/nicira';
export { OFPPR } from '../openflow/port';
export type { Action } from '../openflow/actions';
export type { Instruction } from '../openflow/instructions';
export type { OfMessage, OfMessageOf, OfMessageType } from '../openflow/message';
export type { Bucket, GroupMod, GroupType } from '../openflow/messages/group-meter-queue';
export type { FlowMod, PacketOut, FlowRemoved, PortStatus, PacketIn as PacketInMessage } from '../openflow/messages/flow';
export type { Port } from '../openflow/port';
export type { Match, OxmFieldName, OxmValueTypes } from '../openflow/oxm';

// packets: parse (parsePacket, findLayer, ethernetHeader) and build (buildPacket, arpReply, …) Ethernet frames
export * from '../packet';

// the network model apps compile from, and its IPv4 arithmetic (addresses as 32-bit numbers)
export type { AclRule, ExternalGateway, ExternalNetwork, FloatingIp, Hypervisor, NetworkModel, SnatAddress, Subnet, Vpc, VpcEgress, VmPort, Zone } from '../model/types';
export type { HealthCheck, LoadBalancer, LoadBalancerBackend } from '../model/types';
export { EMPTY_MODEL } from '../model/types';
export { hasIpv4, portHasIpv4, type WithIpv4Subnet, type WithIpv4Port } from '../model/families';
export { TUNNEL_OFPORT, conntrackZone, derivedKey } from '../model/derived';
export type { ModelStore } from '../model/store';
export { ModelValidationError } from '../model/errors';
export { parseIpv4, parseCidr, cidrContains, prefixMask, floatingIpMac, type Ipv4Cidr } from '../model/addressing';
export { routerLinkLocal } from '../model/ipv6';

// the controller's events, as apps receive them on ctx.events
export type { FlowRemovedEvent, PacketInEvent, PortStatusEvent, SwitchDownEvent, SwitchUpEvent } from '../controller/events';
export { forSwitch } from '../controller/events';
export { formatDpid } from '../controller/errors';
// bounded logging of lines that can repeat (one per packet, per pair…)
export { LogLimiter, type LogLimits } from '../controller/log-limiter';
