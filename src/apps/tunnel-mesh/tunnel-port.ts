import { execFile } from 'node:child_process';
import type { Hypervisor } from '../../model';
import { TUNNEL_OFPORT } from '../../model';
import { injectable } from '../../sdk/di';

/** The one flow-based Geneve port of every integration bridge. */
export const TUNNEL_PORT_NAME = 'zm-tun';

/** Makes sure a hypervisor's tunnel port exists as the pipeline expects it (a side effect, kept out of the compile). */
export interface TunnelPorts {
  ensure(hv: Hypervisor & { ovsdb: string }): Promise<void>;
}

/** DI token for TunnelPorts; tests bind a stub. */
export const TUNNEL_PORTS = Symbol.for('zonemesh.tunnelPorts');

export class TunnelPortError extends Error {
  override readonly name = 'TunnelPortError';
  constructor(
    readonly hypervisor: string,
    readonly command: readonly string[],
    readonly stderr: string,
  ) {
    super(`hypervisor ${hypervisor}: ${command.join(' ')} failed: ${stderr.trim()}`);
  }
}

/**
 * ovs-vsctl arguments that create the port if it is missing and, either way, set every column we
 * rely on (may-exist alone would leave a stale port's options as they were). One transaction.
 */
export function tunnelPortCommand(hv: Hypervisor & { ovsdb: string }, timeoutSeconds = 10): string[] {
  return [
    `--db=${hv.ovsdb}`,
    `--timeout=${timeoutSeconds}`,
    '--',
    '--may-exist',
    'add-port',
    hv.bridge,
    TUNNEL_PORT_NAME,
    '--',
    'set',
    'interface',
    TUNNEL_PORT_NAME,
    'type=geneve',
    'options:remote_ip=flow',
    'options:key=flow',
    `options:local_ip=${hv.tunnelIp}`,
    `ofport_request=${TUNNEL_OFPORT}`,
  ];
}

/** TunnelPorts through the ovs-vsctl client (see docs/pipeline.md for why not our own OVSDB client). */
@injectable()
export class VsctlTunnelPorts implements TunnelPorts {
  ensure(hv: Hypervisor & { ovsdb: string }): Promise<void> {
    const args = tunnelPortCommand(hv);
    return new Promise((resolve, reject) => {
      execFile('ovs-vsctl', args, { timeout: 15_000 }, (err, _stdout, stderr) => {
        if (err) reject(new TunnelPortError(hv.name, ['ovs-vsctl', ...args], stderr || err.message));
        else resolve();
      });
    });
  }
}
