import test from 'ava';
import {
  documentOf,
  eui64InterfaceId,
  formatIpv6Address,
  hasIpv4,
  linkLocalAddress,
  parseIpv6Address,
  parseIpv6Cidr,
  portHasIpv4,
  portIpv6,
  routerLinkLocal,
  validateModel,
} from '../../src/model';
import { issuesOf, minimalModel } from '../helpers/model';

/** the minimal model, its subnet dual-stack with SLAAC, and a second port */
function dualStack() {
  const doc = minimalModel() as any;
  doc.vpcs[0].subnets[0].ipv6 = { prefix: '2001:db8:7::/64', slaac: true };
  doc.ports.push({ name: 'p2', vpc: 'v', subnet: 's', mac: '02:00:00:00:00:02', ip: '10.0.0.6', hypervisor: 'hv1' });
  return doc;
}

test('EUI-64 and link-local addresses follow RFC 4291 (the universal/local bit flipped, ff:fe inserted)', (t) => {
  t.is(eui64InterfaceId('00:11:22:33:44:55'), 0x021122fffe334455n);
  t.is(linkLocalAddress('00:11:22:33:44:55'), 'fe80::211:22ff:fe33:4455');
  t.is(linkLocalAddress('02:00:00:01:01:0b'), 'fe80::ff:fe01:10b');
});

test('IPv6 text parses to numbers and back in RFC 5952 form; CIDRs with host bits are refused', (t) => {
  t.is(formatIpv6Address(parseIpv6Address('2001:DB8:0:0:0:0:0:1')!), '2001:db8::1');
  t.is(parseIpv6Address('10.0.0.1'), undefined);
  t.is(parseIpv6Address('fe80::1%eth0'), undefined);
  t.deepEqual(parseIpv6Cidr('2001:db8:1::/64'), { network: 0x20010db8000100000000000000000000n, prefix: 64 });
  t.is(parseIpv6Cidr('2001:db8:1::1/64'), undefined);
  t.is(parseIpv6Cidr('2001:db8::/129'), undefined);
});

test('a dual-stack model is valid: SLAAC ports take EUI-64 in the prefix, given addresses stay, the router is link-local from its MAC', (t) => {
  const doc = dualStack();
  doc.ports[1].ipv6 = '2001:db8:7::66';
  const m = validateModel(doc, 'model.yaml');
  const subnet = m.subnets[0]!;
  t.deepEqual(subnet.ipv6, { prefix: '2001:db8:7::/64', slaac: true });
  t.is(portIpv6(m.ports[0]!, subnet), '2001:db8:7::ff:fe00:1');
  t.is(portIpv6(m.ports[1]!, subnet), '2001:db8:7::66');
  t.is(routerLinkLocal(subnet), linkLocalAddress(subnet.routerMac));
  t.true(routerLinkLocal(subnet).startsWith('fe80::'));
  // derived addresses are not written back: the document reads back to the same model
  t.deepEqual(validateModel(documentOf(m), 'again'), m);
  t.false('ipv6' in documentOf(m).ports[0]!);
});

test('an IPv4-only model stays as it was: no ipv6 field appears', (t) => {
  const m = validateModel(minimalModel(), 'model.yaml');
  t.false('ipv6' in m.subnets[0]!);
  t.false('ipv6' in m.ports[0]!);
  t.is(portIpv6(m.ports[0]!, m.subnets[0]!), undefined);
});

test('without SLAAC a port has only the address it is given, and the prefix may be other than /64', (t) => {
  const doc = dualStack();
  doc.vpcs[0].subnets[0].ipv6 = { prefix: '2001:db8:7::/112', slaac: false };
  doc.ports[1].ipv6 = '2001:db8:7::6';
  const m = validateModel(doc, 'model.yaml');
  t.is(portIpv6(m.ports[0]!, m.subnets[0]!), undefined);
  t.is(portIpv6(m.ports[1]!, m.subnets[0]!), '2001:db8:7::6');
});

