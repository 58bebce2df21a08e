/**
 * `zonemesh run --http`: the live page's state (/topology) and event stream (/events) against fake
 * switches running the overlay apps on models/two-zones.yaml, the optional tunnel monitor, and the
 * bounds a browser meets (viewers, unread bytes, methods, paths). The page in a real browser on real
 * OVS: test/integration/live-page.test.ts.
 */
import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { BehaviorSubject, NEVER, Subject } from 'rxjs';
import { bindAppServices, APP_REGISTRY } from '../../src/apps/registry';
import { silentLogger } from '../../src/controller';
import type { ModelStore, NetworkModel } from '../../src/model';
import { PAGE_DIR, PageServerError, Runtime, validateRunConfig, type PageServerOptions, type RunConfig, type TopologySnapshot, type TopologyUpdate } from '../../src/runtime';
import { TUNNEL_HEALTH, flowMod, makeCookie, type Container, type TunnelHealthSource, type TunnelPairHealth } from '../../src/sdk';
import { FakeSwitch, fakePort } from '../../src/testing';
import { runConfig } from '../../src/cli/run';
import { edit, twoZones } from '../apps/helpers';
import { configProblems } from '../helpers/config';
import { OVERLAY_APPS } from '../helpers/overlay';
import { EventStream } from '../helpers/sse';
import { nextWhere, until } from '../controller/util';

const HV1 = 0x11n;

/** A tunnel monitor's health, pushed by the test. */
class FakeTunnelHealth implements TunnelHealthSource {
  readonly active = true;
  readonly pairs = new Map<string, TunnelPairHealth>();
  private readonly subject = new Subject<TunnelPairHealth>();
  readonly health$ = this.subject.asObservable();
  push(h: TunnelPairHealth): void {
    this.pairs.set(`${h.from}>${h.to}`, h);
    this.subject.next(h);
  }
  snapshot(): TunnelPairHealth[] {
    return [...this.pairs.values()];
  }
}

interface Started {
  runtime: Runtime;
  models: BehaviorSubject<NetworkModel>;
  port: number;
  url: string;
}

/** The overlay apps on `model` with the page on an ephemeral port; stopped when the test ends. */
async function startPage(t: ExecutionContext, options: { model?: NetworkModel; apps?: string[]; page?: PageServerOptions; tunnelHealth?: TunnelHealthSource | 'fails' } = {}): Promise<Started> {
  const models = new BehaviorSubject(options.model ?? twoZones());
  const store: ModelStore = { model$: models, rejected$: NEVER, current: () => models.value };
  const config: RunConfig = {
    apps: options.apps ?? [...OVERLAY_APPS],
    listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }],
    dial: [],
    logLevel: 'silent',
    settings: {},
    // the timer's polls (first one anywhere in the hour) stay out of the test's way
    http: { listen: '127.0.0.1:0', pollIntervalMs: 3_600_000 },
  };
  const bindServices = (c: Container) => {
    bindAppServices(c);
    if (options.tunnelHealth) c.unbind(TUNNEL_HEALTH); // the built-in board, replaced by the test's
    // 'fails': bound, but resolving it throws, as a monitor app's binding does when that app is not enabled
    if (options.tunnelHealth === 'fails') {
      c.bind(TUNNEL_HEALTH).toDynamicValue(() => {
        throw new Error("app 'tunnel-monitor' is not enabled");
      });
    } else if (options.tunnelHealth) c.bind(TUNNEL_HEALTH).toConstantValue(options.tunnelHealth);
  };
  const runtime = new Runtime({ config, registry: APP_REGISTRY, bindServices, modelStore: store, logger: silentLogger(), reconciler: { bundles: false }, page: { flushIntervalMs: 20, ...options.page } });
  t.teardown(() => runtime.stop());
  await runtime.start();
  return { runtime, models, port: runtime.listening[0]!.port!, url: `http://127.0.0.1:${runtime.page!.port}` };
}

async function connectHv1(t: ExecutionContext, { runtime, port }: Started): Promise<FakeSwitch> {
  const sw = new FakeSwitch({ dpid: HV1, ports: [fakePort(1, 'web1'), fakePort(2, 'red1'), fakePort(4000, 'zm-tun')] });
  t.teardown(() => sw.close());
  const synced = nextWhere(runtime.reconciler.synced$, (r) => r.dpid === HV1);
  await sw.connect({ transport: 'tcp', port });
  await synced;
  return sw;
}

const poll = (runtime: Runtime) => runtime.metrics!.poller.poll(runtime.controller.session(HV1)!);

