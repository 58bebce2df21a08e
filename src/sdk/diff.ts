import type { FieldRef, FlowMod, Instruction, WireFlowStats } from '../openflow';
import { OfEncodeError, Writer, decodeWireFlowStats, encodeInstructions, encodeMatch, fieldSpec } from '../openflow';
import { canonicalField } from './match';
import { type Flow, deleteByCookie, flowKey, flowMod } from './flow';
import { appOfCookie, isEphemeral } from './cookie';

/** What the switch reports for one flow (a FlowStats entry carries all of these). */
export type InstalledFlow = Omit<Flow, 'table'>;

export interface FlowDiff {
  /** installed flows of ours that nothing desires */
  deletes: FlowMod[];
  /** same slot, different instructions only: modified in place so counters and duration survive */
  modifies: FlowMod[];
  /** missing flows, and flows whose cookie, timeouts or flags changed (an add replaces) */
  adds: FlowMod[];
  /** desired flows in one slot (table, priority, match): the switch can hold one, the later is sent */
  conflicts: SlotConflict[];
}

/** Two desired flows with one OpenFlow identity; `later` wins on the switch, `earlier` is lost. */
export interface SlotConflict {
  readonly earlier: Flow;
  readonly later: Flow;
}

export function instructionsKey(insts: readonly Instruction[]): string {
  const w = new Writer(64);
  encodeInstructions(w, insts);
  return w.finish().toString('hex');
}

const isFieldRef = (v: object): v is FieldRef => typeof (v as FieldRef).name === 'string' && typeof (v as FieldRef).header === 'number';

/** The same instructions with every field reference by its standard header (NXM_OF_ETH_SRC → eth_src). */
function withStandardFieldRefs<T>(v: T): T {
  if (typeof v !== 'object' || v === null || Buffer.isBuffer(v)) return v;
  if (Array.isArray(v)) return v.map(withStandardFieldRefs) as T;
  if (isFieldRef(v)) {
    const spec = fieldSpec(canonicalField(v.name));
    return (spec && spec.experimenter === undefined ? { name: spec.name, header: spec.header } : v) as T;
  }
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withStandardFieldRefs(x)])) as T;
}

/**
 * Whether a switch's instructions are the ones we desire. OVS reports a reg_move, output_reg or ct
 * zone with the NXM header of a field that has one, whichever header we sent (an OXM eth_src comes
 * back as NXM_OF_ETH_SRC), so field references are compared by field, not by header.
 */
export function sameInstructions(a: readonly Instruction[], b: readonly Instruction[]): boolean {
  const ka = instructionsKey(a);
  const kb = instructionsKey(b);
  return ka === kb || (ka.length === kb.length && instructionsKey(withStandardFieldRefs(a)) === instructionsKey(withStandardFieldRefs(b)));
}

/**
 * A desired flow's comparison forms, computed once per flow object: desired flows are shared by
 * identity across versions and switches and never changed once built, so a full sync of a
 * thousand switches compares each with what a switch reports without encoding it again.
 */
interface FlowForms {
  /** its OpenFlow identity by meaning (flowKey) */
  readonly slot: string;
  /** its ofp_match as we encode it (latin1, padding left out); undefined when it cannot be encoded */
  readonly match: string | undefined;
  /** its instructions as we encode them; undefined when they cannot be encoded */
  readonly instructions: Buffer | undefined;
  /** the same match and instructions as a switch reported them, when that differed (learnt on a decode) */
  echoedMatch: string | undefined;
  echoedInstructions: Buffer | undefined;
}

const formsByFlow = new WeakMap<Flow, FlowForms>();

function encoded(encode: (w: Writer) => void): Buffer | undefined {
  const w = new Writer(64);
  try {
    encode(w);
  } catch (e) {
    if (e instanceof OfEncodeError) return undefined; // sent anyway, where the send reports it
    throw e;
  }
  return Buffer.from(w.finish());
}

