/**
 * Compile benchmark for the overlay apps: full compile of every switch's desired flows for large
 * generated models, then the latency of single-port adds (compile + per-owner diff into FLOW_MODs).
 *
 *   npx tsc -p . && npm run bench:compile   # -- --sizes 100,1000,3000 --adds 200
 *
 * Model per size H (a multiple of 4): bench/overlay-model.ts (10 ports per hypervisor). Port adds go to
 * VPCs in turn, each on one of the VPC's hypervisors; after 20 unmeasured warm-up adds, each add is
 * timed from the new model to the FLOW_MODs: overlay view, the four engines, the runtime's
 * DesiredState, and diffFlows per changed (owner, switch) as the reconciler does it. At the sizes
 * in --reread the adds run again with every object of the model new, as a re-read file gives it,
 * interned by the store (timed apart), then ten reloads of the model file itself (read, parse,
 * validate, intern).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, type PerformanceEntry, constants as perf } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { ACL_APP_ID, ACL_TABLES, aclGroups } from '../src/apps/acl';
import { ARP_RESPONDER_APP_ID, ARP_RESPONDER_TABLES, arpResponderGroups } from '../src/apps/arp-responder';
import { DISTRIBUTED_ROUTER_APP_ID, DISTRIBUTED_ROUTER_TABLES, distributedRouterGroups } from '../src/apps/distributed-router';
import { type OverlayView, buildOverlayView } from '../src/apps/overlay';
import type { PortNumbers as Placement } from '../src/sdk';
import { TUNNEL_MESH_APP_ID, TUNNEL_MESH_TABLES, tunnelMeshGroups } from '../src/apps/tunnel-mesh';
import { DesiredState } from '../src/runtime/desired-state';
import { diffFlows } from '../src/sdk/diff';
import { stringify } from 'yaml';
import { type NetworkModel, assembleModel, loadModelFile, matchModel, modelKeys, parseModelInWorker, validateModel } from '../src/model';
import { makeCookie } from '../src/sdk/cookie';
import { type FlowsChange, IncrementalCompiler, type OwnerGroup } from '../src/sdk/incremental';
import { Pipeline } from '../src/sdk/pipeline';
import { HVS_PER_VPC, PORTS_PER_HV, generate, plug, port, toDocument } from './overlay-model';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

const APPS: { name: string; appId: number; groups: (p: Pipeline, v: OverlayView) => OwnerGroup[] }[] = [
  { name: 'tunnel-mesh', appId: TUNNEL_MESH_APP_ID, groups: tunnelMeshGroups },
  { name: 'arp-responder', appId: ARP_RESPONDER_APP_ID, groups: arpResponderGroups },
  { name: 'distributed-router', appId: DISTRIBUTED_ROUTER_APP_ID, groups: distributedRouterGroups },
  { name: 'acl', appId: ACL_APP_ID, groups: aclGroups },
];
const PIPELINE = new Pipeline([...TUNNEL_MESH_TABLES, ...ARP_RESPONDER_TABLES, ...DISTRIBUTED_ROUTER_TABLES, ...ACL_TABLES]);
const OWNED = new Set(APPS.map((a) => a.appId));
/** adds run first and not measured, so the JIT has compiled the add path */
const WARMUP = 20;

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const cpuMs = (since: NodeJS.CpuUsage) => {
  const cpu = process.cpuUsage(since);
  return (cpu.user + cpu.system) / 1000;
};
const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MB`;
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

interface Runtime {
  view: OverlayView;
  engines: IncrementalCompiler[];
  desired: DesiredState;
}

/** what a running controller does with a model: view, per-app engines, desired state per owner */
function apply(rt: Runtime, model: NetworkModel, placement: Placement): void {
  rt.view = buildOverlayView(model, placement, rt.view);
  APPS.forEach(({ appId, groups }, i) => {
    for (const c of rt.engines[i]!.update(groups(PIPELINE, rt.view))) for (const dpid of c.dpids) rt.desired.set(dpid, makeCookie(appId, c.owner), c.flows);
  });
}

interface Compiled {
  view: OverlayView;
  engines: IncrementalCompiler[];
  changes: { appId: number; changes: FlowsChange[] }[];
  ms: number;
  line: string;
}

/** what an app start does: every app's engine from empty to the whole model */
function compileOnce(model: NetworkModel, placement: Placement): Compiled {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const view = buildOverlayView(model, placement);
  const parts = [`view ${ms(t0).toFixed(0)} ms`];
  const engines = APPS.map(() => new IncrementalCompiler());
  const changes = APPS.map(({ name, appId, groups }, i) => {
    const t = process.hrtime.bigint();
    const c = engines[i]!.update(groups(PIPELINE, view));
    parts.push(`${name} ${ms(t).toFixed(0)} ms`);
    return { appId, changes: c };
  });
  const total = ms(t0);
  const cpu = process.cpuUsage(cpu0);
  // CPU time counts this process's GC helper threads too; wall time above it means waiting for a CPU
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return { view, engines, changes, ms: total, line: `${total.toFixed(0)} ms (CPU ${cpuMs.toFixed(0)} ms) = ${parts.join(' + ')}` };
}

/** Node's GC entries, each queued on the event loop after its collection */
const gcEntries: PerformanceEntry[] = [];
const gcObserver = new PerformanceObserver((list) => gcEntries.push(...list.getEntries()));
gcObserver.observe({ entryTypes: ['gc'] });
/** every collection so far in gcEntries: the queued entries, without waiting for the observer's callback */
async function gcEntriesSoFar(): Promise<number> {
  await new Promise(setImmediate);
  gcEntries.push(...gcObserver.takeRecords());
  return gcEntries.length;
}

/** The collections since entry `from`: young-generation scavenges, and mark-compacts (each with its incremental marking) */
function gcSummary(from: number): string {
  const kinds = [
    { name: 'scavenges', kind: perf.NODE_PERFORMANCE_GC_MINOR },
    { name: 'mark-compacts', kind: perf.NODE_PERFORMANCE_GC_MAJOR },
    { name: 'incremental marking pauses', kind: perf.NODE_PERFORMANCE_GC_INCREMENTAL },
  ];
  const entries = gcEntries.slice(from);
  return kinds
    .map(({ name, kind }) => {
      const of = entries.filter((e) => (e as PerformanceEntry & { detail: { kind: number } }).detail.kind === kind);
      return `${of.length} ${name} ${of.reduce((n, e) => n + e.duration, 0).toFixed(0)} ms`;
    })
    .join(', ');
}

async function fullCompile(hvCount: number, rounds: number): Promise<{ rt: Runtime; model: NetworkModel; placement: Map<bigint, Map<string, number>> }> {
  const { model, placement } = generate(hvCount);
  let t0 = process.hrtime.bigint();
  validateModel(toDocument(model), `generated-${hvCount}`);
  const validateMs = ms(t0);

  const times: number[] = [];
  let last: Compiled | undefined;
  let before = process.memoryUsage();
  let gcLine = '';
  for (let r = 0; r < rounds; r++) {
    last = undefined; // the previous round's state goes before memory is measured
    gc();
    before = process.memoryUsage();
    const gcFrom = await gcEntriesSoFar();
    last = compileOnce(model, placement);
    times.push(last.ms);
    await gcEntriesSoFar();
    gcLine = gcSummary(gcFrom);
  }
  gc();
  const after = process.memoryUsage();
  const { view, engines, changes: compiled, line } = last!;
  times.sort((a, b) => a - b);
  let changes = 0;
  let sets = 0;
  let flows = 0;
  for (const { changes: cs } of compiled) {
    changes += cs.length;
    for (const c of cs) {
      sets += c.dpids.length;
      flows += c.flows.length * c.dpids.length;
    }
  }

  t0 = process.hrtime.bigint();
  const desired = new DesiredState();
  for (const { appId, changes: cs } of compiled) for (const c of cs) for (const dpid of c.dpids) desired.set(dpid, makeCookie(appId, c.owner), c.flows);
  const desiredMs = ms(t0);

  const ports = model.ports.length;
  console.log(`\n## ${hvCount} hypervisors, ${ports} ports, ${model.vpcs.length} VPCs`);
  console.log(`model validation (not part of compile): ${validateMs.toFixed(0)} ms`);
  console.log(`full compile, best of ${rounds}: ${times[0]!.toFixed(0)} ms (median ${pct(times, 50).toFixed(0)} ms); last round ${line}`);
  console.log(`  garbage collection in the last round (pauses on the compiling thread): ${gcLine}`);
  console.log(`  ${flows.toLocaleString('en')} flows on ${hvCount} switches (${(flows / hvCount).toFixed(0)} per switch), ${sets.toLocaleString('en')} (owner, switch) sets in ${changes.toLocaleString('en')} changes`);
  console.log(`  into the runtime's DesiredState: ${desiredMs.toFixed(0)} ms`);
  console.log(`  memory held by the compiled state: heapUsed +${mb(after.heapUsed - before.heapUsed)}, rss ${mb(after.rss)}, peak rss so far ${mb(process.resourceUsage().maxRSS * 1024)}`);
  return { rt: { view, engines, desired }, model, placement };
}

