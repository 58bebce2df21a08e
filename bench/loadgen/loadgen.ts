/**
 * cbench-style OpenFlow 1.3 load generator on our codec.
 *
 *   node dist/bench/loadgen/loadgen.js --connect 127.0.0.1:6653 [--mode throughput|latency]
 *        [--switches 16] [--seconds 10] [--warmup 2] [--macs 1000] [--ports 4] [--window 512]
 *        [--ack packet_out|flow_mod] [--threads 1] [--json]
 *
 * N fake switches (bench/loadgen/fake-switch.ts) connect, handshake (distinct dpids 1..N),
 * teach the controller every host MAC, then send unbuffered PACKET_INs between random hosts:
 *   throughput: up to --window packet-ins outstanding per switch, the pipe kept full;
 *   latency:    one outstanding per switch, the next sent only when the previous is answered.
 * After the warm-up, it counts for --seconds and reports
 *   responses/s = (FLOW_MOD + PACKET_OUT)/s, the messages cbench counts,
 *   answered/s  = packet-ins answered per second (by their PACKET_OUT),
 * plus per-second min/max and, in latency mode, the round-trip percentiles.
 *
 * Run it pinned to its own core (taskset -c 1) with the controller on the other: one thread
 * does ~2-3M messages/s here, which `--threads` can split over worker threads on a larger box.
 * The last line is `LOADGEN_RESULT {json}`.
 */
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { FakeSwitch, RTT_BUCKETS, RTT_BUCKET_US, addCounters, zeroCounters, type Counters, type Mode, type Phase, type SwitchOptions } from './fake-switch';
import { packetInTemplate } from './templates';

export interface LoadgenOptions {
  host: string;
  port: number;
  switches: number;
  mode: Mode;
  seconds: number;
  warmup: number;
  macs: number;
  ports: number;
  window: number;
  ack: 'packet_out' | 'flow_mod';
  threads: number;
  stallMs: number;
  /** pause between the handshake and the learning phase (controllers install their table-miss flows then) */
  settleMs: number;
  handshakeTimeoutMs: number;
  json: boolean;
  quiet: boolean;
}

export interface LoadgenResult {
  options: LoadgenOptions;
  seconds: number;
  responsesPerSec: number;
  flowModsPerSec: number;
  packetOutsPerSec: number;
  answeredPerSec: number;
  packetInsPerSec: number;
  /** answered/s of each one-second sample */
  samples: number[];
  responseSamples: number[];
  lost: number;
  errors: number;
  learnSeconds: number;
  /** % of one core this process (all its threads) used during the measured seconds */
  generatorCpu: number;
  rttUs?: { mean: number; p50: number; p90: number; p99: number; max: number };
}

const DEFAULTS: LoadgenOptions = {
  host: '127.0.0.1',
  port: 6653,
  switches: 16,
  mode: 'throughput',
  seconds: 10,
  warmup: 2,
  macs: 1000,
  ports: 4,
  window: 512,
  ack: 'packet_out',
  threads: 1,
  stallMs: 500,
  settleMs: 500,
  handshakeTimeoutMs: 30_000,
  json: false,
  quiet: false,
};

