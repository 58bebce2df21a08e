import type { Logger } from 'pino';
import { NEVER, Subject, config as rxjsConfig, filter, map, of, share, takeUntil, type Observable } from 'rxjs';
import { hostname } from 'node:os';
import type { AppRef, RunConfig } from './run-config';
import type { EtcdMastership } from './etcd-mastership';
import { AppLoadError, appShapeProblem, loadAppModule } from './app-loader';
import { Controller, createLogger, formatDpid, type ControllerOptions, type Listener } from '../controller';
import { DesiredState } from './desired-state';
import { Reconciler, type ReconcilerOptions } from './reconciler';
import { RoleCoordinator, StaticMastership, type Mastership } from './mastership';
import { EMPTY_MODEL, FileModelStore, modelSize, parseEtcdUrl, type ModelStore } from '../model';
import { APP, APP_SETTINGS, APP_SETTINGS_CHANGES, LOGGER, MODEL_STORE, type AppEvents, type AppSettings, type ZonemeshApp } from '../sdk/app';
import { PIPELINE_APP_ID } from '../sdk/cookie';
import { tableMissFlows, type Flow } from '../sdk/flow';
import { StoreModelAccess } from '../sdk/model';
import { PacketIn } from '../sdk/packet-in';
import { Pipeline } from '../sdk/pipeline';
import { TUNNEL_HEALTH, type TunnelHealthSource } from '../sdk/tunnel-health';
import { BACKEND_HEALTH, type BackendHealthSource } from '../sdk/backend-health';
import { ModelPlacement, PORT_PLACEMENT, type PortPlacement } from '../sdk/placement';
import { SwitchPortPlacement } from './placement';
import { VSCTL } from '../sdk/vsctl';
import { ExecVsctl } from './vsctl';
import { RuntimeAppContext, type ContextHost } from './context';
import { ControlServer, type ControlSource } from './control';
import { Container, type Newable } from '../sdk/di';
import { AppHandlerError, AppStartError, AppWiringError } from './errors';
import { DEFAULT_POLL_INTERVAL_MS, RuntimeMetrics, type MetricsOptions } from './metrics';
import { MetricsServer, MetricsServerError, parseMetricsAddress } from './metrics-server';
import { PageServer, PageServerError, type PageServerOptions } from './page-server';
import { TopologyView } from './topology';

/** App name → app class: which apps `apps: [...]` can name. */
export type AppRegistry = Readonly<Record<string, Newable<ZonemeshApp>>>;

export interface RuntimeOptions {
  config: RunConfig;
  registry: AppRegistry;
  /** default: createLogger(config.logLevel), on stdout */
  logger?: Logger;
  /** fields on every log line (a cluster worker's `worker: k`) */
  logBindings?: Readonly<Record<string, unknown>>;
  /** over config.controller */
  controller?: Omit<ControllerOptions, 'logger'>;
  reconciler?: Omit<ReconcilerOptions, 'ownedApps' | 'log' | 'gate'>;
  /** who is master of each switch; default StaticMastership(config.generationId): MASTER with it, or EQUAL without */
  mastership?: Mastership;
  /**
   * default: a watched FileModelStore of config.model, or (Runtime.create) an EtcdModelStore of
   * config.store, with config.hypervisors merged in
   */
  modelStore?: ModelStore;
  /** the run config's settings whenever they change at runtime (a watched config file); apps inject it as APP_SETTINGS_CHANGES */
  settingsChanges?: Observable<AppSettings>;
  /** over config.metrics (the stats poll's timing); metrics exist only when config.metrics or config.http names where to serve them */
  metrics?: Omit<MetricsOptions, 'pollIntervalMs'>;
  /** the live page's bounds, when config.http names where to serve it */
  page?: PageServerOptions;
  /** app id → built-in app name: ids an app module may not take, whether or not that app runs */
  reservedAppIds?: ReadonlyMap<number, string>;
  /** binds services apps inject besides the runtime's own (bound lazily: only what an enabled app asks for is built) */
  bindServices?: (container: Container) => void;
}

/** createLogger at the config's level, unless the options bring a logger; with the options' bindings */
function loggerOf(options: RuntimeOptions): Logger {
  const log = options.logger ?? createLogger(options.config.logLevel);
  return options.logBindings ? log.child(options.logBindings) : log;
}

const MIN_APP_ID = PIPELINE_APP_ID + 1;
const MAX_APP_ID = 255;

/**
 * RxJS reports an error no subscriber handles through one process-wide hook; every running runtime
 * logs it (there is one in production; tests run several).
 */
