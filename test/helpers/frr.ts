import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, spawnTracked } from './run';

/** Debian's FRR (scripts/ensure-deps.sh); never the system service: every daemon here has its own files. */
const BGPD = '/usr/lib/frr/bgpd';

/** One route of `show ip bgp json`: the next hops of its valid paths. */
export type BgpRoutes = Record<string, string[]>;

/**
 * A bgpd in a network namespace, without zebra (it only speaks BGP: nothing is installed in the
 * kernel), with its config, pid file, log and vty socket in `dir`. Tracked by spawnTracked, so a
 * crashed test cannot leave it running.
 */
export class Bgpd {
  private constructor(
    readonly netns: string,
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {}

  static start(netns: string, dir: string, config: string): Bgpd {
    mkdirSync(dir, { recursive: true });
    const conf = join(dir, 'bgpd.conf');
    writeFileSync(conf, config);
    const args = ['netns', 'exec', netns, BGPD, '-S', '-Z', '-P', '0', '-f', conf, '-i', join(dir, 'bgpd.pid'), '--vty_socket', dir, '--log', `file:${join(dir, 'bgpd.log')}`];
    return new Bgpd(netns, dir, spawnTracked('ip', args));
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

  /** SIGKILL, as a dying host would stop it; resolves once it is gone */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }
}

/** The edge router's bgpd: one eBGP neighbor per gateway, ECMP over up to `maximumPaths`. */
export function edgeBgpConfig(opts: { localAs: number; routerId: string; gatewayAs: number; gateways: readonly string[]; keepaliveSeconds: number; holdSeconds: number; maximumPaths: number }): string {
  return [
    `router bgp ${opts.localAs}`,
    ` bgp router-id ${opts.routerId}`,
    ' no bgp ebgp-requires-policy',
    ...opts.gateways.flatMap((g) => [` neighbor ${g} remote-as ${opts.gatewayAs}`, ` neighbor ${g} timers ${opts.keepaliveSeconds} ${opts.holdSeconds}`]),
    ' address-family ipv4 unicast',
    `  maximum-paths ${opts.maximumPaths}`,
    ' exit-address-family',
    '',
  ].join('\n');
}
