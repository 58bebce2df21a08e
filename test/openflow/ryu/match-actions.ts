// Owner: OXM / actions helpers. Converters for Match, OXM TLVs, actions and instructions into Ryu's JSON shape.
import type { Action, Instruction, Match } from '../../../src/openflow';

export function matchToRyu(_m: Match): unknown {
  throw new Error('not implemented');
}
export function actionToRyu(_a: Action): unknown {
  throw new Error('not implemented');
}
export function instructionToRyu(_i: Instruction): unknown {
  throw new Error('not implemented');
}
