import type { LoadBalancer } from '../../model';
import { ctFlush } from '../../openflow';
import type { AppContext, ZonemeshApp } from '../../sdk/app';
import { type BackendHealth, type BackendHealthSource, BACKEND_HEALTH } from '../../sdk/backend-health';
import { inject, injectable, optional } from '../../sdk/di';
import { deleteByCookie } from '../../sdk/flow';
import { type Group, sameBuckets } from '../../sdk/group';
import { runIncremental } from '../../sdk/incremental';
import { OverlayViews, type OverlayView, type VpcView } from '../overlay';
import { LOAD_BALANCER_APP_ID, LOAD_BALANCER_TABLES, type Healthy, affinityCookie, deadBackendFlushes, lbGroups, lbOwnerKey, loadBalancerGroups } from './flows';

const healthKey = (vpc: string, lb: string, port: string): string => `${vpc}/${lb}/${port}`;

/** What one load balancer's groups were computed from, and the groups each switch was given. */
interface Placed {
  lb: LoadBalancer;
  vpc: VpcView;
  groups: Map<bigint, Group[]>;
}

/**
 * The load-balancer app: flows compiled incrementally from the overlay view (flows.ts), groups per
 * load balancer recomputed when its model objects change or one of its backends' health does. A
 * health transition touches that load balancer's groups only (group modifies, no flow), and a
 * backend going down also loses its clients' affinity bindings and, where it is out of rotation, its
 * translated connections. Without a health checker
 * (BACKEND_HEALTH unbound or inactive) every backend counts as healthy.
 */
@injectable()
export class LoadBalancerApp implements ZonemeshApp {
  readonly name = 'load-balancer';
  readonly appId = LOAD_BALANCER_APP_ID;
  readonly tables = LOAD_BALANCER_TABLES;
  /** backends reported down, by healthKey */
  private readonly down = new Set<string>();
  /** by owner key */
  private placed = new Map<string, Placed>();

  constructor(
    @inject(OverlayViews) private readonly views: OverlayViews,
    @optional() @inject(BACKEND_HEALTH) private readonly health?: BackendHealthSource,
  ) {}

  /** an inactive source (no checker runs) has no states: everyone is healthy then */
  private readonly healthy: Healthy = (lb, port) => !this.health?.active || !this.down.has(healthKey(lb.vpc, lb.name, port));

  start(ctx: AppContext): void {
    runIncremental(ctx, this.views.view$, (view) => loadBalancerGroups(ctx.pipeline, view));
    const health = this.health;
    if (health) for (const h of health.snapshot()) this.note(h);
    ctx.on(this.views.view$, (view) => this.placeAll(ctx, view));
    if (health) ctx.on(health.health$, (h) => this.onTransition(ctx, h));
  }

  private note(h: BackendHealth): boolean {
    const key = healthKey(h.vpc, h.loadBalancer, h.port);
    const was = this.down.has(key);
    if (h.state === 'down') this.down.add(key);
    else this.down.delete(key);
    return was !== this.down.has(key);
  }

  /** Groups of load balancers whose model objects changed; those of removed ones cleared. */
  private placeAll(ctx: AppContext, view: OverlayView): void {
    const next = new Map<string, Placed>();
    for (const vpc of view.vpcs) {
      for (const lb of vpc.loadBalancers) {
        const key = lbOwnerKey(lb);
        const before = this.placed.get(key);
        next.set(key, before && before.lb === lb && before.vpc === vpc ? before : this.place(ctx, key, lb, vpc, before));
      }
    }
    for (const [key, before] of this.placed) {
      if (next.has(key)) continue;
      for (const dpid of before.groups.keys()) ctx.setGroups(dpid, key, []);
      this.unbind(ctx, before, before.lb.backends.map((b) => b.port));
    }
    this.placed = next;
    // states of backends the model no longer has are forgotten: the set stays as large as the model
    const known = new Set([...next.values()].flatMap(({ lb }) => lb.backends.map((b) => healthKey(lb.vpc, lb.name, b.port))));
    for (const key of this.down) if (!known.has(key)) this.down.delete(key);
  }

  /** Deletes the learned affinity bindings of `backends` (ephemeral: the reconciler leaves them alone). */
  private unbind(ctx: AppContext, placed: Placed, backends: readonly string[]): void {
    if (!placed.lb.sessionAffinity) return;
    for (const port of backends) {
      const cookie = affinityCookie(placed.lb, port);
      for (const dpid of placed.groups.keys()) ctx.send(dpid, deleteByCookie(cookie));
    }
  }

  /** Sets the groups that differ from `before`'s on each switch; clears switches no longer hosting the VPC. */
  private place(ctx: AppContext, key: string, lb: LoadBalancer, vpc: VpcView, before: Placed | undefined): Placed {
    const groups = lbGroups(ctx.pipeline, vpc, lb, this.healthy);
    for (const [dpid, list] of groups) {
      const old = before?.groups.get(dpid);
      if (!old || !sameGroups(old, list)) ctx.setGroups(dpid, key, list);
    }
    for (const dpid of before?.groups.keys() ?? []) if (!groups.has(dpid)) ctx.setGroups(dpid, key, []);
    // bindings to backends the load balancer no longer has (or all, when it lost its affinity) would last until their idle timeout
    if (before && before.lb !== lb) {
      const kept = new Set(lb.sessionAffinity ? lb.backends.map((b) => b.port) : []);
      this.unbind(ctx, before, before.lb.backends.map((b) => b.port).filter((p) => !kept.has(p)));
    }
    return { lb, vpc, groups };
  }

  private onTransition(ctx: AppContext, h: BackendHealth): void {
    if (!this.note(h)) return;
    const key = lbOwnerKey({ vpc: h.vpc, name: h.loadBalancer });
    const placed = this.placed.get(key);
    ctx.log.info({ vpc: h.vpc, loadBalancer: h.loadBalancer, backend: h.port, state: h.state, reason: h.reason }, 'load-balancer backend health changed');
    if (!placed) return;
    this.placed.set(key, this.place(ctx, key, placed.lb, placed.vpc, placed));
    if (h.state !== 'down') return;
    // clients bound to a dead backend pick again at their next connection
    this.unbind(ctx, placed, [h.port]);
    // its translated connections forgotten once the switch no longer gives it new ones (flows.ts)
    for (const [dpid, flushes] of deadBackendFlushes(placed.vpc, placed.lb, h.port, this.healthy)) {
      void ctx.settled(dpid).then(() => {
        for (const flush of flushes) ctx.send(dpid, ctFlush(0, flush));
      });
    }
  }
}

function sameGroups(a: readonly Group[], b: readonly Group[]): boolean {
  return a.length === b.length && a.every((g, i) => g.groupId === b[i]!.groupId && g.groupType === b[i]!.groupType && sameBuckets(g.buckets, b[i]!.buckets));
}
