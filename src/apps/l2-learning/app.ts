import { isPortUp, OFP_NO_BUFFER, OFPP, OFPPR } from '../../openflow';
import { ethernetHeader } from '../../packet';
import { formatDpid, type PacketInEvent, type PortStatusEvent } from '../../controller';
import {
  AppSettingsError,
  APP_SETTINGS,
  DEFAULT_MAC_TABLE_SIZE,
  deleteByCookie,
  flowMod,
  inject,
  injectable,
  MacTable,
  matchValue,
  MAX_MAC_TABLE_SIZE,
  output,
  type AppContext,
  type AppSettings,
  type TableSpec,
  type ZonemeshApp,
} from '../../sdk';

export const L2_LEARNING_APP_ID = 2;
export const L2_TABLE = 'l2-learning.mac';
/** a learned MAC's flow goes away after this long without a packet to it */
export const L2_IDLE_TIMEOUT_S = 60;
const LEARNED_PRIORITY = 100;
const EMPTY = Buffer.alloc(0);

/** Flows learned on one port share a cookie, so one delete removes them when the port goes. */
const portOwner = (port: number): string => `port:${port}`;

/**
 * The classic reactive learning switch. One table matches eth_dst and outputs to the port the MAC
 * was learned on; a miss goes to the controller, which learns the source, installs flows for the
 * source and (a miss proves its flow is gone) the known destination, and sends the packet on:
 * to the learned port, or flooded. Learned flows idle out and carry the ephemeral cookie bit, so the
 * reconciler never touches them.
 *
 * Each switch's MAC table holds at most `macTableSize` MACs (settings, default 8192), evicting the
 * least recently used (approximately: see MacTable). An evicted MAC's flow stays on the switch: it
 * still forwards correctly and idles out within L2_IDLE_TIMEOUT_S once unused, and deleting it would
 * cost the switch a FLOW_MOD per eviction when a flood is already loading it. The first eviction on
 * a switch is logged, and the count when the switch leaves.
 *
 * ```yaml
 * settings:
 *   l2-learning: { macTableSize: 8192 }
 * ```
 */
@injectable()
export class L2LearningApp implements ZonemeshApp {
  readonly name = 'l2-learning';
  readonly appId = L2_LEARNING_APP_ID;
  readonly tables: readonly TableSpec[] = [{ name: L2_TABLE, stage: 'l2', miss: 'controller', matches: ['eth_dst'] }];
  /** the bound of each switch's MAC table */
  readonly macTableSize: number;
  /** dpid → MAC → port */
  private readonly macs = new Map<bigint, MacTable>();

  constructor(@inject(APP_SETTINGS) settings: AppSettings) {
    this.macTableSize = parseMacTableSize(settings[this.name]);
  }

  start(ctx: AppContext): void {
    const tableId = ctx.pipeline.table(L2_TABLE).id;
    ctx.on(ctx.events.packetIn$, (e) => e.message.tableId === tableId && this.onPacketIn(ctx, e));
    ctx.on(ctx.events.portStatus$, (e) => this.onPortStatus(ctx, e));
    ctx.on(ctx.events.switchDown$, (e) => {
      const evictions = this.macs.get(e.dpid)?.evictions ?? 0;
      if (evictions > 0) ctx.log.info({ dpid: formatDpid(e.dpid), evictions, macTableSize: this.macTableSize }, 'switch left; its MAC table had evicted MACs');
      this.macs.delete(e.dpid);
    });
  }

  /** the MAC table of a switch, for tests and debugging */
  learned(dpid: bigint): ReadonlyMap<string, number> {
    return this.macs.get(dpid)?.entries() ?? new Map();
  }

  /** MACs evicted from a switch's full table since it connected */
  evictions(dpid: bigint): number {
    return this.macs.get(dpid)?.evictions ?? 0;
  }

  private onPacketIn(ctx: AppContext, { dpid, message: pin }: PacketInEvent): void {
    const inPort = matchValue(pin.match, 'in_port');
    if (inPort === undefined) return;
    const eth = ethernetHeader(pin.data);
    let table = this.macs.get(dpid);
    if (!table) this.macs.set(dpid, (table = new MacTable(this.macTableSize)));

    if (!eth.srcIsGroup && table.set(pin.data, 6, inPort)) {
      if (table.evictions === 1) ctx.log.warn({ dpid: formatDpid(dpid), macTableSize: this.macTableSize }, 'MAC table full; least recently used MACs are evicted from now on');
      this.install(ctx, dpid, eth.src, inPort);
    }
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

/** `settings.l2-learning.macTableSize`: an integer 1..MAX_MAC_TABLE_SIZE, DEFAULT_MAC_TABLE_SIZE when absent */
function parseMacTableSize(raw: unknown): number {
  if (raw === undefined) return DEFAULT_MAC_TABLE_SIZE;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new AppSettingsError('l2-learning', [{ path: '(settings)', problem: 'must be a mapping' }]);
  const { macTableSize = DEFAULT_MAC_TABLE_SIZE, ...unknown } = raw as Record<string, unknown>;
  const issues = Object.keys(unknown).map((key) => ({ path: key, problem: 'is not a setting of l2-learning (known: macTableSize)' }));
  if (typeof macTableSize !== 'number' || !Number.isInteger(macTableSize) || macTableSize < 1 || macTableSize > MAX_MAC_TABLE_SIZE) {
    issues.push({ path: 'macTableSize', problem: `must be an integer 1..${MAX_MAC_TABLE_SIZE}` });
  }
  if (issues.length) throw new AppSettingsError('l2-learning', issues);
  return macTableSize as number;
}
