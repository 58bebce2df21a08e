import test, { type ExecutionContext } from 'ava';
import { GenerationIdError, NotMasterError, RoleRequestError, forSwitch, type Controller, type RoleLostEvent, type SwitchSession } from '../../src/controller';
import { OFPCR_ROLE, OFPET, OFPP, OFPRRFC, OFP_NO_BUFFER, type PacketOut } from '../../src/openflow';
import { DesiredState, ManualMastership, Reconciler, RoleCoordinator, StaticMastership, type Mastership, type SyncReport } from '../../src/runtime';
import { FlowBuilder, Pipeline, flowMod, makeCookie, type Flow } from '../../src/sdk';
import { captureLog } from '../helpers/log';
import { FakeSwitch, type FakeSwitchOptions } from '../../src/testing';
import { next, nextWhere, startController } from '../controller/util';

const DPID = 0xabn;
const APP_ID = 10;
const pipeline = new Pipeline([{ name: 't.in', stage: 'classify', miss: 'drop', matches: ['in_port', 'eth_dst'] }]);

function flows(owner: string, n: number, port = 2): Flow[] {
  const cookie = makeCookie(APP_ID, owner);
  return Array.from({ length: n }, (_, i) =>
    new FlowBuilder(pipeline, pipeline.table('t.in'), cookie)
      .priority(100 + i)
      .match({ in_port: 1 })
      .apply({ type: 'output', port, maxLen: 0 })
      .build(),
  );
}

interface Setup {
  controller: Controller;
  sw: FakeSwitch;
  session: SwitchSession;
  desired: DesiredState;
  reconciler: Reconciler;
  reports: SyncReport[];
  lost: RoleLostEvent[];
  /** the mastership log lines saying a loss */
  losses: () => string[];
  flowMods: () => number;
  /** resolves once everything sent so far was processed by the switch and its answers dispatched here */
  roundTrip: () => Promise<void>;
}

/** Controller, coordinator and reconciler (flow-mods with barriers, no bundles) and one fake switch, with `installed` already on it. */
async function setup(t: ExecutionContext, mastership: Mastership, o: { switch?: FakeSwitchOptions; installed?: Flow[]; desired?: Flow[] } = {}): Promise<Setup> {
  const { controller, port } = await startController(t);
  const { log: logger, lines } = captureLog('info');
  const desired = new DesiredState();
  desired.set(DPID, makeCookie(APP_ID, 'a'), o.desired ?? flows('a', 3));
  const coordinator = new RoleCoordinator(controller, mastership, logger);
  const reconciler = new Reconciler(controller, desired, { ownedApps: new Set([1, APP_ID]), log: logger, bundles: false, gate: coordinator });
  coordinator.start();
  reconciler.start();
  t.teardown(() => {
    reconciler.stop();
    coordinator.stop();
  });
  const reports: SyncReport[] = [];
  reconciler.synced$.subscribe((r) => reports.push(r));
  const lost: RoleLostEvent[] = [];
  controller.roleLost$.subscribe((e) => lost.push(e));
  const sw = new FakeSwitch({ dpid: DPID, ...o.switch });
  t.teardown(() => sw.close());
  for (const f of o.installed ?? []) sw.flowTable.apply(flowMod('add', f));
  const up = next(controller.switchUp$.pipe(forSwitch(DPID)));
  await sw.connect({ transport: 'tcp', port });
  const { session } = await up;
  const roundTrip = async () => {
    await session.barrier();
    await reconciler.settled(DPID);
  };
  await roundTrip();
  return {
    controller,
    sw,
    session,
    desired,
    reconciler,
    reports,
    lost,
    losses: () => lines.filter((l) => l.component === 'mastership' && /^lost mastership/.test(String(l.msg))).map((l) => String(l.msg)),
    flowMods: () => sw.count('FLOW_MOD'),
    roundTrip,
  };
}

const packetOut: PacketOut = { type: 'PACKET_OUT', xid: 0, bufferId: OFP_NO_BUFFER, inPort: OFPP.CONTROLLER, actions: [{ type: 'output', port: 1, maxLen: 0 }], data: Buffer.alloc(60) };

