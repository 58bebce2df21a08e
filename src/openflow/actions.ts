// STUB (owner: actions helper). Types are the agreed API; implementations to be filled in.
import { OfDecodeError } from './errors';
import type { OxmTlv } from './oxm';
import type { Reader, Writer } from './wire';

export type Action =
  | { type: 'output'; port: number; maxLen: number }
  | { type: 'set_field'; field: OxmTlv }
  // … the helper completes this union (all OF1.3 actions, Nicira actions, unknown experimenter)
  ;

/** decodes actions until the reader's window is exhausted */
export function decodeActions(_r: Reader): Action[] {
  throw new OfDecodeError('bad_action', 'not implemented');
}
export function encodeActions(_w: Writer, _actions: readonly Action[]): void {
  throw new Error('not implemented');
}
