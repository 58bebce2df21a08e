// Owner: multipart helper. Types below are the agreed API for the runtime; codecs to be implemented.
import type { AnyMessageCodec } from '../codec';
import type { Instruction } from '../instructions';
import type { Match } from '../oxm';
import type { Port } from '../port';

export interface FlowStatsRequestBody {
  mpType: 'FLOW';
  tableId: number;
  outPort: number;
  outGroup: number;
  cookie: bigint;
  cookieMask: bigint;
  match: Match;
}

export interface FlowStats {
  tableId: number;
  durationSec: number;
  durationNsec: number;
  priority: number;
  idleTimeout: number;
  hardTimeout: number;
  flags: number;
  cookie: bigint;
  packetCount: bigint;
  byteCount: bigint;
  match: Match;
  instructions: Instruction[];
}

export type MultipartRequestBody =
  | { mpType: 'DESC' }
  | FlowStatsRequestBody
  | { mpType: 'PORT_DESC' };
// … helper adds every other multipart request type

export type MultipartReplyBody =
  | { mpType: 'DESC'; mfrDesc: string; hwDesc: string; swDesc: string; serialNum: string; dpDesc: string }
  | { mpType: 'FLOW'; flows: FlowStats[] }
  | { mpType: 'PORT_DESC'; ports: Port[] };
// … helper adds every other multipart reply type

export interface MultipartRequest { type: 'MULTIPART_REQUEST'; xid: number; flags: number; body: MultipartRequestBody }
export interface MultipartReply { type: 'MULTIPART_REPLY'; xid: number; flags: number; body: MultipartReplyBody }

export type MultipartMessage = MultipartRequest | MultipartReply;

export const multipartCodecs: readonly AnyMessageCodec[] = [];
