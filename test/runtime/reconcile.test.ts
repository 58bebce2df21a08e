import test, { type ExecutionContext } from 'ava';
import { DesiredState } from '../../src/runtime/desired-state';
import { FlowSlotConflictError, GroupIdConflictError, ReconcileError, Reconciler, type ReconcilerOptions, type SyncReport } from '../../src/runtime/reconciler';
import { MalformedMessageError, silentLogger } from '../../src/controller';
import { OFPBRC, OFPET, OfDecodeError, bundleControl, encodeMessage, decodeBundle, type FlowMod, type GroupMod, type OfMessage } from '../../src/openflow';
import { FlowBuilder, Pipeline, appOfGroup, bucket, flowKey, flowMod, groupIdOf, makeCookie, type Flow, type Group, type MatchSpec } from '../../src/sdk';
import { FakeSwitch, type FakeSwitchOptions } from '../../src/testing';
import { delay, next, startController, until } from '../controller/util';

const DPID = 0xabn;
const APP_ID = 10;
const pipeline = new Pipeline([
  { name: 't.in', stage: 'classify', miss: 'next', matches: ['in_port', 'eth_dst'], next: ['t.out'] },
  { name: 't.out', stage: 'output', miss: 'drop', matches: ['eth_dst'] },
]);

const cookie = (owner: string, appId = APP_ID, ephemeral = false) => makeCookie(appId, owner, ephemeral);
function flow(owner: string, match: MatchSpec, port: number, o: { table?: string; priority?: number; appId?: number; ephemeral?: boolean } = {}): Flow {
  const table = pipeline.table(o.table ?? 't.in');
  return new FlowBuilder(pipeline, table, cookie(owner, o.appId, o.ephemeral))
    .priority(o.priority ?? 100)
    .match(match)
    .apply({ type: 'output', port, maxLen: 0 })
    .build();
}

/** Every flow-mod the switch received, bundled or not. */
function flowModsReceived(sw: FakeSwitch): FlowMod[] {
  return sw.received.flatMap((m): FlowMod[] => {
    if (m.type === 'FLOW_MOD') return [m];
    if (m.type !== 'EXPERIMENTER') return [];
    const b = decodeBundle(m);
    return !(b instanceof OfDecodeError) && b.kind === 'add' && b.message.type === 'FLOW_MOD' ? [b.message] : [];
  });
}

/**
 * Makes a FakeSwitch take OF1.3 bundles as OVS does: open, adds held until commit, commit applied
 * in order and atomically (a failing flow-mod or group-mod is reported with its own xid and nothing is applied).
 */
function acceptBundles(sw: FakeSwitch): void {
  const open = new Map<number, Array<FlowMod | GroupMod>>();
  sw.errorFor = (msg) => {
    if (msg.type !== 'EXPERIMENTER') return undefined;
    const b = decodeBundle(msg);
    if (b instanceof OfDecodeError) return { errType: OFPET.BAD_REQUEST, code: OFPBRC.BAD_EXP_TYPE };
    if (b.kind === 'add') {
      open.get(b.bundleId)!.push({ ...(b.message as FlowMod | GroupMod), xid: b.xid });
      return undefined;
    }
    const reply = (ctl: 'open_reply' | 'commit_reply') => sw.send(bundleControl(msg.xid, b.bundleId, ctl, b.flags));
    if (b.ctlType === 'open_request') {
      open.set(b.bundleId, []);
      reply('open_reply');
      return undefined;
    }
    if (b.ctlType !== 'commit_request') return { errType: OFPET.BAD_REQUEST, code: OFPBRC.BAD_EXP_TYPE };
    const mods = open.get(b.bundleId)!;
    open.delete(b.bundleId);
    const refused = sw.applyAtomically(mods);
    if (refused) {
      sw.send({ type: 'ERROR', xid: refused.mod.xid, errType: refused.errType, code: refused.code, data: Buffer.alloc(0) });
      return { errType: OFPET.BAD_REQUEST, code: OFPBRC.EPERM };
    }
    reply('commit_reply');
    return undefined;
  };
}

/** A switch without bundles, as a switch that does not know the ONF extension answers. */
const noBundles = (msg: OfMessage) => (msg.type === 'EXPERIMENTER' ? { errType: OFPET.BAD_REQUEST, code: OFPBRC.BAD_EXPERIMENTER } : undefined);

interface Setup {
  sw: FakeSwitch;
  port: number;
  /** full syncs' flow reads stay unanswered until turned off again */
  holdFlowReads(on: boolean): void;
  /** stops holding and answers the last read with an empty table */
  answerFlowRead(): void;
  desired: DesiredState;
  reconciler: Reconciler;
  reports: SyncReport[];
  errors: ReconcileError[];
  /** connects (again) and resolves with the full sync's report */
  connect(): Promise<SyncReport>;
  /** resolves with the next report */
  nextReport(): Promise<SyncReport>;
}

