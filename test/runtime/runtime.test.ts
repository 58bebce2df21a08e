import test, { type ExecutionContext } from 'ava';
import pino from 'pino';
import { BehaviorSubject, Subject, map } from 'rxjs';
import { Controller, silentLogger } from '../../src/controller';
import { EMPTY_MODEL, ModelValidationError, type ModelStore } from '../../src/model';
import { OFP_NO_BUFFER, OFPCML_NO_BUFFER, OFPP, type PacketIn, type PacketOut } from '../../src/openflow';
import { APP, APP_SETTINGS, MODEL_STORE, PIPELINE_APP_ID, appOfCookie, inject, injectable, type AppContext, type AppSettings, type TableSpec, type ZonemeshApp } from '../../src/sdk';
import { AppHandlerError, AppStartError, AppWiringError, Runtime, type AppRegistry, type RunConfig } from '../../src/runtime';
import { captureLog } from '../helpers/log';
import { FakeSwitch } from '../../src/testing';
import { delay, next, until } from '../controller/util';

function config(apps: string[], o: Partial<RunConfig> = {}): RunConfig {
  return { apps, listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }], dial: [], logLevel: 'silent', settings: {}, ...o };
}

/** A runtime on an ephemeral port, stopped when the test ends. */
async function start(
  t: ExecutionContext,
  registry: AppRegistry,
  apps: string[],
  o: { config?: Partial<RunConfig>; logger?: pino.Logger; modelStore?: ModelStore; controller?: { highWaterMarkBytes: number; maxBufferedBytes: number } } = {},
) {
  const runtime = new Runtime({
    config: config(apps, o.config),
    registry,
    logger: o.logger ?? silentLogger(),
    ...(o.controller && { controller: o.controller }),
    reconciler: { bundles: false },
    ...(o.modelStore && { modelStore: o.modelStore }),
  });
  t.teardown(() => runtime.stop());
  await runtime.start();
  return { runtime, port: runtime.listening[0]!.port! };
}

async function connect(t: ExecutionContext, runtime: Runtime, port: number, dpid = 1n): Promise<FakeSwitch> {
  const sw = new FakeSwitch({ dpid });
  t.teardown(() => sw.close());
  const synced = next(runtime.reconciler.synced$);
  await sw.connect({ transport: 'tcp', port });
  await synced;
  return sw;
}

const table = (name: string, stage: TableSpec['stage'], miss: TableSpec['miss']): TableSpec => ({ name, stage, miss, matches: ['in_port', 'eth_dst'] });

/** A service one app offers another through DI. */
@injectable()
class Greeter {
  readonly greeting = 'hello';
}

@injectable()
class OutputApp implements ZonemeshApp {
  readonly name: string = 'output';
  readonly appId: number = 20;
  readonly tables = [table('output.egress', 'output', 'drop')];
  readonly greeter = new Greeter();
  context: AppContext | undefined;
  start(ctx: AppContext): void {
    this.context = ctx;
  }
}

@injectable()
class ClassifyApp implements ZonemeshApp {
  readonly name = 'classify';
  readonly appId = 21;
  readonly tables = [table('classify.in', 'classify', 'next'), table('classify.punt', 'classify', 'controller')];
  constructor(
    @inject(OutputApp) readonly output: OutputApp,
    @inject(APP_SETTINGS) readonly settings: AppSettings,
  ) {}
  start(ctx: AppContext): void {
    ctx.on(ctx.events.switchUp$, ({ dpid }) => {
      ctx.setFlows(dpid, 'port:1', [ctx.flow('classify.in', 'port:1').priority(10).match({ in_port: 1 }).goto('output.egress').build()]);
    });
  }
}

