import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeMessage, encodeMessage } from '../../src/openflow';
import { RYU_OF13_DIR } from '../helpers/paths';
import { toRyu } from './ryu/to-ryu';
import { loadVectors, normalize, parseRyuJson } from './ryu/vectors';

/** Vectors we knowingly do not match, each with its reason. Target: empty. */
const EXCEPTIONS: Record<string, string> = {};

/**
 * One vector's JSON holds Ryu's packet-library decode of the PACKET_OUT frame instead of its bytes
 * (see the conformance README). Compare that payload with the frame bytes taken straight from the
 * vector (after the 24-byte fixed part and the actions), not with anything our decoder produced.
 */
function withFrameBytes(name: string, bytes: Buffer, expected: unknown): unknown {
  const po = (expected as { OFPPacketOut?: { data?: unknown } }).OFPPacketOut;
  if (!po || typeof po.data !== 'object' || po.data === null || !('Packet' in po.data)) return expected;
  const actionsLen = bytes.readUInt16BE(16);
  const frame = bytes.subarray(24 + actionsLen);
  if (frame.length < 14) throw new Error(`${name}: PACKET_OUT frame of ${frame.length} bytes is not Ethernet`);
  return { OFPPacketOut: { ...po, data: frame.toString('base64') } };
}

const vectors = loadVectors().map((v) => ({ ...v, expected: withFrameBytes(v.name, v.bytes, v.expected) }));

test('the corpus has all 104 OF1.3 pairs', (t) => {
  t.is(vectors.length, 104);
});

function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

for (const v of vectors) {
  const run = EXCEPTIONS[v.name] ? test.failing : test;
  run(`ryu vector ${v.name}: decodes to Ryu's content and re-encodes byte for byte`, (t) => {
    const res = decodeMessage(v.bytes);
    if (!res.ok) return t.fail(res.error.toString());
    t.deepEqual(normalize(toRyu(res.message)), v.expected, 'decoded content differs from Ryu JSON');
    const again = encodeMessage(res.message);
    const at = firstDiff(again, v.bytes);
    t.true(again.equals(v.bytes), `re-encoded bytes differ at offset ${at} (ours ${again.length} bytes, vector ${v.bytes.length})`);
  });
}

test('a flow_mod cut to its first 64 bytes is reported as truncated', (t) => {
  const bytes = readFileSync(join(RYU_OF13_DIR, 'libofproto-OFP13-flow_mod.packet')).subarray(0, 64);
  const res = decodeMessage(bytes);
  t.false(res.ok);
  if (!res.ok) t.is(res.error.kind, 'truncated');
  // Ryu's partial decode exists for reference; we refuse partial messages instead of returning them.
  t.truthy(parseRyuJson(readFileSync(join(RYU_OF13_DIR, 'truncated', 'libofproto-OFP13-flow_mod.packet.truncated64.json'), 'utf8')));
});
