import type { Logger } from 'pino';
import { NEVER, Subject, type Observable, type Subscription } from 'rxjs';
import type { Controller } from '../controller/controller';
import { ControllerError, formatDpid } from '../controller/errors';
import type { RoleLostEvent, SwitchDownEvent, SwitchUpEvent } from '../controller/events';
import { GenerationIdError, RoleRequestError, checkGenerationId, describeLoss } from '../controller/role';
import type { SwitchSession } from '../controller/session';

/** 'equal': no election and no role request, every controller writes (one controller alone). */
export type MastershipRole = 'master' | 'slave' | 'equal';

/** What an election decided for this controller and one switch. */
export interface MastershipDecision {
  readonly dpid: bigint;
  readonly role: MastershipRole;
  /**
   * The election's generation: for MASTER this controller's term, for SLAVE the current master's.
   * Strictly increasing from term to term, never 0 (ignored for 'equal').
   */
  readonly generationId: bigint;
  /** why it changed, for the log: 'lease lost', 'elected' */
  readonly reason?: string;
  /** who is master, when the election knows: a controller id */
  readonly master?: string;
}

/**
 * Who is master of each switch: StaticMastership, ManualMastership, or the election in etcd
 * (EtcdMastership in etcd-mastership.ts: a lease-backed key per zone, its create revision as the generation).
 */
export interface Mastership {
  /** the decision for a switch now; asked when it connects */
  decision(dpid: bigint): MastershipDecision;
  /** every later decision, any switch; a lost lease is a SLAVE decision, sent at once */
  readonly changes$: Observable<MastershipDecision>;
}

/** One controller: EQUAL without a generation (no role request, as before roles existed), else always MASTER with it. */
export class StaticMastership implements Mastership {
  readonly changes$: Observable<MastershipDecision> = NEVER;
  constructor(private readonly generationId?: bigint) {
    if (generationId !== undefined) checkGenerationId(generationId);
  }
  decision(dpid: bigint): MastershipDecision {
    return this.generationId === undefined ? { dpid, role: 'equal', generationId: 0n } : { dpid, role: 'master', generationId: this.generationId };
  }
}

/** Decisions set by hand: for tests, and for an operator's forced failover. */
export class ManualMastership implements Mastership {
  private readonly decisions = new Map<bigint, MastershipDecision>();
  private readonly subject = new Subject<MastershipDecision>();
  readonly changes$ = this.subject.asObservable();

  /** `initial`: the decision for every switch not `set` yet */
  constructor(private readonly initial: Omit<MastershipDecision, 'dpid'>) {}

  decision(dpid: bigint): MastershipDecision {
    return this.decisions.get(dpid) ?? { dpid, ...this.initial };
  }

  set(dpid: bigint, role: MastershipRole, generationId: bigint, reason = 'set by hand'): void {
    const d: MastershipDecision = { dpid, role, generationId, reason };
    this.decisions.set(dpid, d);
    this.subject.next(d);
  }
}

/** The reconciler may write to a session only while its gate is open. */
export interface WriteGate {
  writable(dpid: bigint, session: SwitchSession): boolean;
  readonly changes$: Observable<WriteGateChange>;
}

export interface WriteGateChange {
  readonly dpid: bigint;
  readonly session: SwitchSession;
  readonly writable: boolean;
}

interface SwitchMastership {
  decision: MastershipDecision;
  session: SwitchSession | undefined;
  /** the highest generation seen for this switch: in decisions, role replies and role statuses */
  highest: bigint;
  /** the master term this controller last claimed */
  claimed: bigint | undefined;
  /** bumped by every decision and connection: a reply to an older claim opens nothing */
  epoch: number;
  open: boolean;
}

/**
 * Applies the Mastership's decisions to the switches: asks each connected switch for the decided
 * role, opens the write gate once the switch acked MASTER (the reconciler then syncs by diff) and
 * closes it, with one log line, the moment mastership is lost: a role status, an IS_SLAVE error,
 * a STALE refusal, or a SLAVE decision. A MASTER decision whose generation is not above every
 * generation seen for its switch is refused (GenerationIdError) without asking the switch.
 */
export class RoleCoordinator implements WriteGate {
  private readonly switches = new Map<bigint, SwitchMastership>();
  private readonly gateSubject = new Subject<WriteGateChange>();
  private readonly subscriptions: Subscription[] = [];
  private readonly errorSubject = new Subject<ControllerError>();
  private readonly log: Logger;
  readonly changes$ = this.gateSubject.asObservable();
  /** refused decisions and role requests, each also logged */
  readonly errors$ = this.errorSubject.asObservable();

  constructor(
    private readonly controller: Pick<Controller, 'switchUp$' | 'switchDown$' | 'roleLost$'>,
    private readonly mastership: Mastership,
    log: Logger,
  ) {
    this.log = log.child({ component: 'mastership' });
  }

  start(): void {
    this.subscriptions.push(
      this.controller.switchUp$.subscribe((e) => this.onSwitchUp(e)),
      this.controller.switchDown$.subscribe((e) => this.onSwitchDown(e)),
      this.controller.roleLost$.subscribe((e) => this.onRoleLost(e)),
      this.mastership.changes$.subscribe((d) => this.onDecision(d)),
    );
  }

