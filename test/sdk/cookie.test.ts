import test from 'ava';
import fc from 'fast-check';
import { ownerHash } from '../../src/sdk/cookie';

/** FNV-1a 64 over UTF-16 code units, truncated to 55 bits: the definition, in BigInt */
function reference(key: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < key.length; i++) h = ((h ^ BigInt(key.charCodeAt(i))) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h & ((1n << 55n) - 1n);
}

test('ownerHash is FNV-1a 64 truncated to 55 bits, so cookies stay what switches already hold', (t) => {
  t.is(ownerHash(''), 0xcbf29ce484222325n & ((1n << 55n) - 1n));
  t.is(ownerHash('port:web1'), reference('port:web1'));
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (key) => ownerHash(key) === reference(key)), { numRuns: 2000 });
});
