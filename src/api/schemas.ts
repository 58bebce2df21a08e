/**
 * The API's resources and routes, with the JSON schemas of their objects: one table that the server
 * registers and the OpenAPI document is built from. The schemas describe what the model accepts;
 * the model's own validator (validateModel) is what checks a body, so that the API refuses exactly
 * what a model file would, with the same problem texts.
 */
import type { ObjectKind } from '../model/etcd-writer';

type Schema = Record<string, unknown>;

const str = (description: string, extra: Schema = {}): Schema => ({ type: 'string', minLength: 1, description, ...extra });
const int = (description: string, minimum: number, maximum: number): Schema => ({ type: 'integer', minimum, maximum, description });
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
  vpcs: object(['name', 'vni'], { name: str('VPC name'), vni: int("the VPC's 12-bit key", 1, 0xfff) }),
  subnets: object(['name', 'cidr', 'gateway'], {
    name: str('subnet name, unique in its VPC'),
    cidr: str('IPv4 CIDR, not overlapping the VPC\'s others'),
    gateway: str('gateway address, in the CIDR', IPV4),
    ipv6: object(['prefix'], {
      prefix: str("IPv6 prefix, no host bits, not overlapping the VPC's others; a /64 with slaac"),
      slaac: { type: 'boolean', description: 'advertise the prefix for SLAAC; ports without ipv6 take EUI-64 from their MAC (default true)' },
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
  ports: object(['name', 'vpc', 'subnet', 'mac', 'ip', 'hypervisor'], {
    name: str('port name'),
    vpc: str('its VPC'),
    subnet: str('its subnet in the VPC'),
    mac: str('lower-case MAC, unique in the VPC', { pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$' }),
    ip: str('IPv4 address in the subnet, unique in the VPC', IPV4),
    hypervisor: str('the hypervisor that hosts it'),
    interface: str('OVS interface name (default: the port name), at most 15 bytes'),
    ofport: int('OpenFlow port number, when pinned', 1, 0xfeff),
    tunnelKey: int("the port's key in its VPC's tunnel keys, when pinned", 1, 0xeff),
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
}

export const RESOURCES: readonly Resource[] = [
  { kind: 'zones', collection: '/v1/zones', item: '/v1/zones/:name', what: 'zone' },
  { kind: 'hypervisors', collection: '/v1/hypervisors', item: '/v1/hypervisors/:name', what: 'hypervisor' },
  { kind: 'vpcs', collection: '/v1/vpcs', item: '/v1/vpcs/:name', what: 'VPC' },
  { kind: 'subnets', collection: '/v1/vpcs/:vpc/subnets', item: '/v1/vpcs/:vpc/subnets/:name', what: 'subnet' },
  { kind: 'acls', item: '/v1/vpcs/:vpc/acls', what: "VPC's ordered ACL rule list" },
  { kind: 'ports', collection: '/v1/ports', item: '/v1/ports/:name', what: 'port' },
];

export const OPENAPI_PATH = '/v1/openapi.json';
