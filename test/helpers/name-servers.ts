/**
 * Backends that answer their own name, and clients that count who answered, in the VMs of an
 * overlay scenario: the load balancer's system test (test/integration/load-balancer.test.ts) and
 * its benchmark (bench/lb-requests.ts).
 */
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
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

/** Starts a name server in VM `name` on its address and `port`; resolves once it listens. */
export async function startNameServer(scenario: OverlayScenario, name: string, port: number): Promise<NameServer> {
  const vm = scenario.state().vms[name]!;
  const server = spawnTracked('ip', ['netns', 'exec', vm.netns, 'python3', '-c', NAME_SERVER, vm.ip, String(port), name], { stdio: ['ignore', 'pipe', 'ignore'] });
  const [line] = (await once(createInterface({ input: server.stdout! }), 'line', { signal: AbortSignal.timeout(10_000) })) as string[];
  if (line !== 'listening') throw new Error(`${name}'s server on ${port} said ${line}`);
  return { process: server, listeningAt: Date.now() };
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
