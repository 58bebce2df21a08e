import { IPV4_RE, MAC_RE, cidrContains, cidrsOverlap, derivedDatapathId, floatingIpMac, parseCidr, parseIpv4, routerMac } from './addressing';
import { FLOOD_KEYS, type KeyRange, type Keyed, PORT_KEYS, TUNNEL_OFPORT, VNI_MAX, conntrackZone, keyCollisions } from './derived';
import { ModelValidationError, type ModelIssue } from './errors';
import { hasIpv4, portHasIpv4 } from './families';
import { aclRemoteCidr, duplicateIpv6Addresses, overlappingIpv6Prefixes, portIpv6Address, subnetIpv6 } from './ipv6';
import { unknownKeyProblem } from './suggest';
import type { AclProtocol, AclRule, ExternalNetwork, FloatingIp, HealthCheck, Hypervisor, LoadBalancer, LoadBalancerBackend, NetworkModel, Subnet, VmPort, Vpc, VpcEgress, Zone } from './types';

type Obj = Record<string, unknown>;

/**
 * Collects every problem in a document, so a user fixes them in one pass. The keys an object may
 * have are the keys the checks read from objects of its kind, so the checks are the one list of
 * them: any other key is reported (a typo such as `gatway` would otherwise drop the setting).
 */
class Checker {
  readonly issues: ModelIssue[] = [];
  /** object kind (its path without list indexes, `vpcs[].subnets[]`) → every key read from one */
  private readonly keysRead = new Map<string, Set<string>>();
  private readonly tracked: { raw: Obj; path: string; kind: string }[] = [];

  problem(path: string, problem: string): void {
    this.issues.push({ path, problem });
  }

  /** The object for the checks to read: each key read, present or not, becomes a key its kind knows. */
  track(raw: Obj, path: string): Obj {
    const kind = path.replace(/\[\d+\]/g, '[]');
    let read = this.keysRead.get(kind);
    if (!read) this.keysRead.set(kind, (read = new Set()));
    this.tracked.push({ raw, path, kind });
    const note = (key: string | symbol) => typeof key === 'string' && read.add(key);
    return new Proxy(raw, {
      get: (target, key) => (note(key), target[key as string]),
      has: (target, key) => (note(key), key in target),
    });
  }

  /** Reports every key of a tracked object that no check read; call once all checks have run. */
  unknownKeys(): void {
    for (const { raw, path, kind } of this.tracked) {
      const known = this.keysRead.get(kind)!;
      for (const key of Object.keys(raw)) {
        if (known.has(key)) continue;
        this.problem(path === '' ? key : `${path}.${key}`, unknownKeyProblem(key, known));
      }
    }
  }

  list(o: Obj, key: string, path: string, required = true): Obj[] {
    const v = o[key];
    if (v === undefined && !required) return [];
    if (!Array.isArray(v)) {
      this.problem(`${path}${key}`, v === undefined ? 'is required (a list)' : 'must be a list');
      return [];
    }
    return v.map((item, i) => {
      if (!item || typeof item !== 'object' || Array.isArray(item)) {
        this.problem(`${path}${key}[${i}]`, 'must be an object');
        return {};
      }
      return this.track(item as Obj, `${path}${key}[${i}]`);
    });
  }

  str(o: Obj, key: string, path: string, pattern?: { re: RegExp; what: string }): string {
    const v = o[key];
    if (typeof v !== 'string' || v === '') {
      this.problem(`${path}.${key}`, v === undefined ? 'is required' : 'must be a non-empty string');
      return '';
    }
    if (pattern && !pattern.re.test(v)) this.problem(`${path}.${key}`, `'${v}' is not ${pattern.what}`);
    return v;
  }

  optStr(o: Obj, key: string, path: string): string | undefined {
    return o[key] === undefined ? undefined : this.str(o, key, path);
  }

  int(o: Obj, key: string, path: string, min: number, max: number): number {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.problem(`${path}.${key}`, v === undefined ? 'is required' : `must be an integer in ${min}..${max}`);
      return min;
    }
    return v;
  }

  /** a duration in seconds, whole or fractional to the millisecond (0.25 is 250 ms) */
  seconds(o: Obj, key: string, path: string, min: number, max: number): number {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || Math.abs(v * 1000 - Math.round(v * 1000)) > 1e-6) {
      this.problem(`${path}.${key}`, v === undefined ? 'is required' : `must be a number of seconds in ${min}..${max}, to the millisecond`);
      return min;
    }
    return v;
  }

  bool(o: Obj, key: string, path: string, fallback: boolean): boolean {
    const v = o[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') {
      this.problem(`${path}.${key}`, 'must be true or false');
      return fallback;
    }
    return v;
  }

  oneOf<T extends string>(o: Obj, key: string, path: string, options: readonly T[], fallback?: T): T {
    const v = o[key];
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'string' || !options.includes(v as T)) {
      this.problem(`${path}.${key}`, `must be one of ${options.join(', ')}`);
      return options[0]!;
    }
    return v as T;
  }

  /** a key of '' or undefined (nothing to compare) is never a duplicate */
  unique<T>(items: readonly T[], key: (t: T) => string | undefined, path: (i: number) => string, what: string): void {
    const seen = new Map<string, number>();
    items.forEach((t, i) => {
      const k = key(t);
      if (k === '' || k === undefined) return;
      const first = seen.get(k);
      if (first !== undefined) this.problem(path(i), `duplicate ${what} '${k}' (first at ${path(first)})`);
      else seen.set(k, i);
    });
  }
}

