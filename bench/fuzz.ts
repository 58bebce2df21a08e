/**
 * Codec fuzzer: `npm run fuzz [-- --runs N --seed S --hang-ms MS]`.
 * decodeMessage on mutated, truncated and random messages must return a typed result,
 * and encode(decode(x)) must succeed or throw OfEncodeError. A worker runs the cases while
 * the main thread watches for a hang; any bug exits non-zero with the input as hex.
 */
import fc from 'fast-check';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import {
  OFPT,
  OfDecodeError,
  OfEncodeError,
  Reader,
  basicCodecs,
  decodeMessage,
  encodeMessage,
  flowCodecs,
  groupMeterQueueCodecs,
  multipartCodecs,
  type AnyMessageCodec,
} from '../src/openflow';
import { OVS_LAB_DIR, RYU_OF13_DIR } from '../test/helpers/paths';

/** Every Ryu vector plus the OVS-encoded pipeline flow_mods. */
export function loadSeeds(): Buffer[] {
  const ryu = readdirSync(RYU_OF13_DIR)
    .filter((f) => f.endsWith('.packet'))
    .sort()
    .map((f) => readFileSync(join(RYU_OF13_DIR, f)));
  const ovs = readdirSync(OVS_LAB_DIR)
    .filter((f) => f.startsWith('flowmods-') && f.endsWith('.tsv'))
    .sort()
    .flatMap((f) => readFileSync(join(OVS_LAB_DIR, f), 'utf8').split('\n'))
    .map((line) => line.split('\t')[1])
    .filter((hex): hex is string => !!hex)
    .map((hex) => Buffer.from(hex, 'hex'));
  return [...ryu, ...ovs];
}

type Mutation =
  | { kind: 'set_byte'; pos: number; value: number }
  | { kind: 'set_u16'; pos: number; value: number }
  | { kind: 'insert'; pos: number; bytes: Uint8Array }
  | { kind: 'remove'; pos: number; count: number };

/** values that sit on the edges of length checks (0, below/at/above a header, alignment, max) */
const edgyU16 = fc.oneof(fc.constantFrom(0, 1, 2, 4, 7, 8, 9, 15, 16, 17, 24, 0x7fff, 0xfff8, 0xffff), fc.integer({ min: 0, max: 0xffff }));

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set_byte' as const), pos: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  // most OpenFlow length fields are 16-bit at even offsets, so this hits them often
  fc.record({ kind: fc.constant('set_u16' as const), pos: fc.nat(), value: edgyU16 }),
  fc.record({ kind: fc.constant('insert' as const), pos: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('remove' as const), pos: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
);

function mutate(seed: Buffer, m: Mutation): Buffer {
  if (seed.length === 0) return seed;
  const pos = m.pos % seed.length;
  switch (m.kind) {
    case 'set_byte': {
      const out = Buffer.from(seed);
      out[pos] = m.value;
      return out;
    }
    case 'set_u16': {
      const out = Buffer.from(seed);
      const at = Math.min(pos & ~1, out.length - 2);
      if (at >= 0) out.writeUInt16BE(m.value, at);
      return out;
    }
    case 'insert':
      return Buffer.concat([seed.subarray(0, pos), m.bytes, seed.subarray(pos)]);
    case 'remove':
      return Buffer.concat([seed.subarray(0, pos), seed.subarray(pos + m.count)]);
  }
}

/**
 * Half the time the header length is set to the real size, so the input gets past the
 * header check and reaches the body decoders.
 */
function withHeaderLength(buf: Buffer, fix: boolean): Buffer {
  if (fix && buf.length >= 4 && buf.length <= 0xffff) buf.writeUInt16BE(buf.length, 2);
  return buf;
}

export function fuzzInput(seeds: readonly Buffer[]): fc.Arbitrary<Buffer> {
  const seed = fc.integer({ min: 0, max: seeds.length - 1 }).map((i) => seeds[i]!);
  const mutated = fc
    .tuple(seed, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean())
    .map(([s, ms, fix]) => withHeaderLength(ms.reduce(mutate, s), fix));
  const truncated = fc
    .tuple(seed, fc.nat(), fc.boolean())
    .map(([s, cut, fix]) => withHeaderLength(Buffer.from(s.subarray(0, cut % s.length)), fix));
  const randomBody = fc
    .tuple(fc.integer({ min: 0, max: 35 }), fc.nat(0xffffffff), fc.uint8Array({ maxLength: 512 }))
    .map(([type, xid, body]) => {
      const buf = Buffer.alloc(8 + body.length);
      buf.writeUInt8(4, 0);
      buf.writeUInt8(type, 1);
      buf.writeUInt16BE(buf.length, 2);
      buf.writeUInt32BE(xid, 4);
      buf.set(body, 8);
      return buf;
    });
  const randomBytes = fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b));
  return fc.oneof(
    { arbitrary: mutated, weight: 6 },
    { arbitrary: truncated, weight: 2 },
    { arbitrary: randomBody, weight: 1 },
    { arbitrary: randomBytes, weight: 1 },
  );
}

