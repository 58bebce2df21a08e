/**
 * Two controllers on one real Open vSwitch bridge, fenced by OpenFlow roles. Runtime A is MASTER
 * with generation 1 and installs the static flows; B is SLAVE and sends nothing. B is promoted with
 * generation 2: OVS demotes A with ONFT_ROLE_STATUS, A stops and logs it, B's takeover of the bridge
 * already in sync sends no flow-mod (the flows' durations run on). A then claims MASTER with its stale
 * generation 1: OVS refuses it (OFPRRFC_STALE), A logs it and, though its own desired flows change,
 * writes nothing; the bridge holds exactly B's flows. What each controller sent is counted on the wire
 * by a tap between OVS and the controller, not by the controller.
 */
import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import { Subject, filter, firstValueFrom, timeout } from 'rxjs';
import { APP_REGISTRY } from '../../src/apps/registry';
import { RoleRequestError, type RoleLostEvent } from '../../src/controller';
import { OFPBRC, OFPET, OFPRRFC, type OfMessage } from '../../src/openflow';
import { ManualMastership, Runtime, parseRunConfig, type SyncReport } from '../../src/runtime';
import type { AppSettings } from '../../src/sdk';
import { captureLog } from '../helpers/log';
import { OpenFlowTap, isWriteOnWire } from '../helpers/of-tap';
import { assertOvsRunning, controllerRoles, vsctl } from '../helpers/ovs';
import { BASE_FLOWS, dump, expectedRules, runConfigYaml, testDir, until, type StaticFlow } from '../helpers/restart';

const BRIDGE = 'zmr-roles';
const DPID = 0xa1n;

test.before(assertOvsRunning);

interface Controller {
  runtime: Runtime;
  mastership: ManualMastership;
  tap: OpenFlowTap;
  settings: Subject<AppSettings>;
  lines: Record<string, unknown>[];
  reports: SyncReport[];
  lost: RoleLostEvent[];
}

async function startController(t: ExecutionContext, name: string, mastership: ManualMastership, flows: readonly StaticFlow[]): Promise<Controller> {
  const dir = testDir(`ovs-roles-${name}`);
  const yaml = (f: readonly StaticFlow[]) => runConfigYaml(0, join(dir, 'control.sock'), f);
  const config = parseRunConfig(yaml(flows), `${name}.yaml`);
  const { log: logger, lines } = captureLog('info');
  const settings = new Subject<AppSettings>();
  const runtime = new Runtime({ config, registry: APP_REGISTRY, logger: logger.child({ controller: name }), mastership, settingsChanges: settings });
  t.teardown(() => runtime.stop());
  await runtime.start();
  const tap = await OpenFlowTap.start(runtime.listening[0]!.port!);
  t.teardown(() => tap.close());
  const reports: SyncReport[] = [];
  runtime.reconciler.synced$.subscribe((r) => reports.push(r));
  const lost: RoleLostEvent[] = [];
  runtime.controller.roleLost$.subscribe((e) => lost.push(e));
  return { runtime, mastership, tap, settings, lines, reports, lost };
}

const writes = (messages: OfMessage[]) => messages.filter(isWriteOnWire).length;
const errors = (messages: OfMessage[], errType: number, code: number) => messages.filter((m) => m.type === 'ERROR' && m.errType === errType && m.code === code).length;
const lossLines = (c: Controller) => c.lines.filter((l) => l.component === 'mastership' && /^lost mastership/.test(String(l.msg))).map((l) => String(l.msg));