/** a started reconciler on a fresh controller, its reports and errors collected */
async function startReconciler(t: ExecutionContext, options: Partial<ReconcilerOptions>, controllerOptions: Parameters<typeof startController>[1]) {
  const { controller, port } = await startController(t, controllerOptions);
  const desired = new DesiredState();
  const reconciler = new Reconciler(controller, desired, { ownedApps: new Set([1, APP_ID]), log: silentLogger(), ...options });
  reconciler.start();
  t.teardown(() => reconciler.stop());
  const reports: SyncReport[] = [];
  const errors: ReconcileError[] = [];
  reconciler.synced$.subscribe((r) => reports.push(r));
  reconciler.errors$.subscribe((e) => errors.push(e));
  return { controller, port, desired, reconciler, reports, errors };
}

async function setup(
  t: ExecutionContext,
  o: { bundles?: boolean; switch?: FakeSwitchOptions; installed?: Flow[]; reconciler?: Partial<ReconcilerOptions>; highWaterMarkBytes?: number } = {},
): Promise<Setup> {
  const { controller, port, desired, reconciler, reports, errors } = await startReconciler(t, o.reconciler ?? {}, o.highWaterMarkBytes ? { highWaterMarkBytes: o.highWaterMarkBytes } : {});
  const sw = new FakeSwitch({ dpid: DPID, ...o.switch });
  t.teardown(() => sw.close());
  if (o.bundles === false) sw.errorFor = noBundles;
  else acceptBundles(sw);
  for (const f of o.installed ?? []) sw.flowTable.apply(flowMod('add', f));
  const nextReport = () => next(reconciler.synced$);
  let hold = false;
  // the handshake's PORT_DESC must be answered; only the reconciler's read, right after switch-up, is held
  controller.switchUp$.subscribe(() => hold && sw.unanswered.add('MULTIPART_REQUEST'));
  return {
    sw,
    port,
    holdFlowReads: (on) => {
      hold = on;
      if (!on) sw.unanswered.clear();
    },
    answerFlowRead: () => {
      hold = false;
      sw.unanswered.clear();
      const read = sw.received.filter((m) => m.type === 'MULTIPART_REQUEST' && m.body.mpType === 'FLOW').at(-1)!;
      sw.send({ type: 'MULTIPART_REPLY', xid: read.xid, flags: 0, body: { mpType: 'FLOW', flows: [] } });
    },
    desired,
    reconciler,
    reports,
    errors,
    nextReport,
    connect: async () => {
      const report = nextReport();
      if (sw.connected) {
        sw.disconnect();
        await until(() => !sw.connected);
      }
      await sw.connect({ transport: 'tcp', port });
      return report;
    },
  };
}

/** The switch's flows as comparable text: slot, cookie and instructions. */
const tableOf = (sw: FakeSwitch) => sw.flowTable.flows().map((f) => `${flowKey(f)} ${f.cookie.toString(16)} ${JSON.stringify(f.instructions)}`).sort();
const desiredOf = (flows: Flow[]) => flows.map((f) => `${flowKey(f)} ${f.cookie.toString(16)} ${JSON.stringify(f.instructions)}`).sort();

const A1 = flow('a', { in_port: 1 }, 2);
const A2 = flow('a', { in_port: 2 }, 1);
const B1 = flow('b', { eth_dst: '02:00:00:00:00:01' }, 3, { table: 't.out' });

test('the first sync installs what is desired in one bundle; a reconnect with the same desired state sends no flow-mod', async (t) => {
  const s = await setup(t);
  s.desired.set(DPID, A1.cookie, [A1, A2]);
  s.desired.set(DPID, B1.cookie, [B1]);
  t.like(await s.connect(), { kind: 'full', adds: 3, deletes: 0, modifies: 0, via: 'bundle', errors: 0 });
  t.deepEqual(tableOf(s.sw), desiredOf([A1, A2, B1]));

  const before = flowModsReceived(s.sw).length;
  const bundleMessages = s.sw.count('EXPERIMENTER');
  const installedAt = s.sw.flowTable.flows().map((f) => f.installedAt);
  t.like(await s.connect(), { kind: 'full', adds: 0, deletes: 0, modifies: 0, via: 'none' });
  await s.reconciler.settled(DPID);
  t.is(flowModsReceived(s.sw).length, before, 'nothing was sent');
  t.is(s.sw.count('EXPERIMENTER'), bundleMessages, 'not even a bundle was opened');
  t.deepEqual(s.sw.flowTable.flows().map((f) => f.installedAt), installedAt, 'every flow kept its age');
});

