/**
 * The overlay scenario's checks (test/helpers/overlay.ts) on made-up captures: each one must be
 * able to fail, or the system tests and the demo that rely on it prove nothing.
 */
import test from 'ava';
import { PORT_KEYS, keyOf, loadModelFile } from '../../src/model';
import type { Layer } from '../../src/packet';
import { ipv4Of } from '../../src/testing';
import {
  TWO_ZONES_MODEL,
  analysePing,
  arpInTunnels,
  deniedInTunnels,
  directPathCheck,
  type OverlayState,
  type TunnelFrame,
} from './overlay';

const model = loadModelFile(TWO_ZONES_MODEL);
const state = {
  hypervisors: Object.fromEntries(model.hypervisors.map((h) => [h.name, { tunnelIp: h.tunnelIp, zone: h.zone }])),
} as unknown as OverlayState;
const ip = (name: string) => ipv4Of(model.ports.find((p) => p.name === name)!);
const tip = (hv: string) => model.hypervisors.find((h) => h.name === hv)!.tunnelIp;
const BLUE = 101;
const keyOfVm = (name: string) => keyOf(model.ports.find((p) => p.name === name)!, PORT_KEYS);

function echo(at: string, from: string, to: string, src: string, dst: string, kind: 'request' | 'reply', seq: number, o: { ttl?: number; vni?: number; egressKey?: number } = {}): TunnelFrame {
  const inner: Layer[] = [
    { type: 'ethernet', dst: '02:00:00:00:00:02', src: '02:00:00:00:00:01', ethType: 0x0800 },
    { type: 'ipv4', dscp: 0, ecn: 0, totalLength: 84, identification: seq, dontFragment: true, moreFragments: false, fragmentOffset: 0, ttl: o.ttl ?? 63, protocol: 1, checksum: 0, src: ip(src), dst: ip(dst) } as Layer,
    { type: 'icmp', icmpType: kind === 'request' ? 8 : 0, code: 0, checksum: 0 },
    { type: 'icmp-echo', identifier: 7, sequence: seq },
  ];
  return { at, index: 0, outerSrc: tip(from), outerDst: tip(to), kind: 'geneve', vni: o.vni ?? BLUE, egressKey: o.egressKey ?? keyOfVm(dst), inner };
}

/** what a correct routed ping web1 (hv1) -> app2 (hv4) leaves on the uplinks */
function goodCapture(n: number): TunnelFrame[] {
  const frames: TunnelFrame[] = [];
  for (let seq = 1; seq <= n; seq++) {
    for (const at of ['hv1', 'hv4']) {
      frames.push(echo(at, 'hv1', 'hv4', 'web1', 'app2', 'request', seq));
      frames.push(echo(at, 'hv4', 'hv1', 'app2', 'web1', 'reply', seq));
    }
  }
  return frames;
}

const ping = { src: 'web1', dst: 'app2', ip: ip('app2'), target: 'app2', sent: 3, received: 3, ok: true };

