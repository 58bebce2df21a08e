import test from 'ava';
import fc from 'fast-check';
import { TcpReassembler } from '../../src/capture';
import { Framer } from '../../src/openflow/framer';
import { loadVectors } from '../openflow/ryu/vectors';
import { segmentsOf } from './helpers';

const messages = loadVectors().map((v) => v.bytes);
const stream = Buffer.concat(messages);

function reassemble(start: number, segments: { seq: number; payload: Buffer; syn?: boolean }[]): { bytes: Buffer; r: TcpReassembler } {
  const r = new TcpReassembler(start);
  const out: Buffer[] = [];
  for (const s of segments) out.push(...r.push({ syn: false, ...s }));
  return { bytes: Buffer.concat(out), r };
}

function frame(bytes: Buffer): Buffer[] {
  return new Framer().messages(bytes);
}

test('in-order segments: a message split over segments and many messages per segment', (t) => {
  // cuts inside the first message, then a segment holding dozens of messages
  const { bytes, r } = reassemble(1000, segmentsOf(stream, 1000, [3, 11, 500, stream.length - 7]));
  t.true(bytes.equals(stream));
  t.deepEqual(frame(bytes).length, messages.length);
  t.is(r.heldBytes, 0);
  t.is(r.holeAt, undefined);
});

test('reordered segments are held until the hole fills, then delivered in order', (t) => {
  const [a, b, c] = segmentsOf(stream.subarray(0, 300), 5, [100, 200]);
  const r = new TcpReassembler(5);
  t.deepEqual(r.push({ syn: false, ...c! }), []);
  t.deepEqual(r.push({ syn: false, ...b! }), []);
  t.is(r.heldBytes, 200);
  t.is(r.holeAt, 5);
  const out = Buffer.concat(r.push({ syn: false, ...a! }));
  t.true(out.equals(stream.subarray(0, 300)));
  t.is(r.heldBytes, 0);
});

test('retransmissions, overlaps and keepalives add nothing', (t) => {
  const data = stream.subarray(0, 400);
  const segs = [
    { seq: 100, payload: data.subarray(0, 150) },
    { seq: 100, payload: data.subarray(0, 150) }, // exact retransmission
    { seq: 99, payload: Buffer.from([0xee]) }, // keepalive probe: one old byte
    { seq: 200, payload: data.subarray(100, 300) }, // overlaps 50 delivered bytes
    { seq: 450, payload: data.subarray(350, 400) }, // ahead: held
    { seq: 450, payload: data.subarray(350, 380) }, // shorter retransmission of held data
    { seq: 250, payload: data.subarray(150, 260) }, // old, already covered
    { seq: 390, payload: data.subarray(290, 360) }, // fills the hole and overlaps the held segment
  ];
  const { bytes, r } = reassemble(100, segs);
  t.true(bytes.equals(data));
  t.is(r.heldBytes, 0);
});

test('sequence numbers wrap around 2^32', (t) => {
  const start = 0xffffff00;
  const segs = segmentsOf(stream.subarray(0, 1024), start, [200, 256, 300, 700]);
  const { bytes } = reassemble(start, [segs[2]!, segs[4]!, segs[0]!, segs[3]!, segs[1]!]);
  t.true(bytes.equals(stream.subarray(0, 1024)));
});

test('after a SYN the stream starts at ISN + 1, and data on the SYN counts', (t) => {
  const isn = 0x7ffffffe;
  const r = TcpReassembler.fromFirstSegment({ seq: isn, syn: true, payload: Buffer.alloc(0) });
  t.deepEqual(r.push({ seq: isn, syn: true, payload: Buffer.alloc(0) }), []);
  const fastOpen = Buffer.concat(r.push({ seq: isn, syn: true, payload: stream.subarray(0, 10) }));
  t.true(fastOpen.equals(stream.subarray(0, 10)));
  const rest = Buffer.concat(r.push({ seq: isn + 11, syn: false, payload: stream.subarray(10, 20) }));
  t.true(rest.equals(stream.subarray(10, 20)));
});

test('held data does not alias the caller buffer', (t) => {
  const r = new TcpReassembler(0);
  const later = Buffer.from(stream.subarray(10, 20));
  r.push({ seq: 10, syn: false, payload: later });
  later.fill(0);
  const out = Buffer.concat(r.push({ seq: 0, syn: false, payload: stream.subarray(0, 10) }));
  t.true(out.equals(stream.subarray(0, 20)));
});

/** Segments of the vector stream, shuffled, with re-sends of arbitrary ranges (duplicates, overlaps) mixed in. */
const messySegments = fc
  .tuple(
    fc.nat(0xffffffff),
    fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 60 }),
    fc.array(fc.tuple(fc.integer({ min: 0, max: stream.length - 1 }), fc.integer({ min: 1, max: 3000 })), { maxLength: 20 }),
    fc.array(fc.nat(), { minLength: 100, maxLength: 100 }),
  )
  .map(([start, cuts, resends, keys]) => {
    const segs = segmentsOf(stream, start, [...cuts].sort((a, b) => a - b));
    for (const [from, len] of resends) segs.push({ seq: (start + from) >>> 0, payload: stream.subarray(from, from + len) });
    const shuffled = segs.map((s, i) => ({ s, key: keys[i % keys.length]! + i }));
    shuffled.sort((a, b) => a.key - b.key);
    return { start, segs: shuffled.map((o) => o.s) };
  });

test('any order of segments, duplicates and overlaps reassembles the stream and frames all 104 messages', (t) => {
  fc.assert(
    fc.property(messySegments, ({ start, segs }) => {
      const { bytes, r } = reassemble(start, segs);
      const framed = frame(bytes);
      return bytes.equals(stream) && r.heldBytes === 0 && framed.length === 104 && framed.every((m, i) => m.equals(messages[i]!));
    }),
    { numRuns: 300 },
  );
  t.pass();
});