export function parseArgs(argv: string[]): LoadgenOptions {
  const o = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    const num = () => {
      const x = Number(v());
      if (!Number.isFinite(x) || x < 0) throw new Error(`${a} needs a number >= 0`);
      return x;
    };
    switch (a) {
      case '--connect': {
        const m = /^(.+):(\d+)$/.exec(v());
        if (!m) throw new Error('--connect HOST:PORT');
        o.host = m[1]!;
        o.port = Number(m[2]);
        break;
      }
      case '--switches': o.switches = num(); break;
      case '--mode': {
        const m = v();
        if (m !== 'throughput' && m !== 'latency') throw new Error('--mode throughput|latency');
        o.mode = m;
        break;
      }
      case '--seconds': o.seconds = num(); break;
      case '--warmup': o.warmup = num(); break;
      case '--macs': o.macs = num(); break;
      case '--ports': o.ports = num(); break;
      case '--window': o.window = num(); break;
      case '--ack': {
        const m = v();
        if (m !== 'packet_out' && m !== 'flow_mod') throw new Error('--ack packet_out|flow_mod');
        o.ack = m;
        break;
      }
      case '--threads': o.threads = num(); break;
      case '--stall-ms': o.stallMs = num(); break;
      case '--settle-ms': o.settleMs = num(); break;
      case '--json': o.json = true; break;
      case '--quiet': o.quiet = true; break;
      case '-h':
      case '--help':
        console.log(require('node:fs').readFileSync(__filename, 'utf8').split('*/')[0]);
        process.exit(0);
      // falls through
      default:
        throw new Error(`unknown option ${a}`);
    }
  }
  if (o.switches < 1 || o.switches > 255 || o.macs < 1 || o.ports < 1 || o.window < 1 || o.threads < 1) {
    throw new Error('need 1 <= switches <= 255, macs, ports, window and threads >= 1');
  }
  return o;
}

// ---- a group of switches, run in this thread or in a worker ----

interface Snapshot {
  counters: Counters;
  hist: Uint32Array;
}

/** The switches of one thread. */
class LocalGroup {
  private readonly switches: FakeSwitch[];
  private readonly waiters: { phase: Phase; resolve: () => void; reject: (e: Error) => void }[] = [];
  private readonly ticker: NodeJS.Timeout;

  constructor(o: LoadgenOptions, dpids: number[]) {
    const tpl = packetInTemplate();
    this.switches = dpids.map((dpid) => {
      const so: SwitchOptions = {
        host: o.host, port: o.port, dpid, macs: o.macs, ports: o.ports, mode: o.mode, window: o.window, ack: o.ack,
        stallMs: o.stallMs, seed: 0x5eed,
      };
      return new FakeSwitch(so, tpl);
    });
    this.ticker = setInterval(() => {
      const now = performance.now();
      for (const s of this.switches) s.tick(now);
    }, 50);
  }

  start(): Promise<void> {
    const p = this.when('ready');
    for (const s of this.switches) s.start(() => this.check());
    return p;
  }

  learn(): Promise<void> {
    const p = this.when('learned');
    for (const s of this.switches) s.learn();
    return p;
  }

  run(): void {
    for (const s of this.switches) s.run();
  }

  snapshot(): Snapshot {
    let counters = zeroCounters();
    const hist = new Uint32Array(RTT_BUCKETS);
    for (const s of this.switches) {
      counters = addCounters(counters, s.counters);
      for (let i = 0; i < RTT_BUCKETS; i++) hist[i]! += s.rttHist[i]!;
    }
    return { counters, hist };
  }

  close(): void {
    clearInterval(this.ticker);
    for (const s of this.switches) s.close();
  }

  private when(phase: Phase): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ phase, resolve, reject });
      this.check();
    });
  }

  private check(): void {
    const failed = this.switches.find((s) => s.failure);
    for (const w of this.waiters.splice(0)) {
      if (failed) w.reject(new Error(`switch ${failed.o.dpid}: ${failed.failure!.message}`));
      else if (this.switches.every((s) => s.phase === w.phase)) w.resolve();
      else this.waiters.push(w);
    }
  }
}

type Command = 'start' | 'learn' | 'run' | 'snapshot' | 'close';

/** The same interface over a worker thread. */
class WorkerGroup {
  private readonly worker: Worker;
  private seq = 0;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(o: LoadgenOptions, dpids: number[]) {
    this.worker = new Worker(__filename, { workerData: { o, dpids } });
    this.worker.on('message', (m: { seq: number; ok: boolean; value?: unknown; error?: string }) => {
      const c = this.calls.get(m.seq);
      if (!c) return;
      this.calls.delete(m.seq);
      if (m.ok) c.resolve(m.value);
      else c.reject(new Error(m.error));
    });
    this.worker.on('error', (e) => {
      for (const c of this.calls.values()) c.reject(e);
      this.calls.clear();
    });
  }

