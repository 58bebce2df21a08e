/**
 * The model of the keys in etcd, kept up to date one change at a time (docs/etcd-store.md). The
 * last valid model is kept with an index of how its objects relate (which objects refer to which,
 * which values they must not share). A change is validated by the one model validator
 * (validateModel, through validatedEntries) on a small document: the changed objects, the objects
 * that refer to them, the objects whose unique values (MAC, IP, tunnel IP, datapath id, VNI, tunnel
 * key, interface) or conntrack zone they share, a changed subnet's siblings, every object of a
 * dual-stack VPC whose ports or subnets change (IPv6 addresses may be derived), and everything those
 * refer to; north-south objects bring every external network (few) along, and a changed external
 * network every floating IP (whose zone needs one). The model before was valid, so every problem of the new model involves a changed object
 * and one of those: the small document is valid exactly when the whole one is (checked against a
 * full validation by test/model/etcd-model.test.ts). A refused change is validated whole once more,
 * for the same problem list a full validation gives.
 */
import type { IKeyValue } from 'etcd3';
import { PORT_KEYS, conntrackZone, keyOf } from './derived';
import { aclDoc, floatingIpDoc, hypervisorDoc, loadBalancerDoc, portDoc, subnetDoc, vpcDoc, zoneDoc } from './document';
import {
  CURRENT_KEY,
  GENERATIONS,
  type ModelKeys,
  type ObjectKind,
  type StoredValue,
  generationOfKey,
  generationPrefix,
  keyNames,
  parseStoredValue,
  validatedEntries,
} from './etcd-layout';
import { ModelValidationError } from './errors';
import type { AclRule, ExternalNetwork, FloatingIp, Hypervisor, LoadBalancer, NetworkModel, Subnet, VmPort, Vpc, VpcEgress, Zone } from './types';

/** One object of the model as validated, by kind. */
export type ModelObject =
  | { readonly kind: 'zones'; readonly item: Zone }
  | { readonly kind: 'hypervisors'; readonly item: Hypervisor }
  | { readonly kind: 'vpcs'; readonly item: Vpc; readonly egress: VpcEgress | undefined }
  | { readonly kind: 'subnets'; readonly item: Subnet }
  | { readonly kind: 'acls'; readonly item: readonly AclRule[] }
  | { readonly kind: 'loadBalancers'; readonly item: LoadBalancer }
  | { readonly kind: 'ports'; readonly item: VmPort }
  | { readonly kind: 'externalNetworks'; readonly item: ExternalNetwork }
  | { readonly kind: 'floatingIps'; readonly item: FloatingIp };

/** The value an object is stored as, as entriesOf writes it; undefined for none (an empty ACL list has no key). */
export function storedValueOf(o: ModelObject): unknown {
  switch (o.kind) {
    case 'zones':
      return zoneDoc(o.item);
    case 'hypervisors':
      return hypervisorDoc(o.item);
    case 'vpcs':
      return { ...vpcDoc(o.item), ...(o.egress && { egress: { routes: o.egress.routes, snat: o.egress.snat } }) };
    case 'subnets':
      return subnetDoc(o.item);
    case 'acls':
      return o.item.length ? o.item.map(aclDoc) : undefined;
    case 'loadBalancers':
      return loadBalancerDoc(o.item);
    case 'ports':
      return portDoc(o.item);
    case 'externalNetworks':
      return { ...o.item };
    case 'floatingIps':
      return floatingIpDoc(o.item);
  }
}

/** an object's identity: its kind and decoded names (two keys may encode one name differently) */
const identity = (kind: string, ...names: string[]): string => [kind, ...names].join('\0');
const relation = (what: string, ...values: string[]): string => [what, ...values].join('\0');
/** the relation of the objects that refer to the object of an identity */
const refersTo = (id: string): string => relation('refers', id);

const identityOfKey = (relative: string): string | undefined => {
  const k = keyNames(relative);
  return k && identity(k.kind, ...k.names);
};

/** A map from a string to a set of strings, a single one held without a set. */
class MultiMap {
  private readonly map = new Map<string, string | Set<string>>();

  add(key: string, value: string): void {
    const v = this.map.get(key);
    if (v === undefined) this.map.set(key, value);
    else if (typeof v === 'string') {
      if (v !== value) this.map.set(key, new Set([v, value]));
    } else v.add(value);
  }