const running = new Set<Runtime>();
let handlerBeforeUs: typeof rxjsConfig.onUnhandledError = null;

function watchUnhandledErrors(runtime: Runtime): void {
  if (running.size === 0) {
    handlerBeforeUs = rxjsConfig.onUnhandledError;
    rxjsConfig.onUnhandledError = (err) => {
      for (const r of running) r.log.error({ err }, 'unhandled error in an event stream; that subscription has ended');
    };
  }
  running.add(runtime);
}

function unwatchUnhandledErrors(runtime: Runtime): void {
  if (running.delete(runtime) && running.size === 0) rxjsConfig.onUnhandledError = handlerBeforeUs;
}

/**
 * Makes apps run. Construction wires everything (DI container, apps, pipeline, reconciler) and throws
 * AppWiringError for any problem, before a switch is touched; `start()` starts the apps and then
 * accepts switches, so the first switch-up already sees every app's desired flows.
 */
export class Runtime {
  readonly container: Container;
  readonly controller: Controller;
  readonly desired = new DesiredState();
  readonly log: Logger;
  readonly apps: readonly ZonemeshApp[];
  readonly pipeline: Pipeline;
  readonly reconciler: Reconciler;
  /** asks switches for the Mastership's roles; the reconciler and packet-outs write only through its gate */
  readonly roles: RoleCoordinator;
  /** app ids whose flows the reconciler manages: the running apps' and the pipeline's */
  readonly ownedApps: ReadonlySet<number>;
  readonly modelStore: ModelStore | undefined;
  /** the Prometheus metrics and the stats poll, when config.metrics or config.http is set (the page shows what the poll reads) */
  readonly metrics: RuntimeMetrics | undefined;
  /** the pipeline's own flows, desired on every switch */
  private readonly missFlows: readonly Flow[];
  private readonly handlerErrors = new Subject<AppHandlerError>();
  /** exceptions in app handlers, each also logged */
  readonly appErrors$ = this.handlerErrors.asObservable();
  private readonly stoppedSubject = new Subject<void>();
  private readonly listeners: Listener[] = [];
  private control: ControlServer | undefined;
  private metricsServer: MetricsServer | undefined;
  private topology: TopologyView | undefined;
  private pageServer: PageServer | undefined;
  private state: 'new' | 'started' | 'stopped' = 'new';

  /** the model store this runtime opened, closed when it stops */
  private readonly ownedStore: (ModelStore & { close(): void | Promise<void> }) | undefined;
  /** the election this runtime joined (config.zone), left when it stops */
  private readonly ownedMastership: (Mastership & { close(): Promise<void> }) | undefined;

  /**
   * Opens the model store the config names first when that takes I/O (an etcd store reads the
   * model); throws EtcdUnreachableError or ModelValidationError then, and AppWiringError as the constructor.
   */
  static async create(options: RuntimeOptions): Promise<Runtime> {
    const { config } = options;
    if (options.modelStore || config.store === undefined) return new Runtime(options);
    const log = loggerOf(options);
    // loaded only here: the etcd client takes half a second to load
    const { EtcdModelStore } = await import('../model/etcd-store');
    const endpoints = parseEtcdUrl(config.store) as string[];
    const store = await EtcdModelStore.open(endpoints, { hypervisors: config.hypervisors, log });
    let mastership: EtcdMastership | undefined;
    try {
      if (config.zone !== undefined && !options.mastership) {
        const { EtcdMastership } = await import('./etcd-mastership');
        mastership = await EtcdMastership.start(endpoints, store, {
          controllerId: config.controllerId ?? `${hostname()}:${process.pid}`,
          zone: config.zone,
          leaseTtlS: config.election?.leaseTtl,
          preemptDelayMs: config.election?.preemptDelay === undefined ? undefined : config.election.preemptDelay * 1000,
          log,
        });
      }
      return new Runtime({ ...options, logger: log, logBindings: undefined }, store, mastership);
    } catch (e) {
      await mastership?.close();
      await store.close();
      throw e;
    }
  }

