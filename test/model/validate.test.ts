import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelValidationError, documentOf, entriesOf, loadModelFile, routerMac, validateModel } from '../../src/model';
import { issuesOf, minimalModel } from '../helpers/model';
import { REPO_ROOT } from '../helpers/paths';
import { tempDir } from '../helpers/run';

const DEFAULT_MODEL = join(REPO_ROOT, 'models', 'two-zones.yaml');

test('the default demo model is valid and has the advertised layout', (t) => {
  const m = loadModelFile(DEFAULT_MODEL);
  t.is(m.zones.length, 2);
  t.is(m.hypervisors.length, 4);
  t.deepEqual(m.vpcs.map((v) => v.name), ['blue', 'red']);
  t.is(m.subnets.filter((s) => s.vpc === 'blue').length, 3);
  t.is(m.hypervisors[0]!.datapathId, 0x11n);
  // overlapping CIDRs across VPCs are legal
  t.truthy(m.subnets.find((s) => s.vpc === 'red' && s.cidr === '10.1.1.0/24'));
});

test('router MACs are derived from names: stable, unicast, locally administered, distinct per subnet', (t) => {
  const a = routerMac('blue', 'web');
  t.is(a, routerMac('blue', 'web'));
  t.not(a, routerMac('red', 'web'));
  const first = parseInt(a.slice(0, 2), 16);
  t.is(first & 1, 0);
  t.is(first & 2, 2);
});

test('a valid minimal model passes', (t) => {
  t.deepEqual(issuesOf(minimalModel()), []);
});

test('errors name the path and the problem, all of them at once', (t) => {
  const doc = minimalModel();
  doc.ports[0]!.ip = '10.9.9.9';
  doc.ports[0]!.hypervisor = 'nowhere';
  doc.vpcs[0]!.subnets.push({ name: 's2', cidr: '10.0.0.128/25', gateway: '10.0.0.129' });
  const issues = issuesOf(doc);
  t.true(issues.includes('ports[0].ip: 10.9.9.9 is outside subnet s (10.0.0.0/24)'), issues.join('\n'));
  t.true(issues.includes("ports[0].hypervisor: unknown hypervisor 'nowhere'"));
  t.true(issues.some((i) => i.startsWith('vpcs[0].subnets[1].cidr: 10.0.0.128/25 overlaps 10.0.0.0/24')));
});

test('bad values are rejected with what was expected', (t) => {
  const doc = minimalModel() as any;
  doc.ports[0].mac = 'zz';
  doc.vpcs[0].vni = 0;
  doc.hypervisors[0].tunnelIp = '10.0.0.1';
  doc.vpcs[0].acls = [{ subnet: 's', direction: 'sideways', action: 'allow', protocol: 'icmp', ports: 80 }];
  const issues = issuesOf(doc);
  t.true(issues.includes("ports[0].mac: 'zz' is not a lower-case MAC address"));
  t.true(issues.includes('vpcs[0].vni: must be an integer in 1..16777215'));
  t.true(issues.includes("hypervisors[0].tunnelIp: 10.0.0.1 is outside zone a's underlay 172.16.1.0/24"));
  t.true(issues.includes('vpcs[0].acls[0].direction: must be one of ingress, egress'));
  t.true(issues.includes('vpcs[0].acls[0].ports: ports need protocol tcp or udp, not icmp'));
});

test('duplicate IPs in one VPC are rejected', (t) => {
  const doc = minimalModel();
  doc.ports.push({ ...doc.ports[0]!, name: 'p2', mac: '02:00:00:00:00:02' });
  t.true(issuesOf(doc).includes("ports[1].ip: duplicate IP in the VPC 'v/10.0.0.5' (first at ports[0].ip)"));
});

test('syntax errors and missing files name the file', (t) => {
  const dir = tempDir(t, 'zm-model-');
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'zones: [\n');
  const e = t.throws(() => loadModelFile(bad), { instanceOf: ModelValidationError });
  t.is(e?.source, bad);
  t.is(e?.issues[0]?.path, '(syntax)');
  const missing = t.throws(() => loadModelFile(join(dir, 'none.yaml')), { instanceOf: ModelValidationError });
  t.regex(missing?.message ?? '', /none\.yaml: \(file\): cannot read: ENOENT/);
});

