import test from 'ava';
import { makeCookie } from '../../src/sdk/cookie';
import type { Flow } from '../../src/sdk/flow';
import { type FlowsChange, IncrementalCompiler, type OwnerDef, type OwnerFlows, type OwnerGroup, bySwitch, flowsOn } from '../../src/sdk/incremental';

/** a fake flow whose priority says which input produced it */
function flow(owner: string, priority: number): Flow {
  return { tableId: 0, table: 't', priority, match: [], instructions: [], cookie: makeCookie(2, owner), idleTimeout: 0, hardTimeout: 0, flags: 0 };
}

interface Spec {
  group: string;
  token: unknown;
  owners: { key: string; sig: unknown; dpids: bigint[]; priority?: number }[];
}

function groups(specs: Spec[], compiled: string[]): OwnerGroup[] {
  return specs.map((s) => ({
    key: s.group,
    token: s.token,
    owners: () =>
      s.owners.map(
        (o): OwnerDef => ({
          key: o.key,
          signature: [o.sig],
          compile: () => {
            compiled.push(o.key);
            return [{ dpids: o.dpids, flows: [flow(o.key, o.priority ?? 1)] }];
          },
        }),
      ),
  }));
}

const summary = (changes: FlowsChange[]) => changes.flatMap((c) => c.dpids.map((dpid) => `${c.owner}@${dpid}:${c.flows.length}`));

test('first update compiles every owner and reports every switch', (t) => {
  const engine = new IncrementalCompiler();
  const compiled: string[] = [];
  const changes = engine.update(groups([{ group: 'g', token: 1, owners: [{ key: 'a', sig: 1, dpids: [1n, 2n] }, { key: 'b', sig: 1, dpids: [1n] }] }], compiled));
  t.deepEqual(compiled, ['a', 'b']);
  t.deepEqual(summary(changes), ['a@1:1', 'a@2:1', 'b@1:1']);
});

test('an unchanged group token skips the group without enumerating it', (t) => {
  const engine = new IncrementalCompiler();
  const token = {};
  engine.update(groups([{ group: 'g', token, owners: [{ key: 'a', sig: 1, dpids: [1n] }] }], []));
  const compiled: string[] = [];
  const g = groups([{ group: 'g', token, owners: [] }], compiled);
  let enumerated = false;
  const spy: OwnerGroup = { ...g[0]!, owners: () => ((enumerated = true), []) };
  t.deepEqual(engine.update([spy]), []);
  t.false(enumerated);
  t.deepEqual([...engine.snapshot().keys()], ['a'], 'its owners are kept');
});

test('only owners whose signature changed are recompiled; equal flows are not reported', (t) => {
  const engine = new IncrementalCompiler();
  engine.update(groups([{ group: 'g', token: 1, owners: [{ key: 'a', sig: 1, dpids: [1n] }, { key: 'b', sig: 1, dpids: [1n] }] }], []));
  const compiled: string[] = [];
  const changes = engine.update(
    groups([{ group: 'g', token: 2, owners: [{ key: 'a', sig: 2, dpids: [1n] }, { key: 'b', sig: 1, dpids: [1n] }] }], compiled),
  );
  t.deepEqual(compiled, ['a']);
  t.deepEqual(changes, [], 'a recompiled to the same flows');
  t.deepEqual(summary(engine.update(groups([{ group: 'g', token: 3, owners: [{ key: 'a', sig: 3, dpids: [1n], priority: 7 }, { key: 'b', sig: 1, dpids: [1n] }] }], []))), ['a@1:1']);
});

test('switches an owner leaves and owners that disappear are cleared, after every set', (t) => {
  const engine = new IncrementalCompiler();
  engine.update(
    groups(
      [
        { group: 'g1', token: 1, owners: [{ key: 'a', sig: 1, dpids: [1n, 2n] }, { key: 'b', sig: 1, dpids: [1n] }] },
        { group: 'g2', token: 1, owners: [{ key: 'c', sig: 1, dpids: [3n] }] },
      ],
      [],
    ),
  );
  const changes = engine.update(groups([{ group: 'g1', token: 2, owners: [{ key: 'a', sig: 2, dpids: [1n] }, { key: 'd', sig: 1, dpids: [2n] }] }], []));
  t.deepEqual(summary(changes), ['a@2:0', 'd@2:1', 'b@1:0', 'c@3:0']);
  t.deepEqual([...engine.snapshot().keys()].sort(), ['a', 'd']);
});