test.serial('two controllers on one bridge: one master at a time, a takeover in sync sends nothing, a stale master is fenced', async (t) => {
  t.timeout(120_000);
  const a = await startController(t, 'a', new ManualMastership({ role: 'master', generationId: 1n }), BASE_FLOWS);
  const b = await startController(t, 'b', new ManualMastership({ role: 'slave', generationId: 1n }), BASE_FLOWS);
  const targetA = `tcp:127.0.0.1:${a.tap.port}`;
  const targetB = `tcp:127.0.0.1:${b.tap.port}`;
  await vsctl(['--if-exists', 'del-br', BRIDGE]);
  t.teardown(() => vsctl(['--if-exists', 'del-br', BRIDGE]));
  // both controllers in the add-br transaction: a bridge's first controller flushes its flows
  await vsctl([
    '--', 'add-br', BRIDGE,
    '--', 'set', 'bridge', BRIDGE, 'datapath_type=netdev', 'fail_mode=secure', 'protocols=OpenFlow13', `other-config:datapath-id=${DPID.toString(16).padStart(16, '0')}`,
    '--', '--id=@a', 'create', 'controller', `target="${targetA}"`, 'max_backoff=1000',
    '--', '--id=@b', 'create', 'controller', `target="${targetB}"`, 'max_backoff=1000',
    '--', 'set', 'bridge', BRIDGE, 'controller=@a,@b',
  ]);
  const desiredRules = expectedRules(BASE_FLOWS);

  // 1. A is master and installs; B is slave and sends nothing
  await until('A installing the flows', 30_000, () => a.reports.find((r) => r.kind === 'full'));
  t.like(a.reports[0], { kind: 'full', adds: desiredRules.length, deletes: 0, modifies: 0, errors: 0 });
  await until('B connected as slave', 30_000, () => (b.runtime.controller.session(DPID)?.role === 'slave' ? true : undefined));
  t.deepEqual(await until('OVS reporting both roles', 30_000, async () => {
    const r = await controllerRoles();
    return r[targetA] === 'master' && r[targetB] === 'slave' ? r : undefined;
  }), { [targetA]: 'master', [targetB]: 'slave' }, 'ovs-vsctl list controller: A master, B slave');
  t.deepEqual((await dump(BRIDGE)).flows.map((f) => f.rule), desiredRules, 'the bridge holds the desired flows');
  t.is(writes(b.tap.sentToSwitch()), 0, 'B, slave, sent no flow-mod, bundle or packet-out');
  t.is(b.reports.length, 0, 'B ran no sync');

  // 2. B is elected with generation 2: OVS demotes A, which stops; B's takeover sends nothing
  const before = await dump(BRIDGE);
  const markA = a.tap.seen.length;
  const markB = b.tap.seen.length;
  const aLost = firstValueFrom(a.runtime.controller.roleLost$.pipe(timeout(20_000)));
  const bSynced = firstValueFrom(b.runtime.reconciler.synced$.pipe(filter((r) => r.kind === 'full'), timeout(20_000)));
  b.mastership.set(DPID, 'master', 2n, 'elected');
  t.like(await aLost, { dpid: DPID, reason: 'role_status', generationId: 2n }, 'A learnt it from OVS\'s ONFT_ROLE_STATUS');
  t.like(await bSynced, { kind: 'full', adds: 0, deletes: 0, modifies: 0, via: 'none', errors: 0 }, 'B found the bridge in sync');
  t.is(a.runtime.controller.session(DPID)?.role, 'slave');
  t.true(a.tap.receivedFromSwitch(markA).some((m) => m.type === 'EXPERIMENTER' && m.expType === 1911), 'OVS sent A a role status');
  t.deepEqual(lossLines(a), ['lost mastership of 0x00000000000000a1 to generation 2 (role_status)']);
  t.deepEqual(await until('OVS reporting the new roles', 30_000, async () => {
    const r = await controllerRoles();
    return r[targetA] === 'slave' && r[targetB] === 'master' ? r : undefined;
  }), { [targetA]: 'slave', [targetB]: 'master' });
  const after = await dump(BRIDGE);
  t.deepEqual(after.flows.map((f) => f.rule), desiredRules);
  const elapsed = (after.at.start - before.at.end) / 1000;
  for (const [i, f] of after.flows.entries()) {
    t.true(f.durationS >= before.flows[i]!.durationS + elapsed - 0.01, `${f.rule}: duration ran on (${before.flows[i]!.durationS}s → ${f.durationS}s), not re-added`);
  }
  t.is(writes(b.tap.sentToSwitch(markB)), 0, 'B\'s takeover sent no flow-mod');
  t.is(writes(a.tap.sentToSwitch(markA)), 0, 'A sent nothing once demoted');

  // 3. A, stale, claims MASTER with generation 1 again and its desired flows change: OVS refuses, A writes nothing
  const markStale = a.tap.seen.length;
  const session = a.runtime.controller.session(DPID)!;
  const refusal = await t.throwsAsync(session.requestRole('master', 1n), { instanceOf: RoleRequestError });
  t.like(refusal, { refusal: 'stale', generationId: 1n, dpid: DPID });
  t.deepEqual(lossLines(a).at(-1), 'lost mastership of 0x00000000000000a1 to a generation above 1 (stale)');
  const edited = [...BASE_FLOWS.filter((f) => f.name !== 'h1-ip'), { name: 'x-telnet', yaml: '{ name: x-telnet, priority: 60, match: { eth_type: 0x0800, ip_proto: 6, tcp_dst: 23 }, actions: [] }', ovs: '' }];
  a.settings.next(parseRunConfig(runConfigYaml(0, '/nonexistent', edited), 'a.yaml').settings);
  await session.barrier();
  await a.runtime.reconciler.settled(DPID);
  t.is(writes(a.tap.sentToSwitch(markStale)), 0, 'A, fenced, sent no flow-mod for its changed desired flows');
  const end = await dump(BRIDGE);
  t.deepEqual(end.flows.map((f) => f.rule), desiredRules, 'the bridge holds exactly B\'s desired flows');
  t.deepEqual(await controllerRoles(), { [targetA]: 'slave', [targetB]: 'master' }, 'B is still master');

  const fromOvsToA = a.tap.receivedFromSwitch();
  const refusedWrites = errors(fromOvsToA, OFPET.BAD_REQUEST, OFPBRC.IS_SLAVE) + errors(b.tap.receivedFromSwitch(), OFPET.BAD_REQUEST, OFPBRC.IS_SLAVE);
  const staleRefusals = errors(fromOvsToA, OFPET.ROLE_REQUEST_FAILED, OFPRRFC.STALE);
  t.is(refusedWrites, 0, 'OVS refused no flow-mod: no controller wrote while slave');
  t.is(staleRefusals, 1, 'OVS refused the stale claim');
  t.log(`on the wire: A sent ${writes(a.tap.sentToSwitch())} writes (all before its demotion), B ${writes(b.tap.sentToSwitch())}; OVS refused ${refusedWrites} writes and ${staleRefusals} stale role request`);
});
