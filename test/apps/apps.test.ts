import test from 'ava';
import pino from 'pino';
import { BehaviorSubject, type Observable, Subject } from 'rxjs';
import { AclApp } from '../../src/apps/acl';
import { ArpResponderApp } from '../../src/apps/arp-responder';
import { DistributedRouterApp } from '../../src/apps/distributed-router';
import { OverlayViews } from '../../src/apps/overlay';
import { PORT_PLACEMENT, type PortNumbers as Placement, type PortPlacement } from '../../src/sdk';
import { TUNNEL_PORTS, TunnelMeshApp, type TunnelPorts, VsctlTunnelPorts, tunnelPortCommand } from '../../src/apps/tunnel-mesh';
import { type Hypervisor, type ModelStore, type NetworkModel, internModel } from '../../src/model';
import type { OfMessage } from '../../src/openflow';
import { LogLimiter, type SwitchSession } from '../../src/controller';
import { DesiredState } from '../../src/runtime/desired-state';
import { MODEL_STORE, type ZonemeshApp } from '../../src/sdk/app';
import { makeCookie } from '../../src/sdk/cookie';
import type { Flow } from '../../src/sdk/flow';
import { type ContextHost, RuntimeAppContext } from '../../src/runtime';
import { Container, ModelPlacement, type Pipeline, StoreModelAccess, VSCTL, type Vsctl } from '../../src/sdk';
import { BGP_SPEAKERS, type BgpSpeakers, GATEWAY_PORTS, type GatewayPorts, NorthSouthApp, VsctlGatewayPorts, gatewayPortName, gatewayPortsCommand } from '../../src/apps/north-south';
import { APP_SETTINGS } from '../../src/sdk/app';
import { COMPILERS, NORTH_SOUTH_PIPELINE, PIPELINE, edit, northSouthWithHv5, perSwitch, placeAll, twoZones, viewOf } from './helpers';

class FakeStore implements ModelStore {
  readonly subject: BehaviorSubject<NetworkModel>;
  readonly model$;
  readonly rejected$ = new Subject<never>();
  constructor(model: NetworkModel) {
    this.subject = new BehaviorSubject(model);
    this.model$ = this.subject.asObservable();
  }
  current(): NetworkModel {
    return this.subject.value;
  }
}

class StubTunnelPorts implements TunnelPorts {
  readonly calls: string[] = [];
  failures = 0;
  async ensure(hv: Hypervisor & { ovsdb: string }): Promise<void> {
    this.calls.push(`${hv.name} ${hv.ovsdb} ${hv.tunnelIp}`);
    if (this.failures > 0) {
      this.failures--;
      throw new Error('ovsdb not up');
    }
  }
}

/** the runtime's context around one app, with the runtime's DesiredState and a fake switch session that records what is sent */
class Harness {
  readonly desired = new DesiredState();
  readonly stop = new Subject<void>();
  readonly sent: { dpid: bigint; msg: OfMessage }[] = [];
  /** (owner, switch) sets handed to the runtime */
  sets = 0;
  readonly ctx: RuntimeAppContext;
  constructor(
    readonly app: ZonemeshApp,
    /** for apps that read ctx.model and ctx.placement, as the runtime gives them */
    world?: { store: ModelStore; numbers: Observable<Placement>; pipeline: Pipeline },
  ) {
    const none = new Subject<never>();
    const host: ContextHost = {
      pipeline: world?.pipeline ?? PIPELINE,
      ...(world && { model: new StoreModelAccess(world.store), placement: new ModelPlacement(world.store.model$, world.numbers, this.stop) }),
      events: { switchUp$: none, switchDown$: none, packetIn$: none, portStatus$: none, flowRemoved$: none },
      desired: this.desired,
      stopped$: this.stop.asObservable(),
      logLimiter: new LogLimiter(),
      session: (dpid) => ({ send: (msg: OfMessage) => this.sent.push({ dpid, msg }) }) as unknown as SwitchSession,
      // the desired state is the switch here
      settled: async () => undefined,
      writable: () => true,
      handlerFailed: (e) => {
        throw e;
      },
    };
    this.desired.changes$.subscribe(() => this.sets++);
    this.ctx = new RuntimeAppContext(app, pino({ level: 'silent' }), host);
  }
  flows(owner: string, dpid: bigint): readonly Flow[] {
    return this.desired.owned(dpid, makeCookie(this.app.appId, owner));
  }
}

