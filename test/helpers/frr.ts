import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, spawnTracked } from './run';

/** Debian's FRR (scripts/ensure-deps.sh); never the system service: every daemon here has its own files. */
const FRR_DAEMONS = '/usr/lib/frr';

/** One route of `show ip bgp json`: the next hops of its valid paths. */
export type BgpRoutes = Record<string, string[]>;

/**
 * A bgpd in a network namespace with its config, pid file, log and vty socket in `dir`. Alone it
 * only speaks BGP (nothing is installed in the kernel); with `zebra`, a zebra of its own installs the
 * best paths (ECMP included) in the namespace's kernel; with `bfd`, a bfdd of its own too, which
 * bgpd reaches only through zebra (so `bfd` brings a zebra). Every daemon is tracked by
 * spawnTracked, so a crashed test cannot leave it running.
 */
export class Bgpd {
  private constructor(
    readonly netns: string,
    readonly dir: string,
    private readonly children: readonly ChildProcess[],
  ) {}

  static async start(netns: string, dir: string, config: string, opts: { zebra?: boolean; bfd?: boolean } = {}): Promise<Bgpd> {
    mkdirSync(dir, { recursive: true });
    const daemon = (name: string, extra: string[]) => {
      const conf = join(dir, `${name}.conf`);
      writeFileSync(conf, name === 'bgpd' ? config : '');
      const args = [...extra, '-P', '0', '-f', conf, '-i', join(dir, `${name}.pid`), '--vty_socket', dir, '--log', `file:${join(dir, `${name}.log`)}`];
      return spawnTracked('ip', ['netns', 'exec', netns, join(FRR_DAEMONS, name), ...args]);
    };
    if (!opts.zebra && !opts.bfd) return new Bgpd(netns, dir, [daemon('bgpd', ['-S', '-Z'])]);
    // zebra and bfdd run as Debian's `frr` user (only bgpd has -S to skip it): their files must be its
    await run('chown', ['frr:frr', dir]);
    const zserv = ['-z', join(dir, 'zserv.api')];
    const children = [daemon('zebra', zserv)];
    await waitForFile(join(dir, 'zserv.api'));
    if (opts.bfd) children.push(daemon('bfdd', [...zserv, '--bfdctl', join(dir, 'bfdd.sock')]));
    children.push(daemon('bgpd', ['-S', ...zserv]));
    return new Bgpd(netns, dir, children);
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
    const running = this.children.filter((c) => c.exitCode === null && c.signalCode === null);
    const exited = running.map((c) => once(c, 'exit'));
    for (const c of running) c.kill('SIGKILL');
    await Promise.all(exited);
  }
}

async function waitForFile(path: string, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !existsSync(path); ) {
    if (Date.now() > deadline) throw new Error(`${path} did not appear within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
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
