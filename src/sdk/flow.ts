import type { Action, FlowMod, Instruction, Match } from '../openflow';
// from the module itself: each use of a name through the openflow index goes through a getter
// (CommonJS `export *`) that costs about 20 ns, and flowMod runs for every flow sent
import { OFP_NO_BUFFER, OFPFF_SEND_FLOW_REM, OFPG_ANY, OFPP, OFPTT_ALL } from '../openflow/constants';
import { toController } from './actions';
import { PIPELINE_APP_ID, makeCookie } from './cookie';
import { FlowBuildError } from './errors';
import { gotoTable, metadataWrite, sharedAction, sharedInstructions } from './intern';
import { type MatchSpec, matchFromSpec, matchKey } from './match';
import type { Pipeline, RealizedTable } from './pipeline';
import { missingPrerequisite } from './prerequisites';

/** A desired flow: plain data, compared by the reconciler against what the switch holds. */
export interface Flow {
  tableId: number;
  /** the pipeline table's name, for text output and errors */
  table: string;
  priority: number;
  match: Match;
  instructions: Instruction[];
  cookie: bigint;
  idleTimeout: number;
  hardTimeout: number;
  flags: number;
}

/** Flows with equal keys occupy the same slot in a switch (OpenFlow's identity: table, priority, match). */
export function flowKey(f: Pick<Flow, 'tableId' | 'priority' | 'match'>): string {
  return `${f.tableId}/${f.priority}/${matchKey(f.match)}`;
}

/**
 * The FLOW_MOD that puts `f` in (add, modify) or takes it out of (delete) a switch.
 * `cookieMask` selects by cookie for modify and delete; deletes carry no instructions.
 */
