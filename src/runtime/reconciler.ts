import type { Logger } from 'pino';
import { Subject, type Observable, type Subscription } from 'rxjs';
import {
  OFPBF_ATOMIC,
  OFPBF_ORDERED,
  OFPG_ANY,
  OFPP,
  OFPTT_ALL,
  OfDecodeError,
  OfEncodeError,
  bundleAdd,
  bundleControl,
  decodeBundle,
  formatMessage,
  type BundleCtrlType,
  type FlowMod,
  type FlowStats,
  type FlowStatsRequestBody,
  type GroupDesc,
  type GroupMod,
  type OfMessage,
  type WireFlowStats,
  wireFlowStats,
} from '../openflow';
import type { ControllerConfig } from '../controller/config';
import { ControllerError, MalformedMessageError, OfSwitchError, RequestTimeoutError, SessionClosedError, formatDpid } from '../controller/errors';
import { NotMasterError, isSlaveError } from '../controller/role';
import { errorFields } from '../controller/log-limiter';
import type { SwitchDownEvent, SwitchUpEvent } from '../controller/events';
import type { SwitchSession } from '../controller/session';
import type { DesiredChange, DesiredState } from './desired-state';
import type { WriteGate, WriteGateChange } from './mastership';
import { appOfCookie } from '../sdk/cookie';
import { flowMod } from '../sdk/flow';
import { diffFlows, diffWireFlows, type FlowDiff, type SlotConflict, type WireFlowDiff } from '../sdk/diff';
import { diffGroups, groupMod, type Group, type GroupConflict, type GroupDiff } from '../sdk/group';
import type { Flow } from '../sdk/flow';

/** What the reconciler needs from the controller (the Controller itself, or a test double). */
export interface ReconcilerSwitches {
  readonly switchUp$: Observable<SwitchUpEvent>;
  readonly switchDown$: Observable<SwitchDownEvent>;
  readonly errors$: Observable<ControllerError>;
  readonly config: Pick<ControllerConfig, 'logLimiter'>;
}

export interface ReconcilerOptions {
  /** apps whose stale flows may be deleted: the running apps and the pipeline (app id 1) */
  ownedApps: ReadonlySet<number>;
  log: Logger;
  /** use OF1.3 bundles when the switch supports them (default true) */
  bundles?: boolean;
  /**
   * Batches with more flow-mods go without a bundle (default 4096). A bundle is committed in one
   * step: the switch holds the whole batch in memory and stops answering while it commits, which for
   * tens of thousands of flows outlasts echo timeouts (ovn#261). Big batches are initial installs,
   * where there is no running state for atomicity to protect.
   */
  maxBundleMessages?: number;
  /** how long the first bundle open of a session may take before bundles count as unsupported (default 3000) */
  bundleProbeTimeoutMs?: number;
  /** when set, a switch is written to only while its gate is open (this controller is its master); opening syncs it by diff */
  gate?: WriteGate;
  /**
   * Full syncs (flow and group dump, diff, the difference sent) running at once (default 32); the
   * others wait their turn in the state 'queued'. A reconnect storm of a thousand switches then
   * queues instead of dumping every table at once, where the dumps outlast the request timeout.
   */
  maxConcurrentFullSyncs?: number;
  /** a sync that failed (timeout, closed buffer) is retried by a full sync after this delay, doubled per failure up to `retryMaxMs` (default 500) */
  retryInitialMs?: number;
  /** the longest wait between retries (default 30000) */
  retryMaxMs?: number;
}

/**
 * Where a switch's sync stands: 'queued' waits for a full sync slot, 'full' reads and diffs it,
 * 'incremental' sends a change, 'backoff' waits to retry a failed sync, 'idle' has nothing to send
 * (in sync as far as the controller knows), 'down' has no session.
 */
export type SwitchSyncState = 'down' | 'queued' | 'full' | 'incremental' | 'backoff' | 'idle';

export type SyncKind = 'full' | 'incremental';

