import { Subject } from 'rxjs';
import { injectable, type BackendHealth, type BackendHealthSource } from '../../sdk';

const keyOf = (h: Pick<BackendHealth, 'vpc' | 'loadBalancer' | 'port'>) => `${h.vpc}/${h.loadBalancer}/${h.port}`;

/**
 * BACKEND_HEALTH: the decided state of every checked backend, and each transition as it comes. The
 * lb-health app publishes here; the load-balancer app and the metrics read it. Bound whether or not
 * the checker runs, so readers need no wiring of their own: without it the board stays empty and
 * inactive, and every backend counts as healthy.
 */
@injectable()
export class BackendHealthBoard implements BackendHealthSource {
  private readonly latest = new Map<string, BackendHealth>();
  private readonly subject = new Subject<BackendHealth>();
  readonly health$ = this.subject.asObservable();
  /** set by the lb-health app while it runs */
  active = false;

  snapshot(): readonly BackendHealth[] {
    return [...this.latest.values()];
  }

  /** a transition: the backend's new state */
  publish(health: BackendHealth): void {
    this.latest.set(keyOf(health), health);
    this.subject.next(health);
  }

  /** Backends no longer checked (the model dropped them or their check) leave the snapshot; `keys` are 'vpc/lb/port'. */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.latest.keys()) if (!keys.has(key)) this.latest.delete(key);
  }
}
