import test from 'ava';
import fc from 'fast-check';
import { Subject } from 'rxjs';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { type OverlayView, buildOverlayView, viewPatch } from '../../src/apps/overlay';
import type { PortNumbers as Placement } from '../../src/sdk';
import { SwitchPortPlacement } from '../../src/runtime';
import type { PortStatusEvent, SwitchUpEvent } from '../../src/controller';
import type { Port } from '../../src/openflow';
import {
  FLOOD_KEYS,
  type KeyRange,
  type Keyed,
  MAC_RE,
  ModelValidationError,
  type NetworkModel,
  PORT_KEYS,
  TUNNEL_OFPORT,
  TunnelKeyError,
  VNI_MAX,
  assignKeys,
  conntrackZone,
  derivedKey,
  internModel,
  keyCollisions,
  keyOf,
  validateModel,
} from '../../src/model';
import { edit, placeAll, toDoc, twoZones, viewOf } from './helpers';

setFlagsFromString('--expose_gc');

test('keys: pinned kept, others a hash of the name into their range, whatever the order or the other objects', (t) => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 60 }), (names) => {
      const keys = assignKeys(names.map((name) => ({ name })), PORT_KEYS);
      t.deepEqual([...keys].sort(), [...assignKeys([...names].reverse().map((name) => ({ name })), PORT_KEYS)].sort());
      for (const [name, key] of keys) {
        t.is(key, derivedKey(name, PORT_KEYS));
        t.true(key >= PORT_KEYS.min && key <= PORT_KEYS.max);
        t.true(derivedKey(name, FLOOD_KEYS) >= FLOOD_KEYS.min && derivedKey(name, FLOOD_KEYS) <= FLOOD_KEYS.max);
      }
    }),
  );
  const pinned = assignKeys([{ name: 'a', tunnelKey: 7 }, { name: 'b' }], PORT_KEYS);
  t.is(pinned.get('a'), 7);
  t.is(pinned.get('b'), derivedKey('b', PORT_KEYS));
  t.throws(() => assignKeys([{ name: 'a', tunnelKey: 7 }, { name: 'b', tunnelKey: 7 }], PORT_KEYS), { instanceOf: TunnelKeyError });
});

/** a small range, so that random names collide often */
const TINY: KeyRange = { min: 1, max: 16 };

test('keys are stable: over random add/remove sequences no present port ever changes key; a colliding newcomer is refused, never the incumbent moved', (t) => {
  const step = fc.record({ add: fc.boolean(), name: fc.constantFrom(...Array.from({ length: 24 }, (_, i) => `p${i}`)), pin: fc.option(fc.integer({ min: 1, max: 16 }), { nil: undefined }) });
  fc.assert(
    fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
      let ports: Keyed[] = [];
      let keys = new Map<string, number>();
      for (const { add, name, pin } of steps) {
        const next = add ? (ports.some((p) => p.name === name) ? ports : [...ports, { name, tunnelKey: pin }]) : ports.filter((p) => p.name !== name);
        const collisions = keyCollisions(next, TINY);
        if (collisions.length > 0) {
          // only the newcomer can collide, since the previous set had none; it is the one reported
          t.deepEqual(collisions.map((c) => next[c.index]!.name), [name]);
          t.false(next.some((p) => keyOf(p, TINY) === collisions[0]!.free), 'the suggested key is free');
          continue; // validation refuses the model: the previous one stays in force
        }
        const fresh = assignKeys(next, TINY);
        for (const [n, k] of fresh) if (keys.has(n)) t.is(k, keys.get(n)!, `${n} kept its key`);
        ports = next;
        keys = fresh;
      }
    }),
  );
});

/** two names whose derived port keys coincide: a birthday search (about 2 pairs per 100,000 names in 31 bits) */
function collidingNames(): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const name = `vm${i}`;
    const other = seen.get(derivedKey(name, PORT_KEYS));
    if (other !== undefined) return [other, name];
    seen.set(derivedKey(name, PORT_KEYS), name);
  }
}