  delete(key: string, value: string): void {
    const v = this.map.get(key);
    if (v === value) this.map.delete(key);
    else if (typeof v === 'object') {
      v.delete(value);
      if (v.size === 1) this.map.set(key, [...v][0]!);
    }
  }

  get(key: string): Iterable<string> {
    const v = this.map.get(key);
    return v === undefined ? [] : typeof v === 'string' ? [v] : v;
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** the objects of a list field of a value */
const objectsIn = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);

/**
 * The identities an object refers to, read from its stored value as the validator reads it: a
 * hypervisor its zone; a subnet its VPC; a port its VPC, subnet and hypervisor; an ACL list its VPC
 * and the subnets and ports its rules name; a load balancer its VPC, subnet and backend ports; a
 * VPC the external networks of its SNAT addresses; an external network its zone and gateway
 * hypervisors; a floating IP its network and port.
 */
function referencesOf(kind: string, names: readonly string[], value: StoredValue | undefined): string[] {
  const json = value && 'json' in value ? value.json : undefined;
  const out: string[] = [];
  const add = (id: string | false | undefined) => id && out.push(id);
  const named = (kind: string, v: unknown) => str(v) !== undefined && identity(kind, str(v)!);
  if (kind === 'subnets' || kind === 'acls' || kind === 'loadBalancers') add(names[0] !== undefined && identity('vpcs', names[0]));
  if (kind === 'loadBalancers' && isObj(json) && names[0] !== undefined) {
    add(str(json.subnet) !== undefined && identity('subnets', names[0], str(json.subnet)!));
    for (const b of objectsIn(json.backends)) add(named('ports', b.port));
  }
  if (kind === 'vpcs' && isObj(json) && isObj(json.egress)) for (const s of objectsIn(json.egress.snat)) add(named('externalNetworks', s.network));
  if (kind === 'externalNetworks' && isObj(json)) {
    add(named('zones', json.zone));
    for (const g of objectsIn(json.gateways)) add(named('hypervisors', g.hypervisor));
  }
  if (kind === 'floatingIps' && isObj(json)) {
    add(named('externalNetworks', json.network));
    add(named('ports', json.port));
  }
  if (kind === 'hypervisors' && isObj(json)) add(str(json.zone) !== undefined && identity('zones', str(json.zone)!));
  if (kind === 'ports' && isObj(json)) {
    const [vpc, subnet, hv] = [str(json.vpc), str(json.subnet), str(json.hypervisor)];
    add(vpc !== undefined && identity('vpcs', vpc));
    add(vpc !== undefined && subnet !== undefined && identity('subnets', vpc, subnet));
    add(hv !== undefined && identity('hypervisors', hv));
  }
  if (kind === 'acls' && Array.isArray(json) && names[0] !== undefined) {
    for (const rule of json) {
      if (!isObj(rule)) continue;
      const remote = isObj(rule.remote) ? str(rule.remote.subnet) : undefined;
      for (const s of [str(rule.subnet), remote]) add(s !== undefined && identity('subnets', names[0], s));
      add(str(rule.port) !== undefined && identity('ports', str(rule.port)!));
    }
  }
  return out;
}

/**
 * The values of a valid object that no other object may share, or (a subnet's VPC) the group that
 * is checked together. The conntrack zone is not one: it follows the VPC's vni (see partners).
 */
function sharedValuesOf(o: ModelObject): string[] {
  switch (o.kind) {
    case 'hypervisors':
      return [relation('tunnel-ip', o.item.tunnelIp), relation('datapath-id', String(o.item.datapathId))];
    case 'vpcs':
      return [relation('vni', String(o.item.vni)), ...(o.egress?.snat ?? []).map((s) => relation('external-ip', s.ip))];
    case 'subnets':
      return [relation('subnets-of', o.item.vpc)];
    case 'loadBalancers':
      // a VIP may not be a port's address; a VIP, protocol and port is one load balancer's of the VPC
      return [relation('ip', o.item.vpc, o.item.vip), relation('load-balancers-of', o.item.vpc)];
    case 'externalNetworks':
      // external networks must not overlap: a changed one is checked with all of them
      return [EXTERNAL_NETWORKS, ...o.item.gateways.map((g) => relation('external-ip', g.ip))];
    case 'floatingIps':
      return [relation('external-ip', o.item.ip), ...(o.item.port ? [relation('bound-port', o.item.port)] : [])];
    case 'ports': {
      const p = o.item;
      return [...(p.ip === undefined ? [] : [relation('ip', p.vpc, p.ip)]), relation('mac', p.vpc, p.mac), relation('interface', p.hypervisor, p.interface), relation('port-key', p.vpc, String(keyOf(p, PORT_KEYS)))];
    }
    default:
      return [];
  }
}

/** every external network, and every floating IP: the groups north-south objects are checked with */
const EXTERNAL_NETWORKS = relation('external-networks');
const FLOATING_IPS = relation('floating-ips');

const jsonOf = (v: StoredValue | undefined): unknown => (v && 'json' in v ? v.json : undefined);
const hasIpv6 = (v: StoredValue | undefined): boolean => {
  const json = jsonOf(v);
  return isObj(json) && json.ipv6 !== undefined;
};

/**
 * The VPCs of the changed ports and subnets that have, had or get an IPv6 address or prefix.
 * `subnetHadIpv6` tells it of a subnet as the valid model has it.
 */
function dualStackVpcsOf(changes: ReadonlyMap<string, StoredValue | undefined>, subnetHadIpv6: (vpc: string, subnet: string) => boolean): Set<string> {
  const subnetGetsIpv6 = new Set<string>();
  for (const [key, value] of changes) {
    const k = keyNames(key);
    if (k?.kind === 'subnets' && hasIpv6(value)) subnetGetsIpv6.add(identity('subnets', ...k.names));
  }
  const dualStack = (vpc: string, subnet: string) => subnetGetsIpv6.has(identity('subnets', vpc, subnet)) || subnetHadIpv6(vpc, subnet);
  const out = new Set<string>();
  for (const [key, value] of changes) {
    const k = keyNames(key);
    if (k?.kind === 'subnets' && dualStack(k.names[0]!, k.names[1]!)) out.add(k.names[0]!);
    const json = jsonOf(value);
    if (k?.kind !== 'ports' || !isObj(json)) continue;
    const [vpc, subnet] = [str(json.vpc), str(json.subnet)];
    if (vpc !== undefined && (hasIpv6(value) || (subnet !== undefined && dualStack(vpc, subnet)))) out.add(vpc);
  }
  return out;
}

/** The objects of a validated model by key (below the generation's prefix). */
function objectsOf(model: NetworkModel, keys: ModelKeys, prefix: string): Map<string, ModelObject> {
  const out = new Map<string, ModelObject>();
  const rel = (key: string) => key.slice(prefix.length);
  model.zones.forEach((item, i) => out.set(rel(keys.zones[i]!), { kind: 'zones', item }));
  model.hypervisors.forEach((item, i) => out.set(rel(keys.hypervisors[i]!), { kind: 'hypervisors', item }));
  model.vpcs.forEach((item, i) => out.set(rel(keys.vpcs[i]!), { kind: 'vpcs', item, egress: model.egress.find((e) => e.vpc === item.name) }));
  model.subnets.forEach((item, i) => out.set(rel(keys.subnets[i]!), { kind: 'subnets', item }));
  model.loadBalancers.forEach((item, i) => out.set(rel(keys.loadBalancers[i]!), { kind: 'loadBalancers', item }));
  model.ports.forEach((item, i) => out.set(rel(keys.ports[i]!), { kind: 'ports', item }));
  model.externalNetworks.forEach((item, i) => out.set(rel(keys.externalNetworks[i]!), { kind: 'externalNetworks', item }));
  model.floatingIps.forEach((item, i) => out.set(rel(keys.floatingIps[i]!), { kind: 'floatingIps', item }));
  const rules = new Map<string, AclRule[]>();
  for (const a of model.acls) (rules.get(a.vpc) ?? rules.set(a.vpc, []).get(a.vpc)!).push(a);
  for (const [vpc, key] of keys.acls) out.set(rel(key), { kind: 'acls', item: rules.get(vpc) ?? [] });
  return out;
}

const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Where key would go in a sorted list: its index, and whether it is there. */
function search(keys: readonly string[], key: string): { at: number; found: boolean } {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return { at: lo, found: keys[lo] === key };
}

const LISTED = ['zones', 'hypervisors', 'vpcs', 'subnets', 'ports', 'acls', 'loadBalancers', 'externalNetworks', 'floatingIps'] as const;

/**
 * The last valid model of a generation, with its objects by key (each kind's keys in order) and
 * the index of their relations.
 */
class ValidModel {
  model: NetworkModel;
  private readonly objects: Map<string, ModelObject>;
  /** every kind's keys, sorted, and their objects in the same order */
  private readonly sorted = new Map<ObjectKind, { keys: string[]; items: ModelObject[] }>();
  private readonly relations = new MultiMap();
  /** what each key was indexed under, to take it out again */
  private readonly indexedAs = new Map<string, string[]>();

