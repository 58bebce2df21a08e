/**
 * The demo's north-south expectations and its locality verdict (scripts/demo-north-south.ts) on
 * the default model, with frames made up here: what the model says each VM's way out is, and that
 * the locality check fails on every kind of frame it is there to catch, and on an empty capture.
 */
import test from 'ava';
import { loadModelFile, type VmPort } from '../../src/model';
import { buildPacket, parsePacket, type LayerSpec } from '../../src/packet';
import { expectedEgress, localityOf, type EgressWay, type NorthSouthFrames } from '../../scripts/demo-north-south';
import { TWO_ZONES_MODEL, type CapturedFrame, type TunnelFrame } from '../helpers/overlay';

const model = loadModelFile(TWO_ZONES_MODEL);
const INTERNET = '192.0.2.80';
const port = (name: string): VmPort => model.ports.find((p) => p.name === name)!;

test("the way out by the model: a floating IP; else the VPC's SNAT address in the VM's zone, with the VM's port block; none where the VPC routes nothing", (t) => {
  t.deepEqual(expectedEgress(model, port('web1'), INTERNET), { via: 'floating IP', address: '198.51.100.10' });
  t.deepEqual(expectedEgress(model, port('web2'), INTERNET), { via: 'floating IP', address: '198.51.100.74' });
  t.like(expectedEgress(model, port('app1'), INTERNET), { via: 'SNAT', address: '198.51.100.20', network: 'ext-a' });
  t.like(expectedEgress(model, port('db1'), INTERNET), { via: 'SNAT', address: '198.51.100.84', network: 'ext-b' });
  t.like(expectedEgress(model, port('red1'), INTERNET), { via: 'SNAT', address: '198.51.100.21', network: 'ext-a' });
  const app1 = expectedEgress(model, port('app1'), INTERNET);
  t.true(app1.via === 'SNAT' && app1.hi - app1.lo === 1023, 'a block of 1,024 ports');
  // red routes 192.0.2.0/24 only, blue everything
  t.like(expectedEgress(model, port('red1'), '203.0.113.9'), { via: 'none' });
  t.like(expectedEgress(model, port('app1'), '203.0.113.9'), { via: 'SNAT' });
  // without any egress: a floating IP still routes 0.0.0.0/0, the others have no way out
  const bare = { ...model, egress: [] };
  t.like(expectedEgress(bare, port('web1'), INTERNET), { via: 'floating IP' });
  t.like(expectedEgress(bare, port('app1'), INTERNET), { via: 'none' });
});

const tcp = (src: string, dst: string, srcPort: number, dstPort: number): LayerSpec[] => [
  { type: 'ethernet', src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' },
  { type: 'ipv4', src, dst },
  { type: 'tcp', srcPort, dstPort },
];
const onSegment = (at: string, ...flow: Parameters<typeof tcp>): CapturedFrame => ({ at, index: 0, packet: parsePacket(buildPacket(tcp(...flow))) });
const inTunnel = (at: string, outerSrc: string, outerDst: string, ...flow: Parameters<typeof tcp>): TunnelFrame => ({
  at,
  index: 0,
  outerSrc,
  outerDst,
  kind: 'geneve',
  vni: 101,
  egressKey: undefined,
  inner: parsePacket(buildPacket(tcp(...flow))).layers,
});

// app1: blue on hv2 in zone-a (hv1 172.16.1.11, hv2 172.16.1.12), SNAT 198.51.100.20
const way = expectedEgress(model, port('app1'), INTERNET) as Extract<EgressWay, { via: 'SNAT' }>;
const SNAT = way.address;
const inBlock = way.lo + 5;
const fine: NorthSouthFrames = {
  tunnelled: [inTunnel('hv2', '172.16.1.11', '172.16.1.12', INTERNET, SNAT, 80, inBlock), inTunnel('hv1', '172.16.1.11', '172.16.1.12', INTERNET, SNAT, 80, inBlock)],
  external: [
    onSegment('hv2', SNAT, INTERNET, inBlock, 80),
    onSegment('hv1', INTERNET, SNAT, 80, inBlock),
    // another VM's connection on the same address: not app1's
    onSegment('hv1', SNAT, INTERNET, way.hi + 1, 80),
  ],
};
const locality = (frames: NorthSouthFrames) => localityOf(model, frames, port('app1'), way, INTERNET);

test("locality: a SNAT VM's frames in its block, both ways, on its zone's links and tunnels pass; frames of other blocks are not its", (t) => {
  t.deepEqual(locality(fine), {
    vm: 'app1',
    zone: 'zone-a',
    address: SNAT,
    block: { lo: way.lo, hi: way.hi },
    outbound: 1,
    inbound: 1,
    segments: ['hv1', 'hv2'],
    tunnelled: 2,
    tunnels: ['hv1->hv2'],
    stray: [],
    ok: true,
  });
});

test('locality fails on a frame of the address in another zone (a tunnel or a segment link), on the untranslated address, on one direction only, and on nothing', (t) => {
  const failsWith = (extra: Partial<NorthSouthFrames>, stray: string[]) => {
    const l = locality({ tunnelled: [...fine.tunnelled, ...(extra.tunnelled ?? [])], external: [...fine.external, ...(extra.external ?? [])] });
    t.false(l.ok);
    t.deepEqual(l.stray, stray);
  };
  failsWith({ external: [onSegment('hv3', SNAT, INTERNET, way.hi + 1, 80)] }, [`${SNAT} -> ${INTERNET} on hv3's segment link`]);
  failsWith({ tunnelled: [inTunnel('hv1', '172.16.1.11', '172.16.2.13', SNAT, INTERNET, inBlock, 80)] }, [`${SNAT} -> ${INTERNET} in a tunnel 172.16.1.11 -> 172.16.2.13 at hv1`]);
  failsWith({ tunnelled: [inTunnel('hv3', '172.16.1.12', '172.16.1.11', SNAT, INTERNET, inBlock, 80)] }, [`${SNAT} -> ${INTERNET} in a tunnel 172.16.1.12 -> 172.16.1.11 at hv3`]);
  failsWith({ tunnelled: [inTunnel('hv2', '172.16.1.12', '172.16.1.11', '10.1.2.11', INTERNET, 40000, 80)] }, [`10.1.2.11 -> ${INTERNET} untranslated in a tunnel at hv2`]);
  failsWith({ external: [onSegment('hv2', INTERNET, '10.1.2.11', 80, 40000)] }, [`${INTERNET} -> 10.1.2.11 untranslated on hv2's segment link`]);
  const oneWay = locality({ tunnelled: [], external: [fine.external[0]!] });
  t.like(oneWay, { outbound: 1, inbound: 0, stray: [], ok: false });
  t.like(locality({ tunnelled: [], external: [] }), { outbound: 0, inbound: 0, ok: false });
});
