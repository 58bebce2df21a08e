/**
 * One cbench-style fake OpenFlow 1.3 switch: a TCP connection to the controller, the
 * handshake answered with our codec, then unbuffered PACKET_INs from pre-encoded bytes
 * (xid, in_port and MACs patched in place, many per socket write), with FLOW_MOD and
 * PACKET_OUT counted straight off the message headers.
 *
 * Each switch has `macs` hosts; host k has MAC 02:DD:kk:kk:kk:kk (DD = dpid's low byte) and
 * sits on port 1 + k % ports. Learning phase: every host sends one broadcast frame, as cbench's
 * --learn-dstmac does, so the controller knows every destination. Run phase: frames between two
 * random hosts on different ports, so an L2-learning controller answers each with a FLOW_MOD and
 * a PACKET_OUT.
 *
 * A packet-in counts as answered when its PACKET_OUT arrives (the last message a learning switch
 * sends for an unbuffered packet-in); with `ack: 'flow_mod'`, when a FLOW_MOD arrives.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  OFP_VERSION,
  OFPP,
  decodeMessage,
  encodeMessage,
  type MultipartReplyBody,
  type OfMessage,
  type Port,
} from '../../src/openflow';
import { PACKET_IN_TABLE_ID_AT, T, type PacketInTemplate } from './templates';

export type Mode = 'throughput' | 'latency';
export type Phase = 'connecting' | 'handshake' | 'ready' | 'learning' | 'learned' | 'running' | 'closed';

export interface SwitchOptions {
  host: string;
  port: number;
  dpid: number;
  macs: number;
  ports: number;
  mode: Mode;
  /** outstanding packet-ins per switch in throughput mode */
  window: number;
  ack: 'packet_out' | 'flow_mod';
  /** an outstanding packet-in unanswered this long is written off (the controller dropped it) */
  stallMs: number;
  seed: number;
}

export interface Counters {
  packetIns: number;
  flowMods: number;
  packetOuts: number;
  /** packet-ins answered (see `ack`) */
  answered: number;
  /** packet-ins written off after stallMs without an answer */
  lost: number;
  errors: number;
  other: number;
  /** latency mode: sum and count of round trips in µs, and a histogram in 10 µs buckets */
  rttSumUs: number;
  rttCount: number;
}

export const RTT_BUCKET_US = 10;
export const RTT_BUCKETS = 2000; // up to 20 ms; the last bucket holds everything above

export function zeroCounters(): Counters {
  return { packetIns: 0, flowMods: 0, packetOuts: 0, answered: 0, lost: 0, errors: 0, other: 0, rttSumUs: 0, rttCount: 0 };
}

export function addCounters(a: Counters, b: Counters): Counters {
  const out = zeroCounters();
  for (const k of Object.keys(out) as (keyof Counters)[]) out[k] = a[k] + b[k];
  return out;
}

const BROADCAST = 0xffffffffffff;
const LEARN_WINDOW_LATENCY = 16;

export class FakeSwitch {
  phase: Phase = 'connecting';
  readonly counters = zeroCounters();
  /** latency histogram, RTT_BUCKET_US wide buckets */
  readonly rttHist = new Uint32Array(RTT_BUCKETS);
  failure: Error | undefined;
  private socket!: Socket;
  private pending: Buffer | null = null;
  private xid = 1;
  private rng: number;
  private readonly tpl: Buffer;
  private readonly inPortAt: number;
  private readonly dstAt: number;
  private readonly tplLen: number;
  private learnNext = 0;
  private lastRx = 0;
  private sentAt = 0;
  private onPhase: ((p: Phase) => void) | undefined;
  private readonly distinctPorts: boolean;

  constructor(
    readonly o: SwitchOptions,
    tpl: PacketInTemplate,
  ) {
    this.tpl = Buffer.from(tpl.bytes); // own copy: its table_id follows this switch's table-miss flow
    this.tplLen = tpl.bytes.length;
    this.inPortAt = tpl.inPortAt;
    this.dstAt = tpl.dstAt;
    this.distinctPorts = o.ports > 1 && o.macs > o.ports;
    this.rng = (o.seed ^ (o.dpid * 0x9e3779b1)) >>> 0 || 1;
  }

  get outstanding(): number {
    return this.counters.packetIns - this.counters.answered - this.counters.lost;
  }

  start(onPhase: (p: Phase) => void): void {
    this.onPhase = onPhase;
    const s = connect(this.o.port, this.o.host);
    this.socket = s;
    s.setNoDelay(true);
    s.on('connect', () => {
      this.setPhase('handshake');
      s.write(encodeMessage({ type: 'HELLO', xid: this.xid++, elements: [{ type: 'versionbitmap', versions: [OFP_VERSION] }] }));
    });
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('error', (e) => this.fail(e));
    s.on('close', () => {
      if (this.phase !== 'closed') this.fail(new Error('the controller closed the connection'));
    });
  }

