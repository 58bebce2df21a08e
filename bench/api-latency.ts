/**
 * API write → flows on the switch (issue 10), in one process except etcd: a single-member etcd with
 * the generated overlay model (bench/overlay-model.ts: H hypervisors, 10 ports each) imported as
 * `zonemesh model import` does; a controller (Runtime.create with the four overlay apps and the
 * etcd store); one FakeSwitch per hypervisor, all in a worker thread (bench/api-latency-switches.ts);
 * the REST API. Then N times: a new port's interface appears on a random hypervisor of a random VPC
 * (port-status, not timed), the port is POSTed, and we time (1) the API call, (2) call → the
 * controller has the barrier reply for the batch that added flows on the port's own switch,
 * (3) call → every switch whose desired flows changed has had its batch barrier-replied (the VPC's
 * other hypervisors: L2, ARP, routes). After each add, every one of those switches must hold a flow
 * matching the port's MAC or IP; the count of those that do not is printed.
 *
 *   npx tsc -p . && npm run bench:api     # -- --hypervisors 1000 --adds 200 --seconds 150 [--api-process]
 */
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { filter } from 'rxjs';
import { type ApiServer, startApi } from '../src/api/server';
import { BUILTIN_APPS } from '../src/apps/registry';
import { silentLogger } from '../src/controller';
import { type NetworkModel, validateModel } from '../src/model';
import { connectEtcd } from '../src/model/etcd-client';
import { importModel } from '../src/model/etcd-transfer';
import { Runtime } from '../src/runtime';
import { PORT_PLACEMENT, type PortPlacement } from '../src/sdk/placement';
import { type EtcdCluster, startEtcd } from '../test/helpers/etcd';
import { REPO_ROOT } from '../test/helpers/paths';
import { TEST_STATE_DIR, freePort, spawnTracked } from '../test/helpers/run';
import { HVS_PER_VPC, PORTS_PER_HV, generate, port, toDocument } from './overlay-model';
import { Switches } from './switch-thread';
import { ipv4Of } from '../src/testing';

const { values } = parseArgs({
  options: {
    hypervisors: { type: 'string', default: '1000' },
    adds: { type: 'string', default: '200' },
    /** adds made first and not counted, so the JIT has compiled the add path */
    warmup: { type: 'string', default: '10' },
    /** the adds stop early when the whole run reaches this many seconds */
    seconds: { type: 'string', default: '150' },
    /** switches connecting at a time during the load */
    'connect-batch': { type: 'string', default: '50' },
    /** the API as `zonemesh api` in a process of its own (as deployed), not in the controller's */
    'api-process': { type: 'boolean', default: false },
  },
});
const H = Number(values.hypervisors);
const ADDS = Number(values.adds);
const WARMUP = Number(values.warmup);
const BUDGET_MS = Number(values.seconds) * 1000;
const CONNECT_BATCH = Number(values['connect-batch']);
const ADD_TIMEOUT_MS = 5_000;
const TOKEN = 'bench-token-0123456789';
const started = Date.now();

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const pct = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const summary = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? `${pct(s, 50).toFixed(1)} | ${pct(s, 99).toFixed(1)} | ${s[s.length - 1]!.toFixed(1)}` : '- | - | -';
};

interface Stack {
  cluster?: EtcdCluster;
  client?: ReturnType<typeof connectEtcd>;
  runtime?: Runtime;
  api?: Pick<ApiServer, 'url' | 'close'>;
  switches?: Switches;
}
const stack: Stack = {};

async function cleanup(): Promise<void> {
  await stack.switches?.close();
  await stack.api?.close().catch(() => undefined);
  await stack.runtime?.stop().catch(() => undefined);
  stack.client?.close();
  await stack.cluster?.stop();
}

// interrupted: only etcd and its data dir outlive the process; the rest goes with it
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void (stack.cluster?.stop() ?? Promise.resolve()).finally(() => process.exit(130)));
}