async function topology(url: string): Promise<TopologySnapshot> {
  const res = await fetch(`${url}/topology`);
  if (res.status !== 200) throw new Error(`GET /topology: ${res.status}`);
  return (await res.json()) as TopologySnapshot;
}

test('the state: zones, hypervisors, VMs by VPC and tier, sessions, sync state and port counters', async (t) => {
  const started = await startPage(t);
  const { runtime, url } = started;
  let snap = await topology(url);
  t.deepEqual(snap.zones, [
    { name: 'zone-a', underlay: '172.16.1.0/24', hypervisors: ['hv1', 'hv2'] },
    { name: 'zone-b', underlay: '172.16.2.0/24', hypervisors: ['hv3', 'hv4'] },
  ]);
  t.deepEqual(
    snap.vpcs.map((v) => [v.name, v.tiers.map((tier) => [tier.name, tier.vms.map((vm) => `${vm.name}@${vm.hypervisor}`)])]),
    [
      ['blue', [['web', ['web1@hv1', 'web2@hv3']], ['app', ['app1@hv2', 'app2@hv4']], ['db', ['db1@hv4']]]],
      ['red', [['web', ['red1@hv1', 'red2@hv4']]]],
    ],
  );
  t.deepEqual(snap.hypervisors.map((h) => [h.name, h.state, h.since]), [['hv1', 'down', null], ['hv2', 'down', null], ['hv3', 'down', null], ['hv4', 'down', null]], 'never connected');
  t.false(snap.tunnelMonitor);
  t.deepEqual(snap.tunnels, []);

  const sw = await connectHv1(t, started);
  snap = await topology(url);
  const hv1 = () => snap.hypervisors.find((h) => h.name === 'hv1')!;
  t.is(hv1().state, 'connected', 'up, not polled yet');
  t.like(hv1(), { zone: 'zone-a', tunnelIp: '172.16.1.11', dpid: '0000000000000011', downReason: null, flows: { desired: runtime.desired.count(HV1), installed: null, desiredAtPoll: null, polledAt: null } });
  t.like(hv1().lastSync, { kind: 'full', adds: sw.flowTable.size, deletes: 0, errors: 0 });

  sw.portCounters.set(1, { rxPackets: 42n, txPackets: 40n, rxBytes: 4200n, txBytes: 4000n, rxDropped: 1n, txDropped: 0xffff_ffff_ffff_ffffn });
  await poll(runtime);
  snap = await topology(url);
  t.is(hv1().state, 'in-sync');
  t.like(hv1().flows, { desired: sw.flowTable.size, installed: sw.flowTable.size, desiredAtPoll: sw.flowTable.size });
  t.deepEqual(
    hv1().ports.map((p) => [p.name, p.vm]),
    [['web1', 'web1'], ['red1', 'red1'], ['zm-tun', null]],
    'VM ports first, by number; then the others',
  );
  t.like(hv1().ports[0], { portNo: 1, rxPackets: 42, txPackets: 40, rxBytes: 4200, txBytes: 4000, rxDropped: 1, txDropped: null, rxPps: null, txPps: null });

  sw.portCounters.set(1, { rxPackets: 1042n, txPackets: 40n });
  await poll(runtime);
  snap = await topology(url);
  t.true(hv1().ports[0]!.rxPps! > 0, 'a rate since the previous poll');
  t.is(hv1().ports[0]!.txPps, 0);

  // a flow the controller does not know: installed differs from desired
  sw.flowTable.apply(flowMod('add', { tableId: 0, priority: 5, match: [], instructions: [], cookie: makeCookie(200, 'stray'), idleTimeout: 0, hardTimeout: 0, flags: 0 }));
  await poll(runtime);
  snap = await topology(url);
  t.is(hv1().state, 'out-of-sync');

  await sw.close();
  await until(() => runtime.controller.session(HV1) === undefined);
  snap = await topology(url);
  t.like(hv1(), { state: 'down', downReason: 'peer_closed', ports: [], flows: { installed: null } });
  t.true(hv1().since! > 0);
});