  close(): void {
    this.setPhase('closed');
    this.socket?.destroy();
  }

  /** Sends one broadcast packet-in from every host (windowed), then reports 'learned'. */
  learn(): void {
    this.setPhase('learning');
    this.learnNext = 0;
    this.lastRx = performance.now();
    this.pump();
  }

  run(): void {
    this.setPhase('running');
    this.lastRx = performance.now();
    this.pump();
  }

  /** Called periodically: writes off packet-ins the controller never answered, so the window does not shrink for good. */
  tick(now: number): void {
    if ((this.phase === 'learning' || this.phase === 'running') && this.outstanding > 0 && now - this.lastRx > this.o.stallMs) {
      this.counters.lost += this.outstanding;
      this.lastRx = now;
      this.pump();
    }
  }

  private setPhase(p: Phase): void {
    if (this.phase === p || this.phase === 'closed') return;
    this.phase = p;
    this.onPhase?.(p);
  }

  private fail(e: Error): void {
    if (this.phase === 'closed') return;
    this.failure = e;
    this.close();
  }

  private rand(): number {
    // xorshift32
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (this.rng = x >>> 0);
  }

  /** Tops the pipe up: the window in throughput mode, one packet-in in latency mode. */
  private pump(): void {
    const o = this.o;
    let n: number;
    if (this.phase === 'learning') {
      if (this.learnNext >= o.macs && this.outstanding <= 0) return this.setPhase('learned');
      // learning is not measured: a few packet-ins in flight even in latency mode
      n = Math.min((o.mode === 'latency' ? LEARN_WINDOW_LATENCY : o.window) - this.outstanding, o.macs - this.learnNext);
    } else if (this.phase === 'running') {
      n = (o.mode === 'latency' ? 1 : o.window) - this.outstanding;
      // refill in chunks: fewer, larger writes
      if (o.mode === 'throughput' && n < Math.min(32, o.window >> 2) && this.outstanding > 0) return;
    } else {
      return;
    }
    if (n <= 0) return;
    const len = this.tplLen;
    const buf = Buffer.allocUnsafe(n * len);
    const dpidByte = o.dpid & 0xff;
    for (let i = 0, off = 0; i < n; i++, off += len) {
      this.tpl.copy(buf, off);
      buf.writeUInt32BE(this.xid, off + 4);
      this.xid = this.xid === 0xffffffff ? 1 : this.xid + 1;
      let src: number;
      let dst: number;
      if (this.phase === 'learning') {
        src = this.learnNext++;
        dst = -1;
      } else {
        src = this.rand() % o.macs;
        dst = this.rand() % o.macs;
        // another host on another port: an L2 switch may drop a frame whose output is its input
        if (this.distinctPorts) while (dst % o.ports === src % o.ports) dst = (dst + 1) % o.macs;
        else if (o.macs > 1 && dst === src) dst = (dst + 1) % o.macs;
      }
      buf.writeUInt32BE(1 + (src % o.ports), off + this.inPortAt);
      const d = off + this.dstAt;
      if (dst < 0) {
        buf.writeUIntBE(BROADCAST, d, 6);
      } else {
        buf[d] = 0x02;
        buf[d + 1] = dpidByte;
        buf.writeUInt32BE(dst, d + 2);
      }
      buf[d + 6] = 0x02;
      buf[d + 7] = dpidByte;
      buf.writeUInt32BE(src, d + 8);
    }
    this.counters.packetIns += n;
    if (o.mode === 'latency') this.sentAt = performance.now();
    this.socket.write(buf);
  }

  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    const c = this.counters;
    const ackType = this.o.ack === 'flow_mod' ? T.FLOW_MOD : T.PACKET_OUT;
    let acked = 0;
    let off = 0;
    const end = buf.length;
    while (end - off >= 8) {
      const len = (buf[off + 2]! << 8) | buf[off + 3]!;
      if (len < 8) return this.fail(new Error(`controller sent a message of length ${len}`));
      if (end - off < len) break;
      const type = buf[off + 1]!;
      if (type === T.FLOW_MOD) {
        c.flowMods++;
        if (this.phase === 'handshake' || this.phase === 'ready') this.onEarlyFlowMod(buf.subarray(off, off + len));
      }
      else if (type === T.PACKET_OUT) c.packetOuts++;
      else this.onControl(buf.subarray(off, off + len));
      if (type === ackType) acked++;
      off += len;
    }
    if (off < end) this.pending = Buffer.from(buf.subarray(off));
    if (acked > 0) this.onAcked(acked);
  }

  private onAcked(n: number): void {
    const now = performance.now();
    this.lastRx = now;
    const c = this.counters;
    // answers to packet-ins already written off are not counted twice
    const take = Math.min(n, this.outstanding);
    c.answered += take;
    if (this.o.mode === 'latency' && take > 0) {
      const us = (now - this.sentAt) * 1000;
      c.rttSumUs += us;
      c.rttCount++;
      const b = Math.floor(us / RTT_BUCKET_US);
      this.rttHist[b < RTT_BUCKETS ? b : RTT_BUCKETS - 1]!++;
    }
    this.pump();
  }

  /**
   * Before the learning phase: a table-miss flow sending packets to the controller tells which
   * table the controller expects its packet-ins from (an app may ignore those of other tables).
   */
  private onEarlyFlowMod(frame: Buffer): void {
    const res = decodeMessage(frame);
    if (!res.ok || res.message.type !== 'FLOW_MOD') return;
    const fm = res.message;
    const toController = fm.instructions.some(
      (i) => i.type === 'apply_actions' && i.actions.some((a) => a.type === 'output' && a.port === OFPP.CONTROLLER),
    );
    if (fm.command === 'add' && fm.priority === 0 && fm.match.length === 0 && toController) this.tpl[PACKET_IN_TABLE_ID_AT] = fm.tableId;
  }

  /** Everything but FLOW_MOD and PACKET_OUT: handshake, echo, barrier, errors. Decoded with our codec. */
  private onControl(frame: Buffer): void {
    const type = frame[1]!;
    const xid = frame.readUInt32BE(4);
    if (type === T.HELLO) return;
    if (type === T.ECHO_REQUEST) {
      const reply = Buffer.from(frame);
      reply[1] = T.ECHO_REPLY;
      this.socket.write(reply);
      return;
    }
    if (type === T.ERROR) {
      this.counters.errors++;
      return;
    }
    const res = decodeMessage(frame);
    if (!res.ok) {
      this.counters.errors++;
      return;
    }
    const reply = this.replyTo(res.message, xid);
    if (reply) this.socket.write(encodeMessage(reply));
    else this.counters.other++;
  }

  private replyTo(m: OfMessage, xid: number): OfMessage | undefined {
    switch (m.type) {
      case 'FEATURES_REQUEST':
        return {
          type: 'FEATURES_REPLY', xid, datapathId: BigInt(this.o.dpid), nBuffers: 0, nTables: 254, auxiliaryId: 0,
          capabilities: 0x4f, reserved: 0,
        };
      case 'MULTIPART_REQUEST': {
        const body = this.multipartReply(m.body.mpType);
        return body ? { type: 'MULTIPART_REPLY', xid, flags: 0, body } : undefined;
      }
      case 'BARRIER_REQUEST':
        return { type: 'BARRIER_REPLY', xid };
      case 'GET_CONFIG_REQUEST':
        return { type: 'GET_CONFIG_REPLY', xid, flags: 0, missSendLen: 0xffff };
      case 'ROLE_REQUEST':
        return { type: 'ROLE_REPLY', xid, role: m.role, generationId: m.generationId };
      default:
        return undefined; // SET_CONFIG, SET_ASYNC, TABLE_MOD ...: nothing to answer
    }
  }

  private multipartReply(mpType: string): MultipartReplyBody | undefined {
    switch (mpType) {
      case 'PORT_DESC': {
        const ports: Port[] = [];
        for (let p = 1; p <= this.o.ports; p++) {
          ports.push({
            portNo: p, hwAddr: `02:00:00:00:${(this.o.dpid & 0xff).toString(16).padStart(2, '0')}:${p.toString(16).padStart(2, '0')}`,
            name: `zmlg${this.o.dpid}-${p}`, config: 0, state: 4, curr: 0x820, advertised: 0, supported: 0, peer: 0,
            currSpeed: 10_000_000, maxSpeed: 10_000_000,
          });
        }
        ports.push({
          portNo: OFPP.LOCAL, hwAddr: '02:00:00:00:00:fe', name: `zmlg${this.o.dpid}`, config: 0, state: 4, curr: 0, advertised: 0,
          supported: 0, peer: 0, currSpeed: 0, maxSpeed: 0,
        });
        // the handshake is complete once the port list is known
        queueMicrotask(() => this.setPhase('ready'));
        return { mpType: 'PORT_DESC', ports };
      }
      case 'DESC':
        return { mpType: 'DESC', mfrDesc: 'zonemesh', hwDesc: 'loadgen', swDesc: 'cbench-style', serialNum: String(this.o.dpid), dpDesc: `zmlg${this.o.dpid}` };
      case 'FLOW':
        return { mpType: 'FLOW', flows: [] };
      case 'TABLE':
        return { mpType: 'TABLE', tables: [] };
      case 'PORT_STATS':
        return { mpType: 'PORT_STATS', ports: [] };
      case 'GROUP_DESC':
        return { mpType: 'GROUP_DESC', groups: [] };
      default:
        return undefined;
    }
  }
}