test('two owners wanting one slot are reported with both cookies and the flow; the later is installed, the rest untouched', async (t) => {
  const s = await setup(t);
  const rival = flow('rival', { in_port: 1 }, 7); // A1's slot: table t.in, priority 100, in_port=1
  s.desired.set(DPID, A1.cookie, [A1, A2]);
  s.desired.set(DPID, rival.cookie, [rival]);
  t.like(await s.connect(), { kind: 'full', adds: 2, errors: 0 });
  t.is(s.errors.length, 1);
  const e = s.errors[0]!;
  t.true(e instanceof FlowSlotConflictError);
  t.is(e.dpid, DPID);
  t.like((e as FlowSlotConflictError).conflict, { earlier: A1, later: rival });
  t.regex(e.message, new RegExp(`table t\\.in priority 100: one slot wanted by cookies 0x${A1.cookie.toString(16)} \\(app 10\\) and 0x${rival.cookie.toString(16)} \\(app 10\\)`));
  t.regex(e.flow ?? '', /in_port=1/);
  t.deepEqual(tableOf(s.sw), desiredOf([rival, A2]), 'the later flow holds the slot');

  // one owner listing a slot twice is the same mistake, and is caught on its own change
  const twice = flow('b', { eth_dst: '02:00:00:00:00:09' }, 4, { table: 't.out' });
  s.desired.set(DPID, B1.cookie, [B1, twice, flow('b', { eth_dst: '02:00:00:00:00:09' }, 5, { table: 't.out' })]);
  await until(() => s.errors.length === 2);
  t.regex(s.errors[1]!.message, new RegExp(`twice by cookie 0x${B1.cookie.toString(16)}`));
});

test('a full sync deletes stale flows, modifies changed ones in place and adds missing ones, deletes first', async (t) => {
  const changed = flow('a', { in_port: 2 }, 9); // A2's slot, other output
  const staleOfA = flow('a', { in_port: 3 }, 1);
  const staleOwner = flow('gone', { in_port: 4 }, 1);
  const s = await setup(t, { installed: [A1, changed, staleOfA, staleOwner] });
  s.desired.set(DPID, A1.cookie, [A1, A2]);
  s.desired.set(DPID, B1.cookie, [B1]);
  const before = s.sw.flowTable.flows().find((f) => f.cookie === A2.cookie && f.priority === 100 && JSON.stringify(f.instructions) === JSON.stringify(changed.instructions))!;
  t.like(await s.connect(), { deletes: 2, modifies: 1, adds: 1, errors: 0 });
  t.deepEqual(tableOf(s.sw), desiredOf([A1, A2, B1]));
  const mods = flowModsReceived(s.sw);
  t.deepEqual(
    mods.map((m) => m.command),
    ['delete_strict', 'delete', 'modify_strict', 'add'],
    "deletes first: a per-flow delete for the owner still desired, one delete by cookie for the owner gone",
  );
  t.is(mods[1]!.cookie, staleOwner.cookie);
  t.is(mods[1]!.cookieMask, 0xffffffffffffffffn);
  const modified = s.sw.flowTable.flows().find((f) => flowKey(f) === flowKey(A2))!;
  t.is(modified.installedAt, before.installedAt, 'modify_strict kept the flow (and its counters)');
});

test("flows of apps that are not running, the pipeline's unknown cookies and ephemeral flows are never touched", async (t) => {
  const foreign = flow('x', { in_port: 5 }, 1, { appId: 99 });
  const ephemeral = flow('port:1', { eth_dst: '02:00:00:00:00:09' }, 1, { table: 't.out', ephemeral: true });
  const noCookie: Flow = { ...flow('y', { in_port: 6 }, 1), cookie: 0n };
  const s = await setup(t, { installed: [foreign, ephemeral, noCookie] });
  s.desired.set(DPID, A1.cookie, [A1]);
  t.like(await s.connect(), { deletes: 0, modifies: 0, adds: 1 });
  t.deepEqual(tableOf(s.sw), desiredOf([A1, foreign, ephemeral, noCookie]));
});

test("a change to one owner's flows sends only that owner's difference", async (t) => {
  const s = await setup(t);
  s.desired.set(DPID, A1.cookie, [A1, A2]);
  s.desired.set(DPID, B1.cookie, [B1]);
  await s.connect();
  const before = flowModsReceived(s.sw).length;

  const report = s.nextReport();
  const A3 = flow('a', { in_port: 3 }, 2);
  s.desired.set(DPID, A1.cookie, [A1, A3]);
  t.like(await report, { kind: 'incremental', deletes: 1, modifies: 0, adds: 1, via: 'bundle' });
  const sent = flowModsReceived(s.sw).slice(before);
  t.deepEqual(sent.map((m) => [m.command, m.cookie]), [['delete_strict', A1.cookie], ['add', A1.cookie]]);
  t.deepEqual(tableOf(s.sw), desiredOf([A1, A3, B1]));

  const cleared = s.nextReport();
  s.desired.clear(DPID, B1.cookie);
  t.like(await cleared, { kind: 'incremental', deletes: 1, adds: 0 });
  t.deepEqual(tableOf(s.sw), desiredOf([A1, A3]));
});

