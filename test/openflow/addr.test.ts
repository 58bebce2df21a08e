import test from 'ava';
import { formatMac, numberToMac, parseMac } from '../../src/openflow';

const MACS = ['00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff', '02:00:00:00:01:02', '80:00:00:00:00:01', 'de:ad:be:ef:00:7f'];

test('a MAC held as a 48-bit number formats with its first byte most significant', (t) => {
  for (const mac of MACS) t.is(numberToMac(parseInt(mac.replace(/:/g, ''), 16)), mac);
});

test('MAC text round-trips through bytes, in either case, and anything else is refused', (t) => {
  for (const mac of MACS) t.is(formatMac(parseMac(mac.toUpperCase())), mac);
  const frame = Buffer.concat([parseMac(MACS[2]!), parseMac(MACS[4]!)]);
  t.is(formatMac(frame, 6), MACS[4]);
  for (const bad of ['02:00:00:00:01', '02:00:00:00:01:0g', '02-00-00-00-01-02', '02:00:00:00:01:0\u0662', '0200:00:00:01:02:'])
    t.throws(() => parseMac(bad), undefined, bad);
});
