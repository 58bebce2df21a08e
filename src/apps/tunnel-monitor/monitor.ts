import type { TunnelPairHealth, TunnelState } from '../../sdk';
import type { ProbePair } from './probe';
import type { TunnelMonitorSettings } from './settings';

/** the window is kept as this many buckets per pair, whatever the probe rate: constant memory per pair */
const BUCKETS_PER_WINDOW = 20;
/** before a pair's first reply (flows still being installed after a start), it is down only after this long */
export const FIRST_REPLY_GRACE_MS = 10_000;
/** fewest resolved probes a loss ratio is judged on */
const MIN_SAMPLES = 10;

interface Bucket {
  /** Math.floor(time / bucketMs) */
  readonly index: number;
  answered: number;
  lost: number;
  rttSumMs: number;
}

interface PairState {
  pair: ProbePair;
  buckets: Bucket[];
  /** when the prober's switch came up (undefined while it is down) */
  proberUpAt: number | undefined;
  lastReplyAt: number | undefined;
  /**
   * when the first probe sent since the last reply left: silence counts from there, so a pair
   * this controller cannot probe (a slave of its prober, a full send queue) is not taken for down
   */
  unansweredSince: number | undefined;
  /**
   * probes sent before this are not counted: the send time of the first probe answered after a
   * silence (start, down), so the probes that met missing flows or a dead peer are not losses
   */
  countFrom: number;
  /** undefined until the pair is first judged */
  state: TunnelState | undefined;
}

/**
 * The measurements, without I/O or timers: the app tells it what it sent, what came back and what
 * time it is; it says each pair's health. Probes in flight are bounded by the send budget: at most
 * maxProbesPerSecond × replyTimeoutMs / 1000 (+ one round), the rest are not sent.
 */
export class TunnelMonitor {
  private readonly pairs = new Map<string, PairState>();
  /** seq → probe in flight; Map order is send order, so expiry stops at the first young one */
  private readonly inFlight = new Map<number, { key: string; sentAt: number }>();
  private readonly upSwitches = new Set<bigint>();
  private nextSeq = 1;
  private readonly bucketMs: number;

  constructor(
    readonly settings: TunnelMonitorSettings,
    /** random per controller start: replies to another controller's probes are not ours */
    readonly nonce: number,
  ) {
    this.bucketMs = Math.max(1, Math.floor(settings.windowMs / BUCKETS_PER_WINDOW));
  }

  /** every pair's probe interval: the setting, stretched so that all pairs together stay within maxProbesPerSecond */
  get intervalMs(): number {
    return Math.max(this.settings.intervalMs, Math.ceil((1000 * this.pairs.size) / this.settings.maxProbesPerSecond));
  }

  /** the silence that makes a pair down: the setting, or three probe intervals when the interval was stretched past it */
  get downAfterMs(): number {
    return Math.max(this.settings.downAfterMs, 3 * this.intervalMs);
  }

  get probesInFlight(): number {
    return this.inFlight.size;
  }

  private get maxInFlight(): number {
    return Math.ceil((this.settings.maxProbesPerSecond * this.settings.replyTimeoutMs) / 1000) + this.pairs.size;
  }

  /** The pairs of a new model: a pair that stays (same key, same tunnel IPs) keeps its measurements; the others start afresh. */
  setPairs(pairs: readonly ProbePair[], now: number): void {
    const before = new Map(this.pairs);
    this.pairs.clear();
    for (const pair of pairs) {
      const old = before.get(pair.key);
      const same = old && old.pair.from.tunnelIp === pair.from.tunnelIp && old.pair.to.tunnelIp === pair.to.tunnelIp && old.pair.from.datapathId === pair.from.datapathId;
      const proberUpAt = this.upSwitches.has(pair.from.datapathId) ? now : undefined;
      this.pairs.set(pair.key, same ? { ...old, pair } : { pair, buckets: [], proberUpAt, lastReplyAt: undefined, unansweredSince: undefined, countFrom: Infinity, state: undefined });
    }
    for (const [seq, p] of this.inFlight) if (!this.pairs.has(p.key)) this.inFlight.delete(seq);
  }

  switchUp(dpid: bigint, now: number): void {
    this.upSwitches.add(dpid);
    for (const s of this.pairs.values()) if (s.pair.from.datapathId === dpid) s.proberUpAt = now;
  }

  switchDown(dpid: bigint): void {
    this.upSwitches.delete(dpid);
    for (const s of this.pairs.values()) if (s.pair.from.datapathId === dpid) s.proberUpAt = undefined;
  }