test('changes made while a full sync reads the switch are part of it, not sent twice', async (t) => {
  const s = await setup(t);
  s.desired.set(DPID, A1.cookie, [A1]);
  s.holdFlowReads(true);
  const report = s.connect();
  await s.sw.firstMessage('MULTIPART_REQUEST', (m) => m.body.mpType === 'FLOW');
  s.desired.set(DPID, B1.cookie, [B1]); // the read is still outstanding
  s.desired.set(DPID, A1.cookie, [A1, A2]);
  s.answerFlowRead();
  t.like(await report, { kind: 'full', adds: 3 });
  await s.reconciler.settled(DPID);
  t.is(s.reports.length, 1, 'no incremental batch followed');
  t.is(flowModsReceived(s.sw).length, 3);
});

test('a flow dump that does not decode fails the full sync with a MalformedMessageError naming the switch; the retry syncs', async (t) => {
  const s = await setup(t, { reconciler: { retryInitialMs: 50 } });
  s.desired.set(DPID, A1.cookie, [A1, A2]);
  s.holdFlowReads(true);
  const report = s.connect();
  await until(() => s.sw.received.some((m) => m.type === 'MULTIPART_REQUEST' && m.body.mpType === 'FLOW'));
  const read = s.sw.received.find((m) => m.type === 'MULTIPART_REQUEST' && m.body.mpType === 'FLOW')!;
  // one flow stats entry whose length (200) runs past the message
  const reply = encodeMessage({ type: 'MULTIPART_REPLY', xid: read.xid, flags: 0, body: { mpType: 'FLOW', flows: [{ ...A1, durationSec: 0, durationNsec: 0, packetCount: 0n, byteCount: 0n }] } });
  reply.writeUInt16BE(200, 16);
  s.holdFlowReads(false);
  s.sw.sendRaw(reply);
  t.like(await report, { kind: 'full', adds: 2, errors: 0 });
  t.is(s.errors.length, 1);
  const cause = s.errors[0]!.cause;
  t.true(cause instanceof MalformedMessageError, String(cause));
  t.like(cause, { dpid: DPID, msgType: 'MULTIPART_REPLY' });
  t.regex(s.errors[0]!.message, /full sync failed \(retrying with a full sync in 50 ms\).*ofp_flow_stats: length 200/);
});

test('a switch without bundles gets pipelined flow-mods and a barrier; the probe happens once per session', async (t) => {
  const s = await setup(t, { bundles: false });
  s.desired.set(DPID, A1.cookie, [A1]);
  t.like(await s.connect(), { adds: 1, via: 'barrier', errors: 0 });
  const report = s.nextReport();
  s.desired.set(DPID, B1.cookie, [B1]);
  t.like(await report, { adds: 1, via: 'barrier' });
  t.deepEqual(tableOf(s.sw), desiredOf([A1, B1]));
  t.is(s.sw.count('EXPERIMENTER'), 1, 'one refused open, then no more tries');
  t.is(s.sw.count('FLOW_MOD'), 2);
  t.true(s.sw.count('BARRIER_REQUEST') >= 2);
});

test('batches above maxBundleMessages go without a bundle', async (t) => {
  const s = await setup(t, { reconciler: { maxBundleMessages: 2 } });
  s.desired.set(DPID, A1.cookie, [A1, A2]);
  s.desired.set(DPID, B1.cookie, [B1]);
  t.like(await s.connect(), { adds: 3, via: 'barrier' });
  t.is(s.sw.count('EXPERIMENTER'), 0);
  const report = s.nextReport();
  s.desired.clear(DPID, B1.cookie);
  t.like(await report, { deletes: 1, via: 'bundle' });
});

test('a rejected flow-mod is reported with switch, xid and flow; the next change re-reads and retries once, then never again', async (t) => {
  let refuse = true;
  const s = await setup(t, { bundles: false });
  s.sw.errorFor = (m) => noBundles(m) ?? (refuse && m.type === 'FLOW_MOD' && m.priority === 7 ? { errType: OFPET.FLOW_MOD_FAILED, code: 5 } : undefined);
  const bad = flow('bad', { in_port: 7 }, 1, { priority: 7 });
  s.desired.set(DPID, A1.cookie, [A1]);
  s.desired.set(DPID, bad.cookie, [bad]);
  t.like(await s.connect(), { adds: 2, errors: 1 });
  t.is(s.errors.length, 1);
  const e = s.errors[0]!;
  t.is(e.dpid, DPID);
  t.is(e.msgType, 'FLOW_MOD');
  t.is(e.kind, 'full');
  t.truthy(e.xid);
  t.regex(e.flow!, /priority=7 in_port=7 actions=output:1/);
  t.regex(e.message, /switch rejected a flow-mod/);

  const reads = () => s.sw.received.filter((m) => m.type === 'MULTIPART_REQUEST' && m.body.mpType === 'FLOW').length;
  t.is(reads(), 1);
  let report = s.nextReport();
  s.desired.set(DPID, B1.cookie, [B1]);
  t.like(await report, { kind: 'full', adds: 2, errors: 1 }, 'the retry re-read the switch and sent the missing flow again with the change');
  t.is(reads(), 2);

  report = s.nextReport();
  s.desired.set(DPID, A1.cookie, [A1, A2]);
  t.like(await report, { kind: 'incremental', adds: 1, errors: 0 }, 'after a failed retry, changes go on incrementally');
  t.is(reads(), 2, 'no further re-read');
  t.is(s.errors.length, 2);

  refuse = false;
  t.like(await s.connect(), { kind: 'full', adds: 1, errors: 0 }, 'a reconnect syncs everything again');
  t.deepEqual(tableOf(s.sw), desiredOf([A1, A2, B1, bad]));
});

