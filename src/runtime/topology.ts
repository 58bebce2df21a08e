/**
 * What the live topology page shows (docs/live-page.md), kept current from the runtime's streams:
 * the model's zones, hypervisors and VMs by VPC and tier; each switch's session, sync state and
 * port counters (from the stats poll); each tunnel pair's health, when a tunnel monitor runs.
 */
import type { Observable, Subscription } from 'rxjs';
import type { PortStats } from '../openflow';
import { formatDpid } from '../controller/errors';
import type { SwitchDownEvent, SwitchUpEvent } from '../controller/events';
import type { SwitchSession } from '../controller/session';
import { EMPTY_MODEL, type Hypervisor, type ModelStore, type NetworkModel, portIpv6 } from '../model';
import type { TunnelHealthSource, TunnelPairHealth, TunnelState } from '../sdk/tunnel-health';
import type { DesiredChange } from './desired-state';
import { ModelIndex, UNSUPPORTED_COUNTER } from './metrics';
import type { SyncReport } from './reconciler';
import type { SwitchStats } from './stats-poller';

/**
 * down: no session (the failed state); connected: a session, not polled yet; in-sync: the last poll
 * found as many flows as desired and the last sync had no errors; out-of-sync: otherwise.
 */
export type HypervisorState = 'down' | 'connected' | 'in-sync' | 'out-of-sync';

export interface PortView {
  readonly portNo: number;
  /** the OVS port name, when the switch described the port */
  readonly name: string | null;
  /** the model VM on this port */
  readonly vm: string | null;
  /** null: a counter the switch does not keep */
  readonly rxPackets: number | null;
  readonly txPackets: number | null;
  readonly rxBytes: number | null;
  readonly txBytes: number | null;
  readonly rxDropped: number | null;
  readonly txDropped: number | null;
  /** packets per second since the previous poll of this session; null at the first */
  readonly rxPps: number | null;
  readonly txPps: number | null;
}

export interface LastSync {
  readonly kind: SyncReport['kind'];
  readonly at: number;
  readonly adds: number;
  readonly modifies: number;
  readonly deletes: number;
  readonly errors: number;
}

export interface HypervisorView {
  /** the model's name; a switch outside the model is 'dpid:' and its dpid */
  readonly name: string;
  readonly zone: string | null;
  readonly tunnelIp: string | null;
  /** 16 hex digits, as ovs-ofctl prints it */
  readonly dpid: string;
  readonly state: HypervisorState;
  /** Date.now() of the last session change; null before the first */
  readonly since: number | null;
  /** why the last session ended */
  readonly downReason: string | null;
  /** desired now; installed (and desired then) at the last poll */
  readonly flows: { readonly desired: number; readonly installed: number | null; readonly desiredAtPoll: number | null; readonly polledAt: number | null };
  readonly lastSync: LastSync | null;
  readonly echoRttMs: number | null;
  /** VM ports first, then the others by number; at most MAX_PORTS_SHOWN */
  readonly ports: readonly PortView[];
  /** ports the switch has beyond MAX_PORTS_SHOWN */
  readonly portsOmitted: number;
}

export interface TunnelView {
  readonly from: string;
  readonly to: string;
  readonly state: TunnelState;
  readonly lossRatio: number;
  readonly rttMs: number | null;
  readonly at: number;
}

export interface VmView {
  readonly name: string;
  /** absent on an IPv6-only subnet */
  readonly ip?: string;
  /** given or by SLAAC; absent on an IPv4-only subnet */
  readonly ipv6?: string;
  readonly mac: string;
  readonly hypervisor: string;
}

/** a VPC's subnet: its IPv4 CIDR, its IPv6 prefix or both */
export interface TierView {
  readonly name: string;
  readonly cidr?: string;
  readonly ipv6?: string;
  readonly vms: readonly VmView[];
}

export interface TopologySnapshot {
  readonly at: number;
  /** how often port counters and installed flows are read */
  readonly pollIntervalMs: number;
  /** false: no tunnel monitor runs, every tunnel's health is unknown */
  readonly tunnelMonitor: boolean;
  readonly zones: readonly { readonly name: string; readonly underlay: string; readonly hypervisors: readonly string[] }[];
  /** the tiers are the VPC's subnets */
  readonly vpcs: readonly { readonly name: string; readonly vni: number; readonly tiers: readonly TierView[] }[];
  /** the model's hypervisors in model order, then the connected switches it does not name */
  readonly hypervisors: readonly HypervisorView[];
  /** the pairs the monitor measured; a pair missing here is unknown */
  readonly tunnels: readonly TunnelView[];
}

