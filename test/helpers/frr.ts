import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './overlay';
import { run, spawnTracked } from './run';

/** Debian's FRR (scripts/ensure-deps.sh); never the system service: every daemon here has its own files. */
const FRR_DAEMONS = '/usr/lib/frr';

/** One route of `show ip bgp json`: the next hops of its valid paths. */
export type BgpRoutes = Record<string, string[]>;

type FrrDaemon = 'zebra' | 'bfdd' | 'bgpd';

/** FRR did not come up in a namespace: which daemon, what the start waited for, and the tail of that daemon's log. */
export class FrrStartError extends Error {
  override readonly name = 'FrrStartError';
  constructor(
    readonly netns: string,
    readonly dir: string,
    readonly daemon: FrrDaemon,
    readonly awaited: string,
    readonly detail: string,
  ) {
    super(`FRR in netns ${netns} (${dir}): ${daemon}: ${awaited}: ${detail}`);
  }
}

/** What Bgpd.start takes: where it runs, its files, bgpd's configuration and the daemons beside it. */
export interface BgpdSpec {
  netns: string;
  dir: string;
  config: string;
  opts?: { zebra?: boolean; bfd?: boolean };
}

/** The bound on a whole start: generous, since daemons start slowly on a loaded host and a start returns as soon as it is done. */
const START_TIMEOUT_MS = 30_000;

/**
 * A bgpd in a network namespace with its config, pid file, log and vty socket in `dir`. Alone it
 * only speaks BGP (nothing is installed in the kernel); with `zebra`, a zebra of its own installs the
 * best paths (ECMP included) in the namespace's kernel; with `bfd`, a bfdd of its own too, which
 * bgpd reaches only through zebra (so `bfd` brings a zebra). Every daemon is tracked by
 * spawnTracked, so a crashed test cannot leave it running.
 *
 * The start resolves only once everything is wired: bgpd's and bfdd's first attempt to reach zebra
 * must find it listening, since a failed one is retried only 10 s later, and FRR 8.4's bgpd drops a
 * BFD registration it could not send then (lib/bfd.c replays installed sessions only): its BFD
 * sessions would never exist. So zebra answers on its vty (it listens on zserv.api before that)
 * before bfdd and bgpd start, and the start waits until zebra lists them as clients and bfdd lists
 * every peer the configuration gives `neighbor ... bfd`. Polling FRR's own CLI, no fixed sleep.
 */
export class Bgpd {
  private constructor(
    readonly netns: string,
    readonly dir: string,
    private readonly children: Map<FrrDaemon, ChildProcess>,
  ) {}

  static async start(netns: string, dir: string, config: string, opts: BgpdSpec['opts'] = {}): Promise<Bgpd> {
    mkdirSync(dir, { recursive: true });
    const bgpd = new Bgpd(netns, dir, new Map());
    try {
      await bgpd.startDaemons(config, opts.bfd ? 'bfd' : opts.zebra ? 'zebra' : 'alone');
    } catch (e) {
      await bgpd.kill();
      throw e;
    }
    return bgpd;
  }

  /** Starts several at once, each waiting on its own daemons only; if one fails, the started ones are killed and its error thrown. */
  static async startAll(routers: readonly BgpdSpec[]): Promise<Bgpd[]> {
    const started = await Promise.allSettled(routers.map((r) => Bgpd.start(r.netns, r.dir, r.config, r.opts)));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    const running = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    if (!failed) return running;
    for (const b of running) await b.kill();
    throw failed.reason;
  }

