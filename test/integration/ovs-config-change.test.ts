/**
 * A desired flow changed at runtime changes only that flow on a real Open vSwitch. `zonemesh run`
 * watches its --config file; the static-flows app hands changed flows to the runtime, which sends
 * only their difference. Every other flow keeps its duration and its counters (nothing is deleted
 * and re-added), and the change is live in the datapath.
 */
import test, { type ExecutionContext } from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOvsRunning } from '../helpers/ovs';
import {
  BASE_FLOWS,
  ControllerProcess,
  createLab,
  dump,
  expectedRules,
  pingOnce,
  quietDump,
  runConfigYaml,
  testDir,
  until,
  writeAtomically,
  zonemeshFlows,
  type Dumped,
  type StaticFlow,
} from '../helpers/restart';
import { freePort } from '../helpers/run';

const PREFIX = 'zm-cc';

test.before(assertOvsRunning);

/** BASE_FLOWS with `name` replaced (or removed, when `by` is undefined) and `extra` appended */
function edit(flows: readonly StaticFlow[], name: string, by: StaticFlow | undefined, extra: StaticFlow[] = []): StaticFlow[] {
  return [...flows.flatMap((f) => (f.name === name ? (by ? [by] : []) : [f])), ...extra];
}

const H1_IP = BASE_FLOWS.find((f) => f.name === 'h1-ip')!;
/** the h1→h2 IPv4 flow, dropping instead of forwarding */
const H1_IP_DROP: StaticFlow = {
  name: 'h1-ip',
  yaml: '{ name: h1-ip, priority: 100, match: { in_port: 1, eth_type: 0x0800, ipv4_dst: 10.0.0.2 }, actions: [] }',
  ovs: 'priority=100,ip,in_port=1,nw_dst=10.0.0.2 actions=drop',
};
const X_TELNET: StaticFlow = {
  name: 'x-telnet',
  yaml: '{ name: x-telnet, priority: 60, match: { eth_type: 0x0800, ip_proto: 6, tcp_dst: 23 }, actions: [] }',
  ovs: 'priority=60,tcp,tp_dst=23 actions=drop',
};

interface Step {
  /** the flows after the edit */
  flows: StaticFlow[];
  /** what the incremental sync must send */
  sent: { deletes: number; modifies: number; adds: number };
  /** rules that must differ between before and after (gone from before, new in after) */
  gone: string[];
  added: string[];
  /** rules that were modified in place: new text, the old duration and counters kept */
  modified: { from: string; to: string }[];
}

/**
 * Edits the config file, waits for the controller to send the difference, and checks the bridge:
 * only the named flows changed, every other one kept duration and counters. The bridge must be quiet
 * (no traffic) while it runs, so counters are comparable.
 */
async function applyEdit(t: ExecutionContext, ctl: ControllerProcess, lab: { bridge: string; config: string; control: string; runYaml: (flows: readonly StaticFlow[]) => string }, step: Step): Promise<void> {
  const { bridge, config, control, runYaml } = lab;
  const before = await quietDump(bridge);
  const mark = ctl.lines.length;
  const writtenAt = Date.now();
  writeAtomically(config, runYaml(step.flows));
  const changed = step.sent.deletes + step.sent.modifies + step.sent.adds;
  const app = await ctl.waitFor('the app taking the edit', (l) => l.msg === 'settings changed', 30_000, mark);
  t.like(app, { app: 'static-flows', changed, flows: step.flows.length }, 'the app set only the changed flows');
  if (changed > 0) {
    const synced = await ctl.waitFor('the incremental sync of the edit', (l) => l.component === 'reconciler' && l.kind === 'incremental' && l.msg === 'sent the difference', 30_000, mark);
    t.like(synced, { ...step.sent, errors: 0 }, 'the edit sent exactly its difference');
    t.log(`edit (${JSON.stringify(step.sent)}) on the switch ${synced.time - writtenAt} ms after the file was written (the watch debounces 100 ms)`);
  } else {
    // the app set nothing, so the reconciler has nothing to do; a control request goes through the same event loop after it
    t.is((await zonemeshFlows(control)).status, 0);
  }
  t.deepEqual(
    ctl.lines.slice(mark).filter((l) => l.component === 'reconciler').map((l) => l.msg),
    changed > 0 ? ['sent the difference'] : [],
    'one batch for the edit, or none',
  );
  const expected = expectedRules(step.flows);
  const after = await until('the edit on the bridge', 10_000, async () => {
    const d = await dump(bridge);
    return JSON.stringify(d.flows.map((f) => f.rule)) === JSON.stringify(expected) ? d : undefined;
  }).catch(async (e: Error) => {
    t.fail(`${e.message}; the bridge holds:\n${(await dump(bridge)).flows.map((f) => f.rule).join('\n')}`);
    return dump(bridge);
  });
  t.deepEqual(after.flows.map((f) => f.rule), expected, 'the bridge holds exactly the new desired flows');
  t.is(after.flows.length, before.flows.length - step.gone.length + step.added.length, 'the flow count changed by exactly the flows removed and added');

  const was = new Map(before.flows.map((f) => [f.rule, f]));
  const now = new Map(after.flows.map((f) => [f.rule, f]));
  const elapsedMin = (after.at.start - before.at.end) / 1000;
  const elapsedMax = (after.at.end - before.at.start) / 1000;
  const kept = (from: Dumped, to: Dumped, what: string) => {
    const grew = to.durationS - from.durationS;
    t.true(grew >= elapsedMin - 0.01 && grew <= elapsedMax + 0.01, `${what}: duration ran on (${from.durationS}s → ${to.durationS}s over ${elapsedMin}..${elapsedMax}s)`);
    t.is(to.packets, from.packets, `${what}: n_packets kept`);
  };
  const touched = new Set([...step.gone, ...step.added, ...step.modified.flatMap((m) => [m.from, m.to])]);
  const untouched = after.flows.filter((f) => !touched.has(f.rule));
  t.is(untouched.length, after.flows.length - step.added.length - step.modified.length);
  for (const f of untouched) kept(was.get(f.rule)!, f, `untouched ${f.rule}`);
  for (const m of step.modified) {
    t.truthy(was.get(m.from), `before the edit: ${m.from}`);
    t.truthy(now.get(m.to), `after the edit: ${m.to}`);
    t.false(now.has(m.from), `the old actions are gone: ${m.from}`);
    if (was.get(m.from) && now.get(m.to)) kept(was.get(m.from)!, now.get(m.to)!, `modified in place ${m.to}`);
  }
  for (const rule of step.gone) t.false(now.has(rule), `removed: ${rule}`);
  for (const rule of step.added) {
    const f = now.get(rule);
    t.truthy(f, `added: ${rule}`);
    if (f) t.true(f.durationS <= elapsedMax + 0.01, `a new flow: ${rule}`);
  }
}