function wire(model: NetworkModel) {
  const store = new FakeStore(model);
  const placement = new BehaviorSubject<Placement>(placeAll(model));
  const tunnels = new StubTunnelPorts();
  const container = new Container({ defaultScope: 'Singleton', autobind: true });
  container.bind(MODEL_STORE).toConstantValue(store);
  container.bind(PORT_PLACEMENT).toConstantValue({ placement$: placement.asObservable() } satisfies PortPlacement);
  container.bind(TUNNEL_PORTS).toConstantValue(tunnels);
  const apps = { 'tunnel-mesh': TunnelMeshApp, 'arp-responder': ArpResponderApp, 'distributed-router': DistributedRouterApp, acl: AclApp } as const;
  const started = Object.entries(apps).map(([name, cls]) => {
    const app = container.get<ZonemeshApp>(cls);
    const harness = new Harness(app);
    app.start(harness.ctx);
    return { name: name as keyof typeof apps, app, harness };
  });
  return { store, placement, tunnels, container, started };
}

const withOvsdb = (m: NetworkModel) => edit(m, (doc) => doc.hypervisors.forEach((h: { name: string; ovsdb?: string }) => (h.ovsdb = `unix:/run/zm/${h.name}/db.sock`)));

test('the apps resolve through DI and share one overlay view', (t) => {
  const { container, started } = wire(twoZones());
  t.deepEqual(started.map((s) => s.app.name), ['tunnel-mesh', 'arp-responder', 'distributed-router', 'acl']);
  t.is(container.get(OverlayViews), container.get(OverlayViews));
});

test('on start each app hands the runtime exactly its full compile, owner by owner', (t) => {
  const model = twoZones();
  const { started } = wire(model);
  const view = viewOf(model);
  for (const { name, harness } of started) {
    let count = 0;
    for (const [owner, lists] of COMPILERS[name](PIPELINE, view)) {
      for (const [dpid, flows] of perSwitch(lists)) {
        t.deepEqual(harness.flows(owner, dpid), flows, `${name} ${owner}`);
        count += flows.length;
      }
    }
    t.is(harness.desired.switches.reduce((n, dpid) => n + harness.desired.flows(dpid).length, 0), count, `${name}: nothing else`);
  }
});

test('a model change reaches the runtime as changed owners only; after stop, nothing', (t) => {
  const model = twoZones();
  const { store, started } = wire(model);
  for (const s of started) s.harness.sets = 0;
  store.subject.next(edit(model, (doc) => doc.ports.push({ name: 'db2', vpc: 'blue', subnet: 'db', mac: '02:00:00:01:03:0c', ip: '10.1.3.12', hypervisor: 'hv4' })));
  t.deepEqual(
    started.map((s) => `${s.name}:${s.harness.sets}`),
    // db2's interface is not plugged in yet: tunnel-mesh gives hv1..hv3 the way to it and hv4 nothing;
    // arp answers for it on hv4 (its subnet's only host); the router routes to it on hv1..hv4
    ['tunnel-mesh:3', 'arp-responder:1', 'distributed-router:4', 'acl:0'],
  );
  for (const s of started) s.harness.stop.next();
  store.subject.next(model);
  t.deepEqual(started.map((s) => s.harness.sets), [3, 1, 4, 0]);
});

test('a moved VM is announced by gratuitous ARP to its subnet neighbours', (t) => {
  const model = edit(twoZones(), (doc) => doc.ports.push({ name: 'web3', vpc: 'blue', subnet: 'web', mac: '02:00:00:01:01:0d', ip: '10.1.1.13', hypervisor: 'hv1' }));
  const { store, placement, started } = wire(model);
  const moved = edit(model, (doc) => (doc.ports.find((p: { name: string }) => p.name === 'web3').hypervisor = 'hv3'));
  placement.next(placeAll(moved));
  const arp = started.find((s) => s.name === 'arp-responder')!.harness;
  t.deepEqual(arp.sent, [], 'placement alone moves nothing');
  store.subject.next(moved);
  t.deepEqual(arp.sent.map((s) => s.dpid).sort(), [0x11n, 0x13n]);
  t.true(arp.sent.every((s) => s.msg.type === 'PACKET_OUT'));
});

