import type { Observable } from 'rxjs';
import { instructionsKey } from './diff';
import type { AppContext } from './app';
import { type Flow, flowKey } from './flow';

/**
 * OVN-style incremental compilation. An app describes its desired flows as owners (a port, a subnet,
 * a rule set), each with an input signature; owners come in groups (a VPC) with a token. On a new
 * input only groups whose token changed are enumerated, only owners whose signature changed are
 * recompiled, and only (owner, switch) pairs whose flows really differ are reported. Owners that
 * disappear are cleared. Tokens and signature elements are compared with `===`, so inputs must keep
 * their identity while unchanged (see src/apps/overlay/view.ts).
 */

/** One flow list on a set of switches (dpids). */
export interface SwitchFlows {
  readonly dpids: readonly bigint[];
  readonly flows: readonly Flow[];
}

/**
 * The flows one owner wants: lists on disjoint sets of switches, so a list every remote hypervisor
 * gets is one entry, not one per switch (a region's compiled state is mostly these). Lists and
 * dpid arrays may be shared between owners.
 */
export type OwnerFlows = readonly SwitchFlows[];

export interface OwnerDef {
  /** unique within the app; the cookie's owner part */
  readonly key: string;
  /** equal signatures (element by element, `===`) promise equal flows */
  readonly signature: readonly unknown[];
  compile(): OwnerFlows;
}

export interface OwnerGroup {
  readonly key: string;
  /** an unchanged token (`===`) means every owner of the group is unchanged: none is enumerated */
  readonly token: unknown;
  owners(): Iterable<OwnerDef>;
}

/** `flows` replaces what `owner` wanted on each of `dpids`; empty clears it. */
export interface FlowsChange {
  readonly owner: string;
  readonly dpids: readonly bigint[];
  readonly flows: readonly Flow[];
}

/** what an owner wants on one switch */
export function flowsOn(owner: OwnerFlows | undefined, dpid: bigint): readonly Flow[] {
  for (const { dpids, flows } of owner ?? []) if (dpids.includes(dpid)) return flows;
  return [];
}

/** per-switch lists (a list shared by several switches stays one entry) */
export function bySwitch(lists: ReadonlyMap<bigint, readonly Flow[]>): OwnerFlows {
  const out: { dpids: bigint[]; flows: readonly Flow[] }[] = [];
  for (const [dpid, flows] of lists) {
    const same = out.find((e) => e.flows === flows);
    if (same) same.dpids.push(dpid);
    else out.push({ dpids: [dpid], flows });
  }
  return out;
}

interface OwnerState {
  key: string;
  signature: readonly unknown[];
  flows: OwnerFlows;
}

interface GroupState {
  token: unknown;
  owners: readonly string[];
}

const NO_FLOWS: OwnerFlows = [];
const NONE: readonly Flow[] = [];

export class IncrementalCompiler {
  private readonly groups = new Map<string, GroupState>();
  private readonly owners = new Map<string, OwnerState>();
  /** the last input (a copy) and its groups' tokens, by position: a region's next input is mostly the same objects */
  private lastInput: readonly OwnerGroup[] = [];
  private lastTokens: unknown[] = [];

  /**
   * Brings the compiled state up to `input` and returns what changed, clears last. All or nothing:
   * when a compile throws, the state stays at the previous input. A group that is the very object
   * at the same place in the last input, with the same token, costs one comparison; any other
   * unchanged group a lookup. Neither allocates, so a large, mostly unchanged input stays cheap.
   */
  update(input: Iterable<OwnerGroup>): FlowsChange[] {
    const list = Array.isArray(input) ? (input as OwnerGroup[]).slice() : [...input];
    const last = this.lastInput;
    const lastTokens = this.lastTokens;
    const changes: FlowsChange[] = [];
    const changedGroups = new Map<string, GroupState>();
    // a list, not a map: keys are unique within an app, and a full compile makes 100,000s of them
    const compiled: OwnerState[] = [];
    const orphans = new Set<string>();
    /** positions whose group is not the last input's */
    const moved: number[] = [];
    let known = 0;
    for (let i = 0; i < list.length; i++) {
      const g = list[i]!;
      if (last[i] === g && lastTokens[i] === g.token) {
        known++;
        continue;
      }
      moved.push(i);
      const before = this.groups.get(g.key);
      if (before) {
        known++;
        if (before.token === g.token) continue;
        for (const k of before.owners) orphans.add(k);
      }
      const keys: string[] = [];
      for (const def of g.owners()) {
        keys.push(def.key);
        const old = this.owners.get(def.key);
        if (old && sameSignature(old.signature, def.signature)) continue;
        const flows = def.compile();
        compiled.push({ key: def.key, signature: def.signature, flows });
        diffOwner(def.key, old?.flows ?? NO_FLOWS, flows, changes);
      }
      changedGroups.set(g.key, { token: g.token, owners: keys });
    }
    const removed = known === this.groups.size ? [] : removedGroups(this.groups, list);
    for (const key of removed) for (const k of this.groups.get(key)!.owners) orphans.add(k);
    // nothing below throws: commit
    // an orphan that a changed group now has moved there; other groups' owners did not change
    const current = orphans.size ? new Set([...changedGroups.values()].flatMap((g) => g.owners)) : undefined;
    for (const k of orphans) {
      if (current!.has(k)) continue;
      diffOwner(k, this.owners.get(k)!.flows, NO_FLOWS, changes);
      this.owners.delete(k);
    }
    for (const state of compiled) this.owners.set(state.key, state);
    for (const key of removed) this.groups.delete(key);
    for (const [key, state] of changedGroups) this.groups.set(key, state);
    if (list.length === last.length) for (const i of moved) lastTokens[i] = list[i]!.token;
    else this.lastTokens = list.map((g) => g.token);
    this.lastInput = list;
    return changes;
  }

