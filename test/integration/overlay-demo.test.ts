/**
 * `npm run demo` on the model users run (models/two-zones.yaml): the demo's own code
 * (scripts/overlay-demo.ts: demoUp, its checks and its output; scripts/demo-north-south.ts: the
 * outside; scripts/demo-lb.ts: the load balancers), brought up once for all the tests here and torn
 * down after them. The second model's overlay is tested in overlay-scenario.test.ts; the pickers on
 * both example models in test/scripts/overlay-demo.test.ts and demo-lb.test.ts.
 */
import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import { loadModelFile, type NetworkModel } from '../../src/model';
import { demoCheck, demoDown, demoUp, pickOverlap, pickRoutedCrossZone, type DemoOptions, type DemoResult } from '../../scripts/overlay-demo';
import { LB_REQUESTS, SPLIT_TOLERANCE, type AffinityResult, type SplitResult } from '../../scripts/demo-lb';
import { MININET_PYTHON, THREE_ZONES_MODEL, TWO_ZONES_MODEL } from '../helpers/overlay';
import { TEST_STATE_DIR, run } from '../helpers/run';

const model = loadModelFile(TWO_ZONES_MODEL);
const lines: string[] = [];
const opts: DemoOptions = { stateDir: join(TEST_STATE_DIR, 'overlay-demo'), prefix: 'zmd', out: (line) => lines.push(line) };
let demo: DemoResult | undefined;