test('tunnel ports are provisioned once per hypervisor with an ovsdb target, again when its settings change', async (t) => {
  const model = withOvsdb(twoZones());
  const { store, tunnels } = wire(model);
  await tick();
  t.deepEqual(tunnels.calls, [
    'hv1 unix:/run/zm/hv1/db.sock 172.16.1.11',
    'hv2 unix:/run/zm/hv2/db.sock 172.16.1.12',
    'hv3 unix:/run/zm/hv3/db.sock 172.16.2.13',
    'hv4 unix:/run/zm/hv4/db.sock 172.16.2.14',
  ]);
  // as the stores hand models on: unchanged objects are the previous version's (internModel)
  store.subject.next(internModel(edit(model, (doc) => doc.ports.pop()), store.current()));
  store.subject.next(internModel(edit(model, (doc) => (doc.hypervisors[1].tunnelIp = '172.16.1.22')), store.current()));
  await tick();
  t.deepEqual(tunnels.calls.slice(4), ['hv2 unix:/run/zm/hv2/db.sock 172.16.1.22']);
});

test('a failed tunnel port provisioning is retried', async (t) => {
  const model = edit(twoZones(), (doc) => (doc.hypervisors[0].ovsdb = 'unix:/run/zm/hv1/db.sock'));
  const store = new FakeStore(model);
  const tunnels = new StubTunnelPorts();
  tunnels.failures = 1;
  const container = new Container({ defaultScope: 'Singleton', autobind: true });
  container.bind(MODEL_STORE).toConstantValue(store);
  container.bind(PORT_PLACEMENT).toConstantValue({ placement$: new BehaviorSubject<Placement>(placeAll(model)) });
  container.bind(TUNNEL_PORTS).toConstantValue(tunnels);
  const app = container.get(TunnelMeshApp);
  app.retryMs = 10;
  app.start(new Harness(app).ctx);
  for (let waited = 0; tunnels.calls.length < 2 && waited < 5000; waited += 10) await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(tunnels.calls, ['hv1 unix:/run/zm/hv1/db.sock 172.16.1.11', 'hv1 unix:/run/zm/hv1/db.sock 172.16.1.11']);
});

test('the tunnel port command creates or corrects the one flow-based Geneve port in one transaction', (t) => {
  const [hv] = withOvsdb(twoZones()).hypervisors;
  t.deepEqual(tunnelPortCommand(hv!).join(' '),
    '-- --may-exist add-port br-int zm-tun -- set interface zm-tun type=geneve options:remote_ip=flow options:key=flow options:local_ip=172.16.1.11 ofport_request=4000');
});

test('the tunnel and BFD port provisioners run ovs-vsctl through the runtime\'s VSCTL, on the hypervisor\'s OVSDB', async (t) => {
  const [hv, peer] = withOvsdb(twoZones()).hypervisors as (Hypervisor & { ovsdb: string })[];
  const present = ['web1', 'zm-tun', 'zm-gw-0a0a0a0a'];
  const runs: [string, readonly string[]][] = [];
  const vsctl: Vsctl = {
    run: async (target, args) => {
      runs.push([`${target.name} ${target.ovsdb}`, args]);
      return args[0] === 'list-ports' ? present.map((p) => `${p}\n`).join('') : '';
    },
  };
  const container = new Container({ defaultScope: 'Singleton', autobind: true });
  container.bind(VSCTL).toConstantValue(vsctl);
  await container.get(VsctlTunnelPorts).ensure(hv!);
  await container.get(VsctlGatewayPorts).ensure(hv!, [peer!]);
  const at = 'hv1 unix:/run/zm/hv1/db.sock';
  t.deepEqual(runs, [
    [at, tunnelPortCommand(hv!)],
    [at, ['list-ports', 'br-int']],
    [at, gatewayPortsCommand(hv!, [peer!], present)],
  ]);
  t.true(runs[2]![1].includes('zm-gw-0a0a0a0a'), 'the stale BFD port is deleted');
});

class StubGatewayPorts implements GatewayPorts {
  readonly calls: string[] = [];
  async ensure(hv: Hypervisor & { ovsdb: string }, peers: readonly Hypervisor[]): Promise<void> {
    this.calls.push(`${hv.name}: ${peers.map((p) => p.name).join(' ')}`);
  }
}

