/**
 * Flows whose packet counters are metrics. An app names sets of its flows (by owner, or all of its
 * flows, optionally in one table); with `zonemesh run --metrics` the runtime reads each set from every
 * switch with one OFPMP_FLOW_STATS request per poll, selected by cookie, and asks the app what each
 * flow counts. Labels come from the app's answers only, never from what a switch reports.
 */

/** What one flow's packets count toward. */
export type FlowCount =
  /** packets dropped on purpose: `reason` is a short snake_case word ('ttl_expired', 'no_route') */
  | { readonly kind: 'drop'; readonly reason: string }
  /** packets an ACL rule matched (several flows of one rule add up) */
  | { readonly kind: 'acl_rule'; readonly vpc: string; readonly rule: string };

/** The fields of a flow-stats entry that say which flow it is. */
export interface CountedFlow {
  readonly tableId: number;
  readonly priority: number;
  readonly cookie: bigint;
}

export interface FlowCounter {
  /** whose flows are read: one owner's (its cookie exactly), or every flow of the app when absent */
  readonly owner?: string;
  /** one of the app's tables, or every table when absent */
  readonly table?: string;
  /** what a flow of the set counts; undefined for one that counts nothing */
  count(flow: CountedFlow): FlowCount | undefined;
}

/**
 * Events an app counts itself, in the controller: packet-ins it answered or ignored, by reason.
 * With `zonemesh run --metrics` each is served as `zonemesh_<name>_total{dpid, hypervisor, <label>}`,
 * read at scrape from `read()`; the app never touches Prometheus. Keep counts in a `SwitchEventCounts`.
 */
export interface EventCounter {
  /** the metric's name between `zonemesh_` and `_total`, snake_case: 'dhcp_unanswered' */
  readonly name: string;
  readonly help: string;
  /** the label that tells the counts apart: 'reason' */
  readonly label: string;
  /** every count so far, by switch (undefined: the switches beyond the count's cap) and label value */
  read(): Iterable<{ readonly dpid: bigint | undefined; readonly value: string; readonly count: number }>;
}

/** Switches whose counts are kept apart; the counts of any further switch add up under dpid undefined. */
export const MAX_COUNTED_SWITCHES = 4096;

/**
 * Counts by (switch, value) for an EventCounter. The values are the app's own closed set (reasons),
 * and the switches at most MAX_COUNTED_SWITCHES (a peer can claim any dpid), so memory is bounded.
 */
export class SwitchEventCounts<V extends string> {
  private readonly counts = new Map<bigint | undefined, Map<V, number>>();

  add(dpid: bigint, value: V): void {
    const key = this.counts.has(dpid) || this.counts.size < MAX_COUNTED_SWITCHES ? dpid : undefined;
    let byValue = this.counts.get(key);
    if (!byValue) this.counts.set(key, (byValue = new Map()));
    byValue.set(value, (byValue.get(value) ?? 0) + 1);
  }

  /** one switch's count of `value`, or the sum over all switches */
  get(value: V, dpid?: bigint): number {
    if (dpid !== undefined) return this.counts.get(dpid)?.get(value) ?? 0;
    let sum = 0;
    for (const byValue of this.counts.values()) sum += byValue.get(value) ?? 0;
    return sum;
  }

  *read(): Iterable<{ dpid: bigint | undefined; value: V; count: number }> {
    for (const [dpid, byValue] of this.counts) for (const [value, count] of byValue) yield { dpid, value, count };
  }
}