test('IPv6 mistakes are reported with their model paths', (t) => {
  const doc = dualStack();
  doc.vpcs[0].subnets[0].ipv6 = { prefix: '2001:db8:7::/56', slaac: true, slack: 1 };
  doc.vpcs[0].subnets.push({ name: 's2', cidr: '10.0.1.0/24', gateway: '10.0.1.1', ipv6: { prefix: '2001:db8:7:1::/64' } });
  doc.vpcs[0].subnets.push({ name: 's3', cidr: '10.0.2.0/24', gateway: '10.0.2.1', ipv6: { prefix: '2001:db8:7::1/64' } });
  doc.vpcs[0].subnets.push({ name: 's4', cidr: '10.0.3.0/24', gateway: '10.0.3.1' });
  doc.ports[0].ipv6 = '2001:db8:8::5';
  doc.ports.push({ name: 'p3', vpc: 'v', subnet: 's4', mac: '02:00:00:00:00:03', ip: '10.0.3.6', hypervisor: 'hv1', ipv6: '2001:db8:9::1' });
  doc.ports.push({ name: 'p4', vpc: 'v', subnet: 's', mac: '02:00:00:00:00:04', ip: '10.0.0.7', hypervisor: 'hv1', ipv6: 'not-an-address' });
  const issues = issuesOf(doc);
  const expected = [
    'vpcs[0].subnets[0].ipv6.prefix: 2001:db8:7::/56 is a /56: SLAAC needs a /64',
    'vpcs[0].subnets[0].ipv6.slack: unknown key (known: prefix, slaac, dns)',
    'vpcs[0].subnets[1].ipv6.prefix: 2001:db8:7:1::/64 overlaps 2001:db8:7::/56 (vpcs[0].subnets[0]) in the same VPC',
    "vpcs[0].subnets[2].ipv6.prefix: '2001:db8:7::1/64' is not an IPv6 prefix with no host bits",
    'ports[0].ipv6: 2001:db8:8::5 is outside subnet s (2001:db8:7::/56)',
    'ports[2].ipv6: subnet s4 has no ipv6 prefix',
    "ports[3].ipv6: 'not-an-address' is not an IPv6 address",
  ];
  for (const e of expected) t.true(issues.includes(e), `${e}\nnot in:\n${issues.join('\n')}`);
});

test('ipv6.dns takes 1 to 8 unicast IPv6 addresses, kept in RFC 5952 text', (t) => {
  const doc = dualStack();
  doc.vpcs[0].subnets[0].ipv6.dns = ['FD00:53:0::0053', '2001:4860:4860::8888'];
  const model = validateModel(doc, 'model.yaml');
  t.deepEqual(model.subnets[0]!.ipv6!.dns, ['fd00:53::53', '2001:4860:4860::8888']);
  t.deepEqual(validateModel(documentOf(model), 'again').subnets[0]!.ipv6, model.subnets[0]!.ipv6, 'the document keeps them');
  for (const [dns, problem] of [
    [[], 'vpcs[0].subnets[0].ipv6.dns: must be a list of 1 to 8 IPv6 addresses'],
    [Array.from({ length: 9 }, (_, i) => `fd00::${i + 1}`), 'vpcs[0].subnets[0].ipv6.dns: must be a list of 1 to 8 IPv6 addresses'],
    ['fd00::53', 'vpcs[0].subnets[0].ipv6.dns: must be a list of 1 to 8 IPv6 addresses'],
    [['10.0.0.53'], "vpcs[0].subnets[0].ipv6.dns[0]: '10.0.0.53' is not an IPv6 address"],
    [['fe80::53'], 'vpcs[0].subnets[0].ipv6.dns[0]: fe80::53 is not a unicast address a VM can reach'],
    [['ff02::fb'], 'vpcs[0].subnets[0].ipv6.dns[0]: ff02::fb is not a unicast address a VM can reach'],
  ] as const) {
    const bad = dualStack();
    bad.vpcs[0].subnets[0].ipv6.dns = dns;
    t.deepEqual(issuesOf(bad), [problem]);
  }
});

