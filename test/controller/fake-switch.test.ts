import test from 'ava';
import { OFPBAC, OFPET, OFPFF_CHECK_OVERLAP, OFPG_ALL, OFPG_ANY, OFPP, OFPTT_ALL, type FlowMod, type GroupMod, type Instruction, type Match } from '../../src/openflow';
import { FakeFlowTable, FakeGroupTable, FakeSwitch, OFPFMFC_BAD_TABLE_ID, OFPFMFC_OVERLAP, OFPGMFC_GROUP_EXISTS, OFPGMFC_INVALID_GROUP, OFPGMFC_UNKNOWN_GROUP } from '../../src/testing';
import { connectSwitch, startController } from './util';

const output = (port: number): Instruction[] => [{ type: 'apply_actions', actions: [{ type: 'output', port, maxLen: 0 }] }];
const IP: Match = [{ field: 'eth_type', value: 0x0800 }];

function fm(command: FlowMod['command'], match: Match, o: Partial<FlowMod> = {}): FlowMod {
  return {
    type: 'FLOW_MOD', xid: 0, cookie: 0n, cookieMask: 0n, tableId: 0, command, idleTimeout: 0, hardTimeout: 0, priority: 100,
    bufferId: 0xffffffff, outPort: OFPP.ANY, outGroup: OFPG_ANY, flags: 0, match, instructions: output(1), ...o,
  };
}

function table(...mods: FlowMod[]): FakeFlowTable {
  const t = new FakeFlowTable(254);
  for (const m of mods) if (!t.apply(m).ok) throw new Error(`setup flow_mod refused: ${m.command}`);
  return t;
}

const summary = (t: FakeFlowTable) => t.flows().map((f) => `t${f.tableId} p${f.priority} c${f.cookie}`).sort();

test('add replaces a flow with the same match and priority, whatever the field order and redundant masks', (t) => {
  const a: Match = [...IP, { field: 'ipv4_dst', value: '10.0.0.1' }];
  const b: Match = [{ field: 'ipv4_dst', value: '10.0.0.1', mask: '255.255.255.255' }, ...IP];
  const ft = table(fm('add', a, { cookie: 1n }), fm('add', b, { cookie: 2n, instructions: output(2) }), fm('add', a, { priority: 200, cookie: 3n }));
  t.deepEqual(summary(ft), ['t0 p100 c2', 't0 p200 c3']);
  t.deepEqual(ft.flows().find((f) => f.priority === 100)!.instructions, output(2));
});

test('modify changes instructions of loosely matching flows only, keeps cookies and never adds', (t) => {
  const ft = table(
    fm('add', [...IP, { field: 'ip_proto', value: 6 }], { cookie: 1n }),
    fm('add', [...IP, { field: 'ip_proto', value: 17 }], { cookie: 2n, priority: 50 }),
    fm('add', [{ field: 'eth_type', value: 0x0806 }], { cookie: 3n }),
  );
  ft.apply(fm('modify', IP, { cookie: 99n, instructions: output(7) }));
  const byCookie = new Map(ft.flows().map((f) => [f.cookie, f]));
  t.deepEqual(byCookie.get(1n)!.instructions, output(7));
  t.deepEqual(byCookie.get(2n)!.instructions, output(7));
  t.deepEqual(byCookie.get(3n)!.instructions, output(1));
  t.false(byCookie.has(99n));
  ft.apply(fm('modify', [{ field: 'eth_type', value: 0x86dd }]));
  t.is(ft.size, 3, 'a modify that matches nothing adds nothing (OF1.3, OVS)');
});

test('modify and delete honour the cookie mask', (t) => {
  const ft = table(
    fm('add', [{ field: 'in_port', value: 1 }], { cookie: 0x0101n }),
    fm('add', [{ field: 'in_port', value: 2 }], { cookie: 0x0102n }),
    fm('add', [{ field: 'in_port', value: 3 }], { cookie: 0x0201n }),
  );
  ft.apply(fm('modify', [], { cookie: 0x0100n, cookieMask: 0xff00n, instructions: output(9) }));
  t.deepEqual(ft.flows().filter((f) => f.instructions[0]!.type === 'apply_actions' && JSON.stringify(f.instructions) === JSON.stringify(output(9))).map((f) => f.cookie).sort(), [0x0101n, 0x0102n]);
  ft.apply(fm('delete', [], { tableId: OFPTT_ALL, cookie: 0x0100n, cookieMask: 0xff00n }));
  t.deepEqual(ft.flows().map((f) => f.cookie), [0x0201n]);
});

