// Owner: messages helper. Types below are the agreed API for the runtime; codecs to be implemented.
import type { AnyMessageCodec } from '../codec';
import type { Action } from '../actions';
import type { Instruction } from '../instructions';
import type { Match } from '../oxm';
import type { Port } from '../port';

export type FlowModCommand = 'add' | 'modify' | 'modify_strict' | 'delete' | 'delete_strict';

export interface FlowMod {
  type: 'FLOW_MOD';
  xid: number;
  cookie: bigint;
  cookieMask: bigint;
  tableId: number;
  command: FlowModCommand;
  idleTimeout: number;
  hardTimeout: number;
  priority: number;
  bufferId: number;
  outPort: number;
  outGroup: number;
  flags: number;
  importance?: never; // OF1.4+, not in 1.3
  match: Match;
  instructions: Instruction[];
}

export interface PacketIn {
  type: 'PACKET_IN';
  xid: number;
  bufferId: number;
  totalLen: number;
  /** OFPR_NO_MATCH 0, OFPR_ACTION 1, OFPR_INVALID_TTL 2 */
  reason: number;
  tableId: number;
  cookie: bigint;
  match: Match;
  data: Buffer;
}

export interface PacketOut {
  type: 'PACKET_OUT';
  xid: number;
  bufferId: number;
  inPort: number;
  actions: Action[];
  data: Buffer;
}

export interface FlowRemoved {
  type: 'FLOW_REMOVED';
  xid: number;
  cookie: bigint;
  priority: number;
  /** OFPRR_IDLE_TIMEOUT 0, HARD_TIMEOUT 1, DELETE 2, GROUP_DELETE 3 */
  reason: number;
  tableId: number;
  durationSec: number;
  durationNsec: number;
  idleTimeout: number;
  hardTimeout: number;
  packetCount: bigint;
  byteCount: bigint;
  match: Match;
}

export interface PortStatus {
  type: 'PORT_STATUS';
  xid: number;
  /** OFPPR_ADD 0, DELETE 1, MODIFY 2 */
  reason: number;
  desc: Port;
}

export type FlowMessage = FlowMod | PacketIn | PacketOut | FlowRemoved | PortStatus;

export const flowCodecs: readonly AnyMessageCodec[] = [];
