import cluster from 'node:cluster';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { Subject } from 'rxjs';
import { APP_REGISTRY, BUILTIN_APPS } from '../apps/registry';
import { createLogger, socketIsLive } from '../controller';
import {
  ControlSocketError,
  DEFAULT_LISTEN,
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
import { CliError, EXIT, UsageError, type Command } from './command';
import { WORKER_ENV, runPrimary, runWorker } from './workers';

/** Where `run` opens its control endpoint and `flows` looks for it, unless told otherwise. */
export const DEFAULT_CONTROL_PATH = join(defaultControlDir(), 'control.sock');

/** 'unix:PATH' or a bare path */
export function controlPath(text: string): string {
  return text.startsWith('unix:') ? text.slice(5) : text;
}

export const runCommand: Command = {
  usage:
    'run [--config FILE] [--apps A,B,...] [--app PATH|PACKAGE ...] [--listen [tcp:]HOST:PORT|tls:HOST:PORT|unix:PATH ...] [--tls-key FILE --tls-cert FILE [--tls-ca FILE]] ' +
    '[--dial unix:PATH|tcp:HOST:PORT ...] [--model FILE | --store etcd://HOST:PORT[,...]] [--model-max-bytes N|NMiB] [--control unix:PATH] [--log-level LEVEL] [--workers N] [--packet-in-rate N] [--metrics HOST:PORT] [--zone NAME [--controller-id ID]]',
  summary:
    `runs the controller with the apps named (known: ${Object.keys(APP_REGISTRY).join(', ')}) and the apps --app loads (a file or npm package whose default export is the app class; docs/writing-apps.md); JSON logs on stdout; SIGINT/SIGTERM stop it, switches keep their flows; edits of the --config file's settings apply live. ` +
    'A tls: listener presents --tls-cert (PEM, with its --tls-key); with --tls-ca it accepts only switches whose certificate that CA signed, without it any switch (encrypted, not authenticated). ' +
    `--workers N (1..${MAX_WORKERS}, default 1) spreads the switches over N processes by connection (dial targets round-robin); each app instance sees only its own worker's switches, ` +
    'so an app that correlates events across switches must run with 1; model-driven apps are fine (every worker loads the model); a worker that dies is started again. ' +
    '--packet-in-rate N: PACKET_INs per second taken from each switch (default 10000; the excess is dropped); the other limits are in the config file\'s controller section. ' +
    '--metrics HOST:PORT serves Prometheus metrics at /metrics (docs/metrics.md; the poll interval is the config file\'s metrics.pollIntervalMs); it needs --workers 1. ' +
    '--zone NAME (with --store etcd://): joins the mastership election in etcd as --controller-id (default hostname:pid); one controller is master of each zone\'s switches, preferably one of that zone (docs/mastership.md)',
  run: async (args) => {
    if (cluster.isWorker && process.env[WORKER_ENV] !== undefined) return runWorker();
    const { config: wanted, explicitControl, file, load } = runConfig(args);
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
      try {
        return await runPrimary({ config, args, log, settingsChanges });
      } finally {
        watched?.close();
      }
    }
    let runtime: Runtime;
    try {
      runtime = await Runtime.create({ config, ...BUILTIN_APPS, settingsChanges });
    } catch (e) {
      throw new CliError((e as Error).message);
    }
    const watched = file === undefined ? undefined : new RunConfigFile(file, load);
    const stopped = new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        runtime.log.info({ signal }, 'stopping');
        watched?.close();
        void runtime.stop().then(resolve);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    if (defaultTaken) runtime.log.warn({ control: wanted.control }, 'the default control socket is in use; running without a control endpoint');
    try {
      await runtime.start();
    } catch (e) {
      await runtime.stop();
      throw new CliError((e as Error).message);
    }
    runtime.log.info({ listen: runtime.listening.map((l) => l.port ?? l.spec), dial: config.dial, control: config.control }, 'running');
    if (watched) watchSettings(watched, wanted, settingsChanges, runtime.log);
    await stopped;
    return EXIT.ok;
  },
};

/** What a running controller takes from an edited config file: the settings. The rest takes a restart. */
const RESTART_KEYS = ['apps', 'listen', 'tls', 'dial', 'model', 'store', 'modelMaxBytes', 'hypervisors', 'control', 'logLevel', 'workers', 'controller', 'generationId', 'metrics', 'zone', 'controllerId', 'election'] as const;

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

/** The config of `run ARGS`: the --config file (or the defaults) with the flags over it. Exported for tests. */
export function runConfig(args: string[]): { config: RunConfig; explicitControl: boolean; file?: string; load: (text: string, file: string) => RunConfig } {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        apps: { type: 'string', multiple: true },
        app: { type: 'string', multiple: true },
        listen: { type: 'string', multiple: true },
        'tls-key': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-ca': { type: 'string' },
        dial: { type: 'string', multiple: true },
        model: { type: 'string' },
        'model-max-bytes': { type: 'string' },
        store: { type: 'string' },
        control: { type: 'string' },
        'log-level': { type: 'string' },
        workers: { type: 'string' },
        'packet-in-rate': { type: 'string' },
        metrics: { type: 'string' },
        zone: { type: 'string' },
        'controller-id': { type: 'string' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message.split('. ')[0]!);
  }
  const v = values;
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
      ...(v.zone !== undefined && { zone: flags.zone }),
      ...(v['controller-id'] !== undefined && { controllerId: flags.controllerId }),
      control: v.control ? controlPath(v.control) : (base.control ?? DEFAULT_CONTROL_PATH),
    };
    // listen and tls are checked together: name where they came from
    const source = file === undefined ? 'command line' : v.listen || flagsTls ? `${file} + command line` : file;
    return completeRunConfig(draft, source);
  };
  try {
    const base = v.config ? loadRunConfigDraft(v.config) : checkRunConfig({}, '(defaults)');
    const flags = checkRunConfig(
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
        ...(v.zone !== undefined && { zone: v.zone }),
        ...(v['controller-id'] !== undefined && { controllerId: v['controller-id'] }),
        ...(v['packet-in-rate'] !== undefined && { controller: { packetInRate: /^\d+$/.test(v['packet-in-rate']) ? Number(v['packet-in-rate']) : v['packet-in-rate'] } }),
      },
      'command line',
    );
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