/** What one input did. `bug` outcomes break the codec's contract. */
export interface Outcome {
  key: string;
  bug: boolean;
  /** for bugs: the error and its stack */
  detail?: string;
}

/** decodeMessage turns an untyped throw into this message instead of crashing; to us it is a bug. */
const INTERNAL_FAILURE = 'internal decode failure';

export function classify(input: Buffer): Outcome {
  let res;
  try {
    res = decodeMessage(input);
  } catch (e) {
    return { key: 'BUG decode threw', bug: true, detail: describe(e) };
  }
  if (!res.ok) {
    if (!(res.error instanceof OfDecodeError)) return { key: 'BUG decode returned an untyped error', bug: true, detail: describe(res.error) };
    if (res.error.message.startsWith(INTERNAL_FAILURE)) {
      return { key: 'BUG decode internal failure', bug: true, detail: replayWithoutSafetyNet(input) };
    }
    return { key: `decode error: ${res.error.kind}`, bug: false };
  }
  let again: Buffer;
  try {
    again = encodeMessage(res.message);
  } catch (e) {
    if (e instanceof OfEncodeError) return { key: 'decoded; encode: OfEncodeError', bug: false };
    return { key: 'BUG encode threw untyped', bug: true, detail: describe(e) };
  }
  if (again.equals(input)) return { key: 'decoded; re-encoded identically', bug: false };
  // Non-canonical input may re-encode differently, but the new bytes must mean the same thing.
  const redecoded = decodeMessage(again);
  if (!redecoded.ok) return { key: 'BUG re-encoded bytes do not decode', bug: true, detail: `${redecoded.error}\nre-encoded: ${again.toString('hex')}` };
  if (!isDeepStrictEqual(redecoded.message, res.message)) {
    return { key: 'BUG re-encoded bytes decode differently', bug: true, detail: `re-encoded: ${again.toString('hex')}` };
  }
  return { key: 'decoded; re-encoded canonically (different bytes, same message)', bug: false };
}

function describe(e: unknown): string {
  return e instanceof Error ? (e.stack ?? String(e)) : `non-Error thrown: ${String(e)}`;
}

/** Runs the message's body decoder directly, so the original exception and its stack are visible. */
function replayWithoutSafetyNet(input: Buffer): string {
  const codecs: readonly AnyMessageCodec[] = [...basicCodecs, ...flowCodecs, ...multipartCodecs, ...groupMeterQueueCodecs];
  const codec = codecs.find((c) => OFPT[c.type] === input[1]);
  if (!codec) return 'no codec registered for this type; cannot replay';
  try {
    codec.decode(new Reader(input, 8, input.readUInt16BE(2), 0), input.readUInt32BE(4));
    return 'replay did not throw';
  } catch (e) {
    return describe(e);
  }
}

interface Report {
  runs: number;
  counts: Record<string, number>;
  /** first few inputs per bug kind */
  bugs: { key: string; hex: string; detail: string }[];
}

const BUG_EXAMPLES_PER_KIND = 3;

