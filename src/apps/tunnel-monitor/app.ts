/**
 * Loss, round trip and liveness of the tunnel between every two hypervisors, measured with probes
 * the controller sends through the tunnels and gets back (docs/tunnel-monitor.md). Built on the
 * public SDK alone.
 *
 *   zonemesh run --apps tunnel-mesh,…,tunnel-monitor --model FILE
 *   settings: { tunnel-monitor: { intervalMs: 20, windowMs: 20000, lossThreshold: 0.005 } }
 *
 * Each pair's health goes to TUNNEL_HEALTH (health$ and snapshot(), read by the metrics and the
 * pages); a pair that turns lossy or down is logged at warn level.
 */
import { randomInt } from 'node:crypto';
import {
  APP_SETTINGS,
  LogLimiter,
  TUNNEL_HEALTH,
  inject,
  injectable,
  type AppContext,
  type AppSettings,
  type Flow,
  type PacketIn,
  type TunnelPairHealth,
  type ZonemeshApp,
} from '../../sdk';
import { TunnelHealthBoard } from './board';
import { TunnelMonitor } from './monitor';
import { PROBE_TABLE, TUNNEL_MONITOR_APP_ID, TUNNEL_MONITOR_TABLES, parseProbe, probeFlows, probeFrame, probePacketOut, probePairs, type ProbePair } from './probe';
import { parseTunnelMonitorSettings } from './settings';

/** how often every pair's measurement is published, besides its state changes */
export const REPORT_INTERVAL_MS = 1_000;
/** after a stall, at most this many rounds go out at once: the rest are skipped, not bunched */
const MAX_ROUNDS_PER_TICK = 10;

@injectable()
export class TunnelMonitorApp implements ZonemeshApp {
  readonly name = 'tunnel-monitor';
  readonly appId = TUNNEL_MONITOR_APP_ID;
  readonly tables = TUNNEL_MONITOR_TABLES;
  readonly monitor: TunnelMonitor;
  /** state changes of one pair, logged at most 5 a minute each */
  private readonly logLimiter = new LogLimiter({ perInterval: 5, intervalMs: 60_000 });
  private pairs: readonly ProbePair[] = [];
  /** owners whose flows each switch holds, to clear the ones a new model drops */
  private owners = new Map<bigint, Set<string>>();
  private timer: NodeJS.Timeout | undefined;
  private lastReport = 0;
  /** probe rounds due and not yet sent: a busy event loop fires the timer late, and the rounds it missed are caught up */
  private roundsDue = 0;
  private lastTick = 0;

  constructor(
    @inject(APP_SETTINGS) settings: AppSettings,
    @inject(TUNNEL_HEALTH) private readonly board: TunnelHealthBoard,
  ) {
    this.monitor = new TunnelMonitor(parseTunnelMonitorSettings(settings[this.name]), randomInt(2 ** 32));
  }

  start(ctx: AppContext): void {
    this.board.active = true;
    const probeTableId = ctx.pipeline.table(PROBE_TABLE).id;
    ctx.on(ctx.model.changes$, (model) => this.setPairs(ctx, probePairs(model, this.monitor.settings.pairs)));
    ctx.on(ctx.events.switchUp$, ({ dpid }) => this.monitor.switchUp(dpid, Date.now()));
    ctx.on(ctx.events.switchDown$, ({ dpid }) => {
      this.monitor.switchDown(dpid);
      this.judge(ctx, Date.now());
    });
    ctx.on(ctx.events.packetIn$, (pin) => {
      if (pin.tableId === probeTableId) this.onReply(ctx, pin);
    });
    ctx.stopped$.subscribe(() => {
      this.board.active = false;
      clearInterval(this.timer);
      this.logLimiter.flush();
    });
  }

