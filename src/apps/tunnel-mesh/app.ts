import { formatDpid } from '../../controller/errors';
import type { SwitchSession } from '../../controller/session';
import type { Hypervisor } from '../../model';
import type { AppContext, ZonemeshApp } from '../../sdk/app';
import { runIncremental } from '../../sdk/incremental';
import { inject, injectable } from '../../sdk/di';
import { OverlayViews } from '../overlay';
import { TUNNEL_MESH_APP_ID, TUNNEL_MESH_TABLES, tunnelMeshGroups } from './flows';
import { ensureEgressKeyOption } from './geneve-option';
import { TUNNEL_PORTS, type TunnelPorts } from './tunnel-port';

type Provisionable = Hypervisor & { ovsdb: string };
const provisionable = (hv: Hypervisor): hv is Provisionable => hv.ovsdb !== undefined;

@injectable()
export class TunnelMeshApp implements ZonemeshApp {
  readonly name = 'tunnel-mesh';
  readonly appId = TUNNEL_MESH_APP_ID;
  readonly tables = TUNNEL_MESH_TABLES;
  /** the hypervisor object each tunnel port was (or is being) provisioned for: interned, so a new object means new settings */
  private readonly provisioned = new Map<string, Hypervisor>();
  private stopped = false;
  /** how long a failed provisioning waits before trying again */
  retryMs = 5_000;

  constructor(
    @inject(OverlayViews) private readonly views: OverlayViews,
    @inject(TUNNEL_PORTS) private readonly tunnels: TunnelPorts,
  ) {}

  start(ctx: AppContext): void {
    ctx.stopped$.subscribe(() => (this.stopped = true)); // not ctx.on: that one ends when stopped$ fires
    ctx.on(this.views.view$, (view) => view.hypervisors.filter(provisionable).forEach((hv) => this.provision(hv, ctx)));
    ctx.on(ctx.events.switchUp$, ({ session }) => this.mapEgressKeyOption(session, ctx));
    runIncremental(ctx, this.views.view$, (view) => tunnelMeshGroups(ctx.pipeline, view));
  }

  /** Every connection, since a bridge that restarted lost its TLV map; failures show as the flows the switch then rejects. */
  private mapEgressKeyOption(session: SwitchSession, ctx: AppContext): void {
    ensureEgressKeyOption(session).then(
      (outcome) => ctx.log.info({ dpid: formatDpid(session.dpid!), outcome }, 'Geneve egress-key option mapped to tun_metadata0'),
      (err: unknown) => ctx.log.error({ err, dpid: formatDpid(session.dpid!) }, 'Geneve egress-key option not mapped; flows using tun_metadata0 will be rejected'),
    );
  }

  /** Hypervisors without an `ovsdb` target are provisioned by someone else; failures retry until they succeed or the model moves on. */
  private provision(hv: Provisionable, ctx: AppContext, retry = false): void {
    if (this.stopped || (!retry && this.provisioned.get(hv.name) === hv)) return;
    this.provisioned.set(hv.name, hv);
    this.tunnels.ensure(hv).then(
      () => ctx.log.info({ hypervisor: hv.name }, 'tunnel port ready'),
      (err: unknown) => {
        ctx.log.error({ err, hypervisor: hv.name }, `tunnel port not provisioned, retrying in ${this.retryMs} ms`);
        setTimeout(() => this.provisioned.get(hv.name) === hv && this.provision(hv, ctx, true), this.retryMs).unref();
      },
    );
  }
}
