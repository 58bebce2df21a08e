/**
 * Propagation across many switches (issue 14): H fake switches (src/testing FakeSwitch, dealt over
 * the worker threads of bench/api-latency-switches.ts) connected over TCP to a controller with the four
 * overlay apps on the generated model (bench/overlay-model.ts: H hypervisors, 10 ports each). The
 * controller runs in its own process (bench/scale-controller.ts): one, or with `--workers 2` two,
 * each compiling the whole model and serving the switches dealt to it round-robin, as
 * `zonemesh run --workers 2` does. Measured:
 *  - port add: a new port on one of its VPC's hypervisors (its interface plugged first, not timed);
 *    time from the model edit to the barrier reply of every switch whose desired flows changed;
 *  - subnet join: the same for a port on a hypervisor that had no port of the VPC (every member's
 *    flood and L2 flows change);
 *  - reconnect storm: every switch drops its connection and reconnects at once, holding its flows;
 *    time until every switch's full sync (flow dump, diff) is done, and the flow-mods it sent;
 *    then the same with 10 % of the switches missing half their flows;
 *  - with `--lb-transitions N` (issue 12), on the model with load balancers (bench/overlay-model.ts
 *    withLoadBalancers: a VIP per VPC, and VPC `wide` on `--lb-wide-hosts` hypervisors, default all)
 *    and the load-balancer app: N backends of the wide VIP and N of VPCs' VIPs marked down on
 *    BACKEND_HEALTH as lb-health would, each then up again; each transition timed until every
 *    switch whose group it changed has barrier-replied its group-mod;
 *  - each controller process's RSS with every session up;
 *  - per phase, the CPU of the generator (this process: the fake switches' threads) and of the
 *    controller processes, and how busy the busiest switch thread was: a phase whose generator
 *    thread is near 100 % measures the generator, not the controller.
 * With `--baseline DIR` (a checkout of another build, built) each configuration runs first with
 * that build's controller (DIR/dist/bench/scale-controller.js), then with this one, on the same
 * generator.
 *
 *   npx tsc -p . && npm run bench:scale    # -- --hypervisors 1000 --adds 200 --workers 1,2 --switch-threads 4 --baseline /tmp/main
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Hypervisor, LoadBalancer, Vpc } from '../src/model';
import type { ControllerHello, ControllerReply, ControllerRequest } from './scale-controller';
import { HVS_PER_VPC, PORTS_PER_HV, WIDE_VPC, generate, port, withLoadBalancers } from './overlay-model';
import { Switches } from './switch-thread';
import { ipv4Of } from '../src/testing';

const { values } = parseArgs({
  options: {
    hypervisors: { type: 'string', default: '1000' },
    adds: { type: 'string', default: '200' },
    /** adds (and joins) made first and not counted */
    warmup: { type: 'string', default: '10' },
    /** controller process counts to run, one after the other */
    workers: { type: 'string', default: '1,2' },
    /** switches connecting at a time at the start */
    'connect-batch': { type: 'string', default: '50' },
    /** worker threads the fake switches are dealt over */
    'switch-threads': { type: 'string', default: '4' },
    /** a checkout of another build (built): each configuration runs with its controller first */
    baseline: { type: 'string' },
    /** adds and joins only (for profiling them) */
    'skip-storms': { type: 'boolean', default: false },
    /** node options for the controller processes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" */
    'controller-node-args': { type: 'string', default: '' },
    /** backend transitions per kind (wide VIP, a VPC's VIP), each down then up; 0: no load balancers */
    'lb-transitions': { type: 'string', default: '0' },
    /** hypervisors of the wide VPC (default all): each holds a few flows per port of it */
    'lb-wide-hosts': { type: 'string' },
  },
});
const H = Number(values.hypervisors);
const ADDS = Number(values.adds);
const WARMUP = Number(values.warmup);
const CONNECT_BATCH = Number(values['connect-batch']);
const SWITCH_THREADS = Number(values['switch-threads']);
const CONTROLLER_NODE_ARGS = values['controller-node-args'].split(' ').filter((a) => a !== '');
/** share of the switches that lose half their flows in the second storm */
const DAMAGED_SHARE = 10;
const LB_TRANSITIONS = Number(values['lb-transitions']);
const LB_WIDE_HOSTS = values['lb-wide-hosts'] === undefined ? H : Number(values['lb-wide-hosts']);

