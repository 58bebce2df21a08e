import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPacket, findLayer, parsePacket, routerAdvertisement, verifyChecksums } from '../../src/packet';
import { ethernetPcap } from '../helpers/tshark';
import { run } from '../helpers/run';

const RA_PARAMS = {
  routerMac: '0a:01:02:03:04:05',
  routerIp: 'fe80::801:2ff:fe03:405',
  prefix: '2001:db8:1:1::',
  prefixLength: 64,
  slaac: true,
  mtu: 1400,
  routerLifetime: 1800,
  validLifetime: 86400,
  preferredLifetime: 14400,
};
const rs = buildPacket([
  { type: 'ethernet', dst: '33:33:00:00:00:02', src: '02:00:00:00:00:01' },
  { type: 'ipv6', src: 'fe80::1', dst: 'ff02::2', hopLimit: 255 },
  { type: 'icmpv6', icmpType: 133 },
  { type: 'ndp-rs', options: [{ type: 'source-lla', mac: '02:00:00:00:00:01' }] },
]);

test('an RA parses back to what was built: flags, lifetimes, MTU, prefix and link-layer options', (t) => {
  const ra = parsePacket(routerAdvertisement(RA_PARAMS));
  t.true(verifyChecksums(ra).ok);
  t.like(findLayer(ra, 'ipv6'), { src: RA_PARAMS.routerIp, dst: 'ff02::1', hopLimit: 255 });
  t.deepEqual(findLayer(ra, 'ndp-ra'), {
    type: 'ndp-ra',
    curHopLimit: 0,
    managed: false,
    other: false,
    routerLifetime: 1800,
    reachableTime: 0,
    retransTimer: 0,
    options: [
      { type: 'source-lla', mac: RA_PARAMS.routerMac },
      { type: 'mtu', mtu: 1400 },
      { type: 'prefix', prefix: '2001:db8:1:1::', prefixLength: 64, onLink: true, autonomous: true, validLifetime: 86400, preferredLifetime: 14400 },
    ],
  });
  const dhcp = findLayer(parsePacket(routerAdvertisement({ ...RA_PARAMS, slaac: false })), 'ndp-ra')!;
  t.true(dhcp.managed && dhcp.other);
  t.like(dhcp.options[2], { autonomous: false, onLink: true });
  t.deepEqual(findLayer(parsePacket(rs), 'ndp-rs'), { type: 'ndp-rs', options: [{ type: 'source-lla', mac: '02:00:00:00:00:01' }] });
});

test('tshark reads our RA and RS as we meant them, checksums good', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'zm-ndp-'));
  try {
    const file = join(dir, 'ndp.pcap');
    writeFileSync(file, ethernetPcap([routerAdvertisement(RA_PARAMS), rs]));
    const fields = ['icmpv6.type', 'icmpv6.checksum.status', 'icmpv6.nd.ra.flag.m', 'icmpv6.nd.ra.flag.o', 'icmpv6.nd.ra.router_lifetime', 'icmpv6.opt.mtu', 'icmpv6.opt.prefix', 'icmpv6.opt.prefix.length', 'icmpv6.opt.prefix.flag.a', 'icmpv6.opt.linkaddr'];
    const { stdout } = await run('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])]);
    // checksum status 1 is Wireshark's "Good"
    const [raLine, rsLine] = stdout.trim().split('\n').map((l) => l.split('|'));
    t.deepEqual(raLine, ['134', '1', '0', '0', '1800', '1400', '2001:db8:1:1::', '64', '1', '0a:01:02:03:04:05']);
    t.deepEqual(rsLine, ['133', '1', '', '', '', '', '', '', '', '02:00:00:00:00:01']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
