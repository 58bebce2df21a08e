/**
 * Equality of plain model data (objects, arrays, strings, numbers, bigints), over every own key:
 * a field added to a model type is compared without a change here. A key that is absent equals
 * one that holds undefined, as the file store writes neither.
 */
export function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  // a re-read model compares every object: primitives inline, and y's extra keys by count, not lookup
  let defined = 0;
  for (const k in x) {
    const u = x[k];
    const v = y[k];
    if (u !== v && (typeof u !== 'object' || !sameData(u, v))) return false;
    if (u !== undefined) defined++;
  }
  for (const k in y) if (y[k] !== undefined) defined--;
  return defined === 0;
}
