import { Subject } from 'rxjs';
import { injectable, type TunnelHealthSource, type TunnelPairHealth } from '../../sdk';

/**
 * TUNNEL_HEALTH: the latest health of every monitored pair, and each measurement as it comes. The
 * tunnel-monitor app publishes here; the runtime's metrics and pages read it. Bound whether or not
 * the monitor runs, so readers need no wiring of their own: without it the board stays empty.
 */
@injectable()
export class TunnelHealthBoard implements TunnelHealthSource {
  private readonly latest = new Map<string, TunnelPairHealth>();
  private readonly subject = new Subject<TunnelPairHealth>();
  readonly health$ = this.subject.asObservable();
  /** set by the monitor app while it runs */
  active = false;

  snapshot(): readonly TunnelPairHealth[] {
    return [...this.latest.values()];
  }

  publish(health: TunnelPairHealth): void {
    this.latest.set(`${health.from}/${health.to}`, health);
    this.subject.next(health);
  }

  /** Pairs no longer monitored (the model dropped them) leave the snapshot. */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.latest.keys()) if (!keys.has(key)) this.latest.delete(key);
  }
}