test('addresses, prefixes and datapath ids out of range are refused, not passed on to fail every sync', (t) => {
  const doc = minimalModel() as any;
  doc.ports[0].ip = '10.1.2.300';
  doc.vpcs[0].subnets[0].gateway = '10.0.0.256';
  doc.hypervisors[0].tunnelIp = '172.16.1.011';
  doc.zones[0].underlay = '172.16.1.0/33';
  doc.hypervisors.push({ name: 'hv2', zone: 'a', tunnelIp: '172.16.1.12', datapathId: '18446744073709551616' });
  doc.vpcs[0].acls = [{ subnet: 's', direction: 'ingress', action: 'allow', remote: { cidr: '10.0.0.0/40' } }];
  const issues = issuesOf(doc);
  t.true(issues.includes("ports[0].ip: '10.1.2.300' is not an IPv4 address"), issues.join('\n'));
  t.true(issues.includes("vpcs[0].subnets[0].gateway: '10.0.0.256' is not an IPv4 address"));
  t.true(issues.includes("hypervisors[0].tunnelIp: '172.16.1.011' is not an IPv4 address"));
  t.true(issues.includes("zones[0].underlay: '172.16.1.0/33' is not an IPv4 CIDR with no host bits"));
  t.true(issues.includes('hypervisors[1].datapathId: must be a 64-bit number or a hex string such as "0x1a"'));
  t.true(issues.includes("vpcs[0].acls[0].remote.cidr: '10.0.0.0/40' is not an IPv4 or IPv6 CIDR with no host bits"));
  const max = minimalModel();
  max.hypervisors[0]!.datapathId = '0xffffffffffffffff';
  t.deepEqual(issuesOf(max), []);
});

test('unknown keys are refused, with the key meant when one is near', (t) => {
  const doc = minimalModel() as any;
  doc.hypervisors[0].datapathID = doc.hypervisors[0].datapathId;
  delete doc.hypervisors[0].datapathId;
  doc.vpcs[0].subnets[0].gatway = '10.0.0.1';
  doc.vpcs[0].acls = [{ subnet: 's', direction: 'ingress', action: 'allow', remote: { cidr: '10.0.0.0/8', port: 80 } }];
  doc.port = [];
  doc.ports[0].colour = 'blue';
  const issues = issuesOf(doc);
  t.true(issues.includes('hypervisors[0].datapathID: unknown key; did you mean datapathId?'), issues.join('\n'));
  t.true(issues.includes('vpcs[0].subnets[0].gatway: unknown key; did you mean gateway?'));
  t.true(issues.includes('vpcs[0].acls[0].remote.port: unknown key (known: subnet, cidr)'));
  t.true(issues.includes('port: unknown key; did you mean ports?'));
  t.true(issues.includes('ports[0].colour: unknown key (known: name, vpc, subnet, ip, hypervisor, ofport, tunnelKey, ipv6, interface, mac)'));

  const everyKey = minimalModel() as any;
  Object.assign(everyKey.hypervisors[0], { bridge: 'br-x', ovsdb: 'unix:/run/db.sock' });
  Object.assign(everyKey.ports[0], { interface: 'tap1', ofport: 7, tunnelKey: 9 });
  everyKey.vpcs[0].subnets[0].tunnelKey = 0x8000_0009;
  everyKey.vpcs[0].acls = [
    { name: 'a', subnet: 's', port: 'p1', direction: 'ingress', action: 'allow', protocol: 'tcp', ports: '80-90', remote: { cidr: '10.9.0.0/16' } },
    { subnet: 's', direction: 'egress', action: 'deny', remote: { subnet: 's' } },
  ];
  t.deepEqual(issuesOf(everyKey), [], 'every key the model has, optional ones included, is known');
});