test('keys: a colliding newcomer is refused with both names and a free key to pin; pinning it makes the model valid and moves nobody', (t) => {
  const [first, second] = collidingNames();
  const port = (name: string, i: number) => ({ name, vpc: 'blue', subnet: 'web', mac: `02:00:00:01:01:${(0x20 + i).toString(16)}`, ip: `10.1.1.${20 + i}`, hypervisor: 'hv1' });
  const withFirst = edit(twoZones(), (doc) => doc.ports.push(port(first, 0)));
  const key = viewOf(withFirst).vpcByName.get('blue')!.portByName.get(first)!.key;
  const e = t.throws(() => edit(withFirst, (doc) => doc.ports.push(port(second, 1))), { instanceOf: ModelValidationError })!;
  t.is(e.issues.length, 1);
  t.is(e.issues[0]!.path, 'ports[8].tunnelKey');
  t.true(e.issues[0]!.problem.startsWith(`tunnel key ${key} (derived from its name) is already ${first}'s (ports[7], derived from its name): pin another on one of them, e.g. tunnelKey: `));
  const free = Number(/tunnelKey: (\d+)$/.exec(e.issues[0]!.problem)![1]);
  const pinned = edit(withFirst, (doc) => doc.ports.push({ ...port(second, 1), tunnelKey: free }));
  const blue = viewOf(pinned).vpcByName.get('blue')!;
  t.is(blue.portByName.get(first)!.key, key);
  t.is(blue.portByName.get(second)!.key, free);
  for (const p of viewOf(withFirst).vpcByName.get('blue')!.ports) t.is(blue.portByName.get(p.port.name)!.key, p.key);
});

test('validation: keys unique per VPC and in range, vni 24 bits, conntrack zones apart per hypervisor, tunnel ofport reserved, ovsdb a target, interface names fit a switch', (t) => {
  const doc = toDoc(twoZones());
  doc.ports[0].tunnelKey = 5;
  doc.ports[1].tunnelKey = 5;
  doc.ports[5].tunnelKey = 5; // red: another VPC, fine
  doc.ports[2].tunnelKey = FLOOD_KEYS.min;
  doc.vpcs[0].subnets[1].tunnelKey = PORT_KEYS.max;
  doc.vpcs[0].subnets[2].tunnelKey = FLOOD_KEYS.max;
  doc.ports[3].ofport = TUNNEL_OFPORT;
  doc.hypervisors[0].ovsdb = '/run/db.sock';
  doc.hypervisors[1].ovsdb = 'unix:/run/zm/hv2/db.sock';
  doc.ports[4].interface = 'a-very-long-ifname';
  const e = t.throws(() => validateModel(doc, 'm.yaml'), { instanceOf: ModelValidationError })!;
  t.deepEqual(
    e.issues.map((i) => i.path),
    ['hypervisors[0].ovsdb', 'vpcs[0].subnets[1].tunnelKey', 'ports[2].tunnelKey', 'ports[3].ofport', 'ports[4].interface', 'ports[1].tunnelKey'],
  );

  const vnis = toDoc(twoZones());
  vnis.vpcs[0].vni = VNI_MAX;
  t.notThrows(() => validateModel(vnis, 'm.yaml'), 'the largest vni');
  vnis.vpcs[0].vni = VNI_MAX + 1;
  t.deepEqual(t.throws(() => validateModel(vnis, 'm.yaml'), { instanceOf: ModelValidationError })!.issues, [{ path: 'vpcs[0].vni', problem: 'must be an integer in 1..16777215' }]);
  // blue (101) and red share hv1 and hv4: a red vni of 101 + 65535 lands in blue's conntrack zone
  vnis.vpcs[0].vni = 101;
  vnis.vpcs[1].vni = 101 + 65_535;
  t.is(conntrackZone(101 + 65_535), conntrackZone(101));
  const zones = t.throws(() => validateModel(vnis, 'm.yaml'), { instanceOf: ModelValidationError })!;
  t.deepEqual(zones.issues, [{ path: 'vpcs[1].vni', problem: 'VPCs blue and red share conntrack zone 101 and hypervisor hv1 (zones are 16 bits: vnis 65,535 apart share one): choose another vni' }]);
});

test('views are interned: re-reading an unchanged model, as a store hands it on, gives the very same view objects', (t) => {
  const first = viewOf(twoZones());
  const again = buildOverlayView(internModel(twoZones(), first.model), first.placement, first);
  t.not(again, first);
  t.is(again.hypervisors, first.hypervisors);
  again.vpcs.forEach((v, i) => t.is(v, first.vpcs[i]));
});

/** a different value of the same kind, for any field of the model */
function changed(value: unknown): unknown {
  // a MAC stays one (ports derive their IPv6 address from it)
  if (typeof value === 'string') return MAC_RE.test(value) ? value.replace(/.$/, (d) => (d === '0' ? '1' : '0')) : `${value}x`;
  if (typeof value === 'number') return value + 1;
  if (typeof value === 'boolean') return !value;
  if (typeof value === 'bigint') return value + 1n;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, changed(v)]));
  throw new Error(`no change for ${String(value)}`);
}

