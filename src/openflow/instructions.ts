/** OpenFlow 1.3 instructions (ofp_instruction_*). */
import { decodeActions, encodeActions, type Action } from './actions';
import { OfDecodeError, OfEncodeError } from './errors';
import { Reader, type Writer } from './wire';

export enum OFPIT {
  GOTO_TABLE = 1,
  WRITE_METADATA = 2,
  WRITE_ACTIONS = 3,
  APPLY_ACTIONS = 4,
  CLEAR_ACTIONS = 5,
  METER = 6,
  EXPERIMENTER = 0xffff,
}

export type Instruction =
  | { type: 'goto_table'; tableId: number }
  | { type: 'write_metadata'; metadata: bigint; metadataMask: bigint }
  | { type: 'write_actions'; actions: Action[] }
  | { type: 'apply_actions'; actions: Action[] }
  | { type: 'clear_actions' }
  | { type: 'meter'; meterId: number }
  /** kept raw: the bytes after the experimenter id */
  | { type: 'experimenter'; experimenter: number; data: Buffer };

export type InstructionType = Instruction['type'];

const OFP_INSTRUCTION_HEADER_LEN = 8;
const OFP_INSTRUCTION_WRITE_METADATA_LEN = 24;

/** decodes instructions until the reader's window is exhausted */
export function decodeInstructions(r: Reader): Instruction[] {
  const insts: Instruction[] = [];
  while (r.remaining > 0) insts.push(decodeInstruction(r));
  return insts;
}

function decodeInstruction(r: Reader): Instruction {
  const at = r.offset;
  const start = r.pos;
  const room = r.remaining;
  if (room < OFP_INSTRUCTION_HEADER_LEN) {
    throw new OfDecodeError('bad_length', `${room} trailing bytes cannot hold an instruction`, { offset: at });
  }
  const type = r.u16();
  const len = r.u16();
  if (len < OFP_INSTRUCTION_HEADER_LEN || (len & 7) !== 0) {
    throw new OfDecodeError('bad_length', `instruction type ${type}: length ${len} is not a multiple of 8 (min 8)`, {
      offset: at,
    });
  }
  if (len > room) {
    throw new OfDecodeError('bad_length', `instruction type ${type}: length ${len} overruns its list (${room} bytes left)`, {
      offset: at,
    });
  }
  const end = start + len;
  let inst: Instruction;
  switch (type) {
    case OFPIT.GOTO_TABLE:
      expectInstructionLen(len, 8, 'goto_table', at);
      inst = { type: 'goto_table', tableId: r.u8() };
      break;
    case OFPIT.WRITE_METADATA: {
      expectInstructionLen(len, OFP_INSTRUCTION_WRITE_METADATA_LEN, 'write_metadata', at);
      r.skip(4);
      const metadata = r.u64();
      inst = { type: 'write_metadata', metadata, metadataMask: r.u64() };
      break;
    }
    case OFPIT.WRITE_ACTIONS:
    case OFPIT.APPLY_ACTIONS: {
      const actions = decodeActions(new Reader(r.buf, start + OFP_INSTRUCTION_HEADER_LEN, end, r.base));
      inst = { type: type === OFPIT.APPLY_ACTIONS ? 'apply_actions' : 'write_actions', actions };
      break;
    }
    case OFPIT.CLEAR_ACTIONS:
      expectInstructionLen(len, 8, 'clear_actions', at);
      inst = { type: 'clear_actions' };
      break;
    case OFPIT.METER:
      expectInstructionLen(len, 8, 'meter', at);
      inst = { type: 'meter', meterId: r.u32() };
      break;
    case OFPIT.EXPERIMENTER: {
      const experimenter = r.u32();
      inst = { type: 'experimenter', experimenter, data: r.copy(len - 8) };
      break;
    }
    default:
      throw new OfDecodeError('bad_instruction', `unknown instruction type ${type}`, { offset: at });
  }
  r.pos = end;
  return inst;
}

function expectInstructionLen(len: number, expected: number, what: string, at: number): void {
  if (len !== expected) throw new OfDecodeError('bad_length', `${what}: length ${len}, expected ${expected}`, { offset: at });
}

export function encodeInstructions(w: Writer, insts: readonly Instruction[]): void {
  for (const inst of insts) encodeInstruction(w, inst);
}

function encodeInstruction(w: Writer, inst: Instruction): void {
  switch (inst.type) {
    case 'goto_table':
      w.u16(OFPIT.GOTO_TABLE).u16(8).u8(inst.tableId).zeros(3);
      return;
    case 'write_metadata':
      w.u16(OFPIT.WRITE_METADATA).u16(OFP_INSTRUCTION_WRITE_METADATA_LEN).zeros(4).u64(inst.metadata).u64(inst.metadataMask);
      return;
    case 'write_actions':
    case 'apply_actions': {
      const start = w.claim(8);
      const b = w.buf;
      b[start] = 0;
      b[start + 1] = inst.type === 'apply_actions' ? OFPIT.APPLY_ACTIONS : OFPIT.WRITE_ACTIONS;
      for (let i = start + 4; i < start + 8; i++) b[i] = 0;
      encodeActions(w, inst.actions);
      w.patchU16(start + 2, w.pos - start);
      return;
    }
    case 'clear_actions':
      w.u16(OFPIT.CLEAR_ACTIONS).u16(8).zeros(4);
      return;
    case 'meter':
      w.u16(OFPIT.METER).u16(8).u32(inst.meterId);
      return;
    case 'experimenter': {
      const start = w.pos;
      w.u16(OFPIT.EXPERIMENTER).u16(0).u32(inst.experimenter).bytes(inst.data).padTo(8, start);
      w.patchU16(start + 2, w.pos - start);
      return;
    }
    default:
      throw new OfEncodeError(`unknown instruction type '${String((inst as { type?: unknown }).type)}'`, { field: 'type' });
  }
}