test("a subnet's DHCP settings (dns, domain, leaseTime, routes) are optional, checked, and kept", (t) => {
  const doc = minimalModel() as any;
  Object.assign(doc.vpcs[0].subnets[0], { dns: ['10.0.0.2', '8.8.8.8'], domain: 'corp.example', leaseTime: 3600, routes: [{ cidr: '192.168.0.0/16', via: '10.0.0.254' }] });
  t.like(validateModel(doc, 'model.yaml').subnets[0], { dns: ['10.0.0.2', '8.8.8.8'], domain: 'corp.example', leaseTime: 3600, routes: [{ cidr: '192.168.0.0/16', via: '10.0.0.254' }] });
  t.false('dns' in validateModel(minimalModel(), 'model.yaml').subnets[0]!, 'absent settings stay absent');

  Object.assign(doc.vpcs[0].subnets[0], {
    dns: ['10.0.0.2', 'ns1'],
    domain: 'bad_domain!',
    leaseTime: 10,
    routes: [{ cidr: '192.168.0.1/16', via: '10.9.9.9' }, { cidr: '172.16.0.0/12', gw: '10.0.0.254' }],
  });
  t.deepEqual(issuesOf(doc), [
    "vpcs[0].subnets[0].dns[1]: 'ns1' is not an IPv4 address",
    "vpcs[0].subnets[0].domain: 'bad_domain!' is not a DNS domain name",
    'vpcs[0].subnets[0].leaseTime: must be an integer in 60..31536000',
    "vpcs[0].subnets[0].routes[0].cidr: '192.168.0.1/16' is not an IPv4 CIDR with no host bits",
    'vpcs[0].subnets[0].routes[0].via: 10.9.9.9 is not on the subnet: a next hop must be reachable directly',
    'vpcs[0].subnets[0].routes[1].via: is required',
    'vpcs[0].subnets[0].routes[1].gw: unknown key (known: cidr, via)',
  ]);
  doc.vpcs[0].subnets[0] = { name: 's', cidr: '10.0.0.0/24', gateway: '10.0.0.1', dns: [], leaseTim: 60 };
  t.deepEqual(issuesOf(doc), ['vpcs[0].subnets[0].dns: must be a list of 1 to 63 IPv4 addresses', 'vpcs[0].subnets[0].leaseTim: unknown key; did you mean leaseTime?']);
});

/** minimalModel with a second port in v, a VPC w reusing v's CIDR with port q1, and a load balancer in v */
function lbModel(lb: Record<string, unknown> = {}) {
  const doc = minimalModel() as any;
  doc.vpcs.push({ name: 'w', vni: 8, subnets: [{ name: 's', cidr: '10.0.0.0/24', gateway: '10.0.0.1' }] });
  doc.ports.push({ name: 'p2', vpc: 'v', subnet: 's', mac: '02:00:00:00:00:02', ip: '10.0.0.6', hypervisor: 'hv1' });
  doc.ports.push({ name: 'q1', vpc: 'w', subnet: 's', mac: '02:00:00:00:00:03', ip: '10.0.0.100', hypervisor: 'hv1' });
  doc.vpcs[0].loadBalancers = [{ name: 'web', subnet: 's', vip: '10.0.0.100', ports: 80, backends: [{ port: 'p1', targetPort: 8080 }, { port: 'p2', weight: 3 }], ...lb }];
  return doc;
}

test('a load balancer is kept with its defaults: tcp, weight 1, health check timings, no affinity', (t) => {
  const doc = lbModel({ healthCheck: { type: 'http', path: '/healthz' }, sessionAffinity: { timeoutSeconds: 300 }, zoneAffinity: true });
  const m = validateModel(doc, 'model.yaml');
  t.deepEqual(m.loadBalancers, [
    {
      name: 'web',
      vpc: 'v',
      subnet: 's',
      vip: '10.0.0.100',
      protocol: 'tcp',
      ports: [80],
      backends: [{ port: 'p1', targetPort: 8080, weight: 1 }, { port: 'p2', weight: 3 }],
      healthCheck: { type: 'http', intervalSeconds: 5, timeoutSeconds: 3, rise: 2, fall: 3, path: '/healthz', expectStatus: 200 },
      zoneAffinity: true,
      sessionAffinity: { timeoutSeconds: 300 },
    },
  ]);
  t.deepEqual(validateModel(minimalModel(), 'model.yaml').loadBalancers, []);
  // the same VIP in another VPC (overlapping CIDRs) is its own load balancer, and q1's address there is no clash
  const twin = lbModel();
  twin.vpcs[1].loadBalancers = [{ name: 'web', subnet: 's', vip: '10.0.0.101', ports: [80], backends: [{ port: 'q1' }] }];
  t.deepEqual(issuesOf(twin), []);
});