/** One batch sent to one switch (or not: `via: 'none'` when the diff was empty). */
export interface SyncReport {
  readonly dpid: bigint;
  readonly kind: SyncKind;
  readonly deletes: number;
  readonly modifies: number;
  readonly adds: number;
  readonly via: 'bundle' | 'barrier' | 'none';
  /** group-mods of the batch (adds, modifies and deletes) */
  readonly groupMods: number;
  /** flow-mods and group-mods the switch rejected, and batch failures (commit, timeout) */
  readonly errors: number;
  readonly ms: number;
}

/** A flow-mod or group-mod the switch rejected, or a sync that failed; carries the switch, xid and the mod as text. */
export class ReconcileError extends ControllerError {
  override readonly name: string = 'ReconcileError';
  constructor(
    message: string,
    readonly kind: SyncKind,
    /** the rejected flow-mod or group-mod as text, when one is to blame */
    readonly flow: string | undefined,
    context: { dpid: bigint; xid?: number; remote?: string; msgType?: 'FLOW_MOD' | 'GROUP_MOD' },
    cause?: unknown,
  ) {
    super(flow ? `${message}: ${flow}` : message, { ...context, ...(flow && { msgType: context.msgType ?? ('FLOW_MOD' as const) }) }, cause === undefined ? undefined : { cause });
  }
}

/**
 * Two desired flows in one slot (table, priority, match), from two owners or twice from one: the
 * switch holds one flow per slot, so the later is installed and the earlier lost. Found when a full
 * sync diffs everything desired for a switch, and within one owner's change.
 */
export class FlowSlotConflictError extends ReconcileError {
  override readonly name = 'FlowSlotConflictError';
  constructor(
    kind: SyncKind,
    readonly conflict: SlotConflict,
    dpid: bigint,
  ) {
    const { earlier, later } = conflict;
    const owners = earlier.cookie === later.cookie ? `twice by cookie ${hex(later.cookie)}` : `by cookies ${hex(earlier.cookie)} (app ${appOfCookie(earlier.cookie)}) and ${hex(later.cookie)} (app ${appOfCookie(later.cookie)})`;
    super(`table ${later.table} priority ${later.priority}: one slot wanted ${owners}; the later is installed`, kind, formatMessage(flowMod('add', later)), { dpid });
  }
}

const hex = (cookie: bigint): string => `0x${cookie.toString(16)}`;

/** Two desired groups with one id and different contents: the later is installed, the earlier lost. */
export class GroupIdConflictError extends ReconcileError {
  override readonly name = 'GroupIdConflictError';
  constructor(
    kind: SyncKind,
    readonly conflict: GroupConflict,
    dpid: bigint,
  ) {
    super(`group ${conflict.later.groupId} (0x${conflict.later.groupId.toString(16)}) is desired twice with different buckets; the later is installed`, kind, formatMessage(groupMod('add', conflict.later)), { dpid, msgType: 'GROUP_MOD' });
  }
}

/** The switch answered a bundle control request with something other than its reply. */
export class BundleReplyError extends ControllerError {
  override readonly name = 'BundleReplyError';
}

const BUNDLE_FLAGS = OFPBF_ORDERED | OFPBF_ATOMIC;

type Mod = FlowMod | GroupMod;

/** a flow-mod or group-mod the switch refused, or that could not even be encoded */
interface Rejected {
  error: OfSwitchError | OfEncodeError;
  mod: Mod;
}

/** one owner's change since the last batch (first `before`, last `after`) */
interface Pending<T> {
  before: readonly T[];
  after: readonly T[];
}

