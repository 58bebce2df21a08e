import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Subject, type Subscription } from 'rxjs';
import { OFPET, OFPTT_ALL, type FlowStats, type PortStats } from '../openflow';
import type { Controller } from '../controller/controller';
import { OfSwitchError, SessionBudgetError, formatDpid } from '../controller/errors';
import type { SessionStats, SwitchSession } from '../controller/session';
import type { ModelStore, NetworkModel, VmPort } from '../model';
import type { ZonemeshApp } from '../sdk/app';
import { APP_MASK, APP_SHIFT, PIPELINE_APP_ID, makeCookie } from '../sdk/cookie';
import type { CountedFlow, FlowCount } from '../sdk/counters';
import type { Pipeline } from '../sdk/pipeline';
import type { TunnelHealthSource, TunnelPairHealth } from '../sdk/tunnel-health';
import type { BackendHealthSource } from '../sdk/backend-health';
import type { DesiredState } from './desired-state';
import { AppWiringError } from './errors';
import type { Reconciler, SyncReport } from './reconciler';
import { StatsPoller, type FlowStatsQuery, type SwitchStats } from './stats-poller';

export interface MetricsOptions {
  /** mean time between two stats polls of one switch (default 15 s) */
  readonly pollIntervalMs?: number;
  /** stats polls in flight at once, over all switches (default 16) */
  readonly maxConcurrentPolls?: number;
  /** each stats request (default 5 s, and at most the interval) */
  readonly pollTimeoutMs?: number;
}

export interface MetricsSources {
  readonly controller: Controller;
  readonly reconciler: Reconciler;
  readonly desired: DesiredState;
  readonly modelStore: ModelStore | undefined;
  readonly pipeline: Pipeline;
  readonly apps: readonly ZonemeshApp[];
  readonly log: Logger;
  /** the tunnel monitor's measurements (TUNNEL_HEALTH), when the runtime has one */
  readonly tunnelHealth?: TunnelHealthSource;
  /** the load-balancer backends' health (BACKEND_HEALTH), when the runtime has one */
  readonly backendHealth?: BackendHealthSource;
}

export const DEFAULT_POLL_INTERVAL_MS = 15_000;
/** switches outside the model get their own series up to this many (a peer can claim any dpid); the rest share dpid="_other" */
export const MAX_UNMODELLED_SWITCHES = 256;
/** ports outside the model get their own series (by OVS name) up to this many per switch; the rest add up under port="_other" */
export const MAX_UNMODELLED_PORTS = 64;
const OTHER = '_other';
/** OVS reports a counter it does not keep as all ones */
export const UNSUPPORTED_COUNTER = 0xffff_ffff_ffff_ffffn;
const TABLE_MISS_COOKIE = makeCookie(PIPELINE_APP_ID, 'table-miss');
const EXACT = 0xffff_ffff_ffff_ffffn;
/** OpenFlow error codes are small; a larger one (a peer inventing codes) is counted as "other" */
const MAX_ERROR_CODE_LABEL = 63;
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

type SwitchLabels = { dpid: string; hypervisor: string };
type Labels = Record<string, string>;

/** The model as metrics label it (and the live page shows it): hypervisor by dpid, VM port by interface and by pinned ofport. */
export class ModelIndex {
  readonly hypervisorByDpid = new Map<bigint, string>();
  private readonly portsByHypervisor = new Map<string, { byInterface: Map<string, VmPort>; byOfport: Map<number, VmPort> }>();

  constructor(model: NetworkModel | undefined) {
    for (const h of model?.hypervisors ?? []) {
      this.hypervisorByDpid.set(h.datapathId, h.name);
      this.portsByHypervisor.set(h.name, { byInterface: new Map(), byOfport: new Map() });
    }
    for (const p of model?.ports ?? []) {
      const on = this.portsByHypervisor.get(p.hypervisor);
      on?.byInterface.set(p.interface, p);
      if (p.ofport !== undefined) on?.byOfport.set(p.ofport, p);
    }
  }