test('health check timings in whole or fractional seconds, to the millisecond: existing whole-second files read as before', (t) => {
  const timings = (healthCheck: Record<string, unknown>) => validateModel(lbModel({ healthCheck: { type: 'tcp', ...healthCheck } }), 'model.yaml').loadBalancers[0]!.healthCheck;
  t.like(timings({ intervalSeconds: 2, timeoutSeconds: 1 }), { intervalSeconds: 2, timeoutSeconds: 1 });
  t.like(timings({ intervalSeconds: 1, timeoutSeconds: 0.3 }), { intervalSeconds: 1, timeoutSeconds: 0.3 });
  t.like(timings({ intervalSeconds: 0.5, timeoutSeconds: 0.125 }), { intervalSeconds: 0.5, timeoutSeconds: 0.125 });
  t.like(timings({ intervalSeconds: 0.4 }), { intervalSeconds: 0.4, timeoutSeconds: 0.4 }, 'the default timeout is at most the interval');
  const m = validateModel(lbModel({ healthCheck: { type: 'tcp', intervalSeconds: 1.5, timeoutSeconds: 0.25 } }), 'model.yaml');
  t.deepEqual(validateModel(JSON.parse(JSON.stringify(documentOf(m))), 'again.yaml'), m, 'fractional seconds survive the document');
  const problems = (healthCheck: Record<string, unknown>) => issuesOf(lbModel({ healthCheck: { type: 'tcp', ...healthCheck } }));
  t.deepEqual(problems({ intervalSeconds: 1, timeoutSeconds: 0.0005 }), ['vpcs[0].loadBalancers[0].healthCheck.timeoutSeconds: must be a number of seconds in 0.05..3600, to the millisecond']);
  t.deepEqual(problems({ intervalSeconds: 1, timeoutSeconds: 0.3001 }), ['vpcs[0].loadBalancers[0].healthCheck.timeoutSeconds: must be a number of seconds in 0.05..3600, to the millisecond']);
  t.deepEqual(problems({ intervalSeconds: 0.05 }), ['vpcs[0].loadBalancers[0].healthCheck.intervalSeconds: must be a number of seconds in 0.1..3600, to the millisecond']);
  t.deepEqual(problems({ intervalSeconds: '1s' }), ['vpcs[0].loadBalancers[0].healthCheck.intervalSeconds: must be a number of seconds in 0.1..3600, to the millisecond']);
  t.deepEqual(problems({ intervalSeconds: 0.5, timeoutSeconds: 0.75 }), ['vpcs[0].loadBalancers[0].healthCheck.timeoutSeconds: 0.75 s is longer than the interval (0.5 s): checks would overlap']);
});