/** One switch's sync state. Everything sent to a switch goes through its one worker, in order. */
interface SwitchSync {
  readonly dpid: bigint;
  session: SwitchSession | undefined;
  /** the next run re-reads the switch; changes until then are part of that read */
  full: boolean;
  /** owner cookie → the change to its flows since the last batch */
  readonly pending: Map<bigint, Pending<Flow>>;
  /** owner cookie → the change to its groups since the last batch */
  readonly pendingGroups: Map<bigint, Pending<Group>>;
  /** after a batch with rejected mods the next change re-reads the switch once; a failed retry is not retried (a sync that throws is retried with backoff instead) */
  retry: 'none' | 'armed' | 'retrying' | 'exhausted';
  running: Promise<void> | undefined;
  /** what the worker is doing now (not 'down', 'backoff' or 'idle': those follow from the fields) */
  phase: 'queued' | 'full' | 'incremental' | undefined;
  /** syncs failed in a row (thrown, not rejected flow-mods): sets the backoff */
  failures: number;
  /** the retry after a failed sync, while it waits */
  backoff: NodeJS.Timeout | undefined;
}

/** every flow of every table */
const FLOW_DUMP: FlowStatsRequestBody = { mpType: 'FLOW', tableId: OFPTT_ALL, outPort: OFPP.ANY, outGroup: OFPG_ANY, cookie: 0n, cookieMask: 0n, match: [] };

/** Every flow of every table, with its counters: what a full sync compares with. */
export async function readInstalledFlows(session: SwitchSession): Promise<FlowStats[]> {
  const reply = await session.multipart(FLOW_DUMP);
  return reply.flows;
}

/** The same flow dump, read in place: what a full sync compares with, decoding only what differs. */
export async function readInstalledWireFlows(session: SwitchSession): Promise<WireFlowStats[]> {
  const frames = await session.multipartFrames(FLOW_DUMP);
  try {
    return wireFlowStats(frames);
  } catch (e) {
    if (!(e instanceof OfDecodeError)) throw e;
    throw new MalformedMessageError(e, false, { dpid: session.dpid, remote: session.remote, msgType: 'MULTIPART_REPLY' });
  }
}

/** Every group with its buckets (OFPMP_GROUP_DESC): what a full sync compares the desired groups with. */
export async function readInstalledGroups(session: SwitchSession): Promise<GroupDesc[]> {
  const reply = await session.multipart({ mpType: 'GROUP_DESC' });
  return reply.groups;
}

/**
 * A group one owner drops and another takes in the same batch is the switch's already: the add
 * becomes a modify and the delete goes (an add would fail with GROUP_EXISTS, and the delete, sent
 * last, would remove it).
 */
function handedOver(diff: GroupDiff): GroupDiff {
  const deleted = new Set(diff.deletes.map((g) => g.groupId));
  const taken = diff.adds.filter((g) => deleted.has(g.groupId));
  if (taken.length === 0) return diff;
  const takenIds = new Set(taken.map((g) => g.groupId));
  return {
    adds: diff.adds.filter((g) => !takenIds.has(g.groupId)),
    modifies: [...diff.modifies, ...taken.map((g) => ({ ...g, command: 'modify' as const }))],
    deletes: diff.deletes.filter((g) => !takenIds.has(g.groupId)),
    conflicts: diff.conflicts,
  };
}

function clearPending(sync: SwitchSync): void {
  sync.pending.clear();
  sync.pendingGroups.clear();
}

function addPending<T>(pending: Map<bigint, Pending<T>>, cookie: bigint, before: readonly T[], after: readonly T[]): void {
  pending.set(cookie, { before: pending.get(cookie)?.before ?? before, after });
}

/**
 * Keeps each switch's flows and groups equal to DesiredState without flushing: on every switch-up it
 * reads the switch's flows and groups and sends only the difference (group adds and modifies, flow
 * deletes, modifies and adds, then group deletes); afterwards each
 * desired-state change is diffed against the owner's previous flows and sent the same way. Batches go
 * in an ordered, atomic bundle when the switch supports one, else as pipelined flow-mods and a barrier.
 */
