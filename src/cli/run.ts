import cluster from 'node:cluster';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Subject } from 'rxjs';
import { APP_REGISTRY, BUILTIN_APPS } from '../apps/registry';
import { createLogger, socketIsLive } from '../controller';
import { DEFAULT_MODEL_MAX_BYTES, parseEtcdUrl } from '../model';
import {
  ControlSocketError,
  DEFAULT_LISTEN,
  LOG_LEVELS,
  MAX_WORKERS,
  Runtime,
  RunConfigError,
  RunConfigFile,
  checkRunConfig,
  completeRunConfig,
  defaultControlDir,
  loadRunConfigDraft,
  parseRunConfigDraft,
  prepareControlDir,
  type RunConfig,
  type RunConfigDraft,
} from '../runtime';
import type { AppSettings } from '../sdk';
import { RUN_API_OPTIONS, apiServing, serveApi, type ApiServing, type ServedApi } from './api';
import { CliError, EXIT, UsageError, defineCommand, parseCommandLine, type OptionValues } from './command';
import { WORKER_ENV, runPrimary, runWorker } from './workers';

/** Where `run` opens its control endpoint and `flows` looks for it, unless told otherwise. */
export const DEFAULT_CONTROL_PATH = join(defaultControlDir(), 'control.sock');

/** 'unix:PATH' or a bare path */
export function controlPath(text: string): string {
  return text.startsWith('unix:') ? text.slice(5) : text;
}

const RUN_OPTIONS = [
  { name: 'config', value: 'FILE', description: "a run config file (YAML or JSON); each flag replaces its key; edits of its settings apply live", default: 'none' },
  { name: 'apps', value: 'A,B', repeatable: true, description: `built-in apps to run (known: ${Object.keys(APP_REGISTRY).join(', ')})`, default: 'none' },
  { name: 'app', value: 'PATH|PACKAGE', repeatable: true, description: 'an app to load: a file or npm package whose default export is the app class (docs/writing-apps.md)', default: 'none' },
  { name: 'listen', value: 'TARGET', repeatable: true, description: 'where switches connect: [tcp:]HOST:PORT, tls:HOST:PORT or unix:PATH', default: `tcp::${DEFAULT_LISTEN.port} unless --dial` },
  { name: 'tls-key', value: 'FILE', description: "the PEM key of --tls-cert, for the tls: listeners", default: 'none' },
  { name: 'tls-cert', value: 'FILE', description: 'the PEM certificate a tls: listener presents', default: 'none' },
  { name: 'tls-ca', value: 'FILE', description: 'a PEM CA: a tls: listener accepts only switches whose certificate it signed (without it any switch: encrypted, not authenticated)', default: 'none' },
  { name: 'dial', value: 'unix:PATH|tcp:HOST:PORT', repeatable: true, description: 'a switch to connect to', default: 'none' },
  { name: 'model', value: 'FILE', description: 'the network model (YAML or JSON) the model-driven apps serve', default: 'none' },
  { name: 'store', value: 'etcd://HOST:PORT[,...]', description: 'the etcd cluster holding the model, instead of --model (docs/etcd-store.md)', default: 'none' },
  { name: 'model-max-bytes', value: 'N|NMiB', description: 'the largest model read', default: `${DEFAULT_MODEL_MAX_BYTES / 1024 / 1024}MiB` },
  { name: 'control', value: 'unix:PATH', description: "the control socket 'zonemesh flows' asks", default: DEFAULT_CONTROL_PATH },
  { name: 'log-level', value: 'LEVEL', description: `one of ${LOG_LEVELS.join(', ')}`, default: 'info' },
  { name: 'workers', value: 'N', description: `processes sharing the switches by connection, 1..${MAX_WORKERS}; an app that correlates events across switches needs 1`, default: '1' },
  { name: 'packet-in-rate', value: 'N', description: "PACKET_INs per second taken from each switch; the excess is dropped (other limits: the config file's controller section)", default: '10000' },
  { name: 'metrics', value: 'HOST:PORT', description: 'serves Prometheus metrics at /metrics (docs/metrics.md); needs --workers 1', default: 'none' },
  { name: 'http', value: 'HOST:PORT', description: 'serves the live topology page at / (docs/live-page.md); needs --workers 1', default: 'none' },
  { name: 'zone', value: 'NAME', description: 'with --store: joins the election of a master per zone in etcd (docs/mastership.md)', default: 'none' },
  { name: 'controller-id', value: 'ID', description: 'this controller in the --zone election', default: 'hostname:pid' },
  { name: 'api', value: 'HOST:PORT', description: "with --store: serves the REST API on the model (docs/api.md) in this process, as 'zonemesh api --listen' does", default: 'none' },
  ...RUN_API_OPTIONS,
] as const;

