import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { formatMetricsAddress, listenHttp, type MetricsAddress } from './metrics-server';
import type { TopologyView } from './topology';

/** The page's plain files, shipped in the repository's web/ (this module runs from dist/src/runtime). */
export const PAGE_DIR = join(__dirname, '..', '..', '..', 'web');

const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/page.js': { file: 'page.js', type: 'text/javascript; charset=utf-8' },
  '/page.css': { file: 'page.css', type: 'text/css; charset=utf-8' },
};

export interface PageServerOptions {
  /** event streams open at once; one more is refused with 503 (default 32) */
  readonly maxViewers?: number;
  /** bytes a viewer may leave unread beyond its snapshot; a slower one is disconnected, and its browser reconnects (default 1 MiB) */
  readonly maxBacklogBytes?: number;
  /** changes go out at most this often, coalesced (default 250 ms) */
  readonly flushIntervalMs?: number;
  /** a comment line this often keeps idle streams open through proxies and finds dead ones (default 15 s) */
  readonly heartbeatMs?: number;
}

export const DEFAULT_MAX_VIEWERS = 32;
export const DEFAULT_MAX_BACKLOG_BYTES = 1024 * 1024;
/** how long a browser waits before reconnecting a stream that ended */
const RECONNECT_MS = 2_000;

/** The page could not be served (port in use, files missing …). */
export class PageServerError extends Error {
  override readonly name = 'PageServerError';
}

interface Viewer {
  readonly res: ServerResponse;
  /** the socket's unsent bytes beyond which this viewer is too slow */
  readonly backlogLimit: number;
}

/** `json` is one line: JSON escapes newlines */
function sseEvent(name: 'snapshot' | 'update', json: string): string {
  return `event: ${name}\ndata: ${json}\n\n`;
}

/**
 * The live topology page over node:http: the page's three files, `/topology` (the state as JSON) and
 * `/events`, a server-sent event stream: a `snapshot` on connect (and after the model changes), then
 * an `update` with the hypervisors and tunnel pairs that changed, at most every flushIntervalMs.
 * Everything a browser can make us hold is bounded: the streams open at once, the bytes each may
 * leave unread, the requests (GET or HEAD only, no body read, timed out when they stall).
 * Plain node:http like the metrics endpoint: a few fixed routes, and an event stream is a raw response
 * held open, which a framework would only wrap.
 */
export class PageServer {
  private readonly viewers = new Set<Viewer>();
  private readonly timers: NodeJS.Timeout[] = [];
  /** the snapshot as JSON until the next change: viewers and /topology requests share one build per flush */
  private snapshotJson: string | undefined;

  private constructor(
    private readonly server: Server,
    private readonly view: TopologyView,
    private readonly files: ReadonlyMap<string, { body: Buffer; type: string }>,
    private readonly options: Required<PageServerOptions>,
    private readonly log: Logger,
    /** the bound port (the one asked for, or the one picked for port 0) */
    readonly port: number,
  ) {
    this.timers.push(
      setInterval(() => this.flush(), options.flushIntervalMs),
      setInterval(() => this.broadcast(': heartbeat\n\n'), options.heartbeatMs),
    );
    for (const t of this.timers) t.unref();
  }

  static async listen(address: MetricsAddress, view: TopologyView, log: Logger, options: PageServerOptions = {}): Promise<PageServer> {
    const where = formatMetricsAddress(address);
    const files = new Map<string, { body: Buffer; type: string }>();
    for (const [path, { file, type }] of Object.entries(FILES)) {
      try {
        files.set(path, { body: readFileSync(join(PAGE_DIR, file)), type });
      } catch (e) {
        throw new PageServerError(`cannot serve the page on ${where}: its file ${join(PAGE_DIR, file)} is unreadable (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
      }
    }
    let page: PageServer | undefined;
    const server = createServer((req, res) => (page ? page.handle(req, res) : res.writeHead(503).end()));
    const port = await listenHttp(server, address, (why, cause) => new PageServerError(`cannot serve the page on ${where}: ${why}`, { cause }));
    server.on('error', (e) => log.error({ err: e }, 'page endpoint error'));
    page = new PageServer(server, view, files, {
      maxViewers: options.maxViewers ?? DEFAULT_MAX_VIEWERS,
      maxBacklogBytes: options.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG_BYTES,
      flushIntervalMs: options.flushIntervalMs ?? 250,
      heartbeatMs: options.heartbeatMs ?? 15_000,
    }, log, port);
    log.info({ page: `http://${formatMetricsAddress({ ...address, port })}/` }, 'serving the live page');
    return page;
  }

  /** event streams open now */
  get viewerCount(): number {
    return this.viewers.size;
  }

  close(): Promise<void> {
    for (const t of this.timers.splice(0)) clearInterval(t);
    for (const v of this.viewers) v.res.end();
    this.viewers.clear();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD' }).end();
    const common = { 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' };
    const file = this.files.get(path);
    if (file) {
      const headers = { ...common, 'content-type': file.type, 'content-security-policy': "default-src 'self'; frame-ancestors 'none'" };
      return void res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : file.body);
    }
    // browsers ask for it unbidden; the page has none
    if (path === '/favicon.ico') return void res.writeHead(204, common).end();
    if (path === '/topology') return void res.writeHead(200, { ...common, 'content-type': 'application/json' }).end(req.method === 'HEAD' ? undefined : this.snapshot());
    if (path === '/events') return req.method === 'HEAD' ? void res.writeHead(200, { ...common, 'content-type': 'text/event-stream' }).end() : this.openStream(res, common);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; the page is at /\n');
  }

  private openStream(res: ServerResponse, headers: Record<string, string>): void {
    if (this.viewers.size >= this.options.maxViewers) {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '10' }).end(`too many viewers (${this.options.maxViewers}); try again later\n`);
      return;
    }
    const first = `retry: ${RECONNECT_MS}\n\n${sseEvent('snapshot', this.snapshot())}`;
    const viewer: Viewer = { res, backlogLimit: Buffer.byteLength(first) + this.options.maxBacklogBytes };
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream', connection: 'keep-alive' });
    res.socket?.setNoDelay(true);
    res.write(first);
    this.viewers.add(viewer);
    res.once('close', () => this.viewers.delete(viewer));
    this.log.debug({ viewers: this.viewers.size }, 'page viewer connected');
  }

  /** The latest snapshot's JSON; a change not sent yet goes to the viewers first, so none misses it. */
  private snapshot(): string {
    this.flush();
    return (this.snapshotJson ??= JSON.stringify(this.view.snapshot()));
  }

  private flush(): void {
    const change = this.view.takeChange();
    if (!change) return;
    if ('snapshot' in change) {
      this.snapshotJson = JSON.stringify(change.snapshot);
      this.broadcast(sseEvent('snapshot', this.snapshotJson));
    } else {
      this.snapshotJson = undefined;
      this.broadcast(sseEvent('update', JSON.stringify(change.update)));
    }
  }

  private broadcast(text: string): void {
    for (const viewer of this.viewers) {
      if (viewer.res.writableLength > viewer.backlogLimit) {
        this.log.debug({ unsent: viewer.res.writableLength }, 'page viewer too slow; disconnected');
        this.viewers.delete(viewer);
        viewer.res.destroy();
      } else viewer.res.write(text);
    }
  }
}
