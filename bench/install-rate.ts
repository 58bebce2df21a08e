/**
 * Proactive flow-install rate into one real Open vSwitch bridge (system ovs-vswitchd,
 * userspace datapath), zonemesh against its peers on the very same flows, in one run:
 *
 *   node dist/bench/install-rate.js [--flows 100000] [--runs 3] [--summary FILE] [--json FILE]
 *
 * Flow i (of N): table=40,priority=100,metadata=0x1,dl_dst=02:00:<i as 4 bytes>,
 *                actions=set_field:101->tun_id,output:13
 * (the flows of bench/of13blast.py). Methods, each on a freshly created bridge
 * zm-bench (datapath_type=netdev, OpenFlow13, fail_mode=secure, a passive ptcp controller
 * target set in the add-br transaction):
 *   ovs-ofctl --bundle  `ovs-ofctl --bundle add-flows zm-bench FILE` (one ONF bundle), wall clock
 *   raw ceiling         of13blast.py: pre-encoded FLOW_MODs written back to back over TCP, one
 *                       barrier, timed from the first write to the barrier reply
 *   zonemesh tcp        our Controller dialing the same ptcp target: FlowMod objects built and
 *                       encoded on the fly, SwitchSession.sendAll (pipelined, per-turn batched
 *                       writes, high-water-mark backpressure), one barrier(); timed from the
 *                       first send to the barrier reply (object building and encoding included)
 *   zonemesh unix       the same over the bridge's passive socket /var/run/openvswitch/zm-bench.mgmt
 * Every run checks that the bridge then holds exactly N flows (dump-aggregate) and that no
 * OFPT_ERROR came back. The bridge is deleted between runs and at the end.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Controller, silentLogger, type SwitchSession } from '../src/controller';
import { OFP_NO_BUFFER, OFPG_ANY, OFPP, encodeMessage, type FlowMod } from '../src/openflow';
import { REPO_ROOT } from '../test/helpers/paths';
import { tcpOpen } from './tcp-open';

const BRIDGE = 'zm-bench';
const OVS_RUNDIR = process.env.OVS_RUNDIR ?? '/var/run/openvswitch';
const STATE_DIR = process.env.ZONEMESH_BENCH_STATE ?? '/tmp/zonemesh-bench';
const OF13BLAST = join(REPO_ROOT, 'bench', 'of13blast.py');

type Method = 'ofctl-bundle' | 'raw' | 'zonemesh-tcp' | 'zonemesh-unix';
const METHODS: readonly Method[] = ['ofctl-bundle', 'raw', 'zonemesh-tcp', 'zonemesh-unix'];
const LABEL: Record<Method, string> = {
  'ofctl-bundle': '`ovs-ofctl --bundle add-flows` (unix)',
  raw: 'raw pipelined ceiling, of13blast.py (tcp)',
  'zonemesh-tcp': 'zonemesh Controller.dial, pipelined + 1 barrier (tcp)',
  'zonemesh-unix': 'zonemesh Controller.dial, pipelined + 1 barrier (unix .mgmt)',
};

interface Options {
  flows: number;
  runs: number;
  methods: Method[];
  port: number;
  summary?: string;
  json?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { flows: 100_000, runs: 3, methods: [...METHODS], port: 16690 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => argv[++i] ?? '';
    if (a === '--flows') o.flows = Number(v());
    else if (a === '--runs') o.runs = Number(v());
    else if (a === '--port') o.port = Number(v());
    else if (a === '--methods') o.methods = v().split(',') as Method[];
    else if (a === '--summary') o.summary = v();
    else if (a === '--json') o.json = v();
    else throw new Error(`unknown option ${a}`);
  }
  if (!(o.flows > 0 && o.flows <= 0xffffffff && o.runs > 0)) throw new Error('--flows and --runs must be > 0');
  for (const m of o.methods) if (!METHODS.includes(m)) throw new Error(`unknown method ${m}; one of ${METHODS.join(',')}`);
  return o;
}

function sh(cmd: string, args: string[], timeoutMs = 120_000): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  return { stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? String(r.error) : ''), status: r.status };
}

function must(cmd: string, args: string[], timeoutMs?: number): string {
  const r = sh(cmd, args, timeoutMs);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

function macOf(i: number): string {
  const h = (i >>> 0).toString(16).padStart(8, '0');
  return `02:00:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}:${h.slice(6, 8)}`;
}

function flowText(i: number): string {
  return `table=40,priority=100,metadata=0x1,dl_dst=${macOf(i)},actions=set_field:101->tun_id,output:13`;
}

function flowMod(i: number): FlowMod {
  return {
    type: 'FLOW_MOD', xid: 0, cookie: 0n, cookieMask: 0n, tableId: 40, command: 'add', idleTimeout: 0, hardTimeout: 0,
    priority: 100, bufferId: OFP_NO_BUFFER, outPort: OFPP.ANY, outGroup: OFPG_ANY, flags: 0,
    match: [
      { field: 'eth_dst', value: macOf(i) },
      { field: 'metadata', value: 1n },
    ],
    instructions: [
      {
        type: 'apply_actions',
        actions: [
          { type: 'set_field', field: { field: 'tunnel_id', value: 101n } },
          { type: 'output', port: 13, maxLen: 0 },
        ],
      },
    ],
  };
}

/** Our FLOW_MOD must be byte for byte the one OVS itself encodes for the same flow text (xid aside). */
function checkSameBytes(): string {
  const i = 0x0a00010d;
  const out = must('ovs-ofctl', ['-O', 'OpenFlow13', '-mmmmm', 'parse-flow', flowText(i)]);
  const hex = out
    .split('\n')
    .filter((l) => /^[0-9a-f]{8}  /.test(l))
    .map((l) => l.slice(10, 58).replace(/[ -]/g, ''))
    .join('');
  const theirs = Buffer.from(hex, 'hex');
  const ours = encodeMessage({ ...flowMod(i), xid: theirs.readUInt32BE(4) });
  return ours.equals(theirs) ? 'identical' : `DIFFERENT: ours ${ours.toString('hex')} vs OVS ${theirs.toString('hex')}`;
}