test('the event stream: a snapshot, then coalesced updates of what changed; a model change sends a new snapshot', async (t) => {
  const started = await startPage(t);
  const { runtime, url, models } = started;
  const stream = await EventStream.open(`${url}/events`);
  t.teardown(() => stream.close());
  t.is(stream.status, 200);
  t.is(stream.response.headers['content-type'], 'text/event-stream');
  const first = await stream.nextJson<TopologySnapshot>('snapshot');
  t.is(first.hypervisors.length, 4);

  const sw = await connectHv1(t, started);
  const up = await stream.nextJson<TopologyUpdate>('update', (u) => u.hypervisors.some((h) => h.name === 'hv1' && h.lastSync !== null));
  t.deepEqual(up.hypervisors.map((h) => h.name), ['hv1'], 'only what changed');
  t.is(up.hypervisors[0]!.state, 'connected');

  sw.portCounters.set(1, { rxPackets: 5n });
  await poll(runtime);
  const polled = await stream.nextJson<TopologyUpdate>('update', (u) => u.hypervisors[0]?.state === 'in-sync');
  t.is(polled.hypervisors[0]!.ports[0]!.rxPackets, 5);

  await sw.close();
  const down = await stream.nextJson<TopologyUpdate>('update', (u) => u.hypervisors[0]?.state === 'down');
  t.is(down.hypervisors[0]!.downReason, 'peer_closed');

  models.next(edit(models.value, (doc) => doc.ports.push({ name: 'web3', vpc: 'blue', subnet: 'web', mac: '02:00:00:01:01:0d', ip: '10.1.1.13', hypervisor: 'hv2' })));
  const after = await stream.nextJson<TopologySnapshot>('snapshot');
  t.deepEqual(after.vpcs[0]!.tiers[0]!.vms.map((v) => v.name), ['web1', 'web2', 'web3']);
  t.is(after.hypervisors.find((h) => h.name === 'hv1')!.state, 'down', 'the state survives the model change');
});

test('tunnel health from a monitor, when one is bound: pairs of model hypervisors only; none when its binding fails', async (t) => {
  const health = new FakeTunnelHealth();
  health.push({ from: 'hv1', to: 'hv2', state: 'up', lossRatio: 0, rttMs: 0.4, at: 1 });
  const { url } = await startPage(t, { tunnelHealth: health });
  const stream = await EventStream.open(`${url}/events`);
  t.teardown(() => stream.close());
  const snap = await stream.nextJson<TopologySnapshot>('snapshot');
  t.true(snap.tunnelMonitor);
  t.deepEqual(snap.tunnels, [{ from: 'hv1', to: 'hv2', state: 'up', lossRatio: 0, rttMs: 0.4, at: 1 }]);

  health.push({ from: 'hv9', to: 'hv1', state: 'down', lossRatio: 1, rttMs: undefined, at: 2 });
  health.push({ from: 'hv3', to: 'hv4', state: 'lossy', lossRatio: 0.02, rttMs: undefined, at: 3 });
  const update = await stream.nextJson<TopologyUpdate>('update', (u) => u.tunnels.length > 0);
  t.deepEqual(update.tunnels, [{ from: 'hv3', to: 'hv4', state: 'lossy', lossRatio: 0.02, rttMs: null, at: 3 }], 'hv9 is no model hypervisor');

  // a monitor whose binding cannot be resolved is no monitor: the page runs, every tunnel unknown
  const without = await startPage(t, { tunnelHealth: 'fails' });
  t.like(await topology(without.url), { tunnelMonitor: false, tunnels: [] });
});

test('the files, and what a browser may ask: GET or HEAD of known paths only', async (t) => {
  const { url } = await startPage(t);
  for (const [path, file, type] of [
    ['/', 'index.html', 'text/html; charset=utf-8'],
    ['/page.js', 'page.js', 'text/javascript; charset=utf-8'],
    ['/page.css', 'page.css', 'text/css; charset=utf-8'],
  ] as const) {
    const res = await fetch(`${url}${path}`);
    t.is(res.status, 200, path);
    t.is(res.headers.get('content-type'), type);
    t.is(await res.text(), readFileSync(join(PAGE_DIR, file), 'utf8'));
  }
  t.is((await fetch(`${url}/favicon.ico`)).status, 204, 'no icon, and no 404 in the console');
  for (const path of ['/index.html', '/package.json', '/%2e%2e/package.json', '/web/page.js', '/metrics']) t.is((await fetch(`${url}${path}`)).status, 404, path);
  const post = await fetch(`${url}/events`, { method: 'POST', body: 'x' });
  t.is(post.status, 405);
  t.is(post.headers.get('allow'), 'GET, HEAD');
});