test('an owner moving to another group is updated, not cleared', (t) => {
  const engine = new IncrementalCompiler();
  engine.update(groups([{ group: 'g1', token: 1, owners: [{ key: 'a', sig: 1, dpids: [1n] }] }, { group: 'g2', token: 1, owners: [] }], []));
  const changes = engine.update(groups([{ group: 'g1', token: 2, owners: [] }, { group: 'g2', token: 2, owners: [{ key: 'a', sig: 2, dpids: [2n] }] }], []));
  t.deepEqual(summary(changes), ['a@2:1', 'a@1:0']);
});

test('a compile that throws leaves the state at the previous input', (t) => {
  const engine = new IncrementalCompiler();
  engine.update(groups([{ group: 'g', token: 1, owners: [{ key: 'a', sig: 1, dpids: [1n] }] }], []));
  const failing: OwnerGroup = {
    key: 'g',
    token: 2,
    owners: () => [
      { key: 'a', signature: [2], compile: () => [{ dpids: [1n], flows: [flow('a', 5)] }] },
      { key: 'b', signature: [1], compile: () => { throw new Error('boom'); } },
    ],
  };
  t.throws(() => engine.update([failing]), { message: 'boom' });
  t.is(flowsOn(engine.snapshot().get('a'), 1n)[0]!.priority, 1);
  t.deepEqual(summary(engine.update(groups([{ group: 'g', token: 3, owners: [{ key: 'a', sig: 2, dpids: [1n], priority: 5 }] }], []))), ['a@1:1']);
});

/** one owner 'a' whose flows are `lists`, under a new token each time */
const ownerWith = (token: number, lists: OwnerFlows): OwnerGroup[] => [{ key: 'g', token, owners: () => [{ key: 'a', signature: [token], compile: () => lists }] }];

test('a list on many switches is one change; after a regrouping only the switches whose flows differ are reported', (t) => {
  const engine = new IncrementalCompiler();
  const shared = [flow('a', 1)];
  const first = engine.update(ownerWith(1, [{ dpids: [1n, 2n, 3n], flows: shared }]));
  t.is(first.length, 1, 'one change for the three switches');
  t.deepEqual(first[0]!.dpids, [1n, 2n, 3n]);
  const changes = engine.update(ownerWith(2, [{ dpids: [1n, 3n], flows: [flow('a', 1)] }, { dpids: [2n], flows: [flow('a', 9)] }, { dpids: [4n], flows: shared }]));
  t.deepEqual(summary(changes), ['a@2:1', 'a@4:1'], 'switches 1 and 3 got equal flows in a new list');
  t.deepEqual(summary(engine.update(ownerWith(3, [{ dpids: [2n], flows: [flow('a', 9)] }]))), ['a@1:0', 'a@3:0', 'a@4:0'], 'the switches it left are cleared in one change');
});

test('the same switch sets: only the entries whose flows differ are reported, with their dpids', (t) => {
  const engine = new IncrementalCompiler();
  const remote = [2n, 3n];
  engine.update(ownerWith(1, [{ dpids: remote, flows: [flow('a', 1)] }, { dpids: [1n], flows: [flow('a', 2)] }]));
  const changes = engine.update(ownerWith(2, [{ dpids: remote, flows: [flow('a', 1)] }, { dpids: [1n], flows: [flow('a', 3)] }]));
  t.deepEqual(summary(changes), ['a@1:1']);
  const next = engine.update(ownerWith(3, [{ dpids: remote, flows: [flow('a', 4)] }, { dpids: [1n], flows: [flow('a', 3)] }]));
  t.is(next[0]!.dpids, remote, "the entry's own dpid array");
});

test('bySwitch: switches with the very same list share one entry', (t) => {
  const l1 = [flow('a', 1)];
  const l2 = [flow('a', 1)];
  const lists = bySwitch(new Map([[1n, l1], [2n, l2], [3n, l1]]));
  t.deepEqual(lists.map((e) => e.dpids), [[1n, 3n], [2n]]);
  t.is(flowsOn(lists, 3n), l1);
  t.deepEqual(flowsOn(lists, 4n), []);
});
