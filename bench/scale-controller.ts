/**
 * One controller process of bench/scale.ts: a Runtime with the four overlay apps on the generated
 * model (bench/overlay-model.ts), held in memory and edited object by object as an incremental
 * store would (unchanged objects shared). With `--workers N` the bench forks N of these, and each
 * compiles the whole model and serves the switches dealt to it, as `zonemesh run --workers N` does.
 * With a second argument W (bench/scale.ts --lb) the model has load balancers
 * (bench/overlay-model.ts withLoadBalancers, the wide VPC on W hypervisors), the load-balancer app
 * runs too, and the bench marks backends down and up on BACKEND_HEALTH as lb-health would.
 * The bench asks over the IPC channel (advanced serialization: bigints pass); times are
 * `performance.timeOrigin + performance.now()`, comparable between processes to a few milliseconds
 * (each process reads its origin at its start): an add is timed within the controller process.
 */
import { performance } from 'node:perf_hooks';
import { filter, firstValueFrom } from 'rxjs';
import { BUILTIN_APPS } from '../src/apps/registry';
import type { BackendHealthBoard } from '../src/apps/lb-health';
import { silentLogger } from '../src/controller';
import type { NetworkModel, VmPort } from '../src/model';
import { Runtime } from '../src/runtime';
import { ReconcileError } from '../src/runtime/reconciler';
import { BACKEND_HEALTH, type BackendHealth } from '../src/sdk/backend-health';
import { PORT_PLACEMENT, type PortPlacement } from '../src/sdk/placement';
import { TestModelStore } from '../src/testing/model-store';
import { generate, withLoadBalancers } from './overlay-model';

export type ControllerRequest =
  /** adds a port to the model; answers once every changed switch served here has barrier-replied its batch */
  | { op: 'add'; port: VmPort }
  /** publishes a backend's health as lb-health would; answers like `add` */
  | { op: 'health'; health: Pick<BackendHealth, 'vpc' | 'loadBalancer' | 'port' | 'state'> }
  /** answers once the interface is in this process's port placement, or not after ADD_TIMEOUT_MS */
  | { op: 'placed'; dpid: bigint; name: string }
  /** starts counting full syncs (connect, reconnect) afresh */
  | { op: 'mark-full' }
  /** answers once `count` full syncs have been reported since `mark-full` */
  | { op: 'expect-full'; count: number }
  | { op: 'memory' };

export type ControllerReply =
  | ({ op: 'add' } & Settled)
  | ({ op: 'health' } & Settled)
  | { op: 'placed'; ok: boolean }
  | { op: 'mark-full' }
  /** `count` below the one asked for: the syncs stalled */
  | { op: 'expect-full'; count: number; lastAt: number; sent: number; errors: number; failed: number; up?: number; controllerErrors?: Record<string, number> }
  | { op: 'memory'; rss: number; heapUsed: number };

/**
 * `ms` from the request's arrival to the last barrier reply of a switch the change touched, on this
 * process's clock (undefined: not within ADD_TIMEOUT_MS), and how many switches it touched
 */
export interface Settled {
  ms: number | undefined;
  switches: number;
}

export type ControllerHello = { op: 'ready'; ofPort: number; startMs: number };

/** how long one add may take before it counts as lost */
export const ADD_TIMEOUT_MS = 3_000;

/** how long full syncs may stop coming before `expect-full` answers with fewer than asked */
const STALL_MS = 60_000;

const now = () => performance.timeOrigin + performance.now();

