import type { AppContext, ZonemeshApp } from '../../sdk/app';
import type { FlowCounter } from '../../sdk/counters';
import { runIncremental } from '../../sdk/incremental';
import { inject, injectable } from '../../sdk/di';
import { OverlayViews, type OverlayView } from '../overlay';
import { ACL_APP_ID, ACL_TABLES, aclCounter, aclGroups } from './flows';

@injectable()
export class AclApp implements ZonemeshApp {
  readonly name = 'acl';
  readonly appId = ACL_APP_ID;
  readonly tables = ACL_TABLES;
  readonly flowCounters: readonly FlowCounter[] = [aclCounter(() => this.view)];
  /** the latest view, for naming the rules behind counted flows */
  private view: OverlayView | undefined;

  constructor(@inject(OverlayViews) private readonly views: OverlayViews) {}

  start(ctx: AppContext): void {
    ctx.on(this.views.view$, (view) => (this.view = view));
    runIncremental(ctx, this.views.view$, (view) => aclGroups(ctx.pipeline, view));
  }
}