/** answers only once released, so a test sees announcements that arrive while one is under way */
class StubBgpSpeakers implements BgpSpeakers {
  readonly calls: string[] = [];
  private release: (() => void)[] = [];
  announce(dir: string, prefixes: readonly string[]): Promise<boolean> {
    this.calls.push(`${dir}: ${prefixes.join(' ')}`);
    return new Promise((r) => this.release.push(() => r(true)));
  }
  releaseAll(): void {
    const pending = this.release;
    this.release = [];
    for (const r of pending) r();
  }
}

test('north-south: a gateways group per switch, BFD ports to the zone\'s peers, and each gateway\'s bgpd told its prefixes, one run at a time', async (t) => {
  const model = withOvsdb(northSouthWithHv5());
  const store = new FakeStore(model);
  // every switch reports its ports (placeAll: VMs, then segment ports) and a BFD port to each hypervisor (numbered 100 + its position)
  const placed = placeAll(model);
  const numbers = new Map(model.hypervisors.map((h) => [h.datapathId, new Map([...(placed.get(h.datapathId) ?? []), ...model.hypervisors.map((p, i) => [gatewayPortName(p), 100 + i] as const)])]));
  const ports = new StubGatewayPorts();
  const speakers = new StubBgpSpeakers();
  const container = new Container({ defaultScope: 'Singleton', autobind: true });
  container.bind(GATEWAY_PORTS).toConstantValue(ports);
  container.bind(BGP_SPEAKERS).toConstantValue(speakers);
  container.bind(APP_SETTINGS).toConstantValue({ 'north-south': { bgpVtySockets: { hv1: '/frr/hv1', hv3: '/frr/hv3' } } });
  const app = container.get(NorthSouthApp);
  const harness = new Harness(app, { store, numbers: new BehaviorSubject<Placement>(numbers), pipeline: NORTH_SOUTH_PIPELINE });
  app.start(harness.ctx);
  await tick();
  // gateways send out of their own segment ports: only hv5 has a group, and BFD sessions run between it and its gateways
  t.deepEqual(ports.calls, ['hv1: hv5', 'hv2: hv5', 'hv3: ', 'hv4: ', 'hv5: hv1 hv2']);
  t.deepEqual(
    model.hypervisors.map((h) => harness.desired.groups(h.datapathId).map((g) => g.buckets.map((b) => b.watchPort))),
    [[], [], [], [], [[100, 101]]],
  );
  t.deepEqual(speakers.calls, ['/frr/hv1: 198.51.100.10/32 198.51.100.20/32 198.51.100.21/32', '/frr/hv3: 198.51.100.74/32 198.51.100.84/32 198.51.100.85/32']);
  // web1 moves to zone-b twice while hv1's first run is under way: the last model is applied once it ends
  const moved = edit(model, (d) => (d.ports.find((p: { name: string }) => p.name === 'web1').hypervisor = 'hv3'));
  store.subject.next(edit(model, (d) => d.ports.pop()));
  store.subject.next(moved);
  t.is(speakers.calls.length, 2, 'nothing more while a run is under way');
  speakers.releaseAll();
  await tick();
  t.deepEqual(speakers.calls.slice(2), ['/frr/hv1: 198.51.100.20/32 198.51.100.21/32', '/frr/hv3: 198.51.100.10/32 198.51.100.74/32 198.51.100.84/32 198.51.100.85/32']);
  t.deepEqual(ports.calls.length, 5, 'the peers did not change: no provisioning');
  // web1's floating IP is now zone-b's: its gateways announce it out of their segment ports
  const segmentPort = (hv: string) => numbers.get(model.hypervisors.find((h) => h.name === hv)!.datapathId)!.get(model.externalNetworks[1]!.gateways.find((g) => g.hypervisor === hv)!.interface);
  t.deepEqual(
    harness.sent.map((s) => [s.dpid, s.msg.type === 'PACKET_OUT' && s.msg.actions]),
    (['hv3', 'hv4'] as const).map((hv, i) => [[0x13n, 0x14n][i], [{ type: 'output', port: segmentPort(hv), maxLen: 0 }]]),
  );
});

function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
