import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Subject, type Observable } from 'rxjs';
import { BUILTIN_APPS } from '../apps/registry';
import { formatDpid, removeStaleSocket } from '../controller';
import type { AppSettings } from '../sdk';
import { ControlServer, Runtime, answerInstalled, checkControlRequest, formatListenTarget, localFlows, notConnected, parseDpid, type CheckedControlRequest, type AnyControlResponse, type ControlResponse, type InstalledResponse, type RunConfig, type SwitchFlows } from '../runtime';
import { CliError, EXIT } from './command';

/**
 * `zonemesh run --workers N`: one controller in N processes (node:cluster), sharded by switch.
 * The primary runs no apps. It forks the workers and hands each its config, owns the control
 * socket (asking every worker and merging their answers), forks a worker that died again, and stops
 * them all on SIGINT/SIGTERM. Each worker is an ordinary Runtime: node:cluster's primary accepts on
 * the listen addresses and hands each connection to one worker (round-robin), and worker k dials
 * only the dial targets i with i % N == k.
 */

/** Set in a worker's environment to its index: it makes a forked `zonemesh run` a worker. */
export const WORKER_ENV = 'ZONEMESH_WORKER';

const RESTART_DELAY_MS = 1_000;
const STOP_TIMEOUT_MS = 10_000;
const KILL_TIMEOUT_MS = 2_000;
/** below queryControl's 15 s, so the client gets our error rather than its own timeout */
const ANSWER_TIMEOUT_MS = 10_000;

/** Worker to primary, over the cluster IPC channel. */
type FromWorker =
  /** listening for messages: send the start message */
  | { zm: 'hello' }
  | { zm: 'ready' }
  /** could not start; it exits */
  | { zm: 'failed'; error: string }
  | { zm: 'answer'; id: number; reply: WorkerReply };

/** Primary to worker. */
type ToWorker =
  | { zm: 'start'; index: number; workers: number; config: RunConfig }
  /** the config file's settings were edited */
  | { zm: 'settings'; settings: AppSettings }
  /** a control request; dpid as formatDpid prints it (IPC carries JSON: no bigint) */
  | { zm: 'ask'; id: number; op: 'flows' | 'installed'; dpid?: string };

/** One worker's part of a control answer: its switches' flows, and which switches it has. */
export type WorkerReply =
  | { ok: true; switches: SwitchFlows[]; connected: string[] }
  | { ok: true; installed: Extract<InstalledResponse, { ok: true }> }
  | { ok: false; error: string };

/**
 * One response from the workers' replies. `flows` of all switches: concatenated in dpid order; a
 * failed or silent worker fails it, since the list would be silently incomplete. `flows` of one
 * dpid: the switch from the worker that has it; an error only when no worker had it.
 */
export function mergeFlows(dpid: bigint | undefined, replies: ReadonlyArray<{ worker: number; reply: WorkerReply }>): ControlResponse {
  const wanted = dpid === undefined ? undefined : formatDpid(dpid);
  const switches = replies
    .flatMap(({ reply }) => (reply.ok && 'switches' in reply ? reply.switches : []))
    .filter((s) => wanted === undefined || s.dpid === wanted)
    .sort((a, b) => a.dpid.localeCompare(b.dpid));
  if (dpid !== undefined && switches.length > 0) return { ok: true, switches };
  const failures = replies.flatMap(({ worker, reply }) => (reply.ok ? [] : [`worker ${worker}: ${reply.error}`]));
  if (failures.length) return { ok: false, error: `not every worker answered (${failures.join('; ')})` };
  if (dpid !== undefined) return { ok: false, error: notConnected(dpid, replies.flatMap(({ reply }) => (reply.ok && 'connected' in reply ? reply.connected : [])).sort()) };
  return { ok: true, switches };
}

/** One `installed` response from the workers' replies: every worker's switches (each has the model); a failed worker fails it. */
export function mergeInstalled(replies: ReadonlyArray<{ worker: number; reply: WorkerReply }>): InstalledResponse {
  const failures = replies.flatMap(({ worker, reply }) => (reply.ok ? [] : [`worker ${worker}: ${reply.error}`]));
  if (failures.length) return { ok: false, error: `not every worker answered (${failures.join('; ')})` };
  const parts = replies.flatMap(({ reply }) => (reply.ok && 'installed' in reply ? [reply.installed] : []));
  return { ok: true, model: parts[0]?.model ?? null, switches: parts.flatMap((p) => p.switches).sort((a, b) => a.dpid.localeCompare(b.dpid)) };
}

