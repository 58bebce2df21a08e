import test from 'ava';
import { formatMac, macToNumber, numberToMac, parseMac } from '../../src/openflow';

const MACS = ['00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff', '02:00:00:00:01:02', '80:00:00:00:00:01', 'de:ad:be:ef:00:7f'];

test('a MAC as a 48-bit number round-trips and keeps the byte order', (t) => {
  for (const mac of MACS) {
    const n = macToNumber(parseMac(mac));
    t.true(Number.isSafeInteger(n) && n >= 0 && n < 2 ** 48, mac);
    t.is(n, parseInt(mac.replace(/:/g, ''), 16), mac);
    t.is(numberToMac(n), mac);
  }
});

test('macToNumber reads at an offset, as packet-in frames carry the source at 6', (t) => {
  const frame = Buffer.concat([parseMac(MACS[2]!), parseMac(MACS[4]!)]);
  t.is(numberToMac(macToNumber(frame, 6)), MACS[4]);
  t.is(formatMac(frame, 6), MACS[4]);
});