  call<R>(cmd: Command): Promise<R> {
    const seq = ++this.seq;
    return new Promise<R>((resolve, reject) => {
      this.calls.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ seq, cmd });
    });
  }

  start = () => this.call<void>('start');
  learn = () => this.call<void>('learn');
  run = () => void this.call<void>('run');
  snapshot = () => this.call<Snapshot>('snapshot');
  close = () => {
    void this.call<void>('close').finally(() => void this.worker.terminate());
  };
}

function workerMain(): void {
  const { o, dpids } = workerData as { o: LoadgenOptions; dpids: number[] };
  const g = new LocalGroup(o, dpids);
  parentPort!.on('message', async ({ seq, cmd }: { seq: number; cmd: Command }) => {
    try {
      let value: unknown;
      if (cmd === 'start') await g.start();
      else if (cmd === 'learn') await g.learn();
      else if (cmd === 'run') g.run();
      else if (cmd === 'snapshot') value = g.snapshot();
      else g.close();
      parentPort!.postMessage({ seq, ok: true, value });
    } catch (e) {
      parentPort!.postMessage({ seq, ok: false, error: (e as Error).message });
    }
  });
}

// ---- coordinator ----

interface AnyGroup {
  start(): Promise<void>;
  learn(): Promise<void>;
  run(): void;
  snapshot(): Snapshot | Promise<Snapshot>;
  close(): void;
}

async function snapshotAll(groups: AnyGroup[]): Promise<{ t: number; s: Snapshot }> {
  const snaps = await Promise.all(groups.map((g) => g.snapshot()));
  const t = performance.now();
  let counters = zeroCounters();
  const hist = new Uint32Array(RTT_BUCKETS);
  for (const s of snaps) {
    counters = addCounters(counters, s.counters);
    for (let i = 0; i < RTT_BUCKETS; i++) hist[i]! += s.hist[i]!;
  }
  return { t, s: { counters, hist } };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(hist: Uint32Array, total: number, q: number): number {
  const want = Math.ceil(total * q);
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i]!;
    if (seen >= want) return (i + 1) * RTT_BUCKET_US;
  }
  return hist.length * RTT_BUCKET_US;
}

