import { execFile } from 'node:child_process';
import { AppSettingsError, type AppSettings, injectable } from '../../sdk';
import { type BgpNetworks, bgpNetworkCommands, parseBgpNetworks } from './bgp';

/**
 * Keeps a gateway's bgpd originating exactly some prefixes, through FRR's own CLI (vtysh against
 * the gateway's vty socket directory): we write no routing protocol, and bgpd keeps announcing what
 * it was last told while the controller is away.
 */
export interface BgpSpeakers {
  /** Resolves true when bgpd's networks had to change, false when they already were `prefixes`. */
  announce(vtySocketDir: string, prefixes: readonly string[]): Promise<boolean>;
}

/** DI token for BgpSpeakers; tests bind a stub. */
export const BGP_SPEAKERS = Symbol.for('zonemesh.bgpSpeakers');

export class VtyshError extends Error {
  override readonly name = 'VtyshError';
  constructor(
    readonly vtySocketDir: string,
    readonly commands: readonly string[],
    readonly output: string,
  ) {
    super(`vtysh --vty_socket ${vtySocketDir} -d bgpd ${commands.map((c) => `-c '${c}'`).join(' ')} failed: ${output.trim()}`);
  }
}

function vtysh(dir: string, commands: readonly string[]): Promise<string> {
  // bgpd alone: vtysh otherwise gathers from every daemon in the directory (zebra, bfdd), seconds under load
  const args = ['--vty_socket', dir, '-d', 'bgpd', ...commands.flatMap((c) => ['-c', c])];
  return new Promise((resolve, reject) => {
    // vtysh reports a rejected command on stdout and exits non-zero
    execFile('vtysh', args, { timeout: 10_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => (err ? reject(new VtyshError(dir, commands, `${stdout}${stderr}` || err.message)) : resolve(stdout)));
  });
}

/**
 * Reads bgpd's running configuration once, then diffs against what it last applied: one vtysh run
 * per change, not two (each costs hundreds of ms on a loaded host). Any failure forgets what it
 * knew, so the next run reads again; a bgpd restarted behind its back is corrected at the next change.
 */
@injectable()
export class VtyshBgpSpeakers implements BgpSpeakers {
  private readonly applied = new Map<string, BgpNetworks>();

  async announce(dir: string, prefixes: readonly string[]): Promise<boolean> {
    try {
      const current = this.applied.get(dir) ?? parseBgpNetworks(await vtysh(dir, ['show running-config']));
      const commands = bgpNetworkCommands(current, prefixes);
      if (commands.length > 0) await vtysh(dir, commands);
      this.applied.set(dir, { asn: current.asn, networks: [...prefixes] });
      return commands.length > 0;
    } catch (err) {
      this.applied.delete(dir);
      throw err;
    }
  }
}

/** `settings.north-south`: which gateways' bgpd the controller drives, by hypervisor name. */
export interface NorthSouthSettings {
  /** hypervisor → the directory of its bgpd's vty socket (bgpd's --vty_socket) */
  readonly bgpVtySockets: Readonly<Record<string, string>>;
}

/** Reads `settings.north-south`; throws AppSettingsError naming every bad field. */
export function parseNorthSouthSettings(raw: unknown): NorthSouthSettings {
  const app = 'north-south';
  if (raw === undefined) return { bgpVtySockets: {} };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new AppSettingsError(app, [{ path: '', problem: 'must be a mapping of settings' }]);
  const s = raw as AppSettings;
  const issues = Object.keys(s)
    .filter((k) => k !== 'bgpVtySockets')
    .map((k) => ({ path: k, problem: `is not a setting of ${app} (known: bgpVtySockets)` }));
  const sockets = s.bgpVtySockets ?? {};
  if (typeof sockets !== 'object' || sockets === null || Array.isArray(sockets)) issues.push({ path: 'bgpVtySockets', problem: 'must map hypervisor names to vty socket directories' });
  else for (const [hv, dir] of Object.entries(sockets)) if (typeof dir !== 'string' || !dir.startsWith('/')) issues.push({ path: `bgpVtySockets.${hv}`, problem: 'must be an absolute directory path' });
  if (issues.length) throw new AppSettingsError(app, issues);
  return { bgpVtySockets: sockets as Record<string, string> };
}