  private async startDaemons(config: string, mode: 'alone' | 'zebra' | 'bfd'): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    if (mode === 'alone') {
      this.spawn('bgpd', config, ['-S', '-Z']);
      return this.until('bgpd', 'its vty answering', 'show version', () => true, deadline);
    }
    // zebra and bfdd run as Debian's `frr` user (only bgpd has -S to skip it): their files must be its
    await run('chown', ['frr:frr', this.dir]);
    const zserv = ['-z', join(this.dir, 'zserv.api')];
    this.spawn('zebra', '', zserv);
    await this.until('zebra', 'its vty answering', 'show version', () => true, deadline);
    if (mode === 'bfd') this.spawn('bfdd', '', [...zserv, '--bfdctl', join(this.dir, 'bfdd.sock')]);
    this.spawn('bgpd', config, ['-S', ...zserv]);
    const clients = mode === 'bfd' ? ['bgp', 'bfd'] : ['bgp'];
    await this.until('zebra', `clients ${clients.join(', ')} connected`, 'show zebra client summary', (out) => clients.every((c) => new RegExp(`^${c} `, 'm').test(out)), deadline);
    const peers = [...config.matchAll(/^\s*neighbor (\S+) bfd\b/gm)].map((m) => m[1]!);
    if (mode === 'bfd' && peers.length > 0) {
      await this.until('bfdd', `BFD sessions to ${peers.join(', ')} registered by bgpd`, 'show bfd peers json', (out) => {
        const listed = new Set((JSON.parse(out) as { peer: string }[]).map((p) => p.peer));
        return peers.every((p) => listed.has(p));
      }, deadline);
    }
  }

  private spawn(daemon: FrrDaemon, config: string, extra: string[]): void {
    const conf = join(this.dir, `${daemon}.conf`);
    writeFileSync(conf, config);
    const args = [...extra, '-P', '0', '-f', conf, '-i', join(this.dir, `${daemon}.pid`), '--vty_socket', this.dir, '--log', `file:${this.logFile(daemon)}`];
    this.children.set(daemon, spawnTracked('ip', ['netns', 'exec', this.netns, join(FRR_DAEMONS, daemon), ...args]));
  }

  private logFile(daemon: FrrDaemon): string {
    return join(this.dir, `${daemon}.log`);
  }

  /** Polls `command` on `daemon`'s vty until `done` accepts its output; a daemon that exits or the deadline is a FrrStartError. */
  private async until(daemon: FrrDaemon, awaited: string, command: string, done: (output: string) => boolean, deadline: number): Promise<void> {
    const fail = (detail: string) => {
      const log = existsSync(this.logFile(daemon)) ? readFileSync(this.logFile(daemon), 'utf8').trim().split('\n').slice(-10).join('\n') : '(no log)';
      return new FrrStartError(this.netns, this.dir, daemon, awaited, `${detail}; its log ends:\n${log}`);
    };
    const probe = async (): Promise<{ output?: string; error?: string }> => {
      for (const [name, child] of this.children) {
        if (child.exitCode !== null || child.signalCode !== null) throw fail(`${name} exited (${child.exitCode ?? child.signalCode})`);
      }
      return run('vtysh', ['--vty_socket', this.dir, '-d', daemon, '-c', command]).then(
        (r) => ({ output: r.stdout }),
        (e: Error) => ({ error: e.message }),
      );
    };
    try {
      await waitFor(awaited, probe, (r) => r.output !== undefined && done(r.output), { timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: 50 });
    } catch (e) {
      throw e instanceof FrrStartError ? e : fail((e as Error).message);
    }
  }

  async vtysh(command: string): Promise<string> {
    return (await run('vtysh', ['--vty_socket', this.dir, '-c', command])).stdout;
  }

  /** prefix → next hops of its valid paths */
  async routes(): Promise<BgpRoutes> {
    const json = JSON.parse(await this.vtysh('show ip bgp json')) as { routes?: Record<string, { valid?: boolean; nexthops?: { ip: string }[] }[]> };
    const out: BgpRoutes = {};
    for (const [prefix, paths] of Object.entries(json.routes ?? {})) {
      out[prefix] = paths.filter((p) => p.valid).flatMap((p) => (p.nexthops ?? []).map((n) => n.ip)).sort();
    }
    return out;
  }

  /** SIGKILL to every daemon, as a dying host would stop them; resolves once they are gone */
  async kill(): Promise<void> {
    const running = [...this.children.values()].filter((c) => c.exitCode === null && c.signalCode === null);
    const exited = running.map((c) => once(c, 'exit'));
    for (const c of running) c.kill('SIGKILL');
    await Promise.all(exited);
  }
}

/** The edge router's bgpd: one eBGP neighbor per gateway, ECMP over up to `maximumPaths`. */
export function edgeBgpConfig(opts: {
  localAs: number;
  routerId: string;
  gatewayAs: number;
  gateways: readonly string[];
  keepaliveSeconds: number;
  holdSeconds: number;
  maximumPaths: number;
  bfd?: { multiplier: number; intervalMs: number };
}): string {
  const bfd = opts.bfd;
  return [
    `router bgp ${opts.localAs}`,
    ` bgp router-id ${opts.routerId}`,
    ' no bgp ebgp-requires-policy',
    ...opts.gateways.flatMap((g) => [
      ` neighbor ${g} remote-as ${opts.gatewayAs}`,
      ` neighbor ${g} timers ${opts.keepaliveSeconds} ${opts.holdSeconds}`,
      ` neighbor ${g} timers connect 1`,
      ...(bfd ? [` neighbor ${g} bfd ${bfd.multiplier} ${bfd.intervalMs} ${bfd.intervalMs}`] : []),
    ]),
    ' address-family ipv4 unicast',
    `  maximum-paths ${opts.maximumPaths}`,
    ' exit-address-family',
    '',
  ].join('\n');
}
