import test from 'ava';
import type { Action, OxmTlv } from '../../src/openflow';
import { FlowBuilder } from '../../src/sdk/flow';
import { exactTlv, gotoTable, metadataWrite, sharedAction, sharedInstructions, sharedMatch } from '../../src/sdk/intern';
import { Pipeline } from '../../src/sdk/pipeline';

const pipeline = new Pipeline([
  { name: 'first', stage: 'classify', miss: 'drop', matches: ['in_port', 'metadata', 'eth_dst', 'reg0'] },
  { name: 'second', stage: 'l2', miss: 'drop', matches: ['in_port'] },
]);
const build = (f: (b: FlowBuilder) => FlowBuilder) => f(new FlowBuilder(pipeline, pipeline.table('first'), 7n)).build();

test('equal number parts are one object: TLVs (small, large and bigint values), set_fields, outputs, metadata writes', (t) => {
  for (const value of [3, 5000, 0x86dd, 2 ** 40]) t.is(exactTlv('reg0', value), exactTlv('reg0', value));
  t.is(exactTlv('metadata', 9n), exactTlv('metadata', 9n));
  t.not(exactTlv('reg0', 3), exactTlv('reg1', 3), 'the field is part of the identity');
  t.not(exactTlv('reg0', 3), exactTlv('reg0', 4));
  const setReg = (value: number): Action => ({ type: 'set_field', field: { field: 'reg0', value } });
  t.is(sharedAction(setReg(1)), sharedAction(setReg(1)));
  t.is(sharedAction({ type: 'output', port: 3, maxLen: 0 }), sharedAction({ type: 'output', port: 3, maxLen: 0 }));
  t.is(metadataWrite(4n, 0xffffffffffffffffn), metadataWrite(4n, 0xffffffffffffffffn));
  t.not(metadataWrite(4n, 0xffn), metadataWrite(4n, 0xffn), 'a masked write is made as it is');
  t.deepEqual(metadataWrite(4n, 0xffn), { type: 'write_metadata', metadata: 4n, metadataMask: 0xffn });
});

test('instruction lists of shared parts are shared; a list of one flow own actions is made as it is', (t) => {
  const out3 = sharedAction({ type: 'output', port: 3, maxLen: 0 });
  const out4 = sharedAction({ type: 'output', port: 4, maxLen: 0 });
  const goto = gotoTable(5);
  t.is(sharedInstructions([out3], undefined), sharedInstructions([out3], undefined));
  t.is(sharedInstructions([out3], goto), sharedInstructions([out3], goto));
  t.is(sharedInstructions([out3, out4], undefined), sharedInstructions([out3, out4], undefined));
  t.is(sharedInstructions([], goto), sharedInstructions([], goto));
  t.not(sharedInstructions([out3, out4], undefined), sharedInstructions([out4, out3], undefined), 'order is part of the list');
  t.deepEqual(sharedInstructions([out3], goto), [{ type: 'apply_actions', actions: [out3] }, goto]);
  t.deepEqual(sharedInstructions([], undefined), []);
  // a set_field of an address is one port's: not looked up
  const mac: Action = { type: 'set_field', field: { field: 'eth_src', value: '02:00:00:00:00:01' } };
  t.not(sharedInstructions([mac], undefined), sharedInstructions([mac], undefined));
  // three actions, or two and a goto: made as they are
  t.not(sharedInstructions([out3, out4, out3], undefined), sharedInstructions([out3, out4, out3], undefined));
  t.not(sharedInstructions([out3, out4], goto), sharedInstructions([out3, out4], goto));
});

test('a match of one number field is shared; one of an address or a mask is not', (t) => {
  t.is(sharedMatch([exactTlv('in_port', 2)], 1), sharedMatch([exactTlv('in_port', 2)], 1));
  t.is(sharedMatch([], 0), sharedMatch([exactTlv('in_port', 2)], 0));
  const mac = () => sharedMatch([exactTlv('eth_dst', '02:00:00:00:00:09')], 1);
  t.not(mac(), mac());
  const masked = () => sharedMatch([{ field: 'reg0', value: 1, mask: 1 }], 1);
  t.not(masked(), masked());
  // from scratch space: an exact-length copy, never the scratch itself
  const scratch = [exactTlv('in_port', 2), exactTlv('reg0', 3), exactTlv('reg1', 4)];
  const two = sharedMatch(scratch, 2);
  t.not(two, scratch);
  t.deepEqual(two, scratch.slice(0, 2));
});

