import { type Hypervisor, VSCTL, type Vsctl, inject, injectable } from '../../sdk';
import { GATEWAY_BFD_INTERVAL_MS, GATEWAY_BFD_UDP_PORT, gatewayPortName, isGatewayPortName } from './gateways';

/** Makes a hypervisor's BFD ports to its peers exactly `peers` (a side effect, kept out of the compile). */
export interface GatewayPorts {
  ensure(hv: Hypervisor & { ovsdb: string }, peers: readonly Hypervisor[]): Promise<void>;
}

/** DI token for GatewayPorts; tests bind a stub. */
export const GATEWAY_PORTS = Symbol.for('zonemesh.gatewayPorts');

/**
 * One ovs-vsctl transaction: every peer's port created if missing and all its columns set
 * (may-exist alone would keep a stale port's options), and our ports to hypervisors that are no
 * longer peers (`present`: the bridge's ports now) deleted. Empty when there is nothing to do.
 */
export function gatewayPortsCommand(hv: Hypervisor, peers: readonly Hypervisor[], present: readonly string[]): string[] {
  const wanted = new Set(peers.map(gatewayPortName));
  const stale = present.filter((p) => isGatewayPortName(p) && !wanted.has(p));
  const interval = String(GATEWAY_BFD_INTERVAL_MS);
  return [
    ...stale.flatMap((p) => ['--', '--if-exists', 'del-port', hv.bridge, p]),
    ...peers.flatMap((peer) => {
      const name = gatewayPortName(peer);
      return [
        '--',
        '--may-exist',
        'add-port',
        hv.bridge,
        name,
        '--',
        'set',
        'interface',
        name,
        'type=geneve',
        `options:remote_ip=${peer.tunnelIp}`,
        `options:local_ip=${hv.tunnelIp}`,
        `options:dst_port=${GATEWAY_BFD_UDP_PORT}`,
        'bfd:enable=true',
        `bfd:min_tx=${interval}`,
        `bfd:min_rx=${interval}`,
        'bfd:decay_min_rx=0',
      ];
    }),
  ];
}

/** GatewayPorts through the runtime's ovs-vsctl, as the tunnel port is provisioned (docs/pipeline.md). */
@injectable()
export class VsctlGatewayPorts implements GatewayPorts {
  constructor(@inject(VSCTL) private readonly vsctl: Vsctl) {}

  async ensure(hv: Hypervisor & { ovsdb: string }, peers: readonly Hypervisor[]): Promise<void> {
    const present = (await this.vsctl.run(hv, ['list-ports', hv.bridge])).split('\n').filter(Boolean);
    const args = gatewayPortsCommand(hv, peers, present);
    if (args.length > 0) await this.vsctl.run(hv, args);
  }
}