/** Throws on its first packet-in, then counts. */
@injectable()
class FragileApp implements ZonemeshApp {
  readonly name: string = 'fragile';
  readonly appId: number = 22;
  readonly tables = [table('fragile.t', 'l2', 'controller')];
  handled = 0;
  start(ctx: AppContext): void {
    ctx.on(ctx.events.packetIn$, () => {
      if (this.handled++ === 0) throw new Error('first packet is poison');
    });
    // a raw rxjs pipeline whose operator throws: the stream ends, the process does not
    ctx.events.packetIn$.pipe(map(() => { throw new Error('operator exploded'); })).subscribe();
  }
}

const REGISTRY: AppRegistry = { output: OutputApp, classify: ClassifyApp, fragile: FragileApp };

const packetIn = (tableId: number): PacketIn => ({
  type: 'PACKET_IN', xid: 0, bufferId: OFP_NO_BUFFER, totalLen: 14, reason: 0, tableId, cookie: 0n,
  match: [{ field: 'in_port', value: 1 }], data: Buffer.alloc(14),
});

test('enabled apps are bound under APP in config order; an app gets another by DI, and the run settings', async (t) => {
  const { runtime } = await start(t, REGISTRY, ['classify', 'output'], { config: { settings: { classify: { x: 1 } } } });
  const apps = runtime.container.getAll<ZonemeshApp>(APP);
  t.deepEqual(apps.map((a: ZonemeshApp) => a.name), ['classify', 'output']);
  const classify = apps[0] as ClassifyApp;
  t.is(classify.output, apps[1], 'one instance per app: the one DI gave classify is the one that runs');
  t.deepEqual(classify.settings, { classify: { x: 1 } });
  t.is(runtime.container.get(Controller), runtime.controller);
  t.is(runtime.container.get(Greeter).greeting, 'hello', 'unbound helper classes resolve by themselves (autobind)');
});

test('the pipeline is laid out by stage, then config order, with ids from 0', async (t) => {
  const { runtime } = await start(t, REGISTRY, ['output', 'classify']);
  t.deepEqual(runtime.pipeline.tables.map((x) => `${x.id}:${x.name}`), ['0:classify.in', '1:classify.punt', '2:output.egress']);
});

test('every switch gets one table-miss flow per table, owned by the pipeline, and the apps desired flows', async (t) => {
  const { runtime, port } = await start(t, REGISTRY, ['output', 'classify']);
  const sw = await connect(t, runtime, port);
  const flows = sw.flowTable.flows().sort((a, b) => a.tableId - b.tableId || a.priority - b.priority);
  const misses = flows.filter((f) => f.priority === 0);
  t.deepEqual(misses.map((f) => f.tableId), [0, 1, 2]);
  t.true(misses.every((f) => appOfCookie(f.cookie) === PIPELINE_APP_ID && f.match.length === 0));
  t.deepEqual(misses[0]!.instructions, [{ type: 'goto_table', tableId: 1 }], "'next' goes to the following table");
  t.deepEqual(misses[1]!.instructions, [{ type: 'apply_actions', actions: [{ type: 'output', port: OFPP.CONTROLLER, maxLen: OFPCML_NO_BUFFER }] }]);
  t.deepEqual(misses[2]!.instructions, [], "'drop' has no instructions");
  const app = flows.find((f) => f.priority === 10)!;
  t.is(appOfCookie(app.cookie), 21);
  t.deepEqual(app.instructions, [{ type: 'goto_table', tableId: 2 }]);
});

test('ctx.send reaches a connected switch and drops (logged) for one that is not', async (t) => {
  const { log: logger, lines } = captureLog();
  const { runtime, port } = await start(t, REGISTRY, ['output'], { logger });
  const sw = await connect(t, runtime, port);
  const ctx = (runtime.apps[0] as OutputApp).context!;
  const out: PacketOut = { type: 'PACKET_OUT', xid: 0, bufferId: OFP_NO_BUFFER, inPort: OFPP.CONTROLLER, actions: [], data: Buffer.alloc(14) };
  t.true(ctx.send(1n, out), 'queued with room to spare');
  await sw.firstMessage('PACKET_OUT');
  t.false(ctx.send(99n, out), 'dropped');
  t.true(lines.some((l) => l.msg === 'switch not connected; message dropped' && l.dpid === '0000000000000063' && l.app === 'output'));
  t.is(ctx.cookie('x') >> 56n, 20n);
});

