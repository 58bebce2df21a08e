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

const MAC_RE = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i;

export function parseMac(s: string): Buffer {
  const m = MAC_RE.exec(s);
  if (!m) throw new OfEncodeError(`bad MAC address '${s}'`);
  return Buffer.from(m.slice(1).map((h) => parseInt(h, 16)));
}

export function formatIpv4(b: Uint8Array, at = 0): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

export function ipv4ToNumber(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4) throw new OfEncodeError(`bad IPv4 address '${s}'`);
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw new OfEncodeError(`bad IPv4 address '${s}'`);
    v = v * 256 + Number(p);
  }
  return v;
}

export function parseIpv4(s: string): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(ipv4ToNumber(s));
  return b;
}

export function numberToIpv4(v: number): string {
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
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