export class Reconciler {
  private readonly syncs = new Map<bigint, SwitchSync>();
  private readonly bundleSupport = new WeakMap<SwitchSession, boolean>();
  private readonly errorSubject = new Subject<ReconcileError>();
  private readonly reportSubject = new Subject<SyncReport>();
  private readonly subscriptions: Subscription[] = [];
  private readonly log: Logger;
  private readonly maxBundleMessages: number;
  private readonly maxConcurrentFullSyncs: number;
  /** full syncs holding a slot */
  private fullSyncsRunning = 0;
  /** switches waiting for a full sync slot, first come first served, each with its grant */
  private readonly fullSyncQueue = new Map<SwitchSync, (handed: boolean) => void>();
  private nextBundleId = 1;

  /** rejected flow-mods and failed syncs, each also logged */
  readonly errors$ = this.errorSubject.asObservable();
  /** one report per batch, including empty full syncs */
  readonly synced$ = this.reportSubject.asObservable();

  constructor(
    private readonly switches: ReconcilerSwitches,
    private readonly desired: DesiredState,
    private readonly options: ReconcilerOptions,
  ) {
    this.log = options.log.child({ component: 'reconciler' });
    this.maxBundleMessages = options.maxBundleMessages ?? 4096;
    this.maxConcurrentFullSyncs = options.maxConcurrentFullSyncs ?? 32;
    if (!(this.maxConcurrentFullSyncs >= 1)) throw new RangeError(`maxConcurrentFullSyncs must be at least 1, got ${this.maxConcurrentFullSyncs}`);
  }

  start(): void {
    this.subscriptions.push(
      this.switches.switchUp$.subscribe((e) => this.onSwitchUp(e)),
      this.switches.switchDown$.subscribe((e) => this.onSwitchDown(e)),
      this.desired.changes$.subscribe((c) => this.onChange(c)),
    );
    if (this.options.gate) this.subscriptions.push(this.options.gate.changes$.subscribe((c) => this.onGate(c)));
  }

  stop(): void {
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    for (const sync of this.syncs.values()) clearTimeout(sync.backoff);
    this.errorSubject.complete();
    this.reportSubject.complete();
  }

  /** Where the sync of `dpid` stands; undefined for a switch never seen. */
  state(dpid: bigint): SwitchSyncState | undefined {
    const sync = this.syncs.get(dpid);
    if (!sync) return undefined;
    if (!sync.session) return 'down';
    return sync.phase ?? (sync.backoff ? 'backoff' : 'idle');
  }

  /** Full syncs running and waiting for a slot, over all switches (for metrics). */
  fullSyncs(): { running: number; queued: number } {
    return { running: this.fullSyncsRunning, queued: this.fullSyncQueue.size };
  }

  /** Resolves when nothing is being sent to `dpid` (for tests and the control endpoint). */
  async settled(dpid: bigint): Promise<void> {
    for (let s = this.syncs.get(dpid); s?.running; s = this.syncs.get(dpid)) await s.running;
  }

  private onSwitchUp(e: SwitchUpEvent): void {
    const sync: SwitchSync = this.syncs.get(e.dpid) ?? {
      dpid: e.dpid, session: undefined, full: true, pending: new Map(), pendingGroups: new Map(), retry: 'none', running: undefined, phase: undefined, failures: 0, backoff: undefined,
    };
    sync.session = e.session;
    sync.full = true;
    clearPending(sync);
    sync.retry = 'none';
    sync.failures = 0;
    this.cancelBackoff(sync);
    this.syncs.set(e.dpid, sync);
    this.kick(sync);
  }

  private onSwitchDown(e: SwitchDownEvent): void {
    const sync = this.syncs.get(e.dpid);
    if (sync?.session !== e.session) return;
    sync.session = undefined;
    this.cancelBackoff(sync);
    // a switch that went while waiting for its slot leaves the queue (its worker then ends)
    const grant = this.fullSyncQueue.get(sync);
    if (grant) {
      this.fullSyncQueue.delete(sync);
      grant(false);
    }
  }

  private mayWrite(sync: SwitchSync, session: SwitchSession): boolean {
    return this.options.gate === undefined || this.options.gate.writable(sync.dpid, session);
  }

