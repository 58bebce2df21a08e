import { readFileSync, statSync } from 'node:fs';
import {
  CaptureError,
  OPENFLOW_PORTS,
  isPcapng,
  pcapFormat,
  readFileHead,
  readOpenFlowCapture,
  type StreamEnds,
  type Timestamp,
} from '../capture';
import { decodeMessage, Framer, OfDecodeError, OFP_HEADER_LEN, OFPT } from '../openflow';
import { formatMessage } from '../openflow/text/messages';
import { CliError, EXIT, UsageError, defineCommand, type CommandLine } from './command';

type Format = 'json' | 'text';

interface DecodeOptions {
  file: string;
  format: Format;
  ports: Set<number>;
}

const DECODE_OPTIONS = [
  { name: 'json', description: 'one JSON object per message (64-bit integers as "0x…", bytes as hex)', default: 'on unless --text' },
  { name: 'text', description: 'one line per message in ovs-ofctl style', default: 'off' },
  { name: 'port', value: 'N', repeatable: true, description: 'the TCP ports of the OpenFlow streams in a capture (also N,N)', default: OPENFLOW_PORTS.join(',') },
] as const;

export const decodeCommand = defineCommand({
  name: 'decode',
  operands: 'FILE',
  summary: 'decodes OpenFlow messages in a raw file or in the TCP streams of a pcap capture',
  description:
    'Decodes a file of raw OpenFlow messages, or the OpenFlow streams in a pcap capture, one message per line; ' +
    'a message that does not decode is a line saying why.',
  options: DECODE_OPTIONS,
  positionals: true,
  exits: { problems: 'a message did not decode (its line says why)', failed: 'the file is unreadable, or neither pcap nor OpenFlow' },
  run: async (line) => {
    const opts = decodeOptions(line);
    const kind = sniff(opts.file);
    const out = new LinePrinter(opts.format);
    if (kind === 'pcap') await decodeCapture(opts, out);
    else decodeRawFile(opts.file, out);
    return out.problems > 0 ? EXIT.problems : EXIT.ok;
  },
});

function decodeOptions({ values, positionals }: CommandLine<typeof DECODE_OPTIONS>): DecodeOptions {
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'no FILE given' : `one FILE only, got ${positionals.length}`);
  if (values.json && values.text) throw new UsageError('--json and --text exclude each other');
  const ports = (values.port ?? []).flatMap((p) => p.split(',')).map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`--port ${p}: not a TCP port`);
    return n;
  });
  return { file: positionals[0]!, format: values.text ? 'text' : 'json', ports: new Set(ports.length > 0 ? ports : OPENFLOW_PORTS) };
}

/** What the file holds, from its first bytes; a CliError when it is neither pcap nor OpenFlow. */
function sniff(file: string): 'pcap' | 'openflow' {
  let head: Buffer;
  try {
    if (!statSync(file).isFile()) throw new CliError(`${file}: not a regular file`);
    head = readFileHead(file, OFP_HEADER_LEN);
  } catch (e) {
    if (e instanceof CliError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new CliError(`${file}: ${err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.message}`);
  }
  if (head.length === 0) throw new CliError(`${file}: empty file`);
  if (pcapFormat(head)) return 'pcap';
  if (isPcapng(head)) throw new CliError(`${file}: pcapng is not supported; convert it with: editcap -F pcap ${file} OUT.pcap`);
  // OpenFlow 1.0 (0x01) to 1.5 (0x06); a bad length is then the framer's to report
  if (head[0]! >= 0x01 && head[0]! <= 0x06) return 'openflow';
  throw new CliError(`${file}: neither a pcap capture nor OpenFlow messages (starts with ${head.subarray(0, 4).toString('hex')})`);
}

function decodeRawFile(file: string, out: LinePrinter): void {
  const bytes = readFileSync(file);
  const framer = new Framer();
  let offset = 0;
  for (const msg of framer.messages(bytes)) {
    out.message({ offset }, msg);
    offset += msg.length;
  }
  if (framer.error) return out.error({ offset }, framer.error);
  if (framer.buffered > 0) {
    const len = bytes.length - offset >= 4 ? bytes.readUInt16BE(offset + 2) : undefined;
    out.error({ offset }, new OfDecodeError('truncated', `the file ends inside a message: ${framer.buffered} of ${len ?? '?'} bytes`, { msgType: bytes[offset + 1] }));
  }
}

async function decodeCapture(opts: DecodeOptions, out: LinePrinter): Promise<void> {
  try {
    await readOpenFlowCapture(opts.file, opts.ports, (e) => {
      const where = { at: e.at, stream: e.stream };
      if (e.kind === 'message') out.message(where, e.bytes);
      else out.error(where, e.error);
    });
  } catch (e) {
    if (e instanceof CaptureError) throw new CliError(`${opts.file}: ${e.message}`);
    throw e;
  }
}

/** Where a line's message came from: a byte offset in a raw file, or a stream and time in a capture. */
type Where = { offset: number } | { stream: StreamEnds; at: Timestamp };

/** Writes one line per message or problem, and counts the problems. */
class LinePrinter {
  problems = 0;

  constructor(private readonly format: Format) {}

  message(where: Where, bytes: Buffer): void {
    const res = decodeMessage(bytes);
    if (!res.ok) return this.error(where, res.error, bytes);
    if (this.format === 'text') this.write(`${textPrefix(where)}${formatMessage(res.message)}`);
    else this.write(toJson({ ...jsonWhere(where), message: res.message }));
  }

  error(where: Where, error: OfDecodeError | CaptureError, bytes?: Buffer): void {
    this.problems++;
    if (this.format === 'text') return this.write(`${textPrefix(where)}ERROR ${error.toString()}`);
    const c = error instanceof OfDecodeError ? error.context : {};
    const described = {
      kind: error instanceof OfDecodeError ? error.kind : 'capture',
      message: error.message,
      offset: c.offset,
      type: c.msgType === undefined ? undefined : (OFPT[c.msgType] ?? c.msgType),
      xid: c.xid,
    };
    this.write(toJson({ ...jsonWhere(where), error: described, bytes }));
  }

  private write(line: string): void {
    process.stdout.write(`${line}\n`);
  }
}

function jsonWhere(w: Where): Record<string, unknown> {
  return 'stream' in w ? { ts: isoTime(w.at), src: w.stream.src, dst: w.stream.dst } : { offset: w.offset };
}

function textPrefix(w: Where): string {
  return 'stream' in w ? `${isoTime(w.at)} ${w.stream.src} > ${w.stream.dst} ` : `@${w.offset} `;
}

/** UTC with all nine fractional digits, which pcap timestamps may carry */
function isoTime(t: Timestamp): string {
  return `${new Date(t.seconds * 1000).toISOString().slice(0, 19)}.${String(t.nanos).padStart(9, '0')}Z`;
}

/** JSON with 64-bit integers as "0x…" strings and byte arrays as hex strings. */
function toJson(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key, v: unknown) {
    const raw = this[key]; // before Buffer.toJSON turned it into {type, data}
    if (Buffer.isBuffer(raw)) return raw.toString('hex');
    if (typeof v === 'bigint') return `0x${v.toString(16)}`;
    return v;
  });
}
