import { isPortUp, OFP_NO_BUFFER, OFPP, OFPPR, type Action } from '../../openflow';
import { ethernetHeader } from '../../packet';
import type { PacketInEvent, PortStatusEvent } from '../../controller';
import { deleteByCookie, flowMod, injectable, MacTable, matchValue, type AppContext, type TableSpec, type ZonemeshApp } from '../../sdk';

export const L2_LEARNING_APP_ID = 2;
export const L2_TABLE = 'l2-learning.mac';
/** a learned MAC's flow goes away after this long without a packet to it */
export const L2_IDLE_TIMEOUT_S = 60;
const LEARNED_PRIORITY = 100;
const EMPTY = Buffer.alloc(0);

const output = (port: number): Action => ({ type: 'output', port, maxLen: 0 });
/** Flows learned on one port share a cookie, so one delete removes them when the port goes. */
const portOwner = (port: number): string => `port:${port}`;

/**
 * The classic reactive learning switch. One table matches eth_dst and outputs to the port the MAC
 * was learned on; a miss goes to the controller, which learns the source, installs flows for the
 * source and (a miss proves its flow is gone) the known destination, and sends the packet on:
 * to the learned port, or flooded. Learned flows idle out and carry the ephemeral cookie bit, so the
 * reconciler never touches them.
 */
@injectable()
export class L2LearningApp implements ZonemeshApp {
  readonly name = 'l2-learning';
  readonly appId = L2_LEARNING_APP_ID;
  readonly tables: readonly TableSpec[] = [{ name: L2_TABLE, stage: 'l2', miss: 'controller', matches: ['eth_dst'] }];
  /** dpid → MAC → port */
  private readonly macs = new Map<bigint, MacTable>();

  start(ctx: AppContext): void {
    const tableId = ctx.pipeline.table(L2_TABLE).id;
    ctx.on(ctx.events.packetIn$, (e) => e.message.tableId === tableId && this.onPacketIn(ctx, e));
    ctx.on(ctx.events.portStatus$, (e) => this.onPortStatus(ctx, e));
    ctx.on(ctx.events.switchDown$, (e) => this.macs.delete(e.dpid));
  }

  /** the MAC table of a switch, for tests and debugging */
  learned(dpid: bigint): ReadonlyMap<string, number> {
    return this.macs.get(dpid)?.entries() ?? new Map();
  }

  private onPacketIn(ctx: AppContext, { dpid, message: pin }: PacketInEvent): void {
    const inPort = matchValue(pin.match, 'in_port');
    if (inPort === undefined) return;
    const eth = ethernetHeader(pin.data);
    let table = this.macs.get(dpid);
    if (!table) this.macs.set(dpid, (table = new MacTable()));

    if (!eth.srcIsGroup && table.set(pin.data, 6, inPort)) this.install(ctx, dpid, eth.src, inPort);
    const outPort = table.get(pin.data, 0);
    if (outPort === inPort) return; // the destination sits behind the port the packet came in on
    if (outPort !== undefined) this.install(ctx, dpid, eth.dst, outPort);
    const buffered = pin.bufferId !== OFP_NO_BUFFER;
    ctx.send(dpid, {
      type: 'PACKET_OUT',
      xid: 0,
      bufferId: pin.bufferId,
      inPort,
      actions: [output(outPort ?? OFPP.FLOOD)],
      data: buffered ? EMPTY : pin.data,
    });
  }

  private install(ctx: AppContext, dpid: bigint, mac: string, port: number): void {
    const flow = ctx
      .flow(L2_TABLE, portOwner(port), { ephemeral: true })
      .priority(LEARNED_PRIORITY)
      .match({ eth_dst: mac })
      .apply(output(port))
      .idleTimeout(L2_IDLE_TIMEOUT_S)
      .build();
    ctx.send(dpid, flowMod('add', flow));
  }

  private onPortStatus(ctx: AppContext, { dpid, message }: PortStatusEvent): void {
    const portNo = message.desc.portNo;
    if (message.reason !== OFPPR.DELETE && isPortUp(message.desc)) return;
    ctx.send(dpid, deleteByCookie(ctx.cookie(portOwner(portNo), { ephemeral: true })));
    this.macs.get(dpid)?.forgetPort(portNo);
  }
}