  /** Mastership won: a full sync by diff, as on connect. Lost: nothing more is sent; the next win re-reads the switch. */
  private onGate(c: WriteGateChange): void {
    const sync = this.syncs.get(c.dpid);
    if (sync?.session !== c.session) return;
    sync.full = true;
    clearPending(sync);
    if (!c.writable) return;
    sync.retry = 'none';
    this.cancelBackoff(sync);
    this.kick(sync);
  }

  private onChange(c: DesiredChange): void {
    const sync = this.syncs.get(c.dpid);
    // A switch that is down, or whose full sync has not read it yet (queued, or waiting to retry), gets this change with that read.
    if (!sync?.session || sync.full) return;
    if (sync.retry === 'armed') {
      sync.retry = 'retrying';
      sync.full = true;
      clearPending(sync);
    } else if (c.kind === 'flows') {
      addPending(sync.pending, c.cookie, c.before, c.after);
    } else {
      addPending(sync.pendingGroups, c.cookie, c.before, c.after);
    }
    this.kick(sync);
  }

  private kick(sync: SwitchSync): void {
    if (sync.running) return;
    // Start after the current task: the changes an app makes in one go (one handler calling
    // setFlows for several owners) then leave in one batch, one atomic bundle, not the first alone.
    sync.running = Promise.resolve()
      .then(() => this.run(sync))
      .finally(() => (sync.running = undefined));
  }

  private async run(sync: SwitchSync): Promise<void> {
    while (sync.session && (sync.full || sync.pending.size > 0 || sync.pendingGroups.size > 0) && this.mayWrite(sync, sync.session)) {
      const kind: SyncKind = sync.full ? 'full' : 'incremental';
      if (kind === 'full') {
        if (!(await this.fullSyncSlot(sync))) continue; // the switch went while it waited
        if (!sync.session || !this.mayWrite(sync, sync.session)) {
          this.releaseFullSyncSlot();
          continue;
        }
      }
      const session = sync.session;
      sync.phase = kind;
      try {
        if (kind === 'full') await this.fullSync(sync, session);
        else await this.incrementalSync(sync, session);
        sync.failures = 0;
      } catch (e) {
        if (e instanceof SessionClosedError || sync.session !== session) {
          this.log.debug({ dpid: formatDpid(sync.dpid), kind }, 'switch went away during sync; its next session syncs from scratch');
          if (sync.session === session) return;
          continue; // replaced by a new session, whose switch-up asked for a full sync
        }
        if (e instanceof NotMasterError || !this.mayWrite(sync, session)) {
          // the loss is logged once where it was learnt; winning again re-reads the switch
          this.log.debug({ dpid: formatDpid(sync.dpid), kind }, 'not master any more; stopped sending');
          sync.full = true;
          clearPending(sync);
          continue;
        }
        // the switch's state is unknown: re-read it after a pause, the changes until then folded into that read
        sync.full = true;
        clearPending(sync);
        const delayMs = this.retryDelayMs(sync.failures++);
        this.report(new ReconcileError(`${kind} sync failed (retrying with a full sync in ${delayMs} ms): ${(e as Error)?.message ?? String(e)}`, kind, undefined, { dpid: sync.dpid, remote: session.remote }, e));
        sync.backoff = setTimeout(() => {
          sync.backoff = undefined;
          this.kick(sync);
        }, delayMs);
        return;
      } finally {
        sync.phase = undefined;
        if (kind === 'full') this.releaseFullSyncSlot();
      }
    }
  }

  /**
   * Waits for a full sync slot, in the state 'queued' when all are taken. True once the slot is
   * this switch's (the caller releases it); false when the switch went meanwhile.
   */
  private async fullSyncSlot(sync: SwitchSync): Promise<boolean> {
    if (this.fullSyncsRunning < this.maxConcurrentFullSyncs) {
      this.fullSyncsRunning++;
      return true;
    }
    sync.phase = 'queued';
    this.log.debug({ dpid: formatDpid(sync.dpid), running: this.fullSyncsRunning, queued: this.fullSyncQueue.size + 1 }, 'full sync queued');
    const handed = await new Promise<boolean>((grant) => this.fullSyncQueue.set(sync, grant));
    sync.phase = undefined;
    return handed;
  }

