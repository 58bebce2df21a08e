/**
 * The etcd store's model, kept up to date change by change (src/model/etcd-model.ts), against a
 * full validation of the same keys: random sequences of valid and invalid changes over a small
 * universe of names and values, so that references break and unique values collide often.
 */
import test, { type ExecutionContext } from 'ava';
import type { IKeyValue } from 'etcd3';
import { CURRENT_KEY, ModelValidationError, entriesOf, generationPrefix, loadModelFile, parseStoredValue, validatedEntries } from '../../src/model';
import { StoredModel, storedValueOf } from '../../src/model/etcd-model';
import { REPO_ROOT } from '../helpers/paths';

/** A small deterministic generator (mulberry32), so a failing seed can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = ReturnType<typeof prng>;
const pick = <T>(r: Random, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const maybe = (r: Random, p: number) => r() < p;

const ZONES = ['z1', 'z2', 'z3'];
const HVS = ['h1', 'h2', 'h3', 'h4'];
const VPCS = ['v1', 'v2', 'v3'];
const SUBNETS = ['s1', 's2'];
const PORTS = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8'];
const EXTERNAL = ['e1', 'e2'];
/** gateway, floating and SNAT addresses: on e1 or e2 of the starting keys, or e1's next hop */
const EXTERNAL_IPS = ['198.51.100.2', '198.51.100.10', '198.51.100.11', '198.51.100.66', '198.51.100.74', '198.51.100.1'];

/** A random key below the generation's prefix and a random value for it (undefined: delete). */
function randomChange(r: Random): [string, string | undefined] {
  const [key, value] = randomObject(r);
  // now and then a second key for the same name: `ports/%70%31` is p1 as well
  return [maybe(r, 0.03) ? key.replace(/\/(\w)(\w*)$/, (_, c: string, rest: string) => `/%${c.charCodeAt(0).toString(16)}${rest}`) : key, value];
}

