import type { AppContext, ZonemeshApp } from '../../sdk/app';
import { runIncremental } from '../../sdk/incremental';
import { inject, injectable } from '../../sdk/di';
import { OverlayViews } from '../overlay';
import { ACL_APP_ID, ACL_TABLES, aclGroups } from './flows';

@injectable()
export class AclApp implements ZonemeshApp {
  readonly name = 'acl';
  readonly appId = ACL_APP_ID;
  readonly tables = ACL_TABLES;

  constructor(@inject(OverlayViews) private readonly views: OverlayViews) {}

  start(ctx: AppContext): void {
    runIncremental(ctx, this.views.view$, (view) => aclGroups(ctx.pipeline, view));
  }
}
