import { RunConfigError } from '../../config';
import { APP_SETTINGS, FlowBuildError, inject, injectable, type AppContext, type AppSettings, type TableSpec, type ZonemeshApp } from '../../sdk';
import { ALL_FIELDS, parseStaticFlowsSettings, type StaticFlowsSettings } from './settings';

export const STATIC_FLOWS_APP_ID = 3;
export const STATIC_TABLE = 'static-flows.flows';

/**
 * Installs a fixed set of flows from the run config on every switch (or the one each flow names),
 * proactively and reconciled: the flows a restart test carries traffic on.
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

  constructor(@inject(APP_SETTINGS) settings: AppSettings) {
    this.settings = parseStaticFlowsSettings(settings[this.name]);
    this.tables = [{ name: STATIC_TABLE, stage: 'classify', miss: this.settings.miss, matches: ALL_FIELDS, maskable: ALL_FIELDS }];
  }

  start(ctx: AppContext): void {
    const built = this.settings.flows.map((spec, i) => {
      try {
        const flow = ctx.flow(STATIC_TABLE, spec.name).priority(spec.priority).match(spec.match).apply(...spec.actions).build();
        return { spec, flow };
      } catch (e) {
        if (!(e instanceof FlowBuildError)) throw e;
        throw new RunConfigError(`settings.${this.name}`, [{ path: `flows[${i}]`, problem: e.message }]);
      }
    });
    ctx.on(ctx.events.switchUp$, ({ dpid }) => {
      for (const { spec, flow } of built) if (spec.dpid === undefined || spec.dpid === dpid) ctx.setFlows(dpid, spec.name, [flow]);
    });
  }
}
