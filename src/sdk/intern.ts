import type { Action, Instruction, Match, OxmTlv } from '../openflow';

/**
 * Flows are immutable data, and a region's flows repeat the same small parts (a VPC's metadata
 * match, a register load, an output to port 3, "apply output 3" on every hypervisor) hundreds of
 * thousands of times. One shared object per value keeps the compiled state small, which is what a
 * large compile spends its time on: the garbage collector copies and marks every object that
 * survives. Only parts with a number value, and lists made of shared parts, are shared. Bounded: a
 * table that fills up starts over (sharing is lost, nothing else).
 */
const LIMIT = 1 << 16;

type Primitive = number | bigint;
// strings (addresses) are left out: most are one port's, and would only fill the tables
const isPrimitive = (v: unknown): v is Primitive => typeof v === 'number' || typeof v === 'bigint';

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** a Map looks a bigint up about twice as slowly as a number; a field's values all have one type */
const keyOf = (value: Primitive): Primitive => (typeof value === 'bigint' && value <= SAFE && value >= 0n ? Number(value) : value);

/** values below this are found by index, the rest in a Map: ports, ethertypes of IPv4 and ARP, zones are small */
const SMALL = 4096;
const isSmall = (value: Primitive): value is number => typeof value === 'number' && value >= 0 && value < SMALL && Number.isInteger(value);
/** values in one name's Map, at most */
const PER_NAME = 1 << 14;

/**
 * One name's values, with the last one looked up: an owner's flows repeat their values in a row.
 * A name whose Map fills up with values it was hardly ever asked for again (port keys: one port's
 * each, repeated only by that port's own flows, in a row) stops keeping its large values: a lookup
 * in a Map that never answers costs a hash, and the Map was cleared every 16,384 values anyway.
 */
class Values<T> {
  readonly small: (T | undefined)[] = [];
  readonly byValue = new Map<Primitive, T>();
  lastValue: Primitive | undefined = undefined;
  last: T | undefined = undefined;
  /** answers from byValue since it was last cleared */
  private found = 0;
  /** large values are not kept: the last filling was answered for less than one value in ten */
  private unshared = false;

  /** whether an equal value is found again: kept by index or in the Map */
  keeps(value: Primitive): boolean {
    return isSmall(value) || !this.unshared;
  }

  find(value: Primitive): T | undefined {
    if (isSmall(value)) return this.small[value];
    if (this.unshared) return undefined;
    const item = this.byValue.get(keyOf(value));
    if (item !== undefined) this.found++;
    return item;
  }

  put(value: Primitive, item: T): void {
    if (isSmall(value)) {
      // filled up to the index first: an array with holes is a slower kind in V8
      while (this.small.length < value) this.small.push(undefined);
      this.small[value] = item;
      return;
    }
    if (this.unshared) return;
    if (this.byValue.size >= PER_NAME) {
      this.unshared = this.found < PER_NAME / 10;
      this.byValue.clear();
      this.found = 0;
      if (this.unshared) return;
    }
    this.byValue.set(keyOf(value), item);
  }
}

/**
 * One object per (name, value): the name is a field or action type. Bounded per name: a name whose
 * values are one port's each (port keys are 31-bit hashes) starts over alone, and every other
 * name keeps sharing.
 */
class Table<T> {
  private readonly byName = new Map<string, Values<T>>();

  get(name: string, value: Primitive): T | undefined {
    const values = this.byName.get(name);
    if (values === undefined) return undefined;
    if (values.lastValue === value) return values.last;
    const item = values.find(value);
    if (item !== undefined) {
      values.lastValue = value;
      values.last = item;
    }
    return item;
  }

  /** whether (name, value) is one object for every caller (a name not seen yet: it will be) */
  keeps(name: string, value: Primitive): boolean {
    return this.byName.get(name)?.keeps(value) ?? true;
  }

  add(name: string, value: Primitive, item: T): T {
    let values = this.byName.get(name);
    if (!values) this.byName.set(name, (values = new Values()));
    values.put(value, item);
    values.lastValue = value;
    values.last = item;
    return item;
  }
}

const tlvTable = new Table<OxmTlv>();
const setFields = new Table<Action>();
const outputs = new Table<Action>();
const metadataWrites = new Table<Instruction>();
const gotos = new Map<number, Instruction>();

/** per field, the last address TLV made: one object's flows repeat its addresses in a row (one entry per field) */
const lastAddress = new Map<string, { field: string; value: string }>();

/**
 * The shared exact-match TLV for (field, value); an address (a string) is shared with the previous
 * flow that matched it, when that was the last address matched in this field.
 */
export function exactTlv(field: string, value: unknown): OxmTlv {
  if (isPrimitive(value)) return tlvTable.get(field, value) ?? tlvTable.add(field, value, { field, value } as OxmTlv);
  if (typeof value !== 'string') return { field, value } as OxmTlv;
  const last = lastAddress.get(field);
  if (last?.value === value) return last as OxmTlv;
  const tlv = { field, value };
  lastAddress.set(field, tlv);
  return tlv as OxmTlv;
}

/** The shared equal action for a set_field of a number or an output without maxLen; any other action as it is. */
export function sharedAction(a: Action): Action {
  if (a.type === 'set_field') {
    if (a.field.field === 'unknown') return a;
    const { field, value } = a.field;
    if (a.field.mask !== undefined || !isPrimitive(value)) return a;
    return setFields.get(field, value) ?? setFields.add(field, value, { type: 'set_field', field: exactTlv(field, value) });
  }
  if (a.type === 'output' && a.maxLen === 0) return outputs.get('output', a.port) ?? outputs.add('output', a.port, a);
  return a;
}