/** What changed since the last one: whole hypervisors and tunnel pairs, to replace by name. */
export interface TopologyUpdate {
  readonly at: number;
  readonly hypervisors: readonly HypervisorView[];
  readonly tunnels: readonly TunnelView[];
}

export type TopologyChange = { readonly snapshot: TopologySnapshot } | { readonly update: TopologyUpdate };

export interface TopologySources {
  readonly switches: {
    readonly switches: ReadonlyMap<bigint, SwitchSession>;
    readonly switchUp$: Observable<SwitchUpEvent>;
    readonly switchDown$: Observable<SwitchDownEvent>;
  };
  readonly desired: { count(dpid: bigint): number; readonly changes$: Observable<DesiredChange> };
  readonly synced$: Observable<SyncReport>;
  readonly stats$: Observable<SwitchStats>;
  readonly modelStore: ModelStore | undefined;
  /** absent: no tunnel monitor runs */
  readonly tunnelHealth: TunnelHealthSource | undefined;
  readonly pollIntervalMs: number;
}

/** a switch can have thousands of ports; the page shows this many of each */
export const MAX_PORTS_SHOWN = 256;
/** switches outside the model the page shows (a peer can claim any dpid) */
export const MAX_UNMODELLED_SHOWN = 64;

interface PolledPorts {
  readonly session: SwitchSession;
  readonly at: number;
  readonly ports: readonly PortView[];
  readonly portsOmitted: number;
  readonly installed: number;
  readonly desiredAtPoll: number;
  readonly echoRttMs: number;
  /** port number → packets counted, for the next poll's rates */
  readonly packets: ReadonlyMap<number, { rx: number | null; tx: number | null }>;
}

interface SwitchRecord {
  session: SwitchSession | undefined;
  since: number | null;
  downReason: string | null;
  polled: PolledPorts | undefined;
  lastSync: LastSync | null;
}

const counter = (v: bigint): number | null => (v === UNSUPPORTED_COUNTER ? null : Number(v));
const rate = (now: number | null, before: number | null | undefined, seconds: number): number | null =>
  now === null || before == null || now < before || seconds <= 0 ? null : Math.round(((now - before) / seconds) * 10) / 10;
const pairKey = (from: string, to: string): string => `${from}\u0000${to}`;

/**
 * Keeps the page's state and what changed since it was last taken: `takeChange()` gives a whole
 * snapshot after the model changed (or a switch outside the model came or went), else the
 * hypervisors and tunnel pairs that changed; a caller taking it every few hundred milliseconds
 * sends each switch at most once per period, however often its events come.
 */
export class TopologyView {
  private model: NetworkModel = EMPTY_MODEL;
  private index = new ModelIndex(undefined);
  private hypervisorsByName = new Map<string, Hypervisor>();
  /** the snapshot's parts that change only with the model */
  private layout: Pick<TopologySnapshot, 'zones' | 'vpcs'> = { zones: [], vpcs: [] };
  private readonly records = new Map<bigint, SwitchRecord>();
  private readonly tunnels = new Map<string, TunnelPairHealth>();
  private readonly dirtySwitches = new Set<bigint>();
  private readonly dirtyTunnels = new Set<string>();
  private snapshotDue = true;
  private readonly subscriptions: Subscription[] = [];

  constructor(private readonly sources: TopologySources) {}

  start(): void {
    const { switches, desired, synced$, stats$, modelStore, tunnelHealth } = this.sources;
    if (modelStore) this.subscriptions.push(modelStore.model$.subscribe((m) => this.onModel(m)));
    for (const [dpid, session] of switches.switches) this.onUp(dpid, session);
    this.subscriptions.push(
      switches.switchUp$.subscribe((e) => this.onUp(e.dpid, e.session)),
      switches.switchDown$.subscribe((e) => this.onDown(e)),
      desired.changes$.subscribe((c) => this.touch(c.dpid)),
      synced$.subscribe((r) => {
        const record = this.records.get(r.dpid);
        if (!record) return;
        record.lastSync = { kind: r.kind, at: Date.now(), adds: r.adds, modifies: r.modifies, deletes: r.deletes, errors: r.errors };
        this.touch(r.dpid);
      }),
      stats$.subscribe((s) => this.onStats(s)),
    );
    if (tunnelHealth) {
      for (const h of tunnelHealth.snapshot()) this.onTunnel(h);
      this.subscriptions.push(tunnelHealth.health$.subscribe((h) => this.onTunnel(h)));
    }
  }

  stop(): void {
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
  }

