import type { Hypervisor } from '../../model';
import { TUNNEL_OFPORT } from '../../model';
import { inject, injectable } from '../../sdk/di';
import { VSCTL, type Vsctl } from '../../sdk/vsctl';

/** The one flow-based Geneve port of every integration bridge. */
export const TUNNEL_PORT_NAME = 'zm-tun';

/** Makes sure a hypervisor's tunnel port exists as the pipeline expects it (a side effect, kept out of the compile). */
export interface TunnelPorts {
  ensure(hv: Hypervisor & { ovsdb: string }): Promise<void>;
}

/** DI token for TunnelPorts; tests bind a stub. */
export const TUNNEL_PORTS = Symbol.for('zonemesh.tunnelPorts');

/**
 * The ovs-vsctl transaction that creates the port if it is missing and, either way, sets every
 * column we rely on (may-exist alone would leave a stale port's options as they were).
 */
export function tunnelPortCommand(hv: Hypervisor): string[] {
  return [
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

/** TunnelPorts through the runtime's ovs-vsctl (see docs/pipeline.md for why not our own OVSDB client). */
@injectable()
export class VsctlTunnelPorts implements TunnelPorts {
  constructor(@inject(VSCTL) private readonly vsctl: Vsctl) {}

  async ensure(hv: Hypervisor & { ovsdb: string }): Promise<void> {
    await this.vsctl.run(hv, tunnelPortCommand(hv));
  }
}