test.before(async () => {
  demo = await demoUp(TWO_ZONES_MODEL, opts);
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

test("the demo's output names nothing of the other model, and this model's things", (t) => {
  const text = lines.join('\n');
  // 'metrics' is one of its subnets, and the label of the demo's metrics URL
  const others = namesOf(loadModelFile(THREE_ZONES_MODEL)).filter((n) => n !== 'metrics');
  t.true(['shop', 'lab', 'front1', 'n1', '0x21', '10.20.1.0/24'].every((n) => others.includes(n)), 'the list comes from three-zones.yaml');
  t.deepEqual(namesIn('VPCs shop and lab share 10.20.1.0/24 | exec front1 ping -c3 10.20.2.12 [--dpid 0x21]', others).sort(), ['0x21', '10.20.1.0/24', '10.20.2.12', 'front1', 'lab', 'shop'].sort(), 'the search finds them');
  t.deepEqual(namesIn(text, others), [], 'names from models/three-zones.yaml in the output');
  const ours = namesOf(model).filter((n) => model.vpcs.some((v) => v.name === n) || model.hypervisors.some((h) => h.name === n) || model.ports.some((p) => p.name === n));
  t.deepEqual(ours.filter((n) => !namesIn(text, [n]).length), [], 'every VPC, hypervisor and VM of the model appears');
  t.regex(text, /VPCs blue and red share 10\.1\.1\.0\/24/);
});

const zoneOf = (port: string) => model.hypervisors.find((h) => h.name === model.ports.find((p) => p.name === port)!.hypervisor)!.zone;
const loadBalancer = (name: string) => model.loadBalancers.find((lb) => lb.name === name)!;

/** Every backend of the VIP served some, each within ±20 % of its share, none failed, from a client in each zone. */
function assertSplit(t: ExecutionContext, split: SplitResult | undefined): void {
  if (!split) return void t.fail('no split measured');
  const backends = loadBalancer(split.lb).backends.map((b) => b.port);
  t.deepEqual(split.clients.map((c) => c.zone).sort(), [...new Set(model.hypervisors.map((h) => h.zone))].sort(), 'a client in each zone');
  t.deepEqual(split.clients.map((c) => c.failures), split.clients.map(() => 0), 'every request answered');
  t.deepEqual(Object.keys(split.served).sort(), [...backends].sort(), 'every backend served some, and only they');
  const share = (LB_REQUESTS * split.clients.length) / backends.length;
  for (const b of backends) t.true(Math.abs(split.served[b]! - share) <= SPLIT_TOLERANCE * share, `${b} served ${split.served[b]}: within ±20 % of ${share}`);
}

/** With zone affinity every request from each client answered in its zone. */
function assertAffinity(t: ExecutionContext, affinity: AffinityResult | undefined): void {
  if (!affinity) return void t.fail('no zone affinity measured');
  t.true(loadBalancer(affinity.lb).zoneAffinity);
  t.is(affinity.clients.length, 2, 'a client in each zone');
  for (const c of affinity.clients) {
    t.is(c.failures, 0);
    t.is(Object.values(c.served).reduce((a, b) => a + b, 0), LB_REQUESTS, `${c.client}: every request answered`);
    t.deepEqual(Object.keys(c.served).filter((b) => zoneOf(b) !== c.zone), [], `${c.client} (${c.zone}): answered in its zone only: ${JSON.stringify(c.served)}`);
  }
}

test("the load balancers: the split over both zones' backends within ±20 %, all in the client's zone with zone affinity, a stopped server out of rotation within interval × fall + 0.5 s with no request failing after that, back within interval × rise + 0.5 s", (t) => {
  const lb = demo!.lb;
  if (!lb) return t.fail('no load-balancer section');
  t.log(lb.verdicts.map((v) => `${v.status} ${v.what}`).join('\n'));
  t.deepEqual(lb.verdicts.map((v) => v.status), ['pass', 'pass', 'pass', 'pass'], 'backends in rotation, split, zone affinity, failover');
  assertSplit(t, lb.split);
  assertAffinity(t, lb.affinity);
  const f = lb.failover;
  if (!f) return t.fail('no failover measured');
  const check = loadBalancer(f.lb).healthCheck!;
  const [downBound, upBound] = [check.intervalSeconds * 1000 * check.fall + 500, check.intervalSeconds * 1000 * check.rise + 500];
  t.true(f.outOfRotationMs <= downBound, `out of rotation after ${f.outOfRotationMs} ms, within ${downBound} ms`);
  t.is(f.failedOutsideBound, 0, `no request failed later than ${downBound} ms after the stop (${f.failed} before, the last ${f.lastFailedMs} ms after)`);
  t.true(f.lastFailedMs <= downBound);
  t.deepEqual(Object.keys(f.servedMeanwhile).map(zoneOf), [zoneOf(loadBalancer(f.lb).backends.find((b) => b.port !== f.victim)!.port)], `meanwhile answered by the other zone's backend: ${JSON.stringify(f.servedMeanwhile)}`);
  t.true(f.backInMs <= upBound, `serving again ${f.backInMs} ms after its server listened, within ${upBound} ms`);
});

test('the commands the demo prints for exploring work on this model', async (t) => {
  const commands = lines
    .filter((l) => / exec \S+ /.test(l))
    .flatMap((l) => l.split('|'))
    .filter((c) => c.includes(' exec '))
    .map((c) => c.trim().replace(/^(pings|a hypervisor|outside)\s+/, '').split(/\s+/));
  t.is(commands.length, 4, 'a ping between two VMs, a flow dump on a hypervisor, a ping from the internet to a floating IP and a VM fetching from the internet');
  t.true(commands.some((c) => c.includes('internet') && c.includes('ping')) && commands.some((c) => c.includes('curl')));
  for (const [python, ...args] of commands) {
    t.is(python, MININET_PYTHON);
    const { stdout } = await run(python!, args);
    if (args.includes('ping')) t.regex(stdout, / 0% packet loss/, args.join(' '));
    else if (args.includes('curl')) t.regex(stdout, /^HTTP\/1\.[01] 200 /, args.join(' '));
    else t.regex(stdout, /cookie=0x/, args.join(' '));
  }
});

/** What models/two-zones.yaml says, written out: each VM's address outside and its zone's hypervisors (all gateways). */
const OUTSIDE = {
  egress: { web1: '198.51.100.10', web2: '198.51.100.74', app1: '198.51.100.20', app2: '198.51.100.84', db1: '198.51.100.84', red1: '198.51.100.21', red2: '198.51.100.85' },
  zones: { 'zone-a': ['hv1', 'hv2'], 'zone-b': ['hv3', 'hv4'] } as Record<string, string[]>,
};

test("north-south: from the internet, ping and HTTP reach web1 and web2 by their floating IPs; every VM leaves as its floating IP or its VPC's SNAT address in its zone; each VM's traffic stays in its zone", (t) => {
  const ns = demo!.northSouth;
  if (!ns) return t.fail('the demo has no north-south section');
  t.log(lines.slice(lines.findIndex((l) => l.startsWith('North-south')), lines.findIndex((l) => l.startsWith('  north-south: ')) + 1).join('\n'));
  t.deepEqual(
    ns.reach.map((r) => [r.ip, r.vm, `${r.ping.received}/${r.ping.sent}`, r.http.status, r.http.body]),
    [
      ['198.51.100.10', 'web1', '3/3', '200', 'web1'],
      ['198.51.100.74', 'web2', '3/3', '200', 'web2'],
    ],
    'each floating IP answers 3 pings, and its own VM serves the page',
  );
  t.deepEqual(Object.fromEntries(ns.egress.map((e) => [e.vm, e.seen])), OUTSIDE.egress, 'the addresses the internet server logged');
  t.deepEqual(ns.locality.map((l) => l.vm).sort(), Object.keys(OUTSIDE.egress).sort(), 'every VM has a locality verdict');
  for (const l of ns.locality) {
    const zone = OUTSIDE.zones[l.zone]!;
    t.deepEqual(l.stray, [], `${l.vm}: no frame outside ${l.zone}, none untranslated`);
    t.true(l.outbound > 0 && l.inbound > 0, `${l.vm}: both ways on the segment links (${l.outbound} out, ${l.inbound} in)`);
    t.true(l.segments.length > 0 && l.segments.every((hv) => zone.includes(hv)), `${l.vm}: by ${l.zone}'s gateways (${l.segments.join(', ')})`);
    t.true(l.tunnels.every((hop) => hop.split('->').every((hv) => zone.includes(hv))), `${l.vm}: tunnelled within ${l.zone} (${l.tunnels.join(', ')})`);
  }
  t.true(ns.ok);
  t.true(lines.some((l) => /^ {2}north-south: 2\/2 floating IPs reached from the internet, 7\/7 VMs out as the model says, 7\/7 VMs' north-south traffic in their own zone \(/.test(l)));
  t.true(lines.includes('    web1 blue/web@hv1 zone-a  seen as 198.51.100.10    expected 198.51.100.10 (its floating IP)  ok'));
});

test('`npm run demo -- check` on the running demo: SLAAC (only checked, the RA\'s MTU kept), both matrices, the underlay, north-south, the load balancers\' split and zone affinity again, PASS', async (t) => {
  const out: string[] = [];
  const again = await demoCheck({ ...opts, out: (line) => out.push(line) });
  t.log(out.filter((l) => /SLAAC: |matrix: |Verdict/.test(l)).join('\n'));
  t.true(again.ok, out.filter((l) => /MISMATCH|FAIL|differ/.test(l)).join('\n'));
  t.deepEqual(again.ipv6, { slaacOk: true, matrixOk: true });
  t.true(again.matrixOk);
  t.log(again.lb?.verdicts.map((v) => `${v.status} ${v.what}`).join('\n'));
  assertSplit(t, again.lb?.split);
  assertAffinity(t, again.lb?.affinity);
  t.is(again.lb?.failover, undefined, 'no failover in check');
  t.deepEqual(Object.fromEntries(again.northSouth?.egress.map((e) => [e.vm, e.seen]) ?? []), OUTSIDE.egress, 'north-south again');
  t.true(again.northSouth?.ok);
});
