/**
 * The model's layout in etcd (docs/etcd-store.md): one key per object, JSON values, under a
 * generation that one pointer key selects, so that an import of any size switches over in one
 * transaction and a single object can be written with a compare on its mod_revision.
 *
 *   /zonemesh/v1/current                          the generation in force (its id, as text)
 *   /zonemesh/v1/g/GEN/zones/NAME                 { name, underlay }
 *   /zonemesh/v1/g/GEN/hypervisors/NAME           { name, zone, tunnelIp, datapathId, bridge, ovsdb? }
 *   /zonemesh/v1/g/GEN/vpcs/NAME                  { name, vni, egress? }
 *   /zonemesh/v1/g/GEN/subnets/VPC/NAME           { name, cidr, gateway, tunnelKey?, dns?, domain?, leaseTime?, routes? }
 *   /zonemesh/v1/g/GEN/acls/VPC                   [ rule, ... ]   (one ordered list per VPC)
 *   /zonemesh/v1/g/GEN/loadBalancers/VPC/NAME     { name, subnet, vip, protocol, ports, backends, ... }
 *   /zonemesh/v1/g/GEN/ports/NAME                 { name, vpc, subnet, mac, ip, hypervisor, ... }
 *   /zonemesh/v1/g/GEN/externalNetworks/NAME      { name, zone, cidr, nextHop, gateways }
 *   /zonemesh/v1/g/GEN/floatingIps/IP             { ip, network, port? }
 *
 *   /zonemesh/v1/write-mark                       a random id each API write puts (etcd-writer.ts)
 *
 * Names are URI-encoded in keys. Keys under /zonemesh/v1/ outside these are not the model's.
 */
import { type ModelDocument, documentOf } from './document';
import { type ModelIssue, ModelValidationError } from './errors';
import type { NetworkModel } from './types';
import { validateModel } from './validate';

export const ETCD_ROOT = '/zonemesh/v1/';
export const CURRENT_KEY = `${ETCD_ROOT}current`;
export const GENERATIONS = `${ETCD_ROOT}g/`;
/** the mark of the last API write: tells a write whose answer was lost whether it went through */
export const WRITE_MARK_KEY = `${ETCD_ROOT}write-mark`;
/** the source named in the store's ModelValidationErrors */
export const ETCD_SOURCE = 'etcd';

export const generationPrefix = (generation: string): string => `${GENERATIONS}${generation}/`;

/** the generation a key belongs to; undefined for a key outside every generation */
export function generationOfKey(key: string): string | undefined {
  if (!key.startsWith(GENERATIONS)) return undefined;
  const end = key.indexOf('/', GENERATIONS.length);
  return end < 0 ? undefined : key.slice(GENERATIONS.length, end);
}

const seg = encodeURIComponent;

/** Every key and JSON value of a valid model, under a generation. */
export function entriesOf(model: NetworkModel, generation: string): Map<string, string> {
  const doc = documentOf(model);
  const g = generationPrefix(generation);
  const out = new Map<string, string>();
  const put = (key: string, value: unknown) => out.set(g + key, JSON.stringify(value));
  for (const z of doc.zones) put(`zones/${seg(z.name)}`, z);
  for (const h of doc.hypervisors) put(`hypervisors/${seg(h.name)}`, h);
  for (const { subnets, acls, loadBalancers, ...vpc } of doc.vpcs) {
    put(`vpcs/${seg(vpc.name)}`, vpc);
    for (const s of subnets) put(`subnets/${seg(vpc.name)}/${seg(s.name)}`, s);
    if (acls) put(`acls/${seg(vpc.name)}`, acls);
    for (const lb of loadBalancers ?? []) put(`loadBalancers/${seg(vpc.name)}/${seg(lb.name)}`, lb);
  }
  for (const p of doc.ports) put(`ports/${seg(p.name)}`, p);
  for (const e of doc.externalNetworks ?? []) put(`externalNetworks/${seg(e.name)}`, e);
  for (const f of doc.floatingIps ?? []) put(`floatingIps/${seg(f.ip)}`, f);
  return out;
}

/** A value as read from etcd: its JSON, or why it is not JSON. */
export type StoredValue = { readonly json: unknown } | { readonly syntaxError: string };

