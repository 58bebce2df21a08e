/**
 * The health of load-balancer backends, as a health-checking app measures it. A load-balancer app
 * reads it to keep only healthy backends in its groups; any app may subscribe to the transitions.
 * Readers inject it as optional: when no checker runs, every backend counts as healthy.
 */
import type { HealthSource } from './health-source';

export type BackendState = 'up' | 'down';

export interface BackendHealth {
  /** the load balancer, by its VPC and name in the model */
  readonly vpc: string;
  readonly loadBalancer: string;
  /** the backend's VM port name */
  readonly port: string;
  readonly state: BackendState;
  /** why the latest check failed (timeout, refused, an unexpected HTTP status); undefined when up */
  readonly reason: string | undefined;
  /** Date.now() of the transition */
  readonly at: number;
}

/** health$ carries transitions only (up → down, down → up), never repeated measurements */
export type BackendHealthSource = HealthSource<BackendHealth>;

export const BACKEND_HEALTH = Symbol.for('zonemesh.backend-health');
