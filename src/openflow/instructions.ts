// STUB (owner: actions helper). Types are the agreed API; implementations to be filled in.
import type { Action } from './actions';
import { OfDecodeError } from './errors';
import type { Reader, Writer } from './wire';

export type Instruction =
  | { type: 'goto_table'; tableId: number }
  | { type: 'write_metadata'; metadata: bigint; metadataMask: bigint }
  | { type: 'write_actions'; actions: Action[] }
  | { type: 'apply_actions'; actions: Action[] }
  | { type: 'clear_actions' }
  | { type: 'meter'; meterId: number }
  | { type: 'experimenter'; experimenter: number; data: Buffer };

export function decodeInstructions(_r: Reader): Instruction[] {
  throw new OfDecodeError('bad_instruction', 'not implemented');
}
export function encodeInstructions(_w: Writer, _insts: readonly Instruction[]): void {
  throw new Error('not implemented');
}
