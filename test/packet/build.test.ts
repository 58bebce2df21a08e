import test from 'ava';
import {
  buildPacket,
  echoReply,
  ethernetHeader,
  EthType,
  findLayer,
  gratuitousArp,
  IcmpType,
  Icmpv6Type,
  internetChecksum,
  PacketBuildError,
  PacketParseError,
  parsePacket,
  verifyChecksums,
} from '../../src/packet';
import type { EthernetHeader, EthernetLayer, LayerSpec, ParsedPacket, VlanLayer } from '../../src/packet';
import { loadKernelFrames, loadScapyVectors } from './helpers';

const M1 = '02:00:00:00:00:01';
const M2 = '02:00:00:00:00:02';
const eth: LayerSpec = { type: 'ethernet', dst: M2, src: M1 };
const ipv4: LayerSpec = { type: 'ipv4', src: '10.0.0.1', dst: '10.0.0.2' };

function buildError(t: import('ava').ExecutionContext, layers: LayerSpec[], layer: string, field?: string): void {
  const error = t.throws(() => buildPacket(layers), { instanceOf: PacketBuildError });
  t.like(error, { layer, field });
}

test('next fields are inferred from the following layer and may be given', (t) => {
  const frame = buildPacket([
    eth,
    { type: 'vlan', vid: 3 },
    { type: 'ipv6', src: '::1', dst: '::2' },
    { type: 'ipv6-ext', headerType: 60, body: Buffer.alloc(6) },
  ]);
  const p = parsePacket(frame);
  t.like(p.layers[0], { ethType: EthType.VLAN });
  t.like(p.layers[1], { ethType: EthType.IPV6 });
  t.like(p.layers[2], { nextHeader: 60 });
  t.like(p.layers[3], { nextHeader: 59 }, 'nothing follows: no next header');
  const lldp = parsePacket(buildPacket([{ ...eth, ethType: EthType.LLDP }, { type: 'raw', data: Buffer.from([1, 2]) }]));
  t.like(lldp.layers[0], { ethType: EthType.LLDP });
});

test('a next field that cannot be inferred must be given', (t) => {
  buildError(t, [eth, { type: 'raw', data: Buffer.alloc(4) }], 'ethernet', 'ethType');
  buildError(t, [eth, ipv4, { type: 'raw', data: Buffer.alloc(4) }], 'ipv4', 'protocol');
  buildError(t, [eth, ipv4], 'ipv4', 'protocol');
});

test('out-of-range fields and malformed addresses are PacketBuildErrors naming the field', (t) => {
  buildError(t, [{ ...eth, dst: 'not-a-mac' }, { type: 'raw', data: Buffer.alloc(1) }], 'ethernet', 'dst');
  buildError(t, [eth, { type: 'vlan', vid: 4096, ethType: 0x88b5 }], 'vlan', 'vid');
  buildError(t, [eth, { ...ipv4, src: '10.0.0.256' }, { type: 'udp', srcPort: 1, dstPort: 2 }], 'ipv4', 'src');
  buildError(t, [eth, { ...ipv4, ttl: 256 }, { type: 'udp', srcPort: 1, dstPort: 2 }], 'ipv4', 'ttl');
  buildError(t, [eth, { ...ipv4, options: Buffer.alloc(3) }, { type: 'udp', srcPort: 1, dstPort: 2 }], 'ipv4', 'options');
  buildError(t, [eth, ipv4, { type: 'tcp', srcPort: 1.5, dstPort: 2 }], 'tcp', 'srcPort');
  buildError(t, [eth, ipv4, { type: 'tcp', srcPort: 1, dstPort: 2, options: Buffer.alloc(2) }], 'tcp', 'options');
  buildError(t, [eth, { type: 'ipv6', src: 'fd00::1', dst: 'fd00:::2' }], 'ipv6', 'dst');
  buildError(t, [eth, { type: 'ipv6', src: '::1', dst: '::2' }, { type: 'ipv6-ext', headerType: 0, body: Buffer.alloc(5) }], 'ipv6-ext', 'body');
  const udp = (dstPort: number): LayerSpec => ({ type: 'udp', srcPort: 1, dstPort });
  const badOption = { optionClass: 1, optionType: 1, data: Buffer.alloc(3) };
  buildError(t, [eth, ipv4, udp(6081), { type: 'geneve', vni: 1, protocolType: 0x6558, options: [badOption] }], 'geneve', 'options.data');
  buildError(t, [eth, ipv4, udp(4789), { type: 'vxlan', vni: 1 << 24 }, eth, ipv4, udp(2)], 'vxlan', 'vni');
});

test('lengths that overflow their field, and a transport checksum without an IP layer', (t) => {
  buildError(t, [eth, ipv4, { type: 'udp', srcPort: 1, dstPort: 2 }, { type: 'raw', data: Buffer.alloc(70000) }], 'ipv4', 'totalLength');
  const ipv6: LayerSpec = { type: 'ipv6', src: '::1', dst: '::2' };
  buildError(t, [eth, ipv6, { type: 'udp', srcPort: 1, dstPort: 2 }, { type: 'raw', data: Buffer.alloc(65530) }], 'ipv6', 'payloadLength');
  buildError(t, [{ type: 'udp', srcPort: 1, dstPort: 2 }, { type: 'raw', data: Buffer.alloc(65530) }], 'udp', 'length');
  buildError(t, [{ type: 'udp', srcPort: 1, dstPort: 2 }], 'udp');
});

