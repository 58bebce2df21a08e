/**
 * Long-lived TCP sessions that keep exchanging data, for failover tests: an echo server in one
 * namespace, and clients in others that hold several connections to it, each sending a short line
 * every 100 ms and timing the echoes. The server names every session's peer address and port as
 * it saw them (after any NAT), so a session can be found in captures on the far side of a NAT.
 */
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { spawnTracked } from './run';

/** One thread per connection; prints `listening`, then per connection its peer and the session id from its first line. */
const ECHO_SERVER = `
import json, socket, sys, threading
ip, port = sys.argv[1], int(sys.argv[2])
srv = socket.create_server((ip, port), backlog=128)
lock = threading.Lock()
def say(obj):
    with lock:
        print(json.dumps(obj), flush=True)
def serve(conn, peer):
    with conn:
        first = True
        for line in conn.makefile('rb'):
            if first:
                say({'session': line.decode().split()[-1], 'ip': peer[0], 'port': peer[1]})
                first = False
            conn.sendall(line)
say('listening')
while True:
    conn, peer = srv.accept()
    threading.Thread(target=serve, args=(conn, peer), daemon=True).start()
`;

/**
 * Opens COUNT connections, says hello on each (its session id), prints \`ready\` once every hello
 * came back; then sends a line on every connection each INTERVAL seconds and records when each
 * echo arrives, until SIGTERM: then prints one JSON report per session.
 */
const SESSION_CLIENT = `
import json, selectors, signal, socket, sys, time
ip, port, count, name, interval = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
sessions = []
sel = selectors.DefaultSelector()
for i in range(count):
    s = socket.create_connection((ip, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sid = f'{name}-{i}'
    s.sendall(f'hello {sid}\\n'.encode())
    sessions.append({'sock': s, 'id': sid, 'localPort': s.getsockname()[1], 'sent': 0, 'echoes': [], 'buf': b'', 'error': None})
for x in sessions:
    x['sock'].recv(4096)  # the hello's echo
    x['sock'].setblocking(False)
    sel.register(x['sock'], selectors.EVENT_READ, x)
print('ready', flush=True)
next_send = time.monotonic()
while not stop:
    now = time.monotonic()
    if now >= next_send:
        for x in sessions:
            if x['error'] is None:
                try:
                    x['sock'].send(f'{x["sent"]}\\n'.encode())
                    x['sent'] += 1
                except OSError as e:
                    x['error'] = repr(e)
        next_send += interval
    for key, _ in sel.select(timeout=max(0.0, next_send - time.monotonic())):
        x = key.data
        try:
            data = x['sock'].recv(4096)
        except BlockingIOError:
            continue
        except OSError as e:
            x['error'] = repr(e)
            sel.unregister(x['sock'])
            continue
        if not data:
            x['error'] = 'closed by the peer'
            sel.unregister(x['sock'])
            continue
        x['buf'] += data
        at = time.time()
        while b'\\n' in x['buf']:
            _, x['buf'] = x['buf'].split(b'\\n', 1)
            x['echoes'].append(round(at, 4))
print(json.dumps([{k: x[k] for k in ('id', 'localPort', 'sent', 'echoes', 'error')} for x in sessions]), flush=True)
`;

/** One client session's record: lines sent, when each echo arrived (seconds since the epoch), what broke it. */
export interface SessionReport {
  id: string;
  localPort: number;
  sent: number;
  echoes: number[];
  error: string | null;
}

export interface EchoServer {
  readonly process: ChildProcess;
  /** session id → the peer address and port the server saw */
  readonly peers: Map<string, { ip: string; port: number }>;
}

/** Starts the echo server on ip:port in a namespace; resolves once it listens. */
export async function startEchoServer(netns: string, ip: string, port: number): Promise<EchoServer> {
  const child = spawnTracked('ip', ['netns', 'exec', netns, 'python3', '-u', '-c', ECHO_SERVER, ip, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const peers = new Map<string, { ip: string; port: number }>();
  const listening = untilLine(child, `the echo server in ${netns}`, (line) => {
    const said = JSON.parse(line) as 'listening' | { session: string; ip: string; port: number };
    if (said === 'listening') return true;
    peers.set(said.session, { ip: said.ip, port: said.port });
    return false;
  });
  await listening;
  return { process: child, peers };
}

/**
 * Feeds every line of a child's stdout to `onLine`; resolves the first time it returns true,
 * rejects (and kills the child) when the child exits first or after `timeoutMs`.
 */
function untilLine(child: ChildProcess, what: string, onLine: (line: string) => boolean, timeoutMs = 15_000): Promise<void> {
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${what}: ${why}; stderr: ${stderr}`));
    };
    const timer = setTimeout(() => fail(`not ready within ${timeoutMs} ms`), timeoutMs);
    const early = (code: number | null) => fail(`exited (${code}) before it was ready`);
    child.once('exit', early);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!onLine(line)) return;
      clearTimeout(timer);
      child.removeListener('exit', early);
      resolve();
    });
  });
}

/** Sessions held by one client process; stop() ends them and returns their reports. */
export class HeldSessions {
  private report: string | undefined;
  private readonly exited: Promise<unknown>;
  private stopped: Promise<SessionReport[]> | undefined;

  private constructor(private readonly child: ChildProcess) {
    this.exited = once(child, 'close'); // after stdout's last line
  }

  /** `count` sessions from a namespace to ip:port, one line each every `intervalMs`; resolves once every session's hello came back. */
  static async start(netns: string, ip: string, port: number, count: number, name: string, intervalMs = 100): Promise<HeldSessions> {
    const child = spawnTracked('ip', ['netns', 'exec', netns, 'python3', '-u', '-c', SESSION_CLIENT, ip, String(port), String(count), name, String(intervalMs / 1000)]);
    const held = new HeldSessions(child);
    await untilLine(child, `${count} sessions from ${name}`, (line) => {
      if (line.startsWith('[')) held.report = line;
      return line === 'ready';
    });
    return held;
  }

  /** idempotent */
  stop(): Promise<SessionReport[]> {
    this.stopped ??= this.end();
    return this.stopped;
  }

  private async end(): Promise<SessionReport[]> {
    this.child.kill('SIGTERM');
    await this.exited;
    if (this.report === undefined) throw new Error(`the session client exited (${this.child.exitCode}) without its report`);
    return JSON.parse(this.report) as SessionReport[];
  }
}

/** The longest time without an echo in a session between `from` and `to` (seconds since the epoch), in ms. */
export function longestSilenceMs(echoes: readonly number[], from: number, to: number): number {
  const times = [from, ...echoes.filter((t) => t > from && t < to), to];
  let longest = 0;
  for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i]! - times[i - 1]!);
  return Math.round(longest * 1000);
}