const IPV4 = { re: IPV4_RE, what: 'an IPv4 address' };
/** what a hypervisor's `ovsdb` may be (also in the run config's `hypervisors`) */
export const OVSDB_TARGET = { re: /^(unix:\/.+|tcp:.+:\d+|ssl:.+:\d+)$/, what: "an OVSDB target such as 'unix:/run/zm/hv1/db.sock'" };
const MAC = { re: MAC_RE, what: 'a lower-case MAC address' };
const PROTOCOLS: readonly AclProtocol[] = ['any', 'tcp', 'udp', 'icmp', 'icmp6'];

const MAX_DATAPATH_ID = 0xffff_ffff_ffff_ffffn;

function datapathId(c: Checker, o: Obj, path: string, name: string): bigint {
  const v = o.datapathId;
  if (v === undefined) return derivedDatapathId(name);
  if (typeof v === 'string' && /^(0x[0-9a-f]{1,16}|\d{1,20})$/i.test(v) && BigInt(v) <= MAX_DATAPATH_ID) return BigInt(v);
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  c.problem(`${path}.datapathId`, 'must be a 64-bit number or a hex string such as "0x1a"');
  return 0n;
}

function portRange(c: Checker, o: Obj, path: string): AclRule['ports'] {
  const v = o.ports;
  if (v === undefined) return undefined;
  const m = typeof v === 'number' ? [String(v), String(v)] : typeof v === 'string' ? /^(\d+)(?:-(\d+))?$/.exec(v)?.slice(1) : undefined;
  const from = Number(m?.[0]);
  const to = Number(m?.[1] ?? m?.[0]);
  if (!m || !(from >= 1 && to <= 65535 && from <= to)) {
    c.problem(`${path}.ports`, `'${String(v)}' is not a port or range such as 8080 or "8000-8080"`);
    return undefined;
  }
  return { from, to };
}

/**
 * Keys of one VPC that coincide (docs/pipeline.md): the later object is reported, with a free key
 * to pin. Keys are never moved to resolve a collision, since that would move an existing port.
 */
function collidingKeys(c: Checker, items: readonly Keyed[], range: KeyRange, path: (i: number) => string): void {
  for (const { index, first, key, free } of keyCollisions(items, range)) {
    const how = (item: Keyed) => (item.tunnelKey === undefined ? 'derived from its name' : 'pinned');
    c.problem(
      `${path(index)}.tunnelKey`,
      `tunnel key ${key} (${how(items[index]!)}) is already ${items[first]!.name}'s (${path(first)}, ${how(items[first]!)}): pin another on one of them, e.g. tunnelKey: ${free}`,
    );
  }
}

/** Two VPCs on one hypervisor need distinct conntrack zones (zones are 16 bits, vnis 24). */
function sharedConntrackZones(c: Checker, vpcs: readonly Vpc[], ports: readonly VmPort[]): void {
  const vniOf = new Map(vpcs.map((v) => [v.name, v.vni]));
  const zoneOwner = new Map<string, string>();
  const reported = new Set<string>();
  for (const p of ports) {
    const vni = vniOf.get(p.vpc);
    if (vni === undefined) continue;
    const slot = `${p.hypervisor}/${conntrackZone(vni)}`;
    const other = zoneOwner.get(slot);
    if (other === undefined) zoneOwner.set(slot, p.vpc);
    else if (other !== p.vpc && !reported.has(`${other}/${p.vpc}`)) {
      reported.add(`${other}/${p.vpc}`);
      const i = vpcs.findIndex((v) => v.name === p.vpc);
      c.problem(`vpcs[${i}].vni`, `VPCs ${other} and ${p.vpc} share conntrack zone ${conntrackZone(vni)} and hypervisor ${p.hypervisor} (zones are 16 bits: vnis 65,535 apart share one): choose another vni`);
    }
  }
}

const DOMAIN = { re: /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i, what: 'a DNS domain name' };
/** a DHCP lease from one minute to one year */
const LEASE_SECONDS = { min: 60, max: 365 * 24 * 3600 };
/** what fits one DHCP option: 255 bytes of 4-byte addresses, of routes of at most 9 bytes */
const MAX_DNS_SERVERS = 63;
const MAX_ROUTES = 28;

/**
 * A subnet's IPv4 side: `cidr` and `gateway`, both or neither. Neither makes an IPv6-only subnet,
 * which needs `ipv6`; undefined then (and when the pair is unusable).
 */
function subnetIpv4(c: Checker, s: Obj, path: string, hasIpv6: boolean): { cidr: string; gateway: string } | undefined {
  if (s.cidr === undefined && s.gateway === undefined) {
    if (!hasIpv6) c.problem(path, 'needs an IPv4 cidr and gateway, an ipv6 prefix, or both');
    return undefined;
  }
  const cidr = c.str(s, 'cidr', path);
  const gateway = c.str(s, 'gateway', path, IPV4);
  const pc = cidr ? parseCidr(cidr) : undefined;
  if (cidr && !pc) c.problem(`${path}.cidr`, `'${cidr}' is not an IPv4 CIDR with no host bits`);
  const gw = parseIpv4(gateway);
  if (pc && gw !== undefined && !cidrContains(pc, gw)) c.problem(`${path}.gateway`, `${gateway} is outside ${cidr}`);
  return { cidr, gateway };
}

const DHCP_KEYS = ['dns', 'domain', 'leaseTime', 'routes'] as const;

/** An IPv6-only subnet has no DHCPv4 server, so none of its settings (no DHCPv6 yet). */
function ipv6OnlyHasNoDhcp(c: Checker, s: Obj, path: string): Record<string, never> {
  for (const key of DHCP_KEYS) if (s[key] !== undefined) c.problem(`${path}.${key}`, 'is a DHCPv4 setting, and this subnet is IPv6-only (no cidr): not supported');
  return {};
}