  stop(): void {
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    this.gateSubject.complete();
    this.errorSubject.complete();
  }

  /** the controller the last decision for this switch named master (undefined before one, or when it named none) */
  masterOf(dpid: bigint): string | undefined {
    return this.switches.get(dpid)?.decision.master;
  }

  writable(dpid: bigint, session: SwitchSession): boolean {
    const s = this.switches.get(dpid);
    return s !== undefined && s.open && s.session === session && session.role !== 'slave';
  }

  private onSwitchUp(e: SwitchUpEvent): void {
    let s = this.switches.get(e.dpid);
    if (!s) this.switches.set(e.dpid, (s = { decision: this.mastership.decision(e.dpid), session: undefined, highest: 0n, claimed: undefined, epoch: 0, open: false }));
    s.session = e.session;
    s.open = false;
    this.apply(s, s.decision);
  }

  private onSwitchDown(e: SwitchDownEvent): void {
    const s = this.switches.get(e.dpid);
    if (s?.session !== e.session) return;
    s.session = undefined;
    s.open = false;
    s.epoch++;
  }

  private onDecision(d: MastershipDecision): void {
    const s = this.switches.get(d.dpid);
    if (!s) {
      // not connected yet: its switch-up asks the Mastership
      return;
    }
    this.apply(s, d);
  }

  private apply(s: SwitchMastership, d: MastershipDecision): void {
    const dpid = d.dpid;
    s.epoch++;
    if (d.role !== 'equal') {
      try {
        checkGenerationId(d.generationId, { dpid });
        // our own term again (a reconnect) is fine; any other must be newer than all seen
        if (d.role === 'master' && d.generationId <= s.highest && !(d.generationId === s.claimed && s.claimed === s.highest)) {
          throw new GenerationIdError(d.generationId, `not above ${s.highest}, the highest generation seen for this switch; not claimed`, { dpid });
        }
      } catch (e) {
        this.refuse(e as GenerationIdError, s);
        return;
      }
      if (d.generationId > s.highest) s.highest = d.generationId;
    }
    s.decision = d;
    const session = s.session;
    if (!session) return;
    if (d.role === 'equal') return this.setOpen(s, session, session.role !== 'slave');
    if (d.role === 'slave') {
      // a slave decision with our own generation is our term ending (a lease not renewed): nobody newer yet
      const to = d.generationId === s.claimed ? undefined : d.generationId;
      if (s.open) this.log.warn({ dpid: formatDpid(dpid), generationId: String(d.generationId) }, describeLoss(dpid, d.reason ?? 'mastership', to, to === undefined ? undefined : s.claimed));
      else this.log.info({ dpid: formatDpid(dpid), generationId: String(d.generationId), master: d.master }, `slave of 0x${formatDpid(dpid)}, master is ${d.master ?? 'nobody yet'}`);
      this.setOpen(s, session, false);
      // fences this session's writes at once, before the switch answers
      session.requestRole('slave', d.generationId).catch((e: Error) => this.log.info({ dpid: formatDpid(dpid), err: e }, 'slave role request failed; writes stay fenced'));
      return;
    }
    s.claimed = d.generationId;
    const epoch = s.epoch;
    session.requestRole('master', d.generationId).then(
      (reply) => {
        if (reply.generationId > s.highest) s.highest = reply.generationId;
        if (s.epoch !== epoch || s.session !== session) return; // a later decision or connection took over
        if (session.role !== 'master') {
          this.log.warn({ dpid: formatDpid(dpid), role: reply.role }, 'switch did not make us master; not writing');
          return;
        }
        this.log.info({ dpid: formatDpid(dpid), generationId: String(d.generationId) }, `master of 0x${formatDpid(dpid)} with generation ${d.generationId}`);
        this.setOpen(s, session, true);
      },
      (e: Error) => {
        // a STALE refusal also arrives as roleLost$, which logs it
        if (e instanceof RoleRequestError && e.refusal === 'stale') return;
        this.refuse(e instanceof ControllerError ? e : new GenerationIdError(d.generationId, e.message, { dpid }), s);
      },
    );
  }

  private onRoleLost(e: RoleLostEvent): void {
    const s = this.switches.get(e.dpid);
    if (!s || s.session !== e.session) return;
    if (e.generationId !== undefined && e.generationId > s.highest) s.highest = e.generationId;
    this.log.warn({ dpid: formatDpid(e.dpid), reason: e.reason, generationId: e.generationId?.toString() }, describeLoss(e.dpid, e.reason, e.generationId, s.claimed));
    s.epoch++;
    this.setOpen(s, e.session, false);
  }

  private setOpen(s: SwitchMastership, session: SwitchSession, open: boolean): void {
    if (s.open === open) return;
    s.open = open;
    this.gateSubject.next({ dpid: s.decision.dpid, session, writable: open });
  }

  private refuse(error: ControllerError, s: SwitchMastership): void {
    this.log.error({ err: error, dpid: formatDpid(s.decision.dpid) }, error.message);
    this.errorSubject.next(error);
  }
}
