/**
 * Backends that answer their own name, and clients that count who answered, in the VMs of an
 * overlay scenario: the load balancer's system test (test/integration/load-balancer.test.ts), its
 * benchmark (bench/lb-requests.ts) and the demo's load-balancer section (scripts/demo-lb.ts).
 */
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { spawn, type ChildProcess } from 'node:child_process';
import type { OverlayScenario } from './overlay';
import { run, spawnTracked } from './run';

/**
 * Answers every GET with its name, a thread per connection, HTTP/1.1 (a client may keep its
 * connection for more requests), no log; says `listening` once it does. Not http.server's CLI: it
 * looks its address up in DNS before listening, which in a VM with a default route and no resolver
 * waits for the resolver's timeouts.
 */
const NAME_SERVER = `
import http.server, socketserver, sys
ip, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', str(len(name)))
        self.end_headers()
        self.wfile.write(name)
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
server = Server((ip, port), Handler)
print('listening', flush=True)
server.serve_forever()
`;

export interface NameServer {
  readonly process: ChildProcess;
  /** when it said it listens (ms since the epoch) */
  readonly listeningAt: number;
}

/**
 * Starts a name server in VM `name` on its address and `port`; resolves once it listens. A
 * `detached` one outlives this process (the demo leaves it running) and has no pidfile: the
 * scenario's teardown stops whatever runs in its VMs.
 */
export async function startNameServer(scenario: OverlayScenario, name: string, port: number, opts: { detached?: boolean } = {}): Promise<NameServer> {
  const vm = scenario.state().vms[name]!;
  const args = ['netns', 'exec', vm.netns, 'python3', '-c', NAME_SERVER, vm.ip, String(port), name];
  const server = opts.detached ? spawn('ip', args, { stdio: ['ignore', 'pipe', 'ignore'], detached: true }) : spawnTracked('ip', args, { stdio: ['ignore', 'pipe', 'ignore'] });
  const [line] = (await once(createInterface({ input: server.stdout! }), 'line', { signal: AbortSignal.timeout(10_000) })) as string[];
  if (line !== 'listening') throw new Error(`${name}'s server on ${port} said ${line}`);
  if (opts.detached) {
    // it prints nothing more
    server.stdout!.destroy();
    server.unref();
  }
  return { process: server, listeningAt: Date.now() };
}

/** The pid of what listens on TCP `port` in VM `name`, if anything does. */
export async function listenerPid(scenario: OverlayScenario, name: string, port: number): Promise<number | undefined> {
  const { stdout } = await run('ip', ['netns', 'exec', scenario.state().vms[name]!.netns, 'ss', '-Hltnp', `sport = :${port}`]);
  const pid = /pid=(\d+)/.exec(stdout)?.[1];
  return pid === undefined ? undefined : Number(pid);
}

/** New connections one after the other, one request each, to the targets in turn: who answered, what failed, how long it took. */
const CLIENT = `
import http.client, json, sys, time
targets, n, timeout = [t.rsplit(':', 1) for t in sys.argv[1].split(',')], int(sys.argv[2]), float(sys.argv[3])
served, failures = {}, []
start = time.monotonic()
for i in range(n):
    host, port = targets[i % len(targets)]
    try:
        c = http.client.HTTPConnection(host, int(port), timeout=timeout)
        c.request('GET', '/name')
        body = c.getresponse().read().decode()
        c.close()
        served[body] = served.get(body, 0) + 1
    except Exception as e:
        failures.append(repr(e))
print(json.dumps({'served': served, 'failures': failures, 'seconds': time.monotonic() - start}))
`;

export interface Served {
  /** backend name → requests it answered */
  served: Record<string, number>;
  failures: string[];
  seconds: number;
}

/** `n` new connections from VM `client` to `targets` (`host:port`, in turn), each request given up after `timeoutSeconds`. */
export async function newConnections(scenario: OverlayScenario, client: string, targets: readonly string[], n: number, timeoutSeconds = 5): Promise<Served> {
  const netns = scenario.state().vms[client]!.netns;
  const { stdout } = await run('ip', ['netns', 'exec', netns, 'python3', '-c', CLIENT, targets.join(','), String(n), String(timeoutSeconds)], { timeoutMs: 90_000 + n * timeoutSeconds * 1000 });
  return JSON.parse(stdout) as Served;
}