test.serial('a flow changed in the run config at runtime changes only that flow on the switch', async (t) => {
  t.timeout(180_000);
  const dir = testDir('ovs-config-change');
  const port = await freePort();
  const control = join(dir, 'control.sock');
  const config = join(dir, 'run.yaml');
  const runYaml = (flows: readonly StaticFlow[]) => runConfigYaml(port, control, flows);
  writeFileSync(config, runYaml(BASE_FLOWS));
  const lab = await createLab(t, PREFIX);
  const [h1] = lab.hosts;

  const ctl = new ControllerProcess(t, config);
  await ctl.waitFor('"running"', (l) => l.msg === 'running', 60_000);
  await lab.addBridge(`tcp:127.0.0.1:${port}`);
  t.like(await ctl.fullSync(60_000), { adds: BASE_FLOWS.length + 1, deletes: 0, modifies: 0, errors: 0 });
  await until('the desired flows on the bridge', 30_000, async () => ((await dump(lab.bridge)).flows.length === BASE_FLOWS.length + 1 ? true : undefined));
  await until('h1 reaching h2', 30_000, async () => ((await pingOnce(t, h1, lab.ip(2), 1))?.received === 1 ? true : undefined), 100);

  const where = { bridge: lab.bridge, config, control, runYaml };
  // 1. h1→h2 IPv4 now drops: one modify_strict, nothing else
  const ruleOf = (f: StaticFlow) => expectedRules([f]).find((r) => !r.includes('priority=0 '))!;
  await applyEdit(t, ctl, where, {
    flows: edit(BASE_FLOWS, 'h1-ip', H1_IP_DROP),
    sent: { deletes: 0, modifies: 1, adds: 0 },
    gone: [],
    added: [],
    modified: [{ from: ruleOf(H1_IP), to: ruleOf(H1_IP_DROP) }],
  });
  const dropped = await pingOnce(t, h1, lab.ip(2), 3);
  t.is(dropped?.received, 0, 'the datapath drops h1→h2 now');

  // 2. forwarding again (modify), one flow removed, one added: the rest untouched
  const step2 = edit(BASE_FLOWS, 'x-udp', undefined, [X_TELNET]);
  await applyEdit(t, ctl, where, {
    flows: step2,
    sent: { deletes: 1, modifies: 1, adds: 1 },
    gone: [ruleOf(BASE_FLOWS.find((f) => f.name === 'x-udp')!)],
    added: [ruleOf(X_TELNET)],
    modified: [{ from: ruleOf(H1_IP_DROP), to: ruleOf(H1_IP) }],
  });
  await until('h1 reaching h2 again', 30_000, async () => ((await pingOnce(t, h1, lab.ip(2), 1))?.received === 1 ? true : undefined), 100);
  t.is((await pingOnce(t, h1, lab.ip(2), 5))?.received, 5, 'the datapath forwards h1→h2 again');

  // 3. the same flows written differently (match keys and list reordered): nothing changes, nothing is sent
  const h2ip = step2.find((f) => f.name === 'h2-ip')!;
  const reordered: StaticFlow = { ...h2ip, yaml: '{ name: h2-ip, priority: 100, match: { ipv4_dst: 10.0.0.1, eth_type: 0x0800, in_port: 2 }, actions: [{ output: 1 }] }' };
  const step3 = edit(step2, 'h2-ip', undefined, [reordered]).reverse();
  await applyEdit(t, ctl, where, { flows: step3, sent: { deletes: 0, modifies: 0, adds: 0 }, gone: [], added: [], modified: [] });

  // what the controller computes as desired is what the bridge holds
  const asked = await zonemeshFlows(control);
  t.is(asked.status, 0, 'zonemesh flows: in sync');
  t.deepEqual(asked.switches[0]?.desired.map((l) => l.trim()).sort(), expectedRules(step3), 'the controller desires exactly the edited flows');
  t.deepEqual((await dump(lab.bridge)).flows.map((f) => f.rule), expectedRules(step3), 'and the bridge holds them');
  t.deepEqual(ctl.problems(), [], 'no warning or error in the controller log');
  await ctl.kill('SIGTERM');
  t.is(ctl.child.exitCode, 0, 'SIGTERM stops the controller cleanly (the config watch does not keep it alive)');
});