  private setPairs(ctx: AppContext, pairs: readonly ProbePair[]): void {
    const intervalBefore = this.pairs.length ? this.monitor.intervalMs : undefined;
    this.pairs = pairs;
    this.monitor.setPairs(pairs, Date.now());
    this.board.retain(new Set(pairs.map((p) => `${p.from.name}/${p.to.name}`)));
    const flows = probeFlows(ctx, pairs);
    const owners = new Map<bigint, Set<string>>();
    for (const [dpid, byOwner] of flows) {
      owners.set(dpid, new Set(byOwner.keys()));
      for (const [owner, list] of byOwner) ctx.setFlows(dpid, owner, list);
    }
    const none: Flow[] = [];
    for (const [dpid, before] of this.owners) for (const owner of before) if (!owners.get(dpid)?.has(owner)) ctx.setFlows(dpid, owner, none);
    this.owners = owners;

    const { intervalMs, settings } = this.monitor;
    if (intervalMs === intervalBefore) return;
    clearInterval(this.timer);
    this.lastTick = Date.now();
    this.roundsDue = 0;
    this.timer = setInterval(() => this.tick(ctx), intervalMs);
    const fields = { pairs: pairs.length, intervalMs, downAfterMs: this.monitor.downAfterMs, probesPerSecond: Math.round((pairs.length * 1000) / intervalMs) };
    if (intervalMs > settings.intervalMs) ctx.log.warn({ ...fields, maxProbesPerSecond: settings.maxProbesPerSecond }, 'tunnel probes stretched to stay within maxProbesPerSecond');
    else ctx.log.info(fields, 'probing tunnels');
  }

  private tick(ctx: AppContext): void {
    const now = Date.now();
    this.roundsDue = Math.min(MAX_ROUNDS_PER_TICK, this.roundsDue + (now - this.lastTick) / this.monitor.intervalMs);
    this.lastTick = now;
    for (; this.roundsDue >= 1; this.roundsDue--) {
      for (const pair of this.monitor.probeable()) {
        this.monitor.send(pair, now, (seq) => ctx.send(pair.from.datapathId, probePacketOut(pair, probeFrame(this.monitor.nonce, seq))));
      }
    }
    // judged after the event loop's poll phase has read what the switches sent meanwhile: after a
    // stall of the loop, replies waiting in the sockets are counted, not taken for losses
    setImmediate(() => {
      const at = Date.now();
      this.monitor.expire(at);
      this.judge(ctx, at);
    });
  }

  private judge(ctx: AppContext, now: number): void {
    const { all, changed } = this.monitor.evaluate(now);
    for (const health of changed) this.logChange(ctx, health);
    if (now - this.lastReport >= REPORT_INTERVAL_MS) {
      this.lastReport = now;
      for (const health of all) this.board.publish(health);
    } else {
      for (const health of changed) this.board.publish(health);
    }
  }

  private onReply(ctx: AppContext, pin: PacketIn): void {
    const probe = parseProbe(pin.data);
    // no probe of ours in flight (late, forged, another controller's): logged at debug, bounded
    if (probe && this.monitor.reply(probe.nonce, probe.seq, pin.dpid, Date.now())) return;
    this.logLimiter.log(ctx.log, 'debug', pin.dpid, 'probe reply ignored', { dpid: pin.dpid.toString(16), inPort: pin.inPort, parsed: probe !== undefined });
  }

  private logChange(ctx: AppContext, h: TunnelPairHealth): void {
    const { lossThreshold, windowMs } = this.monitor.settings;
    const { downAfterMs } = this.monitor;
    const fields = { from: h.from, to: h.to, state: h.state, lossRatio: Number(h.lossRatio.toFixed(4)), rttMs: h.rttMs === undefined ? undefined : Number(h.rttMs.toFixed(2)) };
    const subject = `${h.from}/${h.to}`;
    if (h.state === 'lossy') this.logLimiter.log(ctx.log, 'warn', subject, 'tunnel lossy', { ...fields, lossThreshold, windowMs }, 'tunnel loss above threshold');
    else if (h.state === 'down') this.logLimiter.log(ctx.log, 'warn', subject, 'tunnel down', { ...fields, downAfterMs }, 'tunnel down: probes unanswered');
    else this.logLimiter.log(ctx.log, 'info', subject, 'tunnel up', fields, 'tunnel up');
  }
}