test('a bundle whose commit fails applies nothing and reports the flow-mod and the commit', async (t) => {
  const s = await setup(t, { switch: { nTables: 1 } }); // t.out (table 1) does not exist on this switch
  s.desired.set(DPID, A1.cookie, [A1]);
  s.desired.set(DPID, B1.cookie, [B1]);
  t.like(await s.connect(), { adds: 2, via: 'bundle', errors: 2 });
  t.is(s.sw.flowTable.size, 0, 'atomic: nothing of the batch was applied');
  t.true(s.errors.some((e) => e.flow !== undefined && /table=1/.test(e.flow)));
  t.true(s.errors.some((e) => /full sync: switch answered/.test(e.message)));
});

test('a big batch respects backpressure: every flow arrives, none is refused for a full buffer', async (t) => {
  const s = await setup(t, { highWaterMarkBytes: 4096, reconciler: { maxBundleMessages: 100 }, switch: { record: false } });
  const flows = Array.from({ length: 3000 }, (_, i) => flow('many', { in_port: i + 1 }, 1));
  s.desired.set(DPID, flows[0]!.cookie, flows);
  t.like(await s.connect(), { adds: 3000, via: 'barrier', errors: 0 });
  t.is(s.sw.flowTable.size, 3000);
});

test('a switch that goes away during a sync is synced from scratch when it comes back', async (t) => {
  const s = await setup(t);
  s.desired.set(DPID, A1.cookie, [A1]);
  s.holdFlowReads(true);
  void s.connect();
  await s.sw.firstMessage('MULTIPART_REQUEST', (m) => m.body.mpType === 'FLOW');
  s.holdFlowReads(false); // the first session's read is never answered: it ends with its session
  t.like(await s.connect(), { kind: 'full', adds: 1 });
  t.is(s.errors.length, 0, 'a session lost mid-sync is no error');
  t.deepEqual(tableOf(s.sw), desiredOf([A1]));
});

test('a switch whose new connection replaces the one being synced is synced on the new one', async (t) => {
  const s = await setup(t);
  s.desired.set(DPID, A1.cookie, [A1]);
  s.holdFlowReads(true);
  const { port } = s;
  await s.sw.connect({ transport: 'tcp', port });
  await s.sw.firstMessage('MULTIPART_REQUEST', (m) => m.body.mpType === 'FLOW'); // the first session's read hangs
  s.sw.unanswered.add('ECHO_REQUEST'); // and the first connection is stale: the newcomer's echo probe gets no answer
  const twin = new FakeSwitch({ dpid: DPID });
  t.teardown(() => twin.close());
  acceptBundles(twin);
  const report = s.nextReport();
  await twin.connect({ transport: 'tcp', port }); // same dpid: the controller probes, then replaces the first session
  t.like(await report, { kind: 'full', adds: 1 });
  t.deepEqual(tableOf(twin), desiredOf([A1]));
  t.is(s.errors.length, 0);
});

