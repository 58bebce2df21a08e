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
  /** BFD with the edge router (FRR's bfdd, reached through zebra): a silent gateway is down after multiplier × interval */
  readonly bfd?: { readonly multiplier: number; readonly intervalMs: number };
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
 * the next hop of each external network it is a gateway of, announcing gatewayPrefixes. The prefixes
 * are announced without a route in a RIB (`no bgp network import-check`): the gateway's flows, not
 * its kernel, carry them. At run time the north-south app keeps the `network` lines equal to gatewayPrefixes (BgpSpeakers).
 */
export function gatewayBgpConfig(model: NetworkModel, gateway: string, opts: GatewayBgpOptions): string {
  const attachments = model.externalNetworks.flatMap((e) => e.gateways.filter((g) => g.hypervisor === gateway).map((g) => ({ net: e, self: g.ip })));
  if (attachments.length === 0) throw new NotAGatewayError(`hypervisor '${gateway}' is no gateway of any external network of the model`);
  const lines = [
    `router bgp ${opts.localAs}`,
    ` bgp router-id ${attachments[0]!.self}`,
    ' no bgp ebgp-requires-policy',
    ' no bgp network import-check',
    ...attachments.flatMap(({ net }) => [
      ` neighbor ${net.nextHop} remote-as ${opts.edgeAs}`,
      ` neighbor ${net.nextHop} timers ${opts.keepaliveSeconds} ${opts.holdSeconds}`,
      // a rebinding reaches the edge router at once, not after a minimum route advertisement interval
      ` neighbor ${net.nextHop} advertisement-interval 0`,
      // a session BFD took down comes back within a second of the path, not FRR's default 120 s
      ` neighbor ${net.nextHop} timers connect 1`,
      ...(opts.bfd ? [` neighbor ${net.nextHop} bfd ${opts.bfd.multiplier} ${opts.bfd.intervalMs} ${opts.bfd.intervalMs}`] : []),
    ]),
    ' address-family ipv4 unicast',
    ...gatewayPrefixes(model, gateway).map((p) => `  network ${p}`),
    ' exit-address-family',
  ];
  return `${lines.join('\n')}\n`;
}

/** bgpd's BGP instance and the IPv4 networks it originates, as its running configuration says. */
export interface BgpNetworks {
  readonly asn: number;
  readonly networks: readonly string[];
}

export class BgpConfigError extends Error {
  override readonly name = 'BgpConfigError';
}

/** Reads `router bgp ASN` and its `address-family ipv4 unicast` `network` lines from `show running-config`. */
export function parseBgpNetworks(runningConfig: string): BgpNetworks {
  const asn = /^router bgp (\d+)\s*$/m.exec(runningConfig)?.[1];
  if (asn === undefined) throw new BgpConfigError('no `router bgp ASN` in the running configuration: bgpd has no BGP instance to announce from');
  const networks: string[] = [];
  let inIpv4 = false;
  for (const line of runningConfig.split('\n')) {
    const t = line.trim();
    if (t === 'address-family ipv4 unicast') inIpv4 = true;
    else if (t === 'exit-address-family') inIpv4 = false;
    else if (inIpv4 && t.startsWith('network ')) networks.push(t.split(/\s+/)[1]!);
  }
  return { asn: Number(asn), networks };
}

/** CLI commands that take bgpd from `current` networks to `wanted`; none when they are equal. */
export function bgpNetworkCommands(current: BgpNetworks, wanted: readonly string[]): string[] {
  const want = new Set(wanted);
  const have = new Set(current.networks);
  const changes = [...current.networks.filter((n) => !want.has(n)).map((n) => `no network ${n}`), ...wanted.filter((n) => !have.has(n)).map((n) => `network ${n}`)];
  return changes.length === 0 ? [] : ['configure terminal', `router bgp ${current.asn}`, 'address-family ipv4 unicast', ...changes];
}