export function flowMod(command: FlowMod['command'], f: Omit<Flow, 'table'>, cookieMask = 0n): FlowMod {
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

/** One non-strict delete of every flow carrying exactly this cookie, in every table. */
export function deleteByCookie(cookie: bigint): FlowMod {
  const everywhere = { tableId: OFPTT_ALL, priority: 0, match: [], instructions: [], cookie, idleTimeout: 0, hardTimeout: 0, flags: 0 };
  return flowMod('delete', everywhere, 0xffffffffffffffffn);
}

/** the items that are there, in an array exactly as long (push or filter would leave spare slots in every flow a region keeps) */
function present<T>(items: readonly (T | undefined)[]): T[] {
  let count = 0;
  for (const item of items) if (item !== undefined) count++;
  const out = new Array<T>(count);
  let n = 0;
  for (const item of items) if (item !== undefined) out[n++] = item;
  return out;
}

const NO_MATCH: MatchSpec = Object.freeze({});
const NO_ACTIONS: readonly Action[] = Object.freeze([]);

/**
 * Builds one flow and checks it against its table's schema when `build()` is called:
 * only declared match fields, masks only where the table allows them, OpenFlow prerequisites present,
 * gotos only to a later table the schema lists.
 */
export class FlowBuilder {
  private prio = 0;
  // shared empties until first use: reactive apps build a flow per packet-in
  private matchSpec: MatchSpec = NO_MATCH;
  private applied: readonly Action[] = NO_ACTIONS;
  private written: readonly Action[] = NO_ACTIONS;
  private metadata?: { value: bigint; mask: bigint };
  private gotoName?: string;
  private idle = 0;
  private hard = 0;
  private flagBits = 0;

  constructor(
    private readonly pipeline: Pipeline,
    private readonly table: RealizedTable,
    private readonly cookie: bigint,
  ) {}

  priority(p: number): this {
    if (!Number.isInteger(p) || p < 0 || p > 0xffff) throw new FlowBuildError(`priority ${p} outside 0..65535`, { table: this.table.name });
    this.prio = p;
    return this;
  }

  match(spec: MatchSpec): this {
    // the first spec is kept as given (build only reads it); a second one merges into a copy
    // (Object.assign: a spread followed by more properties takes V8's slow path, ten times slower)
    this.matchSpec = this.matchSpec === NO_MATCH ? spec : Object.assign({}, this.matchSpec, spec);
    return this;
  }

  // the rest array is ours: a first call keeps it, later ones concat (push would reserve 17 slots)
  apply(...actions: Action[]): this {
    this.applied = this.applied.length ? this.applied.concat(actions) : actions;
    return this;
  }

  write(...actions: Action[]): this {
    this.written = this.written.length ? this.written.concat(actions) : actions;
    return this;
  }

  writeMetadata(value: bigint, mask = 0xffffffffffffffffn): this {
    this.metadata = { value, mask };
    return this;
  }

  goto(table: string): this {
    this.gotoName = table;
    return this;
  }

  idleTimeout(seconds: number): this {
    this.idle = seconds;
    return this;
  }

  hardTimeout(seconds: number): this {
    this.hard = seconds;
    return this;
  }

  notifyOnRemoval(): this {
    this.flagBits |= OFPFF_SEND_FLOW_REM;
    return this;
  }

  build(): Flow {
    const t = this.table;
    const match = matchFromSpec(this.matchSpec);
    for (const tlv of match) {
      if (!t.matches.includes(tlv.field as never)) throw this.error(`field ${tlv.field} is not in the table's schema`, tlv.field);
      if (tlv.field !== 'unknown' && tlv.mask !== undefined && !(t.maskable ?? []).includes(tlv.field)) {
        throw this.error(`field ${tlv.field} may not be masked here`, tlv.field);
      }
    }
    const missing = missingPrerequisite(match);
    if (missing) throw this.error(`field ${missing.field} needs ${missing.needs} in the match`, missing.field);
    this.checkTimeout('idle_timeout', this.idle);
    this.checkTimeout('hard_timeout', this.hard);

    let goto: Instruction | undefined;
    if (this.gotoName !== undefined) {
      const next = this.pipeline.table(this.gotoName);
      if (next.id <= t.id) throw this.error(`goto ${next.name} (id ${next.id}) is not a later table`);
      if (t.next && !t.next.includes(next.name)) throw this.error(`goto ${next.name} is not among the table's next tables (${t.next.join(', ')})`);
      goto = gotoTable(next.id);
    }
    // the usual lists (apply, then perhaps a goto) are shared with equal ones; the rest made here, in order
    const instructions =
      this.written.length === 0 && this.metadata === undefined
        ? sharedInstructions(this.applied, goto)
        : present<Instruction>([
            this.applied.length ? { type: 'apply_actions', actions: this.applied.map(sharedAction) } : undefined,
            this.written.length ? { type: 'write_actions', actions: this.written.map(sharedAction) } : undefined,
            this.metadata && metadataWrite(this.metadata.value, this.metadata.mask),
            goto,
          ]);
    return {
      tableId: t.id,
      table: t.name,
      priority: this.prio,
      match,
      instructions,
      cookie: this.cookie,
      idleTimeout: this.idle,
      hardTimeout: this.hard,
      flags: this.flagBits,
    };
  }

  private checkTimeout(name: string, seconds: number): void {
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > 0xffff) throw this.error(`${name} ${seconds} outside 0..65535`);
  }

  private error(message: string, field?: string): FlowBuildError {
    return new FlowBuildError(message, { table: this.table.name, field });
  }
}

/**
 * Every table's miss behaviour as an explicit priority-0 flow with an empty match (owner 'table-miss'
 * of the pipeline's app id): OpenFlow 1.3 drops misses by default, 'next' and 'controller' need a flow,
 * and a flow counts the packets that missed.
 */
export function tableMissFlows(pipeline: Pipeline): Flow[] {
  const cookie = makeCookie(PIPELINE_APP_ID, 'table-miss');
  return pipeline.tables.map((t) => {
    const b = new FlowBuilder(pipeline, t, cookie).priority(0);
    const next = pipeline.successor(t);
    if (t.miss === 'controller') b.apply(toController());
    else if (t.miss === 'next' && next) b.goto(next.name);
    return b.build();
  });
}