test('views: a change to any field of any model object is seen, without a list of fields to keep up to date', (t) => {
  // every optional field set, so that each one is changed once below
  const m = edit(twoZones(), (doc) => {
    doc.hypervisors[0].ovsdb = 'unix:/run/zm/hv1/db.sock';
    Object.assign(doc.ports[0], { ofport: 7, tunnelKey: 0x70 });
    doc.vpcs[0].subnets[0].tunnelKey = FLOOD_KEYS.min + 7;
    doc.vpcs[0].acls[0].port = 'app1';
  });
  const placement = placeAll(m);
  const before = viewOf(m, placement);
  const blue = before.vpcByName.get('blue')!;
  // names and references group the objects: changing one is a rename or a move, tested elsewhere
  const grouping = new Set(['name', 'vpc', 'subnet', 'hypervisor', 'zone', 'interface', 'port']);
  const cases = {
    hypervisors: (v: typeof before) => v.hypervisorByName.get('hv1'),
    vpcs: (v: typeof before) => v.vpcByName.get('blue')!.vpc,
    subnets: (v: typeof before) => v.vpcByName.get('blue')!.subnetByName.get('web')!.subnet,
    ports: (v: typeof before) => v.vpcByName.get('blue')!.portByName.get('web1')!.port,
    acls: (v: typeof before) => v.vpcByName.get('blue')!.acls[0],
  } as const;
  let fields = 0;
  for (const [list, pick] of Object.entries(cases)) {
    const original = pick(before) as unknown as Record<string, unknown>;
    t.truthy(original, list);
    for (const key of Object.keys(original).filter((k) => !grouping.has(k))) {
      const objects = (m as unknown as Record<string, unknown[]>)[list]!;
      const edited = { ...m, [list]: objects.map((o) => (o === original ? { ...original, [key]: changed(original[key]) } : o)) };
      const after = buildOverlayView(edited, placement, before);
      t.not(pick(after), original, `${list}[].${key} changed, yet the view kept the old object`);
      fields++;
    }
  }
  t.true(fields >= 15, `${fields} fields changed one at a time`);
  t.is(blue.ports[0]!.port.ofport, 7, 'the optional fields are set');
});

test('views: a port added to one VPC leaves the other VPC and the untouched subnets as they were', (t) => {
  const m = twoZones();
  const first = viewOf(m);
  const next = internModel(
    edit(m, (doc) => doc.ports.push({ name: 'db2', vpc: 'blue', subnet: 'db', mac: '02:00:00:01:03:0c', ip: '10.1.3.12', hypervisor: 'hv4' })),
    m,
  );
  const second = viewOf(next, placeAll(next), first);
  const [blue1, red1] = first.vpcs;
  const [blue2, red2] = second.vpcs;
  t.is(red2, red1);
  t.not(blue2, blue1);
  t.is(blue2!.hosts, blue1!.hosts, 'db2 lands on a hypervisor blue already uses');
  t.is(blue2!.subnetByName.get('web'), blue1!.subnetByName.get('web'));
  t.not(blue2!.subnetByName.get('db'), blue1!.subnetByName.get('db'));
  for (const name of ['web1', 'web2', 'app1', 'app2', 'db1']) t.is(blue2!.portByName.get(name), blue1!.portByName.get(name), name);
});

test('views: a view patched from the previous one keeps that one, not every version before it', async (t) => {
  const gc = runInNewContext('gc') as () => void;
  const added = (m: NetworkModel, i: number) =>
    internModel(edit(m, (doc) => doc.ports.push({ name: `new-db${i}`, vpc: 'blue', subnet: 'db', mac: `02:00:00:01:03:${(0x10 + i).toString(16)}`, ip: `10.1.3.${20 + i}`, hypervisor: 'hv4' })), m);
  let m = twoZones();
  let view = viewOf(m);
  const versions: WeakRef<OverlayView>[] = [];
  for (let i = 0; i < 4; i++) {
    const previous = view;
    m = added(m, i);
    view = viewOf(m, placeAll(m), previous);
    t.is(viewPatch(view)?.previous, previous, 'consumers patch from the view before');
    versions.push(new WeakRef(view));
  }
  // a WeakRef holds its target until the current job ends
  await new Promise(setImmediate);
  gc();
  t.deepEqual(
    versions.map((v) => v.deref() !== undefined),
    [false, false, true, true],
    'the newest view and the one it was patched from',
  );
});

test('views: placement of one hypervisor only touches the VPCs it hosts', (t) => {
  const m = twoZones();
  const placed = placeAll(m);
  const first = viewOf(m, placed);
  const hv2 = m.hypervisors[1]!.datapathId;
  const moved = new Map(placed).set(hv2, new Map([['app1', 9]]));
  const second = viewOf(m, moved, first);
  t.is(second.vpcByName.get('red'), first.vpcByName.get('red'));
  t.is(second.vpcByName.get('blue')!.portByName.get('app1')!.ofport, 9);
});

