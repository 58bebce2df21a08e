/**
 * Controller throughput, cbench-style, zonemesh and its peers side by side in one run:
 *
 *   node dist/bench/loadgen/driver.js [--controllers zonemesh,zonemesh-2w,zonemesh-stub,os-ken,null]
 *        [--modes throughput,latency] [--seconds 10] [--warmup 3] [--switches 16] [--macs 1000]
 *        [--runs 1] [--cpu-controller 0] [--cpu-loadgen 1] [--summary FILE] [--json FILE]
 *
 * For every controller and mode: start the controller pinned to one core (taskset), wait until
 * it accepts TCP, run bench/loadgen/loadgen.js pinned to the other core, stop the controller.
 * A fresh controller process per measurement, so no state carries over.
 *
 * The controllers (edit CONTROLLERS to change a command; each is one line):
 *   zonemesh       the product: `zonemesh run --apps l2-learning` (src/cli/main.ts)
 *   zonemesh-2w    the same with `--workers 2`, one process per core, on both cores (the generator's too)
 *   zonemesh-baseline, zonemesh-2w-baseline   the same two from another build, when ZONEMESH_BENCH_BASELINE names its dist/
 *   zonemesh-stub  bench/loadgen/stub-l2.ts: l2-learning's logic straight on src/controller, without the SDK
 *   os-ken         os-ken 2.5 (Debian python3-os-ken) running bench/osken_l2.py
 *   null           bench/loadgen/null-controller.ts: no decoding at all; the generator's ceiling
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync, mkdirSync, openSync, closeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadavg } from 'node:os';
import { REPO_ROOT } from '../../test/helpers/paths';
import type { LoadgenResult } from './loadgen';
import { tcpOpen } from '../tcp-open';

const STATE_DIR = process.env.ZONEMESH_BENCH_STATE ?? '/tmp/zonemesh-bench';
const NODE = process.execPath;
/** the compiled tree this script runs from (dist/, or the snapshot bench/run.sh takes of it) */
const DIST = resolve(__dirname, '..', '..');

interface ControllerSpec {
  id: string;
  label: string;
  argv: (host: string, port: number) => string[];
  /** CPUs the controller may use, when not the --cpu-controller one (a multi-process controller gets both) */
  cpus?: string;
}

/**
 * Each of the 16 generator switches sends over 30,000 PACKET_INs/s, above the default per-switch limit
 * (10,000/s): the bench lifts it, to measure the controller rather than the limit.
 */
const BENCH_PACKET_IN_RATE = ['--packet-in-rate', '100000000'];

/**
 * Another build's compiled tree (the dist/ of a clone at another commit): its two product rows are
 * measured beside this build's, as zonemesh-baseline and zonemesh-2w-baseline, in the same run.
 */
const BASELINE_DIST = process.env.ZONEMESH_BENCH_BASELINE;

/** the product's rows, from the compiled tree `dist` */
function productSpecs(dist: string, suffix: string, note: string): ControllerSpec[] {
  const main = join(dist, 'src/cli/main.js');
  return [
    {
      id: `zonemesh${suffix}`,
      label: `zonemesh \`run --apps l2-learning\`${note}`,
      argv: (h, p) => [NODE, main, 'run', '--apps', 'l2-learning', '--listen', `${h}:${p}`, ...BENCH_PACKET_IN_RATE],
    },
    {
      id: `zonemesh-2w${suffix}`,
      label: `zonemesh \`run --workers 2 --apps l2-learning\`, CPUs 0,1${note}`,
      argv: (h, p) => [NODE, main, 'run', '--workers', '2', '--apps', 'l2-learning', '--listen', `${h}:${p}`, ...BENCH_PACKET_IN_RATE],
      cpus: '0,1',
    },
  ];
}

export const CONTROLLERS: ControllerSpec[] = [
  ...productSpecs(DIST, '', ''),
  ...(BASELINE_DIST ? productSpecs(BASELINE_DIST, '-baseline', ` (baseline: ${BASELINE_DIST})`) : []),
  {
    id: 'zonemesh-stub',
    label: 'zonemesh runtime + bench stub L2 (stub-l2.ts)',
    argv: (h, p) => [NODE, join(DIST, 'bench/loadgen/stub-l2.js'), '--listen', `${h}:${p}`],
  },
  {
    id: 'os-ken',
    label: 'os-ken 2.5 simple_switch_13 (osken_l2.py)',
    argv: (h, p) => ['/usr/bin/osken-manager', '--ofp-listen-host', h, '--ofp-tcp-listen-port', String(p), join(REPO_ROOT, 'bench/osken_l2.py')],
  },
  {
    id: 'null',
    label: 'null responder (generator ceiling)',
    argv: (h, p) => [NODE, join(DIST, 'bench/loadgen/null-controller.js'), '--listen', `${h}:${p}`],
  },
];