/** `zonemesh api` on a free port, once it says it listens. */
async function apiProcess(store: string): Promise<Pick<ApiServer, 'url' | 'close'>> {
  const tokenFile = join(TEST_STATE_DIR, 'bench-api-token');
  mkdirSync(TEST_STATE_DIR, { recursive: true });
  writeFileSync(tokenFile, TOKEN);
  const listen = `127.0.0.1:${await freePort()}`;
  const child = spawnTracked('node', [join(REPO_ROOT, 'dist/src/cli/main.js'), 'api', '--store', store, '--listen', listen, '--token-file', tokenFile]);
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`zonemesh api exited (${code})`)));
    child.stderr!.resume();
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('api listening') && resolve());
  });
  return {
    url: `http://${listen}`,
    close: async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

async function main(): Promise<void> {
  const { model: generated, placement } = generate(H);
  const model: NetworkModel = validateModel(toDocument(generated), `generated-${H}`);
  console.log(`# API write → flows (node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
  console.log(`model: ${H} hypervisors, ${model.ports.length} ports, ${model.vpcs.length} VPCs`);

  stack.cluster = await startEtcd(1);
  stack.client = connectEtcd(stack.cluster.endpoints);
  let t0 = process.hrtime.bigint();
  const imported = await importModel(stack.client, model);
  console.log(`import into etcd: ${imported.keys} keys in ${ms(t0).toFixed(0)} ms`);

  // the replica: model read from etcd, apps started, then every switch connected and fully synced
  const rssBefore = process.memoryUsage().rss;
  t0 = process.hrtime.bigint();
  const runtime = await Runtime.create({
    config: { apps: ['tunnel-mesh', 'arp-responder', 'distributed-router', 'acl'], store: stack.cluster.url, listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }], dial: [], logLevel: 'silent', settings: {} },
    ...BUILTIN_APPS,
    logger: silentLogger(),
    reconciler: { bundles: false }, // the fake switch speaks no bundles
  });
  stack.runtime = runtime;
  const createdMs = ms(t0);
  // subscribed before the apps: the time a new model arrives, before they compile it
  let modelAt = 0n;
  runtime.modelStore!.model$.subscribe(() => (modelAt = process.hrtime.bigint()));
  await runtime.start();
  const startedMs = ms(t0);
  const rssStarted = process.memoryUsage().rss;
  const ofPort = runtime.listening[0]!.port!;

  /** when each switch's last incremental batch was acknowledged */
  const ackedAt = new Map<bigint, bigint>();
  const fullySynced = new Map<bigint, () => void>();
  let syncErrors = 0;
  runtime.reconciler.synced$.subscribe((r) => {
    syncErrors += r.errors;
    if (r.kind === 'full') fullySynced.get(r.dpid)?.();
    else ackedAt.set(r.dpid, process.hrtime.bigint());
  });
  const switches = new Switches({ ofPorts: [ofPort], switches: model.hypervisors.map((hv) => ({ dpid: hv.datapathId, ports: [...(placement.get(hv.datapathId) ?? [])] })) });
  stack.switches = switches;
  for (let from = 0; from < H; from += CONNECT_BATCH) {
    const to = Math.min(H, from + CONNECT_BATCH);
    const synced = model.hypervisors.slice(from, to).map((hv) => new Promise<void>((resolve) => fullySynced.set(hv.datapathId, resolve)));
    await switches.ask({ op: 'connect', from, to });
    await Promise.all(synced);
  }
  const loadMs = ms(t0);
  const rssSynced = process.memoryUsage().rss;
  const flows = await switches.ask({ op: 'flows' });
  console.log(`controller: create ${createdMs.toFixed(0)} ms (model read from etcd), started ${startedMs.toFixed(0)} ms, all ${H} switches fully synced ${loadMs.toFixed(0)} ms after create()`);
  console.log(`  ${flows.toLocaleString('en')} flows on the switches (${(flows / H).toFixed(0)} per switch); sync errors ${syncErrors}`);
  console.log(`  RSS ${mb(rssBefore)} before create, ${mb(rssStarted)} started (the replica, no switch yet), ${mb(rssSynced)} synced (replica + sessions + the fake switches' worker thread)`);
  console.log(`  controller heap used ${mb(process.memoryUsage().heapUsed)} (the main thread's V8 heap: the replica without the fake switches)`);

  stack.api = values['api-process'] ? await apiProcess(stack.cluster.url) : await startApi({ client: stack.client, host: '127.0.0.1', port: 0, token: TOKEN, log: silentLogger() });
  console.log(`API: ${values['api-process'] ? '`zonemesh api` in a process of its own' : "startApi in the controller's process"}`);
  const placement$ = (runtime.container.get(PORT_PLACEMENT) as PortPlacement).placement$;
  const changedAt = new Map<bigint, bigint>();
  runtime.desired.changes$.subscribe((c) => changedAt.set(c.dpid, process.hrtime.bigint()));

  const apiMs: number[] = [];
  const modelMs: number[] = [];
  const ownMs: number[] = [];
  const allMs: number[] = [];
  const switchesTouched: number[] = [];
  let missing = 0; // changed switches that hold no flow with the port's MAC or IP
  let timeouts = 0;
  const addedTo = new Map<string, number>();
  let done = 0;
  for (let i = 0; done < ADDS && Date.now() - started < BUDGET_MS; i++) {
    const vpc = model.vpcs[Math.floor(Math.random() * model.vpcs.length)]!;
    const hv = model.hypervisors[((vpc.vni - 1) * 4 + Math.floor(Math.random() * HVS_PER_VPC)) % H]!;
    const k = addedTo.get(vpc.name) ?? 0;
    addedTo.set(vpc.name, k + 1);
    const p = port(vpc.name, vpc.vni, HVS_PER_VPC * (PORTS_PER_HV / 2) + k, hv, `${vpc.name}-n${k}`);

    // the VM's interface is on the bridge before the port is in the model (not timed)
    const plugged = new Promise<void>((resolve) => {
      const sub = placement$.pipe(filter((m) => m.get(hv.datapathId)?.has(p.interface) === true)).subscribe(() => {
        queueMicrotask(() => sub.unsubscribe());
        resolve();
      });
    });
    await switches.ask({ op: 'plug', dpid: hv.datapathId, name: p.interface });
    await plugged;
    await new Promise((r) => setTimeout(r, 20));

    changedAt.clear();
    const t = process.hrtime.bigint();
    let ownAt: number | undefined;
    const settled = new Promise<number | undefined>((resolve) => {
      const timer = setTimeout(() => {
        sub.unsubscribe();
        resolve(undefined);
      }, ADD_TIMEOUT_MS);
      const sub = runtime.reconciler.synced$.pipe(filter((r) => r.kind === 'incremental')).subscribe((r) => {
        if (ownAt === undefined && r.dpid === hv.datapathId && r.adds > 0) ownAt = ms(t);
        if (ownAt === undefined) return;
        if ([...changedAt].every(([dpid, at]) => (ackedAt.get(dpid) ?? 0n) >= at)) {
          clearTimeout(timer);
          queueMicrotask(() => sub.unsubscribe());
          resolve(ms(t));
        }
      });
    });
    const res = await fetch(`${stack.api.url}/v1/ports`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(p),
    });
    const callMs = ms(t);
    if (res.status !== 201) throw new Error(`POST /v1/ports ${p.name}: ${res.status} ${await res.text()}`);
    const all = await settled;
    if (i < WARMUP) continue;
    done++;
    apiMs.push(callMs);
    if (all === undefined || ownAt === undefined) {
      timeouts++;
      continue;
    }
    modelMs.push(Number(modelAt - t) / 1e6);
    ownMs.push(ownAt);
    allMs.push(all);
    switchesTouched.push(changedAt.size);
    missing += await switches.ask({ op: 'missing', dpids: [...new Set([hv.datapathId, ...changedAt.keys()])], mac: p.mac, ip: ipv4Of(p) });
  }

  console.log(`\n${done} port adds after ${WARMUP} not counted (of ${ADDS} asked${done < ADDS ? `; stopped at the ${values.seconds} s budget` : ''}), ${timeouts} without flows within ${ADD_TIMEOUT_MS / 1000} s; switches whose flows changed per add: ${summary(switchesTouched)} (p50 | p99 | max)`);
  console.log(`switches (own and changed) holding no flow with the port's MAC or IP after the add: ${missing}; sync errors ${syncErrors}`);
  console.log('\n| measure | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|');
  console.log(`| API call (POST /v1/ports → 201) | ${summary(apiMs)} |`);
  console.log(`| call → the new model on the controller's model$ (etcd watch, the change validated and applied; before the apps compile) | ${summary(modelMs)} |`);
  console.log(`| call → the port's own switch's batch (flow adds) barrier-replied | ${summary(ownMs)} |`);
  console.log(`| call → every changed switch's batch barrier-replied | ${summary(allMs)} |`);
  console.log(`\nload average ${loadavg().map((l) => l.toFixed(1)).join(' ')}; whole run ${((Date.now() - started) / 1000).toFixed(0)} s; RSS now ${mb(process.memoryUsage().rss)}`);
}

main()
  .catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
