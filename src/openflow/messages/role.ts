// Controller roles (OF1.3 §6.3.5, §7.3.9) and the role-status notification OVS sends OF1.3
// controllers: the ONF extension ONFT_ROLE_STATUS, an EXPERIMENTER message (ONF, exp_type 1911)
// carrying OF1.4's ofp_role_status body. OF1.3 itself has no role status.
import { OFP_HEADER_LEN, OFPT, ONF_VENDOR_ID } from '../constants';
import { OfDecodeError, OfEncodeError } from '../errors';
import { Writer } from '../wire';
import { type Experimenter, experimenterBody } from './basic';

/** ofp_controller_role */
export enum OFPCR_ROLE {
  NOCHANGE = 0,
  EQUAL = 1,
  MASTER = 2,
  SLAVE = 3,
}

/** OFPET_ROLE_REQUEST_FAILED codes */
export enum OFPRRFC {
  /** the generation id is older than one the switch has seen */
  STALE = 0,
  UNSUP = 1,
  BAD_ROLE = 2,
}

/** ofp_controller_role_reason: why a role status was sent */
export enum OFPCRR {
  /** another controller asked to be master */
  MASTER_REQUEST = 0,
  CONFIG = 1,
  EXPERIMENTER = 2,
}

export const ONFT_ROLE_STATUS = 1911;

/** role u32, reason u8, pad 3, generation_id u64 */
export const ROLE_STATUS_FIXED_LEN = 16;
const U64_MAX = (1n << 64n) - 1n;

export interface RoleStatus {
  xid: number;
  /** OFPCR_ROLE: the role the receiving connection has now */
  role: number;
  /** OFPCRR */
  reason: number;
  /** the switch's current master election generation id */
  generationId: bigint;
  /** raw ofp_role_prop TLVs, if any (OVS sends none) */
  properties: Buffer;
}

export function isRoleStatus(exp: Experimenter): boolean {
  return exp.experimenter === ONF_VENDOR_ID && exp.expType === ONFT_ROLE_STATUS;
}

export function roleStatus(xid: number, role: OFPCR_ROLE, reason: OFPCRR, generationId: bigint): Experimenter {
  if (!Number.isInteger(role) || role < 0 || role > 0xffffffff) throw new OfEncodeError(`role ${role} is not a u32`, { field: 'role' });
  if (!Number.isInteger(reason) || reason < 0 || reason > 0xff) throw new OfEncodeError(`reason ${reason} is not a u8`, { field: 'reason' });
  if (generationId < 0n || generationId > U64_MAX) throw new OfEncodeError(`generation id ${generationId} is not a u64`, { field: 'generationId' });
  const w = new Writer(ROLE_STATUS_FIXED_LEN).u32(role).u8(reason).zeros(3).u64(generationId);
  return { type: 'EXPERIMENTER', xid, experimenter: ONF_VENDOR_ID, expType: ONFT_ROLE_STATUS, data: Buffer.from(w.finish()) };
}

/** Decodes an ONFT_ROLE_STATUS; errors carry the EXPERIMENTER type, the xid and offsets from the message start. */
export function decodeRoleStatus(exp: Experimenter): RoleStatus | OfDecodeError {
  const ctx = { msgType: OFPT.EXPERIMENTER, xid: exp.xid };
  if (!isRoleStatus(exp)) {
    return new OfDecodeError('unknown_type', `experimenter 0x${exp.experimenter.toString(16)} exp_type ${exp.expType} is not ONFT_ROLE_STATUS`, { ...ctx, offset: OFP_HEADER_LEN });
  }
  const r = experimenterBody(exp);
  if (r.remaining < ROLE_STATUS_FIXED_LEN) {
    return new OfDecodeError('bad_length', `role status: body is ${r.remaining} bytes, need at least ${ROLE_STATUS_FIXED_LEN}`, { ...ctx, offset: r.offset });
  }
  const roleAt = r.offset;
  const role = r.u32();
  if (OFPCR_ROLE[role] === undefined) return new OfDecodeError('bad_value', `role status: role ${role} is not an OFPCR_ROLE_* value`, { ...ctx, offset: roleAt });
  const reason = r.u8();
  r.skip(3);
  const generationId = r.u64();
  return { xid: exp.xid, role, reason, generationId, properties: r.copy(r.remaining) };
}