  constructor(
    private readonly options: RuntimeOptions,
    openedStore?: ModelStore & { close(): Promise<void> },
    openedMastership?: Mastership & { close(): Promise<void> },
  ) {
    const { config } = options;
    this.log = loggerOf(options);
    this.controller = new Controller({ ...config.controller, ...options.controller, logger: this.log });
    if (config.store !== undefined && !options.modelStore && !openedStore) throw new AppWiringError(`the model store ${config.store} is opened by Runtime.create`);
    this.ownedMastership = openedMastership;
    this.ownedStore = openedStore ?? (options.modelStore || config.model === undefined ? undefined : new FileModelStore(config.model, { hypervisors: config.hypervisors, maxBytes: config.modelMaxBytes }).watch());
    this.modelStore = options.modelStore ?? this.ownedStore;
    try {
      const container = new Container({ defaultScope: 'Singleton', autobind: true }); // helper classes resolve without ceremony
      container.bind(Controller).toConstantValue(this.controller);
      container.bind(DesiredState).toConstantValue(this.desired);
      container.bind(LOGGER).toConstantValue(this.log);
      container.bind(APP_SETTINGS).toConstantValue(config.settings);
      container.bind(APP_SETTINGS_CHANGES).toConstantValue(options.settingsChanges ?? NEVER);
      if (this.modelStore) container.bind(MODEL_STORE).toConstantValue(this.modelStore);
      options.bindServices?.(container);
      // tests may bring their own port numbers; otherwise the switches say
      if (!container.isBound(PORT_PLACEMENT)) container.bind(PORT_PLACEMENT).toConstantValue(new SwitchPortPlacement(this.controller));
      // the apps' ovs-vsctl (tunnel and BFD ports); tests may bring their own
      if (!container.isBound(VSCTL)) container.bind(VSCTL).toConstantValue(new ExecVsctl());
      this.container = container;

      this.apps = this.resolveApps(config.apps);
      this.ownedApps = new Set([PIPELINE_APP_ID, ...this.apps.map((a) => a.appId)]);
      try {
        // stage order, then the config's app order, then each app's declaration order
        this.pipeline = new Pipeline(this.apps.flatMap((a) => a.tables));
        this.missFlows = tableMissFlows(this.pipeline);
      } catch (e) {
        throw new AppWiringError(`the enabled apps' tables do not form a pipeline: ${(e as Error).message}`, {}, { cause: e });
      }
      container.bind(Pipeline).toConstantValue(this.pipeline);
      const mastership = options.mastership ?? openedMastership ?? new StaticMastership(config.generationId === undefined ? undefined : BigInt(config.generationId));
      this.roles = new RoleCoordinator(this.controller, mastership, this.log);
      this.reconciler = new Reconciler(this.controller, this.desired, { ...options.reconciler, ownedApps: this.ownedApps, log: this.log, gate: this.roles });
      container.bind(Reconciler).toConstantValue(this.reconciler);
      this.metrics =
        config.metrics === undefined && config.http === undefined
          ? undefined
          : new RuntimeMetrics(
              {
                controller: this.controller,
                reconciler: this.reconciler,
                desired: this.desired,
                modelStore: this.modelStore,
                pipeline: this.pipeline,
                apps: this.apps,
                log: this.log,
                tunnelHealth: this.tunnelHealth(),
                backendHealth: this.backendHealth(),
              },
              { ...options.metrics, pollIntervalMs: this.pollIntervalMs },
            );
    } catch (e) {
      // a watched model file or an etcd watch would keep the process alive
      void this.ownedStore?.close();
      throw e;
    }
  }

