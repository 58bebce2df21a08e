import type { Observable } from 'rxjs';
import {
  AppSettingsError,
  APP_SETTINGS,
  APP_SETTINGS_CHANGES,
  FlowBuildError,
  inject,
  injectable,
  sameFlows,
  type AppContext,
  type AppSettings,
  type Flow,
  type TableSpec,
  type ZonemeshApp,
} from '../../sdk';
import { ALL_FIELDS, parseStaticFlowsSettings, type StaticFlowSpec, type StaticFlowsSettings } from './settings';

export const STATIC_FLOWS_APP_ID = 3;
export const STATIC_TABLE = 'static-flows.flows';

/**
 * Installs a fixed set of flows from the run config on every switch (or the one each flow names),
 * proactively and reconciled: the flows a restart test carries traffic on. A changed run config
 * (`zonemesh run --config FILE` watches FILE) changes only the flows whose definition changed;
 * `miss` is fixed for the life of the process.
 *
 *   settings:
 *     static-flows:
 *       miss: drop            # drop | controller | next
 *       flows:
 *         - { name: a-to-b, priority: 100, match: { in_port: 1 }, actions: [{ output: 2 }] }
 */
@injectable()
export class StaticFlowsApp implements ZonemeshApp {
  readonly name = 'static-flows';
  readonly appId = STATIC_FLOWS_APP_ID;
  readonly tables: readonly TableSpec[];
  private readonly settings: StaticFlowsSettings;

  constructor(
    @inject(APP_SETTINGS) settings: AppSettings,
    @inject(APP_SETTINGS_CHANGES) private readonly settingsChanges: Observable<AppSettings>,
  ) {
    this.settings = parseStaticFlowsSettings(settings[this.name]);
    this.tables = [{ name: STATIC_TABLE, stage: 'classify', miss: this.settings.miss, matches: ALL_FIELDS, maskable: ALL_FIELDS }];
  }

  start(ctx: AppContext): void {
    let built = this.build(ctx, this.settings);
    const switches = new Set<bigint>();
    ctx.on(ctx.events.switchUp$, ({ dpid }) => {
      switches.add(dpid);
      for (const { spec, flow } of built) if (spec.dpid === undefined || spec.dpid === dpid) ctx.setFlows(dpid, spec.name, [flow]);
    });
    // A changed run config: set only the flows that differ; the runtime sends only their difference.
    ctx.on(this.settingsChanges, (all) => {
      let next: BuiltFlow[];
      try {
        const settings = parseStaticFlowsSettings(all[this.name]);
        if (settings.miss !== this.settings.miss) ctx.log.warn({ miss: this.settings.miss, wanted: settings.miss }, 'a new table-miss behaviour takes a restart; keeping the current one');
        next = this.build(ctx, settings);
      } catch (e) {
        if (!(e instanceof AppSettingsError)) throw e;
        ctx.log.error({ err: e }, 'new settings rejected; the flows stay as they are');
        return;
      }
      const names = new Set([...built, ...next].map((b) => b.spec.name));
      let changed = 0;
      for (const dpid of switches) {
        for (const name of names) {
          const after = flowsOf(next, name, dpid);
          if (sameFlows(flowsOf(built, name, dpid), after)) continue;
          ctx.setFlows(dpid, name, after);
          changed++;
        }
      }
      built = next;
      ctx.log.info({ flows: next.length, changed }, 'settings changed');
    });
  }

  private build(ctx: AppContext, settings: StaticFlowsSettings): BuiltFlow[] {
    return settings.flows.map((spec, i) => {
      try {
        const flow = ctx.flow(STATIC_TABLE, spec.name).priority(spec.priority).match(spec.match).apply(...spec.actions).build();
        return { spec, flow };
      } catch (e) {
        if (!(e instanceof FlowBuildError)) throw e;
        throw new AppSettingsError(this.name, [{ path: `flows[${i}]`, problem: e.message }]);
      }
    });
  }
}

interface BuiltFlow {
  spec: StaticFlowSpec;
  flow: Flow;
}

/** what owner `name` wants on `dpid` */
function flowsOf(built: readonly BuiltFlow[], name: string, dpid: bigint): Flow[] {
  return built.filter(({ spec }) => spec.name === name && (spec.dpid === undefined || spec.dpid === dpid)).map((b) => b.flow);
}
