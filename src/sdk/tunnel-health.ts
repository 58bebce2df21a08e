/**
 * The health of the tunnel between two hypervisors, as a monitoring app measures it and as the
 * runtime's pages and metrics show it. The built-in apps' bindServices binds TUNNEL_HEALTH to a
 * board the tunnel-monitor app publishes to (src/apps/tunnel-monitor/board.ts): it is empty, and
 * health$ silent, when that app does not run. Readers inject it as optional: a runtime without the
 * built-in apps' services has no binding.
 */
import type { HealthSource } from './health-source';

export type TunnelState = 'up' | 'lossy' | 'down';

export interface TunnelPairHealth {
  /** hypervisor names from the model: probes leave `from` and arrive at `to` (and come back: one entry per pair) */
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

/** health$ carries every state change and every periodic measurement */
export type TunnelHealthSource = HealthSource<TunnelPairHealth>;

export const TUNNEL_HEALTH = Symbol.for('zonemesh.tunnel-health');