async function waitFor(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}


async function freshBridge(port: number): Promise<void> {
  must('ovs-vsctl', [
    '--timeout=30', '--if-exists', 'del-br', BRIDGE,
    '--', 'add-br', BRIDGE,
    '--', 'set', 'bridge', BRIDGE, 'datapath_type=netdev', 'protocols=OpenFlow13', 'fail_mode=secure',
    'other_config:disable-in-band=true',
    '--', 'set-controller', BRIDGE, `ptcp:${port}:127.0.0.1`,
  ]);
  await waitFor('the bridge listening', async () => existsSync(join(OVS_RUNDIR, `${BRIDGE}.mgmt`)) && (await tcpOpen(port)));
}

function deleteBridge(): void {
  sh('ovs-vsctl', ['--timeout=30', '--if-exists', 'del-br', BRIDGE]);
}

function flowCount(): number {
  const out = must('ovs-ofctl', ['-O', 'OpenFlow13', 'dump-aggregate', BRIDGE]);
  return Number(/flow_count=(\d+)/.exec(out)?.[1] ?? -1);
}

interface Sample {
  method: Method;
  run: number;
  seconds: number;
  rate: number;
  installed: number;
  errors: number;
  note?: string;
}

async function zonemesh(target: string, n: number): Promise<{ seconds: number; errors: number }> {
  const controller = new Controller({ logger: silentLogger(), requestTimeoutMs: 120_000 });
  try {
    const up = new Promise<SwitchSession>((resolve) => {
      const sub = controller.switchUp$.subscribe(({ session }) => {
        sub.unsubscribe();
        resolve(session);
      });
    });
    controller.dial(target);
    const session = await Promise.race([
      up,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no switchUp from ${target} within 10 s`)), 10_000)),
    ]);
    function* flows(): Generator<FlowMod> {
      for (let i = 0; i < n; i++) yield flowMod(i);
    }
    const t0 = performance.now();
    await session.sendAll(flows());
    const result = await session.barrier({ timeoutMs: 120_000 });
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, errors: result.errors.length };
  } finally {
    await controller.close();
  }
}

async function runOne(method: Method, o: Options, flowsFile: string, run: number): Promise<Sample> {
  await freshBridge(o.port);
  try {
    let seconds: number;
    let errors = 0;
    let note: string | undefined;
    if (method === 'ofctl-bundle') {
      const t0 = performance.now();
      must('ovs-ofctl', ['-O', 'OpenFlow13', '--bundle', 'add-flows', BRIDGE, flowsFile], 300_000);
      seconds = (performance.now() - t0) / 1000;
    } else if (method === 'raw') {
      const out = must('/usr/bin/python3', [OF13BLAST, '127.0.0.1', String(o.port), String(o.flows)], 300_000);
      const m = /time=([0-9.]+)s.*errors=(\d+)/.exec(out);
      if (!m) throw new Error(`unexpected of13blast output: ${out}`);
      seconds = Number(m[1]);
      errors = Number(m[2]);
    } else {
      const target = method === 'zonemesh-tcp' ? `tcp:127.0.0.1:${o.port}` : `unix:${join(OVS_RUNDIR, `${BRIDGE}.mgmt`)}`;
      ({ seconds, errors } = await zonemesh(target, o.flows));
    }
    const installed = flowCount();
    if (installed !== o.flows) note = `expected ${o.flows} flows`;
    return { method, run, seconds, rate: o.flows / seconds, installed, errors, ...(note && { note }) };
  } finally {
    deleteBridge();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  mkdirSync(STATE_DIR, { recursive: true });
  must('ovs-vsctl', ['--timeout=5', 'show']);
  const flowsFile = join(STATE_DIR, `install-flows-${o.flows}.txt`);
  const lines: string[] = [];
  for (let i = 0; i < o.flows; i++) lines.push(flowText(i));
  writeFileSync(flowsFile, lines.join('\n') + '\n');
  const same = checkSameBytes();
  console.log(`install-rate: ${o.flows} flows x ${o.runs} runs, methods interleaved per run; our FLOW_MOD vs OVS's encoding: ${same}`);
  // what our side alone costs: building the FlowMod objects and encoding them, no I/O
  const e0 = performance.now();
  let bytes = 0;
  for (let i = 0; i < o.flows; i++) bytes += encodeMessage(flowMod(i)).length;
  const encodeSeconds = (performance.now() - e0) / 1000;
  console.log(`  building + encoding ${o.flows} FlowMods alone (one core, no I/O): ${encodeSeconds.toFixed(3)} s, ${bytes} bytes`);
  const loadBefore = require('node:os').loadavg() as number[];
  const samples: Sample[] = [];
  try {
    for (let run = 1; run <= o.runs; run++) {
      for (const method of o.methods) {
        let s: Sample;
        try {
          s = await runOne(method, o, flowsFile, run);
        } catch (e) {
          // one failed run (a busy shared machine, a dist/ rebuilt under us) must not lose the others
          s = { method, run, seconds: NaN, rate: NaN, installed: -1, errors: -1, note: (e as Error).message };
        }
        samples.push(s);
        console.log(
          `  run ${run} ${method.padEnd(14)} ${s.seconds.toFixed(3)} s  ${fmt(s.rate).padStart(9)} flows/s  installed=${s.installed} errors=${s.errors}${s.note ? `  (${s.note})` : ''}`,
        );
      }
    }
  } finally {
    deleteBridge();
  }
  const rawRates = samples.filter((s) => s.method === 'raw' && Number.isFinite(s.rate)).map((s) => s.rate);
  const rawMedian = rawRates.length ? median(rawRates) : NaN;
  const rows = o.methods.map((m) => {
    const all = samples.filter((s) => s.method === m);
    const ss = all.filter((s) => Number.isFinite(s.rate));
    const med = ss.length ? median(ss.map((s) => s.rate)) : NaN;
    const best = ss.length ? Math.max(...ss.map((s) => s.rate)) : NaN;
    const ok = ss.length === all.length && ss.every((s) => s.installed === o.flows && s.errors === 0);
    return { method: m, median: med, best, ok, runs: `${ss.length}/${all.length}`, vsRaw: rawMedian ? med / rawMedian : NaN, seconds: ss.length ? median(ss.map((s) => s.seconds)) : NaN };
  });
  const md = [
    `Proactive install rate: ${fmt(o.flows)} distinct flows into one OVS 3.1 userspace bridge, ${o.runs} runs, median (best)`,
    '',
    '| method | median s | flows/s median | flows/s best | vs raw ceiling (median) | runs ok | all installed, no errors |',
    '|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${LABEL[r.method]} | ${r.seconds.toFixed(3)} | ${fmt(r.median)} | ${fmt(r.best)} | ${Number.isFinite(r.vsRaw) ? `${(r.vsRaw * 100).toFixed(0)}%` : 'n/a'} | ${r.runs} | ${r.ok ? 'yes' : 'NO'} |`,
    ),
    '',
    `our FLOW_MOD bytes vs OVS's own encoding of the same flow: ${same}; building + encoding the ${fmt(o.flows)} FlowMods alone takes ${encodeSeconds.toFixed(3)} s; load average before: ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`,
  ].join('\n');
  console.log('\n' + md);
  if (o.summary) writeFileSync(o.summary, md + '\n');
  if (o.json) writeFileSync(o.json, JSON.stringify({ options: o, samples, rows }, null, 2));
  return rows.every((r) => r.ok) ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (status) => process.exit(status),
    (e: unknown) => {
      console.error(`install-rate: ${(e as Error).message}`);
      deleteBridge();
      process.exit(1);
    },
  );
}