const now = () => performance.timeOrigin + performance.now();
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const pct = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const summary = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? `${pct(s, 50).toFixed(1)} / ${pct(s, 99).toFixed(1)} / ${s[s.length - 1]!.toFixed(1)}` : '- / - / -';
};
const medianMax = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? `${pct(s, 50)} / ${s[s.length - 1]}` : '- / -';
};
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');

/** /proc's unit of CPU time (getconf CLK_TCK) */
const CLOCK_TICKS = 100;

/** CPU used over one phase, in cores (CPU seconds per second) */
interface PhaseCpu {
  seconds: number;
  /** this process: the fake switches' threads (and the bench's own main thread, mostly idle) */
  generator: number;
  /** the busiest switch thread's event-loop utilization, 0 to 1 */
  busiestThread: number;
  /** the controller processes together */
  controller: number;
}

/** one controller process, asked one request at a time */
class Controller {
  private answer: ((r: ControllerReply) => void) | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly child: ChildProcess,
    readonly hello: ControllerHello,
  ) {
    child.on('message', (m: ControllerReply) => this.answer?.(m));
  }

  static async start(script: string): Promise<Controller> {
    const child = fork(script, [String(H), ...(LB_TRANSITIONS ? [String(LB_WIDE_HOSTS)] : [])], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: CONTROLLER_NODE_ARGS });
    const hello = await new Promise<ControllerHello>((resolve, reject) => {
      child.once('message', (m: ControllerHello) => resolve(m));
      child.once('exit', (code) => reject(new Error(`controller process exited with ${code} before it was ready`)));
    });
    return new Controller(child, hello);
  }

  ask<R extends ControllerReply>(req: ControllerRequest): Promise<R> {
    const asked = this.queue.then(
      () =>
        new Promise<R>((resolve) => {
          this.answer = (r) => resolve(r as R);
          this.child.send(req);
        }),
    );
    this.queue = asked.catch(() => undefined);
    return asked;
  }

  /** CPU seconds (user + system) the process has used */
  cpuSeconds(): number {
    const fields = readFileSync(`/proc/${this.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  }

  stop(): Promise<void> {
    if (this.child.exitCode !== null) return Promise.resolve();
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.disconnect();
    return exited;
  }
}

interface Storm {
  ms: number;
  /** switches whose full sync was reported (all, unless some stalled) */
  synced: number;
  /** full syncs that failed (reported as errors; the switch waits for its next change or reconnect) */
  failed: number;
  sent: number;
  errors: number;
  /** the controllers' errors during the storm by name (handshake timeouts, …); undefined from a build that does not say */
  controllerErrors: Record<string, number> | undefined;
  /** READY sessions at the end (a switch whose handshake failed is not reconnected by the generator); undefined from a build that does not say */
  up: number | undefined;
}

/** backend transitions of one kind of load balancer: ms to the last barrier reply, and switches changed */
interface Transitions {
  down: number[];
  up: number[];
  switches: number[];
  /** transitions with a switch that did not barrier-reply within 3 s (scale-controller's ADD_TIMEOUT_MS) */
  lost: number;
}

interface Run {
  build: string;
  workers: number;
  cpu: Record<'connect' | 'adds' | 'joins' | 'lb' | 'storm' | 'damaged', PhaseCpu>;
  startMs: number;
  syncMs: number;
  /** switches whose first full sync was reported */
  connected: number;
  flows: number;
  rss: number[];
  heap: number[];
  adds: number[];
  addSwitches: number[];
  joins: number[];
  joinSwitches: number[];
  lost: number;
  missing: number;
  lb: { wide: Transitions; vpc: Transitions };
  storm: Storm;
  damaged: Storm & { cut: number; restored: boolean };
}

async function run(build: Build, workers: number): Promise<Run> {
  const generated = generate(H);
  const { placement } = generated;
  const model = LB_TRANSITIONS ? withLoadBalancers(generated.model, placement, LB_WIDE_HOSTS) : generated.model;
  const controllers: Controller[] = [];
  let switches: Switches | undefined;
  try {
    for (let k = 0; k < workers; k++) controllers.push(await Controller.start(build.controller));
    const shardOf = (i: number) => controllers[i % workers]!;
    const shardSize = (k: number) => Math.floor(H / workers) + (k < H % workers ? 1 : 0);
    switches = new Switches({
      ofPorts: controllers.map((c) => c.hello.ofPort),
      switches: model.hypervisors.map((hv) => ({ dpid: hv.datapathId, ports: [...(placement.get(hv.datapathId) ?? [])] })),
    }, SWITCH_THREADS);
    const sw = switches;
    /** starts measuring a phase's CPU; the function returned ends it */
    const measure = (): (() => PhaseCpu) => {
      const t = now();
      const generator = process.cpuUsage();
      const elu = sw.utilization();
      const controller = controllers.reduce((n, c) => n + c.cpuSeconds(), 0);
      return () => {
        const s = (now() - t) / 1000;
        const g = process.cpuUsage(generator);
        return {
          seconds: s,
          generator: (g.user + g.system) / 1e6 / s,
          busiestThread: Math.max(...sw.utilization(elu).map((u) => u.utilization)),
          controller: (controllers.reduce((n, c) => n + c.cpuSeconds(), 0) - controller) / s,
        };
      };
    };
    const cpu = {} as Run['cpu'];

    // every switch connected and fully synced (its 450 flows installed), a batch at a time
    const t0 = now();
    let phase = measure();
    let connected = 0;
    for (let from = 0; from < H; from += CONNECT_BATCH) {
      const to = Math.min(H, from + CONNECT_BATCH);
      await Promise.all(controllers.map((c) => c.ask({ op: 'mark-full' })));
      await sw.ask({ op: 'connect', from, to });
      const done = await Promise.all(
        controllers.map((c, k) =>
          c.ask<Extract<ControllerReply, { op: 'expect-full' }>>({ op: 'expect-full', count: Math.floor((to - k + workers - 1) / workers) - Math.floor((from - k + workers - 1) / workers) }),
        ),
      );
      connected += done.reduce((n, d) => n + d.count, 0);
    }
    const syncMs = now() - t0;
    cpu.connect = phase();
    console.error(`  … ${connected} of ${H} switches synced in ${(syncMs / 1000).toFixed(1)} s`);
    const flows = await sw.ask({ op: 'flows' });
    const memory = await Promise.all(controllers.map((c) => c.ask<Extract<ControllerReply, { op: 'memory' }>>({ op: 'memory' })));

    const hvIndex = new Map(model.hypervisors.map((h, i) => [h.name, i]));
    const addedTo = new Map<string, number>();
    let lost = 0;
    let missing = 0;
    const vpcHosts = (vpc: Vpc) => Array.from({ length: HVS_PER_VPC }, (_, i) => model.hypervisors[((vpc.vni - 1) * 4 + i) % H]!);
    /**
     * A new port of `vpc` on `hv`: plugged (not timed), then added to the model, timed to the last
     * barrier reply; then every hypervisor of the VPC must hold a flow for it (not timed).
     */
    const addPort = async (vpc: Vpc, hv: Hypervisor, times: number[], touched: number[]): Promise<void> => {
      const k = addedTo.get(vpc.name) ?? 0;
      addedTo.set(vpc.name, k + 1);
      const p = port(vpc.name, vpc.vni, HVS_PER_VPC * (PORTS_PER_HV / 2) + k, hv, `${vpc.name}-n${k}`);
      await sw.ask({ op: 'plug', dpid: hv.datapathId, name: p.interface });
      const placed = await shardOf(hvIndex.get(hv.name)!).ask<Extract<ControllerReply, { op: 'placed' }>>({ op: 'placed', dpid: hv.datapathId, name: p.interface });
      if (!placed.ok) {
        lost++;
        return;
      }
      const replies = await Promise.all(controllers.map((c) => c.ask<Extract<ControllerReply, { op: 'add' }>>({ op: 'add', port: p })));
      if (replies.some((r) => r.ms === undefined)) {
        lost++;
        return;
      }
      if ((times.length + lost) % 50 === 49) console.error(`  … ${times.length} timed, ${lost} lost (load average ${load()})`);
      if (times.length === 0 && warm++ < WARMUP) return;
      times.push(Math.max(...replies.map((r) => r.ms!)));
      touched.push(replies.reduce((n, r) => n + r.switches, 0));
      const hosts = new Set([...vpcHosts(vpc), hv]);
      missing += await sw.ask({ op: 'missing', dpids: [...hosts].map((h) => h.datapathId), mac: p.mac, ip: ipv4Of(p) });
    };
    let warm = 0;

    // ports go to the generated VPCs, not to the load balancers' wide one (addressed otherwise)
    const vpcs = generated.model.vpcs;
    const adds: number[] = [];
    const addSwitches: number[] = [];
    phase = measure();
    while (adds.length < ADDS) {
      const vpc = vpcs[Math.floor(Math.random() * vpcs.length)]!;
      const hosts = vpcHosts(vpc);
      await addPort(vpc, hosts[Math.floor(Math.random() * hosts.length)]!, adds, addSwitches);
      if (lost > ADDS) throw new Error(`${lost} adds lost: the controller does not keep up`);
    }
    cpu.adds = phase();
    const joins: number[] = [];
    const joinSwitches: number[] = [];
    warm = 0;
    phase = measure();
    while (joins.length < ADDS) {
      const vpc = vpcs[Math.floor(Math.random() * vpcs.length)]!;
      const hosts = new Set(vpcHosts(vpc));
      let hv: Hypervisor;
      do hv = model.hypervisors[Math.floor(Math.random() * H)]!;
      while (hosts.has(hv));
      await addPort(vpc, hv, joins, joinSwitches);
      if (lost > 2 * ADDS) throw new Error(`${lost} adds lost: the controller does not keep up`);
    }

    cpu.joins = phase();

    /** a backend down, then up, on BACKEND_HEALTH of every controller process, each timed to the last barrier reply */
    const transition = async (lb: LoadBalancer, backend: string, into: Transitions, counted: boolean): Promise<void> => {
      for (const state of ['down', 'up'] as const) {
        const replies = await Promise.all(controllers.map((c) => c.ask<Extract<ControllerReply, { op: 'health' }>>({ op: 'health', health: { vpc: lb.vpc, loadBalancer: lb.name, port: backend, state } })));
        if (!counted) continue;
        if (replies.some((r) => r.ms === undefined)) {
          into.lost++;
          continue;
        }
        into[state].push(Math.max(...replies.map((r) => r.ms!)));
        if (state === 'down') into.switches.push(replies.reduce((n, r) => n + r.switches, 0));
      }
    };
    const lbRun: Run['lb'] = { wide: { down: [], up: [], switches: [], lost: 0 }, vpc: { down: [], up: [], switches: [], lost: 0 } };
    phase = measure();
    if (LB_TRANSITIONS) {
      const wide = model.loadBalancers.find((lb) => lb.vpc === WIDE_VPC)!;
      const perVpc = model.loadBalancers.filter((lb) => lb.vpc !== WIDE_VPC);
      for (let i = 0; i < WARMUP + LB_TRANSITIONS; i++) {
        await transition(wide, wide.backends[i % wide.backends.length]!.port, lbRun.wide, i >= WARMUP);
        const lb = perVpc[Math.floor(Math.random() * perVpc.length)]!;
        await transition(lb, lb.backends[Math.floor(Math.random() * lb.backends.length)]!.port, lbRun.vpc, i >= WARMUP);
        if (i % 20 === 19) console.error(`  … ${i + 1} backend transitions of each kind (load average ${load()})`);
      }
    }
    cpu.lb = phase();
    const noStorm: Storm = { ms: 0, synced: 0, failed: 0, sent: 0, errors: 0, up: 0, controllerErrors: {} };
    const storm = async (): Promise<Storm> => {
      if (values['skip-storms']) return noStorm;
      await Promise.all(controllers.map((c) => c.ask({ op: 'mark-full' })));
      const t = now();
      await sw.ask({ op: 'reconnect' });
      const done = await Promise.all(controllers.map((c, k) => c.ask<Extract<ControllerReply, { op: 'expect-full' }>>({ op: 'expect-full', count: shardSize(k) })));
      const synced = done.reduce((n, d) => n + d.count, 0);
      return {
        ms: Math.max(...done.map((d) => d.lastAt)) - t,
        synced,
        failed: done.reduce((n, d) => n + d.failed, 0),
        sent: done.reduce((n, d) => n + d.sent, 0),
        errors: done.reduce((n, d) => n + d.errors, 0),
        up: done.every((d) => d.up !== undefined) ? done.reduce((n, d) => n + d.up!, 0) : undefined,
        controllerErrors: done.every((d) => d.controllerErrors !== undefined)
          ? done.reduce<Record<string, number>>((all, d) => {
              for (const [name, n] of Object.entries(d.controllerErrors!)) all[name] = (all[name] ?? 0) + n;
              return all;
            }, {})
          : undefined,
      };
    };
    const before = await sw.ask({ op: 'flows' });
    phase = measure();
    const whole = await storm();
    cpu.storm = phase();
    const damagedDpids = model.hypervisors.filter((_, i) => i % DAMAGED_SHARE === 0).map((h) => h.datapathId);
    const cut = values['skip-storms'] ? 0 : await sw.ask({ op: 'cut', dpids: damagedDpids });
    phase = measure();
    const repaired = await storm();
    cpu.damaged = phase();
    const after = await sw.ask({ op: 'flows' });
    return {
      build: build.name,
      workers,
      cpu,
      startMs: Math.max(...controllers.map((c) => c.hello.startMs)),
      syncMs,
      connected,
      flows,
      rss: memory.map((m) => m.rss),
      heap: memory.map((m) => m.heapUsed),
      adds,
      addSwitches,
      joins,
      joinSwitches,
      lost,
      missing,
      lb: lbRun,
      storm: whole,
      damaged: { ...repaired, cut, restored: after === before },
    };
  } finally {
    await switches?.close();
    await Promise.all(controllers.map((c) => c.stop()));
  }
}

interface Build {
  name: string;
  /** its bench/scale-controller.js */
  controller: string;
}

const errorsText = (s: Storm) => (s.controllerErrors ? JSON.stringify(s.controllerErrors) : '?');
const cores = (c: PhaseCpu) => `${c.seconds.toFixed(1)} | ${c.generator.toFixed(2)} (busiest thread ${(100 * c.busiestThread).toFixed(0)} %) | ${c.controller.toFixed(2)} | ${(c.controller * c.seconds).toFixed(1)}`;

async function main(): Promise<void> {
  console.log(`# zonemesh scale benchmark (node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load average ${load()}; fake switches over ${SWITCH_THREADS} threads)`);
  const builds: Build[] = [
    ...(values.baseline ? [{ name: `baseline (${values.baseline})`, controller: join(values.baseline, 'dist/bench/scale-controller.js') }] : []),
    { name: 'this build', controller: join(__dirname, 'scale-controller.js') },
  ];
  const runs: Run[] = [];
  for (const workers of values.workers.split(',').map(Number)) {
    for (const build of builds) {
      const loadBefore = load();
      const r = await run(build, workers);
      runs.push(r);
      console.log(`\n## ${build.name}: ${H} switches, ${H * PORTS_PER_HV} ports, ${workers} controller process${workers > 1 ? 'es' : ''} (load average before ${loadBefore}, after ${load()})`);
      console.log(`controller ready (model compiled, no switch) ${r.startMs.toFixed(0)} ms; ${r.connected} of ${H} switches connected ${CONNECT_BATCH} at a time and fully synced in ${(r.syncMs / 1000).toFixed(1)} s; ${r.flows.toLocaleString('en')} flows on the switches`);
      console.log(`RSS with every session up: ${r.rss.map(mb).join(' + ')} (V8 heap used ${r.heap.map(mb).join(' + ')})`);
      console.log(`adds lost (interface not seen, or no barrier reply, within 3 s): ${r.lost}; switches of the VPC without a flow for the new port afterwards: ${r.missing}`);
      console.log('\n| measure | p50 / p99 / max ms | switches changed p50 / max |\n|---|---:|---:|');
      console.log(`| port add → every changed switch barrier-replied (${r.adds.length}) | ${summary(r.adds)} | ${medianMax(r.addSwitches)} |`);
      console.log(`| hypervisor joins a VPC → every changed switch barrier-replied (${r.joins.length}) | ${summary(r.joins)} | ${medianMax(r.joinSwitches)} |`);
      if (LB_TRANSITIONS) {
        for (const [what, x] of [[`the wide VIP (VPC on ${LB_WIDE_HOSTS} hypervisors)`, r.lb.wide], ["a VPC's VIP", r.lb.vpc]] as const) {
          console.log(`| backend of ${what} down → every changed switch barrier-replied its group-mod (${x.down.length}) | ${summary(x.down)} | ${medianMax(x.switches)} |`);
          console.log(`| … and up again (${x.up.length}) | ${summary(x.up)} | |`);
        }
        console.log(`\nbackend transitions with a switch that did not barrier-reply within 3 s: wide ${r.lb.wide.lost}, VPC ${r.lb.vpc.lost}`);
      }
      console.log(`\nreconnect storm, all ${H} holding their flows: ${r.storm.synced} in sync after ${(r.storm.ms / 1000).toFixed(2)} s (${r.storm.failed} full syncs failed), ${r.storm.sent} flow-mods sent, ${r.storm.errors} errors; sessions up ${r.storm.up ?? '?'}; controller errors ${errorsText(r.storm)}`);
      console.log(
        `reconnect storm, ${H / DAMAGED_SHARE} of them missing half their flows (${r.damaged.cut.toLocaleString('en')} flows): ${r.damaged.synced} in sync after ${(r.damaged.ms / 1000).toFixed(2)} s (${r.damaged.failed} full syncs failed), ${r.damaged.sent.toLocaleString('en')} flow-mods sent, ${r.damaged.errors} errors; sessions up ${r.damaged.up ?? '?'}; controller errors ${errorsText(r.damaged)}; every flow back: ${r.damaged.restored}`,
      );
      console.log('\n| phase | wall s | generator CPU, cores | controller CPU, cores | controller CPU s |\n|---|---:|---:|---:|---:|');
      for (const [name, c] of Object.entries(r.cpu)) console.log(`| ${name} | ${cores(c)} |`);
    }
  }
  if (runs.length > 1) {
    const p = (xs: number[], q: number) => (xs.length ? pct([...xs].sort((a, b) => a - b), q).toFixed(1) : '-');
    console.log('\n## side by side\n\n| build | controller processes | add p50 / p99 ms | join p50 / p99 ms | storm s (synced, failed) | its controller CPU s | storm, 10 % damaged s (synced, failed) | its controller CPU s | RSS total |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    const storm = (x: Storm) => `${(x.ms / 1000).toFixed(2)} (${x.synced}, ${x.failed})`;
    for (const r of runs) {
      console.log(`| ${r.build} | ${r.workers} | ${p(r.adds, 50)} / ${p(r.adds, 99)} | ${p(r.joins, 50)} / ${p(r.joins, 99)} | ${storm(r.storm)} | ${(r.cpu.storm.controller * r.cpu.storm.seconds).toFixed(1)} | ${storm(r.damaged)} | ${(r.cpu.damaged.controller * r.cpu.damaged.seconds).toFixed(1)} | ${mb(r.rss.reduce((a, b) => a + b, 0))} |`);
    }
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