/**
 * A failover's client: first `held` HTTP/1.1 connections to the target (a VIP) answered by backends
 * other than `avoid`, kept open; then a new connection every 1/rate s (one request, timeout 1 s, each in its
 * own thread), while each held connection asks again every second, until stdin closes. One JSON
 * line per event (times in seconds since the epoch).
 */
const LOAD = `
import http.client, json, sys, threading, time
(vip, port), rate, held_count, avoid = sys.argv[1].rsplit(':', 1), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lock = threading.Lock()
def emit(event):
    with lock:
        print(json.dumps(event), flush=True)
def get(conn):
    conn.request('GET', '/name')
    return conn.getresponse().read().decode()
held = []
while len(held) < held_count:
    conn = http.client.HTTPConnection(vip, int(port), timeout=2)
    name = get(conn)
    if name == avoid:
        conn.close()
    else:
        held.append((conn, name))
emit({'kind': 'ready', 'held': [name for _, name in held]})
stopping = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stopping.set()), daemon=True).start()
def new_connection():
    at = time.time()
    try:
        conn = http.client.HTTPConnection(vip, int(port), timeout=1)
        emit({'kind': 'new', 'at': at, 'served': get(conn)})
        conn.close()
    except Exception as e:
        emit({'kind': 'new', 'at': at, 'error': repr(e)})
def ask_held():
    alive = list(enumerate(held))
    while alive and not stopping.is_set():
        for i, (conn, name) in list(alive):
            at = time.time()
            try:
                emit({'kind': 'held', 'at': at, 'conn': i, 'backend': name, 'served': get(conn)})
            except Exception as e:
                emit({'kind': 'held', 'at': at, 'conn': i, 'backend': name, 'error': repr(e)})
                alive.remove((i, (conn, name)))
            stopping.wait(1 / len(held))
asker = threading.Thread(target=ask_held)
asker.start()
workers, start = [], time.time()
while not stopping.is_set():
    worker = threading.Thread(target=new_connection)
    worker.start()
    workers.append(worker)
    stopping.wait(max(0, start + len(workers) / rate - time.time()))
for worker in workers + [asker]:
    worker.join()
`;

export type LoadEvent =
  | { kind: 'ready'; held: string[] }
  | { kind: 'new'; at: number; served?: string; error?: string }
  | { kind: 'held'; at: number; conn: number; backend: string; served?: string; error?: string };
export type NewRequest = Extract<LoadEvent, { kind: 'new' }>;

export interface RequestLoad {
  /** filled as they happen, times in ms since the epoch */
  readonly events: LoadEvent[];
  newRequests(): NewRequest[];
  readonly stderr: string;
  /** ends the load and waits for its last requests; idempotent */
  stop(): Promise<void>;
}

/** Runs LOAD in VM `client` against `target` (`host:port`); `held: 0` opens new connections only. */
export function startLoad(scenario: OverlayScenario, client: string, target: string, opts: { rate: number; held: number; avoid?: string }): RequestLoad {
  const netns = scenario.state().vms[client]!.netns;
  const child = spawnTracked('ip', ['netns', 'exec', netns, 'python3', '-c', LOAD, target, String(opts.rate), String(opts.held), opts.avoid ?? ''], { stdio: ['pipe', 'pipe', 'pipe'] });
  const events: LoadEvent[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const e = JSON.parse(line) as LoadEvent;
    events.push(e.kind === 'ready' ? e : { ...e, at: e.at * 1000 });
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = once(child, 'exit');
  return {
    events,
    newRequests: () => events.filter((e): e is NewRequest => e.kind === 'new'),
    get stderr() {
      return stderr;
    },
    async stop(): Promise<void> {
      child.stdin!.end();
      await exited;
    },
  };
}