test('a SLAVE asks for SLAVE with the election generation and sends no flow-mod, bundle or packet-out', async (t) => {
  const s = await setup(t, new ManualMastership({ role: 'slave', generationId: 5n }));
  t.like(await s.sw.firstMessage('ROLE_REQUEST'), { role: OFPCR_ROLE.SLAVE, generationId: 5n });
  t.is(s.session.role, 'slave');
  s.desired.set(DPID, makeCookie(APP_ID, 'b'), flows('b', 2, 3));
  await s.roundTrip();
  t.throws(() => s.session.send(packetOut), { instanceOf: NotMasterError });
  await s.roundTrip();
  t.is(s.flowMods(), 0, 'no flow-mod');
  t.is(s.sw.count('EXPERIMENTER'), 0, 'no bundle');
  t.is(s.sw.count('PACKET_OUT'), 0, 'no packet-out');
  t.is(s.sw.refusedWrites, 0, 'nothing for the switch to refuse');
  t.deepEqual(s.reports, [], 'no sync ran');
});

test('promotion syncs by diff: a switch in sync gets no flow-mod, a missing flow gets exactly its add', async (t) => {
  const desiredFlows = flows('a', 3);
  const mastership = new ManualMastership({ role: 'slave', generationId: 1n });
  const s = await setup(t, mastership, { installed: desiredFlows, desired: desiredFlows });
  const report = next(s.reconciler.synced$);
  mastership.set(DPID, 'master', 2n, 'elected');
  t.like(await report, { kind: 'full', adds: 0, deletes: 0, modifies: 0, via: 'none' });
  t.like(await s.sw.firstMessage('ROLE_REQUEST', (m) => m.role === OFPCR_ROLE.MASTER), { generationId: 2n });
  t.is(s.flowMods(), 0, 'a takeover of a switch in sync sends nothing');
  t.is(s.session.role, 'master');

  // the gate is open now: a change goes out as its difference
  s.desired.set(DPID, makeCookie(APP_ID, 'b'), flows('b', 1, 3));
  await s.roundTrip();
  t.is(s.flowMods(), 1);

  // a second controller's switch missing one flow: promotion sends just that one
  const other = await setup(t, new ManualMastership({ role: 'master', generationId: 7n }), { installed: desiredFlows.slice(0, 2), desired: desiredFlows });
  t.like(other.reports.at(-1), { kind: 'full', adds: 1, deletes: 0, modifies: 0 });
  t.is(other.flowMods(), 1);
});

test('a role status demotes at once: no write follows, one log line says to which generation', async (t) => {
  const s = await setup(t, new ManualMastership({ role: 'master', generationId: 1n }));
  t.is(s.flowMods(), 3, 'the master installed its flows');
  s.sw.otherControllerBecomesMaster(2n);
  const lost = await next(s.controller.roleLost$);
  t.like(lost, { dpid: DPID, reason: 'role_status', generationId: 2n });
  t.is(s.session.role, 'slave');
  s.desired.set(DPID, makeCookie(APP_ID, 'b'), flows('b', 2, 3));
  await s.roundTrip();
  t.is(s.flowMods(), 3, 'nothing sent after the role status');
  t.is(s.sw.refusedWrites, 0);
  t.deepEqual(s.losses(), ['lost mastership of 0x00000000000000ab to generation 2 (role_status)']);
});

test('a switch that demotes silently: IS_SLAVE cuts the batch, one loss is logged, nothing more is sent', async (t) => {
  const s = await setup(t, new ManualMastership({ role: 'master', generationId: 1n }), { switch: { sendsRoleStatus: false } });
  s.sw.otherControllerBecomesMaster(2n);
  s.desired.set(DPID, makeCookie(APP_ID, 'b'), flows('b', 50, 3));
  await nextWhere(s.controller.roleLost$, (e) => e.reason === 'is_slave');
  await s.roundTrip();
  const sent = s.flowMods();
  t.true(s.sw.refusedWrites >= 1 && s.sw.refusedWrites === sent - 3, `every flow-mod that reached the switch was refused (${s.sw.refusedWrites} of ${sent - 3})`);
  s.desired.set(DPID, makeCookie(APP_ID, 'c'), flows('c', 5, 4));
  await s.roundTrip();
  t.is(s.flowMods(), sent, 'nothing after the loss');
  t.deepEqual(s.losses(), ['lost mastership of 0x00000000000000ab to a generation above 1 (is_slave)'], 'one log line for the whole batch');
  t.deepEqual(s.reports.filter((r) => r.errors > 0), [], 'refused writes are a loss, not rejected flows');
});

