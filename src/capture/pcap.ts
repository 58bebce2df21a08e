import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { parse as parsePcap } from 'pcap-parser';

/** A capture file that cannot be read as a whole: wrong format, cut short, corrupt. */
export class CaptureError extends Error {
  override readonly name = 'CaptureError';
}

export const PCAP_HEADER_LEN = 24;
const RECORD_HEADER_LEN = 16;
/** a record longer than this (and than the file's snaplen) means a corrupt record header */
const MAX_SANE_RECORD = 256 * 1024;

/** LINKTYPE_* values this package can take apart */
export const LINKTYPE_ETHERNET = 1;

export interface PcapFormat {
  littleEndian: boolean;
  /** timestamps hold nanoseconds rather than microseconds */
  nanos: boolean;
}

/** The classic libpcap format from its magic number (the first 4 bytes), or undefined. */
export function pcapFormat(head: Buffer): PcapFormat | undefined {
  if (head.length < 4) return undefined;
  switch (head.readUInt32BE(0)) {
    case 0xa1b2c3d4: return { littleEndian: false, nanos: false };
    case 0xd4c3b2a1: return { littleEndian: true, nanos: false };
    case 0xa1b23c4d: return { littleEndian: false, nanos: true };
    case 0x4d3cb2a1: return { littleEndian: true, nanos: true };
    default: return undefined;
  }
}

/** pcapng starts with a Section Header Block, type 0x0A0D0D0A (the same in both byte orders). */
export function isPcapng(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32BE(0) === 0x0a0d0d0a;
}

export interface PcapRecord {
  /** 1-based, as Wireshark numbers frames */
  number: number;
  /** seconds since the Unix epoch */
  seconds: number;
  /** nanoseconds within that second */
  nanos: number;
  linkType: number;
  /** the captured bytes, from the link-layer header on */
  data: Buffer;
  /** the frame's length on the wire; larger than data.length when the snaplen cut it */
  originalLength: number;
}

export interface PcapSummary {
  records: number;
  linkType: number;
}

/**
 * Streams the records of a libpcap file (either byte order, micro- or nanosecond timestamps)
 * through pcap-parser, calling `onRecord` for each. Rejects with CaptureError when the file
 * is not pcap or ends inside a record; an exception from `onRecord` stops reading and rejects too.
 */
export function readPcap(path: string, onRecord: (r: PcapRecord) => void): Promise<PcapSummary> {
  const size = statSync(path).size;
  const head = readFileHead(path, PCAP_HEADER_LEN);
  const format = pcapFormat(head);
  if (!format) {
    return Promise.reject(new CaptureError(isPcapng(head) ? 'pcapng is not supported; convert it with: editcap -F pcap IN OUT' : 'not a pcap file'));
  }
  if (size < PCAP_HEADER_LEN) {
    return Promise.reject(new CaptureError(`truncated pcap: ${size} bytes, less than the ${PCAP_HEADER_LEN}-byte file header`));
  }
  const input = format.nanos ? withMicrosecondMagic(path, format) : createReadStream(path);
  const nanosPerUnit = format.nanos ? 1 : 1000;

  return new Promise((resolve, reject) => {
    let settled = false;
    let linkType = -1;
    let snaplen = 0;
    let consumed = PCAP_HEADER_LEN;
    let records = 0;
    const fail = (e: unknown): void => {
      if (settled) return;
      settled = true;
      input.destroy();
      reject(e);
    };
    const parser = parsePcap(input);
    parser.on('globalHeader', (h) => {
      linkType = h.linkLayerType;
      snaplen = h.snapshotLength;
    });
    parser.on('packetHeader', (h) => {
      if (h.capturedLength > Math.max(snaplen, MAX_SANE_RECORD)) {
        fail(new CaptureError(`corrupt pcap: record ${records + 1} at byte ${consumed} claims ${h.capturedLength} captured bytes`));
      }
    });
    parser.on('packet', ({ header, data }) => {
      if (settled) return;
      consumed += RECORD_HEADER_LEN + header.capturedLength;
      try {
        onRecord({
          number: ++records,
          seconds: header.timestampSeconds,
          nanos: header.timestampMicroseconds * nanosPerUnit,
          linkType,
          data,
          originalLength: header.originalLength,
        });
      } catch (e) {
        fail(e);
      }
    });
    parser.on('error', (e) => fail(new CaptureError(e.message)));
    parser.on('end', () => {
      if (consumed < size) {
        fail(new CaptureError(`truncated pcap: record ${records + 1} at byte ${consumed} is incomplete (${size - consumed} bytes left)`));
      }
      if (settled) return;
      settled = true;
      resolve({ records, linkType });
    });
  });
}

/** the first `n` bytes of a file (fewer if it is shorter) */
export function readFileHead(path: string, n: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    return buf.subarray(0, readSync(fd, buf, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

/** pcap-parser knows only the microsecond magic: hand it the file with that magic instead. */
function withMicrosecondMagic(path: string, format: PcapFormat): Readable {
  const magic = Buffer.alloc(4);
  if (format.littleEndian) magic.writeUInt32LE(0xa1b2c3d4);
  else magic.writeUInt32BE(0xa1b2c3d4);
  return Readable.from(
    (async function* () {
      yield magic;
      yield* createReadStream(path, { start: 4 });
    })(),
  );
}