/** The shared goto_table instruction for a table id (256 at most). */
export function gotoTable(tableId: number): Instruction {
  let g = gotos.get(tableId);
  if (!g) gotos.set(tableId, (g = { type: 'goto_table', tableId }));
  return g;
}

const ALL_ONES = 0xffffffffffffffffn;

/** The shared write_metadata instruction for a value under the full mask; any other as it is. */
export function metadataWrite(metadata: bigint, metadataMask: bigint): Instruction {
  if (metadataMask !== ALL_ONES) return { type: 'write_metadata', metadata, metadataMask };
  return metadataWrites.get('metadata', metadata) ?? metadataWrites.add('metadata', metadata, { type: 'write_metadata', metadata, metadataMask });
}

/**
 * Instruction lists of the forms that repeat on every hypervisor ("apply output 3", "apply ct
 * commit, output 3", "go to table 4", nothing), shared by identity of their parts. Only lists of
 * actions that are themselves shared (sharedAction) or usually are (a ct without nested actions,
 * which apps make once per zone) are looked up: a list of one flow's own actions would only fill
 * the table. Any other list is made as it is.
 */
class InstructionLists {
  private readonly none: Instruction[] = [];
  private readonly gotoOnly = new Map<Instruction, Instruction[]>();
  /** by the first action: the list of it alone, it then a goto, it then a second action */
  private readonly byFirst = new Map<Action, { alone?: Instruction[]; thenGoto?: Map<Instruction, Instruction[]>; pairs?: Map<Action, Instruction[]> }>();
  private size = 0;

  /** `actions` as given (made shared here); nothing is allocated when the list exists */
  get(actions: readonly Action[], goto: Instruction | undefined): Instruction[] {
    if (actions.length === 0) {
      if (goto === undefined) return this.none;
      let list = this.gotoOnly.get(goto);
      if (!list) this.gotoOnly.set(goto, (list = [goto]));
      return list;
    }
    if (actions.length > 2 || (actions.length === 2 && goto !== undefined)) return make(actions.map(sharedAction), goto);
    const first = sharedAction(actions[0]!);
    const second = actions.length === 2 ? sharedAction(actions[1]!) : undefined;
    if (!repeats(first) || (second !== undefined && !repeats(second))) return make(second === undefined ? [first] : [first, second], goto);
    if (this.size >= LIMIT) {
      this.byFirst.clear();
      this.size = 0;
    }
    let entry = this.byFirst.get(first);
    if (!entry) this.byFirst.set(first, (entry = {}));
    let list: Instruction[] | undefined;
    if (second !== undefined) {
      const pairs = (entry.pairs ??= new Map());
      list = pairs.get(second);
      if (!list) pairs.set(second, (list = this.made([first, second], goto)));
    } else if (goto !== undefined) {
      const thenGoto = (entry.thenGoto ??= new Map());
      list = thenGoto.get(goto);
      if (!list) thenGoto.set(goto, (list = this.made([first], goto)));
    } else list = entry.alone ??= this.made([first], goto);
    return list;
  }

  /** a new list, counted against the bound */
  private made(actions: Action[], goto: Instruction | undefined): Instruction[] {
    this.size++;
    return make(actions, goto);
  }
}

/**
 * The actions sharedAction shares, and ct without nested actions. Not a set_field of a value its
 * field no longer keeps (a port key): a list keyed by it would be one flow's, an entry in the table
 * that only fills it.
 */
const repeats = (a: Action): boolean =>
  a.type === 'output' ||
  (a.type === 'set_field' && a.field.field !== 'unknown' && a.field.mask === undefined && isPrimitive(a.field.value) && setFields.keeps(a.field.field, a.field.value)) ||
  (a.type === 'ct' && a.actions.length === 0);

function make(actions: Action[], goto: Instruction | undefined): Instruction[] {
  const instruction: Instruction = { type: 'apply_actions', actions };
  return goto === undefined ? [instruction] : [instruction, goto];
}

const instructionLists = new InstructionLists();

/** The instruction list "apply `actions` (each made shared: sharedAction), then the goto if any", shared with equal ones where it repeats. */
export function sharedInstructions(actions: readonly Action[], goto: Instruction | undefined): Instruction[] {
  return instructionLists.get(actions, goto);
}

const singleTlvMatches = new Map<OxmTlv, Match>();
const NO_MATCH: Match = [];

/**
 * The first `count` TLVs of `tlvs` (scratch space the caller reuses) as a match: the shared one
 * when that is one TLV of a number value its field keeps (an in_port, say; not a port key) or none, else an exact-length copy.
 */
export function sharedMatch(tlvs: readonly OxmTlv[], count: number): Match {
  if (count === 0) return NO_MATCH;
  const tlv = tlvs[0]!;
  if (count > 1 || tlv.field === 'unknown' || tlv.mask !== undefined || !isPrimitive(tlv.value) || !tlvTable.keeps(tlv.field, tlv.value)) return tlvs.slice(0, count);
  let match = singleTlvMatches.get(tlv);
  if (!match) {
    if (singleTlvMatches.size >= LIMIT) singleTlvMatches.clear();
    singleTlvMatches.set(tlv, (match = [tlv]));
  }
  return match;
}
