import test from 'ava';
import fc from 'fast-check';
import { contentKey, internModel, sameData, validateModel, type NetworkModel } from '../../src/model';
import { generatedModel } from '../helpers/model';

/** plain model data as validation leaves it: objects, arrays, strings, numbers, bigints, booleans, absent fields */
const data = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string({ maxLength: 4 }),
    fc.integer({ min: -3, max: 3 }),
    fc.bigInt({ min: -3n, max: 3n }),
    fc.boolean(),
    fc.constant(undefined),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('a', 'b', 'c', 'from', 'to'), tie('value'), { maxKeys: 3 }),
  ),
})).value;

test('contentKey: two values have the same key exactly when sameData says they are equal', (t) => {
  // fixed cases sameData separates or joins, then random pairs (equal ones made by copying in another key order)
  t.is(contentKey({ a: 1, b: undefined }), contentKey({ a: 1 }));
  t.is(contentKey({ b: 'x', a: [1n] }), contentKey({ a: [1n], b: 'x' }));
  t.not(contentKey({ a: '1' }), contentKey({ a: 1 }));
  t.not(contentKey({ a: 1n }), contentKey({ a: 1 }));
  t.not(contentKey({ a: 'x,b:1' }), contentKey({ a: 'x', b: 1 }));
  t.not(contentKey([1, 2]), contentKey({ 0: 1, 1: 2 }));
  const reordered = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(reordered) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reordered(x)])) : v;
  fc.assert(
    fc.property(data, data, (a, b) => {
      t.is(contentKey(a) === contentKey(b), sameData(a, b));
      t.is(contentKey(reordered(a)), contentKey(a));
    }),
  );
});

/** a model as a re-read file gives it: every object new */
const reread = (m: NetworkModel): NetworkModel => structuredClone(m);

test('internModel: a re-read model with one port edited keeps every other object, and every untouched list, of the version before', (t) => {
  const doc = generatedModel(200);
  const before = validateModel(doc, 'm.yaml');
  doc.ports[17]!.mac = '02:00:00:ff:ff:01';
  const read = validateModel(doc, 'm.yaml');
  t.not(read.ports[3], before.ports[3], 'validation makes new objects');
  const after = internModel(read, before);
  for (const list of ['zones', 'hypervisors', 'vpcs', 'subnets', 'acls'] as const) t.is(after[list], before[list], list);
  t.not(after.ports, before.ports);
  after.ports.forEach((p, i) => (i === 17 ? t.is(p, read.ports[17]) : t.is(p, before.ports[i], `ports[${i}]`)));
  t.deepEqual(after, read, 'the same content');
  // the next version interns against this one, by the keys kept beside it
  const again = internModel(reread(after), after);
  t.not(again, after);
  t.is(again.ports, after.ports);
});

test('internModel: moved, removed and added objects; of two equal objects in one list only the first is the previous one', (t) => {
  const before = validateModel(generatedModel(50), 'm.yaml');
  const ports = reread(before).ports.slice(1);
  ports.reverse();
  const added = { ...ports[0]!, name: 'new', ip: '10.9.9.9' };
  const after = internModel({ ...reread(before), ports: [...ports, added] }, before);
  t.is(after.ports.length, 50);
  after.ports.slice(0, 49).forEach((p, i) => t.is(p, before.ports[49 - i]));
  t.is(after.ports[49], added);

  const twice = reread(before);
  const doubled = { ...twice, zones: [twice.zones[0]!, { ...twice.zones[0]! }] };
  const interned = internModel(doubled, before);
  t.is(interned.zones[0], before.zones[0]);
  t.is(interned.zones[1], doubled.zones[1], 'the second of two equal objects stays as read: no object twice in one list');
});

test("internModel: a list of the previous version's very objects stays the previous list; the version is still a new one", (t) => {
  const before = validateModel(generatedModel(50), 'm.yaml');
  const sameObjects = { ...before, ports: [...before.ports] };
  const after = internModel(sameObjects, before);
  t.is(after.ports, before.ports);
  t.not(after, before, 'a new version, even when nothing in it changed');
});
