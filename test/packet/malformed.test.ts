import test from 'ava';
import fc from 'fast-check';
import { deepStrictEqual } from 'node:assert';
import { buildPacket, parsePacket, PacketParseError, tryParsePacket } from '../../src/packet';
import type { Layer, LayerSpec, PacketParseErrorKind, ParsedPacket } from '../../src/packet';
import { loadKernelFrames, loadScapyVectors } from './helpers';

const M1 = '02:00:00:00:00:01';
const M2 = '02:00:00:00:00:02';
const eth: LayerSpec = { type: 'ethernet', dst: M2, src: M1 };
const ipv4: LayerSpec = { type: 'ipv4', src: '10.0.0.1', dst: '10.0.0.2' };
const ipv6: LayerSpec = { type: 'ipv6', src: 'fd00::1', dst: 'fd00::2' };
const innerArp: LayerSpec[] = [
  { type: 'ethernet', dst: 'ff:ff:ff:ff:ff:ff', src: M1 },
  { type: 'arp', op: 1, senderMac: M1, senderIp: '10.0.0.1', targetMac: '00:00:00:00:00:00', targetIp: '10.0.0.2' },
];

/** A copy of `frame` with bytes written at `at`. */
function patched(frame: Buffer, at: number, ...bytes: number[]): Buffer {
  const copy = Buffer.from(frame);
  bytes.forEach((b, i) => (copy[at + i] = b));
  return copy;
}

function expectError(t: import('ava').ExecutionContext, frame: Buffer, kind: PacketParseErrorKind, layer: Layer['type'], offset: number): void {
  const result = tryParsePacket(frame);
  if (result.ok) return t.fail(`parsed: ${result.packet.layers.map((l) => l.type).join('/')}`);
  t.like(result.error, { kind, layer, offset }, result.error.message);
  t.true(result.error instanceof PacketParseError);
}

const udpOverIpv4 = buildPacket([eth, ipv4, { type: 'udp', srcPort: 1, dstPort: 2 }, { type: 'raw', data: Buffer.from('data') }]);
const vxlanFrame = buildPacket([eth, ipv4, { type: 'udp', srcPort: 1, dstPort: 4789 }, { type: 'vxlan', vni: 1 }, ...innerArp]);
const geneveOpts = buildPacket([
  eth,
  ipv4,
  { type: 'udp', srcPort: 1, dstPort: 6081 },
  { type: 'geneve', vni: 1, options: [{ optionClass: 1, optionType: 1, data: Buffer.alloc(4) }] },
  ...innerArp,
]);
const GENEVE_AT = 14 + 20 + 8;

test('frames too short for their Ethernet header or VLAN tag', (t) => {
  expectError(t, Buffer.alloc(0), 'truncated', 'ethernet', 0);
  expectError(t, Buffer.alloc(13), 'truncated', 'ethernet', 0);
  expectError(t, buildPacket([eth, { type: 'vlan', vid: 5 }, { type: 'vlan', vid: 6, ethType: 0x88b5 }]).subarray(0, 20), 'truncated', 'vlan', 18);
});

test('ARP cut short', (t) => {
  const arp = buildPacket(innerArp);
  expectError(t, arp.subarray(0, 30), 'truncated', 'arp', 14);
});

test('IPv4: wrong version, IHL below 5, total length below the header or past the frame, options cut', (t) => {
  expectError(t, patched(udpOverIpv4, 14, 0x65), 'bad_value', 'ipv4', 14);
  expectError(t, patched(udpOverIpv4, 14, 0x44), 'bad_value', 'ipv4', 14);
  expectError(t, patched(udpOverIpv4, 16, 0, 19), 'bad_length', 'ipv4', 16);
  expectError(t, patched(udpOverIpv4, 16, 0, 200), 'truncated', 'ipv4', 14);
  expectError(t, patched(udpOverIpv4, 14, 0x4f).subarray(0, 40), 'truncated', 'ipv4', 14);
});

test('UDP length that disagrees with the IP payload', (t) => {
  expectError(t, patched(udpOverIpv4, 14 + 20 + 4, 0, 11), 'bad_length', 'udp', 38);
  expectError(t, patched(udpOverIpv4, 14 + 20 + 4, 0, 13), 'bad_length', 'udp', 38);
});

test('TCP data offset below 5 or past the segment', (t) => {
  const tcp = buildPacket([eth, ipv4, { type: 'tcp', srcPort: 1, dstPort: 2 }]);
  expectError(t, patched(tcp, 14 + 20 + 12, 0x40), 'bad_value', 'tcp', 46);
  expectError(t, patched(tcp, 14 + 20 + 12, 0x60), 'truncated', 'tcp', 34);
});

test('IPv6: wrong version, payload length past the frame, extension header past the payload', (t) => {
  const v6 = buildPacket([eth, ipv6, { type: 'ipv6-ext', headerType: 60, body: Buffer.alloc(6) }, { type: 'udp', srcPort: 1, dstPort: 2 }]);
  expectError(t, patched(v6, 14, 0x40), 'bad_value', 'ipv6', 14);
  expectError(t, patched(v6, 18, 0, 99), 'truncated', 'ipv6', 14);
  expectError(t, patched(v6, 55, 3), 'truncated', 'ipv6-ext', 54);
});

