import test from 'ava';
import fc from 'fast-check';
import { classify, fuzzInput, loadSeeds } from '../../bench/fuzz';

const seeds = loadSeeds();
/** a decode slower than this counts as a hang (the slowest honest input is a 64 KiB message) */
const HANG_MS = 1000;

function checkNoBug(input: Buffer): void {
  const started = performance.now();
  const o = classify(input);
  const ms = performance.now() - started;
  if (o.bug) throw new Error(`${o.key}\n${o.detail}`);
  if (ms > HANG_MS) throw new Error(`decode+encode took ${ms.toFixed(0)} ms`);
}

test('the seed corpus holds the 104 Ryu vectors and the OVS pipeline flow_mods', (t) => {
  t.true(seeds.length > 104);
});

test('mutated, truncated and random messages give typed outcomes only (fast-check)', (t) => {
  // fast-check reports the shrunk input as hex through Buffer's inspect; the message names the bug
  fc.assert(fc.property(fuzzInput(seeds), checkNoBug), { numRuns: 4000 });
  t.pass();
});

test('every prefix of every seed gives a typed outcome', (t) => {
  let cases = 0;
  for (const s of seeds) {
    for (let n = 0; n < s.length; n++) {
      checkNoBug(Buffer.from(s.subarray(0, n)));
      cases++;
    }
  }
  t.true(cases > 30_000);
});

test('every seed with its header length patched to every prefix length gives a typed outcome', (t) => {
  for (const s of seeds) {
    for (let n = 8; n < s.length; n++) {
      const prefix = Buffer.from(s.subarray(0, n));
      prefix.writeUInt16BE(n, 2);
      checkNoBug(prefix);
    }
  }
  t.pass();
});
