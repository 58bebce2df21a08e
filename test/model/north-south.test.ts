import test from 'ava';
import { join } from 'node:path';
import { documentOf, entriesOf, floatingIpMac, loadModelFile, parseStoredValue, validateModel, validatedEntries } from '../../src/model';
import { issuesOf, minimalModel } from '../helpers/model';
import { REPO_ROOT } from '../helpers/paths';

const NORTH_SOUTH = join(REPO_ROOT, 'models', 'north-south.yaml');

/** the minimal model with a second hypervisor in another zone, an external network and a VPC egress */
function withExternal(change: (doc: any) => void = () => {}) {
  const doc: any = minimalModel();
  doc.zones.push({ name: 'b', underlay: '172.16.2.0/24' });
  doc.hypervisors.push({ name: 'hv2', zone: 'b', tunnelIp: '172.16.2.12', datapathId: '0x12' });
  doc.externalNetworks = [{ name: 'ext', zone: 'a', cidr: '198.51.100.0/28', nextHop: '198.51.100.1', gateways: [{ hypervisor: 'hv1', ip: '198.51.100.2' }] }];
  doc.floatingIps = [{ ip: '198.51.100.10', network: 'ext', port: 'p1' }];
  doc.vpcs[0].egress = { snat: [{ network: 'ext', ip: '198.51.100.5' }] };
  change(doc);
  return doc;
}

test('the north-south example model is valid: networks, bindings, SNAT and default routes', (t) => {
  const m = loadModelFile(NORTH_SOUTH);
  t.deepEqual(m.externalNetworks.map((e) => [e.name, e.zone, e.gateways.map((g) => g.hypervisor)]), [
    ['ext-a', 'zone-a', ['hv1', 'hv2']],
    ['ext-b', 'zone-b', ['hv3', 'hv4']],
  ]);
  t.deepEqual(m.floatingIps.map((f) => [f.ip, f.port]), [['198.51.100.10', 'web1'], ['198.51.100.74', 'web2'], ['198.51.100.11', undefined]]);
  t.deepEqual(m.egress.find((e) => e.vpc === 'blue')!.routes, ['0.0.0.0/0']);
  t.deepEqual(m.egress.find((e) => e.vpc === 'red')!.routes, ['192.0.2.0/24']);
  t.is(m.egress.find((e) => e.vpc === 'red')!.snat.length, 2);
});

test('a model without north-south objects stays valid and has none', (t) => {
  const m = validateModel(minimalModel(), 'model.yaml');
  t.deepEqual([m.externalNetworks, m.floatingIps, m.egress], [[], [], []]);
});

test('the model document of a north-south model validates back to the same model', (t) => {
  const m = loadModelFile(NORTH_SOUTH);
  t.deepEqual(validateModel(JSON.parse(JSON.stringify(documentOf(m))), 'again'), m);
});

test("a floating IP's MAC is derived from its address: stable, unicast, locally administered", (t) => {
  const m = validateModel(withExternal(), 'model.yaml');
  t.is(m.floatingIps[0]!.mac, floatingIpMac('198.51.100.10'));
  t.not(floatingIpMac('198.51.100.10'), floatingIpMac('198.51.100.11'));
  const first = parseInt(m.floatingIps[0]!.mac.slice(0, 2), 16);
  t.is(first & 3, 2);
});

test('rebinding a floating IP is changing its port', (t) => {
  const m = validateModel(
    withExternal((d) => {
      d.ports.push({ name: 'p2', vpc: 'v', subnet: 's', mac: '02:00:00:00:00:02', ip: '10.0.0.6', hypervisor: 'hv1' });
      d.floatingIps[0].port = 'p2';
    }),
    'model.yaml',
  );
  t.is(m.floatingIps[0]!.port, 'p2');
});

test('an address outside its external network, or on its next hop, is named with its path', (t) => {
  const issues = issuesOf(
    withExternal((d) => {
      d.floatingIps[0].ip = '203.0.113.10';
      d.externalNetworks[0].gateways[0].ip = '198.51.100.1';
      d.vpcs[0].egress.snat[0].ip = '198.51.100.99';
      d.externalNetworks[0].nextHop = '198.51.100.1';
    }),
  );
  t.deepEqual(issues, [
    'externalNetworks[0].gateways[0].ip: 198.51.100.1 is the next hop of external network ext',
    'floatingIps[0].ip: 203.0.113.10 is outside external network ext (198.51.100.0/28)',
    'vpcs[0].egress.snat[0].ip: 198.51.100.99 is outside external network ext (198.51.100.0/28)',
  ]);
});

test('a floating IP bound twice, or a port with two floating IPs, is an error', (t) => {
  const twice = issuesOf(withExternal((d) => d.floatingIps.push({ ip: '198.51.100.10', network: 'ext' })));
  t.deepEqual(twice, ['floatingIps[1]: external address 198.51.100.10 is already floatingIps[0]\'s']);
  const samePort = issuesOf(withExternal((d) => d.floatingIps.push({ ip: '198.51.100.11', network: 'ext', port: 'p1' })));
  t.deepEqual(samePort, ['floatingIps[1].port: p1 is already bound to floating IP 198.51.100.10 (floatingIps[0]): a port has one floating IP']);
});

