/**
 * The API's resources and routes, with the JSON schemas of their objects: one table that the server
 * registers and the OpenAPI document is built from. The schemas describe what the model accepts;
 * the model's own validator (validateModel) is what checks a body, so that the API refuses exactly
 * what a model file would, with the same problem texts.
 */
import { LB_LIMITS, PORT_KEYS, VNI_MAX } from '../model';
import type { ObjectKind } from '../model/etcd-writer';

type Schema = Record<string, unknown>;

const str = (description: string, extra: Schema = {}): Schema => ({ type: 'string', minLength: 1, description, ...extra });
const int = (description: string, minimum: number, maximum: number): Schema => ({ type: 'integer', minimum, maximum, description });
/** whole or fractional seconds; the model takes them to the millisecond */
const seconds = (description: string, minimum: number, maximum: number): Schema => ({ type: 'number', minimum, maximum, description: `${description}; seconds, to the millisecond` });
const IPV4 = { format: 'ipv4' };
const object = (required: string[], properties: Record<string, Schema>): Schema => ({ type: 'object', required, properties, additionalProperties: false });

/** the object as a model file has it, by kind */
export const OBJECT_SCHEMAS: Record<ObjectKind, Schema> = {
  zones: object(['name', 'underlay'], { name: str('zone name'), underlay: str("the zone's underlay subnet, an IPv4 CIDR") }),
  hypervisors: object(['name', 'zone', 'tunnelIp'], {
    name: str('hypervisor name'),
    zone: str('its zone'),
    tunnelIp: str("its tunnel endpoint, in the zone's underlay", IPV4),
    datapathId: { oneOf: [{ type: 'string', pattern: '^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$' }, { type: 'integer', minimum: 0 }], description: 'datapath id of its bridge (default: derived from the name)' },
    bridge: str('integration bridge (default br-int)'),
    ovsdb: str("its OVSDB target, e.g. 'unix:/run/zm/hv1/db.sock'"),
  }),
  vpcs: object(['name', 'vni'], {
    name: str('VPC name'),
    vni: int("the VPC's 24-bit key, its Geneve VNI", 1, VNI_MAX),
    egress: object(['snat'], {
      routes: { type: 'array', minItems: 1, items: str('IPv4 CIDR'), description: 'destinations routed to the outside (default 0.0.0.0/0)' },
      snat: { type: 'array', items: object(['network', 'ip'], { network: str('an external network'), ip: str('the SNAT address on it, one per network', IPV4) }) },
    }),
  }),
  subnets: object(['name'], {
    name: str('subnet name, unique in its VPC'),
    cidr: str("IPv4 CIDR, not overlapping the VPC's others; with gateway, absent on an IPv6-only subnet (one with ipv6 only)"),
    gateway: str('gateway address, in the CIDR; given exactly when cidr is', IPV4),
    ipv6: object(['prefix'], {
      prefix: str("IPv6 prefix, no host bits, not overlapping the VPC's others; a /64 with slaac"),
      slaac: { type: 'boolean', description: 'advertise the prefix for SLAAC; ports without ipv6 take EUI-64 from their MAC (default true)' },
      dns: { type: 'array', minItems: 1, maxItems: 8, items: str('IPv6 address of a DNS server'), description: "handed out by stateless DHCPv6 with the subnet's domain as search list; the RA then sets O" },
    }),
  }),
  acls: {
    type: 'array',
    description: "the VPC's rules in evaluation order (first match wins)",
    items: object(['subnet', 'direction', 'action'], {
      name: str('rule name (default VPC-acl-INDEX)'),
      subnet: str('the tier the rule protects (ingress) or constrains (egress)'),
      port: str('only this port of the tier'),
      direction: { enum: ['ingress', 'egress'] },
      action: { enum: ['allow', 'deny'] },
      protocol: { enum: ['any', 'tcp', 'udp', 'icmp', 'icmp6'], description: 'default any' },
      ports: { oneOf: [{ type: 'integer', minimum: 1, maximum: 65535 }, { type: 'string', pattern: '^[0-9]+(-[0-9]+)?$' }], description: 'destination port or range, tcp/udp only' },
      remote: { oneOf: [object(['subnet'], { subnet: str('another tier of the VPC') }), object(['cidr'], { cidr: str('an IPv4 or IPv6 CIDR') })], description: 'the other side (default any address)' },
    }),
  },
  loadBalancers: object(['name', 'subnet', 'vip', 'ports', 'backends'], {
    name: str('load balancer name, unique in its VPC'),
    subnet: str('the subnet of the VIP'),
    vip: str('the virtual address, in the subnet and no port\'s', IPV4),
    protocol: { enum: ['tcp', 'udp'], description: 'default tcp' },
    ports: { oneOf: [{ type: 'integer', minimum: 1, maximum: 65535 }, { type: 'array', minItems: 1, maxItems: 64, items: { type: 'integer', minimum: 1, maximum: 65535 } }], description: "the VIP's ports" },
    backends: {
      type: 'array',
      minItems: 1,
      items: object(['port'], { port: str('a VM port of the VPC'), targetPort: int("the backend's own port, when it differs", 1, 65535), weight: int('share of new connections (default 1)', 0, 1000) }),
    },
    healthCheck: object(['type'], {
      type: { enum: ['tcp', 'http'] },
      path: str("http: the GET's path (default /)"),
      expectStatus: int('http: the status it must answer (default 200)', 100, 599),
      intervalSeconds: seconds('between two checks of a backend (default 5)', LB_LIMITS.minIntervalSeconds, LB_LIMITS.intervalSeconds),
      timeoutSeconds: seconds('a check unanswered this long fails; at most the interval (default min(3, interval))', LB_LIMITS.minTimeoutSeconds, LB_LIMITS.intervalSeconds),
      rise: int('successes that bring a backend back (default 2)', 1, 10),
      fall: int('failures that take it out (default 3)', 1, 10),
    }),
    zoneAffinity: { type: 'boolean', description: "prefer backends in the client's zone (default false)" },
    sessionAffinity: object(['timeoutSeconds'], { timeoutSeconds: int('one client keeps its backend this long after its last connection', 1, 86_400) }),
  }),
  externalNetworks: object(['name', 'zone', 'cidr', 'nextHop', 'gateways'], {
    name: str('external network name'),
    zone: str('the zone whose gateways attach to it'),
    cidr: str("the segment's IPv4 CIDR, overlapping no other external network"),
    nextHop: str("the edge router's address, in the CIDR", IPV4),
    nextHopMac: str("the edge router's lower-case MAC on the segment (gateways send nothing out without it)", { pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$' }),
    gateways: {
      type: 'array',
      minItems: 1,
      items: object(['hypervisor', 'ip'], {
        hypervisor: str('a hypervisor of the zone'),
        ip: str('its address on the segment', IPV4),
        interface: str("the gateway's OVS port on the segment (default: the network's name), at most 15 bytes"),
      }),
    },
  }),
  floatingIps: object(['ip', 'network'], {
    ip: str('the external address, on its network', IPV4),
    network: str('the external network it is drawn from'),
    port: str('the VM port it is bound to (absent: unbound); rebinding is a PUT of another port with the revision read'),
  }),
  ports: object(['name', 'vpc', 'subnet', 'mac', 'hypervisor'], {
    name: str('port name'),
    vpc: str('its VPC'),
    subnet: str('its subnet in the VPC'),
    mac: str('lower-case MAC, unique in the VPC', { pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$' }),
    ip: str('IPv4 address in the subnet, unique in the VPC; required on a subnet with cidr, refused on an IPv6-only one', IPV4),
    hypervisor: str('the hypervisor that hosts it'),
    interface: str('OVS interface name (default: the port name), at most 15 bytes'),
    ofport: int('OpenFlow port number, when pinned', 1, 0xfeff),
    tunnelKey: int("the port's key in its VPC's tunnel keys, when pinned", PORT_KEYS.min, PORT_KEYS.max),
    ipv6: str("IPv6 address in its subnet's prefix, unique in the VPC (default on a SLAAC subnet: EUI-64 of the MAC)", { format: 'ipv6' }),
  }),
};

export const REVISION_SCHEMA: Schema = {
  type: 'integer',
  minimum: 0,
  description: "the object's store revision (etcd mod_revision) as read; 0 for a new object. Also the ETag; a write may give it as If-Match instead",
};

/** A kind of object and where it lives. `collection` lists and creates; `item` reads, replaces and deletes. */
export interface Resource {
  readonly kind: ObjectKind;
  readonly collection?: string;
  readonly item: string;
  readonly what: string;
  /** the field that names the object in its path (default name) */
  readonly nameField?: 'ip';
}

export const RESOURCES: readonly Resource[] = [
  { kind: 'zones', collection: '/v1/zones', item: '/v1/zones/:name', what: 'zone' },
  { kind: 'hypervisors', collection: '/v1/hypervisors', item: '/v1/hypervisors/:name', what: 'hypervisor' },
  { kind: 'vpcs', collection: '/v1/vpcs', item: '/v1/vpcs/:name', what: 'VPC' },
  { kind: 'subnets', collection: '/v1/vpcs/:vpc/subnets', item: '/v1/vpcs/:vpc/subnets/:name', what: 'subnet' },
  { kind: 'acls', item: '/v1/vpcs/:vpc/acls', what: "VPC's ordered ACL rule list" },
  // under its VPC as a subnet is: its name is unique there only, its VIP and backends are the VPC's
  { kind: 'loadBalancers', collection: '/v1/vpcs/:vpc/loadBalancers', item: '/v1/vpcs/:vpc/loadBalancers/:name', what: 'load balancer' },
  { kind: 'ports', collection: '/v1/ports', item: '/v1/ports/:name', what: 'port' },
  { kind: 'externalNetworks', collection: '/v1/externalNetworks', item: '/v1/externalNetworks/:name', what: 'external network' },
  { kind: 'floatingIps', collection: '/v1/floatingIps', item: '/v1/floatingIps/:ip', what: 'floating IP', nameField: 'ip' },
];

export const OPENAPI_PATH = '/v1/openapi.json';
