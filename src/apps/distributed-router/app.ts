import type { AppContext, ZonemeshApp } from '../../sdk/app';
import { runIncremental } from '../../sdk/incremental';
import { inject, injectable } from '../../sdk/di';
import { OverlayViews } from '../overlay';
import { DISTRIBUTED_ROUTER_APP_ID, DISTRIBUTED_ROUTER_COUNTERS, DISTRIBUTED_ROUTER_TABLES, distributedRouterGroups } from './flows';

@injectable()
export class DistributedRouterApp implements ZonemeshApp {
  readonly name = 'distributed-router';
  readonly appId = DISTRIBUTED_ROUTER_APP_ID;
  readonly tables = DISTRIBUTED_ROUTER_TABLES;
  readonly flowCounters = DISTRIBUTED_ROUTER_COUNTERS;

  constructor(@inject(OverlayViews) private readonly views: OverlayViews) {}

  start(ctx: AppContext): void {
    runIncremental(ctx, this.views.view$, (view) => distributedRouterGroups(ctx.pipeline, view));
  }
}
