import { EMPTY_MODEL, type NetworkModel } from './types';

/**
 * A string that is the same for two values exactly when `sameData` says they are equal: keys in
 * sorted order, absent and undefined alike, strings and key names prefixed by their length (no
 * escaping, and no string can pass for structure), bigints marked apart from numbers.
 */
export function contentKey(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return `${value.length}'${value}`;
    case 'number':
      return `#${value}`;
    case 'boolean':
      return value ? 'T' : 'F';
    case 'bigint':
      return `${value}n`;
    case 'undefined':
      return 'u';
    case 'object': {
      if (value === null) return 'N';
      if (Array.isArray(value)) {
        let key = '[';
        for (const v of value) key += `${contentKey(v)},`;
        return `${key}]`;
      }
      const o = value as Record<string, unknown>;
      let key = '{';
      for (const k of Object.keys(o).sort()) if (o[k] !== undefined) key += `${k.length}'${k}${contentKey(o[k])}`;
      return `${key}}`;
    }
    default:
      throw new TypeError(`model data holds a ${typeof value}`);
  }
}

/**
 * Content keys of one list's objects, in order: one string and each key's length, which a worker
 * thread receives or sends as two copies instead of thousands of strings.
 */
export interface ListKeys {
  readonly text: string;
  readonly lengths: Uint32Array;
}

export type ContentKeys = Readonly<Record<keyof NetworkModel, ListKeys>>;

/** one list of a version read afresh: its objects that the previous version lacks, and where each object comes from */
export interface ListMatch {
  readonly fresh: readonly object[];
  /** per object, the index of the previous version's equal object, or -1 for the next of `fresh` */
  readonly from: Int32Array;
  readonly keys: ListKeys;
}

export type ModelMatch = Readonly<Record<keyof NetworkModel, ListMatch>>;

const LISTS = Object.keys(EMPTY_MODEL) as (keyof NetworkModel)[];

function joined(keys: readonly string[]): ListKeys {
  return { text: keys.join(''), lengths: Uint32Array.from(keys, (k) => k.length) };
}

function splitKeys({ text, lengths }: ListKeys): string[] {
  const keys = new Array<string>(lengths.length);
  let at = 0;
  for (let i = 0; i < lengths.length; i++) keys[i] = text.slice(at, (at += lengths[i]!));
  return keys;
}

/** each version's content keys, kept beside it for the next version's match */
const keysOf = new WeakMap<NetworkModel, ContentKeys>();

/** The content keys of a model's objects: kept when the model was assembled, else computed (once). */
export function modelKeys(model: NetworkModel): ContentKeys {
  let keys = keysOf.get(model);
  if (!keys) keysOf.set(model, (keys = Object.fromEntries(LISTS.map((name) => [name, joined(model[name].map(contentKey))])) as unknown as ContentKeys));
  return keys;
}

/**
 * Where the parse is (a worker thread of the file store): each object of `read` matched by content
 * key to an equal object of the previous version, whose keys are `previous`. Two equal objects of
 * one list are never matched to the same previous object: the second counts as fresh.
 */
export function matchModel(read: NetworkModel, previous: ContentKeys | undefined): ModelMatch {
  const match: Partial<Record<keyof NetworkModel, ListMatch>> = {};
  for (const name of LISTS) {
    const list = read[name];
    const own = list.map(contentKey);
    const indexOf = new Map<string, number>();
    if (previous) splitKeys(previous[name]).forEach((k, i) => indexOf.has(k) || indexOf.set(k, i));
    const from = new Int32Array(list.length);
    const fresh: object[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < list.length; i++) {
      const at = seen.has(own[i]!) ? undefined : indexOf.get(own[i]!);
      seen.add(own[i]!);
      from[i] = at ?? -1;
      if (at === undefined) fresh.push(list[i]!);
    }
    match[name] = { fresh, from, keys: joined(own) };
  }
  return match as ModelMatch;
}

/**
 * The version a match describes, made of the previous version's very objects wherever they are
 * equal, and of the previous lists themselves where nothing changed: whatever compares versions
 * (the overlay view) compares by identity, however the version was read.
 */
export function assembleModel(match: ModelMatch, previous: NetworkModel): NetworkModel {
  const model: Partial<Record<keyof NetworkModel, readonly object[]>> = {};
  for (const name of LISTS) {
    const { fresh, from } = match[name];
    const before: readonly object[] = previous[name];
    const list = new Array<object>(from.length);
    let kept = from.length === before.length;
    let next = 0;
    for (let i = 0; i < from.length; i++) {
      const at = from[i]!;
      list[i] = at < 0 ? fresh[next++]! : before[at]!;
      kept &&= at === i;
    }
    model[name] = kept ? before : list;
  }
  const version = model as NetworkModel;
  keysOf.set(version, Object.fromEntries(LISTS.map((name) => [name, match[name].keys])) as unknown as ContentKeys);
  return version;
}

/** `read` interned against `previous` on this thread: matchModel then assembleModel. */
export function internModel(read: NetworkModel, previous: NetworkModel): NetworkModel {
  return assembleModel(matchModel(read, modelKeys(previous)), previous);
}