  constructor(
    readonly generation: string | undefined,
    model: NetworkModel,
    keys: ModelKeys,
    valueOf: (relative: string) => StoredValue | undefined,
  ) {
    this.model = model;
    this.objects = objectsOf(model, keys, generation === undefined ? '' : generationPrefix(generation));
    for (const kind of LISTED) this.sorted.set(kind, { keys: [], items: [] });
    for (const [key, o] of [...this.objects].sort(([a], [b]) => byKey(a, b))) {
      const list = this.sorted.get(o.kind)!;
      list.keys.push(key);
      list.items.push(o);
      this.index(key, o, valueOf(key));
    }
  }

  object(relative: string): ModelObject | undefined {
    return this.objects.get(relative);
  }

  related(relationKey: string): Iterable<string> {
    return this.relations.get(relationKey);
  }

  /** the keys of the objects that refer to an identity */
  referrers(id: string): Iterable<string> {
    return this.relations.get(refersTo(id));
  }

  private index(key: string, o: ModelObject, value: StoredValue | undefined): void {
    const k = keyNames(key)!;
    const as = [...referencesOf(k.kind, k.names, value).map(refersTo), ...sharedValuesOf(o), ...(o.kind === 'floatingIps' ? [FLOATING_IPS] : [])];
    for (const r of as) this.relations.add(r, key);
    this.indexedAs.set(key, as);
  }