test('delete selects by table, with OFPTT_ALL for all tables', (t) => {
  const ft = table(fm('add', IP, { tableId: 0 }), fm('add', IP, { tableId: 10 }), fm('add', IP, { tableId: 20 }));
  ft.apply(fm('delete', [], { tableId: 10 }));
  t.deepEqual(summary(ft), ['t0 p100 c0', 't20 p100 c0']);
  ft.apply(fm('delete', [], { tableId: OFPTT_ALL }));
  t.is(ft.size, 0);
});

test('non-strict delete removes flows at least as specific as its match; masks must cover the criteria', (t) => {
  const ft = table(
    fm('add', [...IP, { field: 'ipv4_dst', value: '10.1.2.3' }], { cookie: 1n }),
    fm('add', [...IP, { field: 'ipv4_dst', value: '10.0.0.0', mask: '254.0.0.0' }], { cookie: 2n }),
    fm('add', [...IP, { field: 'ipv4_dst', value: '11.0.0.1' }], { cookie: 3n }),
    fm('add', IP, { cookie: 4n }),
    fm('add', [], { cookie: 5n, priority: 0 }),
  );
  ft.apply(fm('delete', [...IP, { field: 'ipv4_dst', value: '10.0.0.0', mask: '255.0.0.0' }]));
  t.deepEqual(ft.flows().map((f) => f.cookie).sort(), [2n, 3n, 4n, 5n]);
  ft.apply(fm('delete', IP));
  t.deepEqual(ft.flows().map((f) => f.cookie), [5n]);
});

test('delete_strict needs the same match and priority', (t) => {
  const m: Match = [...IP, { field: 'ip_proto', value: 6 }];
  const ft = table(fm('add', m, { cookie: 1n }), fm('add', m, { priority: 200, cookie: 2n }), fm('add', IP, { cookie: 3n }));
  ft.apply(fm('delete_strict', IP, { priority: 200 }));
  t.is(ft.size, 3, 'IP at 200 does not exist');
  ft.apply(fm('delete_strict', [{ field: 'ip_proto', value: 6 }, ...IP], { priority: 200 }));
  t.deepEqual(ft.flows().map((f) => f.cookie).sort(), [1n, 3n]);
});

test('delete filters on out_port', (t) => {
  const ft = table(fm('add', [{ field: 'in_port', value: 1 }], { instructions: output(5) }), fm('add', [{ field: 'in_port', value: 2 }], { instructions: output(6) }));
  ft.apply(fm('delete', [], { outPort: 6 }));
  t.deepEqual(ft.flows().map((f) => f.instructions), [output(5)]);
});

test('errors: OFPTT_ALL for add, a table beyond n_tables, CHECK_OVERLAP', (t) => {
  const ft = new FakeFlowTable(16);
  t.deepEqual(ft.apply(fm('add', IP, { tableId: OFPTT_ALL })), { ok: false, errType: OFPET.FLOW_MOD_FAILED, code: OFPFMFC_BAD_TABLE_ID });
  t.deepEqual(ft.apply(fm('add', IP, { tableId: 16 })), { ok: false, errType: OFPET.FLOW_MOD_FAILED, code: OFPFMFC_BAD_TABLE_ID });
  t.true(ft.apply(fm('add', [...IP, { field: 'ipv4_dst', value: '10.0.0.0', mask: '255.0.0.0' }])).ok);
  const overlapping = fm('add', [...IP, { field: 'ipv4_dst', value: '10.1.0.0', mask: '255.255.0.0' }], { flags: OFPFF_CHECK_OVERLAP });
  t.deepEqual(ft.apply(overlapping), { ok: false, errType: OFPET.FLOW_MOD_FAILED, code: OFPFMFC_OVERLAP });
  t.true(ft.apply({ ...overlapping, priority: 101 }).ok, 'another priority does not overlap');
  t.true(ft.apply(fm('add', [...IP, { field: 'ipv4_dst', value: '11.0.0.0', mask: '255.0.0.0' }], { flags: OFPFF_CHECK_OVERLAP })).ok);
});

const gm = (command: GroupMod['command'], groupId: number, ports: number[] = [1]): GroupMod => ({
  type: 'GROUP_MOD', xid: 0, command, groupType: 'select', groupId,
  buckets: ports.map((port) => ({ weight: 1, watchPort: OFPP.ANY, watchGroup: OFPG_ANY, actions: [{ type: 'output', port, maxLen: 0 }] })),
});
const toGroup = (groupId: number): Instruction[] => [{ type: 'apply_actions', actions: [{ type: 'group', groupId }] }];

