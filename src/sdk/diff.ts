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
  readonly flow: Flow;
  /** its OpenFlow identity by meaning (flowKey) */
  readonly slot: string;
  /**
   * its ofp_match as we encode it (padding left out), and wireHash of it; undefined when it cannot be
   * encoded. Bytes are kept as latin1 strings, compared with a dump's bytes in place (sameBytes).
   */
  readonly match: string | undefined;
  readonly matchHash: number;
  /** its instructions as we encode them; undefined when they cannot be encoded */
  readonly instructions: string | undefined;
  /** the same match (and its wireHash) and instructions as a switch reported them, when that differed (learnt on a decode) */
  echoedMatch: string | undefined;
  echoedMatchHash: number;
  echoedInstructions: string | undefined;
  /** the diff that last found it installed (see diffWith) */
  seenBy: number;
}

const formsByFlow = new WeakMap<Flow, FlowForms>();

/** What `encode` writes, as a view of its writer (read it at once); undefined when it cannot be encoded. */
function encoded(encode: (w: Writer) => void): Buffer | undefined {
  const w = new Writer(64);
  try {
    encode(w);
  } catch (e) {
    if (e instanceof OfEncodeError) return undefined; // sent anyway, where the send reports it
    throw e;
  }
  return w.finish();
}

/** FNV-1a of a flow's table, priority and match bytes, in 30 bits (a small integer to V8): the flow dump's entries are looked up by it */
function wireHash(tableId: number, priority: number, buf: Buffer, start: number, end: number): number {
  let h = Math.imul(0x811c9dc5 ^ tableId, 0x01000193);
  h = Math.imul(h ^ priority, 0x01000193);
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h & 0x3fffffff;
}

/** `bytes` (latin1) are exactly `buf[start, end)`, compared in place */
function sameBytes(bytes: string | undefined, buf: Buffer, start: number, end: number): boolean {
  if (bytes === undefined || bytes.length !== end - start) return false;
  for (let i = 0; i < bytes.length; i++) if (bytes.charCodeAt(i) !== buf[start + i]) return false;
  return true;
}

function formsOf(f: Flow): FlowForms {
  let forms = formsByFlow.get(f);
  if (!forms) {
    const match = encoded((w) => encodeMatch(w, f.match));
    const matchEnd = match?.readUInt16BE(2) ?? 0;
    forms = {
      flow: f,
      slot: flowKey(f),
      match: match?.toString('latin1', 0, matchEnd),
      matchHash: match ? wireHash(f.tableId, f.priority, match, 0, matchEnd) : 0,
      instructions: encoded((w) => encodeInstructions(w, f.instructions))?.toString('latin1'),
      echoedMatch: undefined,
      echoedMatchHash: 0,
      echoedInstructions: undefined,
      seenBy: 0,
    };
    formsByFlow.set(f, forms);
  }
  return forms;
}

/** The desired flows by slot, the winner of each (the later of two in one slot), with the conflicts. */
interface Wanted {
  readonly bySlot: Map<string, FlowForms>;
  readonly cookies: Set<bigint>;
  readonly conflicts: SlotConflict[];
}

function wanted(desired: readonly Flow[]): Wanted {
  const bySlot = new Map<string, FlowForms>();
  const cookies = new Set<bigint>();
  const conflicts: SlotConflict[] = [];
  for (const f of desired) {
    const forms = formsOf(f);
    const earlier = bySlot.get(forms.slot);
    if (earlier) conflicts.push({ earlier: earlier.flow, later: f });
    bySlot.set(forms.slot, forms);
    cookies.add(f.cookie);
  }
  return { bySlot, cookies, conflicts };
}

type InstalledHeader = Pick<InstalledFlow, 'cookie' | 'idleTimeout' | 'hardTimeout' | 'flags'>;

/** How the diff reads one kind of installed entry. */
interface InstalledReader<I extends InstalledHeader> {
  /** the desired flow in the entry's slot */
  desiredFor(entry: I): FlowForms | undefined;
  sameInstructions(desired: FlowForms, entry: I): boolean;
  /** the entry as flow data (for a per-flow delete) */
  flow(entry: I): InstalledFlow;
}

let diffs = 0;

