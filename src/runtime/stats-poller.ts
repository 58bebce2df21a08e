import type { Logger } from 'pino';
import type { Observable, Subscription } from 'rxjs';
import { OFPG_ANY, OFPP, OFPTT_ALL, type FlowStats, type PortStats } from '../openflow';
import { formatDpid } from '../controller/errors';
import type { SwitchDownEvent, SwitchUpEvent } from '../controller/events';
import type { SwitchSession } from '../controller/session';

/** One set of flows a poll reads with OFPMP_FLOW_STATS: a table (or all) and a cookie under a mask. */
export interface FlowStatsQuery {
  readonly tableId: number;
  readonly cookie: bigint;
  readonly cookieMask: bigint;
}

/** What one poll of one switch read. */
export interface SwitchStats {
  readonly dpid: bigint;
  readonly session: SwitchSession;
  /** OFPMP_PORT_STATS for every port */
  readonly ports: readonly PortStats[];
  /** the flows each query selected, in query order */
  readonly flows: readonly (readonly FlowStats[])[];
  /** every flow on the switch (OFPMP_AGGREGATE_STATS) */
  readonly flowCount: number;
  /** an echo's round trip, measured alongside */
  readonly echoRttSeconds: number;
  /** the whole poll, first request to last reply */
  readonly seconds: number;
}

export interface StatsPollerOptions {
  /** mean time between two polls of a switch; each wait is jittered by ±10 % and the first is uniform in [0, interval) */
  readonly intervalMs: number;
  /** polls in flight at once over all switches; the others wait their turn */
  readonly maxConcurrent: number;
  /** each request of a poll */
  readonly requestTimeoutMs: number;
  /** the flow sets to read, asked before every poll (they follow the running apps and pipeline) */
  readonly queries: () => readonly FlowStatsQuery[];
  readonly onStats: (stats: SwitchStats) => void;
  readonly onFailure: (dpid: bigint, error: Error) => void;
  readonly log: Logger;
}

export interface PolledSwitches {
  readonly switchUp$: Observable<SwitchUpEvent>;
  readonly switchDown$: Observable<SwitchDownEvent>;
}

const JITTER = 0.1;

/**
 * Polls every READY switch's counters: per poll one PORT_STATS (all ports), one AGGREGATE (the flow
 * count), one ECHO (the round trip) and one FLOW_STATS per query, pipelined on the session. Each switch
 * has its own jittered timer, so polls spread over the interval instead of bursting; a switch's next
 * poll is timed from the end of its last one, so a slow switch never has two in flight.
 */
export class StatsPoller {
  private readonly timers = new Map<bigint, NodeJS.Timeout>();
  private readonly subscriptions: Subscription[] = [];
  private readonly waiting: (() => void)[] = [];
  private inFlight = 0;
  private stopped = false;

  constructor(
    private readonly switches: PolledSwitches,
    private readonly options: StatsPollerOptions,
  ) {}

  start(): void {
    this.subscriptions.push(
      this.switches.switchUp$.subscribe((e) => this.schedule(e.session, Math.random() * this.options.intervalMs)),
      this.switches.switchDown$.subscribe((e) => {
        clearTimeout(this.timers.get(e.dpid));
        this.timers.delete(e.dpid);
      }),
    );
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const go of this.waiting.splice(0)) go();
  }

  /** Polls one switch now (a test, or a scrape that wants fresh numbers); resolves with what it read, or rejects. */
  async poll(session: SwitchSession): Promise<SwitchStats> {
    await this.slot();
    try {
      const stats = await this.read(session);
      this.options.onStats(stats);
      return stats;
    } finally {
      this.release();
    }
  }

  private schedule(session: SwitchSession, delayMs: number): void {
    const dpid = session.dpid!;
    clearTimeout(this.timers.get(dpid));
    const timer = setTimeout(() => void this.tick(session), delayMs);
    timer.unref();
    this.timers.set(dpid, timer);
  }

  private async tick(session: SwitchSession): Promise<void> {
    try {
      await this.poll(session);
    } catch (e) {
      if (session.state !== 'CLOSED') {
        this.options.log.debug({ err: e, dpid: formatDpid(session.dpid!) }, 'stats poll failed');
        this.options.onFailure(session.dpid!, e as Error);
      }
    }
    if (this.stopped || session.state === 'CLOSED') return;
    this.schedule(session, this.options.intervalMs * (1 - JITTER + 2 * JITTER * Math.random()));
  }

  private async read(session: SwitchSession): Promise<SwitchStats> {
    const started = performance.now();
    const timeout = { timeoutMs: this.options.requestTimeoutMs };
    const all = { outPort: OFPP.ANY, outGroup: OFPG_ANY, match: [] };
    const echo = session.request({ type: 'ECHO_REQUEST', xid: 0, data: Buffer.alloc(0) }, timeout).then(() => (performance.now() - started) / 1000);
    const [echoRttSeconds, ports, aggregate, ...flows] = await Promise.all([
      echo,
      session.multipart({ mpType: 'PORT_STATS', portNo: OFPP.ANY }, timeout),
      session.multipart({ mpType: 'AGGREGATE', tableId: OFPTT_ALL, cookie: 0n, cookieMask: 0n, ...all }, timeout),
      ...this.options.queries().map((q) => session.multipart({ mpType: 'FLOW', ...q, ...all }, timeout)),
    ]);
    return {
      dpid: session.dpid!,
      session,
      ports: ports.ports,
      flows: flows.map((f) => f.flows),
      flowCount: aggregate.flowCount,
      echoRttSeconds,
      seconds: (performance.now() - started) / 1000,
    };
  }

  private slot(): Promise<void> {
    if (this.inFlight < this.options.maxConcurrent) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** hands the slot to the next waiting poll, or frees it */
  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.inFlight--;
  }
}
