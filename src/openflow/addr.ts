import { OfEncodeError } from './errors';

const HEX_CODES = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));
const COLON = 0x3a;
/** reused: formatMac builds 17 char codes without intermediate strings (it runs per packet-in) */
const macCodes = new Array<number>(17).fill(COLON);

/** 6 bytes to 'aa:bb:cc:dd:ee:ff' */
export function formatMac(b: Uint8Array, at = 0): string {
  for (let i = 0; i < 6; i++) {
    const v = b[at + i]!;
    macCodes[i * 3] = HEX_CODES[v >> 4]!;
    macCodes[i * 3 + 1] = HEX_CODES[v & 15]!;
  }
  return String.fromCharCode.apply(null, macCodes);
}

const macBytes = Buffer.alloc(6);

/** A MAC held as a 48-bit number (the first byte most significant) as 'aa:bb:cc:dd:ee:ff'. */
export function numberToMac(v: number): string {
  const high = Math.floor(v / 0x1000000);
  macBytes[0] = high >>> 16;
  macBytes[1] = (high >>> 8) & 0xff;
  macBytes[2] = high & 0xff;
  macBytes[3] = (v >>> 16) & 0xff;
  macBytes[4] = (v >>> 8) & 0xff;
  macBytes[5] = v & 0xff;
  return formatMac(macBytes);
}

/** hex digit value by char code (either case), -1 for any other character */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let d = 0; d < 16; d++) {
  HEX_VALUE['0123456789abcdef'.charCodeAt(d)] = d;
  HEX_VALUE['0123456789ABCDEF'.charCodeAt(d)] = d;
}

/**
 * Writes the 6 bytes of 'aa:bb:cc:dd:ee:ff' (hex digits of either case) to `b[at..at+6)`.
 * Returns false, with `b` possibly part written, when `s` is not such a MAC. A table, not a
 * regex: encoders parse a MAC for every flow they send.
 */
export function writeMac(s: string, b: Uint8Array, at: number): boolean {
  if (s.length !== 17) return false;
  for (let i = 0; i < 6; i++) {
    const c0 = s.charCodeAt(3 * i);
    const c1 = s.charCodeAt(3 * i + 1);
    const hi = c0 < 128 ? HEX_VALUE[c0]! : -1;
    const lo = c1 < 128 ? HEX_VALUE[c1]! : -1;
    if ((hi | lo) < 0 || (i < 5 && s.charCodeAt(3 * i + 2) !== COLON)) return false;
    b[at + i] = (hi << 4) | lo;
  }
  return true;
}

export function parseMac(s: string): Buffer {
  const b = Buffer.allocUnsafe(6);
  if (!writeMac(s, b, 0)) throw new OfEncodeError(`bad MAC address '${s}'`);
  return b;
}

export function formatIpv4(b: Uint8Array, at = 0): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

const DOT = 0x2e;

/** 'a.b.c.d', each part 1 to 3 decimal digits and at most 255, as a 32-bit number */
export function ipv4ToNumber(s: string): number {
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === DOT && digits > 0 && dots < 3) {
      v = v * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 0x30 && c <= 0x39 && digits < 3) {
      part = part * 10 + (c - 0x30);
      digits++;
    } else {
      throw new OfEncodeError(`bad IPv4 address '${s}'`);
    }
    if (part > 255) throw new OfEncodeError(`bad IPv4 address '${s}'`);
  }
  if (dots !== 3 || digits === 0) throw new OfEncodeError(`bad IPv4 address '${s}'`);
  return v * 256 + part;
}

export function parseIpv4(s: string): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(ipv4ToNumber(s));
  return b;
}

/** 16 bytes to RFC 5952 text (lower case, longest zero run compressed) */
export function formatIpv6(b: Uint8Array, at = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[at + 2 * i]! << 8) | b[at + 2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

export function parseIpv6(s: string): Buffer {
  const bad = () => new OfEncodeError(`bad IPv6 address '${s}'`);
  let head = s;
  let tail = '';
  const dbl = s.indexOf('::');
  if (dbl >= 0) {
    head = s.slice(0, dbl);
    tail = s.slice(dbl + 2);
    if (tail.includes('::')) throw bad();
  }
  const toGroups = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    items.forEach((it, i) => {
      if (i === items.length - 1 && it.includes('.')) {
        const v = ipv4ToNumber(it);
        out.push(v >>> 16, v & 0xffff);
      } else {
        if (!/^[0-9a-f]{1,4}$/i.test(it)) throw bad();
        out.push(parseInt(it, 16));
      }
    });
    return out;
  };
  const h = toGroups(head);
  const t = toGroups(tail);
  const fill = 8 - h.length - t.length;
  if (dbl >= 0 ? fill < 1 : fill !== 0) throw bad();
  const groups = [...h, ...new Array<number>(fill).fill(0), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((x, i) => b.writeUInt16BE(x, 2 * i));
  return b;
}
