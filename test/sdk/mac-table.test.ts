import test from 'ava';
import { numberToMac, parseMac } from '../../src/openflow';
import { MacTable } from '../../src/sdk';

const frameFrom = (dst: string, src: string) => Buffer.concat([parseMac(dst), parseMac(src), Buffer.from([0x08, 0x00])]);
const macOf = (i: number) => numberToMac(0x020000000000 + i * 0x10101);

test('learns, moves and looks up MACs straight from frame bytes', (t) => {
  const table = new MacTable();
  const frame = frameFrom('02:00:00:00:00:02', '02:00:00:00:00:01');
  t.is(table.get(frame, 0), undefined);
  t.true(table.set(frame, 6, 3), 'a new MAC is a change');
  t.false(table.set(frame, 6, 3), 'the same port again is not');
  t.is(table.get(frame, 6), 3);
  t.is(table.get(frame, 0), undefined);
  t.true(table.set(frame, 6, 0xfffffffe), 'a move is a change; ports are 32-bit');
  t.is(table.get(frame, 6), 0xfffffffe);
  t.is(table.size, 1);
});

test('grows past its first capacity and keeps every entry', (t) => {
  const table = new MacTable();
  const n = 5000;
  for (let i = 0; i < n; i++) table.set(parseMac(macOf(i)), 0, i % 48);
  t.is(table.size, n);
  const entries = table.entries();
  t.is(entries.size, n);
  for (let i = 0; i < n; i += 97) {
    t.is(table.get(parseMac(macOf(i)), 0), i % 48);
    t.is(entries.get(macOf(i)), i % 48);
  }
  t.is(table.get(parseMac('ff:ff:ff:ff:ff:ff'), 0), undefined);
});

test('forgetting a port drops exactly the MACs learned on it', (t) => {
  const table = new MacTable();
  for (let i = 0; i < 300; i++) table.set(parseMac(macOf(i)), 0, 1 + (i % 3));
  table.forgetPort(2);
  t.is(table.size, 200);
  for (let i = 0; i < 300; i++) t.is(table.get(parseMac(macOf(i)), 0), i % 3 === 1 ? undefined : 1 + (i % 3));
});

test('a flood of distinct MACs far past its bound keeps the table at the bound and counts every eviction', (t) => {
  const table = new MacTable(1024);
  const flood = 100_000;
  for (let i = 0; i < flood; i++) table.set(parseMac(macOf(i)), 0, 1 + (i % 48));
  t.is(table.size, 1024);
  t.is(table.evictions, flood - 1024);
  // every entry left is found where the table says it is: evictions kept the probe chains whole
  const entries = table.entries();
  t.is(entries.size, 1024);
  for (const [mac, port] of entries) t.is(table.get(parseMac(mac), 0), port);
});

test('MACs in use survive a flood of new ones; learning one again counts as use', (t) => {
  const table = new MacTable(1024);
  const hot = Array.from({ length: 64 }, (_, i) => parseMac(macOf(1_000_000 + i)));
  hot.forEach((mac, i) => table.set(mac, 0, 1 + (i % 2)));
  for (let i = 0; i < 50_000; i++) {
    table.set(parseMac(macOf(i)), 0, 7);
    // every 200 new MACs, half the hot ones are looked up and the other half learned again
    if (i % 200 === 0) hot.forEach((mac, j) => (j % 2 ? table.get(mac, 0) : table.set(mac, 0, 1 + (j % 2))));
  }
  t.is(table.size, 1024);
  hot.forEach((mac, i) => t.is(table.get(mac, 0), 1 + (i % 2), `hot MAC ${i} survived`));
  t.true(table.evictions >= 50_000 - 1024);
});

test('the bound is checked', (t) => {
  for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 25]) t.throws(() => new MacTable(bad), { instanceOf: RangeError });
  const one = new MacTable(1);
  one.set(parseMac(macOf(1)), 0, 1);
  one.set(parseMac(macOf(2)), 0, 2);
  t.deepEqual([...one.entries()], [[macOf(2), 2]]);
  t.is(one.evictions, 1);
});
