import { connect, createServer, type Server, type Socket } from 'node:net';
import { Framer, decodeMessage, isBundle, type OfMessage } from '../../src/openflow';

/** One message seen on the wire, which way it went and when. */
export interface Tapped {
  readonly toSwitch: boolean;
  readonly message: OfMessage;
  readonly at: number;
}

const WRITES = new Set(['FLOW_MOD', 'GROUP_MOD', 'PORT_MOD', 'TABLE_MOD', 'METER_MOD', 'PACKET_OUT']);

/** A write a SLAVE may not send, decided here on the decoded wire message, not by the code under test. */
export function isWriteOnWire(m: OfMessage): boolean {
  return WRITES.has(m.type) || (m.type === 'EXPERIMENTER' && isBundle(m));
}

/**
 * A TCP proxy between switches and a controller that decodes both directions: what a controller
 * really sent, counted outside the controller. Switches connect to `port`; each connection is
 * relayed to `127.0.0.1:controllerPort`.
 */
export class OpenFlowTap {
  readonly seen: Tapped[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(controllerPort: number): Promise<OpenFlowTap> {
    let tap!: OpenFlowTap;
    const server = createServer((fromSwitch) => tap.relay(fromSwitch, controllerPort));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const address = server.address();
    tap = new OpenFlowTap(server, typeof address === 'object' && address ? address.port : 0);
    return tap;
  }

  /** messages sent to the switch since index `from` of `seen` */
  sentToSwitch(from = 0): OfMessage[] {
    return this.seen.slice(from).filter((t) => t.toSwitch).map((t) => t.message);
  }

  receivedFromSwitch(from = 0): OfMessage[] {
    return this.seen.slice(from).filter((t) => !t.toSwitch).map((t) => t.message);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(fromSwitch: Socket, controllerPort: number): void {
    const toController = connect(controllerPort, '127.0.0.1');
    for (const s of [fromSwitch, toController]) {
      this.sockets.add(s);
      s.on('error', () => undefined); // either end going away ends the pair
      s.on('close', () => {
        this.sockets.delete(s);
        fromSwitch.destroy();
        toController.destroy();
      });
    }
    this.pipe(fromSwitch, toController, false);
    this.pipe(toController, fromSwitch, true);
  }

  private pipe(from: Socket, to: Socket, toSwitch: boolean): void {
    const framer = new Framer();
    from.on('data', (chunk: Buffer) => {
      to.write(chunk);
      for (const frame of framer.messages(chunk)) {
        const res = decodeMessage(frame);
        if (res.ok) this.seen.push({ toSwitch, message: res.message, at: Date.now() });
      }
    });
  }
}
