import { pairwise } from 'rxjs';
import {
  APP_SETTINGS,
  type AppContext,
  type AppSettings,
  type Group,
  type Hypervisor,
  type NetworkModel,
  type ZonemeshApp,
  gratuitousArp,
  inject,
  injectable,
  runIncremental,
  sameBuckets,
} from '../../sdk';
import { gatewayPrefixes } from './bgp';
import { BGP_SPEAKERS, type BgpSpeakers, type NorthSouthSettings, parseNorthSouthSettings } from './bgp-speakers';
import { GATEWAY_PORTS, type GatewayPorts } from './gateway-ports';
import { floatingIpAnnouncements } from './garp';
import { GATEWAYS_GROUP_KEY, bfdPeers, gatewayPortName, gatewaysGroups } from './gateways';
import { NORTH_SOUTH_APP_ID, NORTH_SOUTH_TABLES } from './flows';
import { northSouthGroups } from './groups';

type Provisionable = Hypervisor & { ovsdb: string };

/**
 * Floating IPs and SNAT on the VMs' own hypervisors and on their zone's gateways, the switch's
 * choice of gateway (BFD ports to the zone's gateways and a select group over them), what each
 * gateway's bgpd announces, and gratuitous ARPs for moved floating IPs (docs/north-south.md).
 */
@injectable()
export class NorthSouthApp implements ZonemeshApp {
  readonly name = 'north-south';
  readonly appId = NORTH_SOUTH_APP_ID;
  readonly tables = NORTH_SOUTH_TABLES;
  /** per hypervisor, the BFD ports last provisioned (or being provisioned), as their names and peers */
  private readonly provisioned = new Map<string, string>();
  /** per switch, the gateways group last handed to the runtime */
  private readonly groups = new Map<bigint, Group>();
  /** per gateway with a bgpd to drive: the prefixes it must announce, and whether an update is under way */
  private readonly announcements = new Map<string, { wanted: readonly string[]; running: boolean }>();
  private readonly settings: NorthSouthSettings;
  private stopped = false;
  /** how long a failed provisioning or announcement waits before trying again */
  retryMs = 5_000;

  constructor(
    @inject(GATEWAY_PORTS) private readonly ports: GatewayPorts,
    @inject(BGP_SPEAKERS) private readonly speakers: BgpSpeakers,
    @inject(APP_SETTINGS) settings: AppSettings,
  ) {
    this.settings = parseNorthSouthSettings(settings[this.name]);
  }

  start(ctx: AppContext): void {
    ctx.stopped$.subscribe(() => (this.stopped = true));
    // placement emits on every model change too, so it is the one input
    runIncremental(ctx, ctx.placement.changes$, (placement) => northSouthGroups(ctx.pipeline, ctx.model.current(), placement));
    ctx.on(ctx.placement.changes$, (placement) => {
      const model = ctx.model.current();
      this.setGroups(ctx, gatewaysGroups(this.appId, model, (dpid, name) => placement.ofport(dpid, name)));
      for (const hv of model.hypervisors) if (hv.ovsdb !== undefined) this.provision(ctx, { ...hv, ovsdb: hv.ovsdb }, bfdPeers(model, hv));
    });
    ctx.on(ctx.model.changes$, (model) => {
      for (const gateway of Object.keys(this.settings.bgpVtySockets)) this.announce(ctx, gateway, announced(model, gateway));
    });
    ctx.on(ctx.model.changes$.pipe(pairwise()), ([before, after]) => {
      for (const { gateway, network, segmentPort, fip } of floatingIpAnnouncements(before, after)) {
        const port = ctx.placement.ofport(gateway.datapathId, segmentPort);
        const sent = port !== undefined && ctx.packetOut(gateway.datapathId, gratuitousArp(fip.mac, fip.ip), { to: port });
        ctx.log.info({ gateway: gateway.name, network: network.name, floatingIp: fip.ip, sent }, sent ? 'gratuitous ARP sent for a moved floating IP' : 'gratuitous ARP not sent: the gateway\'s segment port is not up');
      }
    });
  }

  /** One update per gateway at a time; a change meanwhile is applied when it ends, a failure retried. */
  private announce(ctx: AppContext, gateway: string, wanted: readonly string[], retry = false): void {
    const state = this.announcements.get(gateway) ?? { wanted, running: false };
    this.announcements.set(gateway, state);
    state.wanted = wanted;
    if (this.stopped || (state.running && !retry)) return;
    state.running = true;
    const dir = this.settings.bgpVtySockets[gateway]!;
    this.speakers.announce(dir, wanted).then(
      (changed) => {
        if (changed) ctx.log.info({ gateway, prefixes: wanted }, 'gateway bgpd announces new prefixes');
        if (state.wanted !== wanted) this.announce(ctx, gateway, state.wanted, true);
        else state.running = false;
      },
      (err: unknown) => {
        ctx.log.error({ err, gateway }, `gateway bgpd not updated, retrying in ${this.retryMs} ms`);
        setTimeout(() => this.announce(ctx, gateway, state.wanted, true), this.retryMs).unref();
      },
    );
  }

  /** hands the runtime only groups that changed: placement changes with every port of every switch */
  private setGroups(ctx: AppContext, wanted: Map<bigint, Group>): void {
    for (const [dpid, group] of wanted) {
      const before = this.groups.get(dpid);
      if (before && before.groupType === group.groupType && sameBuckets(before.buckets, group.buckets)) continue;
      this.groups.set(dpid, group);
      ctx.setGroups(dpid, GATEWAYS_GROUP_KEY, [group]);
    }
    for (const dpid of [...this.groups.keys()].filter((d) => !wanted.has(d))) {
      this.groups.delete(dpid);
      ctx.setGroups(dpid, GATEWAYS_GROUP_KEY, []);
    }
  }

  /** Hypervisors without an `ovsdb` target are provisioned by someone else; failures retry until they succeed or the peers change. */
  private provision(ctx: AppContext, hv: Provisionable, peers: readonly Hypervisor[], retry = false): void {
    const signature = JSON.stringify([hv.ovsdb, hv.bridge, hv.tunnelIp, peers.map((p) => [gatewayPortName(p), p.tunnelIp])]);
    if (this.stopped || (!retry && this.provisioned.get(hv.name) === signature)) return;
    this.provisioned.set(hv.name, signature);
    this.ports.ensure(hv, peers).then(
      () => ctx.log.info({ hypervisor: hv.name, peers: peers.map((p) => p.name) }, 'gateway BFD ports ready'),
      (err: unknown) => {
        ctx.log.error({ err, hypervisor: hv.name }, `gateway BFD ports not provisioned, retrying in ${this.retryMs} ms`);
        setTimeout(() => this.provisioned.get(hv.name) === signature && this.provision(ctx, hv, peers, true), this.retryMs).unref();
      },
    );
  }
}

/** What a gateway's bgpd must announce: nothing for a hypervisor the model no longer makes a gateway. */
function announced(model: NetworkModel, gateway: string): readonly string[] {
  return model.externalNetworks.some((e) => e.gateways.some((g) => g.hypervisor === gateway)) ? gatewayPrefixes(model, gateway) : [];
}
