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