/** Shared with the watchdog: [cases done, length of the current input], then the input bytes. */
function sharedState(sab: SharedArrayBuffer): { progress: Int32Array; current: Uint8Array } {
  return { progress: new Int32Array(sab, 0, 2), current: new Uint8Array(sab, 8) };
}

function runCases(runs: number, seed: number, sab: SharedArrayBuffer): Report {
  const { progress, current } = sharedState(sab);
  const counts: Record<string, number> = {};
  const bugs: Report['bugs'] = [];
  let done = 0;
  fc.assert(
    fc.property(fuzzInput(loadSeeds()), (input) => {
      current.set(input.subarray(0, current.length));
      Atomics.store(progress, 1, input.length);
      const o = classify(input);
      counts[o.key] = (counts[o.key] ?? 0) + 1;
      if (o.bug && bugs.filter((b) => b.key === o.key).length < BUG_EXAMPLES_PER_KIND) {
        bugs.push({ key: o.key, hex: input.toString('hex'), detail: o.detail ?? '' });
      }
      Atomics.store(progress, 0, ++done);
    }),
    { numRuns: runs, seed },
  );
  return { runs: done, counts, bugs };
}

function parseArgs(argv: string[]): { runs: number; seed: number; hangMs: number } {
  const opts = { runs: 1_000_000, seed: Date.now() % 0x7fffffff, hangMs: 10_000 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (!Number.isInteger(value) || value < 0) throw new Error(`${argv[i]} needs a non-negative integer`);
    if (argv[i] === '--runs') opts.runs = value;
    else if (argv[i] === '--seed') opts.seed = value;
    else if (argv[i] === '--hang-ms') opts.hangMs = value;
    else throw new Error(`unknown option ${argv[i]} (use --runs N --seed S --hang-ms MS)`);
  }
  return opts;
}

function printReport(r: Report, seconds: number): void {
  console.log(`${r.runs} cases in ${seconds.toFixed(1)} s (${Math.round(r.runs / seconds)}/s)`);
  for (const [key, n] of Object.entries(r.counts).sort((a, b) => b[1] - a[1])) {
    console.log(`${String(n).padStart(10)}  ${key}`);
  }
  for (const b of r.bugs) console.log(`\n${b.key}\ninput: ${b.hex}\n${b.detail}`);
}

function main(): void {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`fuzz: ${(e as Error).message}`);
    process.exit(2);
  }
  console.log(`fuzz: ${opts.runs} cases, seed ${opts.seed} (rerun with --seed ${opts.seed})`);
  const sab = new SharedArrayBuffer(8 + 0x10000);
  const { progress, current } = sharedState(sab);
  const currentInputHex = (): string => Buffer.from(current.subarray(0, Math.min(Atomics.load(progress, 1), current.length))).toString('hex');
  const started = Date.now();
  const worker = new Worker(__filename, { workerData: { runs: opts.runs, seed: opts.seed, sab } });
  let lastDone = -1;
  let lastChange = Date.now();
  const watchdog = setInterval(() => {
    const done = Atomics.load(progress, 0);
    if (done !== lastDone) {
      lastDone = done;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > opts.hangMs) {
      console.log(`HANG: case ${done + 1} made no progress for ${opts.hangMs} ms\ninput: ${currentInputHex()}`);
      clearInterval(watchdog);
      void worker.terminate().then(() => process.exit(3));
    }
  }, 250);
  worker.on('message', (r: Report) => {
    clearInterval(watchdog);
    printReport(r, (Date.now() - started) / 1000);
    process.exitCode = r.bugs.length > 0 ? 1 : 0;
  });
  worker.on('error', (e) => {
    clearInterval(watchdog);
    console.log(`fuzz worker crashed on case ${Atomics.load(progress, 0) + 1}\ninput: ${currentInputHex()}\n${describe(e)}`);
    process.exitCode = 1;
  });
}

if (!isMainThread) {
  const { runs, seed, sab } = workerData as { runs: number; seed: number; sab: SharedArrayBuffer };
  parentPort!.postMessage(runCases(runs, seed, sab));
} else if (require.main === module) {
  main();
}