test('groups as OVS: add refuses an existing or reserved id, modify an unknown one; a flow needs its group; deleting a group deletes its flows', (t) => {
  const groups = new FakeGroupTable();
  const flows = new FakeFlowTable(254, groups);
  t.like(flows.apply(fm('add', IP, { instructions: toGroup(5) })), { ok: false, errType: OFPET.BAD_ACTION, code: OFPBAC.BAD_OUT_GROUP });
  t.like(groups.apply(gm('add', 5), flows), { ok: true });
  t.like(groups.apply(gm('add', 5), flows), { ok: false, errType: OFPET.GROUP_MOD_FAILED, code: OFPGMFC_GROUP_EXISTS });
  t.like(groups.apply(gm('add', 0xffffff01), flows), { ok: false, code: OFPGMFC_INVALID_GROUP });
  t.like(groups.apply(gm('modify', 6), flows), { ok: false, code: OFPGMFC_UNKNOWN_GROUP });
  t.like(groups.apply(gm('modify', 5, [1, 2]), flows), { ok: true });
  t.is(groups.groups()[0]!.buckets.length, 2);
  t.like(flows.apply(fm('add', IP, { instructions: toGroup(5) })), { ok: true });
  t.like(flows.apply(fm('add', IP, { priority: 7 })), { ok: true });
  t.like(groups.apply(gm('delete', 6), flows), { ok: true, removed: [] }, 'deleting an unknown group is no error');
  const deleted = groups.apply(gm('delete', 5), flows);
  t.true(deleted.ok && deleted.removed.length === 1);
  t.deepEqual(summary(flows), ['t0 p7 c0'], 'only the flow that used the group went with it');
  groups.apply(gm('add', 1), flows);
  groups.apply(gm('add', 2), flows);
  groups.apply(gm('delete', OFPG_ALL), flows);
  t.is(groups.size, 0);
});

test('applyAtomically applies all or nothing: a refused mod leaves both tables as they were', (t) => {
  const sw = new FakeSwitch();
  t.is(sw.applyAtomically([gm('add', 5), fm('add', IP, { instructions: toGroup(5) })]), undefined);
  const refused = sw.applyAtomically([gm('delete', 5), fm('add', IP, { priority: 9 }), fm('add', IP, { priority: 8, instructions: toGroup(6) })]);
  t.like(refused, { errType: OFPET.BAD_ACTION, code: OFPBAC.BAD_OUT_GROUP, mod: { type: 'FLOW_MOD', priority: 8 } });
  t.is(sw.groupTable.size, 1, 'the group delete before the refused flow was not applied');
  t.deepEqual(summary(sw.flowTable), ['t0 p100 c0']);
});

test('through the controller: flow_mods, then a cookie-filtered flow stats request', async (t) => {
  const { controller, port } = await startController(t);
  const { sw, session } = await connectSwitch(t, controller, port, { maxReplyBytes: 400 });
  for (let i = 0; i < 30; i++) {
    session.send(fm('add', [{ field: 'in_port', value: i + 1 }], { cookie: BigInt((i % 3) << 8), tableId: i % 2 }));
  }
  session.send(fm('add', [{ field: 'in_port', value: 1 }], { tableId: OFPTT_ALL, xid: 31337 }));
  const { errors } = await session.barrier();
  t.deepEqual(errors.map((e) => [e.xid, e.code]), [[31337, OFPFMFC_BAD_TABLE_ID]]);
  t.is(sw.flowTable.size, 30);
  const reply = await session.multipart({ mpType: 'FLOW', tableId: OFPTT_ALL, outPort: OFPP.ANY, outGroup: OFPG_ANY, cookie: 0x100n, cookieMask: 0xff00n, match: [] });
  t.is(reply.flows.length, 10);
  t.true(reply.flows.every((f) => f.cookie === 0x100n));
  const table1 = await session.multipart({ mpType: 'FLOW', tableId: 1, outPort: OFPP.ANY, outGroup: OFPG_ANY, cookie: 0n, cookieMask: 0n, match: [] });
  t.is(table1.flows.length, 15);
});

test('nextMessage sees only messages that arrive after the call; firstMessage also those already received', async (t) => {
  const { controller, port } = await startController(t);
  const { sw, session } = await connectSwitch(t, controller, port);
  session.send({ type: 'ECHO_REQUEST', xid: 0, data: Buffer.from('before') });
  const before = await sw.firstMessage('ECHO_REQUEST', (m) => m.data.toString() === 'before');
  t.is(before.data.toString(), 'before');
  await t.throwsAsync(sw.nextMessage('ECHO_REQUEST', (m) => m.data.toString() === 'before', 300), { message: /no ECHO_REQUEST within 300 ms/ });
  const after = sw.nextMessage('ECHO_REQUEST');
  session.send({ type: 'ECHO_REQUEST', xid: 0, data: Buffer.from('after') });
  t.is((await after).data.toString(), 'after', 'the earlier echo request is not the next one');
});
