import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { defer, type Observable } from 'rxjs';
import {
  Framer,
  OFPCML_NO_BUFFER,
  OFP_VERSION,
  OFPMP,
  OFPMPF_REPLY_MORE,
  OFPPR,
  OFPT,
  OfDecodeError,
  decodeRoleStatus,
  isRoleStatus,
  mergeMultipartReplies,
  type BarrierReply,
  type EchoReply,
  type ErrorMsg,
  type Experimenter,
  type FeaturesReply,
  type FlowRemoved,
  type GetAsyncReply,
  type GetConfigReply,
  type MultipartReply,
  type MultipartReplyBody,
  type MultipartRequestBody,
  type OfMessage,
  type OfMessageOf,
  type OfMessageType,
  type PacketIn,
  type Port,
  type PortStatus,
  type QueueGetConfigReply,
  type RoleReply,
} from '../openflow';
// decodeMessage runs for every message: taken from its module, not through the index's getters (see outbound.ts)
import { decodeMessage } from '../openflow/codec';
import { errorReplyFor, helloFailed } from '../openflow/messages/error-reply';
import type { ControllerConfig } from './config';
import {
  ConnectionError,
  ControllerError,
  HandshakeError,
  InternalError,
  MalformedMessageError,
  OfSwitchError,
  RequestTimeoutError,
  SendBufferFullError,
  SessionBudgetError,
  SessionClosedError,
  XidInUseError,
  formatDpid,
  messageTypeName,
  type BudgetName,
  type CloseReason,
  type SessionErrorContext,
} from './errors';
import type { EventHub } from './events';
import { NotMasterError, ROLE_CODE, RoleRequestError, RoleState, checkGenerationId, isSlaveError, isWrite, type ControllerRole, type RoleLossReason } from './role';
import { errorFields } from './log-limiter';
import { negotiateVersion } from './negotiation';
import { OutboundQueue } from './outbound';

/** HELLO → FEATURES → PORT_DESC → READY; any state → CLOSED. */
export type SessionState = 'HELLO' | 'FEATURES' | 'PORT_DESC' | 'READY' | 'CLOSED';
/** whether the switch connected to us or we dialed it */
export type SessionOrigin = 'accepted' | 'dialed';

export interface CloseInfo {
  readonly reason: CloseReason;
  readonly error: Error | undefined;
  /** the session had reached READY (so switchUp$ and switchDown$ were emitted for it) */
  readonly wasReady: boolean;
}

/** What all sessions of one controller hold together, checked against the maxTotal budgets. */
export interface HeldTotals {
  bufferedBytes: number;
  multipartBytes: number;
  pendingRequests: number;
}

/** What a session needs from the controller that owns it. */
export interface SessionHost {
  readonly config: ControllerConfig;
  readonly hub: EventHub;
  readonly held: HeldTotals;
  /** Decides, once the handshake knows the dpid, whether this session may have it; closes the session if not. */
  admit(session: SwitchSession): Promise<void>;
  sessionReady(session: SwitchSession): void;
  sessionClosed(session: SwitchSession, info: CloseInfo): void;
}

/** The reply each request type gets. Requests without a reply (FLOW_MOD …) are sent with `send` and checked with `barrier`. */
interface ReplyTypes {
  FEATURES_REQUEST: FeaturesReply;
  MULTIPART_REQUEST: MultipartReply;
  BARRIER_REQUEST: BarrierReply;
  ECHO_REQUEST: EchoReply;
  ROLE_REQUEST: RoleReply;
  GET_CONFIG_REQUEST: GetConfigReply;
  GET_ASYNC_REQUEST: GetAsyncReply;
  QUEUE_GET_CONFIG_REQUEST: QueueGetConfigReply;
  /** experimenter requests (bundle control …) are answered by an experimenter message with their xid */
  EXPERIMENTER: Experimenter;
}
export type RequestType = keyof ReplyTypes;
export type RequestMessage = OfMessageOf<RequestType>;
export type ReplyTo<T extends RequestMessage> = ReplyTypes[T['type']];
/** The reply body matching a multipart request body. */
export type MultipartReplyFor<B extends MultipartRequestBody> = Extract<MultipartReplyBody, { mpType: B['mpType'] }>;

const REPLY_TYPE: { readonly [K in RequestType]: ReplyTypes[K]['type'] } = {
  FEATURES_REQUEST: 'FEATURES_REPLY',
  MULTIPART_REQUEST: 'MULTIPART_REPLY',
  BARRIER_REQUEST: 'BARRIER_REPLY',
  ECHO_REQUEST: 'ECHO_REPLY',
  ROLE_REQUEST: 'ROLE_REPLY',
  GET_CONFIG_REQUEST: 'GET_CONFIG_REPLY',
  GET_ASYNC_REQUEST: 'GET_ASYNC_REPLY',
  QUEUE_GET_CONFIG_REQUEST: 'QUEUE_GET_CONFIG_REPLY',
  EXPERIMENTER: 'EXPERIMENTER',
};

export interface RequestOptions {
  /** overrides the controller's requestTimeoutMs */
  timeoutMs?: number;
}