test('viewers: one more than maxViewers is refused with 503, and one that stops reading is disconnected', async (t) => {
  // a model whose snapshot is large (5,000 VMs), so that a few snapshots overflow the socket buffers
  const model = edit(twoZones(), (doc) => {
    doc.vpcs.push({ name: 'big', vni: 300, subnets: [{ name: 'many', cidr: '10.2.0.0/16', gateway: '10.2.0.1' }] });
    for (let i = 0; i < 5_000; i++) {
      const [hi, lo] = [(i >> 8).toString(16).padStart(2, '0'), (i & 0xff).toString(16).padStart(2, '0')];
      doc.ports.push({ name: `vm${i}`, vpc: 'big', subnet: 'many', mac: `02:00:00:09:${hi}:${lo}`, ip: `10.2.${(i >> 7) + 1}.${(i & 0x7f) + 1}`, hypervisor: 'hv2' });
    }
  });
  // no apps: only the page's work, not the flows of 5,000 ports, on every model change
  const { runtime, url, models } = await startPage(t, { model, apps: [], page: { maxViewers: 2, maxBacklogBytes: 1024 } });
  const reading = await EventStream.open(`${url}/events`);
  t.teardown(() => reading.close());
  const snapshotBytes = (await reading.next('snapshot')).data.length;
  t.true(snapshotBytes > 200_000, `${snapshotBytes} bytes`);

  // a viewer that sends its request and never reads
  const stalled = connect(Number(new URL(url).port), '127.0.0.1');
  t.teardown(() => stalled.destroy());
  stalled.pause();
  stalled.write('GET /events HTTP/1.1\r\nhost: x\r\n\r\n');
  const page = runtime.page!;
  await until(() => page.viewerCount === 2);
  const third = await EventStream.open(`${url}/events`);
  t.is(third.status, 503);
  t.is(third.response.headers['retry-after'], '10');
  third.close();

  // each model change sends every viewer a new snapshot: the stalled one's unread bytes pile up
  let changes = 0;
  for (; changes < 40 && page.viewerCount === 2; changes++) {
    models.next(edit(models.value, (doc) => (doc.vpcs[0].vni = 200 + changes)));
    await reading.next('snapshot');
  }
  t.log(`the stalled viewer was disconnected after ${changes} snapshots of ${snapshotBytes} bytes`);
  t.is(page.viewerCount, 1, 'the reading viewer stays');
  models.next(edit(models.value, (doc) => (doc.vpcs[0].vni = 100)));
  t.is(JSON.parse((await reading.next('snapshot')).data).vpcs[0].vni, 100);
});

test('config: http like metrics, one process only; a port in use is a PageServerError', async (t) => {
  const base = { apps: [], listen: ['127.0.0.1:6653'] };
  t.deepEqual(validateRunConfig({ ...base, http: { listen: ':8080', pollIntervalMs: 2000 } }, 'run.yaml').http, { listen: ':8080', pollIntervalMs: 2000 });
  t.deepEqual(configProblems(() => validateRunConfig({ ...base, http: { listen: 'localhost', every: 1 } }, 'run.yaml')), [
    'http.every: unknown key (known: listen, pollIntervalMs)',
    "http.listen: 'localhost' is not 'HOST:PORT', '[IPv6]:PORT' or ':PORT'",
  ]);
  t.deepEqual(configProblems(() => validateRunConfig({ ...base, http: {} }, 'run.yaml')), ['http.listen: missing: the HOST:PORT to serve the page on']);
  t.deepEqual(configProblems(() => validateRunConfig({ ...base, workers: 2, http: { listen: ':8080' } }, 'run.yaml')), [
    'http: needs workers: 1 (workers is 2): each worker sees only its own switches; run one process to serve the page',
  ]);
  t.is(runConfig(['--http', '127.0.0.1:8080']).config.http?.listen, '127.0.0.1:8080');

  const first = await startPage(t);
  const busy = Number(new URL(first.url).port);
  const runtime = new Runtime({ config: { apps: [], listen: [], dial: [], logLevel: 'silent', settings: {}, http: { listen: `127.0.0.1:${busy}` } }, registry: APP_REGISTRY, logger: silentLogger() });
  t.teardown(() => runtime.stop());
  await t.throwsAsync(runtime.start(), { instanceOf: PageServerError, message: `cannot serve the page on 127.0.0.1:${busy}: address in use (EADDRINUSE)` });
});

test('one stats poll feeds the metrics and the page, at the shorter interval', (t) => {
  const make = (config: Partial<RunConfig>) => {
    const runtime = new Runtime({ config: { apps: [], listen: [], dial: [], logLevel: 'silent', settings: {}, ...config }, registry: APP_REGISTRY, logger: silentLogger() });
    t.teardown(() => runtime.stop());
    return runtime;
  };
  t.is(make({ http: { listen: ':0' } }).pollIntervalMs, 15_000);
  t.is(make({ http: { listen: ':0', pollIntervalMs: 2_000 }, metrics: { listen: ':0', pollIntervalMs: 30_000 } }).pollIntervalMs, 2_000);
  t.is(make({ http: { listen: ':0' }, metrics: { listen: ':0', pollIntervalMs: 5_000 } }).pollIntervalMs, 5_000);
  t.truthy(make({ http: { listen: ':0' } }).metrics, 'the page alone has the poll too');
  t.is(make({}).metrics, undefined, 'no poll without either');
});