interface Options {
  controllers: string[];
  modes: ('throughput' | 'latency')[];
  seconds: number;
  warmup: number;
  switches: number;
  macs: number;
  window: number;
  runs: number;
  cpuController: string;
  cpuLoadgen: string;
  port: number;
  summary?: string;
  json?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    controllers: CONTROLLERS.map((c) => c.id),
    modes: ['throughput', 'latency'],
    seconds: 10,
    warmup: 3,
    switches: 16,
    macs: 1000,
    window: 512,
    runs: 1,
    cpuController: '0',
    cpuLoadgen: '1',
    port: 16680,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => argv[++i] ?? '';
    if (a === '--controllers') o.controllers = v().split(',');
    else if (a === '--modes') o.modes = v().split(',') as Options['modes'];
    else if (a === '--seconds') o.seconds = Number(v());
    else if (a === '--warmup') o.warmup = Number(v());
    else if (a === '--switches') o.switches = Number(v());
    else if (a === '--macs') o.macs = Number(v());
    else if (a === '--window') o.window = Number(v());
    else if (a === '--runs') o.runs = Number(v());
    else if (a === '--cpu-controller') o.cpuController = v();
    else if (a === '--cpu-loadgen') o.cpuLoadgen = v();
    else if (a === '--port') o.port = Number(v());
    else if (a === '--summary') o.summary = v();
    else if (a === '--json') o.json = v();
    else throw new Error(`unknown option ${a}`);
  }
  for (const c of o.controllers) if (!CONTROLLERS.some((s) => s.id === c)) throw new Error(`unknown controller ${c}`);
  for (const m of o.modes) if (m !== 'throughput' && m !== 'latency') throw new Error(`unknown mode ${m}`);
  return o;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** utime+stime of a process and its live descendants (a multi-process controller's workers), in clock ticks (100/s on Linux) */
function cpuTicks(pid: number): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const f = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(entry), { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) });
    } catch {
      // the process ended while we looked
    }
  }
  if (!stats.has(pid)) return NaN;
  let total = 0;
  const tree = new Set([pid]);
  // /proc lists parents before their children only by chance: repeat until the tree stops growing
  for (let grew = true; grew; ) {
    grew = false;
    for (const [p, st] of stats) if (!tree.has(p) && tree.has(st.ppid)) (tree.add(p), (grew = true));
  }
  for (const p of tree) total += stats.get(p)!.ticks;
  return total;
}

interface Started {
  child: ChildProcess;
  log: string;
  exited: Promise<number | null>;
}

function startController(spec: ControllerSpec, o: Options, mode: string, run: number): Started {
  const log = join(STATE_DIR, `ctl-${spec.id}-${mode}-${run}.log`);
  const fd = openSync(log, 'w');
  const argv = spec.argv('127.0.0.1', o.port);
  // taskset execs the controller, so child.pid is the controller's own pid
  const child = spawn('taskset', ['-c', spec.cpus ?? o.cpuController, ...argv], { stdio: ['ignore', fd, fd], cwd: REPO_ROOT });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(-1));
  });
  return { child, log, exited };
}

async function stopController(s: Started): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill('SIGTERM');
  const t = setTimeout(() => s.child.kill('SIGKILL'), 3_000);
  await s.exited;
  clearTimeout(t);
}

function runLoadgen(o: Options, mode: string): Promise<LoadgenResult & { error?: string }> {
  const args = [
    '-c', o.cpuLoadgen, NODE, join(DIST, 'bench/loadgen/loadgen.js'),
    '--connect', `127.0.0.1:${o.port}`, '--mode', mode, '--switches', String(o.switches), '--seconds', String(o.seconds),
    '--warmup', String(o.warmup), '--macs', String(o.macs), '--window', String(o.window), '--json', '--quiet',
  ];
  return new Promise((resolve) => {
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), (o.seconds + o.warmup + 180) * 1000);
    child.once('exit', () => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('LOADGEN_RESULT '));
      if (!line) return resolve({ error: `loadgen printed no result: ${err.trim() || out.trim()}` } as LoadgenResult & { error: string });
      resolve(JSON.parse(line.slice('LOADGEN_RESULT '.length)));
    });
  });
}

interface Row {
  controller: string;
  label: string;
  mode: string;
  run: number;
  result?: LoadgenResult;
  /** % of one core the controller used while the generator ran */
  controllerCpu?: number;
  error?: string;
}

