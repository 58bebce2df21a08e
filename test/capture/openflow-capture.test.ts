import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CaptureError,
  OpenFlowStreams,
  readOpenFlowCapture,
  readPcap,
  tcpSegmentOf,
  type PcapRecord,
  type StreamEvent,
} from '../../src/capture';
import { OfDecodeError } from '../../src/openflow/errors';
import { loadVectors } from '../openflow/ryu/vectors';
import { segmentsOf, tcpFrame, writePcap, type PcapFrame, type SegmentSpec } from './helpers';

const messages = loadVectors().map((v) => v.bytes);
const stream = Buffer.concat(messages);
const dir = mkdtempSync(join(tmpdir(), 'zm-capture-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

let fileNo = 0;
function file(bytes: Buffer): string {
  const path = join(dir, `${fileNo++}.pcap`);
  writeFileSync(path, bytes);
  return path;
}

async function records(path: string): Promise<PcapRecord[]> {
  const out: PcapRecord[] = [];
  await readPcap(path, (r) => out.push(r));
  return out;
}

const frames: PcapFrame[] = [1, 2, 3].map((i) => ({ seconds: 1_700_000_000 + i, nanos: 123_456_789 * i % 1e9, data: Buffer.alloc(60 + i, i) }));

for (const littleEndian of [true, false]) {
  for (const nanos of [false, true]) {
    test(`reads a ${littleEndian ? 'little' : 'big'}-endian pcap with ${nanos ? 'nano' : 'micro'}second timestamps`, async (t) => {
      const got = await records(file(writePcap(frames, { littleEndian, nanos })));
      t.deepEqual(
        got.map((r) => [r.number, r.seconds, r.nanos, r.linkType, r.data.toString('hex')]),
        frames.map((f, i) => [i + 1, f.seconds, nanos ? f.nanos : Math.floor(f.nanos / 1000) * 1000, 1, f.data.toString('hex')]),
      );
    });
  }
}

test('a pcap cut inside a record is a CaptureError after the complete records', async (t) => {
  const whole = writePcap(frames);
  const got: PcapRecord[] = [];
  const err = await t.throwsAsync(readPcap(file(whole.subarray(0, whole.length - 5)), (r) => got.push(r)), { instanceOf: CaptureError });
  t.regex(err!.message, /truncated pcap: record 3/);
  t.is(got.length, 2);
});

test('a pcap shorter than its file header is a CaptureError', async (t) => {
  await t.throwsAsync(records(file(writePcap([]).subarray(0, 10))), { instanceOf: CaptureError, message: /truncated pcap/ });
});

test('pcapng and other formats are CaptureErrors that say what the file is', async (t) => {
  await t.throwsAsync(records(file(Buffer.from('0a0d0d0a1c0000004d3c2b1a', 'hex'))), { instanceOf: CaptureError, message: /pcapng/ });
  await t.throwsAsync(records(file(Buffer.alloc(100, 7))), { instanceOf: CaptureError, message: /not a pcap file/ });
});

test('a record header claiming gigabytes is a CaptureError, not an attempt to buffer them', async (t) => {
  const bad = writePcap(frames);
  bad.writeUInt32LE(0x40000000, 24 + 8);
  await t.throwsAsync(records(file(bad)), { instanceOf: CaptureError, message: /corrupt pcap: record 1/ });
});

test('a link type other than Ethernet is a CaptureError', async (t) => {
  await t.throwsAsync(
    readOpenFlowCapture(file(writePcap(frames, { linkType: 113 })), new Set([6653]), () => {}),
    { instanceOf: CaptureError, message: /link type 113/ },
  );
});

test('tcpSegmentOf takes IPv4 and IPv6 segments apart and ignores other frames', (t) => {
  const v4 = tcpSegmentOf(tcpFrame({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 40000, dstPort: 6653, seq: 7, payload: messages[0] }));
  t.like(v4, { srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', srcPort: 40000, dstPort: 6653, seq: 7, syn: false });
  t.true(v4?.payload.equals(messages[0]!));
  const v6 = tcpSegmentOf(tcpFrame({ src: 'fe80::1', dst: 'fe80::2', srcPort: 6653, dstPort: 40000, seq: 9, syn: true }));
  t.like(v6, { srcAddr: 'fe80::1', dstPort: 40000, seq: 9, syn: true });
  t.is(v6?.payload.length, 0);
  t.is(tcpSegmentOf(Buffer.alloc(60)), undefined);
  t.is(tcpSegmentOf(Buffer.from('00')), undefined);
});

/** A connection: the SYN, then `data` cut at `cuts`, in the given order of segment indexes. */
function conversation(ends: Omit<SegmentSpec, 'seq'>, isn: number, data: Buffer, cuts: number[], order?: number[]): SegmentSpec[] {
  const segs = segmentsOf(data, isn + 1, cuts).map((s) => ({ ...ends, ...s }));
  return [{ ...ends, seq: isn, syn: true }, ...(order ?? segs.map((_, i) => i)).map((i) => segs[i]!)];
}

function events(specs: SegmentSpec[], ports = [6653]): StreamEvent[] {
  const out: StreamEvent[] = [];
  const streams = new OpenFlowStreams(new Set(ports), (e) => out.push(e));
  specs.forEach((s, i) => streams.push(tcpSegmentOf(tcpFrame(s))!, { seconds: i, nanos: 0 }));
  streams.finish({ seconds: specs.length, nanos: 0 });
  return out;
}

const toSwitch = { src: '127.0.0.1', dst: '127.0.0.1', srcPort: 6653, dstPort: 50000 };
const toController = { src: '127.0.0.1', dst: '127.0.0.1', srcPort: 50000, dstPort: 6653 };

test('both directions are reassembled and framed separately, in capture order', (t) => {
  const a = conversation(toSwitch, 1000, stream, [5, 2000, 2001, 20000], [1, 0, 3, 2, 4, 1]);
  const b = conversation(toController, 0xfffffff0, stream, [100, 11000]);
  const interleaved = a.flatMap((s, i) => [s, ...(b[i] ? [b[i]!] : [])]);
  const out = events(interleaved);
  for (const [name, ends] of [['to the switch', '127.0.0.1:6653'], ['to the controller', '127.0.0.1:50000']] as const) {
    const got = out.filter((e) => e.stream.src === ends);
    t.true(got.every((e) => e.kind === 'message'), name);
    t.deepEqual(got.map((e) => (e.kind === 'message' ? e.bytes.toString('hex') : '')), messages.map((m) => m.toString('hex')), name);
  }
  // a message is stamped with the frame that completed it
  const first = out.find((e) => e.stream.src === '127.0.0.1:6653');
  t.deepEqual(first?.at, { seconds: 4, nanos: 0 });
});

test('IPv6 endpoints are bracketed', (t) => {
  const out = events(conversation({ src: 'fd00::1', dst: 'fd00::2', srcPort: 50001, dstPort: 6653 }, 5, messages[0]!, []));
  t.deepEqual(out[0]?.stream, { src: '[fd00::1]:50001', dst: '[fd00::2]:6653' });
});

test('only the OpenFlow ports are followed', (t) => {
  const other = { src: '10.0.0.1', dst: '10.0.0.2', srcPort: 40000, dstPort: 80 };
  t.deepEqual(events(conversation(other, 1, stream, [])), []);
  t.is(events(conversation(other, 1, stream, []), [80]).length, 104);
});

test('a direction seen without its SYN starts at its first data segment', (t) => {
  const [, ...noSyn] = conversation(toController, 77, stream, [9000, 9001]);
  t.is(events(noSyn).filter((e) => e.kind === 'message').length, 104);
});

test('a hole that never fills is reported once, at the end', (t) => {
  const segs = conversation(toController, 1, stream, [100, 200, 300]);
  segs.splice(2, 1); // drop bytes 100..200
  const out = events(segs);
  const errors = out.filter((e) => e.kind === 'stream_error');
  t.is(errors.length, 1);
  t.true(errors[0]?.kind === 'stream_error' && errors[0].error instanceof CaptureError && /hole/.test(errors[0].error.message));
});

test('a stream that ends inside a message is reported as truncated', (t) => {
  const out = events(conversation(toController, 1, stream.subarray(0, messages[0]!.length + 20), [10]));
  t.is(out[0]?.kind, 'message');
  const last = out[1];
  t.true(last?.kind === 'stream_error' && last.error instanceof OfDecodeError && last.error.kind === 'truncated');
  t.is(out.length, 2);
});

test('a framing error stops that direction only', (t) => {
  const bad = Buffer.concat([messages[0]!, Buffer.from('0400000300000000', 'hex'), messages[1]!]);
  // cut where the bad header starts: see framer.test.ts for a bad header in the same chunk as good messages
  const out = events([...conversation(toController, 1, bad, [30, messages[0]!.length]), ...conversation(toSwitch, 1, messages[2]!, [])]);
  t.deepEqual(
    out.map((e) => [e.stream.src, e.kind === 'message' ? 'message' : e.error instanceof OfDecodeError ? e.error.kind : 'capture']),
    [
      ['127.0.0.1:50000', 'message'],
      ['127.0.0.1:50000', 'bad_length'],
      ['127.0.0.1:6653', 'message'],
    ],
  );
});

test('a new SYN on the same addresses and ports starts a new stream', (t) => {
  const first = conversation(toController, 1, stream.subarray(0, messages[0]!.length + 3), []); // ends mid-message
  const second = conversation(toController, 900_000, messages[1]!, []);
  const out = events([...first, ...second]);
  t.deepEqual(
    out.map((e) => e.kind),
    ['message', 'stream_error', 'message'],
  );
});

test('readOpenFlowCapture reports the messages of a pcap with their timestamps', async (t) => {
  const specs = conversation(toController, 42, stream, [1, 500, 501, 30000], [4, 3, 2, 1, 0]);
  const pcap = writePcap(specs.map((s, i) => ({ seconds: 1_700_000_000, nanos: i * 1000, data: tcpFrame(s) })));
  const out: StreamEvent[] = [];
  const summary = await readOpenFlowCapture(file(pcap), new Set([6653]), (e) => out.push(e));
  t.deepEqual(summary, { records: specs.length, linkType: 1 });
  t.is(out.length, 104);
  t.true(out.every((e) => e.kind === 'message' && e.at.seconds === 1_700_000_000 && e.at.nanos === 5000));
});
