import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

/** Where `--metrics` (or `--http`) serves: 'HOST:PORT', '[v6]:PORT' or ':PORT' (every address). */
export interface MetricsAddress {
  readonly host: string | undefined;
  readonly port: number;
}

const ADDRESS_FORMS = "'HOST:PORT', '[IPv6]:PORT' or ':PORT'";

/** Parses a metrics address; returns a problem text instead of throwing, so a config reports all its problems at once. */
export function parseMetricsAddress(text: string): MetricsAddress | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]/]*)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || !(port >= 0 && port < 65536)) return `'${text}' is not ${ADDRESS_FORMS}`;
  const host = m[1] ?? m[2];
  return { host: host === '' ? undefined : host, port };
}

export function formatMetricsAddress(a: MetricsAddress): string {
  const host = a.host === undefined ? '' : a.host.includes(':') ? `[${a.host}]` : a.host;
  return `${host}:${a.port}`;
}

/** The metrics endpoint could not be opened (port in use, address not local …). */
export class MetricsServerError extends Error {
  override readonly name = 'MetricsServerError';
}

/**
 * Binds `server` to `address` with timeouts for a peer that stalls mid-request; resolves with the bound
 * port, or rejects with `refused(why)` ('address in use (EADDRINUSE)' …).
 */
export async function listenHttp(server: Server, address: MetricsAddress, refused: (why: string, cause: Error) => Error): Promise<number> {
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'EADDRINUSE' ? 'address in use' : e.code === 'EADDRNOTAVAIL' ? 'address not available on this machine' : e.code === 'EACCES' ? 'permission denied' : e.message;
      reject(refused(`${why}${e.code ? ` (${e.code})` : ''}`, e));
    });
    server.listen(address.port, address.host, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/**
 * `GET /metrics` in the Prometheus text format, over node:http: one route needs no framework. Any other
 * path is 404, any other method 405; a scrape that fails is a 500 with the error's message, and is logged.
 */
export class MetricsServer {
  private constructor(
    private readonly server: Server,
    /** the bound port (the one asked for, or the one picked for port 0) */
    readonly port: number,
  ) {}

  static async listen(address: MetricsAddress, registry: Registry, log: Logger): Promise<MetricsServer> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/metrics') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; metrics are at /metrics\n');
      if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD' }).end();
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
        (e: unknown) => {
          log.error({ err: e }, 'metrics scrape failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error)?.message ?? String(e)}\n`);
        },
      );
    });
    const port = await listenHttp(server, address, (why, cause) => new MetricsServerError(`cannot serve metrics on ${formatMetricsAddress(address)}: ${why}`, { cause }));
    server.on('error', (e) => log.error({ err: e }, 'metrics endpoint error'));
    log.info({ metrics: `${formatMetricsAddress({ ...address, port })}/metrics` }, 'serving metrics');
    return new MetricsServer(server, port);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