function randomObject(r: Random): [string, string | undefined] {
  const kind = pick(r, ['zones', 'hypervisors', 'vpcs', 'subnets', 'acls', 'ports', 'ports', 'ports', 'ports', 'loadBalancers', 'externalNetworks', 'floatingIps', 'floatingIps']);
  const del = maybe(r, 0.15);
  const value = (o: unknown) => (del ? undefined : maybe(r, 0.02) ? '{not json' : JSON.stringify(o));
  const extra = () => (maybe(r, 0.03) ? { colour: 'red' } : {});
  switch (kind) {
    case 'zones': {
      const name = pick(r, ZONES);
      return [`zones/${name}`, value({ name, underlay: pick(r, ['172.16.1.0/24', '172.16.2.0/24', '172.16.0.0/16', '172.16.1.1/24']), ...extra() })];
    }
    case 'hypervisors': {
      const name = pick(r, HVS);
      return [
        `hypervisors/${name}`,
        value({ name, zone: pick(r, ZONES), tunnelIp: pick(r, ['172.16.1.10', '172.16.1.11', '172.16.2.10', '172.16.2.11']), ...(maybe(r, 0.5) && { datapathId: pick(r, ['0x11', '0x12', '0x13']) }), ...extra() }),
      ];
    }
    case 'vpcs': {
      const name = pick(r, VPCS);
      // 65536 shares conntrack zone 1 with vni 1; a SNAT address may be another's, its network missing
      const egress = { ...(maybe(r, 0.3) && { routes: ['192.0.2.0/24'] }), snat: [{ network: pick(r, [...EXTERNAL, 'e9']), ip: pick(r, EXTERNAL_IPS) }] };
      return [`vpcs/${name}`, value({ name, vni: pick(r, [1, 2, 3, 65536, 0]), ...(maybe(r, 0.3) && { egress }), ...extra() })];
    }
    case 'loadBalancers': {
      // a VIP may collide with a port's address or another load balancer's, a backend be missing or in another VPC
      const [vpc, name] = [pick(r, VPCS), pick(r, ['lb1', 'lb2'])];
      const backends = [{ port: pick(r, PORTS) }, ...(maybe(r, 0.3) ? [{ port: pick(r, PORTS), weight: 2 }] : [])];
      return [`loadBalancers/${vpc}/${name}`, value({ name, subnet: pick(r, SUBNETS), vip: pick(r, ['10.0.1.100', '10.0.1.5', '10.0.2.100']), ports: pick(r, [80, [80, 443]]), backends, ...extra() })];
    }
    case 'externalNetworks': {
      // networks may overlap, a gateway be in another zone or have another's address
      const name = pick(r, EXTERNAL);
      const gateways = [{ hypervisor: pick(r, [...HVS, 'h9']), ip: pick(r, EXTERNAL_IPS) }];
      const cidr = pick(r, ['198.51.100.0/26', '198.51.100.64/26', '198.51.100.0/24']);
      return [`externalNetworks/${name}`, value({ name, zone: pick(r, ZONES), cidr, nextHop: pick(r, ['198.51.100.1', '198.51.100.65']), gateways, ...extra() })];
    }
    case 'floatingIps': {
      // bound to a port another one has, or one in a zone without external network, or unbound
      const ip = pick(r, EXTERNAL_IPS);
      return [`floatingIps/${ip}`, value({ ip, network: pick(r, [...EXTERNAL, 'e9']), ...(maybe(r, 0.8) && { port: pick(r, PORTS) }), ...extra() })];
    }
    case 'subnets': {
      const [vpc, name] = [pick(r, VPCS), pick(r, SUBNETS)];
      const cidr = pick(r, ['10.0.1.0/24', '10.0.2.0/24', '10.0.0.0/16']);
      return [
        `subnets/${vpc}/${name}`,
        value({
          name,
          cidr,
          gateway: pick(r, ['10.0.1.1', '10.0.2.1']),
          ...(maybe(r, 0.2) && { tunnelKey: pick(r, [0x80000001, 0x80000002]) }),
          // dual-stack: ports' EUI-64 addresses (derived, not stored) may collide with given ones
          ...(maybe(r, 0.4) && { ipv6: { prefix: pick(r, ['fd00:1::/64', 'fd00:2::/64', 'fd00:1::/48']), slaac: maybe(r, 0.7) } }),
          ...extra(),
        }),
      ];
    }
    case 'acls': {
      const vpc = pick(r, VPCS);
      const rules = Array.from({ length: Math.floor(r() * 3) }, () => ({
        subnet: pick(r, [...SUBNETS, 's9']),
        direction: 'ingress',
        action: pick(r, ['allow', 'deny']),
        protocol: 'tcp',
        ports: 80,
        ...(maybe(r, 0.4) && { port: pick(r, PORTS) }),
        ...(maybe(r, 0.3) && { remote: { subnet: pick(r, SUBNETS) } }),
      }));
      return [`acls/${vpc}`, value(rules)];
    }
    default: {
      const name = pick(r, PORTS);
      return [
        `ports/${name}`,
        value({
          name,
          vpc: pick(r, VPCS),
          subnet: pick(r, SUBNETS),
          mac: pick(r, ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03', '02:00:00:00:00:04']),
          ip: pick(r, ['10.0.1.5', '10.0.1.6', '10.0.2.5', '10.0.2.6', '10.0.1.1']),
          hypervisor: pick(r, HVS),
          ...(maybe(r, 0.3) && { interface: pick(r, ['tap1', 'tap2']) }),
          ...(maybe(r, 0.1) && { tunnelKey: pick(r, [1, 2]) }),
          // fd00:1::ff:fe00:1 is the EUI-64 address of 02:00:00:00:00:01 in fd00:1::/64
          ...(maybe(r, 0.2) && { ipv6: pick(r, ['fd00:1::ff:fe00:1', 'fd00:1::5', 'fd00:2::5']) }),
          ...extra(),
        }),
      ];
    }
  }
}

/** A valid start: every zone, hypervisor, VPC and subnet, an external network in z1 and z2, and no port. */
function startingKeys(): Map<string, string> {
  const keys = new Map<string, string>();
  keys.set('zones/z1', JSON.stringify({ name: 'z1', underlay: '172.16.1.0/24' }));
  keys.set('zones/z2', JSON.stringify({ name: 'z2', underlay: '172.16.2.0/24' }));
  HVS.forEach((h, i) => keys.set(`hypervisors/${h}`, JSON.stringify({ name: h, zone: i < 2 ? 'z1' : 'z2', tunnelIp: `172.16.${i < 2 ? 1 : 2}.1${i % 2}` })));
  VPCS.forEach((v, i) => {
    keys.set(`vpcs/${v}`, JSON.stringify({ name: v, vni: i + 1 }));
    keys.set(`subnets/${v}/s1`, JSON.stringify({ name: 's1', cidr: '10.0.1.0/24', gateway: '10.0.1.1' }));
    keys.set(`subnets/${v}/s2`, JSON.stringify({ name: 's2', cidr: '10.0.2.0/24', gateway: '10.0.2.1' }));
  });
  keys.set('externalNetworks/e1', JSON.stringify({ name: 'e1', zone: 'z1', cidr: '198.51.100.0/26', nextHop: '198.51.100.1', gateways: [{ hypervisor: 'h1', ip: '198.51.100.2' }] }));
  keys.set('externalNetworks/e2', JSON.stringify({ name: 'e2', zone: 'z2', cidr: '198.51.100.64/26', nextHop: '198.51.100.65', gateways: [{ hypervisor: 'h3', ip: '198.51.100.66' }] }));
  return keys;
}

let revision = 1;
const kv = (key: string, value: string): IKeyValue => ({ key: Buffer.from(key), value: Buffer.from(value), mod_revision: String(revision), create_revision: '1', version: '1', lease: '0' });

/** What a full validation of the generation's keys says: the model, or its problems. */
function full(generation: string, keys: ReadonlyMap<string, string>) {
  const entries = [...keys].map(([k, v]) => [generationPrefix(generation) + k, parseStoredValue(Buffer.from(v))] as const);
  try {
    return { model: validatedEntries(entries, generation).model };
  } catch (e) {
    if (!(e instanceof ModelValidationError)) throw e;
    return { rejected: e.message };
  }
}

function walk(t: ExecutionContext, seed: number, steps: number): { accepted: number; refused: number } {
  const r = prng(seed);
  let generation = `gen-${seed}`;
  let keys = startingKeys();
  const store = new StoredModel([kv(CURRENT_KEY, generation), ...[...keys].map(([k, v]) => kv(generationPrefix(generation) + k, v))]);
  let running = store.model;
  let acceptedKeys = new Map(keys);
  const counts = { accepted: 0, refused: 0 };
  for (let step = 0; step < steps; step++) {
    revision++;
    const events: { type: 'Put' | 'Delete'; key: string; value: Buffer; modRevision: number }[] = [];
    const put = (key: string, value: string | undefined) => {
      if (value === undefined) keys.delete(key);
      else keys.set(key, value);
      events.push({ type: value === undefined ? 'Delete' : 'Put', key: generationPrefix(generation) + key, value: Buffer.from(value ?? ''), modRevision: revision });
    };
    const what = r();
    if (what < 0.02) {
      // an import: the last valid keys under a new generation, then the pointer
      const next = `gen-${seed}-${step}`;
      for (const [k, v] of acceptedKeys) store.apply([{ type: 'Put', key: generationPrefix(next) + k, value: Buffer.from(v), modRevision: revision }]);
      revision++;
      generation = next;
      keys = new Map(acceptedKeys);
      events.push({ type: 'Put', key: CURRENT_KEY, value: Buffer.from(generation), modRevision: revision });
    } else if (what < 0.7 && store.problems !== undefined) {
      // undo one change the model does not have yet, so that walks come back to valid models
      const differing = [...new Set([...keys.keys(), ...acceptedKeys.keys()])].filter((k) => keys.get(k) !== acceptedKeys.get(k));
      const k = pick(r, differing);
      put(k, acceptedKeys.get(k));
    } else {
      for (let n = 1 + Math.floor(r() * 2); n > 0; n--) put(...randomChange(r));
    }
    const outcome = store.apply(events);
    const expected = full(generation, keys);
    const where = `seed ${seed}, step ${step}: ${events.map((e) => `${e.type} ${e.key} ${e.value.toString()}`).join('; ')}`;
    if (expected.model) {
      t.true(outcome !== undefined && 'model' in outcome, `${where}: accepted by a full validation, refused: ${outcome && 'rejected' in outcome ? outcome.rejected.message : ''}`);
      t.deepEqual(store.model, expected.model, where);
      running = store.model;
      acceptedKeys = new Map(keys);
      counts.accepted++;
    } else {
      t.true(outcome !== undefined && 'rejected' in outcome, `${where}: refused by a full validation (${expected.rejected}), accepted`);
      if (outcome && 'rejected' in outcome) t.is(outcome.rejected.message, expected.rejected, where);
      t.is(store.model, running, `${where}: the running model stays`);
      counts.refused++;
    }

    // a change checked and not applied (what the API does) gets the same decision and objects
    if (store.problems === undefined) {
      const [key, value] = randomChange(r);
      const checked = store.check(new Map([[key, value === undefined ? undefined : parseJson(value)]]));
      const hypothetical = new Map(keys);
      if (value === undefined) hypothetical.delete(key);
      else hypothetical.set(key, value);
      const whole = full(generation, hypothetical);
      t.is(checked !== undefined, whole.model !== undefined, `${where}; checked ${key} ${value}: ${whole.rejected ?? ''}`);
      if (checked && whole.model) {
        const o = checked.get(key);
        // entriesOf writes every name in its own encoding
        const stored = value === undefined || key.includes('%') ? value && JSON.stringify(storedValueOf(o!)) : entriesOf(whole.model, generation).get(generationPrefix(generation) + key);
        t.deepEqual(o && JSON.stringify(storedValueOf(o)), stored, `${where}; checked ${key} ${value}`);
      }
    }
  }
  return counts;
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return text; // not an object: refused as such
  }
};