async function portAdds(hvCount: number, adds: number, rounds: number, reread: boolean): Promise<void> {
  const { rt, model: first, placement: firstPlacement } = await fullCompile(hvCount, rounds);
  let model = first;
  let placement: Map<bigint, Map<string, number>> = firstPlacement;
  let mods = 0;
  rt.desired.changes$.subscribe((c) => {
    if (c.kind !== 'flows') return;
    const d = diffFlows(c.after, c.before, OWNED);
    mods += d.deletes.length + d.modifies.length + d.adds.length;
  });
  if (adds === 0) return undefined;
  const times: number[] = [];
  const cpuTimes: number[] = [];
  const matchTimes: number[] = [];
  const assembleTimes: number[] = [];
  /** a re-read edit on this thread, wall: the match copied over, the version assembled, then applied */
  const editTimes: number[] = [];
  const perAdd: number[] = [];
  /** what the store holds: the last version it handed on */
  let stored = model;
  const addedTo = new Map<string, number>();
  for (let i = 0; i < WARMUP + adds; i++) {
    const vpc = model.vpcs[(i * 7) % model.vpcs.length]!;
    const hv = model.hypervisors[((vpc.vni - 1) * 4 + (i % HVS_PER_VPC)) % hvCount]!;
    const k = addedTo.get(vpc.name) ?? 0;
    addedTo.set(vpc.name, k + 1);
    const added = port(vpc.name, vpc.vni, HVS_PER_VPC * (PORTS_PER_HV / 2) + k, hv, `${vpc.name}-new${k}`);
    const next = { ...model, ports: [...model.ports, added] };
    const nextPlacement = new Map(placement);
    nextPlacement.set(hv.datapathId, new Map(placement.get(hv.datapathId)));
    plug(nextPlacement, hv, added);
    // a re-read model file: every object new, equal ones included, then interned by the store
    const copy = <T extends object>(list: readonly T[]) => list.map((o) => ({ ...o }));
    let input: NetworkModel = next;
    let assembleWall = 0;
    if (reread) {
      const read = { ...next, hypervisors: copy(next.hypervisors), vpcs: copy(next.vpcs), subnets: copy(next.subnets), ports: copy(next.ports), acls: copy(next.acls) };
      let cpu0 = process.cpuUsage();
      const match = matchModel(read, modelKeys(stored));
      const matchMs = cpuMs(cpu0);
      cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      // structuredClone: what postMessage does to the match between the worker and this thread
      stored = input = assembleModel(structuredClone(match), stored);
      assembleWall = ms(t0);
      if (i >= WARMUP) {
        matchTimes.push(matchMs);
        assembleTimes.push(cpuMs(cpu0));
      }
    }
    mods = 0;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    apply(rt, input, nextPlacement);
    if (i >= WARMUP) {
      times.push(ms(t0));
      editTimes.push(assembleWall + ms(t0));
      cpuTimes.push(cpuMs(cpu0));
      perAdd.push(mods);
    }
    model = next;
    placement = nextPlacement;
  }
  times.sort((a, b) => a - b);
  cpuTimes.sort((a, b) => a - b);
  perAdd.sort((a, b) => a - b);
  const how = reread ? 'model re-read (all objects new)' : 'model edited in memory (unchanged objects shared)';
  console.log(`single-port add, ${how}, ${adds} adds: p50 ${pct(times, 50).toFixed(2)} ms, p99 ${pct(times, 99).toFixed(2)} ms, max ${times[times.length - 1]!.toFixed(2)} ms`);
  // on a shared machine wall time includes waiting for a CPU; CPU time (all threads, GC helpers too) does not
  console.log(`  CPU time per add: p50 ${pct(cpuTimes, 50).toFixed(2)} ms, p99 ${pct(cpuTimes, 99).toFixed(2)} ms`);
  console.log(`  FLOW_MODs per add: p50 ${pct(perAdd, 50)}, max ${perAdd[perAdd.length - 1]}`);
  if (!reread) return undefined;
  matchTimes.sort((a, b) => a - b);
  assembleTimes.sort((a, b) => a - b);
  editTimes.sort((a, b) => a - b);
  console.log(`  before that, in the store: content keys matched (the parse worker's part) CPU p50 ${pct(matchTimes, 50).toFixed(2)} ms, p99 ${pct(matchTimes, 99).toFixed(2)} ms;`);
  console.log(`    the match copied over and the version assembled (this thread's part) CPU p50 ${pct(assembleTimes, 50).toFixed(2)} ms, p99 ${pct(assembleTimes, 99).toFixed(2)} ms`);
  console.log(`  the edit on this thread after the worker's read (assemble + apply), wall: p50 ${pct(editTimes, 50).toFixed(2)} ms, p99 ${pct(editTimes, 99).toFixed(2)} ms`);
  return readParseIntern(model, addedTo);
}