export const runCommand = defineCommand({
  name: 'run',
  summary: 'runs the controller with the apps named',
  description:
    'Runs the controller with the apps --apps names and those --app loads; logs JSON on stdout. SIGINT/SIGTERM stop it; switches keep their flows. ' +
    'With --workers N each app instance sees only its own worker\'s switches; model-driven apps are fine (every worker loads the model); a worker that dies is started again.',
  options: RUN_OPTIONS,
  positionals: false,
  exits: { ok: 'stopped by SIGINT or SIGTERM', failed: 'the config is invalid, or the controller could not start' },
  run: async ({ values, args }) => {
    if (cluster.isWorker && process.env[WORKER_ENV] !== undefined) return runWorker();
    const { config: wanted, explicitControl, file, load } = runConfigOf(values);
    const api = apiOf(values, wanted);
    const control = wanted.control!;
    try {
      prepareControlDir(control);
    } catch (e) {
      if (e instanceof ControlSocketError) throw new CliError(e.message);
      throw e;
    }
    // Another controller holds the control socket: refuse one we were given, run without the default.
    const defaultTaken = await socketIsLive(control);
    if (defaultTaken && explicitControl) throw new CliError(`the control socket ${control} is in use by another 'zonemesh run'; stop that one or choose another --control`);
    const config: RunConfig = defaultTaken ? { ...wanted, control: undefined } : wanted;
    const settingsChanges = new Subject<AppSettings>();
    if ((config.workers ?? 1) > 1) {
      const log = createLogger(config.logLevel).child({ role: 'primary' });
      if (defaultTaken) log.warn({ control: wanted.control }, 'the default control socket is in use; running without a control endpoint');
      const watched = file === undefined ? undefined : new RunConfigFile(file, load);
      if (watched) watchSettings(watched, wanted, settingsChanges, log);
      const served = api && (await serveApi(api.endpoints, api.serving, log, wanted.store!));
      try {
        return await runPrimary({ config, args, log, settingsChanges });
      } finally {
        watched?.close();
        await served?.close();
      }
    }
    let runtime: Runtime;
    try {
      runtime = await Runtime.create({ config, ...BUILTIN_APPS, settingsChanges });
    } catch (e) {
      throw new CliError((e as Error).message);
    }
    const watched = file === undefined ? undefined : new RunConfigFile(file, load);
    let served: ServedApi | undefined;
    const stopped = new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        runtime.log.info({ signal }, 'stopping');
        watched?.close();
        void Promise.all([served?.close(), runtime.stop()]).then(() => resolve());
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    if (defaultTaken) runtime.log.warn({ control: wanted.control }, 'the default control socket is in use; running without a control endpoint');
    try {
      await runtime.start();
      if (api) served = await serveApi(api.endpoints, api.serving, runtime.log, wanted.store!);
    } catch (e) {
      await runtime.stop();
      if (e instanceof UsageError || e instanceof CliError) throw e;
      throw new CliError((e as Error).message);
    }
    runtime.log.info({ listen: runtime.listening.map((l) => l.port ?? l.spec), dial: config.dial, control: config.control }, 'running');
    if (watched) watchSettings(watched, wanted, settingsChanges, runtime.log);
    await stopped;
    return EXIT.ok;
  },
});

/** The API `--api` asks for, checked (and its files read) before anything starts; undefined without --api. */
function apiOf(values: OptionValues<typeof RUN_OPTIONS>, config: RunConfig): { endpoints: string[]; serving: ApiServing } | undefined {
  const apiValues = { 'token-file': values['api-token-file'], 'tls-key': values['api-tls-key'], 'tls-cert': values['api-tls-cert'], 'tls-ca': values['api-tls-ca'] };
  if (values.api === undefined) {
    const stray = Object.entries(apiValues).filter(([, v]) => v !== undefined).map(([k]) => `--api-${k}`);
    if (stray.length) throw new UsageError(`${stray.join(', ')} without --api HOST:PORT`);
    return undefined;
  }
  const endpoints = config.store === undefined ? undefined : parseEtcdUrl(config.store);
  if (endpoints === undefined || typeof endpoints === 'string') throw new UsageError('--api serves the model in etcd: it needs --store etcd://HOST:PORT (or store: in the config file)');
  return { endpoints, serving: apiServing(values.api, apiValues, 'api-') };
}

/** What a running controller takes from an edited config file: the settings. The rest takes a restart. */
const RESTART_KEYS = ['apps', 'listen', 'tls', 'dial', 'model', 'store', 'modelMaxBytes', 'hypervisors', 'control', 'logLevel', 'workers', 'controller', 'generationId', 'metrics', 'http', 'zone', 'controllerId', 'election'] as const;

/**
 * Hands every edit of the config file's settings to the apps, and says what an edit cannot change.
 * `loaded` and each edit are the file completed with the command-line flags, as at startup.
 */
function watchSettings(file: RunConfigFile, loaded: RunConfig, changes: Subject<AppSettings>, log: Logger): void {
  let settings = JSON.stringify(loaded.settings);
  file.rejected$.subscribe((e) => log.error({ err: e, config: file.path }, 'config change rejected; running as before'));
  file.changes$.subscribe((next) => {
    const ignored = RESTART_KEYS.filter((k) => JSON.stringify(next[k]) !== JSON.stringify(loaded[k]));
    if (ignored.length) log.warn({ config: file.path, keys: ignored }, 'these config changes take a restart; ignored until then');
    const text = JSON.stringify(next.settings);
    if (text === settings) return;
    settings = text;
    log.info({ config: file.path }, 'settings changed; handing them to the apps');
    changes.next(next.settings);
  });
  file.watch();
}