test('built flows share their parts and still read as their own data', (t) => {
  const local = (port: number) => build((b) => b.priority(10).match({ in_port: port }).apply({ type: 'output', port, maxLen: 0 }).goto('second'));
  const a = local(3);
  const b = local(3);
  t.not(a, b);
  t.is(a.match, b.match);
  t.is(a.instructions, b.instructions);
  t.deepEqual(local(4).match, [{ field: 'in_port', value: 4 }]);
  t.deepEqual(local(4).instructions, [{ type: 'apply_actions', actions: [{ type: 'output', port: 4, maxLen: 0 }] }, { type: 'goto_table', tableId: 1 }]);
  // write_metadata stays in OpenFlow's instruction order, after apply
  const classify = build((b) => b.match({ in_port: 1 }).writeMetadata(6n).apply({ type: 'set_field', field: { field: 'reg0', value: 2 } }).goto('second'));
  t.deepEqual(
    classify.instructions.map((i) => i.type),
    ['apply_actions', 'write_metadata', 'goto_table'],
  );
  // two match calls merge, the later field winning
  t.deepEqual(build((b) => b.match({ in_port: 1, reg0: 1 }).match({ reg0: 2 })).match, [
    { field: 'in_port', value: 1 },
    { field: 'reg0', value: 2 },
  ]);
});

test('bounded per name: past 16,384 large values one name starts over, and the others keep sharing', (t) => {
  const first = exactTlv('reg0', 70_000);
  const other = exactTlv('reg1', 70_000);
  // 31-bit hashes, like port keys: one port's each
  for (let v = 0; v < 20_000; v++) t.deepEqual(exactTlv('reg0', 100_000 + v * 7), { field: 'reg0', value: 100_000 + v * 7 });
  const again = exactTlv('reg0', 70_000);
  t.deepEqual(again, first);
  t.not(again, first, 'reg0 started over');
  t.is(exactTlv('reg0', 70_000), again);
  t.is(exactTlv('reg1', 70_000), other, 'reg1 kept its values');
});

test("a name whose large values are asked for again keeps them past its bound; one whose values never are keeps only the last (and its small ones)", (t) => {
  const X = 900_000;
  for (let v = 0; v < 20_000; v++) {
    // each value asked for again once another was: answered by the name's Map
    const made = exactTlv('reg2', 300_000 + v);
    exactTlv('reg2', X);
    t.is(exactTlv('reg2', 300_000 + v), made);
  }
  const kept = exactTlv('reg2', 500_000);
  exactTlv('reg2', X);
  t.is(exactTlv('reg2', 500_000), kept, 'reg2 shares past its first 16,384 values');

  // port keys: one port's each, asked for again only by that port's flows, in a row
  for (let v = 0; v < 20_000; v++) t.is(exactTlv('reg3', 600_000 + v), exactTlv('reg3', 600_000 + v));
  const once = exactTlv('reg3', 800_000);
  exactTlv('reg3', X);
  const twice = exactTlv('reg3', 800_000);
  t.not(twice, once, 'reg3 keeps no large value but the last');
  t.deepEqual(twice, once);
  t.is(exactTlv('reg3', 5), exactTlv('reg3', 5), 'its small values are still by index');
  exactTlv('reg3', 6);
  t.is(exactTlv('reg3', 5), exactTlv('reg3', 5));
  // nor is a list made of such a value looked up: it would be one flow's, and only fill the table
  const large = exactTlv('reg3', 800_001);
  t.not(sharedMatch([large], 1), sharedMatch([large], 1));
  t.is(sharedMatch([exactTlv('reg2', 500_000)], 1), sharedMatch([exactTlv('reg2', 500_000)], 1), "reg2's are");
  const setReg4 = (value: number): Action => ({ type: 'set_field', field: { field: 'reg4', value } as OxmTlv });
  for (let v = 0; v < 20_000; v++) sharedAction(setReg4(600_000 + v));
  t.not(sharedInstructions([setReg4(800_000)], undefined), sharedInstructions([setReg4(800_000)], undefined));
  t.is(sharedInstructions([setReg4(7)], undefined), sharedInstructions([setReg4(7)], undefined), 'a small value of it is shared, and its list');
});
