import type { NetworkModel } from '../../sdk';

/** Thrown for a hypervisor that is no gateway of the model: a caller's mistake, said plainly. */
export class NotAGatewayError extends Error {
  override readonly name = 'NotAGatewayError';
}

export interface GatewayBgpOptions {
  /** the gateways' autonomous system */
  readonly localAs: number;
  /** the edge router's */
  readonly edgeAs: number;
  /** BGP keepalive and hold time in seconds: the hold time bounds how long a dead gateway's routes stay */
  readonly keepaliveSeconds: number;
  readonly holdSeconds: number;
}

/** What one gateway announces: /32s of the floating IPs bound to ports of its zone, and its zone's SNAT addresses. */
export function gatewayPrefixes(model: NetworkModel, gateway: string): string[] {
  const host = model.hypervisors.find((h) => h.name === gateway);
  const zone = host?.zone;
  const zoneOf = (port: string) => model.hypervisors.find((h) => h.name === model.ports.find((p) => p.name === port)?.hypervisor)?.zone;
  const networks = new Set(model.externalNetworks.filter((e) => e.zone === zone).map((e) => e.name));
  const floating = model.floatingIps.filter((f) => f.port !== undefined && zoneOf(f.port) === zone).map((f) => f.ip);
  const snat = model.egress.flatMap((e) => e.snat.filter((s) => networks.has(s.network)).map((s) => s.ip));
  return [...floating, ...snat].map((ip) => `${ip}/32`);
}

/**
 * FRR's bgpd configuration for one gateway hypervisor (docs/north-south.md): one eBGP session to
 * the next hop of each external network it is a gateway of, announcing gatewayPrefixes. bgpd runs
 * without zebra, so the prefixes are announced without a route in a RIB (`no bgp network import-check`).
 */
export function gatewayBgpConfig(model: NetworkModel, gateway: string, opts: GatewayBgpOptions): string {
  const attachments = model.externalNetworks.flatMap((e) => e.gateways.filter((g) => g.hypervisor === gateway).map((g) => ({ net: e, self: g.ip })));
  if (attachments.length === 0) throw new NotAGatewayError(`hypervisor '${gateway}' is no gateway of any external network of the model`);
  const lines = [
    `router bgp ${opts.localAs}`,
    ` bgp router-id ${attachments[0]!.self}`,
    ' no bgp ebgp-requires-policy',
    ' no bgp network import-check',
    ...attachments.flatMap(({ net }) => [` neighbor ${net.nextHop} remote-as ${opts.edgeAs}`, ` neighbor ${net.nextHop} timers ${opts.keepaliveSeconds} ${opts.holdSeconds}`]),
    ' address-family ipv4 unicast',
    ...gatewayPrefixes(model, gateway).map((p) => `  network ${p}`),
    ' exit-address-family',
  ];
  return `${lines.join('\n')}\n`;
}
