/**
 * API write → flows on real Open vSwitch (issue 10), in the 3-zone HA Mininet scenario
 * (test/helpers/ha.ts: 6 hypervisors, one etcd member and one `zonemesh run` per zone, every bridge
 * mastered by its own zone's controller) with `zonemesh api` as a process of its own on all three
 * etcd members. N ports are added one at a time with POST /v1/ports, each on the next hypervisor
 * (its VM interface, a veth, plugged into br-int before any add, so placement knows it), with
 * IDLE_MS of quiet between adds. Per add we time the API call and, for every bridge (all six hold
 * VMs of the VPC, so all six change), the time until the bridge itself reports the first flow with
 * the port's address in its table: one `ovs-ofctl monitor BRIDGE watch:` per bridge, on its passive
 * management socket (the controllers use sockets of their own), started before the adds, prints each
 * flow change as OVS makes it (Nicira flow monitor). The controllers send each switch's batch as an
 * OpenFlow bundle, committed at once, and the barrier reply follows that commit on the master's
 * connection; nothing is polled, so the measurement adds no load to the controllers.
 *
 *   npx tsc -p . && npm run bench:api-ha     # -- --adds 200 --prefix zmha
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { HA_MODEL, type HaCluster, percentile, startHaCluster, waitHaReady } from '../test/helpers/ha';
import { type OverlayScenario, ZONEMESH_MAIN, overlayDown, overlayUp, waitFor } from '../test/helpers/overlay';
import { TEST_STATE_DIR, freePort } from '../test/helpers/run';

const { values } = parseArgs({ options: { adds: { type: 'string', default: '200' }, prefix: { type: 'string', default: 'zmha' } } });
const ADDS = Number(values.adds);
const PREFIX = values.prefix;
const STATE = join(TEST_STATE_DIR, 'ha-bench');
const TOKEN = 'ha-bench-token-0123456789';
const FLOWS_TIMEOUT_MS = 5_000;
/** quiet between adds: the scenario loaded (its flows, six sessions per controller) but idle */
const IDLE_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
const summary = (xs: readonly number[]) => (xs.length ? `${percentile(xs, 50).toFixed(1)} / ${percentile(xs, 99).toFixed(1)} / ${Math.max(...xs).toFixed(1)} ms` : '-');

/** add i: web or db tier, on hypervisor i mod 6, with an address and MAC no other port has */
function portOf(i: number, hvs: readonly string[]) {
  const db = i % 2 === 1;
  const host = 20 + Math.floor(i / 2);
  return {
    name: `zb${i}`,
    vpc: 'app',
    subnet: db ? 'db' : 'web',
    mac: `02:41:0${db ? 2 : 1}:ee:${(host >> 8).toString(16).padStart(2, '0')}:${(host & 0xff).toString(16).padStart(2, '0')}`,
    ip: `10.41.${db ? 2 : 1}.${host}`,
    hypervisor: hvs[i % hvs.length]!,
  };
}

let scenario: OverlayScenario | undefined;
let cluster: HaCluster | undefined;
let stopApi: (() => void) | undefined;
const monitors: ChildProcess[] = [];

async function teardown(): Promise<void> {
  for (const m of monitors) m.kill('SIGTERM');
  stopApi?.();
  await cluster?.stop();
  await (scenario?.down() ?? overlayDown(STATE, PREFIX));
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void teardown().finally(() => process.exit(130)));