/**
 * The diff itself. Installed flows that are not ours (app id 0 or not in `ownedApps`) and
 * ephemeral (reactive, idle-timed) flows are left alone. When every installed flow of a cookie is
 * stale, one delete by cookie replaces the per-flow deletes.
 */
function diffWith<I extends InstalledHeader>(want: Wanted, installed: readonly I[], ownedApps: ReadonlySet<number>, reader: InstalledReader<I>): FlowDiff {
  const diff: FlowDiff = { deletes: [], modifies: [], adds: [], conflicts: want.conflicts };
  const staleByCookie = new Map<bigint, I[]>();
  // a desired flow found installed is marked with this diff's number (diffs run to the end one at a time)
  const id = ++diffs;

  for (const f of installed) {
    const forms = reader.desiredFor(f);
    if (forms) {
      forms.seenBy = id;
      const d = forms.flow;
      if (d.cookie !== f.cookie || d.idleTimeout !== f.idleTimeout || d.hardTimeout !== f.hardTimeout || d.flags !== f.flags) {
        diff.adds.push(flowMod('add', d));
      } else if (!reader.sameInstructions(forms, f)) {
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
  for (const forms of want.bySlot.values()) if (forms.seenBy !== id) diff.adds.push(flowMod('add', forms.flow));
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
    desiredFor: (f) => want.bySlot.get(formsByFlow.get(f as Flow)?.slot ?? flowKey(f)),
    sameInstructions: (d, f) => {
      const theirs = formsByFlow.get(f as Flow)?.instructions;
      return (d.instructions !== undefined && d.instructions === theirs) || sameInstructions(d.flow.instructions, f.instructions);
    },
    flow: (f) => f,
  });
}

/** diffFlows against a flow dump read in place, with how many of its entries had to be decoded. */
export interface WireFlowDiff extends FlowDiff {
  /** installed entries whose match or instructions were not the bytes we (or a switch before) encoded, so were decoded and compared by meaning */
  decoded: number;
}

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
  // wireHash → the desired flows with those match bytes (ours or as echoed), one or, on a collision, several
  const byHash = new Map<number, FlowForms | FlowForms[]>();
  const index = (hash: number, forms: FlowForms): void => {
    const there = byHash.get(hash);
    if (there === undefined) byHash.set(hash, forms);
    else if (Array.isArray(there)) there.push(forms);
    else byHash.set(hash, [there, forms]);
  };
  for (const forms of want.bySlot.values()) {
    if (forms.match) index(forms.matchHash, forms);
    if (forms.echoedMatch) index(forms.echoedMatchHash, forms);
  }
  const isEntry = (forms: FlowForms, e: WireFlowStats): boolean =>
    forms.flow.tableId === e.tableId && forms.flow.priority === e.priority && (sameBytes(forms.match, e.buf, e.matchStart, e.matchEnd) || sameBytes(forms.echoedMatch, e.buf, e.matchStart, e.matchEnd));
  const decodedEntries = new Map<WireFlowStats, InstalledFlow>();
  const decode = (e: WireFlowStats): InstalledFlow => {
    let f = decodedEntries.get(e);
    if (!f) decodedEntries.set(e, (f = decodeWireFlowStats(e)));
    return f;
  };
  const diff = diffWith(want, installed, ownedApps, {
    desiredFor: (e) => {
      const hash = wireHash(e.tableId, e.priority, e.buf, e.matchStart, e.matchEnd);
      const there = byHash.get(hash);
      const byBytes = there === undefined ? undefined : Array.isArray(there) ? there.find((forms) => isEntry(forms, e)) : isEntry(there, e) ? there : undefined;
      if (byBytes) return byBytes;
      const found = want.bySlot.get(flowKey(decode(e)));
      if (found) {
        found.echoedMatch = e.buf.toString('latin1', e.matchStart, e.matchEnd);
        found.echoedMatchHash = hash;
      }
      return found;
    },
    sameInstructions: (d, e) => {
      const end = e.at + e.length;
      if (sameBytes(d.instructions, e.buf, e.instructionsStart, end) || sameBytes(d.echoedInstructions, e.buf, e.instructionsStart, end)) return true;
      const same = sameInstructions(d.flow.instructions, decode(e).instructions);
      if (same) d.echoedInstructions = e.buf.toString('latin1', e.instructionsStart, end);
      return same;
    },
    flow: decode,
  });
  return { ...diff, decoded: decodedEntries.size };
}