/** A subnet's optional DHCP settings (dns, domain, leaseTime, routes); only those present are returned. */
function subnetDhcpOptions(c: Checker, s: Obj, path: string, cidr: ReturnType<typeof parseCidr>): Pick<Subnet, 'dns' | 'domain' | 'leaseTime' | 'routes'> {
  const out: Pick<Subnet, 'dns' | 'domain' | 'leaseTime' | 'routes'> = {};
  if (s.dns !== undefined) {
    const dns = s.dns;
    if (!Array.isArray(dns) || dns.length === 0 || dns.length > MAX_DNS_SERVERS) c.problem(`${path}.dns`, `must be a list of 1 to ${MAX_DNS_SERVERS} IPv4 addresses`);
    else {
      dns.forEach((ip, i) => {
        if (typeof ip !== 'string' || !IPV4_RE.test(ip)) c.problem(`${path}.dns[${i}]`, `'${String(ip)}' is not an IPv4 address`);
      });
      out.dns = dns as string[];
    }
  }
  if (s.domain !== undefined) out.domain = c.str(s, 'domain', path, DOMAIN);
  if (s.leaseTime !== undefined) out.leaseTime = c.int(s, 'leaseTime', path, LEASE_SECONDS.min, LEASE_SECONDS.max);
  if (s.routes !== undefined) {
    const routes = c.list(s, 'routes', `${path}.`);
    if (routes.length > MAX_ROUTES) c.problem(`${path}.routes`, `${routes.length} routes exceed the ${MAX_ROUTES} one DHCP option carries`);
    out.routes = routes.map((r, i) => {
      const rp = `${path}.routes[${i}]`;
      const route = { cidr: c.str(r, 'cidr', rp), via: c.str(r, 'via', rp, IPV4) };
      if (route.cidr && !parseCidr(route.cidr)) c.problem(`${rp}.cidr`, `'${route.cidr}' is not an IPv4 CIDR with no host bits`);
      const via = parseIpv4(route.via);
      if (cidr && via !== undefined && !cidrContains(cidr, via)) c.problem(`${rp}.via`, `${route.via} is not on the subnet: a next hop must be reachable directly`);
      return route;
    });
  }
  return out;
}

/**
 * The shortest and longest health check interval and timeout (a check is judged on a 20 ms tick, so
 * shorter would be noise), the longest affinity timeout, and the most ports and backends of one load balancer.
 */
export const LB_LIMITS = { minIntervalSeconds: 0.1, minTimeoutSeconds: 0.05, intervalSeconds: 3600, affinitySeconds: 86_400, ports: 64, backends: 1024, weight: 1000, count: 10 };

/** A load balancer of VPC `vpc` (under `vpcs[i].loadBalancers[j]`), checked against the VPC's subnets; its backends are checked with the ports. */
function loadBalancer(c: Checker, o: Obj, path: string, vpc: string, subnets: readonly Subnet[]): LoadBalancer {
  const subnetName = c.str(o, 'subnet', path);
  const vip = c.str(o, 'vip', path, IPV4);
  const subnet = subnets.find((s) => s.name === subnetName);
  if (subnetName && !subnet) c.problem(`${path}.subnet`, `unknown subnet '${subnetName}' in VPC ${vpc}`);
  if (subnet && !hasIpv4(subnet)) c.problem(`${path}.subnet`, `subnet ${subnetName} is IPv6-only: load balancers are IPv4 only, an IPv6 VIP is not supported`);
  const sc = subnet && hasIpv4(subnet) && parseCidr(subnet.cidr);
  const vipn = parseIpv4(vip);
  if (sc && vipn !== undefined) {
    if (!cidrContains(sc, vipn)) c.problem(`${path}.vip`, `${vip} is outside subnet ${subnetName} (${subnet!.cidr})`);
    else if (vip === subnet!.gateway) c.problem(`${path}.vip`, `${vip} is the gateway of ${subnetName}`);
  }
  const ports = lbPorts(c, o, path);
  const backends: LoadBalancerBackend[] = c.list(o, 'backends', `${path}.`).map((b, k) => {
    const bp = `${path}.backends[${k}]`;
    const targetPort = b.targetPort === undefined ? undefined : c.int(b, 'targetPort', bp, 1, 65535);
    return { port: c.str(b, 'port', bp), ...(targetPort === undefined ? {} : { targetPort }), weight: b.weight === undefined ? 1 : c.int(b, 'weight', bp, 0, LB_LIMITS.weight) };
  });
  if (o.backends !== undefined && backends.length === 0) c.problem(`${path}.backends`, 'must name at least one backend');
  if (backends.length > LB_LIMITS.backends) c.problem(`${path}.backends`, `${backends.length} backends exceed ${LB_LIMITS.backends}`);
  if (backends.length > 0 && backends.every((b) => b.weight === 0)) c.problem(`${path}.backends`, 'every backend has weight 0: the VIP could serve nobody');
  c.unique(backends, (b) => b.port, (k) => `${path}.backends[${k}].port`, 'backend');
  const healthDoc = o.healthCheck;
  let healthCheck: HealthCheck | undefined;
  if (healthDoc !== undefined) {
    if (!healthDoc || typeof healthDoc !== 'object' || Array.isArray(healthDoc)) c.problem(`${path}.healthCheck`, 'must be an object');
    else healthCheck = health(c, c.track(healthDoc as Obj, `${path}.healthCheck`), `${path}.healthCheck`);
  }
  const affinityDoc = o.sessionAffinity;
  let sessionAffinity: LoadBalancer['sessionAffinity'];
  if (affinityDoc !== undefined) {
    if (!affinityDoc || typeof affinityDoc !== 'object' || Array.isArray(affinityDoc)) c.problem(`${path}.sessionAffinity`, 'must be an object such as { timeoutSeconds: 300 }');
    else sessionAffinity = { timeoutSeconds: c.int(c.track(affinityDoc as Obj, `${path}.sessionAffinity`), 'timeoutSeconds', `${path}.sessionAffinity`, 1, LB_LIMITS.affinitySeconds) };
  }
  return {
    name: c.str(o, 'name', path),
    vpc,
    subnet: subnetName,
    vip,
    protocol: c.oneOf(o, 'protocol', path, ['tcp', 'udp'] as const, 'tcp'),
    ports,
    backends,
    ...(healthCheck ? { healthCheck } : {}),
    zoneAffinity: c.bool(o, 'zoneAffinity', path, false),
    ...(sessionAffinity ? { sessionAffinity } : {}),
  };
}