  /** the pairs to probe now: those whose prober is connected, while the in-flight bound allows */
  probeable(): ProbePair[] {
    const room = this.maxInFlight - this.inFlight.size;
    return [...this.pairs.values()].filter((s) => s.proberUpAt !== undefined).slice(0, Math.max(0, room)).map((s) => s.pair);
  }

  /**
   * Sends a probe of `pair` with `transmit(seq)` (which puts seq in the frame) and tracks it when
   * transmit says it went out: a probe the switch never got is no sample.
   */
  send(pair: ProbePair, now: number, transmit: (seq: number) => boolean): boolean {
    const seq = this.nextSeq;
    if (!transmit(seq)) return false;
    this.nextSeq = (this.nextSeq + 1) >>> 0 || 1;
    this.inFlight.set(seq, { key: pair.key, sentAt: now });
    const s = this.pairs.get(pair.key);
    if (s) s.unansweredSince ??= now;
    return true;
  }

  /** A probe came back to switch `dpid`. False when it is not one of ours in flight (late, replayed, another controller's). */
  reply(nonce: number, seq: number, dpid: bigint, now: number): boolean {
    const probe = nonce === this.nonce ? this.inFlight.get(seq) : undefined;
    const s = probe && this.pairs.get(probe.key);
    if (!probe || !s || s.pair.from.datapathId !== dpid) return false;
    this.inFlight.delete(seq);
    if (s.lastReplyAt === undefined || s.state === 'down') {
      // the window measures the tunnel while it answers
      s.buckets = [];
      s.countFrom = probe.sentAt;
    }
    s.lastReplyAt = now;
    s.unansweredSince = undefined;
    const b = this.bucket(s, now);
    b.answered++;
    b.rttSumMs += now - probe.sentAt;
    return true;
  }

  /** Probes older than replyTimeoutMs are lost. */
  expire(now: number): void {
    for (const [seq, p] of this.inFlight) {
      if (now - p.sentAt < this.settings.replyTimeoutMs) break;
      this.inFlight.delete(seq);
      const s = this.pairs.get(p.key);
      if (s && p.sentAt >= s.countFrom) this.bucket(s, now).lost++;
    }
  }

  /** Every judged pair's health now, and the pairs whose state changed since the last call. */
  evaluate(now: number): { all: TunnelPairHealth[]; changed: TunnelPairHealth[] } {
    const all: TunnelPairHealth[] = [];
    const changed: TunnelPairHealth[] = [];
    for (const s of this.pairs.values()) {
      const oldest = Math.floor((now - this.settings.windowMs) / this.bucketMs);
      while (s.buckets.length && s.buckets[0]!.index <= oldest) s.buckets.shift();
      let answered = 0;
      let lost = 0;
      let rttSumMs = 0;
      for (const b of s.buckets) {
        answered += b.answered;
        lost += b.lost;
        rttSumMs += b.rttSumMs;
      }
      const lossRatio = answered + lost === 0 ? 0 : lost / (answered + lost);
      // judged on half a window at least: a few early samples say little
      const enoughSamples = answered + lost >= MIN_SAMPLES && now - s.countFrom >= this.settings.windowMs / 2;
      const state = this.judge(s, now, lossRatio, enoughSamples);
      if (state === undefined) continue;
      const health: TunnelPairHealth = { from: s.pair.from.name, to: s.pair.to.name, state, lossRatio, rttMs: answered ? rttSumMs / answered : undefined, at: now };
      all.push(health);
      if (state !== s.state) changed.push(health);
      s.state = state;
    }
    return { all, changed };
  }

  private judge(s: PairState, now: number, lossRatio: number, enoughSamples: boolean): TunnelState | undefined {
    if (s.proberUpAt === undefined) return s.state === undefined ? undefined : 'down';
    const silentFor = s.unansweredSince === undefined ? 0 : now - s.unansweredSince;
    const limit = s.lastReplyAt === undefined ? Math.max(this.downAfterMs, FIRST_REPLY_GRACE_MS) : this.downAfterMs;
    if (silentFor > limit) return 'down';
    // silent past a reply timeout: an outage on its way to down, not loss; keep the state until it is judged
    if (s.lastReplyAt === undefined || silentFor > this.settings.replyTimeoutMs + this.intervalMs) return s.state;
    return enoughSamples && lossRatio >= this.settings.lossThreshold ? 'lossy' : 'up';
  }

  private bucket(s: PairState, now: number): Bucket {
    const index = Math.floor(now / this.bucketMs);
    let b = s.buckets[s.buckets.length - 1];
    if (!b || b.index !== index) s.buckets.push((b = { index, answered: 0, lost: 0, rttSumMs: 0 }));
    return b;
  }
}