function formsOf(f: Flow): FlowForms {
  let forms = formsByFlow.get(f);
  if (!forms) {
    const match = encoded((w) => encodeMatch(w, f.match));
    forms = {
      slot: flowKey(f),
      match: match?.toString('latin1', 0, match.readUInt16BE(2)),
      instructions: encoded((w) => encodeInstructions(w, f.instructions)),
      echoedMatch: undefined,
      echoedInstructions: undefined,
    };
    formsByFlow.set(f, forms);
  }
  return forms;
}

const slotOf = (f: InstalledFlow): string => formsByFlow.get(f as Flow)?.slot ?? flowKey(f);

/** The desired flows by slot, the winner of each (the later of two in one slot), with the conflicts. */
interface Wanted {
  readonly bySlot: Map<string, Flow>;
  readonly cookies: Set<bigint>;
  readonly conflicts: SlotConflict[];
}

function wanted(desired: readonly Flow[]): Wanted {
  const bySlot = new Map<string, Flow>();
  const cookies = new Set<bigint>();
  const conflicts: SlotConflict[] = [];
  for (const f of desired) {
    const key = formsOf(f).slot;
    const earlier = bySlot.get(key);
    if (earlier) conflicts.push({ earlier, later: f });
    bySlot.set(key, f);
    cookies.add(f.cookie);
  }
  return { bySlot, cookies, conflicts };
}

/** How the diff reads one kind of installed entry. */
interface InstalledReader<I extends Pick<InstalledFlow, 'cookie' | 'idleTimeout' | 'hardTimeout' | 'flags'>> {
  /** the desired flow in the entry's slot */
  desiredFor(entry: I): Flow | undefined;
  sameInstructions(desired: Flow, entry: I): boolean;
  /** the entry as flow data (for a per-flow delete) */
  flow(entry: I): InstalledFlow;
}

/**
 * The diff itself. Installed flows that are not ours (app id 0 or not in `ownedApps`) and
 * ephemeral (reactive, idle-timed) flows are left alone. When every installed flow of a cookie is
 * stale, one delete by cookie replaces the per-flow deletes.
 */
function diffWith<I extends Pick<InstalledFlow, 'cookie' | 'idleTimeout' | 'hardTimeout' | 'flags'>>(want: Wanted, installed: readonly I[], ownedApps: ReadonlySet<number>, reader: InstalledReader<I>): FlowDiff {
  const diff: FlowDiff = { deletes: [], modifies: [], adds: [], conflicts: want.conflicts };
  const staleByCookie = new Map<bigint, I[]>();
  const present = new Set<Flow>();

  for (const f of installed) {
    const d = reader.desiredFor(f);
    if (d) {
      present.add(d);
      if (d.cookie !== f.cookie || d.idleTimeout !== f.idleTimeout || d.hardTimeout !== f.hardTimeout || d.flags !== f.flags) {
        diff.adds.push(flowMod('add', d));
      } else if (!reader.sameInstructions(d, f)) {
        diff.modifies.push(flowMod('modify_strict', d));
      }
      continue;
    }
    if (!ownedApps.has(appOfCookie(f.cookie)) || isEphemeral(f.cookie)) continue;
    const list = staleByCookie.get(f.cookie);
    if (list) list.push(f);
    else staleByCookie.set(f.cookie, [f]);
  }
  for (const [cookie, flows] of staleByCookie) {
    if (want.cookies.has(cookie)) {
      for (const f of flows) diff.deletes.push(flowMod('delete_strict', reader.flow(f)));
    } else {
      diff.deletes.push(deleteByCookie(cookie));
    }
  }
  for (const d of want.bySlot.values()) if (!present.has(d)) diff.adds.push(flowMod('add', d));
  return diff;
}