  /** every owner's current flows */
  snapshot(): Map<string, OwnerFlows> {
    return new Map([...this.owners].map(([k, s]) => [k, s.flows]));
  }
}

/** Full, non-incremental compile: every owner of every group. */
export function compileOwners(groups: Iterable<OwnerGroup>): Map<string, OwnerFlows> {
  const out = new Map<string, OwnerFlows>();
  for (const g of groups) for (const def of g.owners()) out.set(def.key, def.compile());
  return out;
}

/** An app's start(): compile every input incrementally and hand changed owners to the runtime. */
export function runIncremental<I>(ctx: AppContext, input$: Observable<I>, groupsOf: (input: I) => Iterable<OwnerGroup>): void {
  const engine = new IncrementalCompiler();
  ctx.on(input$, (input) => {
    for (const c of engine.update(groupsOf(input))) for (const dpid of c.dpids) ctx.setFlows(dpid, c.owner, c.flows);
  });
}

/** keys of the groups `input` no longer has */
function removedGroups(groups: ReadonlyMap<string, GroupState>, input: readonly OwnerGroup[]): string[] {
  const present = new Set(input.map((g) => g.key));
  return [...groups.keys()].filter((key) => !present.has(key));
}

function sameSignature(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function diffOwner(owner: string, before: OwnerFlows, after: OwnerFlows, changes: FlowsChange[]): void {
  if (sameSwitchSets(before, after)) {
    // the usual recompile (and every first compile): list against list, one change per list that differs
    for (let i = 0; i < after.length; i++) {
      const { dpids, flows } = after[i]!;
      if (!sameFlows(before[i]!.flows, flows)) changes.push({ owner, dpids, flows });
    }
    return;
  }
  if (before.length === 0) {
    for (const { dpids, flows } of after) changes.push({ owner, dpids, flows });
    return;
  }
  const old = new Map<bigint, readonly Flow[]>();
  for (const { dpids, flows } of before) for (const dpid of dpids) old.set(dpid, flows);
  for (const { dpids, flows } of after) {
    // switches share flow lists: compare each pair of lists once
    const equal = new Set<readonly Flow[]>();
    const differ = new Set<readonly Flow[]>();
    const changed = dpids.filter((dpid) => {
      const was = old.get(dpid) ?? NONE;
      old.delete(dpid);
      if (equal.has(was)) return false;
      if (differ.has(was)) return true;
      const same = sameFlows(was, flows);
      (same ? equal : differ).add(was);
      return !same;
    });
    if (changed.length) changes.push({ owner, dpids: changed.length === dpids.length ? dpids : changed, flows });
  }
  if (old.size) changes.push({ owner, dpids: [...old.keys()], flows: NONE });
}

/** the same switches in the same entries */
function sameSwitchSets(a: OwnerFlows, b: OwnerFlows): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!.dpids;
    const y = b[i]!.dpids;
    if (x === y) continue;
    if (x.length !== y.length) return false;
    for (let k = 0; k < x.length; k++) if (x[k] !== y[k]) return false;
  }
  return true;
}

/** Whether two lists hold the same flows in the same order: what a switch would hold is the same. */
export function sameFlows(a: readonly Flow[], b: readonly Flow[]): boolean {
  if (a === b) return true;
  return (
    a.length === b.length &&
    a.every((f, i) => {
      const g = b[i]!;
      return (
        f.cookie === g.cookie &&
        f.idleTimeout === g.idleTimeout &&
        f.hardTimeout === g.hardTimeout &&
        f.flags === g.flags &&
        (sameParts(f, g) || (flowKey(f) === flowKey(g) && instructionsKey(f.instructions) === instructionsKey(g.instructions)))
      );
    })
  );
}

/**
 * Equal without encoding when built from the same shared parts (src/sdk/intern.ts): the same
 * table and priority, the very same match TLVs and the very same actions or instructions.
 */
function sameParts(f: Flow, g: Flow): boolean {
  if (f.tableId !== g.tableId || f.priority !== g.priority || f.match.length !== g.match.length || f.instructions.length !== g.instructions.length) return false;
  for (let i = 0; i < f.match.length; i++) if (f.match[i] !== g.match[i]) return false;
  for (let i = 0; i < f.instructions.length; i++) {
    const a = f.instructions[i]!;
    const b = g.instructions[i]!;
    if (a === b) continue;
    if (!(a.type === 'apply_actions' || a.type === 'write_actions') || b.type !== a.type || a.actions.length !== b.actions.length) return false;
    for (let k = 0; k < a.actions.length; k++) if (a.actions[k] !== b.actions[k]) return false;
  }
  return true;
}