test('the direct-path check passes a clean capture and fails a trombone, a wrong tunnel end, a second routing and a lost packet', (t) => {
  t.deepEqual(directPathCheck(state, model, goodCapture(3), 'web1', 'app2', ping).problems, []);

  const trombone = [...goodCapture(3), echo('hv2', 'hv1', 'hv4', 'web1', 'app2', 'request', 2)];
  t.regex(directPathCheck(state, model, trombone, 'web1', 'app2', ping).problems.join('\n'), /request seq 2 seen on hv1, hv2, hv4/);

  const viaHv3 = goodCapture(3).map((f) => (f.at === 'hv4' && f.inner[2]!.type === 'icmp' && f.inner[2].icmpType === 8 ? { ...f, outerDst: tip('hv3') } : f));
  t.regex(directPathCheck(state, model, viaHv3, 'web1', 'app2', ping).problems.join('\n'), /172\.16\.1\.11 -> 172\.16\.2\.13, expected 172\.16\.1\.11 -> 172\.16\.2\.14/);

  const routedTwice = goodCapture(3).map((f, i) => (i === 0 ? echo('hv1', 'hv1', 'hv4', 'web1', 'app2', 'request', 1, { ttl: 62 }) : f));
  t.regex(directPathCheck(state, model, routedTwice, 'web1', 'app2', ping).problems.join('\n'), /inner TTL 62, expected 63/);

  const lost = goodCapture(3).filter((f) => !(f.inner[3]!.type === 'icmp-echo' && f.inner[3].sequence === 3));
  t.regex(directPathCheck(state, model, lost, 'web1', 'app2', ping).problems.join('\n'), /3 echo requests web1 -> app2 expected in tunnels, saw 2/);

  const otherVpc = goodCapture(3).map((f) => ({ ...f, vni: 70_000 }));
  t.not(directPathCheck(state, model, otherVpc, 'web1', 'app2', ping).problems.length, 0, 'frames in another VPC key do not count');

  const wrongKey = goodCapture(3).map((f, i) => (i === 0 ? { ...f, egressKey: keyOfVm('web2') } : f));
  t.regex(directPathCheck(state, model, wrongKey, 'web1', 'app2', ping).problems.join('\n'), new RegExp(`egress key ${keyOfVm('web2')}, expected ${keyOfVm('app2')} \\(app2's\\)`));
});

test('ARP and denied pings are found in a capture', (t) => {
  const arp: TunnelFrame = {
    ...echo('hv1', 'hv1', 'hv3', 'web1', 'web2', 'request', 1),
    inner: [
      { type: 'ethernet', dst: 'ff:ff:ff:ff:ff:ff', src: '02:00:00:01:01:0b', ethType: 0x0806 },
      { type: 'arp', op: 1, senderMac: '02:00:00:01:01:0b', senderIp: ip('web1'), targetMac: '00:00:00:00:00:00', targetIp: ip('web2') },
    ],
  };
  t.deepEqual(arpInTunnels([...goodCapture(1), arp]), [arp]);
  t.deepEqual(arpInTunnels(goodCapture(1)), []);

  const denied = [{ src: 'web1', dst: 'db1' }];
  t.deepEqual(deniedInTunnels(model, denied, goodCapture(1)), []);
  const leaked = echo('hv1', 'hv1', 'hv4', 'web1', 'db1', 'request', 1);
  t.is(deniedInTunnels(model, denied, [leaked]).length, 1, 'a denied echo request in a tunnel is reported');
  t.is(deniedInTunnels(model, denied, [echo('hv4', 'hv4', 'hv1', 'db1', 'web1', 'reply', 1)]).length, 0, 'only requests from the denied source count');
});

test('the longest gap between ping replies, lost sequences, the last request in flight not lost', (t) => {
  const line = (at: number, seq: number) => `[${at.toFixed(6)}] 64 bytes from 10.1.2.12: icmp_seq=${seq} ttl=64 time=0.5 ms`;
  const out = [
    'PING 10.1.2.12 (10.1.2.12) 56(84) bytes of data.',
    line(100.0, 1),
    line(100.05, 2),
    line(100.1, 3),
    line(100.45, 10),
    line(100.5, 11),
    '',
    '--- 10.1.2.12 ping statistics ---',
    '12 packets transmitted, 5 received, 58% packet loss, time 550ms',
  ].join('\n');
  const r = analysePing(out, 'app1', '10.1.2.12', 50);
  t.is(r.sent, 12);
  t.is(r.received, 5);
  t.deepEqual(r.lost, [4, 5, 6, 7, 8, 9]);
  t.is(r.longestGapMs, 350);
  t.deepEqual(r.gap, { from: 100.1, to: 100.45 });
  t.is(analysePing(out.replace(line(100.45, 10), ''), 'app1', '10.1.2.12', 50).longestGapMs, 400);
});