export function parseStoredValue(bytes: Buffer): StoredValue {
  try {
    return { json: JSON.parse(bytes.toString('utf8')) };
  } catch (e) {
    return { syntaxError: (e as Error).message };
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The key of every object of a model, in the order of the model's lists. */
export interface ModelKeys {
  zones: string[];
  hypervisors: string[];
  vpcs: string[];
  subnets: string[];
  ports: string[];
  /** VPC name → the key of its ACL list */
  acls: Map<string, string>;
  loadBalancers: string[];
  externalNetworks: string[];
  floatingIps: string[];
}

interface Assembled {
  doc: ModelDocument;
  issues: ModelIssue[];
  /** document path of an object (`ports[3]`, `vpcs[0].subnets[1]`, `vpcs[0].acls`) → its key */
  places: Map<string, string>;
  keys: ModelKeys;
}

/** the kinds of object the layout has a key for */
export type ObjectKind = 'zones' | 'hypervisors' | 'vpcs' | 'subnets' | 'acls' | 'ports' | 'loadBalancers' | 'externalNetworks' | 'floatingIps';

/** the empty ModelKeys */
const noKeys = (): ModelKeys => ({ zones: [], hypervisors: [], vpcs: [], subnets: [], ports: [], acls: new Map(), loadBalancers: [], externalNetworks: [], floatingIps: [] });

/**
 * What a key below a generation's prefix (`ports/web1`, `subnets/prod/web`) names: its kind and
 * decoded names; undefined when a name is not URI-encoded text. The kind is not checked.
 */
export function keyNames(relative: string): { kind: string; names: string[] } | undefined {
  const [kind, ...encoded] = relative.split('/');
  try {
    return { kind: kind!, names: encoded.map(decodeURIComponent) };
  } catch {
    return undefined;
  }
}

/** One generation's entries as a model document, in key order, with the problems of its keys. */
function assemble(entries: Iterable<readonly [string, StoredValue]>, generation: string): Assembled {
  const prefix = generationPrefix(generation);
  const issues: ModelIssue[] = [];
  const problem = (key: string, what: string) => issues.push({ path: key, problem: what });
  const mine = [...entries].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const lists: Record<'zones' | 'hypervisors' | 'ports' | 'externalNetworks' | 'floatingIps', [string, Obj][]> = { zones: [], hypervisors: [], ports: [], externalNetworks: [], floatingIps: [] };
  const vpcs = new Map<string, { key?: string; value?: Obj; subnets: [string, Obj][]; acls?: [string, unknown]; loadBalancers: [string, Obj][] }>();
  const vpcOf = (name: string) => vpcs.get(name) ?? vpcs.set(name, { subnets: [], loadBalancers: [] }).get(name)!;
  /** the value as an object whose name (a floating IP's: its ip) is the key's, or undefined (with the problem noted) */
  const named = (key: string, value: unknown, name: string, field = 'name'): Obj | undefined => {
    if (!isObj(value)) return problem(key, 'must be a JSON object'), undefined;
    if (value[field] !== undefined && value[field] !== name) problem(`${key}: ${field}`, `'${String(value[field])}' is not the key's ${field} '${name}'`);
    return { ...value, [field]: name };
  };

  for (const [key, stored] of mine) {
    if ('syntaxError' in stored) {
      problem(`${key}: (syntax)`, `not JSON: ${stored.syntaxError}`);
      continue;
    }
    const parsedKey = keyNames(key.slice(prefix.length));
    if (!parsedKey) {
      problem(key, 'a name in the key is not URI-encoded text');
      continue;
    }
    const { kind, names } = parsedKey;
    const value = stored.json;
    if ((kind === 'zones' || kind === 'hypervisors' || kind === 'ports' || kind === 'externalNetworks' || kind === 'floatingIps') && names.length === 1) {
      const o = named(key, value, names[0]!, kind === 'floatingIps' ? 'ip' : 'name');
      if (o) lists[kind].push([key, o]);
    } else if (kind === 'vpcs' && names.length === 1) {
      const o = named(key, value, names[0]!);
      const v = vpcOf(names[0]!);
      if (o && ('subnets' in o || 'acls' in o || 'loadBalancers' in o)) problem(key, `subnets, acls and loadBalancers are keys of their own (${prefix}subnets/VPC/NAME, ${prefix}acls/VPC, ${prefix}loadBalancers/VPC/NAME)`);
      else if (v.key !== undefined) problem(key, `a second key of VPC '${names[0]!}' (the first: ${v.key})`);
      else if (o) Object.assign(v, { key, value: o });
    } else if (kind === 'subnets' && names.length === 2) {
      const o = named(key, value, names[1]!);
      if (o) vpcOf(names[0]!).subnets.push([key, o]);
    } else if (kind === 'loadBalancers' && names.length === 2) {
      const o = named(key, value, names[1]!);
      if (o) vpcOf(names[0]!).loadBalancers.push([key, o]);
    } else if (kind === 'acls' && names.length === 1) {
      const v = vpcOf(names[0]!);
      if (!Array.isArray(value)) problem(key, 'must be a JSON list of rules');
      else if (v.acls) problem(key, `a second ACL list of VPC '${names[0]!}' (the first: ${v.acls[0]})`);
      else v.acls = [key, value];
    } else {
      problem(key, 'not a key of the model layout (zones/NAME, hypervisors/NAME, vpcs/NAME, subnets/VPC/NAME, acls/VPC, loadBalancers/VPC/NAME, ports/NAME, externalNetworks/NAME, floatingIps/IP)');
    }
  }

  const places = new Map<string, string>();
  const keys = noKeys();
  const listed = (kind: keyof typeof lists) =>
    lists[kind].map(([key, o], i) => {
      places.set(`${kind}[${i}]`, key);
      keys[kind].push(key);
      return o;
    });
  const docVpcs: Obj[] = [];
  for (const [name, v] of [...vpcs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!v.key) {
      for (const [key] of [...v.subnets, ...(v.acls ? [v.acls] : []), ...v.loadBalancers]) problem(key, `VPC '${name}' has no key ${prefix}vpcs/${seg(name)}`);
      continue;
    }
    const i = docVpcs.length;
    places.set(`vpcs[${i}]`, v.key);
    keys.vpcs.push(v.key);
    v.subnets.forEach(([key], j) => {
      places.set(`vpcs[${i}].subnets[${j}]`, key);
      keys.subnets.push(key);
    });
    if (v.acls) {
      places.set(`vpcs[${i}].acls`, v.acls[0]);
      keys.acls.set(name, v.acls[0]);
    }
    v.loadBalancers.forEach(([key], j) => {
      places.set(`vpcs[${i}].loadBalancers[${j}]`, key);
      keys.loadBalancers.push(key);
    });
    docVpcs.push({ ...v.value, subnets: v.subnets.map(([, o]) => o), ...(v.acls ? { acls: v.acls[1] } : {}), ...(v.loadBalancers.length ? { loadBalancers: v.loadBalancers.map(([, o]) => o) } : {}) });
  }
  const doc = { zones: listed('zones'), hypervisors: listed('hypervisors'), vpcs: docVpcs, ports: listed('ports'), externalNetworks: listed('externalNetworks'), floatingIps: listed('floatingIps') };
  return { doc: doc as unknown as ModelDocument, issues, places, keys };
}

/**
 * `ports[3].ip` → `PLACE: ip`, `vpcs[0].acls[2].subnet` → `PLACE[2]: subnet`, wherever such a path
 * appears in the text; `places` maps an object's document path (`ports[3]`, `vpcs[0].acls`) to the
 * name it goes by (its etcd key, its API path).
 */
const PLACE_RE = /((?:zones|hypervisors|ports|vpcs|externalNetworks|floatingIps)\[\d+\](?:\.subnets\[\d+\]|\.loadBalancers\[\d+\]|\.acls(?=\[))?)(\[\d+\])?((?:\.[A-Za-z]+)*)/g;

export function atPlaces(text: string, places: ReadonlyMap<string, string>): string {
  return text.replace(PLACE_RE, (all, place: string, index: string | undefined, fields: string) => {
    const key = places.get(place);
    return key === undefined ? all : `${key}${index ?? ''}${fields ? `: ${fields.slice(1)}` : ''}`;
  });
}

/**
 * The model of one generation of stored entries, validated as a model file is, with the key of each
 * of its objects; every problem is reported at its key (`/zonemesh/v1/g/GEN/ports/web1: ip`). No
 * generation: the empty model.
 */
export function validatedEntries(entries: Iterable<readonly [string, StoredValue]>, generation: string | undefined): { model: NetworkModel; keys: ModelKeys } {
  if (generation === undefined) return { model: validateModel({ zones: [], hypervisors: [], vpcs: [], ports: [] }, ETCD_SOURCE), keys: noKeys() };
  const { doc, issues, places, keys } = assemble(entries, generation);
  try {
    const model = validateModel(doc, ETCD_SOURCE);
    if (!issues.length) return { model, keys };
  } catch (e) {
    if (!(e instanceof ModelValidationError)) throw e;
    issues.push(...e.issues.map((i) => ({ path: atPlaces(i.path, places), problem: atPlaces(i.problem, places) })));
  }
  throw new ModelValidationError(ETCD_SOURCE, issues);
}