export interface PrimaryOptions {
  /** the resolved run config; `control` is the primary's socket (none when undefined) */
  config: RunConfig;
  /** the `run` arguments, given to workers too so that `ps` shows what they are */
  args: readonly string[];
  log: Logger;
  /** edits of the config file's settings, handed on to every worker */
  settingsChanges: Observable<AppSettings>;
}

/** Runs the primary until SIGINT/SIGTERM (EXIT.ok) or a worker that cannot start (CliError). */
export function runPrimary(options: PrimaryOptions): Promise<number> {
  return new Primary(options).run();
}

interface Slot {
  readonly index: number;
  worker?: Worker;
  /** the current worker said 'ready' */
  ready: boolean;
  restart?: NodeJS.Timeout;
}

class Primary {
  private readonly n: number;
  private readonly slots: Slot[];
  private readonly log: Logger;
  private settings: AppSettings;
  /** control requests waiting for a worker's answer, by request id */
  private readonly waiting = new Map<number, { index: number; done: (reply: WorkerReply) => void }>();
  private nextId = 0;
  private control: ControlServer | undefined;
  private running = false;
  private stopping: Promise<void> | undefined;
  /** why the cluster stops without a signal: a worker that could not start */
  private failure: string | undefined;
  private stopped: () => void = () => undefined;

  constructor(private readonly options: PrimaryOptions) {
    this.n = options.config.workers ?? 1;
    this.slots = Array.from({ length: this.n }, (_, index) => ({ index, ready: false }));
    this.log = options.log;
    this.settings = options.config.settings;
  }

  async run(): Promise<number> {
    const { config, args } = this.options;
    // Workers skip this check (their socket is ours, possibly live): see startListener.
    for (const spec of config.listen) {
      if (spec.transport !== 'unix') continue;
      try {
        await removeStaleSocket(spec.path);
      } catch (e) {
        throw new CliError((e as Error).message);
      }
    }
    if (config.control !== undefined) {
      try {
        this.control = await ControlServer.serve(config.control, (request) => this.answer(request), this.log);
      } catch (e) {
        throw new CliError(`cannot open the control socket ${config.control}: ${(e as Error).message}`);
      }
    }
    const stop = (signal: NodeJS.Signals) => void this.stop(signal);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const settings = this.options.settingsChanges.subscribe((s) => {
      this.settings = s;
      for (const slot of this.slots) if (slot.worker) this.send(slot.worker, { zm: 'settings', settings: s });
    });
    cluster.setupPrimary({ exec: join(__dirname, 'main.js'), args: ['run', ...args] });
    for (const slot of this.slots) this.fork(slot);
    await new Promise<void>((resolve) => (this.stopped = resolve));
    settings.unsubscribe();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    if (this.failure !== undefined) throw new CliError(this.failure);
    return EXIT.ok;
  }

  private fork(slot: Slot): void {
    slot.ready = false;
    const worker = cluster.fork({ [WORKER_ENV]: String(slot.index) });
    slot.worker = worker;
    this.log.info({ worker: slot.index, workerPid: worker.process.pid }, 'worker started');
    worker.on('message', (m: FromWorker) => this.onMessage(slot, worker, m));
    worker.on('exit', (code: number | null, signal: NodeJS.Signals | null) => this.onExit(slot, worker, code, signal));
    worker.on('error', (e: Error) => this.log.warn({ err: e, worker: slot.index }, 'worker channel error'));
  }

