import type { Action, Instruction, OxmTlv } from '../openflow';

/**
 * Flows are immutable data, and a region's flows repeat the same small parts (a VPC's metadata
 * match, a register load, an output to port 3) hundreds of thousands of times. One shared object
 * per value keeps the compiled state small, which is what a large compile spends its time on: the
 * garbage collector copies and marks every object that survives. Only parts with a number value
 * are shared. Bounded: a table that fills up starts over (sharing is lost, nothing else).
 */
const LIMIT = 1 << 16;

type Primitive = number | bigint;
// strings (addresses) are left out: most are one port's, and would only fill the tables
const isPrimitive = (v: unknown): v is Primitive => typeof v === 'number' || typeof v === 'bigint';

/** a Map looks a bigint up about twice as slowly as a number; a field's values all have one type */
const keyOf = (value: Primitive): Primitive => (typeof value === 'bigint' && value <= Number.MAX_SAFE_INTEGER && value >= 0n ? Number(value) : value);

/** one object per (name, value): the name is a field or action type */
class Table<T> {
  private readonly byName = new Map<string, Map<Primitive, T>>();
  private size = 0;

  get(name: string, value: Primitive): T | undefined {
    return this.byName.get(name)?.get(keyOf(value));
  }

  add(name: string, value: Primitive, item: T): T {
    if (this.size >= LIMIT) {
      this.byName.clear();
      this.size = 0;
    }
    let byValue = this.byName.get(name);
    if (!byValue) this.byName.set(name, (byValue = new Map()));
    byValue.set(keyOf(value), item);
    this.size++;
    return item;
  }
}

const tlvs = new Table<OxmTlv>();
const setFields = new Table<Action>();
const outputs = new Table<Action>();
const gotos = new Map<number, Instruction>();

/** per field, the last address TLV made: one object's flows repeat its addresses in a row (one entry per field) */
const lastAddress = new Map<string, { field: string; value: string }>();

/**
 * The shared exact-match TLV for (field, value); an address (a string) is shared with the previous
 * flow that matched it, when that was the last address matched in this field.
 */
export function exactTlv(field: string, value: unknown): OxmTlv {
  if (isPrimitive(value)) return tlvs.get(field, value) ?? tlvs.add(field, value, { field, value } as OxmTlv);
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
