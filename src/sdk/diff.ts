import type { FieldRef, FlowMod, Instruction } from '../openflow';
import { Writer, encodeInstructions, fieldSpec } from '../openflow';
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
 * Diff desired flows against installed ones. Installed flows that are not ours (app id 0 or not in
 * `ownedApps`) and ephemeral (reactive, idle-timed) flows are left alone. When every installed flow
 * of a cookie is stale, one delete by cookie replaces the per-flow deletes. Desired flows that share
 * a slot are listed as conflicts (a key lookup the diff makes anyway).
 */
export function diffFlows(desired: readonly Flow[], installed: readonly InstalledFlow[], ownedApps: ReadonlySet<number>): FlowDiff {
  const want = new Map<string, Flow>();
  const desiredCookies = new Set<bigint>();
  const conflicts: SlotConflict[] = [];
  for (const f of desired) {
    const key = flowKey(f);
    const earlier = want.get(key);
    if (earlier) conflicts.push({ earlier, later: f });
    want.set(key, f);
    desiredCookies.add(f.cookie);
  }

  const diff: FlowDiff = { deletes: [], modifies: [], adds: [], conflicts };
  const staleByCookie = new Map<bigint, InstalledFlow[]>();
  const present = new Set<string>();

  for (const f of installed) {
    const key = flowKey(f);
    const d = want.get(key);
    if (d) {
      present.add(key);
      if (d.cookie !== f.cookie || d.idleTimeout !== f.idleTimeout || d.hardTimeout !== f.hardTimeout || d.flags !== f.flags) {
        diff.adds.push(flowMod('add', d));
      } else if (!sameInstructions(d.instructions, f.instructions)) {
        diff.modifies.push(flowMod('modify_strict', d));
      }
      continue;
    }
    if (!ownedApps.has(appOfCookie(f.cookie)) || isEphemeral(f.cookie)) continue;
    const list = staleByCookie.get(f.cookie) ?? [];
    list.push(f);
    staleByCookie.set(f.cookie, list);
  }
  for (const [cookie, flows] of staleByCookie) {
    if (desiredCookies.has(cookie)) {
      for (const f of flows) diff.deletes.push(flowMod('delete_strict', f));
    } else {
      diff.deletes.push(deleteByCookie(cookie));
    }
  }
  for (const [key, d] of want) if (!present.has(key)) diff.adds.push(flowMod('add', d));
  return diff;
}
