// Owner: actions helper. Converts actions and instructions into Ryu's JSON shape.
import type { Action, Instruction } from '../../../src/openflow';

export function actionToRyu(_a: Action): unknown {
  throw new Error('not implemented');
}
export function instructionToRyu(_i: Instruction): unknown {
  throw new Error('not implemented');
}
