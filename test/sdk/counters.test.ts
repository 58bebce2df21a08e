import test from 'ava';
import { MAX_COUNTED_SWITCHES, SwitchEventCounts } from '../../src/sdk';

test('SwitchEventCounts: counts by switch and value; switches past the cap add up under dpid undefined', (t) => {
  const counts = new SwitchEventCounts<'a' | 'b'>();
  counts.add(1n, 'a');
  counts.add(1n, 'a');
  counts.add(2n, 'b');
  t.is(counts.get('a', 1n), 2);
  t.is(counts.get('b', 1n), 0);
  t.is(counts.get('b'), 1, 'summed over switches');
  for (let dpid = 3n; dpid < BigInt(MAX_COUNTED_SWITCHES) + 10n; dpid++) counts.add(dpid, 'a');
  const read = [...counts.read()];
  t.is(new Set(read.map((c) => c.dpid)).size, MAX_COUNTED_SWITCHES + 1, 'the cap, plus the shared entry');
  // MAX_COUNTED_SWITCHES + 9 switches in all: the last 9 share one entry
  t.deepEqual(read.find((c) => c.dpid === undefined), { dpid: undefined, value: 'a', count: 9 });
  counts.add(1n, 'b');
  t.is(counts.get('b', 1n), 1, 'a switch counted before the cap keeps its own counts');
  t.is(counts.get('a'), 2 + MAX_COUNTED_SWITCHES + 10 - 3);
});