type RunConfigOf = { config: RunConfig; explicitControl: boolean; file?: string; load: (text: string, file: string) => RunConfig };

/** The config of `run ARGS`: the --config file (or the defaults) with the flags over it. Exported for tests. */
export function runConfig(args: string[]): RunConfigOf {
  return runConfigOf(parseCommandLine(RUN_OPTIONS, args, false).values);
}

function runConfigOf(v: OptionValues<typeof RUN_OPTIONS>): RunConfigOf {
  const tlsFlags = { ...(v['tls-key'] !== undefined && { key: v['tls-key'] }), ...(v['tls-cert'] !== undefined && { cert: v['tls-cert'] }), ...(v['tls-ca'] !== undefined && { ca: v['tls-ca'] }) };
  const flagsTls = Object.keys(tlsFlags).length > 0;
  /** the file (or the defaults), with the flags over it: each flag replaces its key, each --tls-* flag its part of `tls` */
  const combine = (base: RunConfigDraft, flags: RunConfigDraft, file: string | undefined): RunConfig => {
    const listen = v.listen ? flags.listen : base.listen;
    const dial = v.dial ? flags.dial : base.dial;
    const tls = { ...base.tls, ...flags.tls };
    const draft: RunConfigDraft = {
      ...base,
      ...((v.apps || v.app) && { apps: flags.apps }),
      listen: listen.length === 0 && dial.length === 0 ? [DEFAULT_LISTEN] : listen,
      ...(Object.keys(tls).length > 0 && { tls }),
      dial,
      ...(v.model && { model: flags.model }),
      ...(v['model-max-bytes'] !== undefined && { modelMaxBytes: flags.modelMaxBytes }),
      ...(v.store && { store: flags.store }),
      ...(v['log-level'] && { logLevel: flags.logLevel }),
      ...(v.workers !== undefined && { workers: flags.workers }),
      ...(flags.controller && { controller: { ...base.controller, ...flags.controller } }),
      ...(flags.metrics && { metrics: { ...base.metrics, ...flags.metrics } }),
      ...(flags.http && { http: { ...base.http, ...flags.http } }),
      ...(v.zone !== undefined && { zone: flags.zone }),
      ...(v['controller-id'] !== undefined && { controllerId: flags.controllerId }),
      control: v.control ? controlPath(v.control) : (base.control ?? DEFAULT_CONTROL_PATH),
    };
    // listen and tls are checked together: name where they came from
    const source = file === undefined ? 'command line' : v.listen || flagsTls ? `${file} + command line` : file;
    return completeRunConfig(draft, source);
  };
  // each flag's value alone: a bad one is bad usage, named before any file is read
  const flags = asUsageError(() =>
    checkRunConfig(
      {
        // --apps and --app together replace the file's apps
        ...((v.apps || v.app) && { apps: [...(v.apps ?? []).flatMap((a) => a.split(',')).filter(Boolean), ...(v.app ?? []).map((module) => ({ module }))] }),
        ...(v.listen && { listen: v.listen }),
        ...(flagsTls && { tls: tlsFlags }),
        ...(v.dial && { dial: v.dial }),
        ...(v.model && { model: v.model }),
        ...(v['model-max-bytes'] !== undefined && { modelMaxBytes: v['model-max-bytes'] }),
        ...(v.store && { store: v.store }),
        ...(v['log-level'] && { logLevel: v['log-level'] }),
        // a number when it looks like one; validation names anything else
        ...(v.workers !== undefined && { workers: /^\d+$/.test(v.workers) ? Number(v.workers) : v.workers }),
        ...(v.metrics !== undefined && { metrics: { listen: v.metrics } }),
        ...(v.http !== undefined && { http: { listen: v.http } }),
        ...(v.zone !== undefined && { zone: v.zone }),
        ...(v['controller-id'] !== undefined && { controllerId: v['controller-id'] }),
        ...(v['packet-in-rate'] !== undefined && { controller: { packetInRate: /^\d+$/.test(v['packet-in-rate']) ? Number(v['packet-in-rate']) : v['packet-in-rate'] } }),
      },
      'command line',
    ),
  );
  try {
    const base = v.config ? loadRunConfigDraft(v.config) : checkRunConfig({}, '(defaults)');
    const config = combine(base, flags, v.config);
    return {
      config,
      explicitControl: v.control !== undefined || base.control !== undefined,
      ...(v.config && { file: v.config }),
      // an edited file, completed as at startup (the --tls-* files are read again too)
      load: (text, file) => combine(parseRunConfigDraft(text, file), flags, file),
    };
  } catch (e) {
    if (e instanceof RunConfigError) throw new CliError(e.message);
    throw e;
  }
}

function asUsageError<T>(check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof RunConfigError) throw new UsageError(e.message);
    throw e;
  }
}
