/**
 * The demo's pair pickers and model text (scripts/overlay-demo.ts), without OVS: on both example
 * models every pick is what the model says it must be, and a model that offers no such pair gets
 * a "skipped" reason instead of a pick that would fail.
 */
import test from 'ava';
import { parse } from 'yaml';
import { loadModelFile, validateModel, type NetworkModel, type VmPort } from '../../src/model';
import { pickArpPairs, pickDeniedPairs, pickOverlap, pickRoutedCrossZone, sharedAddressSpace, type Picked } from '../../scripts/overlay-demo';
import { THREE_ZONES_MODEL, TWO_ZONES_MODEL, aclDecision, allowed, modelPort, type Proto } from '../helpers/overlay';
import { ipv4Only } from '../apps/helpers';

const MODELS = { 'two-zones': loadModelFile(TWO_ZONES_MODEL), 'three-zones': loadModelFile(THREE_ZONES_MODEL) };

function picked<T>(p: Picked<T>): T {
  if ('skipped' in p) throw new Error(`expected a pick, got ${p.skipped}`);
  return p.pick;
}

const zone = (m: NetworkModel, p: VmPort) => m.hypervisors.find((h) => h.name === p.hypervisor)!.zone;
const mayPing = (m: NetworkModel, a: string, b: string) => allowed(m, modelPort(m, a), modelPort(m, b), 'icmp');

for (const [name, model] of Object.entries(MODELS)) {
  test(`${name}: the routed cross-zone pair is one VPC, two tiers, two zones, and the model lets it ping`, (t) => {
    const [a, b] = picked(pickRoutedCrossZone(model));
    t.is(a.vpc, b.vpc);
    t.not(a.subnet, b.subnet);
    t.not(zone(model, a), zone(model, b));
    t.true(mayPing(model, a.name, b.name));
  });

  test(`${name}: the no-ARP pairs are every allowed same-VPC pair across hypervisors, the denied pairs every denied one`, (t) => {
    const arp = picked(pickArpPairs(model));
    const denied = picked(pickDeniedPairs(model));
    const key = (p: { src: string; dst: string }) => `${p.src}>${p.dst}`;
    const all = model.ports.flatMap((a) => model.ports.filter((b) => b.vpc === a.vpc && b.hypervisor !== a.hypervisor).map((b) => ({ src: a.name, dst: b.name })));
    t.deepEqual([...arp, ...denied].map(key).sort(), all.map(key).sort(), 'together they are all same-VPC pairs across hypervisors');
    for (const p of arp) t.true(mayPing(model, p.src, p.dst), key(p));
    for (const p of denied) t.false(mayPing(model, p.src, p.dst), key(p));
  });

  test(`${name}: the VPCs-apart probe pings an address two VPCs use, along a path the model allows`, (t) => {
    const { from, owner, other } = picked(pickOverlap(model));
    t.is(owner.vpc, from.vpc);
    t.not(other.vpc, from.vpc);
    t.is(owner.ip, other.ip);
    t.not(owner.hypervisor, from.hypervisor, 'the ping crosses a tunnel');
    t.true(mayPing(model, from.name, owner.name));
    t.true(other.hypervisor !== from.hypervisor && other.hypervisor !== owner.hypervisor, 'the other VPC\'s VM is on a third hypervisor, where a leak would show');
  });
}

test('the text names the shared CIDR and IPv6 prefix of the model in use', (t) => {
  t.is(sharedAddressSpace(MODELS['two-zones']), 'VPCs blue and red share 10.1.1.0/24');
  t.is(sharedAddressSpace(MODELS['three-zones']), 'VPCs shop and lab share 10.20.1.0/24');
  t.is(sharedAddressSpace(MODELS['two-zones'], 6), 'VPCs blue and red share fd00:1:1::/64');
  t.is(sharedAddressSpace(MODELS['three-zones'], 6), 'VPCs shop and lab share fd00:20:1::/64');
  t.is(sharedAddressSpace(ipv4Only(MODELS['three-zones']), 6), 'no two VPCs share IPv6 addresses');
});

