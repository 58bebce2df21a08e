/**
 * The mastership election in etcd, with two `zonemesh run` processes on one real Open vSwitch
 * bridge: ctl-a of zone a (the bridge's hypervisor's zone) and ctl-b of zone b. A tap between OVS
 * and each controller counts on the wire what each sent.
 *
 * 1. ctl-b starts first and takes the ownerless zone a; ctl-a then joins and, after its preemption
 *    delay, takes its zone back: OVS reports ctl-a master and ctl-b slave, and the flows were
 *    installed once (by ctl-b; ctl-a's takeover sent nothing).
 * 2. SIGKILL of the master, three times (restarting the killed one as the standby): the other is
 *    master within 5 s (the lease TTL is 3 s), sends no flow-mod (durations run on, n_packets kept),
 *    and logs it.
 * 3. Split brain: SIGSTOP of the master until its lease expires and the other takes over; its flows
 *    are edited meanwhile. SIGCONT: it writes nothing (OVS demoted it with a higher generation, its
 *    lease is gone), logs the loss, and the bridge holds exactly the new master's flows.
 */
import test, { type ExecutionContext } from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BehaviorSubject, NEVER } from 'rxjs';
import { parse as parseYaml } from 'yaml';
import { validateModel, type ModelStore } from '../../src/model';
import { ControllerIdInUseError, EtcdMastership } from '../../src/runtime/etcd-mastership';
import type { MastershipDecision } from '../../src/runtime';
import { captureLog } from '../helpers/log';
import { OFPBRC, OFPET, type OfMessage } from '../../src/openflow';
import { membersLeaderFirst, partitionMember, startEtcd, type EtcdCluster } from '../helpers/etcd';
import { connectEtcd } from '../../src/model/etcd-client';
import { OpenFlowTap, isWriteOnWire } from '../helpers/of-tap';
import { assertOvsRunning, controllerRoles, vsctl } from '../helpers/ovs';
import { BASE_FLOWS, CLI, ControllerProcess, createLab, dump, expectedRules, pingOnce, runConfigYaml, testDir, until, writeAtomically, zonemeshFlows, type LogLine, type StaticFlow } from '../helpers/restart';
import { freePort, run } from '../helpers/run';

const PREFIX = 'zme-el';
const DPID = 0xe1n;
const DPID_TEXT = 'e1'.padStart(16, '0');
const TAKEOVER_BOUND_MS = 5_000;

test.before(assertOvsRunning);

/** two zones; the bridge is hypervisor hv-a's, in zone a */
const MODEL = `zones:
  - { name: a, underlay: 172.16.1.0/24 }
  - { name: b, underlay: 172.16.2.0/24 }
hypervisors:
  - { name: hv-a, zone: a, tunnelIp: 172.16.1.11, datapathId: "0x${DPID.toString(16)}" }
  - { name: hv-b, zone: b, tunnelIp: 172.16.2.11, datapathId: "0xe2" }
vpcs: []
ports: []
`;

/** `zonemesh model import` of MODEL */
async function importModel(etcd: EtcdCluster): Promise<void> {
  const file = join(testDir('etcd-mastership-model'), 'model.yaml');
  writeFileSync(file, MODEL);
  await run(process.execPath, [CLI, 'model', 'import', file, '--store', etcd.url]);
}

/** one controller: its config, its listen port behind a tap, and its process while it runs */
interface Node {
  id: string;
  zone: string;
  port: number;
  tap: OpenFlowTap;
  config: string;
  /** its control socket, for zonemesh flows */
  control: string;
  yaml: (flows: readonly StaticFlow[], preemptDelay: number) => string;
  proc?: ControllerProcess;
}

async function node(t: ExecutionContext, etcd: EtcdCluster, id: string, zone: string): Promise<Node> {
  const dir = testDir(`etcd-mastership-${id}`);
  const port = await freePort();
  const tap = await OpenFlowTap.start(port);
  t.teardown(() => tap.close());
  const control = join(dir, 'control.sock');
  const yaml = (flows: readonly StaticFlow[], preemptDelay: number) =>
    [runConfigYaml(port, control, flows), `store: ${etcd.url}`, `zone: ${zone}`, `controllerId: ${id}`, `election: { leaseTtl: 3, preemptDelay: ${preemptDelay} }`, ''].join('\n');
  return { id, zone, port, tap, config: join(dir, 'run.yaml'), control, yaml };
}

/** every controller process the test started */
const started: ControllerProcess[] = [];

