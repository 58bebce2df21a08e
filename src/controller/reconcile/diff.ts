import type { FlowMod, Instruction } from '../../openflow';
import { OFP_NO_BUFFER, OFPG_ANY, OFPP, OFPTT_ALL, Writer, encodeInstructions } from '../../openflow';
import { type Flow, flowKey } from '../../sdk/flow';
import { appOfCookie, isEphemeral } from '../../sdk/cookie';

/** What the switch reports for one flow (a FlowStats entry carries all of these). */
export type InstalledFlow = Omit<Flow, 'table'>;

export interface FlowDiff {
  /** installed flows of ours that nothing desires */
  deletes: FlowMod[];
  /** same slot, different instructions only: modified in place so counters and duration survive */
  modifies: FlowMod[];
  /** missing flows, and flows whose cookie, timeouts or flags changed (an add replaces) */
  adds: FlowMod[];
}

export function instructionsKey(insts: readonly Instruction[]): string {
  const w = new Writer(64);
  encodeInstructions(w, insts);
  return w.finish().toString('hex');
}

const FULL_COOKIE_MASK = 0xffffffffffffffffn;

function flowMod(command: FlowMod['command'], f: InstalledFlow, cookieMask = 0n): FlowMod {
  return {
    type: 'FLOW_MOD',
    xid: 0,
    cookie: f.cookie,
    cookieMask,
    tableId: f.tableId,
    command,
    idleTimeout: f.idleTimeout,
    hardTimeout: f.hardTimeout,
    priority: f.priority,
    bufferId: OFP_NO_BUFFER,
    outPort: OFPP.ANY,
    outGroup: OFPG_ANY,
    flags: f.flags,
    match: f.match,
    instructions: command === 'delete' || command === 'delete_strict' ? [] : f.instructions,
  };
}

/** one non-strict delete of every flow carrying this exact cookie, in any table */
export function deleteByCookie(cookie: bigint): FlowMod {
  const everywhere = { tableId: OFPTT_ALL, priority: 0, match: [], instructions: [], cookie, idleTimeout: 0, hardTimeout: 0, flags: 0 };
  return flowMod('delete', everywhere, FULL_COOKIE_MASK);
}

/**
 * Diff desired flows against installed ones. Installed flows that are not ours (app id 0 or not in
 * `ownedApps`) and ephemeral (reactive, idle-timed) flows are left alone. When every installed flow
 * of a cookie is stale, one delete by cookie replaces the per-flow deletes.
 */
export function diffFlows(desired: readonly Flow[], installed: readonly InstalledFlow[], ownedApps: ReadonlySet<number>): FlowDiff {
  const want = new Map<string, Flow>();
  const desiredCookies = new Set<bigint>();
  for (const f of desired) {
    want.set(flowKey(f), f);
    desiredCookies.add(f.cookie);
  }

  const diff: FlowDiff = { deletes: [], modifies: [], adds: [] };
  const staleByCookie = new Map<bigint, InstalledFlow[]>();
  const present = new Set<string>();

  for (const f of installed) {
    const key = flowKey(f);
    const d = want.get(key);
    if (d) {
      present.add(key);
      if (d.cookie !== f.cookie || d.idleTimeout !== f.idleTimeout || d.hardTimeout !== f.hardTimeout || d.flags !== f.flags) {
        diff.adds.push(flowMod('add', d));
      } else if (instructionsKey(d.instructions) !== instructionsKey(f.instructions)) {
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