test('three-zones: first match wins in either direction, CIDR remotes and port-scoped rules count', (t) => {
  const m = MODELS['three-zones'];
  const decide = (a: string, b: string, proto: Proto = 'icmp', port?: number) => {
    const d = aclDecision(m, modelPort(m, a), modelPort(m, b), proto, port);
    return `${d.allowed ? 'allow' : 'deny'} ${d.by === 'rule' ? d.rule.name : d.by}`;
  };
  t.is(decide('front1', 'api1'), 'allow front-to-api-ping');
  t.is(decide('front2', 'api1'), 'deny front2-retired', 'the earlier egress deny beats the ingress allow');
  t.is(decide('front2', 'api1', 'tcp', 8443), 'deny front2-retired');
  t.is(decide('front1', 'api1', 'tcp', 8443), 'allow front-to-api-https');
  t.is(decide('api1', 'store1'), 'allow api-to-store');
  t.is(decide('api2', 'store1'), 'deny store-refuses-api2', 'a /32 remote singles out api2');
  t.is(decide('console1', 'metrics1'), 'allow console-pings-metrics', 'an egress allow suffices');
  t.is(decide('metrics1', 'console1'), 'deny no-rule');
  t.is(decide('front1', 'front2'), 'allow same-tier');
  t.is(decide('lab1', 'front1'), 'deny other-vpc');
  const denied = picked(pickDeniedPairs(m)).map((p) => `${p.src}>${p.dst}`);
  t.true(denied.includes('front2>api1') && denied.includes('api2>store1') && !denied.includes('console1>metrics1'));
  // IPv6: tier rules guard both families, a CIDR remote only its own
  t.is(decide('front1', 'api1', 'icmp6'), 'allow front-to-api-ping6');
  t.is(decide('front2', 'api1', 'icmp6'), 'deny front2-retired');
  t.is(decide('api1', 'store1', 'icmp6'), 'allow api-to-store');
  t.is(decide('api2', 'store1', 'icmp6'), 'deny store-refuses-api2-v6', "a /128 remote singles out api2's EUI-64 address; the IPv4 /32 does not match IPv6");
  t.is(decide('console1', 'metrics1', 'icmp6'), 'allow console-pings-metrics-v6');
  t.is(decide('metrics1', 'console1', 'icmp6'), 'deny no-rule');
});

/**
 * Two VPCs reuse 10.0.2.11, but in VPC one it is tier y's, and tier x may not reach tier y: no
 * ping reaches a shared address, and none crosses tiers or (being denied) can serve ARP.
 */
const NO_ALLOWED_OVERLAP = `
zones: [{ name: za, underlay: 172.30.1.0/24 }, { name: zb, underlay: 172.30.2.0/24 }]
hypervisors:
  - { name: h1, zone: za, tunnelIp: 172.30.1.1 }
  - { name: h2, zone: zb, tunnelIp: 172.30.2.1 }
  - { name: h3, zone: zb, tunnelIp: 172.30.2.2 }
vpcs:
  - name: one
    vni: 1
    subnets: [{ name: x, cidr: 10.0.1.0/24, gateway: 10.0.1.1 }, { name: y, cidr: 10.0.2.0/24, gateway: 10.0.2.1 }]
    acls: []
  - name: two
    vni: 2
    subnets: [{ name: z, cidr: 10.0.2.0/24, gateway: 10.0.2.1 }]
ports:
  - { name: a1, vpc: one, subnet: x, mac: "02:00:00:00:01:01", ip: 10.0.1.11, hypervisor: h1 }
  - { name: a2, vpc: one, subnet: y, mac: "02:00:00:00:01:02", ip: 10.0.2.11, hypervisor: h2 }
  - { name: b1, vpc: two, subnet: z, mac: "02:00:00:00:02:01", ip: 10.0.2.11, hypervisor: h3 }
`;

test('a model with no pair for a check gets "skipped", not a pick the model denies', (t) => {
  const m = validateModel(parse(NO_ALLOWED_OVERLAP), 'no-allowed-overlap');
  t.deepEqual(pickOverlap(m), { skipped: 'skipped: no pair of VPCs shares an address with an allowed path' });
  t.regex((pickRoutedCrossZone(m) as { skipped: string }).skipped, /^skipped: /);
  t.regex((pickArpPairs(m) as { skipped: string }).skipped, /^skipped: /);
  t.deepEqual(picked(pickDeniedPairs(m)), [{ src: 'a1', dst: 'a2' }, { src: 'a2', dst: 'a1' }]);
  t.is(sharedAddressSpace(m), 'VPCs one and two share 10.0.2.0/24');

  // the same model once a rule lets x ping y: now the shared address is reached along an allowed path
  const doc = parse(NO_ALLOWED_OVERLAP);
  doc.vpcs[0].acls = [{ name: 'x-pings-y', subnet: 'y', direction: 'ingress', action: 'allow', protocol: 'icmp', remote: { subnet: 'x' } }];
  const ruled = validateModel(doc, 'with-rule');
  const probe = picked(pickOverlap(ruled));
  t.deepEqual([probe.from.name, probe.owner.name, probe.other.name], ['a1', 'a2', 'b1']);
  t.deepEqual(picked(pickDeniedPairs(ruled)), [{ src: 'a2', dst: 'a1' }], 'y may still not open a ping to x');

  // and once y may ping x too, nothing is denied: that check has no pair either
  doc.vpcs[0].acls.push({ name: 'y-pings-x', subnet: 'x', direction: 'ingress', action: 'allow', protocol: 'icmp', remote: { subnet: 'y' } });
  t.deepEqual(pickDeniedPairs(validateModel(doc, 'all-allowed')), { skipped: 'skipped: the ACLs deny no ping between two VMs of one VPC on different hypervisors' });
});