test('stale generations are refused: by the switch (typed STALE, logged as a loss) and by the coordinator before asking', async (t) => {
  const mastership = new ManualMastership({ role: 'master', generationId: 1n });
  const s = await setup(t, mastership);
  s.sw.otherControllerBecomesMaster(3n);
  await next(s.controller.roleLost$);

  const stale = await t.throwsAsync(s.session.requestRole('master', 2n), { instanceOf: RoleRequestError });
  t.like(stale, { refusal: 'stale', role: 'master', generationId: 2n, dpid: DPID });
  t.is(s.sw.staleRefusals, 1);
  t.like(s.lost.at(-1), { reason: 'stale' });
  await t.throwsAsync(s.session.requestRole('master', 0n), { instanceOf: GenerationIdError });

  // the election says master again with the generation the switch already has: refused here, never sent
  const requests = s.sw.count('ROLE_REQUEST');
  mastership.set(DPID, 'master', 3n);
  await s.roundTrip();
  t.is(s.sw.count('ROLE_REQUEST'), requests, 'a generation not above 3 is not claimed');
  t.is(s.flowMods(), 3);
  t.deepEqual(s.losses(), ['lost mastership of 0x00000000000000ab to generation 3 (role_status)', 'lost mastership of 0x00000000000000ab to a generation above 1 (stale)']);

  // a newer term wins and finds the switch in sync
  const report = next(s.reconciler.synced$);
  mastership.set(DPID, 'master', 4n);
  await report;
  t.is(s.session.role, 'master');
  t.like(s.reports.at(-1), { kind: 'full', adds: 0, via: 'none' });
  t.is(s.flowMods(), 3);
});

test('the election demoting us closes the gate before the switch answers', async (t) => {
  const mastership = new ManualMastership({ role: 'master', generationId: 1n });
  const s = await setup(t, mastership);
  mastership.set(DPID, 'slave', 2n, 'lease lost');
  t.is(s.session.role, 'slave', 'fenced in the same turn');
  s.desired.set(DPID, makeCookie(APP_ID, 'b'), flows('b', 2, 3));
  await s.roundTrip();
  t.is(s.flowMods(), 3);
  t.deepEqual(s.losses(), ['lost mastership of 0x00000000000000ab to generation 2 (lease lost)']);
});

test('role requests the switch refuses are typed: UNSUP and BAD_ROLE', async (t) => {
  for (const [code, refusal] of [[OFPRRFC.UNSUP, 'unsup'], [OFPRRFC.BAD_ROLE, 'bad_role']] as const) {
    const s = await setup(t, new StaticMastership(), { switch: { errorFor: (m) => (m.type === 'ROLE_REQUEST' ? { errType: OFPET.ROLE_REQUEST_FAILED, code } : undefined) } });
    const e = await t.throwsAsync(s.session.requestRole('master', 9n), { instanceOf: RoleRequestError });
    t.like(e, { refusal, generationId: 9n, xid: e?.switchError.xid });
  }
});

test('without a generation a lone controller sends no role request and syncs as before; with one it is MASTER first', async (t) => {
  const equal = await setup(t, new StaticMastership());
  t.is(equal.sw.count('ROLE_REQUEST'), 0);
  t.is(equal.flowMods(), 3);
  t.is(equal.session.role, 'equal');
  t.throws(() => new StaticMastership(0n), { instanceOf: GenerationIdError });
  const master = await setup(t, new StaticMastership(42n));
  t.like(await master.sw.firstMessage('ROLE_REQUEST'), { role: OFPCR_ROLE.MASTER, generationId: 42n });
  t.is(master.flowMods(), 3);
  const firstFlowMod = master.sw.received.findIndex((m) => m.type === 'FLOW_MOD');
  const roleReply = master.sw.received.findIndex((m) => m.type === 'ROLE_REQUEST');
  t.true(roleReply < firstFlowMod, 'the role request goes before any flow-mod');
});
