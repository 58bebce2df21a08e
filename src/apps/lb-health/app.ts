/**
 * Health checks of load-balancer backends, run on each backend's own hypervisor through OVS (docs/
 * load-balancers.md, "Health checks"). Built on the public SDK alone.
 *
 *   zonemesh run --apps lb-health,… --model FILE
 *
 * Every backend of a load balancer with a `healthCheck` gets a TCP connection (and for `http` a
 * GET) every interval, as PACKET_OUTs into its VM's port; the VM's answers come back through the
 * app's flow on the same switch. Rise and fall counts decide its state; each transition is logged
 * and published on BACKEND_HEALTH. Under mastership, a switch's master checks its backends: a
 * slave's PACKET_OUTs do not leave (`ctx.send` returns false) and it gets no packet-ins.
 */
import {
  BACKEND_HEALTH,
  LogLimiter,
  SwitchEventCounts,
  inject,
  injectable,
  packetOut,
  type AppContext,
  type BackendHealth,
  type EventCounter,
  type Flow,
  type PacketIn,
  type ZonemeshApp,
} from '../../sdk';
import { BackendHealthBoard } from './board';
import { BackendChecker, type IgnoredPacket, type Transmit } from './checker';
import { CHECK_TABLE, LB_HEALTH_APP_ID, LB_HEALTH_TABLES, checkFlows, checkTargets } from './targets';

/** how often due checks and deadlines are looked at: the detection bounds carry this much slack */
export const TICK_MS = 20;

@injectable()
export class LbHealthApp implements ZonemeshApp {
  readonly name = 'lb-health';
  readonly appId = LB_HEALTH_APP_ID;
  readonly tables = LB_HEALTH_TABLES;
  readonly checker = new BackendChecker();
  private readonly ignored = new SwitchEventCounts<IgnoredPacket | 'malformed'>();
  readonly eventCounters: readonly EventCounter[] = [
    {
      name: 'lb_health_packet_ins_ignored',
      help: 'Packets a VM sent to the health checks that no check took, by reason.',
      label: 'reason',
      read: () => this.ignored.read(),
    },
  ];
  /** transitions of one backend, logged at most 5 a minute each */
  private readonly logLimiter = new LogLimiter({ perInterval: 5, intervalMs: 60_000 });
  /** switches that hold check flows, to clear those a new model leaves without */
  private switchesWithFlows = new Set<bigint>();

  constructor(@inject(BACKEND_HEALTH) private readonly board: BackendHealthBoard) {}

  start(ctx: AppContext): void {
    this.board.active = true;
    const tableId = ctx.pipeline.table(CHECK_TABLE).id;
    const transmit: Transmit = (dpid, ofport, frame) => ctx.send(dpid, packetOut(frame, { to: ofport }));
    ctx.on(ctx.placement.changes$, (placement) => this.setTargets(ctx, checkTargets(ctx.model.current(), placement)));
    ctx.on(ctx.events.switchUp$, ({ dpid }) => this.checker.switchUp(dpid));
    ctx.on(ctx.events.switchDown$, ({ dpid }) => this.checker.switchDown(dpid));
    ctx.on(ctx.events.packetIn$, (pin) => {
      if (pin.tableId === tableId) this.onAnswer(ctx, pin, transmit);
    });
    const timer = setInterval(() => this.publish(ctx, this.checker.tick(Date.now(), transmit)), TICK_MS);
    ctx.stopped$.subscribe(() => {
      this.board.active = false;
      clearInterval(timer);
      this.logLimiter.flush();
    });
  }

  private setTargets(ctx: AppContext, targets: ReturnType<typeof checkTargets>): void {
    if (targets.length !== this.checker.backends) {
      ctx.log.info({ backends: targets.length, unplugged: targets.filter((t) => t.ofport === undefined).length }, 'checking load-balancer backends');
    }
    this.checker.setTargets(targets, Date.now());
    this.board.retain(new Set(targets.map((t) => t.key)));
    const flows = checkFlows(ctx, targets);
    for (const [dpid, list] of flows) ctx.setFlows(dpid, 'checks', list);
    const none: Flow[] = [];
    for (const dpid of this.switchesWithFlows) if (!flows.has(dpid)) ctx.setFlows(dpid, 'checks', none);
    this.switchesWithFlows = new Set(flows.keys());
  }

  private onAnswer(ctx: AppContext, pin: PacketIn, transmit: Transmit): void {
    const packet = pin.packet;
    const result = packet ? this.checker.receive(pin.dpid, pin.inPort, packet, Date.now(), transmit) : 'malformed';
    if (typeof result === 'string') {
      this.ignored.add(pin.dpid, result);
      this.logLimiter.log(ctx.log, 'debug', pin.dpid, 'check answer ignored', { dpid: pin.dpid.toString(16), inPort: pin.inPort, reason: result });
      return;
    }
    this.publish(ctx, result);
  }

  private publish(ctx: AppContext, transitions: readonly BackendHealth[]): void {
    for (const h of transitions) {
      const fields = { vpc: h.vpc, loadBalancer: h.loadBalancer, port: h.port, state: h.state, reason: h.reason };
      const subject = `${h.vpc}/${h.loadBalancer}/${h.port}`;
      if (h.state === 'down') this.logLimiter.log(ctx.log, 'warn', subject, 'backend down', fields, `backend ${subject} down: ${h.reason}`);
      else this.logLimiter.log(ctx.log, 'info', subject, 'backend up', fields, `backend ${subject} up`);
      this.board.publish(h);
    }
  }
}