function start(t: ExecutionContext, n: Node, preemptDelay: number, flows: readonly StaticFlow[] = BASE_FLOWS): ControllerProcess {
  writeFileSync(n.config, n.yaml(flows, preemptDelay));
  n.proc = new ControllerProcess(t, n.config);
  started.push(n.proc);
  return n.proc;
}

const masterLine = (l: LogLine) => l.component === 'mastership' && l.msg === `master of 0x${DPID_TEXT} with generation ${l.generationId}`;
const slaveLine = (l: LogLine) => l.component === 'mastership' && String(l.msg).startsWith(`slave of 0x${DPID_TEXT}, master is `);
const lossLines = (p: ControllerProcess) => p.lines.filter((l) => l.component === 'mastership' && String(l.msg).startsWith('lost mastership')).map((l) => l.msg);
const writes = (messages: OfMessage[]) => messages.filter(isWriteOnWire).length;
const isSlaveErrors = (messages: OfMessage[]) => messages.filter((m) => m.type === 'ERROR' && m.errType === OFPET.BAD_REQUEST && m.code === OFPBRC.IS_SLAVE).length;

async function rolesOf(a: Node, b: Node, want: [string, string]): Promise<[string, string]> {
  return until(`OVS reporting ${a.id} ${want[0]} and ${b.id} ${want[1]}`, 15_000, async () => {
    const r = await controllerRoles();
    const got: [string, string] = [r[`tcp:127.0.0.1:${a.tap.port}`]!, r[`tcp:127.0.0.1:${b.tap.port}`]!];
    return got[0] === want[0] && got[1] === want[1] ? got : undefined;
  });
}

/** an EtcdMastership in this process, on MODEL, with every decision it emitted */
async function joinElection(t: ExecutionContext, etcd: EtcdCluster, controllerId: string, zone: string, endpoints = etcd.endpoints, preemptDelayMs = 600_000) {
  const model = validateModel(parseYaml(MODEL), 'model.yaml');
  const store: ModelStore = { model$: new BehaviorSubject(model), rejected$: NEVER, current: () => model };
  const { log, lines } = captureLog('info');
  const election = await EtcdMastership.start(endpoints, store, { controllerId, zone, leaseTtlS: 3, preemptDelayMs, log });
  t.teardown(() => election.close());
  const decisions: MastershipDecision[] = [];
  election.changes$.subscribe((d) => decisions.push(d));
  return { election, decisions, lines };
}

const isMaster = (e: EtcdMastership) => (e.decision(DPID).role === 'master' ? e.decision(DPID) : undefined);

test.serial('election in etcd: a foreign controller takes an ownerless zone; generations rise from term to term; one id per live controller; a clean stop hands over at once', async (t) => {
  const etcd = await startEtcd(1);
  t.teardown(() => etcd.stop());
  await importModel(etcd);
  const b = await joinElection(t, etcd, 'ctl-b', 'b');
  const first = await until('ctl-b master of the ownerless zone a', 5_000, () => isMaster(b.election));
  t.true(first.generationId > 0n);
  t.like(b.election.decision(0xe2n), { role: 'master' }, 'and of its own zone b');
  const a = await joinElection(t, etcd, 'ctl-a', 'a');
  t.like(a.election.decision(DPID), { role: 'slave', generationId: first.generationId, master: 'ctl-b' }, 'ctl-a slave of zone a, with the master\'s generation (its preemption delay is long)');
  const duplicate = await t.throwsAsync(joinElection(t, etcd, 'ctl-a', 'a'), { instanceOf: ControllerIdInUseError });
  t.is(duplicate?.message, 'controller id ctl-a is in use in the mastership election by another running controller; give each controller its own --controller-id');
  const stoppedAt = Date.now();
  await b.election.close();
  const second = await until('ctl-a master after ctl-b stopped', 5_000, () => isMaster(a.election));
  t.log(`handover after a clean stop (lease revoked): ${Date.now() - stoppedAt} ms`);
  t.true(second.generationId > first.generationId, `generation ${second.generationId} above ${first.generationId}`);
  t.true(Date.now() - stoppedAt < 1_000, 'a revoked lease hands over at once, not after its TTL');
});