  /** Takes the change of some objects (undefined: deleted) into the model and its index. */
  apply(changes: ReadonlyMap<string, ModelObject | undefined>, valueOf: (relative: string) => StoredValue | undefined): void {
    const kinds = new Set<ObjectKind>();
    for (const [key, o] of changes) {
      const old = this.objects.get(key);
      if (old) {
        for (const r of this.indexedAs.get(key) ?? []) this.relations.delete(r, key);
        this.indexedAs.delete(key);
        this.objects.delete(key);
      }
      if (o) {
        this.objects.set(key, o);
        this.index(key, o, valueOf(key));
      }
      const kind = (o ?? old)?.kind;
      if (kind === undefined) continue;
      kinds.add(kind);
      const list = this.sorted.get(kind)!;
      const { at, found } = search(list.keys, key);
      if (found && o) list.items[at] = o;
      else if (found) {
        list.keys.splice(at, 1);
        list.items.splice(at, 1);
      } else if (o) {
        list.keys.splice(at, 0, key);
        list.items.splice(at, 0, o);
      }
    }
    this.model = this.modelWith(kinds);
  }

  /** The model with the lists of the changed kinds made again, in the order validatedEntries gives. */
  private modelWith(kinds: ReadonlySet<ObjectKind>): NetworkModel {
    const items = <T>(kind: ObjectKind) => this.sorted.get(kind)!.items.map((o) => o.item as T);
    const m = this.model;
    const vpcObjects = () =>
      this.sorted
        .get('vpcs')!
        .items.flatMap((o) => (o.kind === 'vpcs' ? [o] : []))
        .sort((a, b) => byKey(a.item.name, b.item.name));
    const vpcs = kinds.has('vpcs') ? vpcObjects().map((o) => o.item) : m.vpcs;
    /** a list whose items group by VPC, in the VPCs' order */
    const byVpc = <T>(kind: 'subnets' | 'acls' | 'loadBalancers', vpcOf: (t: T) => string, flat: (t: T) => readonly unknown[]) => {
      const groups = new Map<string, unknown[]>();
      for (const t of items<T>(kind)) (groups.get(vpcOf(t)) ?? groups.set(vpcOf(t), []).get(vpcOf(t))!).push(...flat(t));
      return vpcs.flatMap((v) => groups.get(v.name) ?? []);
    };
    return {
      ...m,
      zones: kinds.has('zones') ? items<Zone>('zones') : m.zones,
      hypervisors: kinds.has('hypervisors') ? items<Hypervisor>('hypervisors') : m.hypervisors,
      vpcs,
      subnets: kinds.has('vpcs') || kinds.has('subnets') ? (byVpc<Subnet>('subnets', (s) => s.vpc, (s) => [s]) as Subnet[]) : m.subnets,
      ports: kinds.has('ports') ? items<VmPort>('ports') : m.ports,
      loadBalancers: kinds.has('vpcs') || kinds.has('loadBalancers') ? (byVpc<LoadBalancer>('loadBalancers', (lb) => lb.vpc, (lb) => [lb]) as LoadBalancer[]) : m.loadBalancers,
      acls: kinds.has('vpcs') || kinds.has('acls') ? (byVpc<readonly AclRule[]>('acls', (l) => l[0]?.vpc ?? '', (l) => l) as AclRule[]) : m.acls,
      externalNetworks: kinds.has('externalNetworks') ? items<ExternalNetwork>('externalNetworks') : m.externalNetworks,
      floatingIps: kinds.has('floatingIps') ? items<FloatingIp>('floatingIps') : m.floatingIps,
      egress: kinds.has('vpcs') ? vpcObjects().flatMap((o) => (o.egress ? [o.egress] : [])) : m.egress,
    };
  }
}

/** What a revision did to the model. */
export type Outcome = { readonly model: NetworkModel } | { readonly rejected: ModelValidationError };

/**
 * Every key under the layout's root at one revision, and the model of the generation in force.
 * `apply` takes one revision's changes; `check` validates a change not (yet) in etcd.
 */
export class StoredModel {
  /** every generation's keys (full keys) */
  private readonly entries = new Map<string, { value: StoredValue; modRevision: number }>();
  private currentGeneration: string | undefined;
  private currentRevision = 0;
  /** identity → keys (below the prefix) of the generation in force */
  private names = new MultiMap();
  private valid: ValidModel;
  /** keys of valid.generation changed since valid.model */
  private readonly pending = new Set<string>();
  /** the problems of the keys as they are, while they do not make a valid model */
  private invalid: ModelValidationError | undefined;