async function main(): Promise<void> {
  if (ADDS > 400) throw new Error('at most 400 adds: each tier has 200 free addresses');
  console.log(`# API write → flows, HA scenario (node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}), load average ${load()} before the scenario`);
  scenario = await overlayUp(HA_MODEL, { prefix: PREFIX, stateDir: STATE });
  cluster = await startHaCluster(scenario, HA_MODEL);
  await waitHaReady(scenario);
  const st = scenario.state();
  const hvs = Object.keys(st.hypervisors).sort();
  const ports = Array.from({ length: ADDS }, (_, i) => portOf(i, hvs));

  // every VM interface plugged first: port-status is not what is timed
  await Promise.all(
    hvs.map(async (hv) => {
      const names = ports.filter((p) => p.hypervisor === hv).map((p) => p.name);
      const r = await scenario!.exec(hv, ['sh', '-c', `for n in ${names.join(' ')}; do ip link add $n type veth peer name $n-vm && ip link set $n up && ovs-vsctl --timeout=10 add-port br-int $n || exit 1; done`], 120_000);
      if (r.code !== 0) throw new Error(`plugging VM interfaces into ${hv}: ${r.stderr}`);
    }),
  );

  const tokenFile = join(STATE, 'api-token');
  writeFileSync(tokenFile, `${TOKEN}\n`);
  const listen = `127.0.0.1:${await freePort()}`;
  const api = spawn(process.execPath, [ZONEMESH_MAIN, 'api', '--store', cluster.etcd.url, '--listen', listen, '--token-file', tokenFile], { stdio: 'ignore' });
  stopApi = () => api.kill('SIGTERM');
  const url = `http://${listen}`;
  await waitFor('the API answering', () => fetch(`${url}/v1/zones`).then((r) => r.status, () => 0), (s) => s === 200, { timeoutMs: 15_000, intervalMs: 200 });

  /** per bridge: who waits for a flow change line that matches */
  const waiters = new Map(hvs.map((hv) => [hv, new Set<{ re: RegExp; resolve: (at: bigint) => void }>()]));
  for (const hv of hvs) {
    const m = spawn('stdbuf', ['-oL', '-eL', 'ovs-ofctl', '-O', 'OpenFlow13', 'monitor', `unix:${st.hypervisors[hv]!.mgmt}`, 'watch:'], { stdio: ['ignore', 'pipe', 'pipe'] });
    monitors.push(m);
    // this ovs-ofctl prints the monitor's messages on stderr
    for (const out of [m.stdout!, m.stderr!]) {
      createInterface({ input: out }).on('line', (line) => {
        const at = process.hrtime.bigint();
        for (const w of waiters.get(hv)!) {
          if (!/event=(ADDED|MODIFIED)/.test(line) || !w.re.test(line)) continue;
          waiters.get(hv)!.delete(w);
          w.resolve(at);
        }
      });
    }
  }
  /** ms from t0 until hv reports a flow with `ip` added or changed; undefined after FLOWS_TIMEOUT_MS */
  const flowWith = (hv: string, ip: string, t0: bigint) =>
    new Promise<number | undefined>((resolve) => {
      const w = { re: new RegExp(`[=,]${ip.replace(/\./g, '\\.')}(?![0-9])`), resolve: (at: bigint) => resolve(Number(at - t0) / 1e6) };
      waiters.get(hv)!.add(w);
      setTimeout(() => waiters.get(hv)!.delete(w) && resolve(undefined), FLOWS_TIMEOUT_MS);
    });
  await sleep(1_000); // the monitors connected

  console.log(`scenario up: ${hvs.length} hypervisors, every bridge mastered by its own zone's controller; ${ADDS} adds; load average ${load()}`);
  const callMs: number[] = [];
  const ownMs: number[] = [];
  const allMs: number[] = [];
  let late = 0;
  const loadAtStart = load();
  for (const port of ports) {
    await sleep(IDLE_MS);
    const t0 = process.hrtime.bigint();
    const seen = Promise.all(hvs.map((hv) => flowWith(hv, port.ip, t0)));
    const res = await fetch(`${url}/v1/ports`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(port) });
    callMs.push(ms(t0));
    if (res.status !== 201) throw new Error(`POST ${port.name}: ${res.status} ${await res.text()}`);
    const times = await seen;
    if (times.some((t) => t === undefined)) {
      late++;
      continue;
    }
    ownMs.push(times[hvs.indexOf(port.hypervisor)]!);
    allMs.push(Math.max(...(times as number[])));
  }
  console.log(`load average ${loadAtStart} at the first add, ${load()} after the last`);
  console.log('| measure (p50 / p99 / max) | |');
  console.log('|---|---:|');
  console.log(`| API call (201) | ${summary(callMs)} |`);
  console.log(`| call → the port's own bridge has its flows | ${summary(ownMs)} |`);
  console.log(`| call → all ${hvs.length} bridges have its flows | ${summary(allMs)} |`);
  console.log(`adds whose flows some bridge did not report within ${FLOWS_TIMEOUT_MS} ms: ${late}`);
}

main()
  .catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => void teardown());
