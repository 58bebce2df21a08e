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
