import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, spawnTracked } from './run';

/** Debian's FRR (scripts/ensure-deps.sh); never the system service: every daemon here has its own files. */
const BGPD = '/usr/lib/frr/bgpd';
const ZEBRA = '/usr/lib/frr/zebra';
/** zebra drops root for FRR's own user, which must own the daemon's directory */
const FRR_USER = 'frr';

/** One route of `show ip bgp json`: the next hops of its valid paths. */
export type BgpRoutes = Record<string, string[]>;

/**
 * A bgpd in a network namespace, with its config, pid file, log and vty socket in `dir`. Without
 * zebra it only speaks BGP (nothing is installed in the kernel); `withZebra` starts a zebra beside
 * it that installs the best paths (ECMP included) in the namespace's kernel. Tracked by
 * spawnTracked, so a crashed test cannot leave either running.
 */
export class Bgpd {
  private constructor(
    readonly netns: string,
    readonly dir: string,
    private readonly children: readonly ChildProcess[],
  ) {}

  static start(netns: string, dir: string, config: string, opts: { withZebra?: boolean } = {}): Bgpd {
    mkdirSync(dir, { recursive: true });
    const conf = join(dir, 'bgpd.conf');
    writeFileSync(conf, config);
    const children: ChildProcess[] = [];
    const zserv = join(dir, 'zserv.api');
    if (opts.withZebra) {
      const { uid, gid } = frrUser();
      chownSync(dir, uid, gid);
      const zebra = ['netns', 'exec', netns, ZEBRA, '-z', zserv, '-i', join(dir, 'zebra.pid'), '--vty_socket', dir, '-f', '/dev/null', '-P', '0', '--log', `file:${join(dir, 'zebra.log')}`];
      children.push(spawnTracked('ip', zebra));
    }
    const args = ['netns', 'exec', netns, BGPD, '-S', ...(opts.withZebra ? ['-z', zserv] : ['-Z']), '-P', '0', '-f', conf, '-i', join(dir, 'bgpd.pid'), '--vty_socket', dir, '--log', `file:${join(dir, 'bgpd.log')}`];
    children.push(spawnTracked('ip', args));
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

  /** SIGKILL, as a dying host would stop it (bgpd first, then its zebra); resolves once they are gone */
  async kill(): Promise<void> {
    for (const child of [...this.children].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  }
}

function frrUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${FRR_USER}:`));
  if (!line) throw new Error(`no user ${FRR_USER}: is Debian's frr installed (scripts/ensure-deps.sh)?`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
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
