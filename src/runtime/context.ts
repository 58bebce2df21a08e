import type { Logger } from 'pino';
import { takeUntil, type Observable } from 'rxjs';
import { errorFields, formatDpid, isWrite, type LogLimiter, type SwitchSession } from '../controller';
import type { DesiredState } from './desired-state';
import type { OfMessage } from '../openflow';
import { packetOut, type PacketOutOptions } from '../sdk/actions';
import type { AppContext, AppEvents, ZonemeshApp } from '../sdk/app';
import { ModelNotConfiguredError } from '../sdk/errors';
import type { ModelAccess } from '../sdk/model';
import type { Placement } from '../sdk/placement';
import { makeCookie } from '../sdk/cookie';
import { FlowBuilder, type Flow } from '../sdk/flow';
import { groupIdOf, type Group } from '../sdk/group';
import type { Pipeline } from '../sdk/pipeline';
import { AppHandlerError } from './errors';

/** What one app's context needs from the runtime. */
export interface ContextHost {
  readonly pipeline: Pipeline;
  readonly events: AppEvents;
  readonly desired: DesiredState;
  readonly stopped$: Observable<void>;
  /** absent when the run config names no model */
  readonly model?: ModelAccess;
  /** absent only in tests that build a context by hand */
  readonly placement?: Placement;
  /** for lines an app's traffic can repeat per message */
  readonly logLimiter: LogLimiter;
  session(dpid: bigint): SwitchSession | undefined;
  /** the reconciler's: nothing being sent to the switch */
  settled(dpid: bigint): Promise<void>;
  /** this controller may write to the switch (its master, or EQUAL without an election) */
  writable(dpid: bigint, session: SwitchSession): boolean;
  handlerFailed(error: AppHandlerError): void;
}

const COOKIE_MEMO_SIZE = 4096;

/** The kind of event a handler was given, for error reports. */
function eventName(e: unknown): string {
  if (typeof e !== 'object' || e === null) return typeof e;
  if ('message' in e && typeof (e.message as { type?: unknown })?.type === 'string') return (e.message as OfMessage).type;
  if ('features' in e) return 'SWITCH_UP';
  if ('reason' in e && 'session' in e) return 'SWITCH_DOWN';
  return 'event';
}

/** One app's view of the runtime: its cookies, its flows, its events, its log. */
export class RuntimeAppContext implements AppContext {
  readonly pipeline: Pipeline;
  readonly events: AppEvents;
  readonly stopped$: Observable<void>;
  /** owner → cookie: hashing the owner per flow showed in the packet-in profile */
  private readonly cookies = new Map<string, bigint>();
  private readonly ephemeralCookies = new Map<string, bigint>();
  private lastDpid: bigint | undefined;
  private lastSession: SwitchSession | undefined;

  constructor(
    readonly app: ZonemeshApp,
    readonly log: Logger,
    private readonly host: ContextHost,
  ) {
    this.pipeline = host.pipeline;
    this.events = host.events;
    this.stopped$ = host.stopped$;
  }

  cookie(owner: string, opts: { ephemeral?: boolean } = {}): bigint {
    const memo = opts.ephemeral ? this.ephemeralCookies : this.cookies;
    let cookie = memo.get(owner);
    if (cookie === undefined) {
      // bounded: owners come and go with the model, and a few thousand cover any one moment
      if (memo.size >= COOKIE_MEMO_SIZE) memo.clear();
      memo.set(owner, (cookie = makeCookie(this.app.appId, owner, opts.ephemeral)));
    }
    return cookie;
  }

  flow(table: string, owner: string, opts: { ephemeral?: boolean } = {}): FlowBuilder {
    return new FlowBuilder(this.pipeline, this.pipeline.table(table), this.cookie(owner, opts));
  }

  setFlows(dpid: bigint, owner: string, flows: readonly Flow[]): void {
    this.host.desired.set(dpid, this.cookie(owner), flows);
  }

  groupId(key: string): number {
    return groupIdOf(this.app.appId, key);
  }

  setGroups(dpid: bigint, owner: string, groups: readonly Group[]): void {
    this.host.desired.setGroups(dpid, this.cookie(owner), groups);
  }

  send(dpid: bigint, msg: OfMessage): boolean {
    // the last switch sent to: a reactive app answers runs of packet-ins from one switch
    let session = this.lastSession;
    if (session === undefined || this.lastDpid !== dpid || session.state === 'CLOSED') {
      session = this.host.session(dpid);
      this.lastDpid = dpid;
      this.lastSession = session;
    }
    if (!session) {
      this.host.logLimiter.log(this.log, 'debug', dpid, 'switch not connected; message dropped', { dpid: formatDpid(dpid), msgType: msg.type });
      return false;
    }
    if (!this.host.writable(dpid, session) && isWrite(msg)) {
      this.host.logLimiter.log(this.log, 'debug', dpid, 'not master of the switch; message dropped', { dpid: formatDpid(dpid), msgType: msg.type });
      return false;
    }
    try {
      return session.send(msg);
    } catch (e) {
      // a full send buffer or a session closing under us: the reactive path drops, the switch asks again
      this.host.logLimiter.log(this.log, 'warn', dpid, 'message dropped', { ...errorFields(e), dpid: formatDpid(dpid), msgType: msg.type });
      return false;
    }
  }

  settled(dpid: bigint): Promise<void> {
    // a failed sync is the reconciler's to report and retry: the app only waits
    return this.host.settled(dpid).catch(() => undefined);
  }

  packetOut(dpid: bigint, frame: Buffer, options: PacketOutOptions): boolean {
    return this.send(dpid, packetOut(frame, options));
  }

  get model(): ModelAccess {
    if (!this.host.model) throw new ModelNotConfiguredError(this.app.name);
    return this.host.model;
  }

  get placement(): Placement {
    if (!this.host.placement) throw new Error(`app ${this.app.name}: this context was built without a placement`);
    return this.host.placement;
  }

  on<T>(source: Observable<T>, handler: (event: T) => void): void {
    source.pipe(takeUntil(this.stopped$)).subscribe((event) => {
      try {
        handler(event);
      } catch (e) {
        const dpid = (event as { dpid?: unknown } | null)?.dpid;
        this.host.handlerFailed(new AppHandlerError(this.app.name, typeof dpid === 'bigint' ? dpid : undefined, eventName(event), e));
      }
    });
  }
}
