import { HealthBoard, injectable, type BackendHealth } from '../../sdk';

const keyOf = (h: Pick<BackendHealth, 'vpc' | 'loadBalancer' | 'port'>) => `${h.vpc}/${h.loadBalancer}/${h.port}`;

/**
 * BACKEND_HEALTH: the decided state of every checked backend, and each transition as it comes. The
 * lb-health app publishes here; the load-balancer app and the metrics read it. Bound whether or not
 * the checker runs, so readers need no wiring of their own: without it the board stays empty and
 * inactive, and every backend counts as healthy.
 */
@injectable()
export class BackendHealthBoard extends HealthBoard<BackendHealth> {
  constructor() {
    super(keyOf); // retain() takes keys of this form: 'vpc/lb/port'
  }
}