test.serial('election in etcd: without etcd the master steps down within half the lease TTL and nobody is master; it resumes when etcd is back', async (t) => {
  const etcd = await startEtcd(1);
  t.teardown(() => etcd.stop());
  await importModel(etcd);
  const a = await joinElection(t, etcd, 'ctl-a', 'a');
  const b = await joinElection(t, etcd, 'ctl-b', 'b');
  const term = await until('ctl-a master of zone a', 5_000, () => isMaster(a.election));
  t.like(b.election.decision(DPID), { role: 'slave', master: 'ctl-a', generationId: term.generationId });
  const lostAt = Date.now();
  await etcd.members[0]!.kill();
  const down = await until('ctl-a stepping down', 5_000, () => (a.election.decision(DPID).role === 'slave' ? a.election.decision(DPID) : undefined));
  const after = Date.now() - lostAt;
  t.log(`ctl-a stepped down ${after} ms after etcd went away (lease TTL 3 s)`);
  t.true(after < 3_000, 'before its lease could expire');
  t.like(down, { role: 'slave', generationId: term.generationId, reason: 'lease not renewed' });
  t.true(a.lines.some((l) => l.component === 'election' && /^no lease keepalive succeeded for 1.5 s/.test(String(l.msg))), 'and said so');
  t.is(b.election.decision(DPID).role, 'slave', 'nobody is master');
  await etcd.members[0]!.restart();
  // etcd renews every lease when a leader starts: ctl-a's term goes on
  const again = await until('ctl-a master again', 10_000, () => isMaster(a.election));
  t.is(again.generationId, term.generationId, 'its key survived: the same term');
});

test.serial('election in etcd: a partitioned member\'s controller steps down before the majority side takes its zone; the majority keeps working', async (t) => {
  const etcd = await startEtcd(3, { partitionable: true });
  t.teardown(() => etcd.stop());
  await importModel(etcd);
  // each controller talks to its own side: ctl-a to member 0 only (its zone's), ctl-b to the two others
  // a follower: cutting the leader off adds the majority's election and a whole TTL (a new leader renews every lease) to the takeover
  const [leader, other, minority] = await membersLeaderFirst(etcd);
  const majority = [leader!, other!];
  const a = await joinElection(t, etcd, 'ctl-a', 'a', [minority!.endpoint]);
  // ctl-a took the ownerless zone b too: ctl-b takes it back at once
  const b = await joinElection(t, etcd, 'ctl-b', 'b', majority.map((m) => m.endpoint), 0);
  const term = await until('ctl-a master of zone a', 5_000, () => isMaster(a.election));
  const bTerm = await until('ctl-b master of zone b', 5_000, () => (b.election.decision(0xe2n).role === 'master' ? b.election.decision(0xe2n) : undefined));
  const stamp = (d: MastershipDecision[]) => d.length;
  const [aFrom, bFrom] = [stamp(a.decisions), stamp(b.decisions)];
  const times = new Map<string, number>();
  a.election.changes$.subscribe((d) => d.dpid === DPID && d.role === 'slave' && !times.has('a down') && times.set('a down', Date.now()));
  b.election.changes$.subscribe((d) => d.dpid === DPID && d.role === 'master' && !times.has('b up') && times.set('b up', Date.now()));

  const cutAt = Date.now();
  const heal = await partitionMember(etcd, minority!);
  t.teardown(() => heal().catch(() => undefined));
  const taken = await until('ctl-b master of zone a, on the majority side', 15_000, () => (b.election.decision(DPID).role === 'master' ? b.election.decision(DPID) : undefined));
  const down = times.get('a down');
  const up = times.get('b up')!;
  t.truthy(down, 'ctl-a stepped down');
  t.log(`partition of ctl-a's etcd member: ctl-a stepped down after ${down! - cutAt} ms, ctl-b master of zone a after ${up - cutAt} ms (lease TTL 3 s)`);
  t.true(down! < up, 'ctl-a was no longer master when ctl-b became master: never two at once');
  t.true(up - cutAt <= TAKEOVER_BOUND_MS, `takeover within ${TAKEOVER_BOUND_MS} ms`);
  t.true(taken.generationId > term.generationId, 'a newer generation, which fences ctl-a at the switch');
  t.like(a.election.decision(DPID), { role: 'slave', reason: 'lease not renewed' });
  t.true(a.lines.some((l) => l.component === 'election' && /^no lease keepalive succeeded for 1.5 s/.test(String(l.msg))), 'ctl-a said why');
  // the majority side went on: ctl-b kept zone b in the same term, and etcd takes writes
  // (when the cut member was etcd's leader, the majority's election can outlast TTL/2: ctl-b then steps down there too, and resumes the same term)
  const zoneB = b.decisions.slice(bFrom).filter((d) => d.dpid === 0xe2n);
  t.log(`ctl-b's decisions for zone b meanwhile: ${zoneB.map((d) => `${d.role} (${d.reason})`).join(', ') || 'none'}`);
  t.true(zoneB.every((d) => d.generationId === bTerm.generationId), 'ctl-b kept zone b in the same term');
  t.like(b.election.decision(0xe2n), { role: 'master', generationId: bTerm.generationId });
  const side = connectEtcd(majority.map((m) => m.endpoint));
  t.teardown(() => side.close());
  await side.put('/zonemesh-test/majority-write').value('ok');

  // healed: ctl-a's lease is gone; it joins again, as a slave of the master the majority elected
  await heal();
  const back = await until('ctl-a slave of ctl-b', 20_000, () => {
    const d = a.election.decision(DPID);
    return d.role === 'slave' && d.master === 'ctl-b' ? d : undefined;
  });
  t.is(back.generationId, taken.generationId);
  t.true(a.decisions.slice(aFrom).every((d) => d.dpid !== DPID || d.role === 'slave'), 'ctl-a claimed nothing after the partition');
});