  snapshot(): TopologySnapshot {
    const unmodelled = [...this.records.keys()].filter((dpid) => !this.index.hypervisorByDpid.has(dpid));
    return {
      at: Date.now(),
      pollIntervalMs: this.sources.pollIntervalMs,
      tunnelMonitor: this.sources.tunnelHealth?.active ?? false,
      ...this.layout,
      hypervisors: [...this.model.hypervisors.map((h) => h.datapathId), ...unmodelled].map((dpid) => this.hypervisorView(dpid)),
      tunnels: [...this.tunnels.values()].map(tunnelView),
    };
  }

  /** What changed since the last call: a snapshot, an update, or nothing. */
  takeChange(): TopologyChange | undefined {
    if (this.snapshotDue) {
      this.snapshotDue = false;
      this.dirtySwitches.clear();
      this.dirtyTunnels.clear();
      return { snapshot: this.snapshot() };
    }
    if (this.dirtySwitches.size === 0 && this.dirtyTunnels.size === 0) return undefined;
    const update: TopologyUpdate = {
      at: Date.now(),
      hypervisors: [...this.dirtySwitches].filter((dpid) => this.records.has(dpid)).map((dpid) => this.hypervisorView(dpid)),
      tunnels: [...this.dirtyTunnels].flatMap((key) => {
        const h = this.tunnels.get(key);
        return h ? [tunnelView(h)] : [];
      }),
    };
    this.dirtySwitches.clear();
    this.dirtyTunnels.clear();
    return update.hypervisors.length || update.tunnels.length ? { update } : undefined;
  }

  private touch(dpid: bigint): void {
    if (this.records.has(dpid)) this.dirtySwitches.add(dpid);
  }

  private onModel(model: NetworkModel): void {
    this.model = model;
    this.index = new ModelIndex(model);
    this.hypervisorsByName = new Map(model.hypervisors.map((h) => [h.name, h]));
    this.layout = layoutOf(model);
    for (const h of model.hypervisors) {
      if (this.records.has(h.datapathId)) continue;
      // a switch already connected that the model names only now (one outside it may not have been kept)
      const session = this.sources.switches.switches.get(h.datapathId);
      this.records.set(h.datapathId, { session, since: session ? Date.now() : null, downReason: null, polled: undefined, lastSync: null });
    }
    for (const [dpid, r] of this.records) if (!r.session && !this.index.hypervisorByDpid.has(dpid)) this.records.delete(dpid);
    for (const [key, h] of this.tunnels) if (!this.hypervisorsByName.has(h.from) || !this.hypervisorsByName.has(h.to)) this.tunnels.delete(key);
    this.snapshotDue = true;
  }

  private onUp(dpid: bigint, session: SwitchSession): void {
    const modelled = this.index.hypervisorByDpid.has(dpid);
    if (!modelled && !this.records.has(dpid)) {
      if (this.unmodelledCount() >= MAX_UNMODELLED_SHOWN) return;
      this.snapshotDue = true;
    }
    this.records.set(dpid, { session, since: Date.now(), downReason: null, polled: undefined, lastSync: null });
    this.touch(dpid);
  }

  private onDown(e: SwitchDownEvent): void {
    const record = this.records.get(e.dpid);
    if (!record || record.session !== e.session) return;
    if (!this.index.hypervisorByDpid.has(e.dpid)) {
      this.records.delete(e.dpid);
      this.snapshotDue = true;
      return;
    }
    Object.assign(record, { session: undefined, since: Date.now(), downReason: e.reason, polled: undefined });
    this.touch(e.dpid);
  }

  private unmodelledCount(): number {
    let n = 0;
    for (const dpid of this.records.keys()) if (!this.index.hypervisorByDpid.has(dpid)) n++;
    return n;
  }

  private onStats(stats: SwitchStats): void {
    const record = this.records.get(stats.dpid);
    // a poll that finished after its session ended says nothing about the switch now
    if (!record || record.session !== stats.session) return;
    const at = Date.now();
    const before = record.polled;
    const seconds = before ? (at - before.at) / 1000 : 0;
    const hypervisor = this.index.hypervisorByDpid.get(stats.dpid);
    const views = stats.ports.map((s: PortStats): PortView => {
      const name = stats.session.ports.get(s.portNo)?.name ?? null;
      const vm = hypervisor === undefined ? undefined : this.index.vmPort(hypervisor, s.portNo, name ?? undefined);
      const rxPackets = counter(s.rxPackets);
      const txPackets = counter(s.txPackets);
      const earlier = before?.packets.get(s.portNo);
      return {
        portNo: s.portNo,
        name,
        vm: vm?.name ?? null,
        rxPackets,
        txPackets,
        rxBytes: counter(s.rxBytes),
        txBytes: counter(s.txBytes),
        rxDropped: counter(s.rxDropped),
        txDropped: counter(s.txDropped),
        rxPps: rate(rxPackets, earlier?.rx, seconds),
        txPps: rate(txPackets, earlier?.tx, seconds),
      };
    });
    views.sort((a, b) => Number(a.vm === null) - Number(b.vm === null) || a.portNo - b.portNo);
    const shown = views.slice(0, MAX_PORTS_SHOWN);
    record.polled = {
      session: stats.session,
      at,
      ports: shown,
      portsOmitted: views.length - shown.length,
      installed: stats.flowCount,
      desiredAtPoll: this.sources.desired.count(stats.dpid),
      echoRttMs: Math.round(stats.echoRttSeconds * 1e5) / 100,
      packets: new Map(shown.map((p) => [p.portNo, { rx: p.rxPackets, tx: p.txPackets }])),
    };
    this.touch(stats.dpid);
  }

