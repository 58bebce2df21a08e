import test from 'ava';
import { arpReply, buildPacket, echoReply, EthType, gratuitousArp, IpProto, parsePacket, verifyChecksums } from '../../src/packet';
import type { LayerSpec } from '../../src/packet';
import { loadScapyVectors, sameBytes } from './helpers';

// Golden frames from scapy (fixtures/gen-scapy.py): an independent encoder for lengths and checksums.
const vectors = loadScapyVectors();

const BCAST = 'ff:ff:ff:ff:ff:ff';
const ZERO = '00:00:00:00:00:00';
const [M1, M2, M3, M4] = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03', '02:00:00:00:00:04'];
const [H1, H2, HM1, HM2] = ['172.16.1.11', '172.16.2.14', '0a:00:00:00:01:0b', '0a:00:00:00:02:0e'];
const hex = (s: string) => Buffer.from(s, 'hex');
const text = (s: string) => Buffer.from(s, 'latin1');

const innerArpRequest: LayerSpec[] = [
  { type: 'ethernet', dst: BCAST, src: M1 },
  { type: 'arp', op: 1, senderMac: M1, senderIp: '10.0.1.5', targetMac: ZERO, targetIp: '10.0.1.6' },
];
const quotedUdp = buildPacket([
  { type: 'ipv4', src: '10.0.1.5', dst: '10.0.9.9', ttl: 1, identification: 77 },
  { type: 'udp', srcPort: 33434, dstPort: 33435 },
  { type: 'raw', data: text('probe!') },
]);
const quotedUdp6 = buildPacket([
  { type: 'ipv6', src: 'fd00::5', dst: 'fd00::9' },
  { type: 'udp', srcPort: 7, dstPort: 9 },
  { type: 'raw', data: text('x') },
]);