test('random changes: after every one, the model and the accept/refuse decision equal a full validation of the same keys', (t) => {
  let total = { accepted: 0, refused: 0 };
  for (const seed of [1, 2, 3, 4]) {
    const c = walk(t, seed, 300);
    total = { accepted: total.accepted + c.accepted, refused: total.refused + c.refused };
  }
  t.log(`${total.accepted} changes accepted, ${total.refused} refused`);
  // both outcomes are exercised, each many times
  t.true(total.accepted > 200 && total.refused > 200, JSON.stringify(total));
});

const LOAD_BALANCER = { name: 'web-lb', vpc: 'blue', subnet: 'web', vip: '10.1.1.100', protocol: 'tcp' as const, ports: [80], backends: [{ port: 'web1', weight: 1 }, { port: 'web2', weight: 2 }], zoneAffinity: false };

for (const file of ['two-zones', 'north-south']) test(`the ${file} model (and a load balancer) taken apart and put back one key at a time is the same model at every step`, (t) => {
  const model = { ...loadModelFile(`${REPO_ROOT}/models/${file}.yaml`), loadBalancers: [LOAD_BALANCER] };
  const generation = file;
  const all = [...entriesOf(model, generation)];
  const store = new StoredModel([kv(CURRENT_KEY, generation), ...all.map(([k, v]) => kv(k, v))]);
  const keys = new Map(all.map(([k, v]) => [k.slice(generationPrefix(generation).length), v]));
  // each kind before what it refers to
  const order = ['floatingIps', 'loadBalancers', 'acls', 'ports', 'subnets', 'vpcs', 'externalNetworks', 'hypervisors', 'zones'];
  const removal = [...keys.keys()].sort((a, b) => order.indexOf(a.split('/')[0]!) - order.indexOf(b.split('/')[0]!));
  for (const key of [...removal, ...[...removal].reverse()]) {
    revision++;
    const value = keys.has(key) ? undefined : entriesOf(model, generation).get(generationPrefix(generation) + key)!;
    if (value === undefined) keys.delete(key);
    else keys.set(key, value);
    const outcome = store.apply([{ type: value === undefined ? 'Delete' : 'Put', key: generationPrefix(generation) + key, value: Buffer.from(value ?? ''), modRevision: revision }]);
    const expected = full(generation, keys);
    t.truthy(expected.model, `${key}: every step is a valid model`);
    t.true(outcome !== undefined && 'model' in outcome, key);
    t.deepEqual(store.model, expected.model, key);
  }
  t.deepEqual(store.model, full(generation, new Map(all.map(([k, v]) => [k.slice(generationPrefix(generation).length), v]))).model);
});

