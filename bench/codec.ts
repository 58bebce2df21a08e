/**
 * Codec throughput: `npm run bench:codec [-- --seconds S --rounds N]`.
 * Decodes and encodes realistic messages on one core for a fixed time per round and keeps
 * the best round; then has os-ken (bench/osken_codec.py) parse the same bytes, and prints
 * both side by side as a Markdown table.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { decodeMessage, encodeMessage, type OfMessage } from '../src/openflow';
import { OVS_LAB_DIR, REPO_ROOT, RYU_OF13_DIR } from '../test/helpers/paths';

interface Case {
  name: string;
  source: string;
  messages: Buffer[];
}

function loadCases(): Case[] {
  const flowMods = readFileSync(join(OVS_LAB_DIR, 'flowmods-hv3-stateful.tsv'), 'utf8')
    .split('\n')
    .filter((line) => line.includes('\t'))
    .map((line) => Buffer.from(line.split('\t')[1]!, 'hex'));
  return [
    {
      name: 'flow_mod',
      source: `the ${flowMods.length} OVS-encoded pipeline flow_mods of test/fixtures/ovs-lab/flowmods-hv3-stateful.tsv, round-robin`,
      messages: flowMods,
    },
    {
      name: 'packet_in',
      source: 'test/fixtures/ryu-of13/4-4-ofp_packet_in.packet (ARP request, 9 OXMs, 42-byte frame)',
      messages: [readFileSync(join(RYU_OF13_DIR, '4-4-ofp_packet_in.packet'))],
    },
    {
      name: 'flow_stats_reply',
      source: 'bench/data/ovs-flow-stats-reply-hv3.hex (OVS 3.1 dump-flows reply, 46 flows)',
      messages: [Buffer.from(readFileSync(join(REPO_ROOT, 'bench', 'data', 'ovs-flow-stats-reply-hv3.hex'), 'utf8').trim(), 'hex')],
    },
  ];
}

const BATCH = 200;
/** messages per second, calling fn on items round-robin for about `seconds` */
function rate<T>(fn: (item: T) => unknown, items: readonly T[], seconds: number): number {
  let done = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  for (;;) {
    for (let i = 0; i < BATCH; i++) fn(items[(done + i) % items.length]!);
    done += BATCH;
    const now = process.hrtime.bigint();
    if (now >= deadline) return done / (Number(now - start) / 1e9);
  }
}

function best<T>(fn: (item: T) => unknown, items: readonly T[], seconds: number, rounds: number): number {
  let top = 0;
  for (let r = 0; r < rounds; r++) top = Math.max(top, rate(fn, items, seconds));
  return top;
}

interface Rates {
  decode: number | null;
  encode: number | null;
  /** why a codec could not be measured */
  error?: string;
}

function decodeAll(c: Case): OfMessage[] {
  return c.messages.map((buf) => {
    const res = decodeMessage(buf);
    if (!res.ok) throw new Error(`${c.name}: our decoder rejects ${buf.toString('hex').slice(0, 32)}…: ${res.error}`);
    return res.message;
  });
}

function ours(c: Case, seconds: number, rounds: number): Rates {
  try {
    const decoded = decodeAll(c);
    return {
      decode: best((b: Buffer) => decodeMessage(b), c.messages, seconds, rounds),
      encode: best((m: OfMessage) => encodeMessage(m), decoded, seconds, rounds),
    };
  } catch (e) {
    return { decode: null, encode: null, error: (e as Error).message };
  }
}

/** os-ken's rates per case name, or why it could not run */
function osKen(cases: Case[], seconds: number, rounds: number): Record<string, Rates> | string {
  const request = { seconds, rounds, cases: cases.map((c) => ({ name: c.name, messages: c.messages.map((b) => b.toString('hex')) })) };
  const run = spawnSync('/usr/bin/python3', [join(REPO_ROOT, 'bench', 'osken_codec.py')], {
    input: JSON.stringify(request),
    encoding: 'utf8',
  });
  if (run.error) return `os-ken not run: ${run.error.message}`;
  if (run.status !== 0) return `os-ken failed: ${run.stderr.trim().split('\n').pop()}`;
  return JSON.parse(run.stdout) as Record<string, Rates>;
}

function fmt(r: number | null | undefined): string {
  return r == null ? 'n/a' : Math.round(r).toLocaleString('en-US');
}

function ratio(a: number | null | undefined, b: number | null | undefined): string {
  return a == null || b == null ? '' : `${(a / b).toFixed(1)}×`;
}

function parseArgs(argv: string[]): { seconds: number; rounds: number } {
  const opts = { seconds: 1, rounds: 5 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (!(value > 0)) throw new Error(`${argv[i]} needs a positive number`);
    if (argv[i] === '--seconds') opts.seconds = value;
    else if (argv[i] === '--rounds') opts.rounds = Math.round(value);
    else throw new Error(`unknown option ${argv[i]} (use --seconds S --rounds N)`);
  }
  return opts;
}

function main(): void {
  const { seconds, rounds } = parseArgs(process.argv.slice(2));
  const cases = loadCases();
  const results = cases.map((c) => ours(c, seconds, rounds));
  const theirs = osKen(cases, seconds, rounds);
  console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}; best of ${rounds} × ${seconds} s per cell, messages/s\n`);
  console.log('| message | bytes | zonemesh decode | os-ken decode | ratio | zonemesh encode | os-ken encode | ratio |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  cases.forEach((c, i) => {
    const z = results[i]!;
    const o = typeof theirs === 'string' ? undefined : theirs[c.name];
    const bytes = Math.round(c.messages.reduce((n, m) => n + m.length, 0) / c.messages.length);
    console.log(`| ${c.name} | ${bytes} | ${fmt(z.decode)} | ${fmt(o?.decode)} | ${ratio(z.decode, o?.decode)} | ${fmt(z.encode)} | ${fmt(o?.encode)} | ${ratio(z.encode, o?.encode)} |`);
  });
  console.log('');
  cases.forEach((c) => console.log(`- ${c.name}: ${c.source}`));
  results.forEach((r) => r.error && console.log(`! ${r.error}`));
  if (typeof theirs === 'string') console.log(`! ${theirs}`);
  const flowModDecode = results[0]?.decode;
  if (flowModDecode != null) console.log(`\nflow_mod decode target 1,000,000/s: ${flowModDecode >= 1e6 ? 'met' : 'NOT met'}`);
}

main();
