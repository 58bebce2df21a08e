/**
 * Mastership elected through etcd (docs/mastership.md). Loaded lazily, like the etcd store: the
 * client takes half a second to load, which a run without an election should not pay.
 *
 * One election per zone, not per switch: etcd holds O(zones) keys and watch events, whatever the
 * number of switches, and every switch of a zone fails over with its zone's master.
 *
 *   /zonemesh/v1/mastership/controllers/ID  {id, zone}  on the controller's lease: who is alive
 *   /zonemesh/v1/mastership/zones/ZONE      {id, zone}  on the master's lease: who is master
 *
 * A zone's master key is only ever created (a transaction comparing its create revision with 0),
 * never overwritten, so its create revision, the generation id, is strictly increasing from term to
 * term and never 0. A controller of the zone campaigns whenever the key is absent; a controller of
 * another zone only while no controller of the zone is alive. A controller of the zone that has been
 * alive for `preemptDelayMs` takes its zone back from a foreign master (deletes that key when it is
 * still the one it saw), and then campaigns.
 *
 * One lease per controller holds both keys. Its keepalive runs every TTL/6; when none has succeeded
 * for TTL/2 (counted from when the last successful one was sent: etcd cannot have expired the lease
 * before that moment + TTL) the controller steps down on every switch, before the lease can expire
 * and anyone else can win. A controller too paused to step down is fenced by the switch: the next
 * master's generation is higher than its own.
 */
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Subject, type Subscription } from 'rxjs';
import { EtcdUnreachableError, connectEtcd, readPrefix, reasonOf } from '../model/etcd-client';
import { ETCD_ROOT } from '../model/etcd-layout';
import type { ModelStore } from '../model/store';
import type { NetworkModel } from '../model/types';
import type { Mastership, MastershipDecision } from './mastership';

export const MASTERSHIP_ROOT = `${ETCD_ROOT}mastership/`;
const CONTROLLERS = `${MASTERSHIP_ROOT}controllers/`;
const ZONES = `${MASTERSHIP_ROOT}zones/`;

/**
 * 2 s: when the dead zone held etcd's leader, a takeover waits for etcd's election (up to 2 election
 * timeouts), the new leader's extension of every lease (one election timeout) and then the TTL: 5 s
 * with 1 s election timeouts only at TTL 2 (docs/mastership.md, TTL trade-off).
 */
export const DEFAULT_LEASE_TTL_S = 2;
export const DEFAULT_PREEMPT_DELAY_MS = 10_000;

export interface EtcdMastershipOptions {
  /** this controller's name in the election: unique among the controllers (default hostname:pid) */
  controllerId: string;
  /** the zone this controller runs in: it is preferred as master of that zone's switches */
  zone: string;
  /** the lease TTL in whole seconds (default 2): the bound on takeover after a crash */
  leaseTtlS?: number;
  /** how long a controller of a zone is alive before it takes the zone back from a foreign master (default 10 s) */
  preemptDelayMs?: number;
  log: Logger;
}

/** Another live controller is registered in the election under this id. */
export class ControllerIdInUseError extends Error {
  override readonly name = 'ControllerIdInUseError';
  constructor(readonly controllerId: string) {
    super(`controller id ${controllerId} is in use in the mastership election by another running controller; give each controller its own --controller-id`);
  }
}

/** a master or controller key's value */
interface Holder {
  id: string;
  zone: string;
}

const keyOfZone = (zone: string) => ZONES + encodeURIComponent(zone);

function holderOf(kv: IKeyValue): Holder | undefined {
  try {
    const v = JSON.parse(kv.value.toString()) as Partial<Holder>;
    return typeof v.id === 'string' && typeof v.zone === 'string' ? { id: v.id, zone: v.zone } : undefined;
  } catch {
    return undefined;
  }
}

const sameDecision = (a: MastershipDecision | undefined, b: MastershipDecision) => a !== undefined && a.role === b.role && a.generationId === b.generationId && a.master === b.master;

export class EtcdMastership implements Mastership {
  private readonly subject = new Subject<MastershipDecision>();
  readonly changes$ = this.subject.asObservable();
  private readonly log: Logger;
  private readonly ttlS: number;
  private readonly preemptDelayMs: number;
  private readonly value: string;

  /** every key under MASTERSHIP_ROOT, as of `viewRevision` */
  private readonly view = new Map<string, IKeyValue>();
  private viewRevision = 0;
  /** zone → the revision at which this controller saw it without a master: the generation its slaves send meanwhile */
  private readonly vacantSince = new Map<string, number>();
  private watcher: Watcher | undefined;

