import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Observable } from 'rxjs';
import { resolveConfig, type ControllerConfig, type ControllerOptions } from './config';
import { DpidInUseError, formatDpid, type ControllerError } from './errors';
import { errorFields } from './log-limiter';
import {
  EventHub,
  type FlowRemovedEvent,
  type OtherMessageEvent,
  type PacketInEvent,
  type PortStatusEvent,
  type RoleLostEvent,
  type RoleStatusEvent,
  type SwitchDownEvent,
  type SwitchUpEvent,
} from './events';
import { SwitchSession, type CloseInfo, type HeldTotals, type SessionHost, type SessionOrigin } from './session';
import { Dialer, startListener, type DialOptions, type ListenSpec, type Listener } from './transport';

/**
 * The OpenFlow 1.3 runtime: accepts switches (TCP, TLS, Unix sockets) and dials switches'
 * passive listeners, runs one SwitchSession per connection, and publishes what the switches
 * say as RxJS streams. Filter per switch with `forSwitch(dpid)`.
 */
export class Controller {
  /**
   * a switch reached READY. A connection claiming the dpid of a READY session first probes that session with
   * an echo: if it answers, the newcomer is refused (DpidInUseError); if not, it goes down with 'replaced' first.
   */
  readonly switchUp$: Observable<SwitchUpEvent>;
  /** a READY switch's session ended */
  readonly switchDown$: Observable<SwitchDownEvent>;
  readonly packetIn$: Observable<PacketInEvent>;
  readonly portStatus$: Observable<PortStatusEvent>;
  readonly flowRemoved$: Observable<FlowRemovedEvent>;
  /** messages no request awaited and no stream above carries (late replies, experimenter messages) */
  readonly otherMessages$: Observable<OtherMessageEvent>;
  /** every error the runtime saw: switch errors for unawaited xids, malformed input, handshake and transport failures */
  readonly errors$: Observable<ControllerError>;
  /** role status notifications from switches (another controller became master) */
  readonly roleStatus$: Observable<RoleStatusEvent>;
  /** a session that was master (or claimed it) learnt it is not: role status, IS_SLAVE, or a STALE refusal */
  readonly roleLost$: Observable<RoleLostEvent>;

  readonly config: ControllerConfig;
  private readonly log: Logger;
  private readonly hub = new EventHub();
  private readonly host: SessionHost;
  private readonly listeners = new Set<Listener>();
  private readonly dialers = new Set<Dialer>();
  /** every open session, READY or not */
  private readonly sessions = new Set<SwitchSession>();
  private readonly byDpid = new Map<bigint, SwitchSession>();
  /** what all sessions hold, against the maxTotal budgets */
  private readonly held: HeldTotals = { bufferedBytes: 0, multipartBytes: 0, pendingRequests: 0 };
  private closing = false;

  constructor(options: ControllerOptions = {}) {
    this.config = resolveConfig(options);
    this.log = this.config.logger;
    this.switchUp$ = this.hub.switchUp.asObservable();
    this.switchDown$ = this.hub.switchDown.asObservable();
    this.packetIn$ = this.hub.packetIn.asObservable();
    this.portStatus$ = this.hub.portStatus.asObservable();
    this.flowRemoved$ = this.hub.flowRemoved.asObservable();
    this.otherMessages$ = this.hub.otherMessages.asObservable();
    this.errors$ = this.hub.errors.asObservable();
    this.roleStatus$ = this.hub.roleStatus.asObservable();
    this.roleLost$ = this.hub.roleLost.asObservable();
    this.host = {
      config: this.config,
      hub: this.hub,
      held: this.held,
      admit: (s) => this.admit(s),
      sessionReady: (s) => this.onSessionReady(s),
      sessionClosed: (s, info) => this.onSessionClosed(s, info),
    };
  }

  /** READY switches by datapath id */
  get switches(): ReadonlyMap<bigint, SwitchSession> {
    return this.byDpid;
  }

  /** every open session, READY or still in its handshake */
  get openSessions(): ReadonlySet<SwitchSession> {
    return this.sessions;
  }

  session(dpid: bigint): SwitchSession | undefined {
    return this.byDpid.get(dpid);
  }

