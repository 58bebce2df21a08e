import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  decodeMessage,
  encodeMessage,
  Framer,
  OFP_VERSION,
  OFPMPF_REPLY_MORE,
  OFPT,
  type DecodeResult,
  type OfMessage,
} from '../../src/openflow';
import { run, type RunOptions } from './run';

/** The system OVS's run directory (where db.sock and BRIDGE.mgmt live). */
export const OVS_RUNDIR = process.env.OVS_RUNDIR ?? '/var/run/openvswitch';

export async function vsctl(args: readonly string[]): Promise<string> {
  return (await run('ovs-vsctl', ['--timeout=20', ...args])).stdout;
}

/** ovs-ofctl speaking OpenFlow 1.3, the only version zonemesh uses. */
export async function ofctl(args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return (await run('ovs-ofctl', ['-O', 'OpenFlow13', ...args], { timeoutMs: 60_000, ...opts })).stdout;
}

/** Fails with a hint when the system OVS is not up (scripts/test.sh starts it). */
export async function assertOvsRunning(): Promise<void> {
  try {
    await run('ovs-vsctl', ['--timeout=5', 'show']);
  } catch (e) {
    throw new Error(`the system Open vSwitch is not reachable; run the tests with 'npm test', which starts it (${(e as Error).message})`);
  }
}

/** `ovs-vsctl list controller`: every controller's target → its role as OVS last set it ('' before any) */
export async function controllerRoles(): Promise<Record<string, string>> {
  const out = await vsctl(['--format=json', '--columns=target,role', 'list', 'controller']);
  const rows = (JSON.parse(out) as { data: [string, string | [string, unknown[]]][] }).data;
  return Object.fromEntries(rows.map(([target, role]) => [target, typeof role === 'string' ? role : '']));
}

export interface BridgeOptions {
  /** e.g. 'tcp:127.0.0.1:6653'; set in the add-br transaction, because a bridge's first controller flushes its flows */
  controller?: string;
}

/** Test bridges start with 'zm' so that scripts/test.sh can delete any a crashed run left behind. */
const BRIDGE_NAME = /^zm[a-z0-9_-]{0,13}$/;

/**
 * Runs `fn` with a fresh userspace (netdev) OpenFlow 1.3 bridge in fail_mode=secure, and
 * deletes the bridge afterwards whatever `fn` does. A leftover of the same name is replaced.
 */
export async function withBridge<T>(name: string, opts: BridgeOptions, fn: (bridge: string) => Promise<T>): Promise<T> {
  if (!BRIDGE_NAME.test(name)) throw new Error(`test bridge name '${name}' must match ${BRIDGE_NAME}`);
  const controller = opts.controller ? ['--', 'set-controller', name, opts.controller] : [];
  await vsctl([
    '--if-exists', 'del-br', name,
    '--', 'add-br', name,
    '--', 'set', 'bridge', name, 'datapath_type=netdev', 'protocols=OpenFlow13', 'fail_mode=secure',
    ...controller,
  ]);
  try {
    return await fn(name);
  } finally {
    await vsctl(['--if-exists', 'del-br', name]);
  }
}

export interface DumpedFlow {
  cookie: bigint;
  table: number;
  priority: number;
}

const OFP_DEFAULT_PRIORITY = 0x8000;

/** `ovs-ofctl dump-flows --no-names`, one entry per flow. */
export async function dumpFlows(bridge: string): Promise<DumpedFlow[]> {
  const out = await ofctl(['dump-flows', '--no-names', bridge]);
  return out
    .split('\n')
    .filter((line) => line.startsWith(' cookie='))
    .map((line) => {
      // only the part before the actions: learn() and the like carry their own table= and priority=
      const head = line.slice(0, line.indexOf(' actions='));
      return {
        cookie: BigInt(/cookie=(0x[0-9a-f]+)/.exec(head)![1]!),
        table: Number(/table=(\d+)/.exec(head)?.[1] ?? 0),
        priority: Number(/priority=(\d+)/.exec(head)?.[1] ?? OFP_DEFAULT_PRIORITY),
      };
    });
}

/** One message as the switch sent it: the exact bytes, and what our decoder made of them. */
export interface Received {
  bytes: Buffer;
  decoded: DecodeResult;
}

/**
 * A minimal OpenFlow client for tests, built on our codec: it sends a message and collects
 * the replies with the same xid. The controller runtime proper lives elsewhere.
 */
export class OfTestClient {
  private readonly framer = new Framer();
  private readonly waiting = new Map<number, { replies: Received[]; done: (r: Received[]) => void }>();
  private nextXid = 1;
  private fail!: (e: Error) => void;
  /** rejects once the connection breaks, so no wait outlives it */
  private readonly failed = new Promise<never>((_, reject) => (this.fail = reject));
  private helloSeen!: () => void;
  private readonly hello = new Promise<void>((resolve) => (this.helloSeen = resolve));

  private constructor(private readonly socket: Socket) {
    this.failed.catch(() => {}); // observed through within()
    socket.on('data', (chunk) => {
      try {
        for (const bytes of this.framer.messages(chunk)) this.dispatch({ bytes, decoded: decodeMessage(bytes) });
      } catch (e) {
        this.fail(e as Error);
      }
    });
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('the switch closed the connection')));
  }

  /** Connects to a bridge's passive management socket and completes the HELLO exchange. */
  static async connectToBridge(bridge: string, timeoutMs = 10_000): Promise<OfTestClient> {
    const socket = connect(join(OVS_RUNDIR, `${bridge}.mgmt`));
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new OfTestClient(socket);
    client.send({ type: 'HELLO', xid: client.xid(), elements: [{ type: 'versionbitmap', versions: [OFP_VERSION] }] });
    await client.within(client.hello, timeoutMs, 'HELLO from the switch');
    return client;
  }

  xid(): number {
    return this.nextXid++;
  }

  send(msg: OfMessage): void {
    this.socket.write(encodeMessage(msg));
  }

  /**
   * Sends `msg` and resolves with every reply carrying its xid: one message, or a
   * multipart sequence up to the part without OFPMPF_REPLY_MORE.
   */
  request(msg: OfMessage, timeoutMs = 10_000): Promise<Received[]> {
    const replies = new Promise<Received[]>((done) => {
      this.waiting.set(msg.xid, { replies: [], done });
    });
    this.send(msg);
    return this.within(replies, timeoutMs, `a complete reply to ${msg.type} xid=${msg.xid}`).finally(() =>
      this.waiting.delete(msg.xid),
    );
  }

  close(): void {
    this.socket.destroy();
  }

  private dispatch(received: Received): void {
    const { bytes, decoded } = received;
    const type = bytes[1];
    if (type === OFPT.HELLO) return this.helloSeen();
    if (type === OFPT.ECHO_REQUEST && decoded.ok && decoded.message.type === 'ECHO_REQUEST') {
      return this.send({ type: 'ECHO_REPLY', xid: decoded.message.xid, data: decoded.message.data });
    }
    const pending = this.waiting.get(bytes.readUInt32BE(4));
    if (!pending) return; // asynchronous messages (port status and the like) are not what these tests look at
    pending.replies.push(received);
    // The MORE flag is read off the raw ofp_multipart_reply header, so a reply we fail to decode still completes.
    const more = type === OFPT.MULTIPART_REPLY && (bytes.readUInt16BE(10) & OFPMPF_REPLY_MORE) !== 0;
    if (!more) pending.done(pending.replies);
  }

  private within<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([p, this.failed, timeout]).finally(() => clearTimeout(timer));
  }
}