async function main(): Promise<void> {
  const hypervisors = Number(process.argv[2]);
  const wideHosts = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
  const t0 = now();
  const generated = generate(hypervisors);
  let model: NetworkModel = wideHosts === undefined ? generated.model : withLoadBalancers(generated.model, generated.placement, wideHosts);
  const store = new TestModelStore(model);
  const runtime = await Runtime.create({
    config: { apps: ['tunnel-mesh', 'arp-responder', 'distributed-router', 'acl', ...(wideHosts === undefined ? [] : ['load-balancer'])], listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }], dial: [], logLevel: 'silent', settings: {} },
    ...BUILTIN_APPS,
    logger: silentLogger(),
    modelStore: store,
    reconciler: { bundles: false }, // the fake switch speaks no bundles
  });
  await runtime.start();
  const placement$ = (runtime.container.get(PORT_PLACEMENT) as PortPlacement).placement$;
  const health = runtime.container.get<BackendHealthBoard>(BACKEND_HEALTH);
  // as lb-health's start() does: the load balancer now takes the board's states
  health.active = true;

  // when each switch's desired flows last changed, and when its last incremental batch was acknowledged
  const changedAt = new Map<bigint, number>();
  const ackedAt = new Map<bigint, number>();
  runtime.desired.changes$.subscribe((c) => {
    if (runtime.controller.session(c.dpid)) changedAt.set(c.dpid, now());
  });
  let onAck: (() => void) | undefined;
  let full = { count: 0, lastAt: 0, sent: 0, errors: 0 };
  let onFull: (() => void) | undefined;
  runtime.reconciler.synced$.subscribe((r) => {
    if (r.kind === 'full') {
      full = { count: full.count + 1, lastAt: now(), sent: full.sent + r.deletes + r.modifies + r.adds, errors: full.errors + r.errors };
      onFull?.();
    } else {
      ackedAt.set(r.dpid, now());
      onAck?.();
    }
  });
  // a failed full sync is reported here, not on synced$: count them, and show the first
  let fullFailures = 0;
  runtime.reconciler.errors$.subscribe((e) => {
    if (!(e instanceof ReconcileError) || e.kind !== 'full' || e.flow !== undefined) return;
    if (fullFailures++ === 0) console.error(`  … first failed full sync: ${e.message}`);
  });
  // the controller's own errors (handshake timeouts, …) since mark-full, by name; the first of each shown
  let controllerErrors: Record<string, number> = {};
  runtime.controller.errors$.subscribe((e) => {
    if ((controllerErrors[e.name] = (controllerErrors[e.name] ?? 0) + 1) === 1) console.error(`  … first ${e.name}: ${e.message}`);
  });
  const allAcked = () => [...changedAt].every(([dpid, at]) => (ackedAt.get(dpid) ?? 0) >= at);

  /** makes a change; when every switch served here whose desired state it changed has barrier-replied, and how many those were */
  const timed = async (change: () => void): Promise<Settled> => {
    // timed here, on one clock: each process's performance.timeOrigin is read at its start, and
    // under load the processes' origins differ by milliseconds (add times came out negative)
    const received = now();
    changedAt.clear();
    const settled = new Promise<number | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), ADD_TIMEOUT_MS);
      onAck = () => {
        if (!allAcked()) return;
        clearTimeout(timer);
        resolve(Math.max(...[...changedAt.keys()].map((dpid) => ackedAt.get(dpid)!)));
      };
    });
    change();
    await new Promise((r) => setImmediate(r)); // the apps have compiled it: changedAt is complete
    if (changedAt.size === 0) return { ms: 0, switches: 0 };
    onAck!();
    const doneAt = await settled;
    onAck = undefined;
    return { ms: doneAt === undefined ? undefined : doneAt - received, switches: changedAt.size };
  };

  const handle = async (req: ControllerRequest): Promise<ControllerReply> => {
    switch (req.op) {
      case 'add':
        return {
          op: 'add',
          ...(await timed(() => {
            model = { ...model, ports: [...model.ports, req.port] };
            store.set(model);
          })),
        };
      case 'health':
        return { op: 'health', ...(await timed(() => health.publish({ ...req.health, reason: req.health.state === 'down' ? 'bench' : undefined, at: Date.now() }))) };
      case 'placed': {
        // a switch whose session went (a failed sync under load) never reports the interface
        const placed = firstValueFrom(placement$.pipe(filter((m) => m.get(req.dpid)?.has(req.name) === true))).then(() => true);
        let timer: NodeJS.Timeout | undefined;
        const ok = await Promise.race([placed, new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ADD_TIMEOUT_MS)))]);
        clearTimeout(timer);
        return { op: 'placed', ok };
      }
      case 'mark-full':
        full = { count: 0, lastAt: 0, sent: 0, errors: 0 };
        fullFailures = 0;
        controllerErrors = {};
        return { op: 'mark-full' };
      case 'expect-full': {
        // a full sync that fails reports an error, not a sync: give up once none has come for a while
        let stalled: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          onFull = () => {
            clearTimeout(stalled);
            if (full.count >= req.count) resolve();
            else stalled = setTimeout(resolve, STALL_MS);
          };
          onFull();
        });
        clearTimeout(stalled);
        onFull = undefined;
        return { op: 'expect-full', count: full.count, lastAt: full.lastAt, sent: full.sent, errors: full.errors, failed: fullFailures, up: runtime.controller.switches.size, controllerErrors };
      }
      case 'memory': {
        const m = process.memoryUsage();
        return { op: 'memory', rss: m.rss, heapUsed: m.heapUsed };
      }
    }
  };
  process.on('message', (req: ControllerRequest) => {
    handle(req).then(
      (reply) => process.send!(reply),
      (e: unknown) => {
        console.error(e);
        process.exit(1);
      },
    );
  });
  process.on('disconnect', () => void runtime.stop().finally(() => process.exit(0)));
  process.send!({ op: 'ready', ofPort: runtime.listening[0]!.port!, startMs: now() - t0 } satisfies ControllerHello);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
