// Owner: messages helper. Types below are the agreed API for the runtime; codecs to be implemented.
import type { AnyMessageCodec } from '../codec';

/** OFPHET_VERSIONBITMAP elements are decoded; other hello elements are kept raw. */
export type HelloElement =
  | { type: 'versionbitmap'; versions: number[] }
  | { type: 'unknown'; elemType: number; data: Buffer };

export interface Hello { type: 'HELLO'; xid: number; elements: HelloElement[] }

export interface ErrorMsg {
  type: 'ERROR';
  xid: number;
  errType: number;
  /** for OFPET_EXPERIMENTER (0xffff) this is exp_type */
  code: number;
  /** present only for OFPET_EXPERIMENTER */
  experimenter?: number;
  data: Buffer;
}

export interface EchoRequest { type: 'ECHO_REQUEST'; xid: number; data: Buffer }
export interface EchoReply { type: 'ECHO_REPLY'; xid: number; data: Buffer }
export interface Experimenter { type: 'EXPERIMENTER'; xid: number; experimenter: number; expType: number; data: Buffer }
export interface BarrierRequest { type: 'BARRIER_REQUEST'; xid: number }
export interface BarrierReply { type: 'BARRIER_REPLY'; xid: number }
export interface FeaturesRequest { type: 'FEATURES_REQUEST'; xid: number }
export interface FeaturesReply {
  type: 'FEATURES_REPLY';
  xid: number;
  datapathId: bigint;
  nBuffers: number;
  nTables: number;
  auxiliaryId: number;
  capabilities: number;
  reserved: number;
}
export interface RoleRequest { type: 'ROLE_REQUEST'; xid: number; role: number; generationId: bigint }
export interface RoleReply { type: 'ROLE_REPLY'; xid: number; role: number; generationId: bigint }
// … helper adds: GET_CONFIG_*, SET_CONFIG, GET_ASYNC_*, SET_ASYNC, TABLE_MOD, PORT_MOD

export type BasicMessage =
  | Hello | ErrorMsg | EchoRequest | EchoReply | Experimenter | BarrierRequest | BarrierReply
  | FeaturesRequest | FeaturesReply | RoleRequest | RoleReply;

export const basicCodecs: readonly AnyMessageCodec[] = [];