test('ICMP echo and neighbour discovery cut short, NDP option of length 0', (t) => {
  const echo = buildPacket([eth, ipv4, { type: 'icmp', icmpType: 8 }, { type: 'raw', data: Buffer.alloc(2) }]);
  expectError(t, echo, 'truncated', 'icmp-echo', 38);
  const options = [{ type: 'source-lla' as const, mac: M1 }];
  const ns = buildPacket([eth, ipv6, { type: 'icmpv6', icmpType: 135 }, { type: 'ndp-ns', target: 'fd00::2', options }]);
  expectError(t, patched(ns, 14 + 40 + 4 + 20 + 1, 0), 'bad_length', 'ndp-ns', 79);
  expectError(t, patched(ns, 14 + 40 + 4 + 20 + 1, 2), 'truncated', 'ndp-ns', 78);
  const naShort = buildPacket([eth, ipv6, { type: 'icmpv6', icmpType: 136 }, { type: 'raw', data: Buffer.alloc(10) }]);
  expectError(t, naShort, 'truncated', 'ndp-na', 58);
});

test('VXLAN header or its inner frame cut short', (t) => {
  const shortVxlan = buildPacket([eth, ipv4, { type: 'udp', srcPort: 1, dstPort: 4789 }, { type: 'raw', data: Buffer.alloc(4) }]);
  expectError(t, shortVxlan, 'truncated', 'vxlan', 42);
  const noInner = buildPacket([
    eth,
    ipv4,
    { type: 'udp', srcPort: 1, dstPort: 4789 },
    { type: 'vxlan', vni: 1 },
    { type: 'raw', data: Buffer.alloc(10) },
  ]);
  expectError(t, noInner, 'truncated', 'ethernet', 50);
  t.true(tryParsePacket(vxlanFrame).ok);
});

test('Geneve: wrong version, options past the packet, an option past the options length, IP payload with trailing bytes', (t) => {
  expectError(t, patched(geneveOpts, GENEVE_AT, 0x41), 'bad_value', 'geneve', GENEVE_AT);
  const shortOptions = buildPacket([eth, ipv4, { type: 'udp', srcPort: 1, dstPort: 6081 }, { type: 'geneve', vni: 1, protocolType: 0x6558 }]);
  expectError(t, patched(shortOptions, GENEVE_AT, 0x02), 'truncated', 'geneve', GENEVE_AT);
  expectError(t, patched(geneveOpts, GENEVE_AT + 8 + 3, 2), 'bad_length', 'geneve', GENEVE_AT + 8 + 3);
  const innerIp = buildPacket([
    eth,
    ipv4,
    { type: 'udp', srcPort: 1, dstPort: 6081 },
    { type: 'geneve', vni: 1, protocolType: 0x0800 },
    { type: 'ipv4', src: '1.1.1.1', dst: '2.2.2.2', protocol: 253 },
    { type: 'raw', data: Buffer.alloc(4) },
  ]);
  t.true(tryParsePacket(innerIp).ok);
  expectError(t, patched(innerIp, GENEVE_AT + 8 + 3, 20), 'bad_length', 'ipv4', GENEVE_AT + 8);
});

test('parsePacket throws the same PacketParseError that tryParsePacket returns', (t) => {
  const error = t.throws(() => parsePacket(Buffer.alloc(3)), { instanceOf: PacketParseError });
  t.like(error, { kind: 'truncated', layer: 'ethernet', offset: 0 });
  t.regex(error!.message, /ethernet at offset 0/);
});

const fixtureFrames = [...loadKernelFrames(), ...[...loadScapyVectors().values()].map((v) => v.bytes)];

/** Parse, but let anything other than a PacketParseError escape. */
function parseOrTypedError(frame: Buffer): ParsedPacket | undefined {
  try {
    return parsePacket(frame);
  } catch (error) {
    if (error instanceof PacketParseError) return undefined;
    throw error;
  }
}

test('every prefix of every fixture frame parses or gives a PacketParseError', (t) => {
  let rejected = 0;
  for (const frame of fixtureFrames) {
    for (let n = 0; n < frame.length; n++) if (!parseOrTypedError(frame.subarray(0, n))) rejected++;
  }
  t.true(rejected > 1000, `${rejected} prefixes rejected`);
});

test('random bytes give a packet or a PacketParseError, never anything else', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      parseOrTypedError(Buffer.from(bytes));
    }),
    { numRuns: 5000 },
  );
  t.pass();
});

/** Layers with their checksums dropped: those are recomputed on rebuild. */
const withoutChecksums = (layers: Layer[]) => layers.map((l) => ({ ...l, checksum: undefined }));

test('fixture frames with random bytes overwritten: typed errors only, and what parses rebuilds to the same layers', (t) => {
  const mutation = fc.record({
    frame: fc.constantFrom(...fixtureFrames),
    edits: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4 }),
    cut: fc.nat(),
  });
  let rebuilt = 0;
  fc.assert(
    fc.property(mutation, ({ frame, edits, cut }) => {
      const copy = Buffer.from(frame);
      for (const e of edits) copy[e.at % copy.length] = e.value;
      const mutated = cut % 3 === 0 ? copy.subarray(0, cut % copy.length) : copy;
      const parsed = parseOrTypedError(mutated);
      if (!parsed) return;
      const again = parsePacket(buildPacket(parsed.layers));
      deepStrictEqual(withoutChecksums(again.layers), withoutChecksums(parsed.layers));
      rebuilt++;
    }),
    { numRuns: 3000 },
  );
  t.true(rebuilt > 300, `${rebuilt} mutated frames rebuilt`);
});
