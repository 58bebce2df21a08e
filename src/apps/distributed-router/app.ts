import { Observable } from 'rxjs';
import { findLayer } from '../../packet';
import type { AppContext, ZonemeshApp } from '../../sdk/app';
import { runIncremental } from '../../sdk/incremental';
import { inject, injectable } from '../../sdk/di';
import { type OverlayView, type PortView, OverlayViews } from '../overlay';
import { DISTRIBUTED_ROUTER_APP_ID, DISTRIBUTED_ROUTER_COUNTERS, DISTRIBUTED_ROUTER_TABLES, distributedRouterGroups } from './flows';
import { RA_INTERVAL_MS, SolicitationLimiter, subnetRouterAdvertisement } from './ra';

@injectable()
export class DistributedRouterApp implements ZonemeshApp {
  readonly name = 'distributed-router';
  readonly appId = DISTRIBUTED_ROUTER_APP_ID;
  readonly tables = DISTRIBUTED_ROUTER_TABLES;
  readonly flowCounters = DISTRIBUTED_ROUTER_COUNTERS;
  private readonly limiter = new SolicitationLimiter();
  private view: OverlayView | undefined;
  /** the placed dual-stack ports of the view, by their switch (a switch-up or a solicitation looks at its own only) */
  private portsByHost = new Map<bigint, PortView[]>();
  /** the placed dual-stack ports advertised to, as `dpid/port/ofport` */
  private advertised = new Set<string>();

  constructor(@inject(OverlayViews) private readonly views: OverlayViews) {}

  start(ctx: AppContext): void {
    runIncremental(ctx, this.views.view$, (view) => distributedRouterGroups(ctx.pipeline, view));
    // every placed dual-stack port hears the router when it appears, when its switch connects, and every RA_INTERVAL_MS
    ctx.on(this.views.view$, (view) => {
      this.view = view;
      const ports = dualStackPorts(view);
      this.portsByHost = new Map();
      for (const p of ports) {
        const onHost = this.portsByHost.get(p.host.datapathId);
        if (onHost) onHost.push(p);
        else this.portsByHost.set(p.host.datapathId, [p]);
      }
      const before = this.advertised;
      this.advertised = new Set(ports.map(portKey));
      for (const p of ports) if (!before.has(portKey(p))) this.advertise(ctx, p);
    });
    // unref'd: the periodic RA never keeps the process alive by itself
    ctx.on(everyUnref(RA_INTERVAL_MS), () => {
      for (const onHost of this.portsByHost.values()) for (const p of onHost) this.advertise(ctx, p);
    });
    ctx.on(ctx.events.switchUp$, ({ dpid }) => {
      for (const p of this.portsByHost.get(dpid) ?? []) this.advertise(ctx, p);
    });
    ctx.on(ctx.events.packetIn$, (pin) => {
      if (pin.tableId !== ctx.pipeline.table('l3.gateway').id || !pin.packet) return; // another app's packet
      const ipv6 = findLayer(pin.packet, 'ipv6');
      const port = this.portsByHost.get(pin.dpid)?.find((p) => p.ofport === pin.inPort);
      if (!ipv6 || !findLayer(pin.packet, 'ndp-rs') || !port || !this.limiter.take(pin.dpid, pin.inPort)) return;
      const ra = subnetRouterAdvertisement(this.subnetOf(port), { mac: port.port.mac, ip: ipv6.src });
      if (ra) ctx.packetOut(pin.dpid, ra, { to: pin.inPort });
    });
  }

  private subnetOf(p: PortView) {
    return this.view!.vpcByName.get(p.port.vpc)!.subnetByName.get(p.port.subnet)!.subnet;
  }

  private advertise(ctx: AppContext, p: PortView): void {
    const ra = subnetRouterAdvertisement(this.subnetOf(p));
    if (ra) ctx.packetOut(p.host.datapathId, ra, { to: p.ofport! });
  }
}

/** the placed ports of dual-stack subnets */
function dualStackPorts(view: OverlayView): PortView[] {
  return view.vpcs.flatMap((v) => v.ports.filter((p) => p.ipv6 !== undefined && p.ofport !== undefined));
}

const portKey = (p: PortView) => `${p.host.datapathId}/${p.port.name}/${p.ofport}`;

function everyUnref(ms: number): Observable<void> {
  return new Observable<void>((subscriber) => {
    const timer = setInterval(() => subscriber.next(), ms).unref();
    return () => clearInterval(timer);
  });
}