/** What a barrier reply proves: everything sent before it was processed, with these errors. */
export interface BarrierResult {
  /** OFPT_ERRORs for messages not awaited with `request`, received while this barrier was outstanding */
  readonly errors: readonly OfSwitchError[];
}

interface PendingRequest {
  readonly xid: number;
  readonly requestType: RequestType;
  readonly replyType: OfMessageType;
  /** for multipart requests, the body type the reply must carry, as name and as wire code */
  readonly mpType: string | undefined;
  readonly mpCode: number | undefined;
  readonly timeoutMs: number;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (reply: OfMessage) => void;
  readonly reject: (error: Error) => void;
  /** the reply is handed over as its messages' wire bytes, undecoded (multipartFrames) */
  readonly raw: boolean;
  /** REPLY_MORE parts received so far, as their wire bytes (a decoded part takes about 5 times as much) */
  parts: Buffer[] | undefined;
  partBytes: number;
}

/** Counters, cheap enough to keep on the hot path. */
export interface SessionStats {
  messagesReceived: number;
  /** messages dropped because they arrived in a state whose handlers do not take them */
  droppedForState: number;
  malformed: number;
  /** PACKET_INs within packetInRate, decoded and handed on */
  packetIns: number;
  /** PACKET_INs over packetInRate, dropped undecoded */
  packetInsDropped: number;
}

/** Each state a bit, so that "may this message be handled now" is one AND per message. */
const STATE_BIT: Readonly<Record<SessionState, number>> = { HELLO: 1, FEATURES: 2, PORT_DESC: 4, READY: 8, CLOSED: 16 };
type Handler = { readonly runsIn: number; readonly handle: (session: SwitchSession, msg: OfMessage) => void };
function handler<T extends OfMessageType>(runsIn: number, handle: (s: SwitchSession, m: OfMessageOf<T>) => void): Handler {
  return { runsIn, handle: handle as Handler['handle'] };
}

const AFTER_HELLO = STATE_BIT.FEATURES | STATE_BIT.PORT_DESC | STATE_BIT.READY;
const READY_ONLY = STATE_BIT.READY;
/** a peer that ends this way has nothing more to read, so nothing is flushed */
const ABRUPT: ReadonlySet<CloseReason> = new Set(['socket_error', 'echo_timeout', 'peer_closed']);
const CLOSE_GRACE_MS = 1_000;
const EMPTY = Buffer.alloc(0);
/**
 * A session that has done this much work (a unit per message, and one more per 512 bytes of it) stops
 * reading until the next event-loop turn, so that one switch's burst cannot hold up the others' (echoes
 * included): libuv reads up to 32 chunks of 64 KiB from one socket per turn, over 14,000 small messages.
 */
const WORK_PER_YIELD = 256;
const PACKET_IN_CODE = OFPT.PACKET_IN;
const MULTIPART_REPLY_CODE = OFPT.MULTIPART_REPLY;
/** ofp_multipart_reply's header: type, flags, pad */
const MULTIPART_HEADER_LEN = 16;

/**
 * A frame kept past its dispatch. Sockets hand over a fresh chunk per read (see Framer), so a frame
 * that is its whole chunk is kept as a view of it, nothing allocated or copied; any other is copied,
 * so that what is held is exactly the bytes the multipart budgets count. (Views of frames that were
 * most of their chunk held up to twice that: a multipart bomb then took the controller past the RSS
 * bound of test/integration/hostile-controller.test.ts.)
 */
function heldFrame(buf: Buffer, at: number, length: number): Buffer {
  if (length === buf.length) return buf;
  const copy = Buffer.allocUnsafe(length);
  buf.copy(copy, 0, at, at + length);
  return copy;
}

let nextSessionId = 1;

/**
 * One OpenFlow 1.3 connection to a switch, accepted or dialed. Drives the handshake, keeps the
 * switch alive with echoes, correlates replies with requests by xid, reassembles multipart
 * replies and batches outbound messages per event-loop turn with bounded memory.
 */
export class SwitchSession {
  /** process-unique, for logs */
  readonly id = nextSessionId++;
  readonly stats: SessionStats = { messagesReceived: 0, droppedForState: 0, malformed: 0, packetIns: 0, packetInsDropped: 0 };
  /** resolves (never rejects) when the session ends */
  readonly closed: Promise<CloseInfo>;

  private _state: SessionState = 'HELLO';
  private stateBit = STATE_BIT.HELLO;
  private closeReason: CloseReason | undefined;
  private _dpid: bigint | undefined;
  private _features: FeaturesReply | undefined;
  private readonly _ports = new Map<number, Port>();
  private log: Logger;
  private readonly framer = new Framer();
  private readonly outbound: OutboundQueue;
  private readonly pending = new Map<number, PendingRequest>();
  private xidCounter = 0;
  /** echoes sent since the switch last sent anything */
  private echoesUnanswered = 0;
  private echoTimer: NodeJS.Timeout | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private outstandingBarriers = 0;
  private errorsForBarrier: OfSwitchError[] = [];
  /** wire bytes of unfinished multipart replies held, over all pending requests */
  private multipartBytes = 0;
  private packetInTokens: number;
  private tokensRefilledAt = performance.now();
  private workSinceYield = 0;
  private yielding = false;
  private resolveClosed!: (info: CloseInfo) => void;
  private readonly roles = new RoleState((reason, generationId) => this.onRoleLost(reason, generationId));

