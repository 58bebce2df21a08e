import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildPacket, findLayer, IcmpType, Icmpv6Type, parsePacket, verifyChecksums } from '../../src/packet';
import type { ParsedPacket } from '../../src/packet';
import { FIXTURES, loadKernelFrames, sameBytes } from './helpers';

// Frames the Linux kernel built (capture-kernel.sh), checksums computed in software (tx offload off).
const frames = loadKernelFrames();
const packets = frames.map((f) => parsePacket(f));

const TSHARK_FIELDS = [
  'frame.number', 'eth.src', 'eth.dst', 'vlan.id', 'arp.opcode', 'arp.src.proto_ipv4', 'arp.dst.proto_ipv4',
  'ip.src', 'ip.dst', 'ipv6.src', 'ipv6.dst', 'icmp.type', 'icmpv6.type', 'icmpv6.nd.ns.target_address',
  'icmpv6.nd.na.target_address', 'icmpv6.opt.linkaddr', 'tcp.srcport', 'tcp.dstport', 'tcp.len',
  'udp.srcport', 'udp.dstport', 'vxlan.vni',
] as const;
type TsharkField = (typeof TSHARK_FIELDS)[number];

/** Our decode of a frame in tshark's field vocabulary, values in dissection order. */
function asTsharkFields(p: ParsedPacket): Map<TsharkField, string[]> {
  const fields = new Map<TsharkField, string[]>();
  const add = (f: TsharkField, v: string | number) => fields.set(f, [...(fields.get(f) ?? []), String(v)]);
  p.layers.forEach((l, i) => {
    switch (l.type) {
      case 'ethernet':
        add('eth.src', l.src);
        add('eth.dst', l.dst);
        break;
      case 'vlan':
        add('vlan.id', l.vid);
        break;
      case 'arp':
        add('arp.opcode', l.op);
        add('arp.src.proto_ipv4', l.senderIp);
        add('arp.dst.proto_ipv4', l.targetIp);
        break;
      case 'ipv4':
        add('ip.src', l.src);
        add('ip.dst', l.dst);
        break;
      case 'ipv6':
        add('ipv6.src', l.src);
        add('ipv6.dst', l.dst);
        break;
      case 'icmp':
        add('icmp.type', l.icmpType);
        break;
      case 'icmpv6':
        add('icmpv6.type', l.icmpType);
        break;
      case 'ndp-ns':
      case 'ndp-na':
        add(l.type === 'ndp-ns' ? 'icmpv6.nd.ns.target_address' : 'icmpv6.nd.na.target_address', l.target);
        for (const o of l.options) if (o.type === 'source-lla' || o.type === 'target-lla') add('icmpv6.opt.linkaddr', o.mac);
        break;
      case 'tcp': {
        add('tcp.srcport', l.srcPort);
        add('tcp.dstport', l.dstPort);
        const payload = p.layers[i + 1];
        add('tcp.len', payload?.type === 'raw' ? payload.data.length : 0);
        break;
      }
      case 'udp':
        add('udp.srcport', l.srcPort);
        add('udp.dstport', l.dstPort);
        break;
      case 'vxlan':
        add('vxlan.vni', l.vni);
        break;
      default:
        break;
    }
  });
  return fields;
}

const isIcmpError = (p: ParsedPacket) =>
  p.layers.some(
    (l) =>
      (l.type === 'icmp' && (l.icmpType === IcmpType.DEST_UNREACHABLE || l.icmpType === IcmpType.TIME_EXCEEDED)) ||
      (l.type === 'icmpv6' && l.icmpType < 128),
  );

test('the capture holds the traffic capture-kernel.sh makes', (t) => {
  t.true(frames.length >= 80, `${frames.length} frames`);
});

test('every kernel frame parses and rebuilds to the same bytes', (t) => {
  frames.forEach((frame, i) => {
    const diff = sameBytes(buildPacket(packets[i]!.layers), frame);
    if (diff) t.fail(`frame ${i + 1}: ${diff}`);
  });
  t.pass();
});

test('every checksum the kernel wrote verifies', (t) => {
  let checked = 0;
  const seen = new Set<string>();
  packets.forEach((p, i) => {
    const report = verifyChecksums(p);
    for (const c of report.checks) {
      seen.add(c.layer);
      if (!c.ok) t.fail(`frame ${i + 1} ${c.layer}: found 0x${c.found.toString(16)}, computed 0x${c.computed.toString(16)}`);
    }
    checked += report.checks.length;
  });
  t.deepEqual([...seen].sort(), ['icmp', 'icmpv6', 'ipv4', 'tcp', 'udp']);
  t.true(checked > 150, `${checked} checksums`);
});