test('two ports of a VPC with one IPv6 address are refused, a given address equal to another port\'s EUI-64 too', (t) => {
  const doc = dualStack();
  doc.ports[1].ipv6 = '2001:db8:7::ff:fe00:1'; // p1's SLAAC address
  t.deepEqual(issuesOf(doc), ['ports[1].ipv6: duplicate IPv6 address 2001:db8:7::ff:fe00:1 in the VPC (first at ports[0])']);
  // the same address in another VPC is fine: VPCs are isolated
  const other = dualStack();
  other.vpcs.push({ name: 'w', vni: 8, subnets: [{ name: 's', cidr: '10.0.0.0/24', gateway: '10.0.0.1', ipv6: { prefix: '2001:db8:7::/64' } }] });
  other.ports[1] = { ...other.ports[1], vpc: 'w', mac: '02:00:00:00:00:01' };
  t.deepEqual(issuesOf(other), []);
});

test('ACL rules take IPv6 CIDRs and icmp6, and refuse a protocol of the other family', (t) => {
  const doc = dualStack();
  doc.vpcs[0].acls = [
    { subnet: 's', direction: 'ingress', action: 'allow', protocol: 'icmp6', remote: { cidr: '2001:db8::/32' } },
    { subnet: 's', direction: 'egress', action: 'allow', protocol: 'tcp', ports: 443, remote: { cidr: '::/0' } },
    { subnet: 's', direction: 'ingress', action: 'allow', protocol: 'icmp6', remote: { cidr: '10.0.0.0/8' } },
    { subnet: 's', direction: 'ingress', action: 'allow', protocol: 'icmp', remote: { cidr: '2001:db8::/32' } },
    { subnet: 's', direction: 'ingress', action: 'allow', remote: { cidr: '2001:db8::1/32' } },
  ];
  t.deepEqual(issuesOf(doc), [
    'vpcs[0].acls[2].remote.cidr: 10.0.0.0/8 is IPv4: icmp6 needs an IPv6 CIDR',
    'vpcs[0].acls[3].remote.cidr: 2001:db8::/32 is IPv6: use protocol icmp6',
    "vpcs[0].acls[4].remote.cidr: '2001:db8::1/32' is not an IPv4 or IPv6 CIDR with no host bits",
  ]);
});

test('a rule without remote has none in the model (any address, both families), and none again in its document', (t) => {
  const doc = dualStack();
  doc.vpcs[0].acls = [{ name: 'anyone', subnet: 's', direction: 'ingress', action: 'allow', protocol: 'tcp', ports: 443 }];
  const m = validateModel(doc, 'm.yaml');
  t.false('remote' in m.acls[0]!);
  t.false('remote' in documentOf(m).vpcs[0]!.acls![0]!);
  t.deepEqual(validateModel(documentOf(m), 'again'), m);
});

/** the minimal model with a second, IPv6-only subnet `s6` (SLAAC) and its port p6 */
function withIpv6Only() {
  const doc = dualStack();
  doc.vpcs[0].subnets.push({ name: 's6', ipv6: { prefix: '2001:db8:6::/64' } });
  doc.ports.push({ name: 'p6', vpc: 'v', subnet: 's6', mac: '02:00:00:00:00:06', hypervisor: 'hv1' });
  return doc;
}

test('an IPv6-only subnet has no cidr or gateway, and its ports no ip: their address is SLAAC or given; the document reads back the same', (t) => {
  const doc = withIpv6Only();
  doc.vpcs[0].subnets.push({ name: 's7', ipv6: { prefix: '2001:db8:7:1::/112', slaac: false } });
  doc.ports.push({ name: 'p7', vpc: 'v', subnet: 's7', mac: '02:00:00:00:00:07', hypervisor: 'hv1', ipv6: '2001:db8:7:1::7' });
  const m = validateModel(doc, 'model.yaml');
  const [s6, s7] = [m.subnets[1]!, m.subnets[2]!];
  t.false(hasIpv4(s6));
  t.false('cidr' in s6 || 'gateway' in s6);
  t.true(hasIpv4(m.subnets[0]!));
  const [p6, p7] = [m.ports[2]!, m.ports[3]!];
  t.false(portHasIpv4(p6));
  t.false('ip' in p6);
  t.is(portIpv6(p6, s6), '2001:db8:6::ff:fe00:6');
  t.is(portIpv6(p7, s7), '2001:db8:7:1::7');
  t.deepEqual(validateModel(documentOf(m), 'again'), m);
});

