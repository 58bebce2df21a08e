/**
 * What the live page costs at size: the snapshot a viewer gets on connect (and after a model change)
 * and the update after one stats poll round of every switch, in bytes and in time to build and
 * serialize, for generated models with every switch connected and polled.
 *
 *   npx tsc -p . && npm run bench:page   # -- --sizes 100,1000
 *
 * Model per size H: bench/overlay-model.ts (10 VM ports per hypervisor); each switch also has its
 * tunnel port and its LOCAL port, so 12 ports of counters each. The sessions are stand-ins: this
 * measures the page's own work (src/runtime/topology.ts and the event's JSON), not the polls.
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { BehaviorSubject, Subject } from 'rxjs';
import type { PortStats } from '../src/openflow';
import type { SwitchSession } from '../src/controller/session';
import type { ModelStore, NetworkModel } from '../src/model';
import { TopologyView, type SwitchStats } from '../src/runtime';
import { generate } from './overlay-model';

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '100,1000' } } });
const sizes = values.sizes.split(',').map(Number);
const RUNS = 5;

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`;

const counters = (portNo: number, n: bigint): PortStats => ({
  portNo, rxPackets: n, txPackets: n, rxBytes: n * 100n, txBytes: n * 100n, rxDropped: 0n, txDropped: 0n, rxErrors: 0n, txErrors: 0n,
  rxFrameErr: 0n, rxOverErr: 0n, rxCrcErr: 0n, collisions: 0n, durationSec: 0, durationNsec: 0,
});

console.log(`node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log('| hypervisors / VMs | snapshot | build + JSON (median of 5) | update after a poll of every switch | build + JSON |');
console.log('|---|---:|---:|---:|---:|');
for (const size of sizes) {
  const { model, placement } = generate(size);
  const models = new BehaviorSubject<NetworkModel>(model);
  const modelStore: ModelStore = { model$: models, rejected$: new Subject(), current: () => model };
  const sessions = new Map<bigint, SwitchSession>();
  for (const h of model.hypervisors) {
    const ports = new Map([...(placement.get(h.datapathId) ?? new Map<string, number>())].map(([name, portNo]) => [portNo, { name }]));
    ports.set(4000, { name: 'zm-tun' });
    ports.set(0xfffffffe, { name: h.bridge });
    sessions.set(h.datapathId, { dpid: h.datapathId, ports } as unknown as SwitchSession);
  }
  const stats$ = new Subject<SwitchStats>();
  const view = new TopologyView({
    switches: { switches: sessions, switchUp$: new Subject(), switchDown$: new Subject() },
    desired: { count: () => 90, changes$: new Subject() },
    synced$: new Subject(),
    stats$,
    modelStore,
    tunnelHealth: undefined,
    pollIntervalMs: 15_000,
  });
  view.start();
  const pollAll = (n: bigint) => {
    for (const [dpid, session] of sessions) {
      stats$.next({ dpid, session, ports: [...session.ports.keys()].map((p) => counters(p, n)), flows: [], flowCount: 90, echoRttSeconds: 0.001, seconds: 0.002 });
    }
  };
  pollAll(1000n);
  view.takeChange();

  const snapshotTimes: number[] = [];
  let snapshotBytes = 0;
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    snapshotBytes = JSON.stringify(view.snapshot()).length;
    snapshotTimes.push(ms(t0));
  }
  const updateTimes: number[] = [];
  let updateBytes = 0;
  for (let i = 0; i < RUNS; i++) {
    pollAll(2000n + BigInt(i) * 1000n);
    const t0 = process.hrtime.bigint();
    updateBytes = JSON.stringify(view.takeChange()).length;
    updateTimes.push(ms(t0));
  }
  view.stop();
  const vms = model.ports.length;
  console.log(`| ${size.toLocaleString('en-US')} / ${vms.toLocaleString('en-US')} | ${kb(snapshotBytes)} | ${median(snapshotTimes).toFixed(1)} ms | ${kb(updateBytes)} | ${median(updateTimes).toFixed(1)} ms |`);
}