  private leaseId: string | undefined;
  /** performance.now() of this lease's grant: the preemption delay counts from it */
  private leaseSince = 0;
  /** performance.now() up to which the lease is trusted: the last acked keepalive's send time + TTL/2 */
  private trustedUntil = 0;
  private stepDownLogged = false;
  private keepaliveInFlight = false;
  private granting = false;
  private readonly ticker: NodeJS.Timeout;
  private preemptTimer: NodeJS.Timeout | undefined;
  private distrustTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Set<string>();

  private zoneOfDpid = new Map<bigint, string>();
  private zones: string[] = [];
  private readonly decisions = new Map<bigint, MastershipDecision>();
  /** zone → the line last logged for it, so a decision is logged once */
  private readonly zoneLine = new Map<string, string>();
  private readonly modelSubscription: Subscription;
  private closed = false;

  /** Joins the election: grants the lease, registers, reads the election's keys and watches them. Throws when etcd does not answer. */
  static async start(endpoints: readonly string[], store: ModelStore, options: EtcdMastershipOptions): Promise<EtcdMastership> {
    const client = connectEtcd(endpoints);
    const m = new EtcdMastership(client, store, options);
    try {
      // the same id restarted at once: its old registration goes with its old lease, within a TTL
      const deadline = Date.now() + m.ttlS * 1000 + 1000;
      for (;;) {
        try {
          await m.join();
          break;
        } catch (e) {
          if (!(e instanceof ControllerIdInUseError) || Date.now() > deadline) throw e;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      const read = await readPrefix(client, MASTERSHIP_ROOT, { deadlineMs: m.ttlS * 1000 });
      for (const kv of read.kvs) m.view.set(kv.key.toString(), kv);
      m.viewRevision = read.revision;
      m.watch();
      m.evaluate();
      return m;
    } catch (e) {
      await m.close();
      if (e instanceof ControllerIdInUseError) throw e;
      throw new EtcdUnreachableError(endpoints, `joining the mastership election: ${reasonOf(e)}`, { cause: e });
    }
  }

  private constructor(
    private readonly client: Etcd3,
    store: ModelStore,
    private readonly options: EtcdMastershipOptions,
  ) {
    this.log = options.log.child({ component: 'election' });
    this.ttlS = options.leaseTtlS ?? DEFAULT_LEASE_TTL_S;
    this.preemptDelayMs = options.preemptDelayMs ?? DEFAULT_PREEMPT_DELAY_MS;
    this.value = JSON.stringify({ id: options.controllerId, zone: options.zone } satisfies Holder);
    this.ticker = setInterval(() => this.tick(), (this.ttlS * 1000) / 6);
    this.modelSubscription = store.model$.subscribe((model) => this.onModel(model));
  }

  decision(dpid: bigint): MastershipDecision {
    // a switch in no hypervisor of the model has no zone: nobody is its master
    return this.decisions.get(dpid) ?? { dpid, role: 'slave', generationId: BigInt(Math.max(1, this.viewRevision)), reason: 'switch in no zone of the model' };
  }

  /** Steps down everywhere and revokes the lease, so that another controller takes over at once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    clearTimeout(this.preemptTimer);
    clearTimeout(this.distrustTimer);
    this.modelSubscription.unsubscribe();
    await this.watcher?.cancel().catch(() => undefined);
    const lease = this.leaseId;
    this.leaseId = undefined;
    if (lease !== undefined) await this.client.leaseClient.leaseRevoke({ ID: lease }, { deadline: new Date(Date.now() + 1000) }).catch(() => undefined);
    this.subject.complete();
    this.client.close();
  }

  /** a call to etcd gives up after half the lease TTL: its outcome is moot by then */
  private callDeadline(): { deadline: Date } {
    return { deadline: new Date(Date.now() + (this.ttlS * 1000) / 2) };
  }

  private get healthy(): boolean {
    return this.leaseId !== undefined && performance.now() < this.trustedUntil;
  }

  /** Grants a lease and registers this controller on it. */
  private async join(): Promise<void> {
    const sentAt = performance.now();
    const grant = await this.client.leaseClient.leaseGrant({ TTL: this.ttlS }, this.callDeadline());
    // etcd may raise a TTL below its minimum; trust what it granted
    const ttlMs = Number(grant.TTL) * 1000;
    const key = CONTROLLERS + encodeURIComponent(this.options.controllerId);
    const registered = await this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(this.value).lease(grant.ID)).options(this.callDeadline()).commit();
    if (!registered.succeeded) {
      await this.client.leaseClient.leaseRevoke({ ID: grant.ID }, this.callDeadline()).catch(() => undefined);
      throw new ControllerIdInUseError(this.options.controllerId);
    }
    if (this.closed) return;
    this.leaseId = grant.ID;
    this.leaseSince = performance.now();
    this.stepDownLogged = false;
    this.trustUntil(sentAt + ttlMs / 2);
    this.log.info({ controllerId: this.options.controllerId, zone: this.options.zone, lease: grant.ID, ttlS: Number(grant.TTL) }, `joined the election as ${this.options.controllerId} of zone ${this.options.zone}`);
  }

  private tick(): void {
    if (this.closed) return;
    if (this.leaseId === undefined) {
      if (!this.granting) {
        this.granting = true;
        this.join().then(
          () => this.evaluate(),
          (e: unknown) => this.log.debug({ reason: reasonOf(e) }, 'cannot join the election yet; retrying'),
        ).finally(() => (this.granting = false));
      }
      return;
    }
    this.checkLease();
    void this.keepalive(this.leaseId);
    // a campaign that failed (etcd busy, a member lost) is tried again
    this.evaluate();
  }

  /** Steps down once the lease is no longer trusted; runs on every tick and when the trust runs out. */
  private checkLease(): void {
    if (this.closed || this.healthy || this.stepDownLogged || this.leaseId === undefined) return;
    this.stepDownLogged = true;
    this.log.warn({ ttlS: this.ttlS }, `no lease keepalive succeeded for ${this.ttlS / 2} s (TTL ${this.ttlS} s): stepping down, writing nothing until etcd answers`);
    this.evaluate();
  }

  /** Trusts the lease up to `until` (performance.now() time), and checks it then. */
  private trustUntil(until: number): void {
    this.trustedUntil = until;
    clearTimeout(this.distrustTimer);
    this.distrustTimer = setTimeout(() => this.checkLease(), Math.max(0, until - performance.now()) + 1);
  }

  private async keepalive(lease: string): Promise<void> {
    if (this.keepaliveInFlight) return;
    this.keepaliveInFlight = true;
    const sentAt = performance.now();
    try {
      const stream = await this.client.leaseClient.leaseKeepAlive(this.callDeadline());
      const res = await new Promise<{ TTL: string }>((resolve, reject) => {
        stream.on('data', resolve);
        stream.on('error', reject);
        stream.write({ ID: lease });
      });
      stream.end();
      if (this.leaseId !== lease) return;
      if (Number(res.TTL) <= 0) {
        this.log.warn({ lease }, 'lost mastership lease: etcd expired it; stepping down and joining again');
        this.leaseId = undefined;
        this.evaluate();
        return;
      }
      this.trustUntil(sentAt + (Number(res.TTL) * 1000) / 2);
      if (this.stepDownLogged) {
        this.stepDownLogged = false;
        this.log.info({ lease }, 'lease keepalive succeeded again');
        this.evaluate();
      }
    } catch (e) {
      this.log.debug({ reason: reasonOf(e) }, 'lease keepalive failed');
    } finally {
      this.keepaliveInFlight = false;
    }
  }

  private watch(): void {
    const w = this.client.watch().prefix(MASTERSHIP_ROOT).startRevision(String(this.viewRevision + 1)).watcher();
    this.watcher = w;
    w.on('data', (res: IWatchResponse) => {
      for (const ev of res.events) {
        const key = ev.kv.key.toString();
        if (ev.type === 'Put') this.view.set(key, ev.kv);
        else this.view.delete(key);
        this.viewRevision = Math.max(this.viewRevision, Number(ev.kv.mod_revision));
      }
      this.evaluate();
    });
    // resume after what we applied (the package would resume from a later header revision)
    w.on('disconnected', () => (w.request.start_revision = String(this.viewRevision + 1)));
    w.on('error', (err: Error) => void this.rewatch(w, err));
  }

  /** etcd ended the watch (its revision compacted): read everything again and watch from there. */
  private async rewatch(w: Watcher, err: Error): Promise<void> {
    await w.cancel().catch(() => undefined);
    while (!this.closed) {
      try {
        const read = await readPrefix(this.client, MASTERSHIP_ROOT, { deadlineMs: 2000 });
        this.view.clear();
        for (const kv of read.kvs) this.view.set(kv.key.toString(), kv);
        this.viewRevision = read.revision;
        this.log.info({ reason: reasonOf(err), revision: read.revision }, 'election watch ended; read the election again');
        this.watch();
        this.evaluate();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 500).unref());
      }
    }
  }

  private onModel(model: NetworkModel): void {
    this.zoneOfDpid = new Map(model.hypervisors.map((h) => [h.datapathId, h.zone]));
    this.zones = model.zones.map((z) => z.name);
    for (const dpid of [...this.decisions.keys()]) if (!this.zoneOfDpid.has(dpid)) this.decisions.delete(dpid);
    if (this.viewRevision > 0) this.evaluate();
  }

  /** controllers alive in `zone`, by their registration */
  private aliveIn(zone: string): boolean {
    for (const [key, kv] of this.view) if (key.startsWith(CONTROLLERS) && holderOf(kv)?.zone === zone) return true;
    return false;
  }

  /** Acts on every zone's election as the view says, and emits each switch's decision that changed. */
  private evaluate(): void {
    if (this.closed) return;
    const me = this.options.controllerId;
    const healthy = this.healthy;
    const byZone = new Map<string, Omit<MastershipDecision, 'dpid'>>();
    for (const zone of this.zones) {
      const kv = this.view.get(keyOfZone(zone));
      const holder = kv && holderOf(kv);
      let d: Omit<MastershipDecision, 'dpid'>;
      if (kv && holder) {
        this.vacantSince.delete(zone);
        const generationId = BigInt(kv.create_revision);
        const ours = holder.id === me && kv.lease === this.leaseId;
        d = ours && healthy ? { role: 'master', generationId, master: me, reason: 'elected' } : { role: 'slave', generationId, master: holder.id, reason: ours ? 'lease not renewed' : 'elected elsewhere' };
        if (!ours && healthy && holder.zone !== zone && this.options.zone === zone) this.preempt(zone, kv, holder);
      } else {
        if (!this.vacantSince.has(zone)) this.vacantSince.set(zone, this.viewRevision);
        d = { role: 'slave', generationId: BigInt(Math.max(1, this.vacantSince.get(zone)!)), reason: 'no master' };
        if (healthy && (this.options.zone === zone || !this.aliveIn(zone))) this.campaign(zone);
      }
      byZone.set(zone, d);
      this.logZone(zone, d);
    }
    for (const [dpid, zone] of this.zoneOfDpid) {
      const d = byZone.get(zone);
      if (!d) continue; // a hypervisor's zone is always in the model; the model validates it
      const next: MastershipDecision = { dpid, ...d };
      if (sameDecision(this.decisions.get(dpid), next)) continue;
      this.decisions.set(dpid, next);
      this.subject.next(next);
    }
  }

  private logZone(zone: string, d: Omit<MastershipDecision, 'dpid'>): void {
    const line = d.role === 'master' ? `master of zone ${zone} with generation ${d.generationId}` : d.master !== undefined ? `slave in zone ${zone}, master is ${d.master} with generation ${d.generationId}` : `zone ${zone} has no master`;
    if (this.zoneLine.get(zone) === line) return;
    this.zoneLine.set(zone, line);
    this.log.info({ zone, role: d.role, generationId: String(d.generationId), master: d.master, reason: d.reason }, line);
  }

  /** Creates the zone's master key on our lease unless it exists; the watch tells the outcome. */
  private campaign(zone: string): void {
    const key = keyOfZone(zone);
    if (this.pending.has(key) || this.leaseId === undefined) return;
    this.pending.add(key);
    this.client
      .if(key, 'Create', '==', 0)
      .then(this.client.put(key).value(this.value).lease(this.leaseId))
      .options(this.callDeadline())
      .commit()
      .catch((e: unknown) => this.log.debug({ zone, reason: reasonOf(e) }, 'campaign failed; retrying'))
      .finally(() => this.pending.delete(key));
  }

  /** Takes our zone back from a foreign master once we have been alive for the preemption delay. */
  private preempt(zone: string, kv: IKeyValue, holder: Holder): void {
    const wait = this.leaseSince + this.preemptDelayMs - performance.now();
    if (wait > 0) {
      clearTimeout(this.preemptTimer);
      this.preemptTimer = setTimeout(() => this.evaluate(), wait + 10);
      return;
    }
    const key = keyOfZone(zone);
    if (this.pending.has(key)) return;
    this.pending.add(key);
    this.log.info({ zone, master: holder.id, masterZone: holder.zone }, `taking zone ${zone} back from ${holder.id} of zone ${holder.zone}`);
    this.client
      .if(key, 'Mod', '==', Number(kv.mod_revision))
      .then(this.client.delete().key(key))
      .options(this.callDeadline())
      .commit()
      .catch((e: unknown) => this.log.debug({ zone, reason: reasonOf(e) }, 'taking the zone back failed; retrying'))
      .finally(() => this.pending.delete(key));
  }
}
