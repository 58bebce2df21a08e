import type { Action, PacketOut } from '../openflow';
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