  /** whether the keys changed in ways `pending` does not tell (a new read): the next change is validated whole */
  private stale = false;
  /** while every key is read: names are indexed once all are in */
  private loading = false;

  /** The model of the keys read at one revision; throws ModelValidationError when they are not valid. */
  constructor(kvs: readonly IKeyValue[]) {
    this.load(kvs);
    this.valid = this.validateWhole();
  }

  /** Every key read again at one revision (the watch could not resume); the running model stays when they are invalid. */
  reset(kvs: readonly IKeyValue[]): Outcome {
    this.entries.clear();
    this.load(kvs);
    this.stale = true;
    return this.validated(() => (this.valid = this.validateWhole()));
  }

  private load(kvs: readonly IKeyValue[]): void {
    this.currentGeneration = undefined;
    this.currentRevision = 0;
    this.loading = true;
    for (const kv of kvs) this.put(kv.key.toString(), kv.value, Number(kv.mod_revision));
    this.loading = false;
    this.indexNames();
  }

  get model(): NetworkModel {
    return this.valid.model;
  }

  get generation(): string | undefined {
    return this.currentGeneration;
  }

  /** mod_revision of the generation pointer (0: none) */
  get generationRevision(): number {
    return this.currentRevision;
  }

  /** the problems of the keys in force, while they are not a valid model (a change refused since the model) */
  get problems(): ModelValidationError | undefined {
    return this.invalid;
  }

  /** mod_revision of a key of the generation in force (0: none) */
  modRevision(relative: string): number {
    return this.currentGeneration === undefined ? 0 : (this.entries.get(generationPrefix(this.currentGeneration) + relative)?.modRevision ?? 0);
  }

  /** Takes one revision's events; the model's change, its refusal, or undefined when the model is not touched. */
  apply(events: readonly { type: 'Put' | 'Delete'; key: string; value: Buffer; modRevision: number }[]): Outcome | undefined {
    const generation = this.currentGeneration;
    let touched = false;
    for (const ev of events) {
      if (ev.type === 'Put') this.put(ev.key, ev.value, ev.modRevision);
      else this.delete(ev.key);
      touched ||= ev.key === CURRENT_KEY || (generation !== undefined && generationOfKey(ev.key) === generation);
    }
    if (!touched) return undefined;
    if (this.currentGeneration !== generation) this.indexNames();
    return this.validated(() => {
      if (this.stale || this.valid.generation !== this.currentGeneration) this.valid = this.validateWhole();
      else if (this.pending.size) this.takeChanges();
    });
  }

