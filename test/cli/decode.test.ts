import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { isDeepStrictEqual } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { decodeMessage, OFPT } from '../../src/openflow';
import { formatMessage } from '../../src/openflow/text/messages';
import { REPO_ROOT } from '../helpers/paths';
import { segmentsOf, tcpFrame, writePcap } from '../capture/helpers';
import { loadVectors } from '../openflow/ryu/vectors';
import { asDecodeJson, CLI, runCli, type CliResult } from './run-cli';

const vectors = loadVectors();
const dir = mkdtempSync(join(tmpdir(), 'zm-cli-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, bytes: Buffer | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

const FIXTURES = join(REPO_ROOT, 'test', 'cli', 'fixtures');
const of13Pcap = file('of13.pcap', gunzipSync(readFileSync(join(FIXTURES, 'of13.pcap.gz'))));
/** "hex<TAB>ovs-ofctl ofp-print" per message of of13.pcap (fixtures/capture-of13.sh made both) */
const oracle = gunzipSync(readFileSync(join(FIXTURES, 'of13.oracle.tsv.gz')))
  .toString('utf8')
  .split('\n')
  .filter((l) => l.includes('\t'))
  .map((l) => {
    const [hex, text] = l.split('\t') as [string, string];
    return { bytes: Buffer.from(hex, 'hex'), text };
  });

function json(r: CliResult): Record<string, any>[] {
  return r.lines.map((l) => JSON.parse(l) as Record<string, any>);
}

test('a raw message file decodes to one JSON line, and --text to formatMessage', (t) => {
  const v = vectors.find((x) => x.name === '4-4-ofp_packet_in')!;
  const path = file('packet_in.bin', v.bytes);
  const decoded = decodeMessage(v.bytes);
  if (!decoded.ok) return t.fail(decoded.error.toString());
  const asJson = runCli('decode', path);
  t.is(asJson.status, 0, asJson.stderr);
  t.deepEqual(json(asJson), [{ offset: 0, message: asDecodeJson(decoded.message) }]);
  t.is(asJson.stderr, '');
  const asText = runCli('decode', '--text', path);
  t.is(asText.status, 0);
  t.deepEqual(asText.lines, [`@0 ${formatMessage(decoded.message)}`]);
});

test('all 104 vectors in one file: one line each, at their offsets, as the codec decodes them', (t) => {
  const r = runCli('decode', file('all.bin', Buffer.concat(vectors.map((v) => v.bytes))));
  const lines = json(r);
  t.is(lines.length, 104);
  let offset = 0;
  let failures = 0;
  vectors.forEach((v, i) => {
    const expected = decodeMessage(v.bytes);
    const line = lines[i]!;
    t.is(line.offset, offset, v.name);
    if (expected.ok) t.deepEqual(line.message, asDecodeJson(expected.message), v.name);
    else {
      failures++;
      t.is(line.error?.kind, expected.error.kind, v.name);
    }
    offset += v.bytes.length;
  });
  t.is(r.status, failures > 0 ? 1 : 0);
});

test('a message that fails to decode gets an error line with kind, offset, type and xid, and decoding goes on', (t) => {
  const flowMod = Buffer.from(vectors.find((v) => v.name === 'libofproto-OFP13-flow_mod')!.bytes);
  flowMod.writeUInt32BE(0xabcdef, 4); // xid
  flowMod.writeUInt16BE(3, 48 + 2); // the match's length, below its own header
  const echo = vectors.find((v) => v.name === '4-13-ofp_echo_request')!.bytes;
  const r = runCli('decode', file('bad.bin', Buffer.concat([echo, flowMod, echo])));
  t.is(r.status, 1);
  const [first, bad, last] = json(r);
  t.is(first?.message?.type, 'ECHO_REQUEST');
  t.like(bad, { offset: echo.length, error: { type: 'FLOW_MOD', xid: 0xabcdef }, bytes: flowMod.toString('hex') });
  t.is(typeof bad?.error?.kind, 'string');
  t.is(typeof bad?.error?.offset, 'number');
  t.is(last?.offset, echo.length + flowMod.length);
  t.is(last?.message?.type, 'ECHO_REQUEST');
  const text = runCli('decode', '--text', file('bad2.bin', Buffer.concat([echo, flowMod])));
  t.regex(text.lines[1] ?? text.stderr, /^@\d+ ERROR OfDecodeError\[\w+\]: .* type=14 xid=11259375/);
});

test('a raw file that ends inside a message reports it as truncated', (t) => {
  const fm = vectors.find((v) => v.name === '4-2-ofp_flow_mod')!.bytes;
  const r = runCli('decode', file('cut.bin', fm.subarray(0, 100)));
  t.is(r.status, 1);
  t.like(json(r)[0], { offset: 0, error: { kind: 'truncated', type: 'FLOW_MOD' } });
});

test('a raw file with a length field below 8 reports bad_length after the messages before it, and stops', (t) => {
  const r = runCli('decode', file('len4.bin', Buffer.concat([vectors[0]!.bytes, Buffer.from('0400000400000000', 'hex'), vectors[1]!.bytes])));
  t.is(r.status, 1);
  const lines = json(r);
  t.is(lines.length, 2);
  t.like(lines[1], { offset: vectors[0]!.bytes.length, error: { kind: 'bad_length' } });
});

/** Maps ovs-ofctl's first word to our message type: OFPT_X is X, OFPST_* are multiparts, ONFT_* experimenter. */
function oracleType(text: string): string {
  const word = text.split(' ')[0]!;
  if (word.startsWith('OFPT_')) return word.slice(5);
  if (word.startsWith('OFPST_')) return / request /.test(text) ? 'MULTIPART_REQUEST' : 'MULTIPART_REPLY';
  if (word.startsWith('ONFT_')) return 'EXPERIMENTER';
  return word;
}

test('a real OVS capture decodes with no errors, message for message as Wireshark framed it and ovs-ofctl read it', (t) => {
  const r = runCli('decode', of13Pcap);
  t.is(r.status, 0, r.stderr);
  const lines = json(r);
  t.is(lines.filter((l) => l.error).length, 0);
  t.is(lines.length, oracle.length);
  // Comparing whole messages with ava's deepEqual takes seconds for the table-features replies.
  const mismatches = oracle.flatMap((o, i) => {
    const line = lines[i]!;
    const expected = decodeMessage(o.bytes);
    if (!expected.ok) return [`${i}: the oracle's bytes do not decode: ${expected.error}`];
    const problems = [
      // the same bytes: our reassembly and framing agree with tshark's
      !isDeepStrictEqual(line.message, asDecodeJson(expected.message)) && 'not the message of the same bytes',
      line.message.type !== oracleType(o.text) && `type ${line.message.type}`,
      line.message.xid !== Number.parseInt(/\(xid=0x([0-9a-f]+)\)/.exec(o.text)![1]!, 16) && `xid ${line.message.xid}`,
      !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/.test(line.ts) && `ts ${line.ts}`,
      !/^127\.0\.0\.[12]:\d+ 127\.0\.0\.[12]:\d+$/.test(`${line.src} ${line.dst}`) && `stream ${line.src} ${line.dst}`,
    ].filter(Boolean);
    return problems.length > 0 ? [`${i} (${o.text.slice(0, 60)}): ${problems.join(', ')}`] : [];
  });
  t.deepEqual(mismatches, []);
  for (const type of ['HELLO', 'FEATURES_REQUEST', 'FEATURES_REPLY', 'PACKET_IN', 'PACKET_OUT', 'FLOW_MOD', 'ECHO_REQUEST', 'MULTIPART_REPLY']) {
    t.true(lines.some((l) => l.message.type === type), type);
  }
});

test('the real capture in --text: one formatMessage line per message, prefixed with time and stream', (t) => {
  const r = runCli('decode', '--text', of13Pcap);
  t.is(r.status, 0, r.stderr);
  t.is(r.lines.length, oracle.length);
  oracle.forEach((o, i) => {
    const expected = decodeMessage(o.bytes);
    if (expected.ok) t.true(r.lines[i]!.endsWith(` ${formatMessage(expected.message)}`), r.lines[i]);
  });
  t.regex(r.lines[0]!, /^\S+Z 127\.0\.0\.1:\d+ > 127\.0\.0\.1:\d+ OFPT_HELLO /);
});

test('a synthetic pcap with reordered IPv6 segments, nanosecond timestamps and a custom --port', (t) => {
  const ends = { src: 'fd00::1', dst: 'fd00::2', srcPort: 7000, dstPort: 41000 };
  const data = Buffer.concat(vectors.slice(0, 10).map((v) => v.bytes));
  const segs = segmentsOf(data, 101, [7, 300, 301]).map((s) => tcpFrame({ ...ends, ...s }));
  const syn = tcpFrame({ ...ends, seq: 100, syn: true });
  const path = file('v6.pcap', writePcap([syn, segs[2]!, segs[0]!, segs[3]!, segs[1]!, segs[0]!].map((d, i) => ({ seconds: 1_800_000_000, nanos: 5 + i, data: d })), { nanos: true, littleEndian: false }));
  const standardPorts = runCli('decode', path);
  t.is(standardPorts.status, 0);
  t.deepEqual(standardPorts.lines, []);
  const r = runCli('decode', path, '--port', '7000');
  t.is(r.status, 0, r.stderr);
  const lines = json(r);
  t.deepEqual(lines.map((l) => l.message.type), vectors.slice(0, 10).map((v) => OFPT[v.bytes[1]!]));
  t.deepEqual(lines.map((l) => [l.src, l.dst]), Array(10).fill(['[fd00::1]:7000', '[fd00::2]:41000']));
  // everything completes with the fifth frame, the one that fills the hole
  t.true(lines.every((l) => l.ts === '2027-01-15T08:00:00.000000009Z'));
});

test('bad files: one line on stderr, no stack trace, a non-zero exit', (t) => {
  const pcap = readFileSync(of13Pcap);
  const cases: [string, string[], number, RegExp][] = [
    ['missing', ['decode', join(dir, 'nope.bin')], 3, /nope\.bin: no such file$/],
    ['empty', ['decode', file('empty.bin', '')], 3, /empty file$/],
    ['directory', ['decode', dir], 3, /not a regular file$/],
    ['garbage', ['decode', file('garbage.bin', Buffer.from('hello, this is not OpenFlow'))], 3, /neither a pcap capture nor OpenFlow/],
    ['truncated pcap', ['decode', file('cut.pcap', pcap.subarray(0, 5000))], 3, /truncated pcap: record \d+ at byte \d+ is incomplete/],
    ['pcap header only, cut', ['decode', file('cut-head.pcap', pcap.subarray(0, 10))], 3, /truncated pcap/],
    ['pcapng', ['decode', file('x.pcapng', Buffer.from('0a0d0d0a000000004d3c2b1a', 'hex'))], 3, /pcapng is not supported/],
    ['no file', ['decode'], 2, /no FILE given/],
    ['two files', ['decode', 'a', 'b'], 2, /one FILE only/],
    ['unknown option', ['decode', '--bogus', 'x'], 2, /Unknown option '--bogus'/],
    ['bad port', ['decode', 'x', '--port', '70000'], 2, /--port 70000: not a TCP port/],
    ['both formats', ['decode', 'x', '--json', '--text'], 2, /exclude each other/],
    ['unknown command', ['frobnicate'], 2, /unknown command 'frobnicate'/],
  ];
  for (const [name, args, status, pattern] of cases) {
    const r = runCli(...args);
    t.is(r.status, status, name);
    t.notRegex(r.stderr, /\n\s+at /, `${name}: stack trace`);
    t.regex(r.stderr.split('\n')[0]!, pattern, name);
  }
});

test('a truncated pcap still prints the messages before the cut', (t) => {
  const r = runCli('decode', file('cut2.pcap', readFileSync(of13Pcap).subarray(0, 5000)));
  t.is(r.status, 3);
  t.regex(r.stderr, /^zonemesh decode: \S+: truncated pcap: .*\n$/);
  t.true(r.lines.length > 0);
  t.true(json(r).every((l) => l.message));
});

test('closing the output pipe early is not an error', (t) => {
  const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${CLI}" decode "${of13Pcap}" | head -1`], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, '');
  t.is(r.stdout.split('\n').filter(Boolean).length, 1);
});

test('the built CLI has a shebang, and --help lists decode', (t) => {
  t.true(readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n'));
  const r = runCli('--help');
  t.is(r.status, 0);
  t.regex(r.stdout, /^ {2}decode +decodes OpenFlow messages/m);
});
