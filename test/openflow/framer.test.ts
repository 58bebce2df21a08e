import test from 'ava';
import fc from 'fast-check';
import { OfDecodeError } from '../../src/openflow/errors';
import { Framer } from '../../src/openflow/framer';
import { loadVectors } from './ryu/vectors';

const messages = loadVectors().map((v) => v.bytes);
const stream = Buffer.concat(messages);
/** start offset of each message in `stream`, plus the stream length at the end */
const starts = messages.reduce<number[]>((acc, m) => [...acc, acc[acc.length - 1]! + m.length], [0]);

/** bytes of the message in progress at stream position `pos` (0 when `pos` is a boundary) */
function partialAt(pos: number): number {
  let i = 0;
  while (starts[i + 1]! <= pos) i++;
  return pos - starts[i]!;
}

/** Frames `stream` cut at `cuts`, checking after each push that only the one partial message is held. */
function frameAt(cuts: number[]): { framed: Buffer[]; maxHeld: number; heldOk: boolean } {
  const framer = new Framer();
  const framed: Buffer[] = [];
  let maxHeld = 0;
  let heldOk = true;
  const bounds = [0, ...cuts, stream.length];
  for (let i = 1; i < bounds.length; i++) {
    framed.push(...framer.messages(stream.subarray(bounds[i - 1], bounds[i])));
    maxHeld = Math.max(maxHeld, framer.buffered);
    if (framer.buffered !== partialAt(bounds[i]!)) heldOk = false;
  }
  return { framed, maxHeld, heldOk };
}

function sameMessages(framed: Buffer[]): boolean {
  return framed.length === messages.length && framed.every((m, i) => m.equals(messages[i]!));
}

test('the concatenated Ryu vectors are framed back into the 104 messages in one chunk', (t) => {
  const { framed, maxHeld } = frameAt([]);
  t.is(framed.length, 104);
  t.true(sameMessages(framed));
  t.is(maxHeld, 0);
});

test('a cut at every byte position into two chunks frames identically', (t) => {
  const bad: number[] = [];
  for (let cut = 0; cut <= stream.length; cut++) {
    const { framed, heldOk } = frameAt([cut]);
    if (!sameMessages(framed) || !heldOk) bad.push(cut);
  }
  t.deepEqual(bad, [], `cuts that framed differently or held more than the partial message`);
});

test('one byte per push frames identically and holds at most one partial message', (t) => {
  const cuts = Array.from({ length: stream.length - 1 }, (_, i) => i + 1);
  const { framed, maxHeld, heldOk } = frameAt(cuts);
  t.true(sameMessages(framed));
  t.true(heldOk);
  t.is(maxHeld, Math.max(...messages.map((m) => m.length)) - 1);
});

test('random multi-chunk splits frame identically', (t) => {
  const cutSets = fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 300 });
  fc.assert(
    fc.property(cutSets, (cuts) => {
      const { framed, heldOk } = frameAt([...cuts].sort((a, b) => a - b));
      return sameMessages(framed) && heldOk;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

/** A header claiming `length`, with type 14 and xid 0x01020304. */
function header(length: number): Buffer {
  const h = Buffer.from([4, 14, 0, 0, 1, 2, 3, 4]);
  h.writeUInt16BE(length, 2);
  return h;
}

for (let len = 0; len < 8; len++) {
  test(`a length field of ${len} is a typed bad_length error, and the framer then refuses input`, (t) => {
    const framer = new Framer();
    const first = messages[0]!;
    t.deepEqual(framer.messages(first), [first]);
    // split inside the bad header: the error must not depend on the chunking
    const bad = header(len);
    t.deepEqual(framer.messages(bad.subarray(0, 3)), []);
    t.deepEqual(framer.messages(bad.subarray(3)), []);
    const err = framer.error;
    t.true(err instanceof OfDecodeError);
    t.is(err?.kind, 'bad_length');
    t.is(err?.context.offset, first.length);
    t.is(err?.context.msgType, 14);
    t.is(err?.context.xid, 0x01020304);
    t.is(framer.buffered, 0);
    const again = t.throws(() => framer.messages(messages[1]!), { instanceOf: OfDecodeError });
    t.is(again?.kind, 'bad_length');
  });
}

test('messages before a bad length field in the same chunk are still framed, then the stream is refused', (t) => {
  const framer = new Framer();
  const framed = framer.messages(Buffer.concat([messages[0]!, messages[1]!, header(4)]));
  t.is(framed.length, 2);
  t.is(framer.error?.kind, 'bad_length');
  t.throws(() => framer.messages(messages[2]!), { instanceOf: OfDecodeError });
});

test('the largest possible message (65535 bytes) is held until complete, then framed', (t) => {
  const big = Buffer.concat([header(0xffff), Buffer.alloc(0xffff - 8)]);
  const framer = new Framer();
  t.deepEqual(framer.messages(big.subarray(0, 0xfffe)), []);
  t.is(framer.buffered, 0xfffe);
  const out = framer.messages(Buffer.concat([big.subarray(0xfffe), messages[0]!]));
  t.is(out.length, 2);
  t.true(out[0]!.equals(big));
  t.is(framer.buffered, 0);
});

test('a held partial message survives the caller reusing its chunk buffer', (t) => {
  const framer = new Framer();
  const m = messages[0]!;
  const chunk = Buffer.from(m.subarray(0, 5));
  framer.messages(chunk);
  chunk.fill(0xff);
  const [out] = framer.messages(Buffer.from(m.subarray(5)));
  t.true(out?.equals(m));
});

test('push visits each message as an offset into the chunk, and stops when the visitor says so', (t) => {
  const chunk = Buffer.concat([messages[0]!, messages[1]!, messages[2]!]);
  const seen: [number, number][] = [];
  new Framer().push(chunk, (buf, at, length) => {
    t.is(buf, chunk, 'no copy and no slice of a whole chunk');
    seen.push([at, length]);
  });
  t.deepEqual(seen, [
    [0, messages[0]!.length],
    [messages[0]!.length, messages[1]!.length],
    [messages[0]!.length + messages[1]!.length, messages[2]!.length],
  ]);
  const visited: number[] = [];
  const framer = new Framer();
  framer.push(chunk, (_buf, at) => (visited.push(at), visited.length < 2));
  t.is(visited.length, 2, 'false from the visitor pauses the push');
  t.is(framer.buffered, messages[2]!.length, 'and keeps the rest');
  framer.push(Buffer.alloc(0), (_buf, at, length) => void visited.push(at, length));
  t.deepEqual(visited, [0, messages[0]!.length, 0, messages[2]!.length], 'the next push visits the rest first');
});
