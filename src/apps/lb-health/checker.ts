import { TcpFlag, buildPacket, findLayer, type BackendHealth, type ParsedPacket } from '../../sdk';
import type { CheckTarget } from './targets';

/** the TCP source ports of checks: the top quarter of the port space, one flow (tcp_dst=0xc000/0xc000) catches every answer */
export const CHECK_PORT_BASE = 0xc000;
const CHECK_PORT_COUNT = 0x4000;
/** the most checks in flight over all backends: a due check past it waits for the next tick */
export const MAX_CHECKS_IN_FLIGHT = 1024;
/** the most packets one check accepts from its VM (SYN-ACK, ACKs, data, FIN…): past it the check fails */
export const MAX_PACKET_INS_PER_CHECK = 8;
/** of an HTTP answer, only this much is read: the status line must be in it */
const MAX_RESPONSE_BYTES = 64;
/** a check is due every interval × (1 − jitter), jitter in [MIN_JITTER, MAX_JITTER): never later than the interval, never in step */
const MIN_JITTER = 0.02;
const MAX_JITTER = 0.1;
const WINDOW = 0xffff;

/** What a finished check says. */
export type CheckOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Why a packet from a VM was not taken by a check (counted by the app). */
export type IgnoredPacket = 'no_check' | 'not_tcp' | 'wrong_port' | 'out_of_order';

interface Probe {
  readonly srcPort: number;
  /** our initial sequence number */
  readonly isn: number;
  readonly deadline: number;
  phase: 'syn' | 'response';
  packetIns: number;
  /** the VM's next sequence number, once its SYN-ACK came */
  peerNext: number;
  /** our sequence number after the request */
  ourNext: number;
  response: Buffer;
}

interface BackendState {
  target: CheckTarget;
  /** undefined until the first rise successes or fall failures decide it */
  health: BackendHealth | undefined;
  successes: number;
  failures: number;
  lastReason: string | undefined;
  nextAt: number;
  probe: Probe | undefined;
}

/** Sends a frame out of a VM port of a switch; false when it could not go (not master, switch gone, queue full). */
export type Transmit = (dpid: bigint, ofport: number, frame: Buffer) => boolean;

/**
 * The health checks, without I/O or timers: the app says what time it is, which switches are up and
 * what came back; the checker builds the frames, counts rise and fall, and returns the transitions.
 * One check per backend at a time, at most MAX_CHECKS_IN_FLIGHT in all; a check accepts at most
 * MAX_PACKET_INS_PER_CHECK packets and reads at most MAX_RESPONSE_BYTES of an answer.
 */
export class BackendChecker {
  private readonly states = new Map<string, BackendState>();
  /** source port → backend key, for the checks in flight */
  private readonly inFlight = new Map<number, string>();
  private readonly upSwitches = new Set<bigint>();
  /** switches seen and then lost: their backends cannot be reached, which counts as a failure */
  private readonly lostSwitches = new Set<bigint>();
  private nextPort = 0;

  constructor(
    /** uniform in [0, 1): jitter and initial sequence numbers */
    private readonly random: () => number = Math.random,
  ) {}

  /** how many backends are checked */
  get backends(): number {
    return this.states.size;
  }

  get checksInFlight(): number {
    return this.inFlight.size;
  }

  /**
   * The backends of a new model or placement. A backend whose target is unchanged keeps its counts
   * and schedule; a changed one keeps only its state; a new one starts undecided. Both are first
   * checked at a random point of their interval, so that backends are not checked in step.
   */
  setTargets(targets: readonly CheckTarget[], now: number): void {
    const before = new Map(this.states);
    this.states.clear();
    for (const target of targets) {
      const old = before.get(target.key);
      if (old && sameTarget(old.target, target)) {
        this.states.set(target.key, { ...old, target });
        continue;
      }
      if (old?.probe) this.inFlight.delete(old.probe.srcPort);
      // a moved or re-checked backend keeps its state until the new checks decide otherwise
      this.states.set(target.key, { target, health: old?.health, successes: 0, failures: 0, lastReason: undefined, nextAt: now + this.random() * intervalMs(target), probe: undefined });
    }
    for (const [key, old] of before) if (!this.states.has(key) && old.probe) this.inFlight.delete(old.probe.srcPort);
  }

  switchUp(dpid: bigint): void {
    this.upSwitches.add(dpid);
    this.lostSwitches.delete(dpid);
  }

  switchDown(dpid: bigint): void {
    if (this.upSwitches.delete(dpid)) this.lostSwitches.add(dpid);
  }

