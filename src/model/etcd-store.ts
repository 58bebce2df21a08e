import type { Etcd3, IEvent, IWatchResponse, Watcher } from 'etcd3';
import { BehaviorSubject, type Observable, Subject } from 'rxjs';
import { EtcdUnreachableError, connectEtcd, readPrefix, reasonOf } from './etcd-client';
import { CURRENT_KEY, ETCD_ROOT } from './etcd-layout';
import { StoredModel } from './etcd-model';
import { sameData } from './equal';
import type { ModelValidationError } from './errors';
import { type ModelStore, withHypervisorAccess } from './store';
import type { HypervisorAccess, NetworkModel } from './types';

/** What the store says about its connection (a pino logger fits). */
export interface StoreLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface EtcdModelStoreOptions {
  /** hypervisor name → how this deployment reaches it, merged into every version of the model read */
  hypervisors?: Readonly<Record<string, HypervisorAccess>>;
  log?: StoreLog;
  /** how long the first read may take before open() gives up (default 5 s) */
  connectTimeoutMs?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * The model in etcd (layout: etcd-layout.ts). One read of every key at a revision R, then a watch
 * from R+1; each revision that touches the generation in force (one etcd transaction) is one model
 * version, validated as a change of the one before (etcd-model.ts: only what the change can
 * affect): valid ones go to model$, invalid ones to rejected$ and the running model stays. After a
 * lost connection the watch resumes after the last applied revision, and events at or below it are
 * never applied again; if that revision was compacted meanwhile, the store reads everything again
 * at a new revision.
 */
export class EtcdModelStore implements ModelStore {
  private readonly subject: BehaviorSubject<NetworkModel>;
  private readonly rejectedSubject = new Subject<ModelValidationError>();
  readonly model$: Observable<NetworkModel>;
  readonly rejected$ = this.rejectedSubject.asObservable();
  /** the last revision whose events are applied (or that the last full read was at) */
  private applied: number;
  private modelRevision: number;
  private watcher: Watcher | undefined;
  /** when the current outage began; undefined while etcd answers */
  private unreachableSince: number | undefined;
  private closed = false;
  /** who waits for the store to reach a revision */
  private readonly waiting = new Set<{ revision: number; resolve: () => void }>();

  /**
   * Reads the model; throws EtcdUnreachableError when no endpoint answers in time and
   * ModelValidationError when the model in etcd is invalid.
   */
  static async open(endpoints: readonly string[], options: EtcdModelStoreOptions = {}): Promise<EtcdModelStore> {
    const client = connectEtcd(endpoints);
    try {
      return await EtcdModelStore.follow(client, endpoints, options, true);
    } catch (e) {
      client.close();
      throw e;
    }
  }

  /** The store on a client of the caller's, which close() leaves open unless `ownsClient`. */
  static async follow(client: Etcd3, endpoints: readonly string[], options: EtcdModelStoreOptions = {}, ownsClient = false): Promise<EtcdModelStore> {
    const read = await readPrefix(client, ETCD_ROOT, { deadlineMs: options.connectTimeoutMs ?? 5000 }).catch((e: unknown) => {
      throw new EtcdUnreachableError(endpoints, reasonOf(e), { cause: e });
    });
    return new EtcdModelStore(client, ownsClient, endpoints, options, new StoredModel(read.kvs), read.revision);
  }

  private constructor(
    private readonly client: Etcd3,
    private readonly ownsClient: boolean,
    readonly endpoints: readonly string[],
    private readonly options: EtcdModelStoreOptions,
    private readonly stored: StoredModel,
    revision: number,
  ) {
    this.applied = revision;
    this.modelRevision = revision;
    this.subject = new BehaviorSubject(withHypervisorAccess(stored.model, options.hypervisors));
    this.model$ = this.subject.asObservable();
    this.watch();
  }

  current(): NetworkModel {
    return this.subject.value;
  }

  /** the etcd revision current() was read at: set before model$ emits it */
  get revision(): number {
    return this.modelRevision;
  }

  private watch(): void {
    // watcher() attaches at once, so no response can come before our handlers
    const w = this.client.watch().prefix(ETCD_ROOT).startRevision(String(this.applied + 1)).watcher();
    this.watcher = w;
    w.on('data', (res: IWatchResponse) => this.applyEvents(res.events));
    w.on('connected', () => this.reachable());
    w.on('disconnected', (err: Error) => {
      // The package re-attaches from its own mark, the last response's header revision + 1. That
      // can be past events we never got: a catch-up response carries at most 1000 revisions of
      // events but the current revision in its header, and a create response has only the header.
      w.request.start_revision = String(this.applied + 1);
      this.unreachable(err);
    });
    w.on('error', (err: Error) => void this.watchCanceled(w, err));
  }