  private resolveApps(refs: readonly AppRef[]): ZonemeshApp[] {
    const { registry } = this.options;
    const reserved = this.options.reservedAppIds ?? new Map<number, string>();
    const names = refs.filter((r): r is string => typeof r === 'string');
    // An app injecting an app that is not enabled must fail, not get an instance that never starts.
    for (const [name, cls] of Object.entries(registry)) {
      if (names.includes(name)) continue;
      this.container.bind(cls).toDynamicValue(() => {
        throw new AppWiringError(`app '${name}' is not enabled`);
      });
    }
    const classes = refs.map((ref) => {
      const cls = typeof ref === 'string' ? registry[ref] : loadAppModule(ref.module);
      if (!cls) throw new AppWiringError(`no app named '${ref}' (known: ${Object.keys(registry).sort().join(', ')}; others load with --app PATH|PACKAGE)`);
      this.container.bind(cls).toSelf();
      this.container.bind(APP).toService(cls);
      return cls;
    });
    /** a module's problems are AppLoadErrors naming the module; a built-in app's, AppWiringErrors */
    const refused = (ref: AppRef, problem: string, cause?: unknown): Error =>
      typeof ref === 'string' ? new AppWiringError(problem, { app: ref }, { cause }) : new AppLoadError(ref.module, problem, { cause });
    const apps = classes.map((cls, i) => {
      try {
        return this.container.get<ZonemeshApp>(cls);
      } catch (e) {
        throw refused(refs[i]!, `cannot be constructed: ${(e as Error).message}`, e);
      }
    });
    const byId = new Map<number, string>();
    const byName = new Set<string>();
    apps.forEach((app, i) => {
      const ref = refs[i]!;
      const shape = appShapeProblem(app);
      if (shape) throw refused(ref, shape);
      if (typeof ref === 'string' && app.name !== ref) throw refused(ref, `registered as '${ref}' but calls itself '${app.name}'`);
      if (typeof ref !== 'string' && registry[app.name]) throw refused(ref, `its name '${app.name}' is a built-in app's`);
      if (byName.has(app.name)) throw refused(ref, `its name '${app.name}' is another enabled app's`);
      byName.add(app.name);
      if (!Number.isInteger(app.appId) || app.appId < MIN_APP_ID || app.appId > MAX_APP_ID) {
        throw refused(ref, `app id ${app.appId} outside ${MIN_APP_ID}..${MAX_APP_ID}`);
      }
      const builtin = reserved.get(app.appId);
      if (typeof ref !== 'string' && builtin !== undefined) throw refused(ref, `app id ${app.appId} is the built-in app ${builtin}'s; choose another (built-in ids: ${[...reserved.keys()].sort((a, b) => a - b).join(', ')})`);
      const clash = byId.get(app.appId);
      if (clash) throw refused(ref, `app id ${app.appId} is also ${clash}'s; cookies would mix`);
      byId.set(app.appId, app.name);
    });
    return apps;
  }

  /** Starts the apps, then listens, dials and opens the control endpoint the config names. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`runtime already ${this.state}`);
    this.state = 'started';
    // Our last line of defence: an error nothing handled ends that subscription but never the process.
    watchUnhandledErrors(this);

    this.roles.start(); // before the reconciler: a switch-up opens an EQUAL switch's gate first
    this.reconciler.start();
    this.metrics?.start();
    // every model version and every refused edit is logged: a refused one changes nothing else
    this.modelStore?.model$.pipe(takeUntil(this.stoppedSubject)).subscribe((model) => this.log.info({ model: modelSize(model) }, 'model applied'));
    this.modelStore?.rejected$.pipe(takeUntil(this.stoppedSubject)).subscribe((e) => {
      this.log.error({ source: e.source, problems: e.issues.map((i) => `${i.path}: ${i.problem}`) }, 'model change refused; the running model stays');
    });
    const missFlows = this.missFlows;
    if (missFlows.length) this.controller.switchUp$.subscribe((e) => this.desired.set(e.dpid, missFlows[0]!.cookie, missFlows));
    const stopped$ = this.stoppedSubject.asObservable();
    const portNumbers = this.container.get<PortPlacement>(PORT_PLACEMENT).placement$;
    const host: ContextHost = {
      pipeline: this.pipeline,
      events: this.events(),
      desired: this.desired,
      stopped$,
      ...(this.modelStore && { model: new StoreModelAccess(this.modelStore) }),
      placement: new ModelPlacement(this.modelStore?.model$ ?? of(EMPTY_MODEL), portNumbers, stopped$),
      logLimiter: this.controller.config.logLimiter,
      session: (dpid) => this.controller.session(dpid),
      settled: (dpid) => this.reconciler.settled(dpid),
      writable: (dpid, session) => this.roles.writable(dpid, session),
      handlerFailed: (error) => {
        // a bug in an app, so with its stack; but it may throw for every packet-in
        const fields = { err: error.cause, app: error.app, dpid: error.dpid === undefined ? undefined : formatDpid(error.dpid), event: error.event };
        this.controller.config.logLimiter.log(this.log, 'error', error.dpid ?? 'no switch', `handler of app ${error.app} threw`, fields, error.message);
        this.handlerErrors.next(error);
      },
    };
    for (const app of this.apps) {
      try {
        app.start(new RuntimeAppContext(app, this.log.child({ app: app.name }), host));
      } catch (e) {
        await this.stop();
        throw new AppStartError(app.name, e);
      }
    }
    this.log.info({ apps: this.apps.map((a) => `${a.name}#${a.appId}`), tables: this.pipeline.tables.length }, 'apps started');
    this.log.debug(`pipeline:\n${this.pipeline.describe()}`);

    const { config } = this.options;
    if (this.metrics && config.http) {
      // before any switch connects: the page sees every session from its start
      const { controller, desired, reconciler, modelStore } = this;
      this.topology = new TopologyView({ switches: controller, desired, synced$: reconciler.synced$, stats$: this.metrics.stats$, modelStore, tunnelHealth: this.tunnelHealth(), pollIntervalMs: this.pollIntervalMs });
      this.topology.start();
    }
    for (const spec of config.listen) this.listeners.push(await this.controller.listen(spec));
    for (const target of config.dial) this.controller.dial(target);
    if (config.control !== undefined) {
      this.control = await ControlServer.listen(config.control, this.controlSource, this.log);
    }
    if (this.metrics && config.metrics) {
      const address = parseMetricsAddress(config.metrics.listen);
      if (typeof address === 'string') throw new MetricsServerError(`metrics: ${address}`);
      this.metricsServer = await MetricsServer.listen(address, this.metrics.registry, this.log);
    }
    if (this.topology) {
      const address = parseMetricsAddress(config.http!.listen);
      if (typeof address === 'string') throw new PageServerError(`http: ${address}`);
      this.pageServer = await PageServer.listen(address, this.topology, this.log, this.options.page);
    }
  }

  /** One stats poll feeds the metrics and the page: at the shorter of the intervals they ask for. */
  get pollIntervalMs(): number {
    const { metrics, http } = this.options.config;
    const asked = [metrics?.pollIntervalMs, http?.pollIntervalMs].filter((ms): ms is number => ms !== undefined);
    return asked.length ? Math.min(...asked) : DEFAULT_POLL_INTERVAL_MS;
  }

