import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isInteger, parse } from 'lossless-json';
import { RYU_OF13_DIR } from '../../helpers/paths';


export interface Vector {
  name: string;
  bytes: Buffer;
  /** Ryu's JSON, normalized: see normalize() */
  expected: unknown;
}

/** Integers become numbers when safe, decimal strings otherwise; len/length keys are dropped (derived). */
export function normalize(v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === 'len' || k === 'length') continue;
      out[k] = normalize(x);
    }
    return out;
  }
  return v;
}

export function parseRyuJson(text: string): unknown {
  return normalize(
    parse(text, undefined, (s: string) => (isInteger(s) ? BigInt(s) : Number(s))),
  );
}

export function loadVectors(dir = RYU_OF13_DIR): Vector[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.packet'))
    .sort()
    .map((f) => ({
      name: f.replace(/\.packet$/, ''),
      bytes: readFileSync(join(dir, f)),
      expected: parseRyuJson(readFileSync(join(dir, `${f}.json`), 'utf8')),
    }));
}
