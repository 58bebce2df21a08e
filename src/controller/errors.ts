import { OFPET, OFPT, type ErrorMsg, type OfDecodeError, type OfMessageType } from '../openflow';

/** 16 hex digits, as ovs-ofctl prints a datapath id. */
export function formatDpid(dpid: bigint): string {
  return dpid.toString(16).padStart(16, '0');
}

/** What every runtime error can say about where it happened. */
export interface SessionErrorContext {
  /** known once FEATURES_REPLY arrived */
  dpid?: bigint;
  xid?: number;
  /** the message concerned: the request for request failures, the offending message otherwise */
  msgType?: OfMessageType;
  /** peer address ('127.0.0.1:53122', 'unix:/run/ovs/br-int.mgmt') */
  remote?: string;
}

function describeContext(c: SessionErrorContext): string {
  const parts: string[] = [];
  if (c.dpid !== undefined) parts.push(`dpid=${formatDpid(c.dpid)}`);
  if (c.msgType !== undefined) parts.push(`type=${c.msgType}`);
  if (c.xid !== undefined) parts.push(`xid=${c.xid}`);
  if (c.remote !== undefined) parts.push(`remote=${c.remote}`);
  return parts.length ? ` (${parts.join(' ')})` : '';
}

/** Base of every error the runtime reports; `errors$` carries only these. */
export abstract class ControllerError extends Error {
  readonly dpid: bigint | undefined;
  readonly xid: number | undefined;
  readonly msgType: OfMessageType | undefined;
  readonly remote: string | undefined;

  constructor(message: string, context: SessionErrorContext, options?: { cause?: unknown }) {
    super(message + describeContext(context), options);
    this.dpid = context.dpid;
    this.xid = context.xid;
    this.msgType = context.msgType;
    this.remote = context.remote;
  }
}

/** OFPT name for a type code read off the wire, when the code is known. */
export function messageTypeName(code: number): OfMessageType | undefined {
  return OFPT[code] as OfMessageType | undefined;
}

/** The switch answered with OFPT_ERROR: for an awaited request (rejection) or a fire-and-forget message (errors$). */
export class OfSwitchError extends ControllerError {
  override readonly name = 'OfSwitchError';
  readonly errType: number;
  /** exp_type for OFPET_EXPERIMENTER */
  readonly code: number;
  readonly experimenter: number | undefined;
  /** the start of the offending message, as the switch echoed it */
  readonly data: Buffer;

  constructor(error: ErrorMsg, context: SessionErrorContext) {
    const typeName = OFPET[error.errType] ?? String(error.errType);
    super(`switch answered OFPET_${typeName} code ${error.code}`, context);
    this.errType = error.errType;
    this.code = error.code;
    this.experimenter = error.experimenter;
    this.data = error.data;
  }
}

export class RequestTimeoutError extends ControllerError {
  override readonly name = 'RequestTimeoutError';
  constructor(
    readonly timeoutMs: number,
    context: SessionErrorContext,
  ) {
    super(`no reply within ${timeoutMs} ms`, context);
  }
}

/** Why a session ended; carried by switchDown$ and by SessionClosedError. */
export type CloseReason =
  | 'peer_closed'
  | 'socket_error'
  | 'echo_timeout'
  | 'handshake_timeout'
  | 'version_mismatch'
  | 'handshake_failed'
  | 'auxiliary_rejected'
  | 'framing_error'
  | 'replaced'
  | 'budget_exceeded'
  | 'dpid_in_use'
  | 'closed_by_controller'
  | 'controller_shutdown';

/** A request, send or drain wait that cannot complete because the session is (or got) closed. */
export class SessionClosedError extends ControllerError {
  override readonly name = 'SessionClosedError';
  constructor(
    readonly reason: CloseReason,
    context: SessionErrorContext,
  ) {
    super(`session closed: ${reason}`, context);
  }
}

/** `send` refused a message: the bytes queued for this switch reached maxBufferedBytes. */
export class SendBufferFullError extends ControllerError {
  override readonly name = 'SendBufferFullError';
  constructor(
    readonly bufferedBytes: number,
    readonly limit: number,
    context: SessionErrorContext,
  ) {
    super(`send buffer full: ${bufferedBytes} bytes queued, limit ${limit}; await session.drained()`, context);
  }
}

/** A message from the switch that failed to decode. `fatal` when the framing broke and the session was closed. */
export class MalformedMessageError extends ControllerError {
  override readonly name = 'MalformedMessageError';
  constructor(
    readonly decodeError: OfDecodeError,
    readonly fatal: boolean,
    context: SessionErrorContext,
  ) {
    super(`malformed message from switch: ${decodeError.toString()}`, context, { cause: decodeError });
  }
}

export type HandshakeFailure = 'version_mismatch' | 'not_hello' | 'auxiliary_rejected' | 'timeout' | 'request_failed';

export class HandshakeError extends ControllerError {
  override readonly name = 'HandshakeError';
  constructor(
    readonly failure: HandshakeFailure,
    detail: string,
    context: SessionErrorContext,
    cause?: unknown,
  ) {
    super(`handshake failed (${failure}): ${detail}`, context, cause === undefined ? undefined : { cause });
  }
}

/** Transport trouble: a socket error, a failed dial, a rejected TLS client. */
export class ConnectionError extends ControllerError {
  override readonly name = 'ConnectionError';
  constructor(detail: string, context: SessionErrorContext, cause?: unknown) {
    super(detail, context, cause === undefined ? undefined : { cause });
  }
}

/** The per-session and controller-wide limits on what a switch can make us hold (see ControllerOptions). */
export type BudgetName =
  | 'maxMultipartBytes'
  | 'maxTotalMultipartBytes'
  | 'maxPendingRequests'
  | 'maxTotalPendingRequests'
  | 'maxBufferedBytes'
  | 'maxTotalBufferedBytes';

/** A session went over a memory budget and was closed; the controller and the other sessions go on. */
export class SessionBudgetError extends ControllerError {
  override readonly name = 'SessionBudgetError';
  constructor(
    readonly budget: BudgetName,
    readonly limit: number,
    /** what the session (or, for a maxTotal budget, all sessions) would hold */
    readonly amount: number,
    context: SessionErrorContext,
  ) {
    super(`over budget ${budget}: ${amount} > ${limit}`, context);
  }
}

/** A connection claimed the dpid of a session that still answers echoes; the newcomer is refused. */
export class DpidInUseError extends ControllerError {
  override readonly name = 'DpidInUseError';
  constructor(
    /** the address of the live session that keeps the dpid */
    readonly holder: string,
    context: SessionErrorContext,
  ) {
    super(`dpid already connected from ${holder}, which answered an echo; refusing this connection`, context);
  }
}

/** `request` was given an xid that is still awaiting its reply. */
export class XidInUseError extends ControllerError {
  override readonly name = 'XidInUseError';
  constructor(context: SessionErrorContext) {
    super('xid already awaits a reply', context);
  }
}

/** An option or dial target that cannot work (thrown synchronously by the API call). */
export class ControllerConfigError extends Error {
  override readonly name = 'ControllerConfigError';
}

/** An exception while handling a switch's message that is no protocol error (a bug); reported, never thrown into socket handlers. */
export class InternalError extends ControllerError {
  override readonly name = 'InternalError';
  constructor(cause: unknown, context: SessionErrorContext) {
    super(`internal error: ${(cause as Error)?.message ?? String(cause)}`, context, { cause });
  }
}