test('ctx.send says when a switch falls behind: false above the high-water mark, and drops (logged) past the buffer limit', async (t) => {
  const { log: logger, lines } = captureLog();
  const highWaterMarkBytes = 16 * 1024;
  const maxBufferedBytes = 64 * 1024;
  const { runtime, port } = await start(t, REGISTRY, ['output'], { logger, controller: { highWaterMarkBytes, maxBufferedBytes } });
  const sw = await connect(t, runtime, port);
  const ctx = (runtime.apps[0] as OutputApp).context!;
  sw.pauseReading(); // the switch stops reading: our writes back up in the kernel, then in the session
  const out: PacketOut = { type: 'PACKET_OUT', xid: 0, bufferId: OFP_NO_BUFFER, inPort: OFPP.CONTROLLER, actions: [], data: Buffer.alloc(1000) };
  let firstFalse = -1;
  let sent = 0;
  // one event-loop turn each, so the batches reach the socket and fill the kernel's buffers
  for (let turn = 0; turn < 2000 && !lines.some((l) => l.msg === 'message dropped'); turn++) {
    for (let i = 0; i < 16; i++, sent++) if (!ctx.send(1n, out) && firstFalse < 0) firstFalse = sent;
    await delay(0);
  }
  t.true(firstFalse > 0, 'true at first, false once the queue passed the high-water mark');
  const dropped = lines.find((l) => l.msg === 'message dropped');
  t.truthy(dropped, 'past maxBufferedBytes the message is dropped and logged');
  t.is(dropped?.dpid, '0000000000000001');
  t.true(runtime.controller.session(1n)!.bufferedBytes <= maxBufferedBytes + 2 * 1024, 'memory stays bounded');
  sw.resumeReading();
  await until(() => runtime.controller.session(1n)!.bufferedBytes < highWaterMarkBytes);
  t.true(ctx.send(1n, out), 'true again once the switch caught up');
});

test("an exception in an app's handler is reported with app, switch and event, and the app keeps handling", async (t) => {
  const { log: logger, lines } = captureLog();
  const { runtime, port } = await start(t, REGISTRY, ['fragile'], { logger });
  const failures: AppHandlerError[] = [];
  runtime.appErrors$.subscribe((e) => failures.push(e));
  const sw = await connect(t, runtime, port, 7n);
  sw.send(packetIn(0));
  sw.send(packetIn(0));
  const app = runtime.apps[0] as FragileApp;
  await until(() => app.handled === 2);
  t.is(failures.length, 1);
  t.like(failures[0], { app: 'fragile', dpid: 7n, event: 'PACKET_IN' });
  t.regex(failures[0]!.message, /first packet is poison/);
  await until(() => lines.some((l) => /unhandled error in an event stream/.test(String(l.msg))));
  t.pass('the raw subscription that died was logged, the process lives on');
});