/** `ports: 80` or `ports: [80, 443]` */
function lbPorts(c: Checker, o: Obj, path: string): number[] {
  const v = o.ports;
  const list = typeof v === 'number' ? [v] : Array.isArray(v) ? v : undefined;
  if (!list || list.length === 0 || list.length > LB_LIMITS.ports || !list.every((x) => Number.isInteger(x) && x >= 1 && x <= 65535)) {
    c.problem(`${path}.ports`, v === undefined ? 'is required (a port or a list of ports)' : `must be a port or a list of 1 to ${LB_LIMITS.ports} ports in 1..65535`);
    return [];
  }
  const ports = list as number[];
  c.unique(ports, String, (k) => `${path}.ports[${k}]`, 'port');
  return ports;
}

function health(c: Checker, h: Obj, path: string): HealthCheck {
  const type = c.oneOf(h, 'type', path, ['tcp', 'http'] as const);
  const intervalSeconds = h.intervalSeconds === undefined ? 5 : c.seconds(h, 'intervalSeconds', path, LB_LIMITS.minIntervalSeconds, LB_LIMITS.intervalSeconds);
  const timeoutSeconds = h.timeoutSeconds === undefined ? Math.min(3, intervalSeconds) : c.seconds(h, 'timeoutSeconds', path, LB_LIMITS.minTimeoutSeconds, LB_LIMITS.intervalSeconds);
  if (timeoutSeconds > intervalSeconds) c.problem(`${path}.timeoutSeconds`, `${timeoutSeconds} s is longer than the interval (${intervalSeconds} s): checks would overlap`);
  const httpOnly = (key: string) => h[key] !== undefined && type !== 'http' && c.problem(`${path}.${key}`, `is for type http, not ${type}`);
  httpOnly('path');
  httpOnly('expectStatus');
  const out: HealthCheck = {
    type,
    intervalSeconds,
    timeoutSeconds,
    rise: h.rise === undefined ? 2 : c.int(h, 'rise', path, 1, LB_LIMITS.count),
    fall: h.fall === undefined ? 3 : c.int(h, 'fall', path, 1, LB_LIMITS.count),
  };
  if (type === 'http') {
    out.path = h.path === undefined ? '/' : c.str(h, 'path', path, { re: /^\/[\x21-\x7e]*$/, what: "a path such as '/healthz'" });
    out.expectStatus = h.expectStatus === undefined ? 200 : c.int(h, 'expectStatus', path, 100, 599);
  }
  return out;
}

/**
 * What load balancers need from the ports: every backend a port of the same VPC, and no VIP that is
 * a port's address too (the VIP's ARP answer and its traffic would be the port's).
 */
function loadBalancerPorts(c: Checker, lbs: readonly { lb: LoadBalancer; path: string }[], ports: readonly VmPort[]): void {
  const byName = new Map(ports.map((p) => [p.name, p]));
  for (const { lb, path } of lbs) {
    lb.backends.forEach((b, k) => {
      const port = byName.get(b.port);
      if (b.port && !port) c.problem(`${path}.backends[${k}].port`, `unknown port '${b.port}'`);
      else if (port && port.vpc !== lb.vpc) c.problem(`${path}.backends[${k}].port`, `port ${b.port} is in VPC ${port.vpc}, not in ${lb.vpc}: backends must be in the load balancer's VPC`);
      else if (port && !portHasIpv4(port)) c.problem(`${path}.backends[${k}].port`, `port ${b.port} has no IPv4 address (subnet ${port.subnet} is IPv6-only): load balancers are IPv4 only, an IPv6 backend is not supported`);
    });
    const owner = lb.vip ? ports.find((p) => p.vpc === lb.vpc && p.ip === lb.vip) : undefined;
    if (lb.vip && owner) c.problem(`${path}.vip`, `${lb.vip} is the address of port ${owner.name} in VPC ${lb.vpc}`);
  }
  // one VIP address, protocol and port can be one load balancer's only
  const seen = new Map<string, string>();
  for (const { lb, path } of lbs) {
    for (const port of lb.ports) {
      const key = `${lb.vpc}/${lb.vip}/${lb.protocol}/${port}`;
      const first = seen.get(key);
      if (first !== undefined && first !== path) c.problem(`${path}.ports`, `${lb.vip} ${lb.protocol} port ${port} is already served by ${first}`);
      else seen.set(key, path);
    }
  }
}