test('a gateway in the wrong zone or that is no hypervisor is an error', (t) => {
  const issues = issuesOf(
    withExternal((d) => {
      d.externalNetworks[0].gateways.push({ hypervisor: 'hv2', ip: '198.51.100.3' }, { hypervisor: 'router9', ip: '198.51.100.4' });
    }),
  );
  t.deepEqual(issues, [
    'externalNetworks[0].gateways[1].hypervisor: hv2 is in zone b, not a: a gateway serves its own zone only',
    "externalNetworks[0].gateways[2].hypervisor: 'router9' is not a hypervisor of the model",
  ]);
});

test('SNAT addresses clash with each other and with floating IPs and gateways', (t) => {
  const issues = issuesOf(
    withExternal((d) => {
      d.vpcs.push({ name: 'w', vni: 8, subnets: [{ name: 's', cidr: '10.0.0.0/24', gateway: '10.0.0.1' }], egress: { snat: [{ network: 'ext', ip: '198.51.100.5' }] } });
      d.vpcs[0].egress.snat.push({ network: 'ext', ip: '198.51.100.10' });
    }),
  );
  t.deepEqual(issues, [
    "vpcs[0].egress.snat[1]: external address 198.51.100.10 is already floatingIps[0]'s",
    'vpcs[0].egress.snat[1].network: duplicate SNAT network (one address per VPC and network) \'ext\' (first at vpcs[0].egress.snat[0].network)',
    "vpcs[1].egress.snat[0]: external address 198.51.100.5 is already vpcs[0].egress.snat[0]'s",
  ]);
});

test('unknown networks, ports and zones without a way out are errors; typos in keys are caught', (t) => {
  const issues = issuesOf(
    withExternal((d) => {
      d.floatingIps.push({ ip: '198.51.100.12', network: 'nope' });
      d.floatingIps.push({ ip: '198.51.100.13', network: 'ext', port: 'ghost' });
      d.ports.push({ name: 'p9', vpc: 'v', subnet: 's', mac: '02:00:00:00:00:09', ip: '10.0.0.9', hypervisor: 'hv2' });
      d.floatingIps.push({ ip: '198.51.100.14', network: 'ext', port: 'p9' });
      d.vpcs[0].egress.rotues = ['0.0.0.0/0'];
      d.externalNetworks.push({ name: 'ext2', zone: 'a', cidr: '198.51.100.8/29', nextHop: '198.51.100.9', gateways: [] });
    }),
  );
  t.deepEqual(issues, [
    'externalNetworks[1].gateways: needs at least one gateway hypervisor',
    'externalNetworks[1].cidr: 198.51.100.8/29 overlaps 198.51.100.0/28 (externalNetworks[0])',
    "floatingIps[1].network: unknown external network 'nope'",
    "floatingIps[2].port: unknown port 'ghost'",
    'floatingIps[3].port: p9 is in zone b, which has no external network to reach it through',
    'vpcs[0].egress.rotues: unknown key; did you mean routes?',
  ]);
});

test("the etcd store's keys of a north-south model validate back to the same model", (t) => {
  const model = loadModelFile(NORTH_SOUTH);
  const entries = [...entriesOf(model, 'g1')].map(([k, v]) => [k, parseStoredValue(Buffer.from(v))] as const);
  const back = validatedEntries(entries, 'g1').model;
  t.deepEqual(back.externalNetworks, model.externalNetworks);
  const byIp = (fs: typeof model.floatingIps) => [...fs].sort((a, b) => (a.ip < b.ip ? -1 : 1));
  t.deepEqual(back.floatingIps, byIp(model.floatingIps), 'in key order');
  t.deepEqual(back.egress, model.egress);
});

test("a gateway's segment port is named after its network unless it says; a bad name or next-hop MAC is an error", (t) => {
  const m = validateModel(withExternal((d) => (d.externalNetworks[0].nextHopMac = '02:ed:9e:00:00:0a')), 'model.yaml');
  t.is(m.externalNetworks[0]!.gateways[0]!.interface, 'ext');
  t.is(m.externalNetworks[0]!.nextHopMac, '02:ed:9e:00:00:0a');
  const issues = issuesOf(
    withExternal((d) => {
      d.externalNetworks[0].nextHopMac = '02:ED:9E:00:00';
      d.externalNetworks[0].gateways[0].interface = 'p1';
    }),
  );
  t.deepEqual(issues, ["externalNetworks[0].nextHopMac: '02:ED:9E:00:00' is not a lower-case MAC address", "externalNetworks[0].gateways[0].interface: interface 'p1' on hv1 is port p1's"]);
  const long = issuesOf(withExternal((d) => (d.externalNetworks[0].name = 'a-very-long-network')));
  t.true(long.includes("externalNetworks[0].gateways[0].hypervisor: interface name 'a-very-long-network' is longer than 15 bytes (it defaults to the network's name)"), long.join('\n'));
});