test('bad load balancers are refused whole, each problem at its path', (t) => {
  const issuesFor = (lb: Record<string, unknown>, edit?: (doc: any) => void) => {
    const doc = lbModel(lb);
    edit?.(doc);
    return issuesOf(doc);
  };
  const has = (issues: string[], expected: string) => t.true(issues.includes(expected), `${expected}\nnot in:\n${issues.join('\n')}`);
  has(issuesFor({ vip: '10.9.0.100' }), 'vpcs[0].loadBalancers[0].vip: 10.9.0.100 is outside subnet s (10.0.0.0/24)');
  has(issuesFor({ vip: '10.0.0.1' }), 'vpcs[0].loadBalancers[0].vip: 10.0.0.1 is the gateway of s');
  has(issuesFor({ vip: '10.0.0.6' }), 'vpcs[0].loadBalancers[0].vip: 10.0.0.6 is the address of port p2 in VPC v');
  has(issuesFor({ backends: [{ port: 'p1' }, { port: 'q1' }] }), 'vpcs[0].loadBalancers[0].backends[1].port: port q1 is in VPC w, not in v: backends must be in the load balancer\'s VPC');
  has(issuesFor({ backends: [{ port: 'nope' }] }), "vpcs[0].loadBalancers[0].backends[0].port: unknown port 'nope'");
  has(issuesFor({ backends: [{ port: 'p1', weight: 0 }, { port: 'p2', weight: 0 }] }), 'vpcs[0].loadBalancers[0].backends: every backend has weight 0: the VIP could serve nobody');
  has(issuesFor({ backends: [] }), 'vpcs[0].loadBalancers[0].backends: must name at least one backend');
  has(issuesFor({ backends: [{ port: 'p1' }, { port: 'p1' }] }), "vpcs[0].loadBalancers[0].backends[1].port: duplicate backend 'p1' (first at vpcs[0].loadBalancers[0].backends[0].port)");
  has(issuesFor({ protocol: 'sctp' }), 'vpcs[0].loadBalancers[0].protocol: must be one of tcp, udp');
  has(issuesFor({ ports: [80, 0] }), 'vpcs[0].loadBalancers[0].ports: must be a port or a list of 1 to 64 ports in 1..65535');
  has(issuesFor({ subnet: 'x' }), "vpcs[0].loadBalancers[0].subnet: unknown subnet 'x' in VPC v");
  has(issuesFor({ healthCheck: { type: 'tcp', intervalSeconds: 2, timeoutSeconds: 5, path: '/' } }), 'vpcs[0].loadBalancers[0].healthCheck.timeoutSeconds: 5 s is longer than the interval (2 s): checks would overlap');
  has(issuesFor({ healthCheck: { type: 'tcp', path: '/' } }), 'vpcs[0].loadBalancers[0].healthCheck.path: is for type http, not tcp');
  has(issuesFor({ healthCheck: { type: 'http', intervall: 5 } }), "vpcs[0].loadBalancers[0].healthCheck.intervall: unknown key (known: type, intervalSeconds, timeoutSeconds, path, expectStatus, rise, fall)");
  has(issuesFor({ sessionAffinity: { timeoutSeconds: 0 } }), 'vpcs[0].loadBalancers[0].sessionAffinity.timeoutSeconds: must be an integer in 1..86400');
  has(issuesFor({ zoneAffinity: 'yes' }), 'vpcs[0].loadBalancers[0].zoneAffinity: must be true or false');
  has(
    issuesFor({}, (doc) => doc.vpcs[0].loadBalancers.push({ name: 'web2', subnet: 's', vip: '10.0.0.100', ports: [443, 80], backends: [{ port: 'p1' }] })),
    'vpcs[0].loadBalancers[1].ports: 10.0.0.100 tcp port 80 is already served by vpcs[0].loadBalancers[0]',
  );
});

test("load balancers survive the model's document (what the etcd store writes) and its etcd entries", (t) => {
  const m = validateModel(lbModel({ healthCheck: { type: 'tcp', intervalSeconds: 1, timeoutSeconds: 1, fall: 2 }, zoneAffinity: true }), 'model.yaml');
  const doc = documentOf(m);
  t.deepEqual(validateModel(JSON.parse(JSON.stringify(doc)), 'again.yaml'), m);
  const entries = [...entriesOf(m, '1').entries()];
  const lbEntries = entries.filter(([key]) => key.includes('/loadBalancers/v/'));
  t.deepEqual(lbEntries.map(([, value]) => JSON.parse(value)), doc.vpcs[0]!.loadBalancers, 'each load balancer in a key of its own');
  t.is(JSON.parse(entries.find(([key]) => key.endsWith('/vpcs/v'))![1]).loadBalancers, undefined, 'not inside its VPC');
});