test('IPv6-only mistakes name their paths: no family at all, half an IPv4 side, an ip on an IPv6-only port, a port with no address, DHCPv4 settings, IPv4 rules', (t) => {
  const doc = withIpv6Only();
  doc.vpcs[0].subnets.push({ name: 'none' }, { name: 'half', cidr: '10.0.9.0/24', ipv6: { prefix: '2001:db8:9::/64' } });
  doc.vpcs[0].subnets.push({ name: 'manual', ipv6: { prefix: '2001:db8:a::/64', slaac: false }, dns: ['10.0.0.53'] });
  doc.ports.push({ name: 'p8', vpc: 'v', subnet: 's6', mac: '02:00:00:00:00:08', ip: '10.0.0.8', hypervisor: 'hv1' });
  doc.ports.push({ name: 'p9', vpc: 'v', subnet: 'manual', mac: '02:00:00:00:00:09', hypervisor: 'hv1' });
  doc.vpcs[0].acls = [
    { subnet: 's6', direction: 'ingress', action: 'allow', protocol: 'icmp' },
    { subnet: 's6', direction: 'ingress', action: 'allow', remote: { cidr: '10.0.0.0/8' } },
    { subnet: 's6', direction: 'ingress', action: 'allow', protocol: 'icmp6', remote: { subnet: 's' } },
  ];
  t.deepEqual(issuesOf(doc).sort(), [
    'ports[3].ip: subnet s6 is IPv6-only (no cidr): a port of it has no IPv4 address',
    'ports[4].ipv6: is required: subnet manual is IPv6-only without SLAAC, so the port would have no address',
    'vpcs[0].acls[0].protocol: subnet s6 is IPv6-only: an IPv4 rule would never match (use icmp6)',
    'vpcs[0].acls[1].remote.cidr: 10.0.0.0/8 is IPv4: subnet s6 is IPv6-only: an IPv4 rule would never match',
    'vpcs[0].subnets[2]: needs an IPv4 cidr and gateway, an ipv6 prefix, or both',
    'vpcs[0].subnets[3].gateway: is required',
    'vpcs[0].subnets[4].dns: is a DHCPv4 setting, and this subnet is IPv6-only (no cidr): not supported',
  ]);
});

test('load balancers, floating IPs and SNAT are IPv4 only: on an IPv6-only subnet they are refused as not supported', (t) => {
  const doc = withIpv6Only();
  doc.vpcs[0].loadBalancers = [
    { name: 'lb6', subnet: 's6', vip: '10.0.0.100', ports: 80, backends: [{ port: 'p1' }] },
    { name: 'lb4', subnet: 's', vip: '10.0.0.101', ports: 80, backends: [{ port: 'p6' }] },
  ];
  doc.externalNetworks = [{ name: 'ext', zone: 'a', cidr: '198.51.100.0/28', nextHop: '198.51.100.1', gateways: [{ hypervisor: 'hv1', ip: '198.51.100.2' }] }];
  doc.floatingIps = [{ ip: '198.51.100.10', network: 'ext', port: 'p6' }];
  doc.vpcs[0].egress = { snat: [{ network: 'ext', ip: '198.51.100.11' }] };
  t.deepEqual(issuesOf(doc).sort(), [
    'floatingIps[0].port: port p6 has no IPv4 address (subnet s6 is IPv6-only): floating IPs are IPv4 only, IPv6 is not supported',
    'vpcs[0].egress: subnet s6 is IPv6-only: egress (SNAT) is IPv4 only, a VPC with an IPv6-only subnet cannot have it yet',
    'vpcs[0].loadBalancers[0].subnet: subnet s6 is IPv6-only: load balancers are IPv4 only, an IPv6 VIP is not supported',
    'vpcs[0].loadBalancers[1].backends[0].port: port p6 has no IPv4 address (subnet s6 is IPv6-only): load balancers are IPv4 only, an IPv6 backend is not supported',
  ]);
});