  vmPort(hypervisor: string, portNo: number, name: string | undefined): VmPort | undefined {
    const on = this.portsByHypervisor.get(hypervisor);
    return on?.byOfport.get(portNo) ?? (name === undefined ? undefined : on?.byInterface.get(name));
  }
}

interface Total {
  readonly labels: Labels;
  /** the switch the series belongs to, when it has a dpid label */
  readonly dpid: bigint | undefined;
  value: number;
}

/**
 * Counters read from switches, made monotonic: each switch's raw values are remembered per series, and
 * the series total grows by the increase, or by the whole raw value when it went down (the switch or the
 * flow was restarted and counts from zero again). So a series summed over switches (ACL rule hits) never
 * goes backwards when one switch restarts.
 */
class PolledTotals {
  private readonly last = new Map<bigint, Map<string, number>>();
  readonly totals = new Map<string, Total>();

  observe(dpid: bigint, samples: ReadonlyMap<string, { labels: Labels; value: number; perSwitch: boolean }>): void {
    let last = this.last.get(dpid);
    if (!last) this.last.set(dpid, (last = new Map()));
    for (const [key, s] of samples) {
      const before = last.get(key) ?? 0;
      last.set(key, s.value);
      let total = this.totals.get(key);
      if (!total) this.totals.set(key, (total = { labels: s.labels, dpid: s.perSwitch ? dpid : undefined, value: 0 }));
      total.value += s.value >= before ? s.value - before : s.value;
    }
  }

  /** A switch outside the model went: its series go with it, so that peers claiming new dpids cannot pile them up. */
  forget(dpid: bigint): void {
    this.last.delete(dpid);
    for (const [key, t] of this.totals) if (t.dpid === dpid) this.totals.delete(key);
  }
}

/** Adds `value` to the sample of `labels`, keyed by their values. */
function addSample(into: Map<string, { labels: Labels; value: number; perSwitch: boolean }>, labels: Labels, value: number, perSwitch: boolean): void {
  const key = Object.values(labels).join('\u0000');
  const s = into.get(key);
  if (s) s.value += value;
  else into.set(key, { labels, value, perSwitch });
}

const counterValue = (v: bigint): number => (v === UNSUPPORTED_COUNTER ? 0 : Number(v));

/** The port counters exported, each from one field of ofp_port_stats. */
const PORT_COUNTERS = [
  ['receive_packets', 'packets received', (s: PortStats) => s.rxPackets],
  ['transmit_packets', 'packets transmitted', (s: PortStats) => s.txPackets],
  ['receive_bytes', 'bytes received', (s: PortStats) => s.rxBytes],
  ['transmit_bytes', 'bytes transmitted', (s: PortStats) => s.txBytes],
  ['receive_dropped_packets', 'received packets the switch dropped', (s: PortStats) => s.rxDropped],
  ['transmit_dropped_packets', 'packets the switch dropped instead of transmitting', (s: PortStats) => s.txDropped],
] as const;

/** One FLOW_STATS query and what each flow it returns counts. */
interface CounterQuery {
  readonly query: FlowStatsQuery;
  readonly count: (flow: CountedFlow) => FlowCount | undefined;
}

/**
 * The controller's Prometheus metrics, in a registry of its own (tests and several runtimes in one
 * process stay apart). Hot-path counts (packet-ins) are read from the sessions' own counters when
 * scraped; events that happen a few times per switch (connects, syncs, errors) are counted as they
 * come; switch counters (ports, counted flows) come from a StatsPoller.
 */
export class RuntimeMetrics {
  readonly registry = new Registry();
  readonly poller: StatsPoller;
  private readonly statsSubject = new Subject<SwitchStats>();
  /** every poll's reading, once counted here (the live page shows it too) */
  readonly stats$ = this.statsSubject.asObservable();
  private index = new ModelIndex(undefined);
  /** dpids outside the model that got their own labels, at most MAX_UNMODELLED_SWITCHES */
  private readonly unmodelled = new Set<bigint>();
  private readonly subscriptions: Subscription[] = [];
  private readonly tableNames: ReadonlyMap<number, string>;
  private readonly counterQueries: readonly CounterQuery[];
  /** packet-in counts of sessions that ended, by switch labels */
  private readonly retiredPacketIns = new Map<string, { labels: SwitchLabels; packetIns: number; dropped: number }>();
  private readonly lastPoll = new Map<bigint, { flowCount: number; echoRttSeconds: number }>();
  private readonly portTotals = PORT_COUNTERS.map(() => new PolledTotals());
  private readonly dropTotals = new PolledTotals();
  private readonly aclTotals = new PolledTotals();