test("desired state refuses a flow list carrying another owner's cookie, also a list it just accepted for its own owner", (t) => {
  const desired = new DesiredState();
  const flows = [flow('a', { in_port: 1 }, 2)];
  desired.set(1n, cookie('a'), flows);
  desired.set(2n, cookie('a'), flows);
  t.throws(() => desired.set(3n, cookie('b'), flows), { instanceOf: RangeError, message: /not its owner's/ });
  t.throws(() => desired.set(3n, cookie('b'), [flows[0]!]), { instanceOf: RangeError });
  t.deepEqual(desired.owned(3n, cookie('b')), []);
  t.is(desired.count(2n), 1);
});

// ---- groups ----

/** Every flow-mod and group-mod the switch received, bundled or not, in order, as 'FLOW_MOD add' etc. */
function modsReceived(sw: FakeSwitch): Array<FlowMod | GroupMod> {
  return sw.received.flatMap((m): Array<FlowMod | GroupMod> => {
    if (m.type === 'FLOW_MOD' || m.type === 'GROUP_MOD') return [m];
    if (m.type !== 'EXPERIMENTER') return [];
    const b = decodeBundle(m);
    return !(b instanceof OfDecodeError) && b.kind === 'add' && (b.message.type === 'FLOW_MOD' || b.message.type === 'GROUP_MOD') ? [b.message] : [];
  });
}
const describeMod = (m: FlowMod | GroupMod) => (m.type === 'GROUP_MOD' ? `group ${m.command} ${m.groupId}` : `flow ${m.command} ${m.cookie.toString(16)}`);

const VIP_GROUP = groupIdOf(APP_ID, 'vip:10.1.1.100');
const vipGroup = (ports: number[]): Group => ({ groupId: VIP_GROUP, groupType: 'select', buckets: ports.map((port) => bucket([{ type: 'output', port, maxLen: 0 }], 1)) });
/** a flow of owner 'vip' that sends in_port=5 to the VIP's group */
const TO_VIP = new FlowBuilder(pipeline, pipeline.table('t.in'), cookie('vip')).priority(100).match({ in_port: 5 }).apply({ type: 'group', groupId: VIP_GROUP }).build();
const groupsOf = (sw: FakeSwitch) => sw.groupTable.groups().map((g) => `${g.groupId} ${g.groupType} ${g.buckets.map((b) => JSON.stringify(b.actions)).join(' ')}`);

for (const bundles of [true, false]) {
  const via = bundles ? 'bundle' : 'barrier';
  test(`groups are added before the flows that use them and deleted after them (${via})`, async (t) => {
    const s = await setup(t, { bundles });
    s.desired.setGroups(DPID, cookie('vip'), [vipGroup([1, 2])]);
    s.desired.set(DPID, TO_VIP.cookie, [TO_VIP]);
    t.like(await s.connect(), { kind: 'full', adds: 1, groupMods: 1, errors: 0, via });
    t.deepEqual(modsReceived(s.sw).map(describeMod), [`group add ${VIP_GROUP}`, `flow add ${TO_VIP.cookie.toString(16)}`]);
    t.is(s.sw.groupTable.size, 1);

    // a changed group is modified in place: the flow that uses it stays
    const changed = s.nextReport();
    s.desired.setGroups(DPID, cookie('vip'), [vipGroup([1, 2, 3])]);
    t.like(await changed, { kind: 'incremental', adds: 0, deletes: 0, groupMods: 1, errors: 0 });
    t.is(modsReceived(s.sw).map(describeMod).at(-1), `group modify ${VIP_GROUP}`);
    t.is(s.sw.groupTable.groups()[0]!.buckets.length, 3);
    t.is(s.sw.flowTable.size, 1);

    // both gone in one go: the flow first, then the group
    const gone = s.nextReport();
    s.desired.clear(DPID, cookie('vip'));
    t.like(await gone, { kind: 'incremental', deletes: 1, groupMods: 1, errors: 0 });
    t.deepEqual(modsReceived(s.sw).map(describeMod).slice(-2), [`flow delete ${TO_VIP.cookie.toString(16)}`, `group delete ${VIP_GROUP}`]);
    t.is(s.sw.groupTable.size, 0);
    t.is(s.sw.flowTable.size, 0);
    t.is(s.errors.length, 0);
  });
}

test("a full sync leaves matching groups alone, modifies changed ones, deletes our stale ones and never touches another app's", async (t) => {
  const s = await setup(t);
  const stale = groupIdOf(APP_ID, 'vip:gone');
  const foreign = groupIdOf(99, 'theirs');
  const install = (g: Group) => s.sw.groupTable.apply({ type: 'GROUP_MOD', xid: 0, command: 'add', ...g }, s.sw.flowTable);
  install(vipGroup([1]));
  install({ ...vipGroup([4]), groupId: stale });
  install({ ...vipGroup([4]), groupId: foreign });
  s.desired.setGroups(DPID, cookie('vip'), [vipGroup([1, 2])]);
  t.like(await s.connect(), { kind: 'full', groupMods: 2, errors: 0 });
  t.deepEqual(modsReceived(s.sw).map(describeMod).sort(), [`group delete ${stale}`, `group modify ${VIP_GROUP}`].sort());
  t.deepEqual(groupsOf(s.sw), [vipGroup([1, 2]), { ...vipGroup([4]), groupId: foreign }].sort((a, b) => a.groupId - b.groupId).map((g) => `${g.groupId} ${g.groupType} ${g.buckets.map((b) => JSON.stringify(b.actions)).join(' ')}`));

  const sent = modsReceived(s.sw).length;
  t.like(await s.connect(), { kind: 'full', groupMods: 0, via: 'none' });
  t.is(modsReceived(s.sw).length, sent, 'a reconnect in sync sends no group-mod');
});

test('one group id desired twice with different buckets is reported as a GroupIdConflictError; the later is installed', async (t) => {
  const s = await setup(t);
  s.desired.setGroups(DPID, cookie('vip'), [vipGroup([1])]);
  s.desired.setGroups(DPID, cookie('other'), [vipGroup([2])]);
  t.like(await s.connect(), { kind: 'full', groupMods: 1 });
  t.is(s.errors.length, 1);
  const e = s.errors[0]!;
  t.true(e instanceof GroupIdConflictError);
  t.is(e.msgType, 'GROUP_MOD');
  t.regex(e.message, new RegExp(`group ${VIP_GROUP} .*desired twice`));
  t.deepEqual(s.sw.groupTable.groups()[0]!.buckets.map((b) => b.actions), [[{ type: 'output', port: 2, maxLen: 0 }]]);
});

test('a group-mod the switch refuses is reported with its xid and the group as text', async (t) => {
  const s = await setup(t, { bundles: false });
  s.sw.groupTable.apply({ type: 'GROUP_MOD', xid: 0, command: 'add', ...vipGroup([1]) }, s.sw.flowTable);
  s.desired.setGroups(DPID, cookie('vip'), [vipGroup([1, 2])]);
  s.sw.errorFor = (m) => (m.type === 'GROUP_MOD' ? { errType: OFPET.GROUP_MOD_FAILED, code: 12 } : noBundles(m));
  t.like(await s.connect(), { kind: 'full', groupMods: 1, errors: 1 });
  const e = s.errors[0]!;
  t.is(e.msgType, 'GROUP_MOD');
  t.truthy(e.xid);
  t.regex(e.message, /switch rejected a group-mod.*GROUP_MOD/s);
});

test('DesiredState refuses a group whose id carries another app than its owner', (t) => {
  const desired = new DesiredState();
  const e = t.throws(() => desired.setGroups(DPID, cookie('vip'), [{ ...vipGroup([1]), groupId: groupIdOf(APP_ID + 1, 'vip:10.1.1.100') }]), { instanceOf: RangeError });
  t.regex(e!.message, /belongs to app 11, not to its owner's app 10/);
  t.deepEqual(desired.groups(DPID), []);
});

test('group ids: the app id in the top byte, stable per key, below the reserved ids even for app 255', (t) => {
  t.is(appOfGroup(groupIdOf(7, 'vip:a')), 7);
  t.is(groupIdOf(7, 'vip:a'), groupIdOf(7, 'vip:a'));
  t.not(groupIdOf(7, 'vip:a'), groupIdOf(7, 'vip:b'));
  t.not(groupIdOf(7, 'vip:a'), groupIdOf(8, 'vip:a'));
  for (let i = 0; i < 2000; i++) t.true(groupIdOf(255, `k${i}`) < 0xffffff00);
  t.throws(() => groupIdOf(1, 'x'), { instanceOf: RangeError });
});

test('a switch that refuses to describe its groups still gets its flows', async (t) => {
  const s = await setup(t);
  const bundles = s.sw.errorFor!;
  s.sw.errorFor = (m) => (m.type === 'MULTIPART_REQUEST' && m.body.mpType === 'GROUP_DESC' ? { errType: OFPET.BAD_REQUEST, code: OFPBRC.BAD_MULTIPART } : bundles(m));
  s.desired.set(DPID, A1.cookie, [A1]);
  t.like(await s.connect(), { kind: 'full', adds: 1, groupMods: 0, errors: 0 });
  t.deepEqual(tableOf(s.sw), desiredOf([A1]));
});

test('a group handed from one owner to another in one batch is modified, not added and then deleted', async (t) => {
  const s = await setup(t);
  s.desired.setGroups(DPID, cookie('vip'), [vipGroup([1])]);
  t.like(await s.connect(), { groupMods: 1, errors: 0 });
  const handed = s.nextReport();
  s.desired.setGroups(DPID, cookie('vip'), []);
  s.desired.setGroups(DPID, cookie('heir'), [vipGroup([1, 2])]);
  t.like(await handed, { kind: 'incremental', groupMods: 1, errors: 0 });
  t.is(modsReceived(s.sw).map(describeMod).at(-1), `group modify ${VIP_GROUP}`);
  t.is(s.sw.groupTable.groups()[0]!.buckets.length, 2);
});

/**
 * `n` switches (dpids 1..n) of a reconciler with the given options, desired [A1, A2] each, whose
 * full syncs' flow reads are held (recorded, not answered) until `answer` replies to them.
 */
async function storm(t: ExecutionContext, n: number, options: Partial<ReconcilerOptions>, controllerOptions: { requestTimeoutMs?: number } = {}) {
  const { controller, port, desired, reconciler, reports, errors } = await startReconciler(t, { bundles: false, ...options }, controllerOptions);
  const switches = Array.from({ length: n }, (_, i) => new FakeSwitch({ dpid: BigInt(i + 1), errorFor: noBundles }));
  for (const sw of switches) {
    t.teardown(() => sw.close());
    desired.set(sw.dpid, A1.cookie, [A1, A2]);
  }
  const byDpid = new Map(switches.map((sw) => [sw.dpid, sw]));
  // the handshake's PORT_DESC is answered; the reconciler's reads, after switch-up, are held
  controller.switchUp$.subscribe((e) => byDpid.get(e.dpid)!.unanswered.add('MULTIPART_REQUEST'));
  controller.switchDown$.subscribe((e) => byDpid.get(e.dpid)!.unanswered.clear());
  const flowReads = (sw: FakeSwitch) => sw.received.filter((m): m is OfMessage & { type: 'MULTIPART_REQUEST' } => m.type === 'MULTIPART_REQUEST' && m.body.mpType === 'FLOW');
  const answered = new Set<OfMessage>();
  /** answers every held flow read (the switch's table is empty) and stops holding that switch's reads */
  const answer = (sw: FakeSwitch) => {
    for (const read of flowReads(sw).filter((r) => !answered.has(r))) {
      answered.add(read);
      sw.unanswered.clear();
      sw.send({ type: 'MULTIPART_REPLY', xid: read.xid, flags: 0, body: { mpType: 'FLOW', flows: [] } });
    }
  };
  const fullReports = () => reports.filter((r) => r.kind === 'full').length;
  return { controller, port, reconciler, switches, reports, errors, flowReads, answer, fullReports };
}

test('a reconnect storm queues: at most maxConcurrentFullSyncs read at once, the rest wait as queued, and every switch ends in sync', async (t) => {
  const s = await storm(t, 30, { maxConcurrentFullSyncs: 4 });
  await Promise.all(s.switches.map((sw) => sw.connect({ transport: 'tcp', port: s.port })));
  const reading = () => s.switches.filter((sw) => s.flowReads(sw).length > 0);
  await until(() => reading().length === 4 && s.switches.every((sw) => s.reconciler.state(sw.dpid) !== undefined));
  await delay(100); // time for a fifth read, were the limit not kept
  t.is(reading().length, 4, 'four flow reads sent, no more');
  t.deepEqual(s.reconciler.fullSyncs(), { running: 4, queued: 26 });
  const states = s.switches.map((sw) => s.reconciler.state(sw.dpid));
  t.is(states.filter((x) => x === 'full').length, 4);
  t.is(states.filter((x) => x === 'queued').length, 26);

  // answer the reads as they come: never more than four syncs between their read and their report
  let mostAtOnce = 0;
  while (s.fullReports() < 30) {
    const inFlight = reading().length - s.fullReports();
    mostAtOnce = Math.max(mostAtOnce, inFlight);
    for (const sw of reading()) s.answer(sw);
    await delay(5);
  }
  t.is(mostAtOnce, 4);
  t.is(s.errors.length, 0);
  for (const sw of s.switches) {
    t.deepEqual(tableOf(sw), desiredOf([A1, A2]), `switch ${sw.dpid} in sync`);
    t.is(s.reconciler.state(sw.dpid), 'idle');
    t.is(s.flowReads(sw).length, 1, 'one read each');
  }
  t.deepEqual(s.reconciler.fullSyncs(), { running: 0, queued: 0 });
});

test('a switch that goes while queued leaves the queue; it is synced when it comes back', async (t) => {
  const s = await storm(t, 2, { maxConcurrentFullSyncs: 1 });
  const [first, second] = s.switches as [FakeSwitch, FakeSwitch];
  await first.connect({ transport: 'tcp', port: s.port });
  await until(() => s.flowReads(first).length === 1);
  await second.connect({ transport: 'tcp', port: s.port });
  await until(() => s.reconciler.state(second.dpid) === 'queued');
  second.disconnect();
  await until(() => s.reconciler.state(second.dpid) === 'down');
  t.deepEqual(s.reconciler.fullSyncs(), { running: 1, queued: 0 });
  s.answer(first);
  await until(() => s.fullReports() === 1);
  t.deepEqual(s.reconciler.fullSyncs(), { running: 0, queued: 0 }, 'the slot is free again');
  t.is(s.flowReads(second).length, 0, 'the switch that went was never read');

  await second.connect({ transport: 'tcp', port: s.port });
  await until(() => s.flowReads(second).length === 1);
  s.answer(second);
  await until(() => s.fullReports() === 2);
  t.deepEqual(tableOf(second), desiredOf([A1, A2]));
});

test('a full sync that fails is retried with growing backoff without waiting for a change, and then syncs', async (t) => {
  const s = await storm(t, 1, { retryInitialMs: 50 }, { requestTimeoutMs: 200 });
  const sw = s.switches[0]!;
  await sw.connect({ transport: 'tcp', port: s.port });
  await until(() => s.errors.length === 1);
  t.is(s.reconciler.state(sw.dpid), 'backoff');
  t.like(s.errors[0], { kind: 'full', dpid: sw.dpid });
  t.regex(s.errors[0]!.message, /full sync failed \(retrying with a full sync in 50 ms\).*no reply within 200 ms/);
  await until(() => s.errors.length === 2, 3_000);
  t.regex(s.errors[1]!.message, /in 100 ms/, 'the second wait is twice the first');
  await until(() => s.flowReads(sw).length === 3, 3_000);
  s.answer(sw);
  await until(() => s.fullReports() === 1);
  t.like(s.reports[0], { kind: 'full', adds: 2, errors: 0 });
  t.deepEqual(tableOf(sw), desiredOf([A1, A2]));
  t.is(s.reconciler.state(sw.dpid), 'idle');
  t.is(s.errors.length, 2);
});
