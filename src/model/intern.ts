import type { NetworkModel } from './types';

/**
 * A string that is the same for two values exactly when `sameData` says they are equal: keys in
 * sorted order, absent and undefined alike, strings quoted, bigints marked.
 */
export function contentKey(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
    case 'boolean':
      return String(value);
    case 'bigint':
      return `${value}n`;
    case 'undefined':
      return 'u';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) return `[${value.map(contentKey).join(',')}]`;
      const o = value as Record<string, unknown>;
      let key = '{';
      for (const k of Object.keys(o).sort()) if (o[k] !== undefined) key += `${k}:${contentKey(o[k])},`;
      return `${key}}`;
    }
    default:
      throw new TypeError(`model data holds a ${typeof value}`);
  }
}

/** a list's content keys, position by position, kept beside every list `internModel` returned or read */
const keysOf = new WeakMap<readonly object[], readonly string[]>();
/** a list's objects by content key (the first of equal ones) */
const indexOf = new WeakMap<readonly object[], ReadonlyMap<string, object>>();

function keyed(list: readonly object[]): { keys: readonly string[]; index: ReadonlyMap<string, object> } {
  let keys = keysOf.get(list);
  let index = indexOf.get(list);
  if (!keys || !index) {
    keys = list.map(contentKey);
    const byKey = new Map<string, object>();
    list.forEach((o, i) => byKey.has(keys![i]!) || byKey.set(keys![i]!, o));
    keysOf.set(list, keys);
    indexOf.set(list, (index = byKey));
  }
  return { keys, index };
}

/**
 * `next` with every object equal in content to one of `previous` replaced by that very object, and
 * every list that then holds the very same objects replaced by the previous list: whatever compares
 * a store's model versions (the overlay view) compares by identity, however the version was read.
 * A list with two equal objects is left as it is (interned, it would hold one object twice). Each
 * object's content key is computed once: the returned lists keep theirs.
 */
export function internModel(next: NetworkModel, previous: NetworkModel): NetworkModel {
  const out: Record<string, readonly object[]> = {};
  for (const name of Object.keys(next) as (keyof NetworkModel)[]) out[name] = internList<object>(next[name], previous[name] ?? []);
  return out as unknown as NetworkModel;
}

function internList<T extends object>(now: readonly T[], before: readonly T[]): readonly T[] {
  if (now === before) return before;
  const old = keyed(before);
  const keys = new Array<string>(now.length);
  const index = new Map<string, T>();
  const list = new Array<T>(now.length);
  let kept = now.length === before.length;
  for (let i = 0; i < now.length; i++) {
    const fresh = now[i]!;
    // an object kept in place (an etcd store's unchanged one) has its key already
    const key = fresh === before[i] ? old.keys[i]! : contentKey(fresh);
    const item = (old.index.get(key) as T | undefined) ?? fresh;
    keys[i] = key;
    list[i] = item;
    index.set(key, item);
    kept &&= item === before[i];
  }
  if (index.size < now.length) {
    keysOf.set(now, keys);
    indexOf.set(now, new Map(now.map((o, i) => [keys[i]!, o])));
    return now;
  }
  if (kept) return before;
  keysOf.set(list, keys);
  indexOf.set(list, index);
  return list;
}