export async function runLoadgen(o: LoadgenOptions, log: (s: string) => void = console.log): Promise<LoadgenResult> {
  const dpids = Array.from({ length: o.switches }, (_, i) => i + 1);
  const threads = Math.min(o.threads, o.switches);
  const groups: AnyGroup[] =
    threads === 1
      ? [new LocalGroup(o, dpids)]
      : Array.from({ length: threads }, (_, t) => new WorkerGroup(o, dpids.filter((_, i) => i % threads === t)));
  try {
    await withTimeout(Promise.all(groups.map((g) => g.start())), o.handshakeTimeoutMs, `handshake of ${o.switches} switches with ${o.host}:${o.port}`);
    await sleep(o.settleMs);
    const l0 = performance.now();
    await withTimeout(Promise.all(groups.map((g) => g.learn())), 120_000, 'learning phase');
    const learnSeconds = (performance.now() - l0) / 1000;
    if (!o.quiet) log(`loadgen: ${o.switches} switches ready, ${o.switches * o.macs} MACs learned in ${learnSeconds.toFixed(2)} s; ${o.mode} mode, ${o.warmup} s warm-up, ${o.seconds} s measured`);
    for (const g of groups) g.run();
    await sleep(o.warmup * 1000);
    const first = await snapshotAll(groups);
    const cpu0 = process.cpuUsage();
    let prev = first;
    const samples: number[] = [];
    const responseSamples: number[] = [];
    const seconds = Math.max(1, Math.round(o.seconds));
    for (let i = 0; i < seconds; i++) {
      await sleep(first.t + (i + 1) * 1000 - performance.now());
      const cur = await snapshotAll(groups);
      const dt = (cur.t - prev.t) / 1000;
      const answered = (cur.s.counters.answered - prev.s.counters.answered) / dt;
      const responses = (cur.s.counters.flowMods + cur.s.counters.packetOuts - prev.s.counters.flowMods - prev.s.counters.packetOuts) / dt;
      samples.push(answered);
      responseSamples.push(responses);
      if (!o.quiet) log(`  ${String(i + 1).padStart(3)} s  responses/s ${fmt(responses).padStart(10)}  answered/s ${fmt(answered).padStart(10)}`);
      prev = cur;
    }
    const cpu = process.cpuUsage(cpu0);
    const a = first.s.counters;
    const b = prev.s.counters;
    const dt = (prev.t - first.t) / 1000;
    const rate = (k: keyof Counters) => (b[k] - a[k]) / dt;
    const result: LoadgenResult = {
      options: o,
      seconds: dt,
      responsesPerSec: (b.flowMods + b.packetOuts - a.flowMods - a.packetOuts) / dt,
      flowModsPerSec: rate('flowMods'),
      packetOutsPerSec: rate('packetOuts'),
      answeredPerSec: rate('answered'),
      packetInsPerSec: rate('packetIns'),
      samples,
      responseSamples,
      lost: b.lost - a.lost,
      errors: b.errors,
      learnSeconds,
      generatorCpu: ((cpu.user + cpu.system) / 1e6 / dt) * 100,
    };
    if (o.mode === 'latency') {
      const hist = prev.s.hist.map((v, i) => v - first.s.hist[i]!);
      const n = b.rttCount - a.rttCount;
      let max = 0;
      for (let i = hist.length - 1; i >= 0; i--) if (hist[i]) { max = (i + 1) * RTT_BUCKET_US; break; }
      result.rttUs = {
        mean: n ? (b.rttSumUs - a.rttSumUs) / n : 0,
        p50: percentile(hist, n, 0.5),
        p90: percentile(hist, n, 0.9),
        p99: percentile(hist, n, 0.99),
        max,
      };
    }
    return result;
  } finally {
    for (const g of groups) g.close();
  }
}

export function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function describe(r: LoadgenResult): string {
  const lines = [
    `responses/s (FLOW_MOD+PACKET_OUT): ${fmt(r.responsesPerSec)}  [flow_mods/s ${fmt(r.flowModsPerSec)}, packet_outs/s ${fmt(r.packetOutsPerSec)}]`,
    `packet-ins answered/s: ${fmt(r.answeredPerSec)}  (per-second min ${fmt(Math.min(...r.samples))}, max ${fmt(Math.max(...r.samples))}); packet-ins sent/s ${fmt(r.packetInsPerSec)}`,
    `lost (unanswered after ${r.options.stallMs} ms): ${r.lost}; errors from the controller: ${r.errors}; generator CPU ${r.generatorCpu.toFixed(0)}% of a core`,
  ];
  if (r.rttUs) {
    const u = r.rttUs;
    lines.push(`round trip µs: mean ${u.mean.toFixed(1)}, p50 ${u.p50}, p90 ${u.p90}, p99 ${u.p99}, max ${u.max >= RTT_BUCKETS * RTT_BUCKET_US ? '>' : ''}${u.max}`);
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  let o: LoadgenOptions;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`loadgen: ${(e as Error).message}`);
    return 2;
  }
  try {
    const r = await runLoadgen(o);
    if (!o.quiet) console.log(describe(r));
    if (o.json) console.log(`LOADGEN_RESULT ${JSON.stringify(r)}`);
    return 0;
  } catch (e) {
    console.error(`loadgen: ${(e as Error).message}`);
    if (o.json) console.log(`LOADGEN_RESULT ${JSON.stringify({ error: (e as Error).message })}`);
    return 1;
  }
}

if (!isMainThread) {
  workerMain();
} else if (require.main === module) {
  void main().then((status) => process.exit(status));
}
