import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/paths';

export const FIXTURES = join(REPO_ROOT, 'test', 'packet', 'fixtures');

/** The frames of a classic libpcap file (either byte order, µs or ns timestamps). */
export function readPcapFrames(file: string): Buffer[] {
  const data = readFileSync(file);
  const magic = data.readUInt32LE(0);
  const littleEndian = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!littleEndian && magic !== 0xd4c3b2a1 && magic !== 0x4d3cb2a1) throw new Error(`${file}: not a pcap file`);
  const u32 = (at: number) => (littleEndian ? data.readUInt32LE(at) : data.readUInt32BE(at));
  if (u32(20) !== 1) throw new Error(`${file}: link type ${u32(20)}, expected Ethernet`);
  const frames: Buffer[] = [];
  for (let at = 24; at < data.length; ) {
    const captured = u32(at + 8);
    if (captured !== u32(at + 12)) throw new Error(`${file}: frame ${frames.length + 1} was cut by the snap length`);
    frames.push(data.subarray(at + 16, at + 16 + captured));
    at += 16 + captured;
  }
  return frames;
}

export interface ScapyVector {
  name: string;
  summary: string;
  bytes: Buffer;
}

export function loadScapyVectors(): Map<string, ScapyVector> {
  const json = JSON.parse(readFileSync(join(FIXTURES, 'scapy-vectors.json'), 'utf8')) as {
    vectors: { name: string; summary: string; hex: string }[];
  };
  return new Map(json.vectors.map((v) => [v.name, { name: v.name, summary: v.summary, bytes: Buffer.from(v.hex, 'hex') }]));
}

export function loadKernelFrames(): Buffer[] {
  return readPcapFrames(join(FIXTURES, 'kernel.pcap'));
}

/** Where two byte strings first differ, for failure messages. */
export function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

export function sameBytes(ours: Buffer, expected: Buffer): string | undefined {
  if (ours.equals(expected)) return undefined;
  const at = firstDiff(ours, expected);
  const near = (b: Buffer) => `${b.length} bytes, ${b.subarray(at, at + 8).toString('hex')}… there`;
  return `bytes differ at offset ${at}: ours ${near(ours)}, expected ${near(expected)}`;
}