/**
 * Diff desired flows against installed ones (see diffWith), for installed flows as data: a
 * desired-state change (the owner's flows before), or a decoded flow dump. Desired flows that share
 * a slot are listed as conflicts (a key lookup the diff makes anyway).
 */
export function diffFlows(desired: readonly Flow[], installed: readonly InstalledFlow[], ownedApps: ReadonlySet<number>): FlowDiff {
  const want = wanted(desired);
  return diffWith(want, installed, ownedApps, {
    desiredFor: (f) => want.bySlot.get(slotOf(f)),
    sameInstructions: (d, f) => {
      const mine = formsOf(d).instructions;
      const theirs = formsByFlow.get(f as Flow)?.instructions;
      return (mine !== undefined && theirs !== undefined && mine.equals(theirs)) || sameInstructions(d.instructions, f.instructions);
    },
    flow: (f) => f,
  });
}

/** diffFlows against a flow dump read in place, with how many of its entries had to be decoded. */
export interface WireFlowDiff extends FlowDiff {
  /** installed entries whose match or instructions were not the bytes we (or a switch before) encoded, so were decoded and compared by meaning */
  decoded: number;
}

const sameBytes = (b: Buffer | undefined, buf: Buffer, start: number, end: number): boolean => b !== undefined && b.length === end - start && b.compare(buf, start, end) === 0;

/**
 * diffFlows against a flow dump as the switch sent it (wireFlowStats): an entry whose match and
 * instructions are the bytes of a desired flow is that flow, with nothing decoded; any other entry
 * is decoded and compared by meaning as diffFlows does, and where it then turns out to be a desired
 * flow the switch's bytes are remembered as that flow's (OVS reorders match fields and reports some
 * field references by their NXM headers), so the next switch's entry is found by bytes. Throws
 * OfDecodeError for an entry that must be decoded and does not decode.
 */
export function diffWireFlows(desired: readonly Flow[], installed: readonly WireFlowStats[], ownedApps: ReadonlySet<number>): WireFlowDiff {
  const want = wanted(desired);
  // table and priority → match bytes → the desired flow (both the bytes we encode and those echoed)
  const byWire = new Map<number, Map<string, Flow>>();
  const index = (slot: number, match: string | undefined, d: Flow): void => {
    if (match === undefined) return;
    let byMatch = byWire.get(slot);
    if (!byMatch) byWire.set(slot, (byMatch = new Map()));
    byMatch.set(match, d);
  };
  for (const d of want.bySlot.values()) {
    const forms = formsOf(d);
    const slot = d.tableId * 0x10000 + d.priority;
    index(slot, forms.match, d);
    if (forms.echoedMatch !== undefined) index(slot, forms.echoedMatch, d);
  }
  const decodedEntries = new Map<WireFlowStats, InstalledFlow>();
  const decode = (e: WireFlowStats): InstalledFlow => {
    let f = decodedEntries.get(e);
    if (!f) decodedEntries.set(e, (f = decodeWireFlowStats(e)));
    return f;
  };
  const diff = diffWith(want, installed, ownedApps, {
    desiredFor: (e) => {
      const match = e.buf.toString('latin1', e.matchStart, e.matchEnd);
      const d = byWire.get(e.tableId * 0x10000 + e.priority)?.get(match);
      if (d) return d;
      const found = want.bySlot.get(flowKey(decode(e)));
      if (found) formsOf(found).echoedMatch = match;
      return found;
    },
    sameInstructions: (d, e) => {
      const forms = formsOf(d);
      const end = e.at + e.length;
      if (sameBytes(forms.instructions, e.buf, e.instructionsStart, end) || sameBytes(forms.echoedInstructions, e.buf, e.instructionsStart, end)) return true;
      const same = sameInstructions(d.instructions, decode(e).instructions);
      if (same) forms.echoedInstructions = Buffer.from(e.buf.subarray(e.instructionsStart, end));
      return same;
    },
    flow: decode,
  });
  return { ...diff, decoded: decodedEntries.size };
}
