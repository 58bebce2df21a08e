import { type AppContext, type ZonemeshApp, injectable, runIncremental } from '../../sdk';
import { NORTH_SOUTH_APP_ID, NORTH_SOUTH_TABLES } from './flows';
import { northSouthGroups } from './groups';

/** Floating IPs on the VMs' own hypervisors and on their zone's gateways (docs/north-south.md). */
@injectable()
export class NorthSouthApp implements ZonemeshApp {
  readonly name = 'north-south';
  readonly appId = NORTH_SOUTH_APP_ID;
  readonly tables = NORTH_SOUTH_TABLES;

  start(ctx: AppContext): void {
    // placement emits on every model change too, so it is the one input
    runIncremental(ctx, ctx.placement.changes$, (placement) => northSouthGroups(ctx.pipeline, ctx.model.current(), placement));
  }
}
