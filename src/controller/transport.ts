import cluster from 'node:cluster';
import { lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { ConnectionError, ControllerConfigError, type CloseReason, type ControllerError } from './errors';
import type { SwitchSession } from './session';

/** IANA's OpenFlow port */
export const OPENFLOW_PORT = 6653;
const LISTENER_CLOSE_GRACE_MS = 1_000;

export type ListenSpec =
  | { transport: 'tcp'; host?: string; port?: number }
  | {
      transport: 'tls';
      host?: string;
      port?: number;
      key: string | Buffer;
      cert: string | Buffer;
      /** CA(s) that sign switch certificates */
      ca?: string | Buffer | Array<string | Buffer>;
      /** ask switches for a certificate (default true) */
      requestCert?: boolean;
      /** refuse switches whose certificate is missing or not signed by `ca` (default true) */
      rejectUnauthorized?: boolean;
    }
  /** a stale socket file at `path` is replaced; a live one makes `listen` fail */
  | { transport: 'unix'; path: string };

/** A running listener. */
export interface Listener {
  readonly spec: ListenSpec;
  /** the bound TCP port (useful after listening on port 0); undefined for Unix sockets */
  readonly port: number | undefined;
  close(): Promise<void>;
}

/** How a listener hands over an accepted connection. */
export type AcceptFn = (socket: Socket, remote: string) => void;

export async function startListener(
  spec: ListenSpec,
  accept: AcceptFn,
  reportError: (e: ControllerError) => void,
  handshakeTimeoutMs: number,
  log: Logger,
): Promise<Listener> {
  const server = makeServer(spec, accept, reportError, handshakeTimeoutMs);
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  // A cluster worker's listen shares the primary's socket, which another worker may hold live:
  // the primary checks for a stale file before it forks.
  if (spec.transport === 'unix' && !cluster.isWorker) await removeStaleSocket(spec.path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const onListening = () => {
      server.off('error', reject);
      resolve();
    };
    if (spec.transport === 'unix') server.listen(spec.path, onListening);
    else server.listen(spec.port ?? OPENFLOW_PORT, spec.host ?? '0.0.0.0', onListening);
  });
  server.on('error', (e) => reportError(new ConnectionError(`listener error: ${e.message}`, { remote: describeListen(spec) }, e)));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : undefined;
  log.info({ listen: describeListen(spec), port }, 'listening for switches');
  return {
    spec,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Sessions end their own sockets; this catches peers that never finish closing (or a TLS handshake).
        setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, LISTENER_CLOSE_GRACE_MS).unref();
      }),
  };
}

function makeServer(spec: ListenSpec, accept: AcceptFn, reportError: (e: ControllerError) => void, handshakeTimeoutMs: number): Server {
  if (spec.transport === 'unix') {
    return createServer((s) => accept(s, `unix:${spec.path}`));
  }
  if (spec.transport === 'tcp') {
    return createServer((s) => accept(s, `${s.remoteAddress}:${s.remotePort}`));
  }
  const requestCert = spec.requestCert ?? true;
  const rejectUnauthorized = requestCert && (spec.rejectUnauthorized ?? true);
  const server = createTlsServer(
    {
      key: spec.key,
      cert: spec.cert,
      ...(spec.ca !== undefined && { ca: spec.ca }),
      requestCert,
      // Checked below instead: a socket that node:tls refuses is gone before anyone can say whose it was, or why.
      rejectUnauthorized: false,
      handshakeTimeout: handshakeTimeoutMs,
    },
    (s: TLSSocket) => {
      const remote = `${s.remoteAddress}:${s.remotePort}`;
      if (rejectUnauthorized && !s.authorized) {
        // a missing certificate reads UNABLE_TO_GET_ISSUER_CERT in authorizationError
        const why = Object.keys(s.getPeerCertificate()).length === 0 ? 'the switch presented no certificate' : `the switch certificate is not trusted (${String(s.authorizationError)})`;
        reportError(new ConnectionError(`TLS handshake failed: ${why}`, { remote }));
        s.destroy();
        return;
      }
      accept(s, remote);
    },
  );
  server.on('tlsClientError', (e: Error, s: TLSSocket) => {
    reportError(new ConnectionError(`TLS handshake failed: ${e.message}`, { remote: `${s.remoteAddress}:${s.remotePort}` }, e));
  });
  return server;
}