  private readonly connects: Counter<'dpid' | 'hypervisor'>;
  private readonly disconnects: Counter<'dpid' | 'hypervisor' | 'reason'>;
  private readonly switchErrors: Counter<'dpid' | 'hypervisor' | 'type' | 'code'>;
  private readonly budgetCloses: Counter<'budget'>;
  private readonly flowMods: Counter<'dpid' | 'hypervisor' | 'command'>;
  private readonly reconcileRuns: Counter<'dpid' | 'hypervisor' | 'kind' | 'via'>;
  private readonly reconcileErrors: Counter<'dpid' | 'hypervisor' | 'kind'>;
  private readonly reconcileDuration: Histogram<'kind' | 'via'>;
  private readonly modelRevisions: Counter;
  private readonly modelRejections: Counter;
  private readonly pollFailures: Counter<'dpid' | 'hypervisor'>;
  private readonly pollDuration: Histogram;

  constructor(
    private readonly sources: MetricsSources,
    options: MetricsOptions = {},
  ) {
    const registry = this.registry;
    const { controller, desired, pipeline } = sources;
    this.tableNames = new Map(pipeline.tables.map((t) => [t.id, t.name]));
    this.counterQueries = this.flowCounterQueries();
    collectDefaultMetrics({ register: registry, prefix: 'zonemesh_' });
    const self = this;
    const switchLabelNames = ['dpid', 'hypervisor'] as const;

    // ---- switches ----
    new Gauge({
      name: 'zonemesh_openflow_sessions',
      help: 'Open OpenFlow sessions by state (HELLO, FEATURES, PORT_DESC: handshake; READY: in service).',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const state of ['HELLO', 'FEATURES', 'PORT_DESC', 'READY'] as const) this.set({ state }, 0);
        for (const s of controller.openSessions) if (s.state !== 'CLOSED') this.inc({ state: s.state });
      },
    });
    new Gauge({
      name: 'zonemesh_switch_up',
      help: '1 while the switch has a READY session, 0 for a model hypervisor that has none.',
      labelNames: switchLabelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const dpid of self.index.hypervisorByDpid.keys()) this.set(self.switchLabels(dpid), controller.switches.has(dpid) ? 1 : 0);
        for (const dpid of controller.switches.keys()) this.set(self.switchLabels(dpid), 1);
      },
    });
    this.connects = new Counter({ name: 'zonemesh_switch_connects_total', help: 'Sessions that reached READY.', labelNames: switchLabelNames, registers: [registry] });
    this.disconnects = new Counter({
      name: 'zonemesh_switch_disconnects_total',
      help: 'READY sessions that ended, by reason (peer_closed, echo_timeout, replaced, budget_exceeded …).',
      labelNames: [...switchLabelNames, 'reason'],
      registers: [registry],
    });
    new Gauge({
      name: 'zonemesh_switch_echo_rtt_seconds',
      help: 'Round trip of the echo sent with the last stats poll.',
      labelNames: switchLabelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const [dpid, p] of self.lastPoll) this.set(self.switchLabels(dpid), p.echoRttSeconds);
      },
    });
    new Gauge({
      name: 'zonemesh_switch_flows_desired',
      help: 'Flows the apps and the pipeline want on the switch.',
      labelNames: switchLabelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const dpid of self.exportedSwitches()) this.set(self.switchLabels(dpid), desired.count(dpid));
      },
    });
    new Gauge({
      name: 'zonemesh_switch_flows_installed',
      help: 'Flows on the switch at the last stats poll (OFPMP_AGGREGATE_STATS over all tables, flows of other controllers included).',
      labelNames: switchLabelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const [dpid, p] of self.lastPoll) this.set(self.switchLabels(dpid), p.flowCount);
      },
    });
    this.flowMods = new Counter({
      name: 'zonemesh_flow_mods_sent_total',
      help: 'FLOW_MODs the reconciler sent, by command (add, modify, delete).',
      labelNames: [...switchLabelNames, 'command'],
      registers: [registry],
    });
    this.switchErrors = new Counter({
      name: 'zonemesh_switch_errors_total',
      help: 'OFPT_ERRORs received for messages not awaited (flow-mods, bundle adds), by OFPET type and code.',
      labelNames: [...switchLabelNames, 'type', 'code'],
      registers: [registry],
    });
    this.reconcileRuns = new Counter({
      name: 'zonemesh_reconcile_runs_total',
      help: 'Batches the reconciler ran: kind full (after a connect) or incremental; via bundle, barrier (plain flow-mods) or none (nothing to send).',
      labelNames: [...switchLabelNames, 'kind', 'via'],
      registers: [registry],
    });
    this.reconcileErrors = new Counter({
      name: 'zonemesh_reconcile_errors_total',
      help: 'Flow-mods the switch rejected and batches that failed (bundle commit, timeout).',
      labelNames: [...switchLabelNames, 'kind'],
      registers: [registry],
    });
    new Gauge({
      name: 'zonemesh_full_syncs',
      help: 'Full syncs (flow dump, diff, difference sent) by state: running, or queued for a slot (maxConcurrentFullSyncs).',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const { running, queued } = sources.reconciler.fullSyncs();
        this.set({ state: 'running' }, running);
        this.set({ state: 'queued' }, queued);
      },
    });
    this.reconcileDuration = new Histogram({
      name: 'zonemesh_reconcile_duration_seconds',
      help: 'One reconcile batch, diff to the switch confirming it (bundle commit or barrier).',
      labelNames: ['kind', 'via'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });

    // ---- controller ----
    const packetIns = (name: string, help: string, value: (s: SessionStats) => number, retired: (r: { packetIns: number; dropped: number }) => number) =>
      new Counter({
        name,
        help,
        labelNames: switchLabelNames,
        registers: [registry],
        collect() {
          this.reset();
          for (const r of self.retiredPacketIns.values()) this.inc(r.labels, retired(r));
          for (const [dpid, s] of controller.switches) this.inc(self.switchLabels(dpid), value(s.stats));
        },
      });
    packetIns('zonemesh_packet_ins_received_total', 'PACKET_INs received, the dropped ones included.', (s) => s.packetIns + s.packetInsDropped, (r) => r.packetIns + r.dropped);
    packetIns('zonemesh_packet_ins_dropped_total', 'PACKET_INs over the per-switch rate limit (packetInRate), dropped undecoded.', (s) => s.packetInsDropped, (r) => r.dropped);
    this.budgetCloses = new Counter({
      name: 'zonemesh_session_budget_closes_total',
      help: 'Sessions closed for going over a budget (SessionBudgetError), by budget.',
      labelNames: ['budget'],
      registers: [registry],
    });
    this.modelRevisions = new Counter({ name: 'zonemesh_model_revisions_total', help: 'Models applied, the one loaded at startup included.', registers: [registry] });
    this.modelRejections = new Counter({ name: 'zonemesh_model_rejections_total', help: 'Model edits refused (the running model stayed).', registers: [registry] });
    this.pollFailures = new Counter({
      name: 'zonemesh_stats_poll_failures_total',
      help: 'Stats polls that failed (a request timed out or was refused).',
      labelNames: switchLabelNames,
      registers: [registry],
    });
    this.pollDuration = new Histogram({
      name: 'zonemesh_stats_poll_duration_seconds',
      help: 'One successful stats poll of one switch, first request to last reply.',
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });

    // ---- VM ports, drops, ACL rules: polled ----
    PORT_COUNTERS.forEach(([name, what], i) => {
      const totals = this.portTotals[i]!;
      new Counter({
        name: `zonemesh_port_${name}_total`,
        help: `${what[0]!.toUpperCase()}${what.slice(1)} on a switch port (OFPMP_PORT_STATS): VM ports by VPC, subnet and port name; ports outside the model by OVS name (vpc and subnet empty).`,
        labelNames: [...switchLabelNames, 'vpc', 'subnet', 'port'],
        registers: [registry],
        collect() {
          self.export(this, totals);
        },
      });
    });
    new Counter({
      name: 'zonemesh_dropped_packets_total',
      help: 'Packets dropped on purpose, by reason (spoofguard, acl_default_deny, ttl_expired, no_route, unknown_arp, ct_invalid, table_miss) and table: counted drop flows (OFPMP_FLOW_STATS).',
      labelNames: [...switchLabelNames, 'reason', 'table'],
      registers: [registry],
      collect() {
        self.export(this, self.dropTotals);
      },
    });
    new Counter({
      name: 'zonemesh_acl_rule_matched_packets_total',
      help: "Packets an ACL rule matched (allowed or denied), summed over every switch holding the rule's flows.",
      labelNames: ['vpc', 'rule'],
      registers: [registry],
      collect() {
        self.export(this, self.aclTotals);
      },
    });

    // ---- tunnels: the monitor's latest measurement of each pair, at scrape ----
    const { tunnelHealth } = sources;
    if (tunnelHealth) {
      const tunnelGauge = (name: string, help: string, value: (h: TunnelPairHealth) => number | undefined) =>
        new Gauge({
          name,
          help,
          labelNames: ['from', 'to'],
          registers: [registry],
          collect() {
            this.reset();
            for (const h of tunnelHealth.snapshot()) {
              const v = value(h);
              if (v !== undefined) this.set({ from: h.from, to: h.to }, v);
            }
          },
        });
      tunnelGauge('zonemesh_tunnel_up', 'Whether the tunnel between two hypervisors answers probes (1), or not (0: down).', (h) => (h.state === 'down' ? 0 : 1));
      tunnelGauge('zonemesh_tunnel_loss_ratio', "Probes lost over the monitor's sliding window, 0..1.", (h) => h.lossRatio);
      tunnelGauge('zonemesh_tunnel_rtt_seconds', "Mean probe round trip over the window: controller, from, to, from, controller.", (h) => (h.rttMs === undefined ? undefined : h.rttMs / 1000));
    }

    // ---- load-balancer backends: the health checker's decided states, at scrape ----
    const { backendHealth } = sources;
    if (backendHealth) {
      new Gauge({
        name: 'zonemesh_lb_backend_up',
        help: "Whether a load balancer's backend passes its health check (1) or fails it (0); absent until its first rise or fall decides.",
        labelNames: ['vpc', 'load_balancer', 'port'],
        registers: [registry],
        collect() {
          this.reset();
          for (const h of backendHealth.snapshot()) this.set({ vpc: h.vpc, load_balancer: h.loadBalancer, port: h.port }, h.state === 'up' ? 1 : 0);
        },
      });
    }

    // ---- what the apps count themselves: read at scrape ----
    for (const app of sources.apps) {
      for (const counter of app.eventCounters ?? []) {
        const name = `zonemesh_${counter.name}_total`;
        if (registry.getSingleMetric(name)) throw new AppWiringError(`event counter ${name} is already served (by the runtime or another app)`, { app: app.name });
        new Counter({
          name,
          help: counter.help,
          labelNames: [...switchLabelNames, counter.label],
          registers: [registry],
          collect() {
            this.reset();
            for (const c of counter.read()) {
              const labels = c.dpid === undefined ? { dpid: OTHER, hypervisor: '' } : self.switchLabels(c.dpid);
              this.inc({ ...labels, [counter.label]: c.value }, c.count);
            }
          },
        });
      }
    }

    const intervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.poller = new StatsPoller(controller, {
      intervalMs,
      maxConcurrent: options.maxConcurrentPolls ?? 16,
      requestTimeoutMs: Math.min(options.pollTimeoutMs ?? 5_000, intervalMs),
      queries: () => this.counterQueries.map((q) => q.query),
      onStats: (stats) => this.onStats(stats),
      onFailure: (dpid) => this.pollFailures.inc(this.switchLabels(dpid)),
      log: sources.log,
    });
  }

  start(): void {
    const { controller, reconciler, modelStore } = this.sources;
    this.subscriptions.push(
      controller.switchUp$.subscribe((e) => this.connects.inc(this.switchLabels(e.dpid))),
      controller.switchDown$.subscribe((e) => this.onSwitchDown(e.dpid, e.session, e.reason)),
      controller.errors$.subscribe((e) => {
        if (e instanceof SessionBudgetError) this.budgetCloses.inc({ budget: e.budget });
        if (e instanceof OfSwitchError && e.dpid !== undefined) {
          const code = e.code <= MAX_ERROR_CODE_LABEL ? String(e.code) : OTHER;
          this.switchErrors.inc({ ...this.switchLabels(e.dpid), type: OFPET[e.errType] ?? 'unknown', code });
        }
      }),
      reconciler.synced$.subscribe((r) => this.onSynced(r)),
    );
    if (modelStore) {
      this.subscriptions.push(
        modelStore.model$.subscribe((model) => {
          this.index = new ModelIndex(model);
          this.modelRevisions.inc();
        }),
        modelStore.rejected$.subscribe(() => this.modelRejections.inc()),
      );
    }
    this.poller.start();
  }

  stop(): void {
    this.poller.stop();
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    this.statsSubject.complete();
  }

  /** The exposition text, as `GET /metrics` serves it. */
  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  /** dpid (16 hex digits, as ovs-ofctl prints it) and model hypervisor name; bounded for switches the model does not name */
  private switchLabels(dpid: bigint): SwitchLabels {
    const hypervisor = this.index.hypervisorByDpid.get(dpid);
    if (hypervisor !== undefined) return { dpid: formatDpid(dpid), hypervisor };
    if (!this.unmodelled.has(dpid)) {
      if (this.unmodelled.size >= MAX_UNMODELLED_SWITCHES) return { dpid: OTHER, hypervisor: '' };
      this.unmodelled.add(dpid);
    }
    return { dpid: formatDpid(dpid), hypervisor: '' };
  }

  private isModelled(dpid: bigint): boolean {
    return this.index.hypervisorByDpid.has(dpid);
  }

  /** the model's hypervisors and every connected switch */
  private exportedSwitches(): Set<bigint> {
    return new Set([...this.index.hypervisorByDpid.keys(), ...this.sources.controller.switches.keys()]);
  }

  private export(metric: Counter<string>, totals: PolledTotals): void {
    metric.reset();
    for (const t of totals.totals.values()) metric.inc(t.labels, t.value);
  }

  private onSwitchDown(dpid: bigint, session: SwitchSession, reason: string): void {
    const labels = this.switchLabels(dpid);
    this.disconnects.inc({ ...labels, reason });
    const key = `${labels.dpid}/${labels.hypervisor}`;
    const retired = this.retiredPacketIns.get(key) ?? { labels, packetIns: 0, dropped: 0 };
    retired.packetIns += session.stats.packetIns;
    retired.dropped += session.stats.packetInsDropped;
    this.retiredPacketIns.set(key, retired);
    this.lastPoll.delete(dpid);
    if (!this.isModelled(dpid)) for (const totals of [...this.portTotals, this.dropTotals, this.aclTotals]) totals.forget(dpid);
  }

  private onSynced(r: SyncReport): void {
    const labels = this.switchLabels(r.dpid);
    if (r.adds) this.flowMods.inc({ ...labels, command: 'add' }, r.adds);
    if (r.modifies) this.flowMods.inc({ ...labels, command: 'modify' }, r.modifies);
    if (r.deletes) this.flowMods.inc({ ...labels, command: 'delete' }, r.deletes);
    this.reconcileRuns.inc({ ...labels, kind: r.kind, via: r.via });
    if (r.errors) this.reconcileErrors.inc({ ...labels, kind: r.kind }, r.errors);
    this.reconcileDuration.observe({ kind: r.kind, via: r.via }, r.ms / 1000);
  }

  /** The pipeline's table-miss flows (drops, by each table's dropReason) and every app's FlowCounters, as FLOW_STATS queries. */
  private flowCounterQueries(): CounterQuery[] {
    const { pipeline, apps } = this.sources;
    const byId = new Map(pipeline.tables.map((t) => [t.id, t]));
    const queries: CounterQuery[] = [
      {
        query: { tableId: OFPTT_ALL, cookie: TABLE_MISS_COOKIE, cookieMask: EXACT },
        count: (flow) => {
          const table = byId.get(flow.tableId);
          return table?.miss === 'drop' && flow.priority === 0 ? { kind: 'drop', reason: table.dropReason ?? 'table_miss' } : undefined;
        },
      },
    ];
    for (const app of apps) {
      for (const counter of app.flowCounters ?? []) {
        const tableId = counter.table === undefined ? OFPTT_ALL : pipeline.table(counter.table).id;
        const selector =
          counter.owner === undefined
            ? { cookie: BigInt(app.appId) << APP_SHIFT, cookieMask: APP_MASK }
            : { cookie: makeCookie(app.appId, counter.owner), cookieMask: EXACT };
        queries.push({ query: { tableId, ...selector }, count: (flow) => counter.count(flow) });
      }
    }
    return queries;
  }

  private onStats(stats: SwitchStats): void {
    const { dpid, session } = stats;
    const labels = this.switchLabels(dpid);
    this.lastPoll.set(dpid, { flowCount: stats.flowCount, echoRttSeconds: stats.echoRttSeconds });
    this.pollDuration.observe(stats.seconds);
    this.observePorts(dpid, labels, session, stats.ports);
    const drops = new Map<string, { labels: Labels; value: number; perSwitch: boolean }>();
    const acl = new Map<string, { labels: Labels; value: number; perSwitch: boolean }>();
    stats.flows.forEach((flows: readonly FlowStats[], i) => {
      const { query, count } = this.counterQueries[i]!;
      for (const flow of flows) {
        // a switch answers with what it likes: only flows the query asked for count
        if ((flow.cookie & query.cookieMask) !== (query.cookie & query.cookieMask)) continue;
        const counted = count(flow);
        if (counted?.kind === 'drop') addSample(drops, { ...labels, reason: counted.reason, table: this.tableNames.get(flow.tableId) ?? String(flow.tableId) }, counterValue(flow.packetCount), true);
        else if (counted?.kind === 'acl_rule') addSample(acl, { vpc: counted.vpc, rule: counted.rule }, counterValue(flow.packetCount), false);
      }
    });
    this.dropTotals.observe(dpid, drops);
    this.aclTotals.observe(dpid, acl);
    this.statsSubject.next(stats);
  }

  /** VM ports by their model labels; other ports by OVS name, the first MAX_UNMODELLED_PORTS by number, the rest under "_other". */
  private observePorts(dpid: bigint, labels: SwitchLabels, session: SwitchSession, ports: readonly PortStats[]): void {
    const samples = PORT_COUNTERS.map(() => new Map<string, { labels: Labels; value: number; perSwitch: boolean }>());
    const named = new Set<string>();
    for (const s of [...ports].sort((a, b) => a.portNo - b.portNo)) {
      const name = session.ports.get(s.portNo)?.name;
      const vm = labels.hypervisor === '' ? undefined : this.index.vmPort(labels.hypervisor, s.portNo, name);
      let port: Labels;
      if (vm) port = { vpc: vm.vpc, subnet: vm.subnet, port: vm.name };
      else if (name !== undefined && (named.has(name) || named.size < MAX_UNMODELLED_PORTS)) {
        named.add(name);
        port = { vpc: '', subnet: '', port: name };
      } else port = { vpc: '', subnet: '', port: OTHER };
      PORT_COUNTERS.forEach(([, , field], i) => addSample(samples[i]!, { ...labels, ...port }, counterValue(field(s)), true));
    }
    samples.forEach((s, i) => this.portTotals[i]!.observe(dpid, s));
  }
}