test('a UDP checksum that computes to zero is sent as 0xffff', (t) => {
  const spec = (word: number): LayerSpec[] => [
    eth,
    ipv4,
    { type: 'udp', srcPort: 7, dstPort: 9 },
    { type: 'raw', data: Buffer.from([word >> 8, word & 0xff]) },
  ];
  // adding a word to the sum lowers the checksum by as much: a word equal to the checksum brings it to zero
  const zeroWordChecksum = findLayer(parsePacket(buildPacket(spec(0))), 'udp')!.checksum;
  const p = parsePacket(buildPacket(spec(zeroWordChecksum)));
  t.is(findLayer(p, 'udp')!.checksum, 0xffff);
  t.true(verifyChecksums(p).ok);
});

test('internetChecksum: RFC 1071 worked example, and odd lengths pad with zero', (t) => {
  t.is(internetChecksum(Buffer.from('0001f203f4f5f6f7', 'hex')), ~0xddf2 & 0xffff);
  t.is(internetChecksum(Buffer.from('ab', 'hex')), internetChecksum(Buffer.from('ab00', 'hex')));
});

test('ethernetHeader agrees with parsePacket on every fixture frame', (t) => {
  const frames = [...loadKernelFrames(), ...[...loadScapyVectors().values()].map((v) => v.bytes)];
  for (const frame of frames) {
    const head = ethernetHeader(frame);
    const p = parsePacket(frame);
    const ethernet = p.layers[0] as EthernetLayer;
    let tags = 0;
    while (p.layers[1 + tags]?.type === 'vlan') tags++;
    const innermostTag = p.layers[tags] as VlanLayer;
    t.like(head, {
      dst: ethernet.dst,
      src: ethernet.src,
      ethType: tags ? innermostTag.ethType : ethernet.ethType,
      vlan: tags ? (p.layers[1] as VlanLayer).vid : undefined,
      payloadOffset: 14 + 4 * tags,
    });
  }
});

test('ethernetHeader: tagged, double-tagged and too-short frames', (t) => {
  const qinq = buildPacket([
    { ...eth, ethType: EthType.QINQ },
    { type: 'vlan', vid: 10 },
    { type: 'vlan', vid: 20 },
    ipv4,
    { type: 'udp', srcPort: 1, dstPort: 2 },
  ]);
  const fields = (h: EthernetHeader) => ({ dst: h.dst, src: h.src, ethType: h.ethType, vlan: h.vlan, payloadOffset: h.payloadOffset });
  t.deepEqual(fields(ethernetHeader(qinq)), { dst: M2, src: M1, ethType: EthType.IPV4, vlan: 10, payloadOffset: 22 });
  const untagged = ethernetHeader(gratuitousArp(M1, '10.0.0.1'));
  t.deepEqual(fields(untagged), { dst: 'ff:ff:ff:ff:ff:ff', src: M1, ethType: EthType.ARP, vlan: undefined, payloadOffset: 14 });
  t.throws(() => ethernetHeader(qinq.subarray(0, 20)), { instanceOf: PacketParseError });
  t.throws(() => ethernetHeader(Buffer.alloc(10)), { instanceOf: PacketParseError });
});

test("echoReply answers the kernel's pings as the kernel itself did", (t) => {
  const plain = loadKernelFrames()
    .map((f) => parsePacket(f))
    .filter((p) => !findLayer(p, 'vxlan'));
  const echo = (p: ParsedPacket) => {
    const body = findLayer(p, 'icmp-echo');
    const icmp = findLayer(p, 'icmp') ?? findLayer(p, 'icmpv6');
    if (!body || !icmp) return undefined;
    const request = icmp.icmpType === IcmpType.ECHO_REQUEST || icmp.icmpType === Icmpv6Type.ECHO_REQUEST;
    return { request, key: `${icmp.type} ${body.identifier}/${body.sequence}` };
  };
  const kernelReplies = new Map(plain.filter((p) => echo(p)?.request === false).map((p) => [echo(p)!.key, p]));
  const requests = plain.filter((p) => echo(p)?.request);
  t.true(requests.length >= 5, `${requests.length} pings`);
  const ip = (p: ParsedPacket) => (findLayer(p, 'ipv4') ?? findLayer(p, 'ipv6'))!;
  // everything above IP, checksums included, must match; of IP, the addresses
  const aboveIp = (p: ParsedPacket) => p.layers.filter((l) => l.type !== 'ipv4' && l.type !== 'ipv6');
  for (const request of requests) {
    const ours = parsePacket(echoReply(request));
    const kernel = kernelReplies.get(echo(request)!.key)!;
    t.deepEqual(aboveIp(ours), aboveIp(kernel));
    t.like(ip(ours), { src: ip(kernel).src, dst: ip(kernel).dst });
    t.true(verifyChecksums(ours).ok);
  }
});

test('echoReply refuses what is not an echo request', (t) => {
  const reply = parsePacket(loadScapyVectors().get('ipv4-icmp-echo-reply')!.bytes);
  t.throws(() => echoReply(reply), { instanceOf: PacketBuildError });
  t.throws(() => echoReply(parsePacket(gratuitousArp(M1, '10.0.0.1'))), { instanceOf: PacketBuildError });
});