const percentile = (xs: number[], p: number) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

test.serial('etcd election: zone preference, takeover after SIGKILL within 5 s sending nothing, a paused master fenced', async (t) => {
  t.timeout(120_000);
  const etcd = await startEtcd(1);
  t.teardown(() => etcd.stop());
  await importModel(etcd);

  const lab = await createLab(t, PREFIX);
  const a = await node(t, etcd, 'ctl-a', 'a');
  const b = await node(t, etcd, 'ctl-b', 'b');
  const desired = expectedRules(BASE_FLOWS);

  // 1. ctl-b alone takes zone a and installs; ctl-a joins and takes its zone back after 2 s, sending nothing
  const pb = start(t, b, 600);
  await pb.waitFor('ctl-b master of zone a', (l) => l.component === 'election' && l.msg === 'master of zone a with generation ' + String(l.generationId));
  await vsctl([
    '--', 'add-br', lab.bridge,
    '--', 'set', 'bridge', lab.bridge, 'datapath_type=netdev', 'fail_mode=secure', 'protocols=OpenFlow13', `other-config:datapath-id=${DPID_TEXT}`,
    '--', '--id=@a', 'create', 'controller', `target="tcp:127.0.0.1:${a.tap.port}"`, 'max_backoff=1000',
    '--', '--id=@b', 'create', 'controller', `target="tcp:127.0.0.1:${b.tap.port}"`, 'max_backoff=1000',
    '--', 'set', 'bridge', lab.bridge, 'controller=@a,@b',
    '--', 'add-port', lab.bridge, `${PREFIX}1`, '--', 'set', 'interface', `${PREFIX}1`, 'ofport_request=1',
    '--', 'add-port', lab.bridge, `${PREFIX}2`, '--', 'set', 'interface', `${PREFIX}2`, 'ofport_request=2',
  ]);
  const bInstall = await pb.fullSync();
  t.like(bInstall, { adds: desired.length, deletes: 0, modifies: 0, errors: 0 }, 'ctl-b, master of the ownerless zone a, installed the flows');
  const pa = start(t, a, 2);
  const aMaster = await pa.waitFor('ctl-a master after taking zone a back', masterLine, 20_000);
  t.true(pa.lines.some((l) => l.component === 'election' && l.msg === 'taking zone a back from ctl-b of zone b'), 'ctl-a took its zone back');
  t.like(await pa.fullSync(), { adds: 0, deletes: 0, modifies: 0, msg: 'in sync; nothing to send' }, 'ctl-a found the bridge in sync');
  t.deepEqual(await rolesOf(a, b, ['master', 'slave']), ['master', 'slave'], 'ovs-vsctl list controller: ctl-a master, ctl-b slave');
  await pb.waitFor('ctl-b slave', slaveLine);
  const term = { generationId: String(aMaster.generationId), master: 'ctl-a' };
  t.like((await zonemeshFlows(a.control)).switches[0], { dpid: DPID_TEXT, role: 'MASTER', ...term }, 'zonemesh flows of ctl-a: master, its generation');
  t.like((await zonemeshFlows(b.control)).switches[0], { dpid: DPID_TEXT, role: 'SLAVE', ...term }, 'zonemesh flows of ctl-b: slave, and who is master');
  t.is(writes(a.tap.sentToSwitch()), 0, 'ctl-a sent no write: the flows were installed once, by ctl-b');
  t.deepEqual((await dump(lab.bridge)).flows.map((f) => f.rule), desired);
  t.log(`ctl-a master with generation ${aMaster.generationId}`);

  // 2. SIGKILL of the master, three times; the killed one comes back as the standby (a long preemption delay)
  t.truthy(await pingOnce(t, lab.hosts[0], lab.ip(2), 3), 'traffic through the flows');
  const takeovers: number[] = [];
  let [master, standby] = [a, b];
  for (let i = 0; i < 3; i++) {
    const before = await dump(lab.bridge);
    const mark = standby.tap.seen.length;
    const from = standby.proc!.lines.length;
    const killedAt = Date.now();
    await master.proc!.kill('SIGKILL');
    const line = await standby.proc!.waitFor(`${standby.id} master after the SIGKILL of ${master.id}`, masterLine, 15_000, from);
    takeovers.push(line.time - killedAt);
    t.true(line.time - killedAt <= TAKEOVER_BOUND_MS, `${standby.id} master ${line.time - killedAt} ms after the SIGKILL (bound ${TAKEOVER_BOUND_MS} ms)`);
    t.like(await standby.proc!.fullSync(15_000, from), { adds: 0, deletes: 0, modifies: 0, msg: 'in sync; nothing to send' }, 'the takeover found the bridge in sync');
    await standby.proc!.waitFor('its election log line', (l) => l.component === 'election' && l.msg === `master of zone a with generation ${line.generationId}`, 5_000, from);
    const after = await dump(lab.bridge);
    t.deepEqual(after.flows.map((f) => f.rule), desired);
    const elapsed = (after.at.start - before.at.end) / 1000;
    t.true(after.flows.every((f, k) => f.durationS >= before.flows[k]!.durationS + elapsed - 0.01 && f.packets >= before.flows[k]!.packets), 'every flow kept its duration and counters');
    t.is(writes(standby.tap.sentToSwitch(mark)), 0, `${standby.id}'s takeover sent no flow-mod`);
    // the killed one comes back as the standby
    const back = start(t, master, 600);
    await back.waitFor(`${master.id} slave again`, slaveLine, 20_000);
    [master, standby] = [standby, master];
  }
  t.log(`takeover after SIGKILL (lease TTL 3 s): ${takeovers.join(', ')} ms; p50 ${percentile(takeovers, 50)} ms, max ${Math.max(...takeovers)} ms`);

  // 3. split brain: the master paused past its lease; the other takes over; the paused one's flows change
  const stale = master;
  const fresh = standby;
  const edited = BASE_FLOWS.filter((f) => f.name !== 'x-ipv6');
  const markStale = stale.tap.seen.length;
  const from = fresh.proc!.lines.length;
  const staleFrom = stale.proc!.lines.length;
  const pausedAt = Date.now();
  stale.proc!.child.kill('SIGSTOP');
  t.teardown(() => void stale.proc!.child.kill('SIGCONT'));
  const took = await fresh.proc!.waitFor(`${fresh.id} master while ${stale.id} is paused`, masterLine, 15_000, from);
  t.log(`takeover from a paused master: ${took.time - pausedAt} ms`);
  t.true(took.time - pausedAt <= TAKEOVER_BOUND_MS);
  writeAtomically(stale.config, stale.yaml(edited, 600));
  stale.proc!.child.kill('SIGCONT');
  await stale.proc!.waitFor(`${stale.id} taking its edited flows`, (l) => l.msg === 'settings changed', 15_000, staleFrom);
  await stale.proc!.waitFor(`${stale.id} slave again`, slaveLine, 15_000, staleFrom);
  const losses = lossLines(stale.proc!);
  t.true(losses.length >= 1, `${stale.id} logged the loss: ${JSON.stringify(losses)}`);
  t.deepEqual(await rolesOf(fresh, stale, ['master', 'slave']), ['master', 'slave']);
  const end = await dump(lab.bridge);
  t.deepEqual(end.flows.map((f) => f.rule), desired, `the bridge holds exactly ${fresh.id}'s flows, not ${stale.id}'s edit`);
  const staleWrites = writes(stale.tap.sentToSwitch(markStale));
  const refused = isSlaveErrors(stale.tap.receivedFromSwitch(markStale));
  t.is(staleWrites, refused, 'every write the stale master sent was refused by OVS');
  t.is(staleWrites, 0, 'the stale master sent nothing: it was fenced locally before writing');
  t.log(`${stale.id} after SIGCONT: ${staleWrites} writes on the wire, ${refused} refused by OVS (IS_SLAVE); log: ${losses.join(' | ')}`);
  t.deepEqual(started.flatMap((p) => p.problems()).filter((l) => l.level >= 50), [], 'no error lines');
});