  /** Times out the checks past their deadline and starts the due ones; returns the transitions. */
  tick(now: number, transmit: Transmit): BackendHealth[] {
    const transitions: BackendHealth[] = [];
    for (const s of this.states.values()) {
      if (s.probe && now >= s.probe.deadline) this.finish(s, { ok: false, reason: s.probe.phase === 'syn' ? 'timeout: no answer to SYN' : 'timeout: no HTTP status line' }, now, transitions);
      if (now < s.nextAt || this.inFlight.size >= MAX_CHECKS_IN_FLIGHT) continue;
      this.start(s, now, transmit, transitions);
    }
    return transitions;
  }

  /** A packet a VM sent to a check's source port (the app's flow sent it up); returns the transitions, or why it was ignored. */
  receive(dpid: bigint, inPort: number, packet: ParsedPacket, now: number, transmit: Transmit): BackendHealth[] | IgnoredPacket {
    const ip = findLayer(packet, 'ipv4');
    const tcp = findLayer(packet, 'tcp');
    if (!ip || !tcp) return 'not_tcp';
    const key = this.inFlight.get(tcp.dstPort);
    const s = key === undefined ? undefined : this.states.get(key);
    const probe = s?.probe;
    if (!s || !probe) return 'no_check';
    const { target } = s;
    if (target.dpid !== dpid || target.ofport !== inPort || ip.src !== target.vmIp || ip.dst !== target.sourceIp || tcp.srcPort !== target.tcpPort) return 'wrong_port';
    if (++probe.packetIns > MAX_PACKET_INS_PER_CHECK) {
      // the VM keeps talking past any answer a check needs: the check fails, and the rest is ignored
      const transitions: BackendHealth[] = [];
      this.finish(s, { ok: false, reason: `more than ${MAX_PACKET_INS_PER_CHECK} packets without an answer` }, now, transitions);
      transmit(dpid, inPort, this.segment(target, probe, TcpFlag.RST, probe.ourNext, 0));
      return transitions;
    }
    const transitions: BackendHealth[] = [];
    const flags = tcp.flags;
    if (probe.phase === 'syn') {
      if (flags & TcpFlag.RST) {
        this.finish(s, { ok: false, reason: 'refused: RST to SYN' }, now, transitions);
        return transitions;
      }
      if ((flags & (TcpFlag.SYN | TcpFlag.ACK)) !== (TcpFlag.SYN | TcpFlag.ACK) || tcp.ack !== ((probe.isn + 1) >>> 0)) return 'out_of_order';
      probe.peerNext = (tcp.seq + 1) >>> 0;
      if (target.check.type === 'tcp') {
        transmit(dpid, inPort, this.segment(target, probe, TcpFlag.RST, tcp.ack, 0));
        this.finish(s, { ok: true }, now, transitions);
        return transitions;
      }
      const request = Buffer.from(`GET ${target.check.path ?? '/'} HTTP/1.0\r\nHost: ${target.vmIp}\r\nUser-Agent: zonemesh-lb-health\r\n\r\n`, 'latin1');
      probe.phase = 'response';
      probe.ourNext = (tcp.ack + request.length) >>> 0;
      // not sent (mastership lost meanwhile, a full queue): the check is dropped, as one never sent
      if (!transmit(dpid, inPort, this.segment(target, probe, TcpFlag.ACK | TcpFlag.PSH, tcp.ack, probe.peerNext, request))) this.drop(s);
      return transitions;
    }
    const data = findLayer(packet, 'raw')?.data ?? Buffer.alloc(0);
    if (data.length > 0) {
      if (tcp.seq !== probe.peerNext) return 'out_of_order';
      probe.response = Buffer.concat([probe.response, data.subarray(0, MAX_RESPONSE_BYTES - probe.response.length)]);
      probe.peerNext = (probe.peerNext + data.length) >>> 0;
    }
    const status = statusOf(probe.response);
    if (status === undefined && !(flags & (TcpFlag.RST | TcpFlag.FIN)) && probe.response.length < MAX_RESPONSE_BYTES) return transitions;
    if (!(flags & TcpFlag.RST)) transmit(dpid, inPort, this.segment(target, probe, TcpFlag.RST, probe.ourNext, 0));
    const expected = target.check.expectStatus ?? 200;
    const outcome: CheckOutcome =
      status === expected ? { ok: true }
      : status !== undefined ? { ok: false, reason: `HTTP status ${status}, expected ${expected}` }
      : flags & TcpFlag.RST ? { ok: false, reason: 'reset before an HTTP status line' }
      : flags & TcpFlag.FIN ? { ok: false, reason: 'closed before an HTTP status line' }
      : { ok: false, reason: 'no HTTP status line' };
    this.finish(s, outcome, now, transitions);
    return transitions;
  }