  private onMessage(slot: Slot, worker: Worker, m: FromWorker): void {
    switch (m.zm) {
      case 'hello':
        if (this.stopping || slot.worker !== worker) return;
        this.send(worker, { zm: 'start', index: slot.index, workers: this.n, config: this.workerConfig(slot.index) });
        return;
      case 'ready':
        if (this.stopping || slot.worker !== worker) return;
        slot.ready = true;
        if (this.running) {
          this.log.info({ worker: slot.index, workerPid: worker.process.pid }, 'worker running again');
        } else if (this.slots.every((s) => s.ready)) {
          this.running = true;
          const { listen, dial, control } = this.options.config;
          // targets, not specs: a TLS spec holds the private key
          this.log.info({ workers: this.n, workerPids: this.slots.map((s) => s.worker?.process.pid), listen: listen.map(formatListenTarget), dial, control }, 'running');
        }
        return;
      case 'failed':
        this.fail(`worker ${slot.index}: ${m.error}`);
        return;
      case 'answer':
        this.waiting.get(m.id)?.done(m.reply);
        return;
    }
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.worker !== worker) return;
    const wasReady = slot.ready;
    slot.worker = undefined;
    slot.ready = false;
    for (const w of [...this.waiting.values()]) if (w.index === slot.index) w.done({ ok: false, error: 'exited before it answered' });
    if (this.stopping) return void this.log.info({ worker: slot.index, workerPid: worker.process.pid, code, signal }, 'worker stopped');
    if (!wasReady) {
      // A worker that never ran would fail again the same way: stop rather than loop. Its
      // 'failed' message, saying why, may still be in the channel; it arrives before 'disconnect'.
      const reason = `worker ${slot.index} exited (${signal ?? `code ${code}`}) before it was running`;
      if (worker.isConnected()) worker.once('disconnect', () => this.fail(reason));
      else this.fail(reason);
      return;
    }
    this.log.error({ worker: slot.index, workerPid: worker.process.pid, code, signal }, 'worker exited unexpectedly; starting it again');
    slot.restart = setTimeout(() => {
      slot.restart = undefined;
      if (!this.stopping) this.fork(slot);
    }, RESTART_DELAY_MS);
  }

  /** The config of worker k: only its share of the dial targets, no control socket of its own. */
  private workerConfig(index: number): RunConfig {
    const { control: _control, workers: _workers, ...config } = this.options.config;
    return { ...config, dial: config.dial.filter((_, i) => i % this.n === index), settings: this.settings };
  }

  private fail(reason: string): void {
    if (this.failure !== undefined || this.stopping) return;
    this.failure = reason;
    this.log.error({ reason }, 'a worker could not start; stopping every worker');
    void this.stop();
  }

  /** Forwards the signal to every worker, waits for them (SIGKILL after STOP_TIMEOUT_MS), closes the control socket. */
  private stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info({ signal }, 'stopping');
      for (const slot of this.slots) clearTimeout(slot.restart);
      const alive = () => this.slots.flatMap((s) => (s.worker && s.worker.process.exitCode === null && s.worker.process.signalCode === null ? [s.worker] : []));
      const exits = (workers: Worker[], ms: number) => Promise.race([Promise.all(workers.map((w) => once(w, 'exit'))), new Promise((r) => setTimeout(r, ms).unref())]);
      for (const w of alive()) w.process.kill(signal);
      await exits(alive(), STOP_TIMEOUT_MS);
      const stuck = alive();
      if (stuck.length) {
        this.log.warn({ workerPids: stuck.map((w) => w.process.pid), ms: STOP_TIMEOUT_MS }, 'workers still running; killing them');
        for (const w of stuck) w.process.kill('SIGKILL');
        await exits(stuck, KILL_TIMEOUT_MS);
      }
      await this.control?.close();
      this.log.info('stopped');
      this.stopped();
    })();
    return this.stopping;
  }

  private async answer(request: unknown): Promise<AnyControlResponse> {
    const req = checkControlRequest(request);
    if (typeof req === 'string') return { ok: false, error: req };
    if (req.op === 'packet-out') return { ok: false, error: 'packet-out (zonemesh trace --live) needs --workers 1' };
    // A worker that is not running has no switches: its connections died with it.
    const asked = this.slots.filter((s) => s.ready && s.worker);
    const replies = asked.map(async (s) => ({ worker: s.index, reply: await this.ask(s.index, s.worker!, req) }));
    switch (req.op) {
      case 'flows': {
        // One switch: the worker that has it answers, without waiting for a silent other one.
        const found = req.dpid === undefined ? [] : replies.map((p) => p.then((r) => (r.reply.ok && 'switches' in r.reply && r.reply.switches.length ? [r] : new Promise<never>(() => undefined))));
        return mergeFlows(req.dpid, await Promise.race([Promise.all(replies), ...found]));
      }
      case 'installed':
        return mergeInstalled(await Promise.all(replies));
    }
  }

  private ask(index: number, worker: Worker, req: Exclude<CheckedControlRequest, { op: 'packet-out' }>): Promise<WorkerReply> {
    const id = ++this.nextId;
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (reply: WorkerReply) => {
        clearTimeout(timer);
        if (this.waiting.delete(id)) resolve(reply);
      };
      this.waiting.set(id, { index, done });
      timer = setTimeout(() => done({ ok: false, error: `no answer within ${ANSWER_TIMEOUT_MS} ms` }), ANSWER_TIMEOUT_MS);
      const message: ToWorker = { zm: 'ask', id, op: req.op, ...(req.op === 'flows' && req.dpid !== undefined && { dpid: formatDpid(req.dpid) }) };
      this.send(worker, message, (e) => done({ ok: false, error: `cannot ask it: ${e.message}` }));
    });
  }

  private send(worker: Worker, message: ToWorker, failed?: (e: Error) => void): void {
    if (!worker.isConnected()) return failed?.(new Error('its channel is closed'));
    worker.send(message, (e: Error | null) => e && failed?.(e));
  }
}