  /** Hands the slot to the first switch waiting, or frees it. */
  private releaseFullSyncSlot(): void {
    for (const [sync, grant] of this.fullSyncQueue) {
      this.fullSyncQueue.delete(sync);
      grant(true);
      return;
    }
    this.fullSyncsRunning--;
  }

  /** The pause before retry `attempt` (0 for the first): doubled per failure, capped. */
  private retryDelayMs(attempt: number): number {
    const initial = this.options.retryInitialMs ?? 500;
    return Math.min(this.options.retryMaxMs ?? 30_000, initial * 2 ** Math.min(attempt, 30));
  }

  private cancelBackoff(sync: SwitchSync): void {
    clearTimeout(sync.backoff);
    sync.backoff = undefined;
  }

  /** Updates the retry state after a batch: a failure arms one retry, a failed retry gives up until reconnect. */
  private settle(sync: SwitchSync, failures: number): void {
    const retrying = sync.retry === 'retrying';
    if (failures === 0) {
      if (retrying) sync.retry = 'none';
    } else if (retrying || sync.retry === 'exhausted') {
      sync.retry = 'exhausted';
      this.log.error({ dpid: formatDpid(sync.dpid) }, 'sync failed again after a retry; not retrying until the switch reconnects');
    } else {
      sync.retry = 'armed';
      this.log.warn({ dpid: formatDpid(sync.dpid) }, 'sync had errors; the next change re-reads the switch and retries once');
    }
  }

  /** Reads the switch's flows and groups, diffs them with everything desired for it, sends the difference. */
  private async fullSync(sync: SwitchSync, session: SwitchSession): Promise<void> {
    const installed = await readInstalledWireFlows(session);
    const installedGroups = await this.readGroups(sync, session);
    if (sync.session !== session) throw new SessionClosedError('replaced', { dpid: sync.dpid });
    // Snapshot now: every change so far is in it, every later one comes as an incremental diff.
    sync.full = false;
    clearPending(sync);
    let diff: WireFlowDiff;
    try {
      diff = diffWireFlows(this.desired.flows(sync.dpid), installed, this.options.ownedApps);
    } catch (e) {
      if (!(e instanceof OfDecodeError)) throw e;
      throw new MalformedMessageError(e, false, { dpid: sync.dpid, remote: session.remote, msgType: 'MULTIPART_REPLY' });
    }
    const groupDiff = diffGroups(this.desired.groups(sync.dpid), installedGroups, this.options.ownedApps);
    await this.apply(sync, session, 'full', diff, groupDiff, { installed: installed.length, decoded: diff.decoded });
  }

  /**
   * The switch's groups; none when it refuses the request (a switch without groups): its flows are
   * still synced, and any group desired for it is then refused and reported on its own.
   */
  private async readGroups(sync: SwitchSync, session: SwitchSession): Promise<GroupDesc[]> {
    try {
      return await readInstalledGroups(session);
    } catch (e) {
      if (!(e instanceof OfSwitchError)) throw e;
      this.log.info({ dpid: formatDpid(sync.dpid), reason: e.message }, 'switch does not describe its groups; syncing its flows only');
      return [];
    }
  }

