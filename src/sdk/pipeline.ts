import type { OxmFieldName } from '../openflow';
import { OFPTT_MAX } from '../openflow';
import { PipelineError } from './errors';

/**
 * Coarse pipeline stages, in packet order. Apps place tables in a stage; ids are assigned when the
 * pipeline is realized (stage order, then registration order), so apps compose without clashing.
 * `intercept` comes before everything: traffic the controller answers for a VM before it is
 * classified and spoofguarded (a DHCP DISCOVER is sent from 0.0.0.0). `probe` takes what the
 * overlay's own delivery does not handle out of the tunnel (the controller's probes, traffic from
 * the outside) before the overlay classifies what arrives there. `nat` translates a VM's routed
 * packets to the outside before the VPC's router sees them (docs/north-south.md).
 */
export const STAGES = ['intercept', 'probe', 'classify', 'spoofguard', 'arp', 'nat', 'l3', 'l2', 'acl', 'output'] as const;
export type Stage = (typeof STAGES)[number];

/** What a packet that matches no flow of the table does. */
export type MissBehaviour = 'drop' | 'controller' | 'next';

export interface TableSpec {
  /** unique, dotted by app: 'l2.learn', 'acl.egress' */
  name: string;
  stage: Stage;
  miss: MissBehaviour;
  /** with miss 'drop': the reason its table-miss drops are counted under in metrics (default 'table_miss') */
  dropReason?: string;
  /** fields a flow in this table may match on */
  matches: readonly OxmFieldName[];
  /** fields that may carry a mask (a subset of `matches`) */
  maskable?: readonly OxmFieldName[];
  /** tables a flow here may goto (all must come later in the pipeline) */
  next?: readonly string[];
}

export interface RealizedTable extends TableSpec {
  id: number;
}

/** The pipeline after id assignment: every table's id, schema and its successor. */
export class Pipeline {
  private readonly byName = new Map<string, RealizedTable>();
  readonly tables: readonly RealizedTable[];

  constructor(specs: readonly TableSpec[], firstTableId = 0) {
    const ordered = specs
      .map((spec, i) => ({ spec, i }))
      .sort((a, b) => STAGES.indexOf(a.spec.stage) - STAGES.indexOf(b.spec.stage) || a.i - b.i)
      .map(({ spec }, k) => ({ ...spec, id: firstTableId + k }));
    if (ordered.length && ordered[ordered.length - 1]!.id > OFPTT_MAX) {
      throw new PipelineError(`${ordered.length} tables do not fit below table id ${OFPTT_MAX}`);
    }
    for (const t of ordered) {
      if (this.byName.has(t.name)) throw new PipelineError(`table '${t.name}' is declared twice`);
      this.byName.set(t.name, t);
    }
    for (const t of ordered) {
      for (const n of t.next ?? []) {
        const target = this.byName.get(n);
        if (!target) throw new PipelineError(`table '${t.name}' names unknown next table '${n}'`);
        if (target.id <= t.id) throw new PipelineError(`table '${t.name}' (id ${t.id}) cannot goto earlier table '${n}' (id ${target.id})`);
      }
    }
    this.tables = ordered;
  }

  table(name: string): RealizedTable {
    const t = this.byName.get(name);
    if (!t) throw new PipelineError(`no table '${name}' in the pipeline (known: ${[...this.byName.keys()].join(', ')})`);
    return t;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /**
   * Where a packet handed to `stage` goes on: the first table of that stage, or of the first later
   * stage that has one. An app continues a packet at another app's stage this way (north-south hands
   * a floating IP's inbound packet to `l2`, so the ACLs see it), never by that app's table names. What
   * the packet must carry on entry is the contract of the apps owning the stage (the overlay's:
   * docs/pipeline.md, Entering a stage).
   */
  entryOf(stage: Stage): RealizedTable {
    const from = STAGES.indexOf(stage);
    const t = this.tables.find((x) => STAGES.indexOf(x.stage) >= from);
    if (!t) throw new PipelineError(`no table at or after stage '${stage}' in the pipeline`);
    return t;
  }

  /** the table right after `t`, for 'next' miss behaviour */
  successor(t: RealizedTable): RealizedTable | undefined {
    return this.tables[this.tables.indexOf(t) + 1];
  }

  /** one line per table, for docs and `zonemesh flows` */
  describe(): string {
    return this.tables.map((t) => `table ${t.id} ${t.name} [${t.stage}] miss=${t.miss}`).join('\n');
  }
}
