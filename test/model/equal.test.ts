import test from 'ava';
import { sameData } from '../../src/model/equal';

test('sameData: equal plain data, nested, with bigints; an absent key equals an undefined one', (t) => {
  t.true(sameData({ a: 1, b: 'x', c: 1n, d: { from: 1, to: 2 }, e: [1, { f: 'g' }] }, { e: [1, { f: 'g' }], d: { to: 2, from: 1 }, c: 1n, b: 'x', a: 1 }));
  t.true(sameData({ a: 1, b: undefined }, { a: 1 }));
  t.true(sameData({ a: 1 }, { a: 1, b: undefined }));
});

test('sameData: a changed, extra or missing value differs, at any depth', (t) => {
  t.false(sameData({ a: 1 }, { a: 2 }));
  t.false(sameData({ a: 1 }, { a: 1, b: 0 }));
  t.false(sameData({ a: 1, b: 0 }, { a: 1 }));
  t.false(sameData({ a: 1, b: undefined }, { a: 1, c: 'x' }));
  t.false(sameData({ d: { from: 1, to: 2 } }, { d: { from: 1, to: 3 } }));
  t.false(sameData({ d: { from: 1 } }, { d: 'from' }));
  t.false(sameData([1, 2], [1, 2, 3]));
  t.false(sameData([1, 2, 3], [1, 2]));
  t.false(sameData([1], { 0: 1 }));
  t.false(sameData(1n, 2n));
  t.false(sameData(null, {}));
});