  private async incrementalSync(sync: SwitchSync, session: SwitchSession): Promise<void> {
    const changes = [...sync.pending.values()];
    const groupChanges = [...sync.pendingGroups.values()];
    clearPending(sync);
    const diff: FlowDiff = { deletes: [], modifies: [], adds: [], conflicts: [] };
    for (const { before, after } of changes) {
      const d = diffFlows(after, before, this.options.ownedApps);
      diff.deletes.push(...d.deletes);
      diff.modifies.push(...d.modifies);
      diff.adds.push(...d.adds);
      diff.conflicts.push(...d.conflicts);
    }
    const groupDiff: GroupDiff = { adds: [], modifies: [], deletes: [], conflicts: [] };
    for (const { before, after } of groupChanges) {
      const d = diffGroups(after, before, this.options.ownedApps);
      groupDiff.adds.push(...d.adds);
      groupDiff.modifies.push(...d.modifies);
      groupDiff.deletes.push(...d.deletes);
      groupDiff.conflicts.push(...d.conflicts);
    }
    await this.apply(sync, session, 'incremental', diff, handedOver(groupDiff));
  }

  /** `read`: for a full sync, the flows the switch reported and how many of them were decoded */
  private async apply(sync: SwitchSync, session: SwitchSession, kind: SyncKind, diff: FlowDiff, groupDiff: GroupDiff, read?: { installed: number; decoded: number }): Promise<void> {
    const started = Date.now();
    for (const c of diff.conflicts) this.report(new FlowSlotConflictError(kind, c, sync.dpid));
    for (const c of groupDiff.conflicts) this.report(new GroupIdConflictError(kind, c, sync.dpid));
    // Groups exist before the flows that reference them, and go after them: OVS refuses a flow whose
    // group is missing, and deleting a group deletes every flow that still references it.
    const mods: Mod[] = [...groupDiff.adds, ...groupDiff.modifies, ...diff.deletes, ...diff.modifies, ...diff.adds, ...groupDiff.deletes];
    const groupMods = groupDiff.adds.length + groupDiff.modifies.length + groupDiff.deletes.length;
    const counts = { deletes: diff.deletes.length, modifies: diff.modifies.length, adds: diff.adds.length, groupMods };
    const logContext = { dpid: formatDpid(sync.dpid), kind, ...counts, ...read };
    if (mods.length === 0) {
      this.log[kind === 'full' ? 'info' : 'debug'](logContext, 'in sync; nothing to send');
      this.settle(sync, 0);
      this.reportSubject.next({ dpid: sync.dpid, kind, ...counts, via: 'none', errors: 0, ms: Date.now() - started });
      return;
    }
    if (this.log.isLevelEnabled('debug')) for (const m of mods) this.log.debug({ dpid: logContext.dpid, kind }, formatMessage(m));
    const { via, rejected, failure } = await this.send(session, mods);
    // IS_SLAVE errors cut the batch: a lost mastership, not rejected flows
    if (session.role === 'slave') throw new NotMasterError({ dpid: sync.dpid, remote: session.remote });
    for (const { error, mod } of rejected) {
      const name = mod.type === 'FLOW_MOD' ? 'flow-mod' : 'group-mod';
      const what = error instanceof OfEncodeError ? `${name} cannot be encoded` : `switch rejected a ${name}`;
      this.report(new ReconcileError(`${what} (${error.message})`, kind, formatMessage(mod), { dpid: sync.dpid, xid: mod.xid, remote: session.remote, msgType: mod.type }, error));
    }
    if (failure) this.report(new ReconcileError(`${kind} sync: ${failure.message}`, kind, undefined, { dpid: sync.dpid, xid: failure.xid, remote: session.remote }, failure));
    const errors = rejected.length + (failure ? 1 : 0);
    const ms = Date.now() - started;
    this.log[errors ? 'warn' : 'info']({ ...logContext, via, errors, ms }, 'sent the difference');
    this.settle(sync, errors);
    this.reportSubject.next({ dpid: sync.dpid, kind, ...counts, via, errors, ms });
  }

