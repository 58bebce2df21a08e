import { HealthBoard, injectable, type TunnelPairHealth } from '../../sdk';

/**
 * TUNNEL_HEALTH: the latest health of every monitored pair, and each measurement as it comes. The
 * tunnel-monitor app publishes here; the runtime's metrics and pages read it. Bound whether or not
 * the monitor runs, so readers need no wiring of their own: without it the board stays empty.
 */
@injectable()
export class TunnelHealthBoard extends HealthBoard<TunnelPairHealth> {
  constructor() {
    super((h) => `${h.from}/${h.to}`); // retain() takes keys of this form
  }
}