test('wiring problems are AppWiringErrors naming the app, before any switch is touched', (t) => {
  const make = (registry: AppRegistry, apps: string[]) => () => new Runtime({ config: config(apps), registry, logger: silentLogger() });
  t.throws(make(REGISTRY, ['nope']), { instanceOf: AppWiringError, message: /no app named 'nope' \(known: classify, fragile, output; others load with --app PATH\|PACKAGE\)/ });
  t.throws(make(REGISTRY, ['classify']), { instanceOf: AppWiringError, message: /app classify: cannot be constructed: .*app 'output' is not enabled/s });

  @injectable()
  class Twin extends OutputApp {
    override readonly name = 'twin';
  }
  t.throws(make({ ...REGISTRY, twin: Twin }, ['output', 'twin']), { instanceOf: AppWiringError, message: /app twin: app id 20 is also output's/ });
  t.throws(make({ alias: OutputApp }, ['alias']), { message: /registered as 'alias' but calls itself 'output'/ });

  @injectable()
  class Pipeline1 extends OutputApp {
    override readonly appId = 1;
  }
  t.throws(make({ output: Pipeline1 }, ['output']), { message: /app id 1 outside 2\.\.255/ });

  @injectable()
  class SameTable extends FragileApp {
    override readonly name = 'same';
    override readonly appId = 30;
  }
  t.throws(make({ fragile: FragileApp, same: SameTable }, ['fragile', 'same']), { instanceOf: AppWiringError, message: /declared twice/ });
});

test('an app whose start throws stops the runtime with AppStartError', async (t) => {
  @injectable()
  class Broken extends OutputApp {
    override start(): void {
      throw new Error('no config');
    }
  }
  const runtime = new Runtime({ config: config(['output']), registry: { output: Broken }, logger: silentLogger() });
  await t.throwsAsync(runtime.start(), { instanceOf: AppStartError, message: 'app output: start failed: no config' });
  t.is(runtime.controller.switches.size, 0);
});

test('stop() ends the apps (stopped$), the listeners and the sessions; the switch keeps its flows', async (t) => {
  const { runtime, port } = await start(t, REGISTRY, ['output', 'classify']);
  const sw = await connect(t, runtime, port);
  const ctx = (runtime.apps[0] as OutputApp).context!;
  let stopped = false;
  ctx.stopped$.subscribe(() => (stopped = true));
  const flows = sw.flowTable.size;
  await runtime.stop();
  t.true(stopped);
  await sw.waitClosed();
  t.is(sw.flowTable.size, flows);
  const again = new FakeSwitch();
  t.teardown(() => again.close());
  await t.throwsAsync(again.connect({ transport: 'tcp', port }));
});

test('the model store is bound under MODEL_STORE when there is one', async (t) => {
  const store: ModelStore = { model$: new BehaviorSubject(EMPTY_MODEL), rejected$: new Subject(), current: () => EMPTY_MODEL };
  @injectable()
  class ModelApp extends OutputApp {
    constructor(@inject(MODEL_STORE) readonly store: ModelStore) {
      super();
    }
  }
  const { runtime } = await start(t, { output: ModelApp }, ['output'], { modelStore: store });
  t.is((runtime.apps[0] as ModelApp).store, store);
  await delay(0);
});

test('every model applied and every model change refused is logged, the refused one with its problems', async (t) => {
  const model$ = new BehaviorSubject(EMPTY_MODEL);
  const rejected$ = new Subject<ModelValidationError>();
  const { log: logger, lines } = captureLog();
  await start(t, { output: OutputApp }, ['output'], { logger, modelStore: { model$, rejected$, current: () => model$.value } });
  model$.next({ ...EMPTY_MODEL, zones: [{ name: 'a', underlay: '172.16.1.0/24' }] });
  rejected$.next(new ModelValidationError('model.yaml', [{ path: 'ports[0].ip', problem: "'10.1.2.300' is not an IPv4 address" }]));
  const logged = lines.filter((l) => /^model /.test(l.msg as string)).map(({ msg, model, source, problems }) => ({ msg, model, source, problems }));
  t.deepEqual(logged, [
    { msg: 'model applied', model: { zones: 0, hypervisors: 0, vpcs: 0, subnets: 0, ports: 0, acls: 0, externalNetworks: 0, floatingIps: 0, egress: 0, loadBalancers: 0 }, source: undefined, problems: undefined },
    { msg: 'model applied', model: { zones: 1, hypervisors: 0, vpcs: 0, subnets: 0, ports: 0, acls: 0, externalNetworks: 0, floatingIps: 0, egress: 0, loadBalancers: 0 }, source: undefined, problems: undefined },
    { msg: 'model change refused; the running model stays', model: undefined, source: 'model.yaml', problems: ["ports[0].ip: '10.1.2.300' is not an IPv4 address"] },
  ]);
});
