import { filter, firstValueFrom, take, timeout } from 'rxjs';
import { silentLogger } from '../controller';
import type { ModelStore } from '../model';
import { Runtime, type RuntimeOptions, type SyncReport } from '../runtime';
import type { AppSettings, ZonemeshApp } from '../sdk/app';
import type { Newable } from '../sdk/di';
import type { FakeSwitch } from './fake-switch';

export interface RunAppsOptions {
  /** app name → class, in table order within a stage */
  readonly apps: Readonly<Record<string, Newable<ZonemeshApp>>>;
  /** the run config's `settings` */
  readonly settings?: AppSettings;
  /** the model the apps see as `ctx.model` (a TestModelStore to change it during the test) */
  readonly model?: ModelStore;
  /** binds the services the apps inject (the built-in overlay apps need `bindAppServices`) */
  readonly bindServices?: RuntimeOptions['bindServices'];
}

/** Apps running in a real Runtime on a loopback port, for fake switches to connect to. */
export interface RunningApps {
  readonly runtime: Runtime;
  /** connects the switch and resolves with its first full sync's report (flows added, errors) */
  connect(sw: FakeSwitch, timeoutMs?: number): Promise<SyncReport>;
  stop(): Promise<void>;
}

/**
 * Starts `apps` in a Runtime as `zonemesh run` would, listening on 127.0.0.1 on a free port, with
 * the log silenced and flow changes sent as plain flow-mods (the fake switch speaks no bundles).
 */
export async function runApps(options: RunAppsOptions): Promise<RunningApps> {
  const runtime = new Runtime({
    config: { apps: Object.keys(options.apps), listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }], dial: [], logLevel: 'silent', settings: options.settings ?? {} },
    registry: options.apps,
    logger: silentLogger(),
    reconciler: { bundles: false },
    ...(options.model && { modelStore: options.model }),
    ...(options.bindServices && { bindServices: options.bindServices }),
  });
  await runtime.start();
  const port = runtime.listening[0]!.port!;
  return {
    runtime,
    async connect(sw, timeoutMs = 5_000) {
      const synced = firstValueFrom(runtime.reconciler.synced$.pipe(filter((r) => r.dpid === sw.dpid && r.kind === 'full'), take(1), timeout(timeoutMs)));
      await sw.connect({ transport: 'tcp', port });
      return synced;
    },
    stop: () => runtime.stop(),
  };
}
