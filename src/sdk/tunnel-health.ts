/**
 * The health of the tunnel between two hypervisors, as a monitoring app measures it and as the
 * runtime's pages and metrics show it. An app that measures tunnels binds TUNNEL_HEALTH in
 * its bindServices; readers inject it as optional, since no monitor may be loaded.
 */
import type { Observable } from 'rxjs';

export type TunnelState = 'up' | 'lossy' | 'down';

export interface TunnelPairHealth {
  /** hypervisor names from the model: probes leave `from` and arrive at `to` */
  readonly from: string;
  readonly to: string;
  readonly state: TunnelState;
  /** lost / sent over the monitor's sliding window, 0..1 */
  readonly lossRatio: number;
  /** mean round trip over the window; undefined before the first reply */
  readonly rttMs: number | undefined;
  /** Date.now() of the measurement */
  readonly at: number;
}

export interface TunnelHealthSource {
  /** every state change and every periodic measurement */
  readonly health$: Observable<TunnelPairHealth>;
  /** the latest measurement of every pair */
  snapshot(): readonly TunnelPairHealth[];
}

export const TUNNEL_HEALTH = Symbol.for('zonemesh.tunnel-health');