function describeListen(spec: ListenSpec): string {
  return spec.transport === 'unix' ? `punix:${spec.path}` : `p${spec.transport === 'tls' ? 'ssl' : 'tcp'}:${spec.port ?? OPENFLOW_PORT}:${spec.host ?? '0.0.0.0'}`;
}

/**
 * A daemon that died leaves its socket file behind, and listening on it fails with EADDRINUSE.
 * The file is removed only when nobody accepts connections on it; anything else at the path is
 * left alone and refused.
 */
export async function removeStaleSocket(path: string): Promise<void> {
  let isSocket;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new ControllerConfigError(`${path} exists and is not a socket; remove it or choose another path`);
  if (await socketIsLive(path)) throw new ControllerConfigError(`${path} is in use by a live listener`);
  unlinkSync(path);
}

/** True when something accepts connections on the Unix socket at `path`. */
export function socketIsLive(path: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

// ---- dialing ----

export type DialTarget = { transport: 'unix'; path: string } | { transport: 'tcp'; host: string; port: number };

/** Parses 'unix:/path' or 'tcp:host:port' ('tcp:[::1]:6653' for IPv6), as ovs-vsctl spells targets. */
export function parseDialTarget(target: string): DialTarget {
  if (target.startsWith('unix:') && target.length > 5) return { transport: 'unix', path: target.slice(5) };
  const m = /^tcp:(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(target);
  if (m) {
    const port = Number(m[3]);
    if (port > 0 && port < 65536) return { transport: 'tcp', host: (m[1] ?? m[2])!, port };
  }
  throw new ControllerConfigError(`dial target '${target}' is not 'unix:/path' or 'tcp:host:port'`);
}

export interface DialOptions {
  /** first reconnect delay (default 100); doubles per failed attempt */
  minBackoffMs?: number;
  /** reconnect delay ceiling (default 10000) */
  maxBackoffMs?: number;
}

/** How a dialer hands over a connected socket; the returned session's end triggers a reconnect. */
export type AttachFn = (socket: Socket, remote: string) => SwitchSession;

/**
 * Keeps one connection to a switch's passive listener (e.g. OVS's `br-int.mgmt`), reconnecting
 * with exponential backoff and jitter whenever it fails or ends. Backoff restarts after a session
 * that reached READY.
 */
export class Dialer {
  private stopped = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private connecting: Socket | undefined;
  private _session: SwitchSession | undefined;
  readonly target: DialTarget;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(
    readonly targetText: string,
    private readonly attach: AttachFn,
    private readonly reportError: (e: ControllerError) => void,
    private readonly connectTimeoutMs: number,
    private readonly log: Logger,
    options: DialOptions = {},
  ) {
    this.target = parseDialTarget(targetText);
    this.minBackoffMs = options.minBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 10_000;
    if (!(this.minBackoffMs > 0 && this.maxBackoffMs >= this.minBackoffMs)) {
      throw new ControllerConfigError(`backoff must satisfy 0 < min (${this.minBackoffMs}) <= max (${this.maxBackoffMs})`);
    }
    this.dial();
  }

  /** the current session, if connected */
  get session(): SwitchSession | undefined {
    return this._session;
  }

  /** Stops reconnecting and closes the current connection. */
  stop(reason: CloseReason = 'closed_by_controller'): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.connecting?.destroy();
    this._session?.close(reason);
  }

  private dial(): void {
    if (this.stopped) return;
    const t = this.target;
    const socket = t.transport === 'unix' ? connect(t.path) : connect(t.port, t.host);
    this.connecting = socket;
    const timeout = setTimeout(() => socket.destroy(new Error(`connect timed out after ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
    const onError = (e: Error) => {
      clearTimeout(timeout);
      this.connecting = undefined;
      this.reportError(new ConnectionError(`dial ${this.targetText} failed: ${e.message}`, { remote: this.targetText }, e));
      this.scheduleRedial();
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timeout);
      socket.off('error', onError);
      this.connecting = undefined;
      const session = this.attach(socket, this.targetText);
      this._session = session;
      void session.closed.then((info) => {
        this._session = undefined;
        if (info.wasReady) this.failures = 0;
        this.scheduleRedial();
      });
    });
  }

  private scheduleRedial(): void {
    if (this.stopped) return;
    const ceiling = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** this.failures);
    this.failures = Math.min(this.failures + 1, 30);
    // "equal jitter": keeps a lower bound while spreading many dialers apart
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.log.debug({ target: this.targetText, delayMs: Math.round(delay) }, 'redialing');
    this.timer = setTimeout(() => this.dial(), delay);
  }
}