  /** Accepts switches; default TCP on 0.0.0.0:6653. Port 0 picks a free port (see `Listener.port`). */
  async listen(spec: ListenSpec = { transport: 'tcp' }): Promise<Listener> {
    const listener = await startListener(
      spec,
      (socket, remote) => this.attach(socket, 'accepted', remote),
      (e) => this.reportError(e),
      this.config.handshakeTimeoutMs,
      this.log,
    );
    this.listeners.add(listener);
    return listener;
  }

  /** Connects to a switch's passive listener ('unix:/var/run/openvswitch/br-int.mgmt', 'tcp:10.0.0.5:6653') and keeps reconnecting. */
  dial(target: string, options: DialOptions = {}): Dialer {
    const dialer = new Dialer(
      target,
      (socket, remote) => this.attach(socket, 'dialed', remote),
      (e) => this.reportError(e),
      this.config.handshakeTimeoutMs,
      this.log,
      options,
    );
    this.dialers.add(dialer);
    return dialer;
  }

  /** Stops listening and dialing, closes every session (switchDown$ with 'controller_shutdown') and completes the streams. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const d of this.dialers) d.stop('controller_shutdown');
    for (const s of [...this.sessions]) s.close('controller_shutdown');
    await Promise.all([...this.listeners].map((l) => l.close()));
    this.hub.complete();
    this.config.logLimiter.flush();
  }

  private attach(socket: Socket, origin: SessionOrigin, remote: string): SwitchSession {
    const session = new SwitchSession(socket, origin, remote, this.host);
    this.sessions.add(session);
    if (this.closing) session.close('controller_shutdown');
    return session;
  }

  /** what all sessions hold now: queued bytes, multipart bytes and pending requests */
  get totals(): Readonly<HeldTotals> {
    return this.held;
  }

  /**
   * A dpid stays with the session that holds it while that session answers echoes: on plain TCP anyone
   * can claim any dpid (TLS with a switch CA is the real protection). A holder that does not answer
   * within dpidProbeTimeoutMs is replaced.
   */
  private async admit(session: SwitchSession): Promise<void> {
    const dpid = session.dpid!;
    for (let holder = this.byDpid.get(dpid); holder; holder = this.byDpid.get(dpid)) {
      const alive = await holder.answersEcho(this.config.dpidProbeTimeoutMs);
      if (session.state === 'CLOSED') return; // the newcomer went meanwhile
      if (alive) {
        const error = new DpidInUseError(holder.remote, { dpid, remote: session.remote });
        this.reportError(error);
        return session.close('dpid_in_use', error);
      }
      if (this.byDpid.get(dpid) === holder) {
        this.log.info({ dpid: formatDpid(dpid), previous: holder.id, current: session.id }, 'switch reconnected; its old session did not answer an echo and is replaced');
        holder.close('replaced');
      }
    }
  }

  private onSessionReady(session: SwitchSession): void {
    const dpid = session.dpid!;
    const previous = this.byDpid.get(dpid);
    if (previous) {
      // two newcomers admitted while the same dead holder went: the later one wins
      this.log.info({ dpid: formatDpid(dpid), previous: previous.id, current: session.id }, 'switch reconnected; replacing its old session');
      previous.close('replaced');
    }
    this.byDpid.set(dpid, session);
    this.hub.switchUp.next({ dpid, session, features: session.features!, ports: [...session.ports.values()] });
  }

  private onSessionClosed(session: SwitchSession, info: CloseInfo): void {
    this.sessions.delete(session);
    if (!info.wasReady) return;
    const dpid = session.dpid!;
    if (this.byDpid.get(dpid) === session) this.byDpid.delete(dpid);
    this.hub.switchDown.next({ dpid, session, reason: info.reason, error: info.error });
  }

  private reportError(e: ControllerError): void {
    // a peer can open connection after connection: limited per address, whatever its port
    const peer = e.remote?.replace(/:\d+$/, '') ?? 'listener';
    this.config.logLimiter.log(this.log, 'warn', peer, e.name, errorFields(e), e.message);
    this.hub.errors.next(e);
  }
}