/** The same frames as gen-scapy.py, written as our layer specs (scapy's IPv4 identification defaults to 1). */
const SPECS: Record<string, LayerSpec[]> = {
  'arp-request': innerArpRequest,
  'arp-reply': [
    { type: 'ethernet', dst: M1, src: M2 },
    { type: 'arp', op: 2, senderMac: M2, senderIp: '10.0.1.6', targetMac: M1, targetIp: '10.0.1.5' },
  ],
  'gratuitous-arp': [
    { type: 'ethernet', dst: BCAST, src: M3 },
    { type: 'arp', op: 1, senderMac: M3, senderIp: '10.0.1.1', targetMac: ZERO, targetIp: '10.0.1.1' },
  ],
  'gratuitous-arp-vlan': [
    { type: 'ethernet', dst: BCAST, src: M3 },
    { type: 'vlan', vid: 100 },
    { type: 'arp', op: 1, senderMac: M3, senderIp: '10.0.1.1', targetMac: ZERO, targetIp: '10.0.1.1' },
  ],
  'arp-padded': [{ type: 'ethernet', dst: BCAST, src: M1, padding: Buffer.alloc(18) }, innerArpRequest[1]!],
  'qinq-icmp-echo': [
    { type: 'ethernet', dst: M2, src: M1, ethType: EthType.QINQ },
    { type: 'vlan', vid: 10 },
    { type: 'vlan', vid: 20, pcp: 5, dei: true },
    { type: 'ipv4', src: '10.0.1.5', dst: '10.0.1.6', identification: 1 },
    { type: 'icmp', icmpType: 8 },
    { type: 'icmp-echo', identifier: 0x42, sequence: 1 },
    { type: 'raw', data: text('ping') },
  ],
  'ipv4-icmp-echo-request': [
    { type: 'ethernet', dst: M4, src: M1 },
    { type: 'ipv4', src: '10.0.1.5', dst: '10.0.1.1', ttl: 61, identification: 0x1234, dontFragment: true, dscp: 46 },
    { type: 'icmp', icmpType: 8 },
    { type: 'icmp-echo', identifier: 0x4242, sequence: 7 },
    { type: 'raw', data: text('abcdefghijklmnopqrstuvwxyz') },
  ],
  'ipv4-icmp-echo-reply': [
    { type: 'ethernet', dst: M1, src: M4 },
    { type: 'ipv4', src: '10.0.1.1', dst: '10.0.1.5', dscp: 46 },
    { type: 'icmp', icmpType: 0 },
    { type: 'icmp-echo', identifier: 0x4242, sequence: 7 },
    { type: 'raw', data: text('abcdefghijklmnopqrstuvwxyz') },
  ],
  'ipv4-icmp-time-exceeded': [
    { type: 'ethernet', dst: M1, src: M4 },
    { type: 'ipv4', src: '10.0.1.1', dst: '10.0.1.5', identification: 1 },
    { type: 'icmp', icmpType: 11, code: 0 },
    { type: 'raw', data: Buffer.concat([Buffer.alloc(4), quotedUdp]) },
  ],
  'ipv4-options-udp': [
    { type: 'ethernet', dst: M2, src: M1 },
    { type: 'ipv4', src: '10.0.1.5', dst: '10.0.1.6', ttl: 1, identification: 1, options: hex('94040000') },
    { type: 'udp', srcPort: 1234, dstPort: 5678 },
    { type: 'raw', data: text('hello') },
  ],
  'ipv4-udp-no-checksum': [
    { type: 'ethernet', dst: M2, src: M1 },
    { type: 'ipv4', src: '10.0.1.5', dst: '10.0.1.6', identification: 1 },
    { type: 'udp', srcPort: 53, dstPort: 5353, checksum: 0 },
    { type: 'raw', data: text('zero') },
  ],
  'ipv4-tcp-options': [
    { type: 'ethernet', dst: M2, src: M1 },
    { type: 'ipv4', src: '10.0.1.5', dst: '10.0.1.6', identification: 999 },
    { type: 'tcp', srcPort: 40000, dstPort: 443, seq: 0x01020304, ack: 0x0a0b0c0d, flags: 0x18, window: 501, options: hex('020405b401030307') },
    { type: 'raw', data: text('GET / HTTP/1.1\r\n\r\n') },
  ],
  'ipv4-tcp-odd-length': [
    { type: 'ethernet', dst: M2, src: M1 },
    { type: 'ipv4', src: '10.0.1.5', dst: '10.0.1.6', identification: 1 },
    { type: 'tcp', srcPort: 40001, dstPort: 80, seq: 1, flags: 0x02, window: 8192, urgentPointer: 3 },
    { type: 'raw', data: text('odd') },
  ],
  'ipv6-icmpv6-echo': [
    { type: 'ethernet', dst: M2, src: M1 },
    { type: 'ipv6', src: 'fd00::5', dst: 'fd00::6', hopLimit: 9, flowLabel: 0x12345, trafficClass: 0x20 },
    { type: 'icmpv6', icmpType: 128 },
    { type: 'icmp-echo', identifier: 0x1111, sequence: 2 },
    { type: 'raw', data: text('v6 ping data') },
  ],
  'ipv6-icmpv6-echo-reply': [
    { type: 'ethernet', dst: M1, src: M2 },
    { type: 'ipv6', src: 'fd00::6', dst: 'fd00::5', flowLabel: 0x12345, trafficClass: 0x20 },
    { type: 'icmpv6', icmpType: 129 },
    { type: 'icmp-echo', identifier: 0x1111, sequence: 2 },
    { type: 'raw', data: text('v6 ping data') },
  ],
  'ipv6-ns': [
    { type: 'ethernet', dst: '33:33:ff:00:00:06', src: M1 },
    { type: 'ipv6', src: 'fe80::5', dst: 'ff02::1:ff00:6', hopLimit: 255 },
    { type: 'icmpv6', icmpType: 135 },
    { type: 'ndp-ns', target: 'fd00::6', options: [{ type: 'source-lla', mac: M1 }] },
  ],
  'ipv6-ns-dad': [
    { type: 'ethernet', dst: '33:33:ff:00:00:05', src: M1 },
    { type: 'ipv6', src: '::', dst: 'ff02::1:ff00:5', hopLimit: 255 },
    { type: 'icmpv6', icmpType: 135 },
    { type: 'ndp-ns', target: 'fd00::5', options: [] },
  ],
  'ipv6-na': [
    { type: 'ethernet', dst: M1, src: M2 },
    { type: 'ipv6', src: 'fd00::6', dst: 'fe80::5', hopLimit: 255 },
    { type: 'icmpv6', icmpType: 136 },
    { type: 'ndp-na', router: false, solicited: true, override: true, target: 'fd00::6', options: [{ type: 'target-lla', mac: M2 }] },
  ],
  'ipv6-na-router-unsolicited': [
    { type: 'ethernet', dst: '33:33:00:00:00:01', src: M4 },
    { type: 'ipv6', src: 'fe80::1', dst: 'ff02::1', hopLimit: 255 },
    { type: 'icmpv6', icmpType: 136 },
    { type: 'ndp-na', router: true, solicited: false, override: true, target: 'fd00::1', options: [{ type: 'target-lla', mac: M4 }] },
  ],
  'ipv6-hbh-mld': [
    { type: 'ethernet', dst: '33:33:00:00:00:16', src: M1 },
    { type: 'ipv6', src: 'fe80::5', dst: 'ff02::16', hopLimit: 1 },
    { type: 'ipv6-ext', headerType: IpProto.HOP_BY_HOP, body: hex('050200000100') }, // router alert, PadN
    { type: 'icmpv6', icmpType: 143 },
    { type: 'raw', data: Buffer.alloc(4) },
  ],
  'ipv6-udp': [
    { type: 'ethernet', dst: M2, src: M1 },
    { type: 'ipv6', src: 'fd00::5', dst: 'fd00::6' },
    { type: 'udp', srcPort: 5000, dstPort: 53 },
    { type: 'raw', data: text('query') },
  ],
  'ipv6-tcp-syn': [
    { type: 'ethernet', dst: M2, src: M1 },
    { type: 'ipv6', src: 'fd00::5', dst: 'fd00::6' },
    { type: 'tcp', srcPort: 50000, dstPort: 22, seq: 123456789, flags: 0x02, window: 64800, options: hex('020405a0') },
  ],
  'ipv6-fragment': [
    { type: 'ethernet', dst: M2, src: M1 },
    { type: 'ipv6', src: 'fd00::5', dst: 'fd00::6' },
    { type: 'ipv6-ext', headerType: IpProto.IPV6_FRAGMENT, nextHeader: IpProto.UDP, body: hex('05c8deadbeef') }, // offset 185, M=0
    { type: 'raw', data: text('tail of a big datagram') },
  ],
  'ipv6-icmpv6-unreachable': [
    { type: 'ethernet', dst: M1, src: M4 },
    { type: 'ipv6', src: 'fd00::1', dst: 'fd00::5' },
    { type: 'icmpv6', icmpType: 1, code: 4 },
    { type: 'raw', data: Buffer.concat([Buffer.alloc(4), quotedUdp6]) },
  ],
  'lldp-raw': [
    { type: 'ethernet', dst: '01:80:c2:00:00:0e', src: M1, ethType: EthType.LLDP },
    { type: 'raw', data: hex('0207040200000000010403020001060200780000') },
  ],
  'vxlan-inner-arp': [
    { type: 'ethernet', dst: HM2, src: HM1 },
    { type: 'ipv4', src: H1, dst: H2, identification: 1, dontFragment: true },
    { type: 'udp', srcPort: 49152, dstPort: 4789 },
    { type: 'vxlan', vni: 5001 },
    ...innerArpRequest,
  ],
  'vxlan-ipv6-underlay-inner-vlan-arp': [
    { type: 'ethernet', dst: HM2, src: HM1 },
    { type: 'ipv6', src: 'fd16::11', dst: 'fd16::14' },
    { type: 'udp', srcPort: 51000, dstPort: 4789 },
    { type: 'vxlan', vni: 0xabcdef },
    { type: 'ethernet', dst: BCAST, src: M1 },
    { type: 'vlan', vid: 7 },
    innerArpRequest[1]!,
  ],
  'geneve-options-inner-arp': [
    { type: 'ethernet', dst: HM2, src: HM1 },
    { type: 'ipv4', src: H1, dst: H2, identification: 1 },
    { type: 'udp', srcPort: 60000, dstPort: 6081 },
    {
      type: 'geneve',
      vni: 0x000102,
      options: [
        { optionClass: 0x0102, optionType: 0x80, data: hex('00010002') },
        { optionClass: 0xffff, optionType: 0x05, data: hex('deadbeef00000001') },
      ],
    },
    ...innerArpRequest,
  ],
  'geneve-no-options-inner-arp': [
    { type: 'ethernet', dst: HM2, src: HM1 },
    { type: 'ipv4', src: H1, dst: H2, identification: 1 },
    { type: 'udp', srcPort: 60001, dstPort: 6081 },
    { type: 'geneve', vni: 7 },
    ...innerArpRequest,
  ],
  'geneve-ipv6-underlay-inner-ipv4': [
    { type: 'ethernet', dst: HM2, src: HM1 },
    { type: 'ipv6', src: 'fd16::11', dst: 'fd16::14' },
    { type: 'udp', srcPort: 60002, dstPort: 6081 },
    { type: 'geneve', vni: 99, oam: true },
    { type: 'ipv4', src: '10.0.1.5', dst: '10.0.2.7', ttl: 63, identification: 1 },
    { type: 'icmp', icmpType: 8 },
    { type: 'icmp-echo', identifier: 5, sequence: 9 },
    { type: 'raw', data: text('inner') },
  ],
};