  /** Applies each revision's events as one change, in order; those at or below `applied` are ones we have. */
  private applyEvents(events: readonly IEvent[]): void {
    for (let i = 0; i < events.length; ) {
      const revision = Number(events[i]!.kv.mod_revision);
      let j = i + 1;
      while (j < events.length && Number(events[j]!.kv.mod_revision) === revision) j++;
      if (revision > this.applied) this.applyRevision(revision, events.slice(i, j));
      i = j;
    }
  }

  private applyRevision(revision: number, events: readonly IEvent[]): void {
    const outcome = this.stored.apply(events.map((ev) => ({ type: ev.type, key: ev.kv.key.toString(), value: ev.kv.value, modRevision: Number(ev.kv.mod_revision) })));
    this.applied = revision;
    if (outcome && 'rejected' in outcome) this.rejectedSubject.next(outcome.rejected);
    else if (outcome) this.publish(revision, outcome.model);
    this.wake();
  }

  private publish(revision: number, model: NetworkModel): void {
    this.modelRevision = revision;
    this.subject.next(withHypervisorAccess(model, this.options.hypervisors));
  }

  /** The keys and model as of the last applied revision (etcd-writer.ts checks writes against it). */
  get keys(): StoredModel {
    return this.stored;
  }

  /** the last revision whose events are applied */
  get appliedRevision(): number {
    return this.applied;
  }

  /** Resolves once the store has applied `revision`; false when `timeoutMs` passes first. */
  reached(revision: number, timeoutMs: number): Promise<boolean> {
    if (this.applied >= revision) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = { revision, resolve: () => resolve(true) };
      this.waiting.add(waiter);
      setTimeout(() => {
        if (this.waiting.delete(waiter)) resolve(false);
      }, timeoutMs).unref();
    });
  }

  private wake(): void {
    for (const w of this.waiting) {
      if (w.revision > this.applied) continue;
      this.waiting.delete(w);
      w.resolve();
    }
  }

  /**
   * etcd ended the watch: mostly because its start revision was compacted, which etcd says in ways
   * that vary by version, so a read at that revision tells. Otherwise the watch starts again there.
   */
  private async watchCanceled(w: Watcher, err: Error): Promise<void> {
    if (this.closed || this.watcher !== w) return;
    this.watcher = undefined;
    const from = this.applied + 1;
    for (let delay = 100; !this.closed; delay = Math.min(2 * delay, 2000)) {
      try {
        await this.client.kv.range({ key: Buffer.from(CURRENT_KEY), revision: from, count_only: true });
      } catch (e) {
        if (/compacted/i.test(reasonOf(e))) return this.readAgain(`revision ${from} was compacted`);
        // a revision not written yet is no loss
        if (!/future revision/i.test(reasonOf(e))) {
          this.unreachable(e);
          await sleep(delay);
          continue;
        }
      }
      this.options.log?.warn({ reason: reasonOf(err), from }, 'etcd ended the model watch; watching again');
      this.watch();
      return;
    }
  }

  /** A full read at the latest revision, retried until etcd answers; then the watch goes on from there. */
  private async readAgain(why: string): Promise<void> {
    for (let delay = 100; !this.closed; delay = Math.min(2 * delay, 2000)) {
      try {
        const read = await readPrefix(this.client, ETCD_ROOT, { deadlineMs: 5000 });
        if (this.closed) return;
        this.options.log?.warn({ revision: read.revision, after: this.applied }, `${why}: read the whole model again at revision ${read.revision}`);
        this.applied = read.revision;
        const before = this.stored.model;
        const outcome = this.stored.reset(read.kvs);
        if ('rejected' in outcome) this.rejectedSubject.next(outcome.rejected);
        else if (!sameData(outcome.model, before)) this.publish(read.revision, outcome.model);
        this.wake();
        this.watch();
        return;
      } catch (e) {
        this.unreachable(e);
        await sleep(delay);
      }
    }
  }

  /** logged once per outage */
  private unreachable(err: unknown): void {
    if (this.closed || this.unreachableSince !== undefined) return;
    this.unreachableSince = Date.now();
    this.options.log?.warn({ endpoints: this.endpoints.join(','), reason: reasonOf(err), revision: this.applied }, 'etcd unreachable; keeping the running model, retrying');
  }

  private reachable(): void {
    if (this.unreachableSince === undefined) return;
    this.options.log?.info({ endpoints: this.endpoints.join(','), downMs: Date.now() - this.unreachableSince, from: this.applied + 1 }, 'etcd reachable again; watching from the revision after the last applied');
    this.unreachableSince = undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await Promise.race([w.cancel().catch(() => undefined), sleep(1000)]);
    if (this.ownsClient) this.client.close();
    this.subject.complete();
    this.rejectedSubject.complete();
  }
}