  constructor(
    private readonly socket: Socket,
    readonly origin: SessionOrigin,
    /** 'host:port' or 'unix:/path' */
    readonly remote: string,
    private readonly host: SessionHost,
  ) {
    const config = host.config;
    this.log = config.logger.child({ session: this.id, remote, origin });
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.outbound = new OutboundQueue(socket, config.highWaterMarkBytes, host.held);
    this.packetInTokens = config.packetInBurst;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.close('peer_closed'));
    socket.on('close', () => this.close('peer_closed'));
    socket.on('error', (e) => this.fail('socket_error', new ConnectionError(`socket error: ${e.message}`, this.context(), e)));
    this.handshakeTimer = setTimeout(() => {
      const error = new HandshakeError('timeout', `not READY after ${config.handshakeTimeoutMs} ms (state ${this._state})`, this.context());
      this.fail('handshake_timeout', error);
    }, config.handshakeTimeoutMs);
    this.log.debug('connected');
    this.enqueue({ type: 'HELLO', xid: 0, elements: [{ type: 'versionbitmap', versions: [OFP_VERSION] }] }, this.nextXid());
  }

  get state(): SessionState {
    return this._state;
  }
  private get ended(): boolean {
    return this.closeReason !== undefined;
  }
  /** known from FEATURES on; always set for READY sessions */
  get dpid(): bigint | undefined {
    return this._dpid;
  }
  get features(): FeaturesReply | undefined {
    return this._features;
  }
  /** the switch's ports by number, from PORT_DESC and kept current by PORT_STATUS */
  get ports(): ReadonlyMap<number, Port> {
    return this._ports;
  }
  /** this connection's role at the switch: EQUAL until a role request, SLAVE at once when one is sent */
  get role(): ControllerRole {
    return this.roles.role;
  }
  /** the switch's master election generation id, from its last role reply or status */
  get generationId(): bigint | undefined {
    return this.roles.generationId;
  }
  /** bytes queued for this switch that the kernel has not taken yet */
  get bufferedBytes(): number {
    return this.outbound.bufferedBytes;
  }
  /** socket writes, messages and bytes sent so far */
  get sendStats(): { readonly socketWrites: number; readonly messages: number; readonly bytesWritten: number } {
    return this.outbound;
  }

  /** A fresh xid (never 0), for callers that correlate replies or errors themselves. */
  nextXid(): number {
    this.xidCounter = this.xidCounter === 0xffffffff ? 1 : this.xidCounter + 1;
    return this.xidCounter;
  }

  /**
   * Queues a message (an xid is assigned when `msg.xid` is 0; `msg` is never modified).
   * Returns false once the queued bytes exceed highWaterMarkBytes: the caller should then
   * `await drained()`. Throws SendBufferFullError past maxBufferedBytes, SessionClosedError
   * on a closed session, NotMasterError for a write while SLAVE and OfEncodeError for a message
   * that cannot be encoded.
   */
  send(msg: OfMessage): boolean {
    this.checkWrite(msg);
    this.enqueue(msg, msg.xid === 0 ? this.nextXid() : msg.xid);
    return this.outbound.belowHighWaterMark;
  }

  /** Sends every message, waiting for the queue to drain whenever it is above the high-water mark. */
  async sendAll(messages: Iterable<OfMessage>): Promise<void> {
    for (const msg of messages) if (!this.send(msg)) await this.drained();
  }

  /** Resolves when the queued bytes fall below the high-water mark; rejects with SessionClosedError if the session ends first. */
  drained(): Promise<void> {
    return this.outbound.drained();
  }

  /**
   * Sends a request and resolves with its reply (multipart replies reassembled into one).
   * Rejects with OfSwitchError when the switch answers OFPT_ERROR, RequestTimeoutError,
   * SessionClosedError, or the error `send` would throw. Never throws synchronously.
   */
  request<T extends RequestMessage>(msg: T, options: RequestOptions = {}): Promise<ReplyTo<T>> {
    return new Promise<OfMessage>((resolve, reject) => this.startRequest(msg, options, resolve, reject)) as Promise<ReplyTo<T>>;
  }

  /** `request` as a cold Observable: the request is sent on subscription. */
  request$<T extends RequestMessage>(msg: T, options: RequestOptions = {}): Observable<ReplyTo<T>> {
    return defer(() => this.request(msg, options));
  }

  /** Sends a multipart request with `body` and resolves with the whole reply body (all parts merged). */
  async multipart<B extends MultipartRequestBody>(body: B, options: RequestOptions = {}): Promise<MultipartReplyFor<B>> {
    const reply = await this.request({ type: 'MULTIPART_REQUEST', xid: 0, flags: 0, body }, options);
    return reply.body as MultipartReplyFor<B>;
  }

  /**
   * `multipart`, the reply left undecoded: resolves with its messages' wire bytes (whole
   * MULTIPART_REPLYs, REPLY_MORE on all but the last), for a caller that reads them in place.
   */
  multipartFrames(body: MultipartRequestBody, options: RequestOptions = {}): Promise<Buffer[]> {
    return new Promise<Buffer[]>((resolve, reject) =>
      this.startRequest({ type: 'MULTIPART_REQUEST', xid: 0, flags: 0, body }, options, resolve as unknown as (reply: OfMessage) => void, reject, true),
    );
  }

  /**
   * Sends BARRIER_REQUEST; resolves once the switch has processed everything sent before it,
   * with the OFPT_ERRORs that arrived meanwhile for messages not awaited through `request`
   * (for a batch sent right before the barrier: exactly that batch's errors).
   */
  barrier(options: RequestOptions = {}): Promise<BarrierResult> {
    return new Promise((resolve, reject) =>
      this.startRequest(
        { type: 'BARRIER_REQUEST', xid: 0 },
        options,
        // Runs synchronously when the reply is dispatched, so later errors cannot slip in.
        () => resolve({ errors: this.takeBarrierErrors() }),
        reject,
      ),
    );
  }

  /**
   * Asks the switch for `role` with `generationId`, which must come from an election (never 0:
   * GenerationIdError). Resolves with the reply; rejects with RoleRequestError when the switch
   * refuses (a STALE refusal of a MASTER claim also emits roleLost$). A request for anything but
   * MASTER fences writes at once; MASTER allows them only once the switch has said yes.
   */
  requestRole(role: ControllerRole, generationId: bigint, options: RequestOptions = {}): Promise<RoleReply> {
    return new Promise((resolve, reject) => {
      try {
        checkGenerationId(generationId, this.context(undefined, 'ROLE_REQUEST'));
      } catch (e) {
        return reject(e as Error);
      }
      this.roles.requested(role);
      const request = { type: 'ROLE_REQUEST', xid: 0, role: ROLE_CODE[role], generationId } as const;
      // Both callbacks run as the answer is dispatched, before any message behind it (a role status).
      const accepted = (reply: OfMessage) => {
        this.roles.replied(reply as RoleReply);
        resolve(reply as RoleReply);
      };
      const refused = (e: Error) => {
        if (!(e instanceof OfSwitchError)) return reject(e);
        const error = new RoleRequestError(role, generationId, e, this.context(e.xid, 'ROLE_REQUEST'));
        this.log.warn({ err: error, refusal: error.refusal }, 'switch refused the role request');
        this.roles.refused(error);
        reject(error);
      };
      this.startRequest(request, options, accepted, refused);
    });
  }

  /** Ends the session; queued messages are flushed first. */
  close(reason: CloseReason = 'closed_by_controller', error?: Error): void {
    if (this.ended) return;
    const wasReady = this._state === 'READY';
    this.closeReason = reason;
    this.transition('CLOSED', { reason, ...(error && errorFields(error)), stats: this.stats });
    clearTimeout(this.handshakeTimer);
    clearInterval(this.echoTimer);
    for (const p of [...this.pending.values()]) {
      this.takePending(p.xid);
      p.reject(new SessionClosedError(reason, this.context(p.xid, p.requestType)));
    }
    const graceful = !ABRUPT.has(reason);
    this.outbound.close(new SessionClosedError(reason, this.context()), graceful);
    if (graceful) {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    } else {
      this.socket.destroy();
    }
    const info: CloseInfo = { reason, error, wasReady };
    this.host.sessionClosed(this, info);
    this.resolveClosed(info);
  }

  /** Whether the switch answers an echo within `timeoutMs`; any failure (timeout, close) counts as no. */
  async answersEcho(timeoutMs: number): Promise<boolean> {
    try {
      await this.request({ type: 'ECHO_REQUEST', xid: 0, data: EMPTY }, { timeoutMs });
      return true;
    } catch {
      return false;
    }
  }

  // ---- outbound ----

  /**
   * Queues `msg` with exactly `xid` (replies must echo the peer's xid, even 0). Past maxBufferedBytes the
   * caller is refused; past maxTotalBufferedBytes a session above its high-water mark is closed.
   */
  private enqueue(msg: OfMessage, xid: number): void {
    if (this.closeReason) throw new SessionClosedError(this.closeReason, this.context(xid, msg.type));
    const queued = this.outbound.bufferedBytes;
    const config = this.host.config;
    if (queued >= config.maxBufferedBytes) throw new SendBufferFullError(queued, config.maxBufferedBytes, this.context(xid, msg.type));
    const total = this.host.held.bufferedBytes;
    if (total > config.maxTotalBufferedBytes && queued >= config.highWaterMarkBytes) {
      throw this.overBudget('maxTotalBufferedBytes', config.maxTotalBufferedBytes, total, xid, msg.type);
    }
    this.outbound.enqueue(msg, xid);
  }

  /** Queues what the switch asked for (an echo or error reply): a switch that asks while not reading is closed. */
  private answer(msg: OfMessage, xid: number): void {
    const queued = this.outbound.bufferedBytes;
    const limit = this.host.config.maxBufferedBytes;
    if (queued >= limit) return void this.overBudget('maxBufferedBytes', limit, queued, xid, msg.type);
    this.enqueue(msg, xid);
  }

  /** Closes the session for going over `budget`; returns the error for the caller to throw or reject with. */
  private overBudget(budget: BudgetName, limit: number, amount: number, xid?: number, msgType?: OfMessageType): SessionBudgetError {
    const error = new SessionBudgetError(budget, limit, amount, this.context(xid, msgType));
    this.fail('budget_exceeded', error);
    return error;
  }

  /** The switch would refuse a SLAVE's write (OFPBRC_IS_SLAVE); it is not even sent. */
  private checkWrite(msg: OfMessage): void {
    if (this.roles.role === 'slave' && isWrite(msg)) throw new NotMasterError(this.context(msg.xid || undefined, msg.type));
  }

  /** `resolve` gets the decoded reply, or with `raw` the reply's wire bytes (a Buffer[]; see tookRaw) */
  private startRequest(msg: RequestMessage, options: RequestOptions, resolve: (reply: OfMessage) => void, reject: (e: Error) => void, raw = false): void {
    const xid = msg.xid === 0 ? this.nextXid() : msg.xid;
    if (this.pending.has(xid)) return reject(new XidInUseError(this.context(xid, msg.type)));
    const { maxPendingRequests, maxTotalPendingRequests } = this.host.config;
    if (this.pending.size >= maxPendingRequests) {
      return reject(this.overBudget('maxPendingRequests', maxPendingRequests, this.pending.size + 1, xid, msg.type));
    }
    if (this.host.held.pendingRequests >= maxTotalPendingRequests) {
      return reject(this.overBudget('maxTotalPendingRequests', maxTotalPendingRequests, this.host.held.pendingRequests + 1, xid, msg.type));
    }
    try {
      this.checkWrite(msg);
      this.enqueue(msg, xid);
    } catch (e) {
      return reject(e as Error);
    }
    const timeoutMs = options.timeoutMs ?? this.host.config.requestTimeoutMs;
    const pending: PendingRequest = {
      xid,
      requestType: msg.type,
      replyType: REPLY_TYPE[msg.type],
      mpType: msg.type === 'MULTIPART_REQUEST' ? msg.body.mpType : undefined,
      mpCode: msg.type === 'MULTIPART_REQUEST' ? OFPMP[msg.body.mpType] : undefined,
      timeoutMs,
      timer: setTimeout(this.onRequestTimeout, timeoutMs, xid),
      resolve,
      reject,
      raw,
      parts: undefined,
      partBytes: 0,
    };
    this.pending.set(xid, pending);
    this.host.held.pendingRequests++;
    if (msg.type === 'BARRIER_REQUEST') this.outstandingBarriers++;
  }

  private readonly onRequestTimeout = (xid: number): void => {
    const p = this.takePending(xid);
    if (p) p.reject(new RequestTimeoutError(p.timeoutMs, this.context(xid, p.requestType)));
  };

  private takePending(xid: number): PendingRequest | undefined {
    const p = this.pending.get(xid);
    if (!p) return undefined;
    this.pending.delete(xid);
    clearTimeout(p.timer);
    this.host.held.pendingRequests--;
    this.multipartBytes -= p.partBytes;
    this.host.held.multipartBytes -= p.partBytes;
    if (p.requestType === 'BARRIER_REQUEST') this.outstandingBarriers--;
    return p;
  }

  private takeBarrierErrors(): OfSwitchError[] {
    const errors = this.errorsForBarrier;
    this.errorsForBarrier = [];
    return errors;
  }

  // ---- inbound ----

  private onData(chunk: Buffer): void {
    if (this.ended) return;
    this.echoesUnanswered = 0;
    this.readFrames(chunk);
  }

  /**
   * Handles the messages in `chunk`, after those an earlier yield left. After WORK_PER_YIELD the
   * socket is paused and reading goes on in the next event-loop turn.
   */
  private readFrames(chunk: Buffer): void {
    const now = performance.now();
    const { packetInRate, packetInBurst } = this.host.config;
    this.packetInTokens = Math.min(packetInBurst, this.packetInTokens + ((now - this.tokensRefilledAt) * packetInRate) / 1000);
    this.tokensRefilledAt = now;
    this.framer.push(chunk, this.onFrame);
    const framingError = this.framer.error;
    if (framingError && !this.ended) {
      this.stats.malformed++;
      this.fail('framing_error', new MalformedMessageError(framingError, true, this.context(framingError.context.xid)));
    }
    if (this.ended) return;
    if (this.workSinceYield >= WORK_PER_YIELD) {
      this.workSinceYield = 0;
      if (!this.yielding) this.socket.pause();
      this.yielding = true;
      setImmediate(this.readOn);
    } else if (this.yielding) {
      this.yielding = false;
      this.socket.resume();
    }
  }

  /** Bound once: scheduled with setImmediate on every yield. */
  private readonly readOn = (): void => {
    if (!this.ended) this.readFrames(EMPTY);
  };

  /** One framed message, `buf[at .. at+length)`. Bound once: the framer calls it for every message. */
  private readonly onFrame = (buf: Buffer, at: number, length: number): boolean => {
    if (this.ended) return false;
    if (buf[at + 1] === PACKET_IN_CODE) {
      // dropped undecoded: too cheap to count as work, so a flood over the limit costs no yields
      if (this.packetInTokens < 1) return this.dropPacketIn();
      this.packetInTokens--;
      this.stats.packetIns++;
    }
    try {
      this.dispatch(buf, at, length);
    } catch (e) {
      // e.g. an echo or error reply refused by a full send buffer; never let it escape into the socket's emitter
      const error = e instanceof ControllerError ? e : new InternalError(e, this.context());
      this.host.config.logLimiter.log(this.log, 'error', this._dpid ?? this.remote, 'failed to handle a message from the switch', errorFields(error));
      this.host.hub.errors.next(error);
    }
    this.workSinceYield += 1 + (length >>> 9);
    return !this.ended && this.workSinceYield < WORK_PER_YIELD;
  };

  private dispatch(buf: Buffer, at: number, length: number): void {
    this.stats.messagesReceived++;
    if (this._state === 'HELLO') return this.onHello(buf.subarray(at, at + length));
    if (buf[at + 1] === MULTIPART_REPLY_CODE && (this.heldAsPart(buf, at, length) || this.tookRaw(buf, at, length))) return;
    const res = decodeMessage(buf, at);
    if (!res.ok) return this.onMalformed(res.error, buf.subarray(at, at + length));
    const msg = res.message;
    const h = SwitchSession.handlerByCode[buf[at + 1]!] ?? SwitchSession.replyHandler;
    if ((h.runsIn & this.stateBit) === 0) {
      this.stats.droppedForState++;
      this.host.config.logLimiter.log(this.log, 'debug', this._dpid ?? this.remote, 'message not handled in this state; dropped', { type: msg.type, xid: msg.xid, state: this._state });
      return;
    }
    h.handle(this, msg);
  }

  /**
   * A REPLY_MORE part of an awaited multipart reply is held as its wire bytes, undecoded: the parts are
   * decoded with the last one. Within maxMultipartBytes and maxTotalMultipartBytes, or the session closes.
   */
  private heldAsPart(buf: Buffer, at: number, length: number): boolean {
    if (length < MULTIPART_HEADER_LEN || (buf[at + 11]! & OFPMPF_REPLY_MORE) === 0) return false;
    const xid = buf.readUInt32BE(at + 4);
    const p = this.pending.get(xid);
    if (!p || p.mpCode !== buf.readUInt16BE(at + 8)) return false;
    const { maxMultipartBytes, maxTotalMultipartBytes } = this.host.config;
    const held = this.host.held;
    if (this.multipartBytes + length > maxMultipartBytes) {
      this.overBudget('maxMultipartBytes', maxMultipartBytes, this.multipartBytes + length, xid, 'MULTIPART_REPLY');
    } else if (held.multipartBytes + length > maxTotalMultipartBytes) {
      this.overBudget('maxTotalMultipartBytes', maxTotalMultipartBytes, held.multipartBytes + length, xid, 'MULTIPART_REPLY');
    } else {
      (p.parts ??= []).push(heldFrame(buf, at, length));
      p.partBytes += length;
      this.multipartBytes += length;
      held.multipartBytes += length;
      p.timer.refresh(); // a long reply that keeps coming is not timed out
    }
    return true;
  }

  /** The last part of a reply awaited undecoded (multipartFrames): handed over with the parts held before it. */
  private tookRaw(buf: Buffer, at: number, length: number): boolean {
    if (length < MULTIPART_HEADER_LEN) return false;
    const xid = buf.readUInt32BE(at + 4);
    const p = this.pending.get(xid);
    if (!p?.raw || p.mpCode !== buf.readUInt16BE(at + 8)) return false;
    this.takePending(xid);
    const frames = p.parts ?? [];
    frames.push(heldFrame(buf, at, length));
    (p.resolve as unknown as (frames: Buffer[]) => void)(frames);
    return true;
  }

  private dropPacketIn(): true {
    this.stats.messagesReceived++;
    if (this.stats.packetInsDropped++ === 0) {
      const { packetInRate, packetInBurst } = this.host.config;
      this.log.warn({ packetInRate, packetInBurst }, 'switch sends PACKET_INs over the rate limit; the excess is dropped (stats.packetInsDropped)');
    }
    return true;
  }

  /** Inbound handlers and the states they run in; every type not listed is a reply (see replyHandler). */
  private static readonly handlers: { readonly [T in OfMessageType]?: Handler } = {
    ERROR: handler<'ERROR'>(AFTER_HELLO, (s, m) => s.onSwitchError(m)),
    ECHO_REQUEST: handler<'ECHO_REQUEST'>(AFTER_HELLO, (s, m) => s.answer({ type: 'ECHO_REPLY', xid: m.xid, data: m.data }, m.xid)),
    // Before READY nobody can know the switch yet. A PORT_STATUS dropped then is already reflected in the PORT_DESC reply.
    PACKET_IN: handler<'PACKET_IN'>(READY_ONLY, (s, m) => s.onPacketIn(m)),
    PORT_STATUS: handler<'PORT_STATUS'>(READY_ONLY, (s, m) => s.onPortStatus(m)),
    FLOW_REMOVED: handler<'FLOW_REMOVED'>(READY_ONLY, (s, m) => s.onFlowRemoved(m)),
  };
  private static readonly replyHandler: Handler = handler(AFTER_HELLO, (s, m) => s.onReply(m));
  /** the handlers by message type code: an array index per message, not a property lookup by name */
  private static readonly handlerByCode: readonly (Handler | undefined)[] = Object.entries(SwitchSession.handlers).reduce<(Handler | undefined)[]>(
    (byCode, [type, h]) => ((byCode[OFPT[type as OfMessageType]] = h), byCode),
    [],
  );

  private onHello(frame: Buffer): void {
    const negotiation = negotiateVersion(frame);
    if (negotiation.ok) {
      this.log.debug('version 1.3 negotiated');
      this.runHandshake().catch((e: unknown) => this.onHandshakeFailure(e));
      return;
    }
    const xid = frame.readUInt32BE(4);
    if (frame[1] === OFPT.ERROR) {
      // The peer refused our HELLO; an error is never answered with an error.
      const error = new HandshakeError('version_mismatch', 'peer answered our HELLO with OFPT_ERROR', this.context(xid));
      return this.fail('version_mismatch', error);
    }
    const failure = frame[1] === OFPT.HELLO ? 'version_mismatch' : 'not_hello';
    this.enqueue(helloFailed(xid, negotiation.reason), xid);
    this.fail(failure === 'version_mismatch' ? 'version_mismatch' : 'handshake_failed', new HandshakeError(failure, negotiation.reason, this.context(xid)));
  }

  private async runHandshake(): Promise<void> {
    this.transition('FEATURES');
    const features = await this.request({ type: 'FEATURES_REQUEST', xid: 0 });
    if (this.ended) return;
    if (features.auxiliaryId !== 0) {
      // OVS never opens auxiliary connections; accepting one would let it replace the main session of its dpid.
      const error = new HandshakeError('auxiliary_rejected', `auxiliary connection ${features.auxiliaryId} is not supported`, {
        ...this.context(features.xid, 'FEATURES_REPLY'),
        dpid: features.datapathId,
      });
      return this.fail('auxiliary_rejected', error);
    }
    this._features = features;
    this._dpid = features.datapathId;
    this.log = this.log.child({ dpid: formatDpid(features.datapathId) });
    // Whole packets on table miss and `controller` actions. OVS sends a service connection
    // (a dialed br-int.mgmt) no asynchronous messages at all until miss_send_len is non-zero.
    this.send({ type: 'SET_CONFIG', xid: 0, flags: 0, missSendLen: OFPCML_NO_BUFFER });
    this.transition('PORT_DESC');
    const portDesc = await this.multipart({ mpType: 'PORT_DESC' });
    if (this.ended) return;
    for (const port of portDesc.ports) this._ports.set(port.portNo, port);
    await this.host.admit(this);
    if (this.ended) return;
    clearTimeout(this.handshakeTimer);
    this.transition('READY', { ports: this._ports.size });
    this.echoTimer = setInterval(this.onEchoTick, this.host.config.echoIntervalMs);
    this.host.sessionReady(this);
  }

  private onHandshakeFailure(e: unknown): void {
    if (this.ended) return; // the close already said why
    const error = new HandshakeError('request_failed', (e as Error)?.message ?? String(e), this.context(), e);
    this.fail('handshake_failed', error);
  }

  private readonly onEchoTick = (): void => {
    if (this.echoesUnanswered >= this.host.config.maxMissedEchoes) {
      const error = new ConnectionError(
        `no traffic for ${this.echoesUnanswered} echo intervals of ${this.host.config.echoIntervalMs} ms`,
        this.context(),
      );
      return this.fail('echo_timeout', error);
    }
    this.echoesUnanswered++;
    if (this.outbound.bufferedBytes >= this.host.config.maxBufferedBytes) return; // not reading: the count decides
    this.send({ type: 'ECHO_REQUEST', xid: 0, data: EMPTY });
  };

  private onPacketIn(message: PacketIn): void {
    const subject = this.host.hub.packetIn;
    if (subject.observed) subject.next({ dpid: this._dpid!, session: this, message });
  }

  private onPortStatus(message: PortStatus): void {
    // ADD and MODIFY carry the port's new description.
    if (message.reason === OFPPR.DELETE) this._ports.delete(message.desc.portNo);
    else this._ports.set(message.desc.portNo, message.desc);
    this.host.hub.portStatus.next({ dpid: this._dpid!, session: this, message });
  }

  private onFlowRemoved(message: FlowRemoved): void {
    this.host.hub.flowRemoved.next({ dpid: this._dpid!, session: this, message });
  }

  private onSwitchError(msg: ErrorMsg): void {
    if (isSlaveError(msg)) this.roles.isSlave(); // before anyone hears of the error: no write follows it
    const p = this.takePending(msg.xid);
    if (p) return p.reject(new OfSwitchError(msg, this.context(msg.xid, p.requestType)));
    const offendingType = msg.data.length >= 2 ? messageTypeName(msg.data[1]!) : undefined;
    const error = new OfSwitchError(msg, this.context(msg.xid, offendingType));
    if (this.outstandingBarriers > 0) this.errorsForBarrier.push(error);
    this.host.config.logLimiter.log(this.log, 'warn', this._dpid ?? this.remote, 'switch reported an error', { ...errorFields(error), errType: error.errType, code: error.code, xid: msg.xid });
    this.host.hub.errors.next(error);
  }

  private onReply(msg: OfMessage): void {
    const p = this.pending.get(msg.xid);
    if (!p || p.replyType !== msg.type || (msg.type === 'MULTIPART_REPLY' && msg.body.mpType !== p.mpType)) {
      return this.onUnclaimed(msg);
    }
    if (msg.type !== 'MULTIPART_REPLY') {
      this.takePending(msg.xid);
      return p.resolve(msg);
    }
    // REPLY_MORE parts were held before decoding (heldAsPart): this is the last part
    this.takePending(msg.xid);
    if (!p.parts) return p.resolve(msg);
    try {
      const parts = p.parts.map((frame) => {
        const res = decodeMessage(frame);
        if (!res.ok) throw res.error;
        return res.message as MultipartReply;
      });
      parts.push(msg);
      p.resolve(mergeMultipartReplies(parts));
    } catch (e) {
      const decodeError = e instanceof OfDecodeError ? e : new OfDecodeError('bad_value', String(e));
      p.reject(new MalformedMessageError(decodeError, false, this.context(msg.xid, 'MULTIPART_REPLY')));
    }
  }

  private onUnclaimed(msg: OfMessage): void {
    if (msg.type === 'ECHO_REPLY') return; // our keepalive; any traffic already counted as liveness
    if (msg.type === 'EXPERIMENTER' && isRoleStatus(msg)) return this.onRoleStatus(msg);
    this.host.config.logLimiter.log(this.log, 'debug', this._dpid ?? this.remote, 'message claimed by no request', { type: msg.type, xid: msg.xid });
    if (this._state === 'READY') this.host.hub.otherMessages.next({ dpid: this._dpid!, session: this, message: msg });
  }

  private onRoleStatus(msg: Experimenter): void {
    const status = decodeRoleStatus(msg);
    if (status instanceof OfDecodeError) return this.onMalformedBody(status, msg);
    this.log.debug({ role: status.role, reason: status.reason, generationId: String(status.generationId) }, 'role status');
    this.roles.status(status);
    if (this._state === 'READY') this.host.hub.roleStatus.next({ dpid: this._dpid!, session: this, message: status });
  }

  private onRoleLost(reason: RoleLossReason, generationId: bigint | undefined): void {
    this.log.debug({ reason, generationId: generationId?.toString() }, 'no longer master');
    if (this._state === 'READY') this.host.hub.roleLost.next({ dpid: this._dpid!, session: this, reason, generationId });
  }

  /** An experimenter body that does not decode: reported, the session kept. */
  private onMalformedBody(decodeError: OfDecodeError, msg: OfMessage): void {
    this.stats.malformed++;
    const error = new MalformedMessageError(decodeError, false, this.context(msg.xid, msg.type));
    this.log.warn({ err: error, xid: msg.xid, kind: decodeError.kind }, 'malformed message from switch');
    this.host.hub.errors.next(error);
  }

  /** A message that does not decode while the framing holds: report it, answer OFPT_ERROR, keep the session. */
  private onMalformed(decodeError: OfDecodeError, frame: Buffer): void {
    this.stats.malformed++;
    const xid = frame.readUInt32BE(4);
    const typeCode = frame[1]!;
    const error = new MalformedMessageError(decodeError, false, this.context(xid, messageTypeName(typeCode)));
    this.host.config.logLimiter.log(this.log, 'warn', this._dpid ?? this.remote, 'malformed message from switch', { ...errorFields(error), xid, msgType: typeCode, kind: decodeError.kind });
    this.host.hub.errors.next(error);
    // An awaited reply that cannot be decoded fails its request instead of timing out.
    const p = this.pending.get(xid);
    if (p && OFPT[p.replyType] === typeCode) {
      this.takePending(xid);
      p.reject(error);
    }
    if (typeCode !== OFPT.ERROR) this.answer(errorReplyFor(decodeError, frame), xid);
  }

  // ---- state ----

  private transition(to: SessionState, details: Record<string, unknown> = {}): void {
    const from = this._state;
    this._state = to;
    this.stateBit = STATE_BIT[to];
    const level = to === 'READY' || to === 'CLOSED' ? 'info' : 'debug';
    this.log[level]({ from, to, ...details }, `session ${from} -> ${to}`);
  }

  /** Reports `error` (log and errors$) and closes the session. */
  private fail(reason: CloseReason, error: ControllerError): void {
    if (this.ended) return;
    this.log.warn({ ...errorFields(error), reason }, 'closing session');
    this.host.hub.errors.next(error);
    this.close(reason, error);
  }

  private context(xid?: number, msgType?: OfMessageType): SessionErrorContext {
    return {
      ...(this._dpid !== undefined && { dpid: this._dpid }),
      ...(xid !== undefined && { xid }),
      ...(msgType !== undefined && { msgType }),
      remote: this.remote,
    };
  }
}
