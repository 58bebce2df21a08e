import { pairwise } from 'rxjs';
import type { AppContext, ZonemeshApp } from '../../sdk/app';
import { runIncremental } from '../../sdk/incremental';
import { inject, injectable } from '../../sdk/di';
import { OverlayViews } from '../overlay';
import { gratuitousArps } from './announce';
import { ARP_RESPONDER_APP_ID, ARP_RESPONDER_COUNTERS, ARP_RESPONDER_TABLES, arpResponderGroups } from './flows';

@injectable()
export class ArpResponderApp implements ZonemeshApp {
  readonly name = 'arp-responder';
  readonly appId = ARP_RESPONDER_APP_ID;
  readonly tables = ARP_RESPONDER_TABLES;
  readonly flowCounters = ARP_RESPONDER_COUNTERS;

  constructor(@inject(OverlayViews) private readonly views: OverlayViews) {}

  start(ctx: AppContext): void {
    runIncremental(ctx, this.views.view$, (view) => arpResponderGroups(ctx.pipeline, view));
    ctx.on(this.views.view$.pipe(pairwise()), ([before, after]) => {
      for (const a of gratuitousArps(before, after)) ctx.send(a.dpid, a.message);
    });
  }
}