test("an IPv6 address given to a port is refused when it is another port's EUI-64 address in the VPC, whichever comes first", (t) => {
  const eui64Of01 = 'fd00:1::ff:fe00:1'; // 02:00:00:00:00:01 in fd00:1::/64
  const port = (name: string, mac: string, ip: string, ipv6?: string) => JSON.stringify({ name, vpc: 'v1', subnet: 's1', mac, ip, hypervisor: 'h1', ...(ipv6 && { ipv6 }) });
  const derived = port('p1', '02:00:00:00:00:01', '10.0.1.5');
  const given = port('p2', '02:00:00:00:00:02', '10.0.1.6', eui64Of01);
  for (const [first, second] of [[['ports/p1', derived], ['ports/p2', given]], [['ports/p2', given], ['ports/p1', derived]]] as const) {
    const generation = `dual-${first[0].slice(6)}`;
    const keys = startingKeys();
    keys.set('subnets/v1/s1', JSON.stringify({ name: 's1', cidr: '10.0.1.0/24', gateway: '10.0.1.1', ipv6: { prefix: 'fd00:1::/64', slaac: true } }));
    keys.set(first[0], first[1]);
    const store = new StoredModel([kv(CURRENT_KEY, generation), ...[...keys].map(([k, v]) => kv(generationPrefix(generation) + k, v))]);
    t.is(store.problems, undefined);
    const checked = store.check(new Map([[second[0], JSON.parse(second[1])]]));
    t.is(checked, undefined, `${second[0]} after ${first[0]}: checked as the API does`);
    revision++;
    const outcome = store.apply([{ type: 'Put', key: generationPrefix(generation) + second[0], value: Buffer.from(second[1]), modRevision: revision }]);
    t.true(outcome !== undefined && 'rejected' in outcome && /duplicate IPv6 address fd00:1::ff:fe00:1/.test(outcome.rejected.message), `${second[0]} after ${first[0]}`);
  }
});