  private start(s: BackendState, now: number, transmit: Transmit, transitions: BackendHealth[]): void {
    const { target } = s;
    s.nextAt = now + intervalMs(target) * (1 - MIN_JITTER - this.random() * (MAX_JITTER - MIN_JITTER));
    if (this.lostSwitches.has(target.dpid)) return this.count(s, { ok: false, reason: `hypervisor ${target.hypervisor} disconnected` }, now, transitions);
    // a switch never seen (still connecting, or another controller's) is not checked, and nothing is counted
    if (!this.upSwitches.has(target.dpid)) return;
    if (target.ofport === undefined) return this.count(s, { ok: false, reason: `port ${target.port} not plugged in` }, now, transitions);
    const srcPort = this.allocatePort();
    const isn = Math.floor(this.random() * 2 ** 32) >>> 0;
    // a check ends by the next one's start at the latest (the timeout may equal the interval, which the jitter shortens)
    const probe: Probe = { srcPort, isn, deadline: Math.min(now + msOf(target.check.timeoutSeconds), s.nextAt), phase: 'syn', packetIns: 0, peerNext: 0, ourNext: (isn + 1) >>> 0, response: Buffer.alloc(0) };
    // not sent (this controller is not the switch's master, its queue is full): no sample
    if (!transmit(target.dpid, target.ofport, this.segment(target, probe, TcpFlag.SYN, isn, 0))) return;
    s.probe = probe;
    this.inFlight.set(srcPort, target.key);
  }

  private finish(s: BackendState, outcome: CheckOutcome, now: number, transitions: BackendHealth[]): void {
    this.drop(s);
    this.count(s, outcome, now, transitions);
  }

  /** ends the check in flight without a sample */
  private drop(s: BackendState): void {
    if (s.probe) this.inFlight.delete(s.probe.srcPort);
    s.probe = undefined;
  }

  /** rise consecutive successes make a backend up, fall consecutive failures down */
  private count(s: BackendState, outcome: CheckOutcome, now: number, transitions: BackendHealth[]): void {
    const { target } = s;
    if (outcome.ok) {
      s.successes++;
      s.failures = 0;
    } else {
      s.failures++;
      s.successes = 0;
      s.lastReason = outcome.reason;
    }
    const state = s.successes >= target.check.rise ? 'up' : s.failures >= target.check.fall ? 'down' : undefined;
    if (!state || state === s.health?.state) return;
    s.health = { vpc: target.vpc, loadBalancer: target.loadBalancer, port: target.port, state, reason: state === 'up' ? undefined : s.lastReason, at: now };
    transitions.push(s.health);
  }

  private allocatePort(): number {
    for (;;) {
      const port = CHECK_PORT_BASE + this.nextPort;
      this.nextPort = (this.nextPort + 1) % CHECK_PORT_COUNT;
      if (!this.inFlight.has(port)) return port;
    }
  }

  private segment(target: CheckTarget, probe: Probe, flags: number, seq: number, ack: number, payload?: Buffer): Buffer {
    return buildPacket([
      { type: 'ethernet', dst: target.vmMac, src: target.sourceMac },
      { type: 'ipv4', src: target.sourceIp, dst: target.vmIp, ttl: 64 },
      { type: 'tcp', srcPort: probe.srcPort, dstPort: target.tcpPort, seq, ack, flags, window: WINDOW },
      ...(payload ? [{ type: 'raw' as const, data: payload }] : []),
    ]);
  }
}

function intervalMs(target: CheckTarget): number {
  return msOf(target.check.intervalSeconds);
}

/** the model's seconds are whole or fractional to the millisecond: 1.005 s is 1005 ms, not 1004.9999999999999 */
const msOf = (seconds: number): number => Math.round(seconds * 1000);

/** 'HTTP/1.1 503 …' → 503; undefined until the status code is in */
export function statusOf(response: Buffer): number | undefined {
  const m = /^HTTP\/\d\.\d (\d{3})[ \r]/.exec(response.toString('latin1', 0, Math.min(response.length, 16)));
  return m ? Number(m[1]) : undefined;
}

function sameTarget(a: CheckTarget, b: CheckTarget): boolean {
  return (
    a.dpid === b.dpid && a.ofport === b.ofport && a.vmMac === b.vmMac && a.vmIp === b.vmIp && a.tcpPort === b.tcpPort && a.sourceIp === b.sourceIp && a.sourceMac === b.sourceMac && JSON.stringify(a.check) === JSON.stringify(b.check)
  );
}