  private onTunnel(h: TunnelPairHealth): void {
    // only pairs of the model's hypervisors: at most n² entries, whatever a monitor reports
    if (!this.hypervisorsByName.has(h.from) || !this.hypervisorsByName.has(h.to)) return;
    const key = pairKey(h.from, h.to);
    this.tunnels.set(key, h);
    this.dirtyTunnels.add(key);
  }

  private hypervisorView(dpid: bigint): HypervisorView {
    const record = this.records.get(dpid)!;
    const name = this.index.hypervisorByDpid.get(dpid);
    const hypervisor = name === undefined ? undefined : this.hypervisorsByName.get(name);
    const polled = record.polled;
    let state: HypervisorState = 'down';
    if (record.session && !polled) state = 'connected';
    else if (record.session && polled) state = polled.installed === polled.desiredAtPoll && !record.lastSync?.errors ? 'in-sync' : 'out-of-sync';
    return {
      name: name ?? `dpid:${formatDpid(dpid)}`,
      zone: hypervisor?.zone ?? null,
      tunnelIp: hypervisor?.tunnelIp ?? null,
      dpid: formatDpid(dpid),
      state,
      since: record.since,
      downReason: record.session ? null : record.downReason,
      flows: { desired: this.sources.desired.count(dpid), installed: polled?.installed ?? null, desiredAtPoll: polled?.desiredAtPoll ?? null, polledAt: polled?.at ?? null },
      lastSync: record.lastSync,
      echoRttMs: polled?.echoRttMs ?? null,
      ports: polled?.ports ?? [],
      portsOmitted: polled?.portsOmitted ?? 0,
    };
  }
}

/** Zones with their hypervisors, VPCs with their tiers and VMs, in model order; one pass over each list. */
function layoutOf(model: NetworkModel): Pick<TopologySnapshot, 'zones' | 'vpcs'> {
  const hypervisorsByZone = new Map<string, string[]>(model.zones.map((z) => [z.name, []]));
  for (const h of model.hypervisors) hypervisorsByZone.get(h.zone)?.push(h.name);
  const vmsByTier = new Map<string, VmView[]>(model.subnets.map((s) => [`${s.vpc}/${s.name}`, []]));
  const subnets = new Map(model.subnets.map((s) => [`${s.vpc}/${s.name}`, s]));
  for (const p of model.ports) {
    const subnet = subnets.get(`${p.vpc}/${p.subnet}`);
    const ipv6 = subnet && portIpv6(p, subnet);
    vmsByTier.get(`${p.vpc}/${p.subnet}`)?.push({ name: p.name, ...(p.ip === undefined ? {} : { ip: p.ip }), ...(ipv6 === undefined ? {} : { ipv6 }), mac: p.mac, hypervisor: p.hypervisor });
  }
  const tiersByVpc = new Map<string, TierView[]>(model.vpcs.map((v) => [v.name, []]));
  for (const s of model.subnets) {
    tiersByVpc.get(s.vpc)?.push({ name: s.name, ...(s.cidr === undefined ? {} : { cidr: s.cidr }), ...(s.ipv6 ? { ipv6: s.ipv6.prefix } : {}), vms: vmsByTier.get(`${s.vpc}/${s.name}`)! });
  }
  return {
    zones: model.zones.map((z) => ({ name: z.name, underlay: z.underlay, hypervisors: hypervisorsByZone.get(z.name)! })),
    vpcs: model.vpcs.map((v) => ({ name: v.name, vni: v.vni, tiers: tiersByVpc.get(v.name)! })),
  };
}

function tunnelView(h: TunnelPairHealth): TunnelView {
  return { from: h.from, to: h.to, state: h.state, lossRatio: h.lossRatio, rttMs: h.rttMs ?? null, at: h.at };
}
