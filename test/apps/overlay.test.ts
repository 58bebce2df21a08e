import test from 'ava';
import fc from 'fast-check';
import { Subject } from 'rxjs';
import { type Placement, buildOverlayView } from '../../src/apps/overlay';
import { SwitchPortPlacement } from '../../src/runtime';
import type { PortStatusEvent, SwitchUpEvent } from '../../src/controller';
import type { Port } from '../../src/openflow';
import { FLOOD_KEYS, ModelValidationError, PORT_KEYS, TUNNEL_OFPORT, assignKeys, tunnelKey, validateModel } from '../../src/model';
import { edit, placeAll, toDoc, twoZones, viewOf } from './helpers';

test('tunnel key = vni << 12 | egress key, 24 bits', (t) => {
  t.is(tunnelKey(101, 0xe65), 0x65e65n);
  t.is(tunnelKey(0xfff, FLOOD_KEYS.max), 0xfffffen);
});

test('keys: pinned kept, others hashed with linear probing in name order, independent of input order', (t) => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 60 }), (names) => {
      const keys = assignKeys(names.map((name) => ({ name })), { min: 1, max: 64 });
      const shuffled = assignKeys([...names].reverse().map((name) => ({ name })), { min: 1, max: 64 });
      t.deepEqual([...keys].sort(), [...shuffled].sort());
      const values = [...keys.values()];
      t.is(new Set(values).size, names.length);
      t.true(values.every((k) => k >= 1 && k <= 64));
    }),
  );
  const pinned = assignKeys([{ name: 'a', pinned: 7 }, { name: 'b' }], PORT_KEYS);
  t.is(pinned.get('a'), 7);
  t.not(pinned.get('b'), 7);
});

test('keys: a colliding newcomer that sorts first takes the slot and moves an unpinned port; a pinned one stays', (t) => {
  const key = (name: string) => assignKeys([{ name }], PORT_KEYS).get(name)!;
  const rival = Array.from({ length: 100_000 }, (_, i) => `a${i}`).find((n) => key(n) === key('web9'))!;
  const both = assignKeys([{ name: 'web9' }, { name: rival }], PORT_KEYS);
  t.is(both.get(rival), key('web9'));
  t.is(both.get('web9'), key('web9') + 1);
  // the documented remedy: pin tunnelKey
  t.is(assignKeys([{ name: 'web9', pinned: key('web9') }, { name: rival }], PORT_KEYS).get('web9'), key('web9'));
});

test('validation: tunnel keys unique per VPC and in range, tunnel ofport reserved, ovsdb a target, interface names fit a switch', (t) => {
  const doc = toDoc(twoZones());
  doc.ports[0].tunnelKey = 5;
  doc.ports[1].tunnelKey = 5;
  doc.ports[5].tunnelKey = 5; // red: another VPC, fine
  doc.ports[2].tunnelKey = 0xf00;
  doc.ports[3].ofport = TUNNEL_OFPORT;
  doc.hypervisors[0].ovsdb = '/run/db.sock';
  doc.hypervisors[1].ovsdb = 'unix:/run/zm/hv2/db.sock';
  doc.ports[4].interface = 'a-very-long-ifname';
  const e = t.throws(() => validateModel(doc, 'm.yaml'), { instanceOf: ModelValidationError })!;
  t.deepEqual(
    e.issues.map((i) => i.path),
    ['hypervisors[0].ovsdb', 'ports[2].tunnelKey', 'ports[3].ofport', 'ports[4].interface', 'ports[1].tunnelKey'],
  );
});

test('views are interned: re-reading an unchanged model gives the very same view objects', (t) => {
  const first = viewOf(twoZones());
  const again = buildOverlayView(twoZones(), first.placement, first);
  t.not(again, first);
  t.is(again.hypervisors, first.hypervisors);
  again.vpcs.forEach((v, i) => t.is(v, first.vpcs[i]));
});

/** a different value of the same kind, for any field of the model */
function changed(value: unknown): unknown {
  if (typeof value === 'string') return `${value}x`;
  if (typeof value === 'number') return value + 1;
  if (typeof value === 'bigint') return value + 1n;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, changed(v)]));
  throw new Error(`no change for ${String(value)}`);
}

test('views: a change to any field of any model object is seen, without a list of fields to keep up to date', (t) => {
  // every optional field set, so that each one is changed once below
  const m = edit(twoZones(), (doc) => {
    doc.hypervisors[0].ovsdb = 'unix:/run/zm/hv1/db.sock';
    Object.assign(doc.ports[0], { ofport: 7, tunnelKey: 0x70 });
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
  const next = edit(m, (doc) => doc.ports.push({ name: 'db2', vpc: 'blue', subnet: 'db', mac: '02:00:00:01:03:0c', ip: '10.1.3.12', hypervisor: 'hv4' }));
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