test("a floating IP is refused once its port's zone has no external network, whether the network or the port's hypervisor changes", (t) => {
  const keys = startingKeys();
  // p1 on h2 (z1, not a gateway) has a floating IP drawn from z2's network: z1's network e1 serves it
  keys.set('ports/p1', JSON.stringify({ name: 'p1', vpc: 'v1', subnet: 's1', mac: '02:00:00:00:00:01', ip: '10.0.1.5', hypervisor: 'h2' }));
  keys.set('zones/z3', JSON.stringify({ name: 'z3', underlay: '172.16.3.0/24' }));
  keys.set('floatingIps/198.51.100.74', JSON.stringify({ ip: '198.51.100.74', network: 'e2', port: 'p1' }));
  const e1 = JSON.parse(keys.get('externalNetworks/e1')!) as Record<string, unknown>;
  const changes: [string, unknown][] = [
    ['externalNetworks/e1', undefined],
    ['externalNetworks/e1', { ...e1, zone: 'z2', cidr: '198.51.100.128/26', nextHop: '198.51.100.129', gateways: [{ hypervisor: 'h4', ip: '198.51.100.130' }] }],
    ['hypervisors/h2', { name: 'h2', zone: 'z3', tunnelIp: '172.16.3.12' }],
  ];
  for (const [key, value] of changes) {
    const generation = `fip-${revision}`;
    const store = new StoredModel([kv(CURRENT_KEY, generation), ...[...keys].map(([k, v]) => kv(generationPrefix(generation) + k, v))]);
    t.is(store.problems, undefined);
    t.is(store.check(new Map([[key, value]])), undefined, `${key} checked as the API does`);
    revision++;
    const outcome = store.apply([{ type: value === undefined ? 'Delete' : 'Put', key: generationPrefix(generation) + key, value: Buffer.from(JSON.stringify(value ?? '')), modRevision: revision }]);
    t.true(outcome !== undefined && 'rejected' in outcome && /p1 is in zone z[13], which has no external network/.test(outcome.rejected.message), `${key}: ${outcome && 'rejected' in outcome ? outcome.rejected.message : 'accepted'}`);
  }
});