/** Runs this process as worker k: waits for its config from the primary, then runs an ordinary Runtime. */
export async function runWorker(): Promise<number> {
  const index = Number(process.env[WORKER_ENV]);
  const send = (message: FromWorker) => new Promise<void>((resolve) => (process.connected ? process.send!(message, () => resolve()) : resolve()));
  let started: (m: Extract<ToWorker, { zm: 'start' }>) => void = () => undefined;
  const start = new Promise<Extract<ToWorker, { zm: 'start' }>>((resolve) => (started = resolve));
  const settingsChanges = new Subject<AppSettings>();
  /** the latest settings edit that came before the apps were started (and subscribed) */
  let early: AppSettings | undefined;
  let runtime: Runtime | undefined;
  let live = false;
  const onMessage = (m: ToWorker) => {
    if (m.zm === 'start') started(m);
    else if (m.zm === 'settings' && live) settingsChanges.next(m.settings);
    else if (m.zm === 'settings') early = m.settings;
    else if (m.zm === 'ask' && runtime) void answer(runtime, m).then((reply) => send({ zm: 'answer', id: m.id, reply }));
  };
  process.on('message', onMessage);
  // A signal often comes twice: ^C (or `timeout`) signals the whole process group, and the primary
  // forwards it. The handlers stay (they hold no process open): a second one must not kill a worker mid-stop.
  let onSignal: (s: NodeJS.Signals) => void = () => undefined;
  const signalled = new Promise<NodeJS.Signals>((resolve) => (onSignal = resolve));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await send({ zm: 'hello' });
    const first = await Promise.race([start, signalled]);
    if (typeof first === 'string') return EXIT.ok;
    try {
      runtime = await Runtime.create({ config: first.config, ...BUILTIN_APPS, settingsChanges, logBindings: { worker: index } });
    } catch (e) {
      await send({ zm: 'failed', error: (e as Error).message });
      return EXIT.failed;
    }
    const r = runtime;
    const stopped = signalled.then(async (signal) => {
      r.log.info({ signal }, 'stopping');
      await r.stop();
    });
    try {
      await r.start();
    } catch (e) {
      await r.stop();
      await send({ zm: 'failed', error: (e as Error).message });
      return EXIT.failed;
    }
    live = true;
    if (early !== undefined && JSON.stringify(early) !== JSON.stringify(first.config.settings)) settingsChanges.next(early);
    r.log.info({ listen: r.listening.map((l) => l.port ?? l.spec), dial: first.config.dial, of: first.workers }, 'worker running');
    await send({ zm: 'ready' });
    await stopped;
    return EXIT.ok;
  } finally {
    // Our message listener holds the IPC channel, which would keep this process alive.
    process.off('message', onMessage);
    process.channel?.unref();
  }
}

async function answer(runtime: Runtime, m: Extract<ToWorker, { zm: 'ask' }>): Promise<WorkerReply> {
  const source = runtime.controlSource;
  try {
    if (m.op === 'installed') {
      const installed = await answerInstalled(source);
      return installed.ok ? { ok: true, installed } : installed;
    }
    const switches = await localFlows(source, m.dpid === undefined ? undefined : parseDpid(m.dpid));
    return { ok: true, switches, connected: [...source.switches.keys()].map(formatDpid) };
  } catch (e) {
    return { ok: false, error: (e as Error)?.message ?? String(e) };
  }
}