  private validated(validate: () => void): Outcome {
    try {
      validate();
      this.invalid = undefined;
      return { model: this.valid.model };
    } catch (e) {
      if (!(e instanceof ModelValidationError)) throw e;
      this.invalid = e;
      return { rejected: e };
    }
  }

  private put(key: string, value: Buffer, modRevision: number): void {
    if (key === CURRENT_KEY) {
      this.currentGeneration = value.toString().trim() || undefined;
      this.currentRevision = modRevision;
    } else if (key.startsWith(GENERATIONS)) {
      this.entries.set(key, { value: parseStoredValue(value), modRevision });
      this.changed(key, true);
    }
  }

  private delete(key: string): void {
    if (key === CURRENT_KEY) {
      this.currentGeneration = undefined;
      this.currentRevision = 0;
    } else if (this.entries.delete(key)) this.changed(key, false);
  }

  private changed(key: string, present: boolean): void {
    const generation = generationOfKey(key);
    if (generation === undefined) return;
    // before the constructor has validated, nothing is pending
    if (this.valid !== undefined && generation === this.valid.generation) this.pending.add(key.slice(generationPrefix(generation).length));
    if (this.loading || generation !== this.currentGeneration) return;
    const relative = key.slice(generationPrefix(generation).length);
    const id = identityOfKey(relative);
    if (id === undefined) return;
    if (present) this.names.add(id, relative);
    else this.names.delete(id, relative);
  }

  private indexNames(): void {
    this.names = new MultiMap();
    if (this.currentGeneration === undefined) return;
    const prefix = generationPrefix(this.currentGeneration);
    for (const key of this.entries.keys()) {
      if (!key.startsWith(prefix)) continue;
      const id = identityOfKey(key.slice(prefix.length));
      if (id !== undefined) this.names.add(id, key.slice(prefix.length));
    }
  }

  private valueOf = (relative: string): StoredValue | undefined => (this.currentGeneration === undefined ? undefined : this.entries.get(generationPrefix(this.currentGeneration) + relative)?.value);

  /** The whole generation in force, validated; throws ModelValidationError. */
  private validateWhole(): ValidModel {
    const g = this.currentGeneration;
    const prefix = g === undefined ? '' : generationPrefix(g);
    const mine = g === undefined ? [] : [...this.entries].filter(([k]) => k.startsWith(prefix)).map(([k, e]) => [k, e.value] as const);
    const { model, keys } = validatedEntries(mine, g);
    this.pending.clear();
    this.stale = false;
    return new ValidModel(g, model, keys, this.valueOf);
  }

  /** The pending keys' changes into the valid model, or ModelValidationError (the whole model's problems). */
  private takeChanges(): void {
    const changes = this.changesOf(new Map([...this.pending].map((k) => [k, this.valueOf(k)])));
    if (!changes) {
      // refused: the problem list a full validation gives (and should the two ever disagree, it decides)
      this.valid = this.validateWhole();
      return;
    }
    this.valid.apply(changes, this.valueOf);
    this.pending.clear();
  }

  /**
   * Validates a change of the generation in force that is not in etcd: `values` maps keys below the
   * prefix to their new value (undefined: deleted). The changed objects as validated, or undefined
   * when the model would be invalid. Only while the keys in force are valid (`problems` undefined).
   */
  check(values: ReadonlyMap<string, unknown>): ReadonlyMap<string, ModelObject | undefined> | undefined {
    const stored = new Map([...values].map(([k, v]) => [k, v === undefined ? undefined : { json: v }]));
    return this.changesOf(stored);
  }