/** Validates a parsed document (YAML or JSON) and returns the model; throws ModelValidationError naming every problem. */
export function validateModel(doc: unknown, source: string): NetworkModel {
  const c = new Checker();
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new ModelValidationError(source, [{ path: '(root)', problem: 'must be an object' }]);
  const root = c.track(doc as Obj, '');

  const zones: Zone[] = c.list(root, 'zones', '').map((z, i) => {
    const p = `zones[${i}]`;
    const underlay = c.str(z, 'underlay', p);
    if (underlay && !parseCidr(underlay)) c.problem(`${p}.underlay`, `'${underlay}' is not an IPv4 CIDR with no host bits`);
    return { name: c.str(z, 'name', p), underlay };
  });
  c.unique(zones, (z) => z.name, (i) => `zones[${i}].name`, 'zone');

  const hypervisors: Hypervisor[] = c.list(root, 'hypervisors', '').map((h, i) => {
    const p = `hypervisors[${i}]`;
    const name = c.str(h, 'name', p);
    const zone = c.str(h, 'zone', p);
    const tunnelIp = c.str(h, 'tunnelIp', p, IPV4);
    const z = zones.find((x) => x.name === zone);
    if (zone && !z) c.problem(`${p}.zone`, `unknown zone '${zone}'`);
    const zc = z && parseCidr(z.underlay);
    const tip = parseIpv4(tunnelIp);
    if (zc && tip !== undefined && !cidrContains(zc, tip)) c.problem(`${p}.tunnelIp`, `${tunnelIp} is outside zone ${zone}'s underlay ${z!.underlay}`);
    const ovsdb = h.ovsdb === undefined ? undefined : c.str(h, 'ovsdb', p, OVSDB_TARGET);
    return {
      name,
      zone,
      tunnelIp,
      datapathId: datapathId(c, h, p, name),
      bridge: c.optStr(h, 'bridge', p) ?? 'br-int',
      ...(ovsdb === undefined ? {} : { ovsdb }),
    };
  });
  c.unique(hypervisors, (h) => h.name, (i) => `hypervisors[${i}].name`, 'hypervisor');
  c.unique(hypervisors, (h) => h.tunnelIp, (i) => `hypervisors[${i}].tunnelIp`, 'tunnel IP');
  c.unique(hypervisors, (h) => h.datapathId.toString(), (i) => `hypervisors[${i}].datapathId`, 'datapath id');

  const vpcs: Vpc[] = [];
  const subnets: Subnet[] = [];
  const acls: AclRule[] = [];
  const loadBalancers: { lb: LoadBalancer; path: string }[] = [];
  const vpcDocs = c.list(root, 'vpcs', '');
  vpcDocs.forEach((v, i) => {
    const p = `vpcs[${i}]`;
    const vpc = c.str(v, 'name', p);
    // 24 bits: the Geneve VNI (see docs/pipeline.md)
    vpcs.push({ name: vpc, vni: c.int(v, 'vni', p, 1, VNI_MAX) });
    const mine: { s: Subnet; path: string }[] = [];
    c.list(v, 'subnets', `${p}.`).forEach((s, j) => {
      const sp = `${p}.subnets[${j}]`;
      const name = c.str(s, 'name', sp);
      const ipv6 = subnetIpv6(s.ipv6, `${sp}.ipv6`, (path, problem) => c.problem(path, problem));
      const ipv4 = subnetIpv4(c, s, sp, s.ipv6 !== undefined);
      const pc = ipv4 && parseCidr(ipv4.cidr);
      for (const other of mine) {
        const oc = hasIpv4(other.s) && parseCidr(other.s.cidr);
        if (pc && oc && cidrsOverlap(pc, oc)) c.problem(`${sp}.cidr`, `${ipv4.cidr} overlaps ${other.s.cidr} (${other.path}) in the same VPC`);
      }
      const tunnelKey = s.tunnelKey === undefined ? undefined : c.int(s, 'tunnelKey', sp, FLOOD_KEYS.min, FLOOD_KEYS.max);
      const subnet: Subnet = {
        name,
        vpc,
        ...ipv4,
        routerMac: routerMac(vpc, name),
        ...(tunnelKey === undefined ? {} : { tunnelKey }),
        ...(ipv4 ? subnetDhcpOptions(c, s, sp, pc) : ipv6OnlyHasNoDhcp(c, s, sp)),
        ...(ipv6 === undefined ? {} : { ipv6 }),
      };
      mine.push({ s: subnet, path: sp });
      subnets.push(subnet);
    });
    c.unique(mine, (m) => m.s.name, (j) => `${p}.subnets[${j}].name`, 'subnet');
    overlappingIpv6Prefixes(mine.map((m) => ({ subnet: m.s, path: m.path })), (path, problem) => c.problem(path, problem));
    collidingKeys(c, mine.map((m) => m.s), FLOOD_KEYS, (j) => `${p}.subnets[${j}]`);
    c.list(v, 'acls', `${p}.`, false).forEach((a, j) => {
      const ap = `${p}.acls[${j}]`;
      const subnet = c.str(a, 'subnet', ap);
      if (subnet && !mine.some((m) => m.s.name === subnet)) c.problem(`${ap}.subnet`, `unknown subnet '${subnet}' in VPC ${vpc}`);
      const protocol = c.oneOf(a, 'protocol', ap, PROTOCOLS, 'any');
      const ports = portRange(c, a, ap);
      if (ports && protocol !== 'tcp' && protocol !== 'udp') c.problem(`${ap}.ports`, `ports need protocol tcp or udp, not ${protocol}`);
      const remoteValue = a.remote;
      const remoteDoc = remoteValue && typeof remoteValue === 'object' && !Array.isArray(remoteValue) ? c.track(remoteValue as Obj, `${ap}.remote`) : undefined;
      let remote: AclRule['remote'];
      if (remoteValue !== undefined) {
        if (remoteDoc === undefined || ('subnet' in remoteDoc) === ('cidr' in remoteDoc)) {
          c.problem(`${ap}.remote`, 'must be { subnet: NAME } or { cidr: A.B.C.D/N }');
        } else if ('subnet' in remoteDoc) {
          const rs = c.str(remoteDoc, 'subnet', `${ap}.remote`);
          if (rs && !mine.some((m) => m.s.name === rs)) c.problem(`${ap}.remote.subnet`, `unknown subnet '${rs}' in VPC ${vpc}`);
          remote = { subnet: rs };
        } else {
          const rc = c.str(remoteDoc, 'cidr', `${ap}.remote`);
          if (rc) aclRemoteCidr(rc, protocol, `${ap}.remote.cidr`, (path, problem) => c.problem(path, problem));
          remote = { cidr: rc };
        }
      }
      const tier = mine.find((m) => m.s.name === subnet)?.s;
      if (tier && !hasIpv4(tier)) {
        const why = `subnet ${subnet} is IPv6-only: an IPv4 rule would never match`;
        if (protocol === 'icmp') c.problem(`${ap}.protocol`, `${why} (use icmp6)`);
        if (remote && 'cidr' in remote && parseCidr(remote.cidr)) c.problem(`${ap}.remote.cidr`, `${remote.cidr} is IPv4: ${why}`);
      }
      const port = c.optStr(a, 'port', ap);
      acls.push({
        name: c.optStr(a, 'name', ap) ?? `${vpc}-acl-${j}`,
        vpc,
        subnet,
        ...(port === undefined ? {} : { port }),
        direction: c.oneOf(a, 'direction', ap, ['ingress', 'egress'] as const),
        action: c.oneOf(a, 'action', ap, ['allow', 'deny'] as const),
        protocol,
        ...(ports ? { ports } : {}),
        ...(remote === undefined ? {} : { remote }),
      });
    });
    const lbs = c.list(v, 'loadBalancers', `${p}.`, false).map((o, j) => ({ lb: loadBalancer(c, o, `${p}.loadBalancers[${j}]`, vpc, mine.map((m) => m.s)), path: `${p}.loadBalancers[${j}]` }));
    c.unique(lbs, (x) => x.lb.name, (j) => `${p}.loadBalancers[${j}].name`, 'load balancer');
    loadBalancers.push(...lbs);
  });
  c.unique(vpcs, (v) => v.name, (i) => `vpcs[${i}].name`, 'VPC');
  c.unique(vpcs, (v) => String(v.vni), (i) => `vpcs[${i}].vni`, 'VNI');

  // lookups by name, the first of duplicates as a search of the list would find (duplicates are reported above)
  const subnetOf = new Map<string, Subnet>();
  for (const s of subnets) if (!subnetOf.has(`${s.vpc}\0${s.name}`)) subnetOf.set(`${s.vpc}\0${s.name}`, s);
  const vpcNames = new Set(vpcs.map((v) => v.name));
  const hypervisorNames = new Set(hypervisors.map((h) => h.name));
  const ports: VmPort[] = c.list(root, 'ports', '').map((o, i) => {
    const p = `ports[${i}]`;
    const name = c.str(o, 'name', p);
    const vpc = c.str(o, 'vpc', p);
    const subnetName = c.str(o, 'subnet', p);
    const subnet = subnetOf.get(`${vpc}\0${subnetName}`);
    const ip = portIpv4(c, o, p, subnet);
    const hypervisor = c.str(o, 'hypervisor', p);
    if (vpc && !vpcNames.has(vpc)) c.problem(`${p}.vpc`, `unknown VPC '${vpc}'`);
    else if (subnetName && !subnet) c.problem(`${p}.subnet`, `unknown subnet '${subnetName}' in VPC ${vpc}`);
    if (subnet && !hasIpv4(subnet) && o.ipv6 === undefined && !subnet.ipv6?.slaac) {
      c.problem(`${p}.ipv6`, `is required: subnet ${subnetName} is IPv6-only without SLAAC, so the port would have no address`);
    }
    if (hypervisor && !hypervisorNames.has(hypervisor)) c.problem(`${p}.hypervisor`, `unknown hypervisor '${hypervisor}'`);
    const ofport = o.ofport === undefined ? undefined : c.int(o, 'ofport', p, 1, 0xfeff);
    if (ofport === TUNNEL_OFPORT) c.problem(`${p}.ofport`, `${TUNNEL_OFPORT} is reserved for the tunnel port`);
    const tunnelKey = o.tunnelKey === undefined ? undefined : c.int(o, 'tunnelKey', p, PORT_KEYS.min, PORT_KEYS.max);
    const ipv6 = portIpv6Address(o.ipv6, `${p}.ipv6`, subnet, (path, problem) => c.problem(path, problem));
    const iface = c.optStr(o, 'interface', p) ?? name;
    // switches report port names of at most 15 bytes (IFNAMSIZ); a longer one could never be placed
    if (Buffer.byteLength(iface) > 15) c.problem(`${p}.${o.interface === undefined ? 'name' : 'interface'}`, `interface name '${iface}' is longer than 15 bytes`);
    return {
      name,
      vpc,
      subnet: subnetName,
      mac: c.str(o, 'mac', p, MAC),
      ...(ip === undefined ? {} : { ip }),
      hypervisor,
      interface: iface,
      ...(ofport === undefined ? {} : { ofport }),
      ...(tunnelKey === undefined ? {} : { tunnelKey }),
      ...(ipv6 === undefined ? {} : { ipv6 }),
    };
  });
  c.unique(ports, (p) => p.name, (i) => `ports[${i}].name`, 'port');
  c.unique(ports, (p) => (p.ip === undefined ? undefined : `${p.vpc}/${p.ip}`), (i) => `ports[${i}].ip`, 'IP in the VPC');
  c.unique(ports, (p) => `${p.vpc}/${p.mac}`, (i) => `ports[${i}].mac`, 'MAC in the VPC');
  c.unique(ports, (p) => `${p.hypervisor}/${p.interface}`, (i) => `ports[${i}].interface`, 'interface on the hypervisor');
  duplicateIpv6Addresses(ports.map((port) => ({ port, subnet: subnets.find((s) => s.vpc === port.vpc && s.name === port.subnet) })), (path, problem) => c.problem(path, problem));
  const portsByVpc = new Map<string, number[]>();
  ports.forEach((p, i) => {
    const mine = portsByVpc.get(p.vpc);
    if (mine) mine.push(i);
    else portsByVpc.set(p.vpc, [i]);
  });
  for (const indexes of portsByVpc.values()) {
    collidingKeys(c, indexes.map((i) => ports[i]!), PORT_KEYS, (j) => `ports[${indexes[j]}]`);
  }
  sharedConntrackZones(c, vpcs, ports);
  loadBalancerPorts(c, loadBalancers, ports);
  const portPlaces = new Set(ports.map((p) => `${p.name}\0${p.vpc}\0${p.subnet}`));
  acls.forEach((a, i) => {
    if (a.port && !portPlaces.has(`${a.port}\0${a.vpc}\0${a.subnet}`)) {
      c.problem(`acl ${a.name} (#${i})`, `port '${a.port}' is not a port of ${a.vpc}/${a.subnet}`);
    }
  });

  const northSouth = northSouthOf(c, root, vpcDocs, { zones, hypervisors, vpcs, subnets, ports });

  c.unknownKeys();
  if (c.issues.length) throw new ModelValidationError(source, c.issues);
  return { zones, hypervisors, vpcs, subnets, ports, acls, ...northSouth, loadBalancers: loadBalancers.map((x) => x.lb) };
}