test('every scapy vector has a spec and every spec a vector', (t) => {
  t.deepEqual([...vectors.keys()].sort(), Object.keys(SPECS).sort());
});

for (const [name, spec] of Object.entries(SPECS)) {
  test(`scapy ${name}: our builder writes scapy's bytes`, (t) => {
    const v = vectors.get(name);
    if (!v) return t.fail('no such vector');
    const diff = sameBytes(buildPacket(spec), v.bytes);
    t.is(diff, undefined, v.summary);
  });

  test(`scapy ${name}: parses to the spec, checksums verify, rebuilds byte for byte`, (t) => {
    const v = vectors.get(name);
    if (!v) return t.fail('no such vector');
    const parsed = parsePacket(v.bytes);
    t.deepEqual(
      parsed.layers.map((l) => l.type),
      spec.map((l) => l.type),
    );
    parsed.layers.forEach((layer, i) => {
      for (const [field, value] of Object.entries(spec[i]!)) t.deepEqual(layer[field as keyof typeof layer], value, `layer ${i} ${field}`);
    });
    const report = verifyChecksums(parsed);
    t.true(report.ok, JSON.stringify(report.checks));
    t.is(sameBytes(buildPacket(parsed.layers), v.bytes), undefined);
  });
}

test('gratuitousArp and arpReply build the frames scapy does', (t) => {
  t.is(sameBytes(gratuitousArp(M3, '10.0.1.1'), vectors.get('gratuitous-arp')!.bytes), undefined);
  t.is(sameBytes(gratuitousArp(M3, '10.0.1.1', 100), vectors.get('gratuitous-arp-vlan')!.bytes), undefined);
  const reply = arpReply({ senderMac: M2, senderIp: '10.0.1.6', targetMac: M1, targetIp: '10.0.1.5' });
  t.is(sameBytes(reply, vectors.get('arp-reply')!.bytes), undefined);
});

test('echoReply answers scapy echo requests with the replies scapy builds', (t) => {
  const v4 = echoReply(parsePacket(vectors.get('ipv4-icmp-echo-request')!.bytes));
  t.is(sameBytes(v4, vectors.get('ipv4-icmp-echo-reply')!.bytes), undefined);
  const v6 = echoReply(parsePacket(vectors.get('ipv6-icmpv6-echo')!.bytes));
  t.is(sameBytes(v6, vectors.get('ipv6-icmpv6-echo-reply')!.bytes), undefined);
});
