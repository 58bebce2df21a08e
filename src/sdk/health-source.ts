import type { Observable } from 'rxjs';

/** What a health-measuring app publishes and others read: tunnels (TUNNEL_HEALTH), backends (BACKEND_HEALTH). */
export interface HealthSource<T> {
  /** whether a measuring app runs and publishes here: an inactive source has no measurements */
  readonly active: boolean;
  readonly health$: Observable<T>;
  /** the latest measurement of everything measured */
  snapshot(): readonly T[];
}
