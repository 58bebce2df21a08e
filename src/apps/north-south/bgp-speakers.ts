import { type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { AppSettingsError, type AppSettings, injectable } from '../../sdk';
import { bgpNetworkCommands, parseBgpNetworks } from './bgp';

/**
 * Keeps a gateway's bgpd originating exactly some prefixes, through FRR's own CLI on the gateway's
 * vty socket: we write no routing protocol, and bgpd keeps announcing what it was last told while
 * the controller is away.
 */
export interface BgpSpeakers {
  /** Resolves true when bgpd's networks had to change, false when they already were `prefixes`. */
  announce(vtySocketDir: string, prefixes: readonly string[]): Promise<boolean>;
}

/** DI token for BgpSpeakers; tests bind a stub. */
export const BGP_SPEAKERS = Symbol.for('zonemesh.bgpSpeakers');

export class BgpVtyError extends Error {
  override readonly name = 'BgpVtyError';
  constructor(
    readonly socket: string,
    readonly command: string,
    readonly output: string,
  ) {
    super(`bgpd at ${socket}: '${command}' failed: ${output.trim()}`);
  }
}

/** a reply is the command's output, three NULs and its status (0: success) */
const REPLY_END = Buffer.from([0, 0, 0]);
/** a running configuration is kilobytes; more is a peer to stop listening to */
const MAX_REPLY_BYTES = 1 << 20;
const TIMEOUT_MS = 10_000;

/**
 * One session on bgpd's vty socket (`DIR/bgpd.vty`), speaking what vtysh speaks to it: a command
 * and a NUL, then the output up to three NULs and a status byte. vtysh itself costs a process and
 * 200-700 ms per run on a loaded two-core host; the socket answers in well under a millisecond.
 */
class BgpdVty {
  private buffered = Buffer.alloc(0);
  private waiting: { resolve: (reply: { output: string; status: number }) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  private constructor(
    readonly path: string,
    private readonly socket: Socket,
  ) {
    socket.on('data', (chunk) => this.received(chunk));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new BgpVtyError(path, '(session)', 'bgpd closed its vty socket')));
    socket.setTimeout(TIMEOUT_MS, () => this.fail(new BgpVtyError(path, '(session)', `no answer within ${TIMEOUT_MS} ms`)));
  }

  static open(dir: string): Promise<BgpdVty> {
    const path = join(dir, 'bgpd.vty');
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once('connect', () => resolve(new BgpdVty(path, socket)));
      socket.once('error', (e) => reject(new BgpVtyError(path, '(connect)', e.message)));
    });
  }

  /** Runs one command; a non-zero status is a BgpVtyError carrying bgpd's own message. */
  async run(command: string): Promise<string> {
    if (this.failure) throw this.failure;
    const reply = await new Promise<{ output: string; status: number }>((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket.write(`${command}\0`);
    });
    if (reply.status !== 0) throw new BgpVtyError(this.path, command, reply.output || `status ${reply.status}`);
    return reply.output;
  }

  close(): void {
    this.socket.destroy();
  }

  private received(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    if (this.buffered.length > MAX_REPLY_BYTES) return this.fail(new BgpVtyError(this.path, '(reply)', `more than ${MAX_REPLY_BYTES} bytes`));
    const n = this.buffered.length;
    if (n < 4 || !this.buffered.subarray(n - 4, n - 1).equals(REPLY_END)) return;
    const reply = { output: this.buffered.subarray(0, n - 4).toString('utf8'), status: this.buffered[n - 1]! };
    this.buffered = Buffer.alloc(0);
    const w = this.waiting;
    this.waiting = undefined;
    w?.resolve(reply);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.waiting?.reject(this.failure);
    this.waiting = undefined;
    this.socket.destroy();
  }
}

@injectable()
export class VtyBgpSpeakers implements BgpSpeakers {
  async announce(dir: string, prefixes: readonly string[]): Promise<boolean> {
    const vty = await BgpdVty.open(dir);
    try {
      await vty.run('enable');
      const commands = bgpNetworkCommands(parseBgpNetworks(await vty.run('show running-config')), prefixes);
      for (const c of commands) await vty.run(c);
      if (commands.length > 0) await vty.run('end');
      return commands.length > 0;
    } finally {
      vty.close();
    }
  }
}

/** `settings.north-south`: which gateways' bgpd the controller drives, by hypervisor name. */
export interface NorthSouthSettings {
  /** hypervisor → the directory of its bgpd's vty socket (bgpd's --vty_socket) */
  readonly bgpVtySockets: Readonly<Record<string, string>>;
}

/** Reads `settings.north-south`; throws AppSettingsError naming every bad field. */
export function parseNorthSouthSettings(raw: unknown): NorthSouthSettings {
  const app = 'north-south';
  if (raw === undefined) return { bgpVtySockets: {} };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new AppSettingsError(app, [{ path: '', problem: 'must be a mapping of settings' }]);
  const s = raw as AppSettings;
  const issues = Object.keys(s)
    .filter((k) => k !== 'bgpVtySockets')
    .map((k) => ({ path: k, problem: `is not a setting of ${app} (known: bgpVtySockets)` }));
  const sockets = s.bgpVtySockets ?? {};
  if (typeof sockets !== 'object' || sockets === null || Array.isArray(sockets)) issues.push({ path: 'bgpVtySockets', problem: 'must map hypervisor names to vty socket directories' });
  else for (const [hv, dir] of Object.entries(sockets)) if (typeof dir !== 'string' || !dir.startsWith('/')) issues.push({ path: `bgpVtySockets.${hv}`, problem: 'must be an absolute directory path' });
  if (issues.length) throw new AppSettingsError(app, issues);
  return { bgpVtySockets: sockets as Record<string, string> };
}
