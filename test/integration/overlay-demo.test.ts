/**
 * `npm run demo` on the second example model (models/three-zones.yaml): the demo's own code
 * (scripts/overlay-demo.ts: demoUp, its checks and its output), brought up once for all the
 * tests here and torn down after them. The first model's overlay is tested in
 * overlay-scenario.test.ts; the pickers on both models in test/scripts/overlay-demo.test.ts.
 */
import test from 'ava';
import { join } from 'node:path';
import { loadModelFile, type NetworkModel } from '../../src/model';
import { demoCheck, demoDown, demoUp, pickOverlap, pickRoutedCrossZone, type DemoOptions, type DemoResult } from '../../scripts/overlay-demo';
import { MININET_PYTHON, THREE_ZONES_MODEL, TWO_ZONES_MODEL } from '../helpers/overlay';
import { TEST_STATE_DIR, run } from '../helpers/run';

const model = loadModelFile(THREE_ZONES_MODEL);
const lines: string[] = [];
const opts: DemoOptions = { stateDir: join(TEST_STATE_DIR, 'overlay-demo'), prefix: 'zmd', out: (line) => lines.push(line) };
let demo: DemoResult | undefined;

test.before(async () => {
  demo = await demoUp(THREE_ZONES_MODEL, opts);
});

test.after.always(async () => {
  await demoDown({ ...opts, out: () => undefined });
});

/** Every name, address and id a model gives, in the forms the demo prints them. */
function namesOf(m: NetworkModel): string[] {
  const dpid = (id: bigint) => [`0x${id.toString(16)}`, `0x${id.toString(16).padStart(16, '0')}`];
  return [
    ...new Set([
      ...m.zones.flatMap((z) => [z.name, z.underlay]),
      ...m.hypervisors.flatMap((h) => [h.name, h.tunnelIp, ...dpid(h.datapathId)]),
      ...m.vpcs.map((v) => v.name),
      ...m.subnets.flatMap((s) => [s.name, s.cidr, s.gateway, s.routerMac]),
      ...m.ports.flatMap((p) => [p.name, p.interface, p.ip, p.mac]),
      ...m.acls.map((a) => a.name),
    ]),
  ].filter((name): name is string => name !== undefined);
}

/** The names that occur in `text` as whole words ('web' in 'blue/web@hv1', not in 'webhook'; '10.1.1.1' not in '10.1.1.11'). */
function namesIn(text: string, names: readonly string[]): string[] {
  return names.filter((n) => new RegExp(`(?<![\\w.:-])${n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}(?![\\w:-]|\\.\\w)`).test(text));
}

test('the demo ends "Verdict: PASS", every VM leased by DHCP and configured by SLAAC, both matrices as the model says, every check run on pairs of this model, none skipped', (t) => {
  t.log(lines.join('\n'));
  t.truthy(demo);
  t.true(demo!.ok && demo!.matrixOk);
  t.true(demo!.dhcpOk, 'every VM got its model address, mask, router and MTU 1400 from dhclient');
  t.true(lines.includes(`  leases: all ${model.ports.length} as the model says (address, mask, router, MTU 1400)`));
  t.deepEqual(demo!.ipv6, { slaacOk: true, matrixOk: true }, 'SLAAC and the IPv6 matrix as the model says');
  t.true(lines.includes(`  SLAAC: all ${model.ports.length} as the model says (EUI-64 address in the subnet's /64, default route via the router's link-local address, MTU 1400)`));
  const pairs = model.ports.length * (model.ports.length - 1);
  t.deepEqual(
    lines.filter((l) => /^  IPv\d matrix: /.test(l)),
    [`  IPv4 matrix: all ${pairs} pairs as the model says`, `  IPv6 matrix: all ${pairs} pairs as the model says`],
  );
  t.deepEqual(
    demo!.verdicts.map((v) => v.status),
    ['pass', 'pass', 'pass', 'pass'],
    demo!.verdicts.map((v) => `${v.status} ${v.what}`).join('\n'),
  );
  t.regex(lines.filter((l) => l.startsWith('Verdict:')).join('\n'), /^Verdict: PASS/);
  const routed = pickRoutedCrossZone(model);
  const overlap = pickOverlap(model);
  if (!('pick' in routed) || !('pick' in overlap)) return t.fail('the model offers a routed cross-zone pair and an overlap');
  t.regex(demo!.verdicts[0]!.what, new RegExp(`^routed cross-zone ping ${routed.pick[0].name} .* -> ${routed.pick[1].name} `));
  const { from, owner, other } = overlap.pick;
  t.regex(demo!.verdicts[3]!.what, new RegExp(`^VPCs stay apart: ${from.name} .* reaches ${owner.name} on .* never ${other.name} `));
});

test("the demo's output names nothing of the default model, and this model's things", (t) => {
  const text = lines.join('\n');
  const defaults = namesOf(loadModelFile(TWO_ZONES_MODEL));
  t.true(['blue', 'red', 'web1', 'hv1', '0x11', '10.1.1.0/24'].every((n) => defaults.includes(n)), 'the list comes from two-zones.yaml');
  t.deepEqual(namesIn('VPCs blue and red share 10.1.1.0/24 | exec web1 ping -c3 10.1.2.12 [--dpid 0x11]', defaults).sort(), ['0x11', '10.1.1.0/24', '10.1.2.12', 'blue', 'red', 'web1'].sort(), 'the search finds them');
  t.deepEqual(namesIn(text, defaults), [], 'names from models/two-zones.yaml in the output');
  const ours = namesOf(model).filter((n) => model.vpcs.some((v) => v.name === n) || model.hypervisors.some((h) => h.name === n) || model.ports.some((p) => p.name === n));
  t.deepEqual(ours.filter((n) => !namesIn(text, [n]).length), [], 'every VPC, hypervisor and VM of the model appears');
  t.regex(text, /VPCs shop and lab share 10\.20\.1\.0\/24/);
});

test('the commands the demo prints for exploring work on this model', async (t) => {
  const commands = lines
    .filter((l) => / exec \S+ /.test(l))
    .flatMap((l) => l.split('|'))
    .filter((c) => c.includes(' exec '))
    .map((c) => c.trim().replace(/^(pings|a hypervisor)\s+/, '').split(/\s+/));
  t.is(commands.length, 2, 'a ping between two VMs and a flow dump on a hypervisor');
  for (const [python, ...args] of commands) {
    t.is(python, MININET_PYTHON);
    const { stdout } = await run(python!, args);
    if (args.includes('ping')) t.regex(stdout, / 0% packet loss/, args.join(' '));
    else t.regex(stdout, /cookie=0x/, args.join(' '));
  }
});

test('`npm run demo -- check` on the running demo: SLAAC (only checked, the RA\'s MTU kept), both matrices and the underlay again, PASS', async (t) => {
  const out: string[] = [];
  const again = await demoCheck({ ...opts, out: (line) => out.push(line) });
  t.log(out.filter((l) => /SLAAC: |matrix: |Verdict/.test(l)).join('\n'));
  t.true(again.ok, out.filter((l) => /MISMATCH|FAIL|differ/.test(l)).join('\n'));
  t.deepEqual(again.ipv6, { slaacOk: true, matrixOk: true });
  t.true(again.matrixOk);
});