/** what a view says, as plain data: compared between a view built step by step and one built afresh */
function viewData(v: OverlayView) {
  return v.vpcs.map((vpc) => ({
    vpc: vpc.vpc,
    hosts: vpc.hosts.map((h) => h.name),
    acls: vpc.acls,
    ports: vpc.ports.map((p) => ({ port: p.port, key: p.key, subnetKey: p.subnetKey, host: p.host.name, ofport: p.ofport })),
    subnets: vpc.subnets.map((s) => ({ subnet: s.subnet, key: s.key, ports: s.ports.map((p) => p.port.name), hosts: s.hosts.map((h) => h.name) })),
    byName: [...vpc.portByName.keys(), ...vpc.subnetByName.keys()],
  }));
}

test('views: edited in memory (unchanged objects kept) anywhere in the lists, with placement changes, a view built from the previous one equals one built afresh', (t) => {
  const base = twoZones();
  const spare = ['x0', 'x1', 'x2', 'x3', 'x4', 'x5'];
  const edits = fc.oneof(
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(40), from: fc.nat(40), name: fc.constantFrom(...spare), hv: fc.nat(3) }),
    fc.record({ kind: fc.constant('remove' as const), at: fc.nat(40) }),
    fc.record({ kind: fc.constant('move' as const), at: fc.nat(40), hv: fc.nat(3) }),
    fc.record({ kind: fc.constant('acl' as const), at: fc.nat(10) }),
    fc.record({ kind: fc.constant('renumber' as const), hv: fc.nat(3), ofport: fc.integer({ min: 1, max: 30 }) }),
  );
  fc.assert(
    fc.property(fc.array(edits, { maxLength: 10 }), (steps) => {
      let m = base;
      let placement = placeAll(m);
      let view = viewOf(m, placement);
      for (const step of steps) {
        const ports = [...m.ports];
        const hv = 'hv' in step ? m.hypervisors[step.hv % m.hypervisors.length]! : undefined;
        if (step.kind === 'insert' && !ports.some((p) => p.name === step.name)) {
          const { tunnelKey: _pinned, ...from } = ports[step.from % ports.length]!;
          ports.splice(step.at % (ports.length + 1), 0, { ...from, name: step.name, interface: step.name, hypervisor: hv!.name });
          m = { ...m, ports };
        } else if (step.kind === 'remove' && ports.length > 1) {
          ports.splice(step.at % ports.length, 1);
          m = { ...m, ports };
        } else if (step.kind === 'move') {
          const at = step.at % ports.length;
          ports[at] = { ...ports[at]!, hypervisor: hv!.name };
          m = { ...m, ports };
        } else if (step.kind === 'acl' && m.acls.length) {
          m = { ...m, acls: m.acls.filter((_, i) => i !== step.at % m.acls.length) };
        } else if (step.kind === 'renumber') {
          const numbers = new Map(placement.get(hv!.datapathId));
          for (const name of numbers.keys()) numbers.set(name, step.ofport);
          placement = new Map(placement).set(hv!.datapathId, numbers);
        }
        view = viewOf(m, placement, view);
        t.deepEqual(viewData(view), viewData(viewOf(m, placement)));
      }
    }),
    { numRuns: 200 },
  );
});

test('switch placement: port lists on connect, then adds and deletes; link flaps change nothing', (t) => {
  const switchUp$ = new Subject<SwitchUpEvent>();
  const portStatus$ = new Subject<PortStatusEvent>();
  const placement = new SwitchPortPlacement({ switchUp$, portStatus$ });
  const seen: Placement[] = [];
  placement.placement$.subscribe((p) => seen.push(p));
  const port = (name: string, portNo: number) => ({ name, portNo }) as Port;
  const status = (reason: number, name: string, portNo: number) =>
    portStatus$.next({ dpid: 0x11n, message: { type: 'PORT_STATUS', xid: 0, reason, desc: port(name, portNo) } } as PortStatusEvent);
  switchUp$.next({ dpid: 0x11n, ports: [port('web1', 1), port('zm-tun', 4000)] } as unknown as SwitchUpEvent);
  status(0, 'web3', 3);
  status(2, 'web3', 3);
  status(1, 'web1', 1);
  t.deepEqual(
    seen.map((p) => Object.fromEntries(p.get(0x11n) ?? [])),
    [{}, { web1: 1, 'zm-tun': 4000 }, { web1: 1, 'zm-tun': 4000, web3: 3 }, { 'zm-tun': 4000, web3: 3 }],
  );
});