async function measure(spec: ControllerSpec, o: Options, mode: string, run: number): Promise<Row> {
  const row: Row = { controller: spec.id, label: spec.label, mode, run };
  const s = startController(spec, o, mode, run);
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (s.child.exitCode !== null || s.child.signalCode !== null) {
        const tail = readFileSync(s.log, 'utf8').trim().split('\n').slice(-3).join(' / ');
        row.error = `exited with status ${s.child.exitCode ?? s.child.signalCode} before listening: ${tail}`;
        return row;
      }
      if (await tcpOpen(o.port)) break;
      if (Date.now() > deadline) {
        row.error = 'not listening after 30 s';
        return row;
      }
      await sleep(100);
    }
    const pid = s.child.pid!;
    const c0 = cpuTicks(pid);
    const t0 = Date.now();
    const r = await runLoadgen(o, mode);
    const cpu = ((cpuTicks(pid) - c0) / 100 / ((Date.now() - t0) / 1000)) * 100;
    if (r.error) row.error = r.error;
    else row.result = r;
    if (Number.isFinite(cpu)) row.controllerCpu = cpu;
    return row;
  } finally {
    await stopController(s);
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function table(rows: Row[], o: Options): string {
  const lines = [
    `Controller throughput: ${o.switches} fake switches, ${o.macs} MACs each, ${o.seconds} s after ${o.warmup} s warm-up, ` +
      `controller on CPU ${o.cpuController} (unless its row says otherwise), generator on CPU ${o.cpuLoadgen}${o.runs > 1 ? `, median of ${o.runs} runs (best run in parentheses)` : ''}`,
    '',
    '| controller | mode | responses/s (FLOW_MOD+PACKET_OUT) | packet-ins answered/s | per-second min–max answered/s | RTT µs p50 / p99 | controller CPU | generator CPU | lost |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const id of o.controllers) {
    for (const mode of o.modes) {
      const rs = rows.filter((r) => r.controller === id && r.mode === mode);
      const ok = rs.filter((r) => r.result);
      const label = CONTROLLERS.find((c) => c.id === id)!.label;
      if (ok.length === 0) {
        lines.push(`| ${label} | ${mode} | n/a | n/a | | | | | ${(rs[0]?.error ?? '').replace(/\|/g, '/').slice(0, 160)} |`);
        continue;
      }
      const pick = (f: (r: LoadgenResult) => number) => median(ok.map((r) => f(r.result!)));
      const best = (f: (r: LoadgenResult) => number) => (ok.length > 1 ? ` (best ${fmt(Math.max(...ok.map((r) => f(r.result!))))})` : '');
      const rtt = mode === 'latency' ? `${pick((r) => r.rttUs?.p50 ?? 0)} / ${pick((r) => r.rttUs?.p99 ?? 0)}` : '';
      const cpu = ok.every((r) => r.controllerCpu !== undefined) ? `${median(ok.map((r) => r.controllerCpu!)).toFixed(0)}%` : '';
      lines.push(
        `| ${label} | ${mode} | ${fmt(pick((r) => r.responsesPerSec))}${best((r) => r.responsesPerSec)} | ${fmt(pick((r) => r.answeredPerSec))}${best((r) => r.answeredPerSec)} | ` +
          `${fmt(pick((r) => Math.min(...r.samples)))}–${fmt(pick((r) => Math.max(...r.samples)))} | ${rtt} | ${cpu} | ${pick((r) => r.generatorCpu).toFixed(0)}% | ${ok.reduce((a, r) => a + r.result!.lost, 0)} |`,
      );
    }
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  mkdirSync(STATE_DIR, { recursive: true });
  const before = loadavg();
  console.log(`controller throughput: ${o.controllers.join(', ')} x ${o.modes.join(', ')}; load average ${before.map((x) => x.toFixed(2)).join(' ')}; logs in ${STATE_DIR}`);
  const rows: Row[] = [];
  for (let run = 1; run <= o.runs; run++) {
    for (const id of o.controllers) {
      const spec = CONTROLLERS.find((c) => c.id === id)!;
      for (const mode of o.modes) {
        const row = await measure(spec, o, mode, run);
        rows.push(row);
        const r = row.result;
        console.log(
          `  ${id.padEnd(14)} ${mode.padEnd(10)} ` +
            (r
              ? `responses/s ${fmt(r.responsesPerSec).padStart(10)}  answered/s ${fmt(r.answeredPerSec).padStart(10)}` +
                (r.rttUs ? `  rtt p50 ${r.rttUs.p50} µs p99 ${r.rttUs.p99} µs` : '') +
                `  cpu: controller ${row.controllerCpu?.toFixed(0) ?? '?'}% generator ${r.generatorCpu.toFixed(0)}%  lost ${r.lost}`
              : `n/a: ${row.error}`),
        );
      }
    }
  }
  const md = table(rows, o) + `\n\nload average at start: ${before.map((x) => x.toFixed(2)).join(' ')}`;
  console.log('\n' + md);
  if (o.summary) writeFileSync(o.summary, md + '\n');
  if (o.json) writeFileSync(o.json, JSON.stringify({ options: o, rows }, null, 2));
  return 0;
}

if (require.main === module) {
  main().then(
    (s) => process.exit(s),
    (e: unknown) => {
      console.error(`controller throughput: ${(e as Error).message}`);
      process.exit(1);
    },
  );
}
