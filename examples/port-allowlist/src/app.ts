/**
 * A zonemesh app outside the zonemesh repository: only allowlisted source MACs may send on a port.
 *
 *   zonemesh run --app ./dist/src/app.js --config run.yaml
 *
 *   settings:
 *     port-allowlist:
 *       ports:
 *         web1: ['02:00:00:00:00:01']
 *         web2: ['02:00:00:00:00:02', '02:00:00:00:00:03']
 *
 * Ports are named as the switch names them (OVS interface names). A packet from an allowlisted
 * (port, MAC) pair goes on to the next table of the pipeline; anything else is dropped.
 */
import {
  APP_SETTINGS,
  AppSettingsError,
  OFPPR,
  inject,
  injectable,
  type AppContext,
  type AppSettings,
  type Flow,
  type Port,
  type SwitchUpEvent,
  type TableSpec,
  type ZonemeshApp,
} from 'zonemesh/sdk';

export const ALLOWLIST_TABLE = 'port-allowlist.check';
export const PORT_ALLOWLIST_APP_ID = 50;
const ALLOWED_PRIORITY = 100;

/** port name → MACs allowed to send on it */
export type Allowlist = ReadonlyMap<string, readonly string[]>;

/** Reads `settings.port-allowlist`; throws AppSettingsError naming the bad entry. */
export function parseAllowlist(raw: unknown): Allowlist {
  const ports = (raw as { ports?: unknown } | undefined)?.ports ?? {};
  if (typeof ports !== 'object' || ports === null || Array.isArray(ports)) {
    throw new AppSettingsError('port-allowlist', [{ path: 'ports', problem: 'must map port names to MAC lists' }]);
  }
  return new Map(
    Object.entries(ports).map(([port, macs]) => {
      if (!Array.isArray(macs) || !macs.every((m) => typeof m === 'string' && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(m))) {
        throw new AppSettingsError('port-allowlist', [{ path: `ports.${port}`, problem: 'must be a list of MAC addresses' }]);
      }
      return [port, macs.map((m: string) => m.toLowerCase())];
    }),
  );
}

/** one owner (so one cookie) per port: its flows are replaced or removed together */
export const ownerOf = (portName: string): string => `port:${portName}`;

/**
 * The flows one port wants: plain data, computed from the port and the allowlist only.
 * Allowed packets continue in the table after ours, if there is one.
 */
export function portFlows(ctx: Pick<AppContext, 'flow' | 'pipeline'>, port: Port, macs: readonly string[]): Flow[] {
  const next = ctx.pipeline.successor(ctx.pipeline.table(ALLOWLIST_TABLE));
  return macs.map((mac) => {
    const b = ctx.flow(ALLOWLIST_TABLE, ownerOf(port.name)).priority(ALLOWED_PRIORITY).match({ in_port: port.portNo, eth_src: mac });
    return (next ? b.goto(next.name) : b).build();
  });
}

@injectable()
export default class PortAllowlistApp implements ZonemeshApp {
  readonly name = 'port-allowlist';
  readonly appId = PORT_ALLOWLIST_APP_ID;
  readonly tables: readonly TableSpec[] = [{ name: ALLOWLIST_TABLE, stage: 'spoofguard', miss: 'drop', matches: ['in_port', 'eth_src'] }];
  private readonly allowlist: Allowlist;

  constructor(@inject(APP_SETTINGS) settings: AppSettings) {
    this.allowlist = parseAllowlist(settings[this.name]);
  }

  start(ctx: AppContext): void {
    ctx.on(ctx.events.switchUp$, (e) => this.onSwitchUp(ctx, e));
    ctx.on(ctx.events.portStatus$, ({ dpid, message }) => {
      const macs = this.allowlist.get(message.desc.name);
      if (!macs) return;
      // A deleted port wants nothing; an added or renumbered one wants flows for its number.
      ctx.setFlows(dpid, ownerOf(message.desc.name), message.reason === OFPPR.DELETE ? [] : portFlows(ctx, message.desc, macs));
    });
  }

  private onSwitchUp(ctx: AppContext, { dpid, ports }: SwitchUpEvent): void {
    for (const port of ports) {
      const macs = this.allowlist.get(port.name);
      if (macs) ctx.setFlows(dpid, ownerOf(port.name), portFlows(ctx, port, macs));
    }
  }
}
