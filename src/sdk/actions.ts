import type { Action, OxmFieldName, PacketOut } from '../openflow';
import { fieldRef } from '../openflow';
import { OFP_NO_BUFFER, OFPCML_NO_BUFFER, OFPP } from '../openflow/constants';

/** Sends the packet out of `port` (a port number, or OFPP.FLOOD, OFPP.IN_PORT, …). */
export function output(port: number): Action {
  return { type: 'output', port, maxLen: 0 };
}

/**
 * Sends the whole packet to the controller, where it arrives on `ctx.events.packetIn$`.
 * `maxLen: OFPCML_NO_BUFFER`: the switch sends every byte and buffers nothing, so a packet-out
 * answers with the frame itself, never a buffer id.
 */
export function toController(): Action {
  return { type: 'output', port: OFPP.CONTROLLER, maxLen: OFPCML_NO_BUFFER };
}

export interface PacketOutOptions {
  /** the port to send the frame out of (a number, or OFPP.FLOOD, OFPP.IN_PORT, …) */
  readonly to: number;
  /** the port the frame counts as arriving on (flooding skips it; OFPP.IN_PORT sends back there); default OFPP.CONTROLLER */
  readonly inPort?: number;
}

/** The PACKET_OUT that sends `frame` (a whole Ethernet frame) out of `to`; `ctx.packetOut` sends it. */
export function packetOut(frame: Buffer, { to, inPort = OFPP.CONTROLLER }: PacketOutOptions): PacketOut {
  return { type: 'PACKET_OUT', xid: 0, bufferId: OFP_NO_BUFFER, inPort, actions: [output(to)], data: frame };
}

const ARP_REPLY = 2;
const move = (src: OxmFieldName, dst: OxmFieldName, nBits: number): Action => ({ type: 'reg_move', src: fieldRef(src), dst: fieldRef(dst), nBits, srcOfs: 0, dstOfs: 0 });
// actions are immutable data: the ones every answer shares are built once
const TO_ASKER = move('eth_src', 'eth_dst', 48);
const AS_REPLY: Action = { type: 'set_field', field: { field: 'arp_op', value: ARP_REPLY } };
const ASKER_MAC = move('arp_sha', 'arp_tha', 48);
const ASKER_IP = move('arp_spa', 'arp_tpa', 32);
const BACK = output(OFPP.IN_PORT);

/** The actions that turn an ARP request into its reply in place (`ip` is at `mac`) and send it back where it came from. */
export function arpAnswer(mac: string, ip: string): Action[] {
  return [
    TO_ASKER,
    { type: 'set_field', field: { field: 'eth_src', value: mac } },
    AS_REPLY,
    ASKER_MAC,
    ASKER_IP,
    { type: 'set_field', field: { field: 'arp_sha', value: mac } },
    { type: 'set_field', field: { field: 'arp_spa', value: ip } },
    BACK,
  ];
}