  /**
   * Sends one batch and waits until the switch has processed it. Each flow-mod and group-mod gets its
   * own xid, so an OFPT_ERROR names the mod it is about. A mod that cannot be encoded is reported as
   * rejected and the rest of the batch still goes.
   */
  private async send(session: SwitchSession, batch: readonly Mod[]): Promise<{ via: 'bundle' | 'barrier'; rejected: Rejected[]; failure: OfSwitchError | undefined }> {
    const mods = batch.map((m) => ({ ...m, xid: session.nextXid() }));
    const byXid = new Map(mods.map((m) => [m.xid, m]));
    const rejected: Rejected[] = [];
    const watch = this.switches.errors$.subscribe((e) => {
      if (!(e instanceof OfSwitchError) || e.dpid !== session.dpid || e.xid === undefined || isSlaveError(e)) return;
      const mod = byXid.get(e.xid);
      if (mod) rejected.push({ error: e, mod });
    });
    try {
      const bundleId = mods.length <= this.maxBundleMessages ? await this.openBundle(session) : undefined;
      const wrap = (m: Mod): OfMessage => (bundleId === undefined ? m : bundleAdd(m.xid, bundleId, BUNDLE_FLAGS, m));
      for (const m of mods) {
        try {
          if (!session.send(wrap(m))) await session.drained();
        } catch (e) {
          if (!(e instanceof OfEncodeError)) throw e;
          rejected.push({ error: e, mod: m });
        }
      }
      if (bundleId === undefined) {
        await session.barrier();
        return { via: 'barrier', rejected, failure: undefined };
      }
      try {
        await this.bundleRequest(session, bundleId, 'commit_request', 'commit_reply');
      } catch (e) {
        if (!(e instanceof OfSwitchError)) throw e;
        return { via: 'bundle', rejected, failure: e };
      }
      return { via: 'bundle', rejected, failure: undefined };
    } finally {
      watch.unsubscribe();
    }
  }

  /** Opens a bundle, or returns undefined when this session cannot use one (found out once per session). */
  private async openBundle(session: SwitchSession): Promise<number | undefined> {
    if (this.options.bundles === false || this.bundleSupport.get(session) === false) return undefined;
    const bundleId = this.nextBundleId;
    this.nextBundleId = this.nextBundleId === 0xffffffff ? 1 : this.nextBundleId + 1;
    const probing = !this.bundleSupport.has(session);
    try {
      await this.bundleRequest(session, bundleId, 'open_request', 'open_reply', probing ? this.options.bundleProbeTimeoutMs ?? 3_000 : undefined);
    } catch (e) {
      if (!probing || !(e instanceof OfSwitchError || e instanceof RequestTimeoutError)) throw e;
      this.bundleSupport.set(session, false);
      this.log.info({ dpid: formatDpid(session.dpid!), reason: e.message }, 'switch does not take bundles; sending flow-mods with a barrier');
      return undefined;
    }
    this.bundleSupport.set(session, true);
    return bundleId;
  }

  private async bundleRequest(session: SwitchSession, bundleId: number, request: BundleCtrlType, expected: BundleCtrlType, timeoutMs?: number): Promise<void> {
    const reply = await session.request(bundleControl(0, bundleId, request, BUNDLE_FLAGS), timeoutMs === undefined ? {} : { timeoutMs });
    const decoded = decodeBundle(reply);
    if (!('kind' in decoded) || decoded.kind !== 'control' || decoded.ctlType !== expected || decoded.bundleId !== bundleId) {
      const got = 'kind' in decoded && decoded.kind === 'control' ? `${decoded.ctlType} for bundle ${decoded.bundleId}` : String(decoded);
      throw new BundleReplyError(`bundle ${request}: expected ${expected} for bundle ${bundleId}, got ${got}`, { dpid: session.dpid!, xid: reply.xid, msgType: 'EXPERIMENTER', remote: session.remote });
    }
  }

  private report(error: ReconcileError): void {
    // one per flow the switch refused: a sync of many bad flows is many errors
    const fields = { ...errorFields(error), dpid: formatDpid(error.dpid!), xid: error.xid, flow: error.flow };
    this.switches.config.logLimiter.log(this.log, 'error', error.dpid!, error.name, fields, error.message);
    this.errorSubject.next(error);
  }
}
