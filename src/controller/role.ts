import { OFPBRC, OFPCR_ROLE, OFPET, OFPRRFC, isBundle, isCtFlush, type OfMessage, type RoleReply, type RoleStatus } from '../openflow';
import { ControllerError, formatDpid, type OfSwitchError, type SessionErrorContext } from './errors';

/**
 * A connection's role at its switch (OF1.3 §6.3.5). Every connection starts EQUAL (full access);
 * a MASTER request demotes the switch's other MASTER to SLAVE; a SLAVE may read but not write.
 */
export type ControllerRole = 'equal' | 'master' | 'slave';

export const ROLE_CODE: Readonly<Record<ControllerRole, OFPCR_ROLE>> = { equal: OFPCR_ROLE.EQUAL, master: OFPCR_ROLE.MASTER, slave: OFPCR_ROLE.SLAVE };

function roleOfCode(code: number): ControllerRole | undefined {
  return code === OFPCR_ROLE.EQUAL ? 'equal' : code === OFPCR_ROLE.MASTER ? 'master' : code === OFPCR_ROLE.SLAVE ? 'slave' : undefined;
}

const U64_MAX = (1n << 64n) - 1n;

/** A generation id that cannot fence: 0 (what a controller without an election sends) or beyond a u64. */
export class GenerationIdError extends ControllerError {
  override readonly name = 'GenerationIdError';
  constructor(
    readonly generationId: bigint,
    detail: string,
    context: SessionErrorContext = {},
  ) {
    super(`generation id ${generationId}: ${detail}`, context);
  }
}

/** Refuses generation ids that cannot fence a stale master. */
export function checkGenerationId(generationId: bigint, context: SessionErrorContext = {}): void {
  if (generationId === 0n) throw new GenerationIdError(generationId, 'never 0: 0 fences nobody (every controller without an election sends it)', context);
  if (generationId < 0n || generationId > U64_MAX) throw new GenerationIdError(generationId, 'not a u64', context);
}

export type RoleRefusal = 'stale' | 'unsup' | 'bad_role' | 'other';
const REFUSALS: Readonly<Record<number, RoleRefusal>> = { [OFPRRFC.STALE]: 'stale', [OFPRRFC.UNSUP]: 'unsup', [OFPRRFC.BAD_ROLE]: 'bad_role' };

/** The switch refused a ROLE_REQUEST (OFPET_ROLE_REQUEST_FAILED, or any other error it answered). */
export class RoleRequestError extends ControllerError {
  override readonly name = 'RoleRequestError';
  readonly refusal: RoleRefusal;
  constructor(
    readonly role: ControllerRole,
    readonly generationId: bigint,
    readonly switchError: OfSwitchError,
    context: SessionErrorContext,
  ) {
    const refusal = switchError.errType === OFPET.ROLE_REQUEST_FAILED ? REFUSALS[switchError.code] ?? 'other' : 'other';
    super(`role request ${role} with generation ${generationId} refused (${refusal}): ${switchError.message}`, context, { cause: switchError });
    this.refusal = refusal;
  }
}

/** A write (flow-mod, group-mod, packet-out, bundle …) not sent: this connection is SLAVE at its switch. */
export class NotMasterError extends ControllerError {
  override readonly name = 'NotMasterError';
  constructor(context: SessionErrorContext) {
    super('not sent: this controller is slave for the switch', context);
  }
}

/** What OVS refuses from a SLAVE with OFPBRC_IS_SLAVE (ofproto's reject_slave_controller). */
const WRITES: ReadonlySet<OfMessage['type']> = new Set(['FLOW_MOD', 'GROUP_MOD', 'PORT_MOD', 'TABLE_MOD', 'METER_MOD', 'PACKET_OUT']);

/** Those, bundles, and a conntrack flush, which changes the switch's state: only a master sends them. */
export function isWrite(msg: OfMessage): boolean {
  return WRITES.has(msg.type) || (msg.type === 'EXPERIMENTER' && (isBundle(msg) || isCtFlush(msg)));
}

/** OFPBRC_IS_SLAVE: the switch refused a write because this connection is SLAVE. */
export function isSlaveError(e: { readonly errType: number; readonly code: number }): boolean {
  return e.errType === OFPET.BAD_REQUEST && e.code === OFPBRC.IS_SLAVE;
}

/** How a connection learnt it is no longer master. */
export type RoleLossReason = 'role_status' | 'is_slave' | 'stale';

/** "lost mastership of 0x… to generation N (reason)": one wording for every loss. */
export function describeLoss(dpid: bigint, reason: string, generationId: bigint | undefined, ours: bigint | undefined): string {
  const to = generationId !== undefined ? ` to generation ${generationId}` : ours !== undefined ? ` to a generation above ${ours}` : '';
  return `lost mastership of 0x${formatDpid(dpid)}${to} (${reason})`;
}

/**
 * One connection's role as the switch last told it, updated synchronously as messages are
 * dispatched (a role status right behind a role reply in one read is applied after it, never
 * overwritten by it). Anything but a MASTER request fences writes when it is sent.
 */
export class RoleState {
  role: ControllerRole = 'equal';
  /** the switch's master election generation, from the last reply or status */
  generationId: bigint | undefined;

  constructor(private readonly lost: (reason: RoleLossReason, generationId: bigint | undefined) => void) {}

  requested(role: ControllerRole): void {
    if (role === 'slave') this.role = 'slave';
  }

  replied(reply: RoleReply): void {
    this.role = roleOfCode(reply.role) ?? this.role;
    this.generationId = reply.generationId;
  }

  /** A refused request; a refused MASTER claim with a stale generation is a loss. */
  refused(error: RoleRequestError): void {
    if (error.role !== 'master' || error.refusal !== 'stale') return;
    this.role = this.role === 'master' ? 'slave' : this.role;
    this.lost('stale', undefined);
  }

  status(status: RoleStatus): void {
    const was = this.role;
    this.role = roleOfCode(status.role) ?? this.role;
    this.generationId = status.generationId;
    if (was !== 'slave' && this.role === 'slave') this.lost('role_status', status.generationId);
  }

  /** OFPBRC_IS_SLAVE for one of our writes: the switch demoted us without telling */
  isSlave(): void {
    if (this.role === 'slave') return; // the loss is known; the rest of a batch in flight says it again
    this.role = 'slave';
    this.lost('is_slave', undefined);
  }
}