/** samples of a whole reload of the model file: read, then parse, validate and match in the store's worker, then assemble */
const RELOADS = 10;

async function readParseIntern(model: NetworkModel, addedTo: Map<string, number>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'zm-compile-'));
  const file = join(dir, 'model.yaml');
  try {
    // no aliases: the parser refuses many (an alias bomb)
    const write = () => writeFileSync(file, stringify(toDocument(model), { aliasDuplicateObjects: false }));
    write();
    // the version the store holds, with its keys (made at startup)
    let stored = loadModelFile(file);
    modelKeys(stored);
    const steps = { parse: [] as number[], match: [] as number[], assemble: [] as number[], wholeCopy: [] as number[], worker: [] as number[] };
    for (let i = 0; i < RELOADS; i++) {
      const vpc = model.vpcs[(i * 11) % model.vpcs.length]!;
      const hv = model.hypervisors[(vpc.vni - 1) * 4]!;
      const k = (addedTo.get(vpc.name) ?? 0) + i;
      model = { ...model, ports: [...model.ports, port(vpc.name, vpc.vni, HVS_PER_VPC * (PORTS_PER_HV / 2) + k, hv, `${vpc.name}-file${k}`)] };
      write();
      // the store's path as it runs: the file read here, parse and match in a worker, assembled here
      let t0 = process.hrtime.bigint();
      const viaWorker = await parseModelInWorker(readFileSync(file), file, 1024, undefined, stored);
      steps.worker.push(ms(t0));
      // its steps one by one on this thread, for their CPU time
      let cpu0 = process.cpuUsage();
      const read = loadModelFile(file);
      steps.parse.push(cpuMs(cpu0));
      cpu0 = process.cpuUsage();
      const match = matchModel(read, modelKeys(stored));
      steps.match.push(cpuMs(cpu0));
      cpu0 = process.cpuUsage();
      const next = assembleModel(structuredClone(match), stored);
      steps.assemble.push(cpuMs(cpu0));
      // what this thread received before: the whole model from the worker
      cpu0 = process.cpuUsage();
      structuredClone(read);
      steps.wholeCopy.push(cpuMs(cpu0));
      if (next.ports[0] !== stored.ports[0] || viaWorker.ports[0] !== stored.ports[0] || next.ports.length !== read.ports.length) throw new Error('the reload was not interned');
      stored = next;
    }
    for (const l of Object.values(steps)) l.sort((a, b) => a - b);
    const p = (l: number[]) => `p50 ${pct(l, 50).toFixed(1)} / max ${l[l.length - 1]!.toFixed(1)} ms`;
    console.log(`  ${RELOADS} reloads of the model file (${model.ports.length} ports), one port added each: read + parse + match in the worker + assemble, wall ${p(steps.worker)};`);
    console.log(`    CPU of the steps (here on one thread): read + parse + validate ${p(steps.parse)}, content keys + match ${p(steps.match)}, copy of the match + assemble ${p(steps.assemble)} (a copy of the whole model, what crossed before: ${p(steps.wholeCopy)})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100,1000,3000' },
    adds: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '3' },
    /** sizes at which adds are also measured with a re-read model */
    reread: { type: 'string', default: '1000' },
  },
});
const adds = Number(values.adds);
const rounds = Number(values.rounds);
console.log(`# zonemesh compile benchmark (node ${process.version} ${process.execArgv.join(' ') || 'with V8 defaults'}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}, ${cpus().length} CPUs)`);
void (async () => {
  for (const size of values.sizes.split(',').map(Number)) {
    await portAdds(size, adds, rounds, false);
    if (values.reread.split(',').map(Number).includes(size)) await portAdds(size, adds, 1, true);
  }
})();