test('a corrupted byte fails checksum verification', (t) => {
  const i = packets.findIndex((p) => findLayer(p, 'tcp') && findLayer(p, 'raw'));
  const frame = Buffer.from(frames[i]!);
  frame[frame.length - 1]! ^= 0x01;
  const report = verifyChecksums(parsePacket(frame));
  t.false(report.ok);
  t.deepEqual(
    report.checks.filter((c) => !c.ok).map((c) => c.layer),
    ['tcp'],
  );
});

test("our decode agrees with tshark's on every frame", (t) => {
  const lines = readFileSync(join(FIXTURES, 'kernel.tshark.tsv'), 'utf8').trimEnd().split('\n');
  t.is(lines.length, frames.length);
  lines.forEach((line, i) => {
    const cells = line.split('\t');
    const p = packets[i]!;
    const ours = asTsharkFields(p);
    const hasNdp = p.layers.some((l) => l.type === 'ndp-ns' || l.type === 'ndp-na');
    TSHARK_FIELDS.forEach((field, col) => {
      if (field === 'frame.number') return t.is(cells[col], String(i + 1));
      // tshark also reads the options of router solicitations, which we leave raw
      if (field === 'icmpv6.opt.linkaddr' && !hasNdp) return;
      const theirs = cells[col] ? cells[col]!.split(',') : [];
      const mine = ours.get(field) ?? [];
      // tshark decodes the datagram an ICMP error quotes; we keep it raw
      const compared = isIcmpError(p) ? theirs.slice(0, mine.length) : theirs;
      t.deepEqual(mine, compared, `frame ${i + 1} ${field}`);
    });
  });
});

test('VXLAN frames carry inner ARP and ICMP, with and without an outer UDP checksum, over IPv4 and IPv6', (t) => {
  const tunnelled = packets.filter((p) => findLayer(p, 'vxlan'));
  const vnis = new Set(tunnelled.map((p) => findLayer(p, 'vxlan')!.vni));
  t.deepEqual([...vnis].sort(), [42, 43, 44]);
  const innerArp = tunnelled.filter((p) => {
    const at = p.layers.findIndex((l) => l.type === 'vxlan');
    return findLayer(p, 'arp', at) !== undefined;
  });
  t.true(innerArp.length >= 6);
  const vx43 = tunnelled.filter((p) => findLayer(p, 'vxlan')!.vni === 43);
  t.true(vx43.every((p) => findLayer(p, 'udp')!.checksum === 0), 'vx43 has noudpcsum');
  const vx42 = tunnelled.filter((p) => findLayer(p, 'vxlan')!.vni === 42 && findLayer(p, 'udp')!.checksum !== 0);
  t.true(vx42.length > 0, 'vx42 has udpcsum');
  t.true(tunnelled.some((p) => p.layers[1]!.type === 'ipv6' && findLayer(p, 'vxlan')!.vni === 44));
  for (const p of tunnelled) {
    const vxlanAt = p.layers.findIndex((l) => l.type === 'vxlan');
    t.is(p.layers[vxlanAt + 1]!.type, 'ethernet');
  }
});

test('neighbour discovery: solicitations with a source link-layer option, advertisements with flags and target option', (t) => {
  const ns = packets.map((p) => findLayer(p, 'ndp-ns')).filter((l) => l !== undefined);
  const na = packets.map((p) => findLayer(p, 'ndp-na')).filter((l) => l !== undefined);
  t.true(ns.some((l) => l.target === 'fd77::2' && l.options.some((o) => o.type === 'source-lla' && o.mac === '02:00:00:77:00:01')));
  // Linux's duplicate address detection sends a nonce option (RFC 7527) and, from ::, no link-layer address
  t.true(ns.some((l) => l.options.length === 1 && l.options[0]!.type === 'other' && l.options[0]!.optionType === 14));
  const answer = na.find((l) => l.target === 'fd77::2' && l.options.length > 0);
  t.like(answer, { solicited: true, override: true, router: false, options: [{ type: 'target-lla', mac: '02:00:00:77:00:02' }] });
  const mld = packets.find((p) => findLayer(p, 'icmpv6')?.icmpType === 143)!;
  t.like(findLayer(mld, 'ipv6-ext'), { headerType: 0, nextHeader: 58 });
  t.true(packets.some((p) => findLayer(p, 'icmpv6')?.icmpType === Icmpv6Type.ECHO_REPLY && findLayer(p, 'icmp-echo') !== undefined));
});