  /** The tunnel monitor's health when an app binds it; a binding that fails to resolve leaves the page and metrics without it. */
  private tunnelHealth(): TunnelHealthSource | undefined {
    return this.boundSource<TunnelHealthSource>(TUNNEL_HEALTH, 'no tunnel health to show: the page shows every tunnel as unknown');
  }

  /** The load-balancer backends' health when an app binds it, for the metrics. */
  private backendHealth(): BackendHealthSource | undefined {
    return this.boundSource<BackendHealthSource>(BACKEND_HEALTH, 'no backend health to show in the metrics');
  }

  private boundSource<T>(token: symbol, unresolved: string): T | undefined {
    if (!this.container.isBound(token)) return undefined;
    try {
      return this.container.get<T>(token);
    } catch (e) {
      this.log.info({ reason: (e as Error).message }, unresolved);
      return undefined;
    }
  }

  /** what the control endpoint reads (a cluster worker answers its primary from it) */
  get controlSource(): ControlSource {
    return { switches: this.controller.switches, desired: this.desired, pipeline: this.pipeline, ownedApps: this.ownedApps, roles: this.roles, model: () => this.modelStore?.current() };
  }

  /** the port `start()` serves metrics on (the one picked, for port 0) */
  get metricsPort(): number | undefined {
    return this.metricsServer?.port;
  }

  /** the live page `start()` serves (its `port` is the one picked, for port 0) */
  get page(): PageServer | undefined {
    return this.pageServer;
  }

  /** the listeners `start()` opened, in config order (their `port` after listening on port 0) */
  get listening(): readonly Listener[] {
    return this.listeners;
  }

  /** Stops apps, closes listeners and sessions. Switches keep their flows (fail_mode=secure). */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.stoppedSubject.next();
    this.stoppedSubject.complete();
    this.reconciler.stop();
    this.roles.stop();
    // revokes our lease: another controller takes over at once, not after the lease TTL
    await this.ownedMastership?.close();
    await this.control?.close();
    await this.metricsServer?.close();
    await this.pageServer?.close();
    this.topology?.stop();
    this.metrics?.stop();
    await this.controller.close();
    await this.ownedStore?.close();
    this.handlerErrors.complete();
    unwatchUnhandledErrors(this);
    this.log.info('stopped');
  }

  private events(): AppEvents {
    const c = this.controller;
    const { logLimiter } = c.config;
    // one PacketIn per message, shared by every app that subscribes
    const packetIn$ = c.packetIn$.pipe(
      map((e) => PacketIn.from(e) ?? logLimiter.log(this.log, 'warn', e.dpid, 'PACKET_IN without in_port dropped', { dpid: formatDpid(e.dpid) })),
      filter((p): p is PacketIn => p !== undefined),
      share(),
    );
    return { switchUp$: c.switchUp$, switchDown$: c.switchDown$, packetIn$, portStatus$: c.portStatus$, flowRemoved$: c.flowRemoved$ };
  }
}