  /** The new objects of the changed keys, validated with what they can affect; undefined when invalid. */
  private changesOf(changes: ReadonlyMap<string, StoredValue | undefined>): Map<string, ModelObject | undefined> | undefined {
    const valid = this.valid;
    const valueOf = (k: string) => (changes.has(k) ? changes.get(k) : this.valueOf(k));
    const changedIds = new Map<string, { key: string; present: boolean }[]>();
    for (const [key, v] of changes) {
      const id = identityOfKey(key);
      if (id !== undefined) (changedIds.get(id) ?? changedIds.set(id, []).get(id)!).push({ key, present: v !== undefined });
    }
    /** every key of an identity, with the change */
    const keysOf = (id: string): string[] => {
      const out = new Set(this.names.get(id));
      for (const { key, present } of changedIds.get(id) ?? []) {
        if (present) out.add(key);
        else out.delete(key);
      }
      return [...out];
    };
    const included = new Set<string>();
    const include = (key: string) => {
      if (included.has(key)) return;
      included.add(key);
      const k = keyNames(key);
      if (!k) return;
      for (const alias of keysOf(identity(k.kind, ...k.names))) include(alias);
      for (const id of referencesOf(k.kind, k.names, valueOf(key))) for (const r of keysOf(id)) include(r);
      // a floating IP's port must be in a zone with an external network
      if (k.kind === 'floatingIps') for (const r of valid.related(EXTERNAL_NETWORKS)) include(r);
    };
    for (const key of changes.keys()) {
      include(key);
      const k = keyNames(key);
      const id = k && identity(k.kind, ...k.names);
      if (id !== undefined) for (const r of valid.referrers(id)) include(r);
      // a floating IP may be drawn from one network and served by another of its port's zone
      if (k?.kind === 'externalNetworks') for (const r of valid.related(FLOATING_IPS)) include(r);
      // a hypervisor's zone is its ports' floating IPs' zone
      if (k?.kind === 'hypervisors' && id !== undefined) {
        for (const port of valid.referrers(id)) {
          const p = keyNames(port);
          if (p?.kind === 'ports') for (const r of valid.referrers(identity('ports', ...p.names))) include(r);
        }
      }
    }
    // an IPv6 address may be derived (EUI-64 of a MAC in the subnet's prefix), so its uniqueness is
    // checked over the whole VPC whenever a dual-stack port or subnet changes
    const subnetHadIpv6 = (vpc: string, subnet: string) =>
      [...this.names.get(identity('subnets', vpc, subnet))].some((k) => {
        const o = valid.object(k);
        return o?.kind === 'subnets' && o.item.ipv6 !== undefined;
      });
    for (const vpc of dualStackVpcsOf(changes, subnetHadIpv6)) for (const r of valid.referrers(identity('vpcs', vpc))) include(r);

    let objects = this.validateSome(included, valueOf);
    if (!objects) return undefined;
    // what the changed objects share with the rest of the model; a second validation only when there is any
    const before = included.size;
    const now = objects;
    const vnis = new Map<string, number | undefined>();
    const vniOf = (vpc: string): number | undefined => {
      if (vnis.has(vpc)) return vnis.get(vpc);
      const o = keysOf(identity('vpcs', vpc))
        .map((key) => now.get(key) ?? valid.object(key))
        .find((x) => x?.kind === 'vpcs');
      vnis.set(vpc, o?.kind === 'vpcs' ? o.item.vni : undefined);
      return vnis.get(vpc);
    };
    for (const key of [...included]) {
      const o = objects.get(key);
      if (!o) continue;
      if (changes.has(key)) for (const r of sharedValuesOf(o)) for (const other of valid.related(r)) include(other);
      // two VPCs on one hypervisor must not share a conntrack zone: a changed port's, or one whose VPC changed
      if (o.kind !== 'ports' || !(changes.has(key) || changedIds.has(identity('vpcs', o.item.vpc)))) continue;
      const zone = conntrackZone(vniOf(o.item.vpc) ?? 0);
      for (const other of valid.referrers(identity('hypervisors', o.item.hypervisor))) {
        const p = valid.object(other);
        if (p?.kind === 'ports' && p.item.vpc !== o.item.vpc && conntrackZone(vniOf(p.item.vpc) ?? 0) === zone) include(other);
      }
    }
    if (included.size > before) objects = this.validateSome(included, valueOf);
    if (!objects) return undefined;
    const out = new Map<string, ModelObject | undefined>();
    for (const key of changes.keys()) out.set(key, objects.get(key));
    return out;
  }

  /** The objects of some keys, validated as a model of their own; undefined when it is invalid. */
  private validateSome(keys: Iterable<string>, valueOf: (relative: string) => StoredValue | undefined): Map<string, ModelObject> | undefined {
    // the generation's name is only in problem texts, which are not kept
    const prefix = generationPrefix('check');
    const entries: [string, StoredValue][] = [];
    for (const key of keys) {
      const v = valueOf(key);
      if (v !== undefined) entries.push([prefix + key, v]);
    }
    try {
      const { model, keys: modelKeys } = validatedEntries(entries, 'check');
      return objectsOf(model, modelKeys, prefix);
    } catch (e) {
      if (e instanceof ModelValidationError) return undefined;
      throw e;
    }
  }
}