/** A port's `ip`: required on a subnet with IPv4 (or an unknown one), refused on an IPv6-only one. */
function portIpv4(c: Checker, o: Obj, p: string, subnet: Subnet | undefined): string | undefined {
  if (subnet && !hasIpv4(subnet)) {
    if (o.ip !== undefined) c.problem(`${p}.ip`, `subnet ${subnet.name} is IPv6-only (no cidr): a port of it has no IPv4 address`);
    return undefined;
  }
  const ip = c.str(o, 'ip', p, IPV4);
  const sc = subnet && parseCidr(subnet.cidr);
  const ipn = parseIpv4(ip);
  if (sc && ipn !== undefined && !cidrContains(sc, ipn)) c.problem(`${p}.ip`, `${ip} is outside subnet ${subnet!.name} (${subnet!.cidr})`);
  if (subnet && ip === subnet.gateway) c.problem(`${p}.ip`, `${ip} is the gateway of ${subnet.name}`);
  return ip;
}

/** an address that must lie on an external network: its network's CIDR, not its next hop */
function onExternalNetwork(c: Checker, path: string, ip: string, net: ExternalNetwork | undefined): void {
  const n = parseIpv4(ip);
  const cidr = net && parseCidr(net.cidr);
  if (n === undefined || !cidr) return;
  if (!cidrContains(cidr, n)) c.problem(path, `${ip} is outside external network ${net!.name} (${net!.cidr})`);
  else if (ip === net!.nextHop) c.problem(path, `${ip} is the next hop of external network ${net!.name}`);
}

/**
 * External networks, floating IPs and each VPC's egress (docs/north-south.md). Every external
 * address (gateway, floating IP, SNAT) is one object's alone: two owners of one address would
 * both answer ARP for it and both be announced by BGP.
 */
function northSouthOf(
  c: Checker,
  root: Obj,
  vpcDocs: readonly Obj[],
  m: Pick<NetworkModel, 'zones' | 'hypervisors' | 'vpcs' | 'subnets' | 'ports'>,
): Pick<NetworkModel, 'externalNetworks' | 'floatingIps' | 'egress'> {
  const addressOwner = new Map<string, string>();
  const claim = (ip: string, path: string) => {
    if (!IPV4_RE.test(ip)) return;
    const first = addressOwner.get(ip);
    if (first !== undefined) c.problem(path, `external address ${ip} is already ${first}'s`);
    else addressOwner.set(ip, path);
  };

  const externalNetworks: ExternalNetwork[] = c.list(root, 'externalNetworks', '', false).map((e, i) => {
    const p = `externalNetworks[${i}]`;
    const zone = c.str(e, 'zone', p);
    if (zone && !m.zones.some((z) => z.name === zone)) c.problem(`${p}.zone`, `unknown zone '${zone}'`);
    const cidr = c.str(e, 'cidr', p);
    const pc = cidr ? parseCidr(cidr) : undefined;
    if (cidr && !pc) c.problem(`${p}.cidr`, `'${cidr}' is not an IPv4 CIDR with no host bits`);
    const nextHop = c.str(e, 'nextHop', p, IPV4);
    const nh = parseIpv4(nextHop);
    if (pc && nh !== undefined && !cidrContains(pc, nh)) c.problem(`${p}.nextHop`, `${nextHop} is outside ${cidr}`);
    const nextHopMac = e.nextHopMac === undefined ? undefined : c.str(e, 'nextHopMac', p, MAC);
    const name = c.str(e, 'name', p);
    const net = { name, zone, cidr, nextHop, ...(nextHopMac === undefined ? {} : { nextHopMac }), gateways: [] as ExternalNetwork['gateways'] };
    const gateways = c.list(e, 'gateways', `${p}.`);
    if (gateways.length === 0 && Array.isArray(e.gateways)) c.problem(`${p}.gateways`, 'needs at least one gateway hypervisor');
    net.gateways = gateways.map((g, j) => {
      const gp = `${p}.gateways[${j}]`;
      const hypervisor = c.str(g, 'hypervisor', gp);
      const h = m.hypervisors.find((x) => x.name === hypervisor);
      if (hypervisor && !h) c.problem(`${gp}.hypervisor`, `'${hypervisor}' is not a hypervisor of the model`);
      else if (h && zone && h.zone !== zone) c.problem(`${gp}.hypervisor`, `${hypervisor} is in zone ${h.zone}, not ${zone}: a gateway serves its own zone only`);
      const ip = c.str(g, 'ip', gp, IPV4);
      onExternalNetwork(c, `${gp}.ip`, ip, pc ? net : undefined);
      claim(ip, gp);
      const iface = c.optStr(g, 'interface', gp) ?? name;
      if (Buffer.byteLength(iface) > 15) c.problem(`${gp}.${g.interface === undefined ? 'hypervisor' : 'interface'}`, `interface name '${iface}' is longer than 15 bytes (it defaults to the network's name)`);
      const vm = m.ports.find((x) => x.hypervisor === hypervisor && x.interface === iface);
      if (vm) c.problem(`${gp}.interface`, `interface '${iface}' on ${hypervisor} is port ${vm.name}'s`);
      return { hypervisor, ip, interface: iface };
    });
    c.unique(net.gateways, (g) => g.hypervisor, (j) => `${p}.gateways[${j}].hypervisor`, 'gateway');
    return net;
  });
  c.unique(externalNetworks, (e) => e.name, (i) => `externalNetworks[${i}].name`, 'external network');
  externalNetworks.forEach((e, i) => {
    const pc = parseCidr(e.cidr);
    externalNetworks.slice(0, i).forEach((o, j) => {
      const oc = parseCidr(o.cidr);
      if (pc && oc && cidrsOverlap(pc, oc)) c.problem(`externalNetworks[${i}].cidr`, `${e.cidr} overlaps ${o.cidr} (externalNetworks[${j}])`);
    });
  });
  const networkOf = (name: string, path: string) => {
    const net = externalNetworks.find((e) => e.name === name);
    if (name && !net) c.problem(path, `unknown external network '${name}'`);
    return net;
  };
  const zoneHasGateways = (zone: string) => externalNetworks.some((e) => e.zone === zone);

  const floatingIps: FloatingIp[] = c.list(root, 'floatingIps', '', false).map((f, i) => {
    const p = `floatingIps[${i}]`;
    const ip = c.str(f, 'ip', p, IPV4);
    const network = c.str(f, 'network', p);
    onExternalNetwork(c, `${p}.ip`, ip, networkOf(network, `${p}.network`));
    claim(ip, p);
    const port = c.optStr(f, 'port', p);
    const vm = port === undefined ? undefined : m.ports.find((x) => x.name === port);
    if (port !== undefined && port !== '' && !vm) c.problem(`${p}.port`, `unknown port '${port}'`);
    else if (vm && !portHasIpv4(vm)) c.problem(`${p}.port`, `port ${port} has no IPv4 address (subnet ${vm.subnet} is IPv6-only): floating IPs are IPv4 only, IPv6 is not supported`);
    const zone = vm && m.hypervisors.find((h) => h.name === vm.hypervisor)?.zone;
    // served by the gateways of the zone its VM is in (docs/north-south.md), wherever it was drawn from
    if (zone && !zoneHasGateways(zone)) c.problem(`${p}.port`, `${port} is in zone ${zone}, which has no external network to reach it through`);
    return { ip, network, ...(port === undefined ? {} : { port }), mac: floatingIpMac(ip) };
  });
  const boundAt = new Map<string, number>();
  floatingIps.forEach((f, i) => {
    if (!f.port) return;
    const first = boundAt.get(f.port);
    if (first !== undefined) c.problem(`floatingIps[${i}].port`, `${f.port} is already bound to floating IP ${floatingIps[first]!.ip} (floatingIps[${first}]): a port has one floating IP`);
    else boundAt.set(f.port, i);
  });

  const egress: VpcEgress[] = [];
  vpcDocs.forEach((v, i) => {
    if (v.egress === undefined) return;
    const p = `vpcs[${i}].egress`;
    const doc = v.egress;
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
      c.problem(p, 'must be an object { routes?, snat }');
      return;
    }
    const e = c.track(doc as Obj, p);
    const vpc = m.vpcs[i]!.name;
    const ipv6Only = m.subnets.find((s) => s.vpc === vpc && !hasIpv4(s));
    if (ipv6Only) c.problem(p, `subnet ${ipv6Only.name} is IPv6-only: egress (SNAT) is IPv4 only, a VPC with an IPv6-only subnet cannot have it yet`);
    const routes =
      e.routes === undefined
        ? ['0.0.0.0/0']
        : Array.isArray(e.routes) && e.routes.length > 0
          ? e.routes.map((r, j) => {
              if (typeof r !== 'string' || !parseCidr(r)) c.problem(`${p}.routes[${j}]`, `'${String(r)}' is not an IPv4 CIDR with no host bits`);
              return String(r);
            })
          : (c.problem(`${p}.routes`, 'must be a non-empty list of IPv4 CIDRs'), []);
    const snat = c.list(e, 'snat', `${p}.`).map((s, j) => {
      const sp = `${p}.snat[${j}]`;
      const network = c.str(s, 'network', sp);
      const ip = c.str(s, 'ip', sp, IPV4);
      onExternalNetwork(c, `${sp}.ip`, ip, networkOf(network, `${sp}.network`));
      claim(ip, sp);
      return { network, ip };
    });
    c.unique(snat, (s) => s.network, (j) => `${p}.snat[${j}].network`, 'SNAT network (one address per VPC and network)');
    egress.push({ vpc, routes, snat });
  });
  return { externalNetworks, floatingIps, egress };
}
