import test, { type ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { mergeFlows, mergeInstalled, type WorkerReply } from '../../src/cli/workers';
import { OFPP } from '../../src/openflow';
import { queryControl, type SwitchFlows } from '../../src/runtime';
import { until } from '../controller/util';
import { FakeSwitch, type FakeConnectTarget } from '../../src/testing';
import { writeAtomically } from '../helpers/restart';
import { freePort, spawnTracked, tempDir } from '../helpers/run';
import { CLI, runCliAsync } from './run-cli';

/** `zonemesh run --workers N` as a user runs it: a primary, N worker processes, fake switches. */

interface LogLine {
  msg: string;
  pid: number;
  role?: string;
  worker?: number;
  workerPid?: number;
  dpid?: string;
  code?: number | null;
  signal?: string | null;
  dial?: string[];
}

/** alive and not a zombie */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}



class Cluster {
  readonly lines: LogLine[] = [];
  stderr = '';
  private partial = '';

  constructor(
    readonly child: ChildProcess,
    readonly control: string,
    readonly dir: string,
  ) {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop()!;
      for (const line of parts) if (line.trim()) this.lines.push(JSON.parse(line) as LogLine);
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** the pids of every worker this primary started */
  get workerPids(): number[] {
    return this.primary('worker started').map((l) => l.workerPid!);
  }

  /** the current pid of worker `index` */
  workerPid(index: number): number {
    return this.primary('worker started').filter((l) => l.worker === index).at(-1)!.workerPid!;
  }

  primary(msg: string): LogLine[] {
    return this.lines.filter((l) => l.role === 'primary' && l.msg === msg);
  }

  /** dpid → index of the worker that reconciled it */
  owners(): Map<string, number> {
    return new Map(this.lines.filter((l) => l.msg === 'sent the difference' && l.worker !== undefined).map((l) => [l.dpid!, l.worker!]));
  }

  // generous: seven clusters of three processes start at once beside the rest of the unit suite on 2 cores
  async waitFor(what: string, predicate: (l: LogLine) => boolean, ms = 60_000): Promise<LogLine> {
    try {
      await until(() => this.lines.some(predicate) || this.exited, ms);
    } catch {
      throw new Error(`no log line '${what}' within ${ms} ms:\n${this.log()}`);
    }
    const line = this.lines.find(predicate);
    if (!line) throw new Error(`zonemesh run exited before '${what}':\n${this.log()}`);
    return line;
  }

  log(): string {
    return [...this.lines.map((l) => JSON.stringify(l)), this.stderr].join('\n');
  }

  async flows(...args: string[]): Promise<Awaited<ReturnType<typeof runCliAsync>> & { dpids?: string[] }> {
    const r = await runCliAsync('flows', '--control', this.control, ...args);
    if (r.status !== 0 || !args.includes('--json')) return r;
    return { ...r, dpids: (JSON.parse(r.stdout) as SwitchFlows[]).map((s) => s.dpid) };
  }
}

/** Starts `zonemesh run --workers 2 ARGS`; the primary and every worker it forked are killed when the test ends. */
async function startCluster(t: ExecutionContext, args: string[], { waitRunning = true } = {}): Promise<Cluster> {
  const dir = tempDir(t, 'zm-workers-');
  const control = join(dir, 'control.sock');
  const child = spawnTracked(process.execPath, [CLI, 'run', '--workers', '2', '--control', `unix:${control}`, ...args]);
  const cluster = new Cluster(child, control, dir);
  t.teardown(() => {
    if (!cluster.exited) child.kill('SIGKILL');
    for (const pid of cluster.workerPids) {
      // a pid is only killed while it still runs our CLI: never a stranger that reused it
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (cmdline.includes(CLI)) process.kill(pid, 'SIGKILL');
    }
  });
  if (waitRunning) await cluster.waitFor('running', (l) => l.role === 'primary' && l.msg === 'running');
  return cluster;
}

/** The one flow l2-learning's pipeline wants on every switch: table 0's miss to the controller. */
function hasTableMiss(sw: FakeSwitch): boolean {
  const flows = sw.flowTable.flows();
  if (flows.length !== 1) return false;
  const [f] = flows;
  const actions = f!.instructions.flatMap((i) => (i.type === 'apply_actions' ? i.actions : []));
  return f!.tableId === 0 && f!.priority === 0 && f!.match.length === 0 && actions.some((a) => a.type === 'output' && a.port === OFPP.CONTROLLER);
}

async function connectSwitches(t: ExecutionContext, target: FakeConnectTarget, dpids: bigint[]): Promise<FakeSwitch[]> {
  const switches = dpids.map((dpid) => new FakeSwitch({ dpid }));
  t.teardown(() => Promise.all(switches.map((sw) => sw.close())));
  // one at a time: round-robin then gives each worker its share
  for (const sw of switches) await sw.connect(target);
  await until(() => switches.every(hasTableMiss), 60_000);
  return switches;
}

const hex = (dpid: bigint): string => dpid.toString(16).padStart(16, '0');

test('six switches over two workers: all get their flows; the control endpoint sees every one', async (t) => {
  const port = await freePort();
  const cluster = await startCluster(t, ['--apps', 'l2-learning', '--listen', `127.0.0.1:${port}`]);
  t.is(new Set(cluster.workerPids).size, 2);
  const dpids = [1n, 2n, 3n, 4n, 5n, 6n];
  const switches = await connectSwitches(t, { transport: 'tcp', port }, dpids);
  t.true(switches.every(hasTableMiss));

  await until(() => cluster.owners().size === 6, 5_000);
  const owners = cluster.owners();
  t.deepEqual([...new Set(owners.values())].sort(), [0, 1], 'both workers own switches');
  const workerLines = cluster.lines.filter((l) => l.msg === 'sent the difference');
  t.true(workerLines.every((l) => l.pid === cluster.workerPid(l.worker!)), 'each line comes from the process of the worker it names');

  const all = await cluster.flows('--json');
  t.is(all.status, 0, all.stderr);
  t.deepEqual(all.dpids, dpids.map(hex), 'every switch, in dpid order');
  // what `zonemesh trace` reads: every worker's switches with their flows as OpenFlow messages
  const installed = await queryControl(cluster.control, { op: 'installed' });
  t.true(installed.ok && installed.switches.map((s) => s.dpid).join() === dpids.map(hex).join() && installed.switches.every((s) => s.flowStats.length === 1), JSON.stringify(installed).slice(0, 300));

  for (const worker of [0, 1]) {
    const dpid = [...owners].find(([, w]) => w === worker)![0];
    const one = await cluster.flows('--dpid', dpid);
    t.is(one.status, 0, one.stderr);
    t.is(one.stdout.split('\n')[0], `switch ${dpid} (role EQUAL): in sync`, `a switch of worker ${worker}`);
  }
  const unknown = await cluster.flows('--dpid', '0x99');
  t.is(unknown.status, 3);
  t.regex(unknown.stderr, new RegExp(`switch 0000000000000099 is not connected \\(connected: ${dpids.map(hex).join(', ')}\\)`));
  const bad = await cluster.flows('--dpid', 'zz');
  t.regex(bad.stderr, /'zz' is not a datapath id/);
});

test('a worker killed is started again; the control endpoint lists the switches still connected', async (t) => {
  const port = await freePort();
  const cluster = await startCluster(t, ['--apps', 'l2-learning', '--listen', `127.0.0.1:${port}`]);
  const switches = await connectSwitches(t, { transport: 'tcp', port }, [1n, 2n, 3n, 4n]);
  await until(() => cluster.owners().size === 4, 5_000);
  const victim = cluster.workerPid(0);
  process.kill(victim, 'SIGKILL');

  const died = await cluster.waitFor('worker 0 exited', (l) => l.role === 'primary' && l.msg === 'worker exited unexpectedly; starting it again');
  t.like(died, { worker: 0, workerPid: victim, signal: 'SIGKILL' });
  await cluster.waitFor('worker 0 back', (l) => l.role === 'primary' && l.msg === 'worker running again' && l.worker === 0);
  const fresh = cluster.workerPid(0);
  t.not(fresh, victim);
  t.true(alive(fresh));
  t.false(alive(victim));

  // The fake switches do not reconnect: worker 0's are gone, worker 1's stay.
  const owners = cluster.owners();
  const survivors = switches.filter((sw) => owners.get(hex(sw.dpid)) === 1);
  t.true(survivors.length > 0 && survivors.length < switches.length, `owners: ${JSON.stringify([...owners])}`);
  await until(() => switches.every((sw) => sw.connected === survivors.includes(sw)), 5_000);
  const listed = await cluster.flows('--json');
  t.is(listed.status, 0, listed.stderr);
  t.deepEqual(listed.dpids, survivors.map((sw) => hex(sw.dpid)));

  // New switches are served, the restarted worker included.
  await connectSwitches(t, { transport: 'tcp', port }, [7n, 8n]);
  const again = await cluster.flows('--json');
  t.deepEqual(again.dpids, [...survivors.map((sw) => hex(sw.dpid)), hex(7n), hex(8n)]);
  await until(() => cluster.lines.some((l) => l.msg === 'sent the difference' && l.pid === fresh), 5_000);
});

test('SIGTERM to the primary stops every worker and exits 0; switches keep their flows', async (t) => {
  const port = await freePort();
  const cluster = await startCluster(t, ['--apps', 'l2-learning', '--listen', `127.0.0.1:${port}`]);
  const switches = await connectSwitches(t, { transport: 'tcp', port }, [1n, 2n]);
  const pids = cluster.workerPids;
  t.true(existsSync(cluster.control));
  const started = Date.now();
  cluster.child.kill('SIGTERM');
  const [code] = (await once(cluster.child, 'exit')) as [number | null];
  t.is(code, 0, cluster.log());
  t.true(Date.now() - started < 12_000);
  t.deepEqual(pids.filter(alive), [], 'no worker is left');
  t.deepEqual(cluster.primary('worker stopped').map((l) => [l.worker, l.code]).sort(), [[0, 0], [1, 0]], 'each worker stopped by itself');
  t.false(existsSync(cluster.control), 'the control socket is gone');
  await Promise.all(switches.map((sw) => sw.waitClosed()));
  t.true(switches.every(hasTableMiss));
});

test('a silent worker: a list says which worker did not answer; a switch of another worker is still answered', async (t) => {
  const port = await freePort();
  const cluster = await startCluster(t, ['--apps', 'l2-learning', '--listen', `127.0.0.1:${port}`]);
  await connectSwitches(t, { transport: 'tcp', port }, [1n, 2n]);
  await until(() => cluster.owners().size === 2, 5_000);
  const ofWorker0 = [...cluster.owners()].find(([, w]) => w === 0)![0];
  const stopped = cluster.workerPid(1);
  process.kill(stopped, 'SIGSTOP');
  t.teardown(() => alive(stopped) && process.kill(stopped, 'SIGCONT'));

  const started = Date.now();
  const one = await cluster.flows('--dpid', ofWorker0);
  t.is(one.status, 0, one.stderr);
  // the silent worker would cost its whole 10 s reply timeout; a CLI start on a loaded machine takes a few seconds
  t.true(Date.now() - started < 9_000, `no wait for the silent worker (${Date.now() - started} ms)`);
  const all = await cluster.flows('--json');
  t.is(all.status, 3);
  t.regex(all.stderr, /not every worker answered \(worker 1: no answer within 10000 ms\)/);

  process.kill(stopped, 'SIGCONT');
  const later = await cluster.flows('--json');
  t.is(later.status, 0, later.stderr);
  t.is(later.dpids?.length, 2);
});

test("edits of the config file's settings reach every worker", async (t) => {
  const port = await freePort();
  const dir = tempDir(t, 'zm-workers-');
  const config = join(dir, 'run.yaml');
  const flow = (name: string, inPort: number) => `{ name: ${name}, priority: 100, match: { in_port: ${inPort} }, actions: [{ output: ${3 - inPort} }] }`;
  const yaml = (...flows: string[]) => `apps: [static-flows]\nsettings:\n  static-flows:\n    flows: [${flows.join(', ')}]\n`;
  writeFileSync(config, yaml(flow('a-to-b', 1)));
  const cluster = await startCluster(t, ['--config', config, '--listen', `127.0.0.1:${port}`]);
  const switches = [1n, 2n].map((dpid) => new FakeSwitch({ dpid }));
  t.teardown(() => Promise.all(switches.map((sw) => sw.close())));
  for (const sw of switches) await sw.connect({ transport: 'tcp', port });
  await until(() => switches.every((sw) => sw.flowTable.size === 2), 60_000); // the flow and table 0's miss
  await until(() => cluster.owners().size === 2, 5_000);
  t.deepEqual([...new Set(cluster.owners().values())].sort(), [0, 1]);

  writeAtomically(config, yaml(flow('a-to-b', 1), flow('b-to-a', 2)));
  await until(() => switches.every((sw) => sw.flowTable.size === 3), 60_000);
  const r = await cluster.flows('--json');
  t.is(r.status, 0, 'both in sync');
  const listed = JSON.parse(r.stdout) as SwitchFlows[];
  t.deepEqual(listed.map((s) => s.desired.some((l) => l.endsWith('priority=100,in_port=2 actions=output:1'))), [true, true], r.stdout);
  t.is(cluster.primary('settings changed; handing them to the apps').length, 1, 'the primary watches the file, once');
});

test('dial targets are shared out: target i is dialed by worker i % N only', async (t) => {
  const switches = [1n, 2n, 3n, 4n].map((dpid) => new FakeSwitch({ dpid }));
  t.teardown(() => Promise.all(switches.map((sw) => sw.close())));
  const ports = await Promise.all(switches.map((sw) => sw.listen({ transport: 'tcp' })));
  const cluster = await startCluster(t, ['--apps', 'l2-learning', ...ports.flatMap((p) => ['--dial', `tcp:127.0.0.1:${p}`])]);
  await until(() => switches.every(hasTableMiss), 60_000);
  const running = cluster.lines.filter((l) => l.msg === 'worker running');
  t.deepEqual(running.map((l) => [l.worker, l.dial]).sort(), [
    [0, [`tcp:127.0.0.1:${ports[0]}`, `tcp:127.0.0.1:${ports[2]}`]],
    [1, [`tcp:127.0.0.1:${ports[1]}`, `tcp:127.0.0.1:${ports[3]}`]],
  ]);
  await until(() => cluster.owners().size === 4, 5_000);
  t.deepEqual([...cluster.owners()].sort(), [[hex(1n), 0], [hex(2n), 1], [hex(3n), 0], [hex(4n), 1]]);
  await new Promise((r) => setTimeout(r, 300));
  t.deepEqual(switches.map((sw) => sw.connections), [1, 1, 1, 1], 'no switch was dialed twice');
});

test('a unix listen socket is shared by the workers too (a stale one replaced first)', async (t) => {
  const dir = tempDir(t, 'zm-workers-unix-');
  const path = join(dir, 'of.sock');
  // a socket file left by a controller that died: the primary replaces it
  const stale = spawnTracked(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  await once(stale, 'exit');
  t.true(existsSync(path));
  const cluster = await startCluster(t, ['--apps', 'l2-learning', '--listen', `unix:${path}`]);
  await connectSwitches(t, { transport: 'unix', path }, [1n, 2n, 3n, 4n]);
  await until(() => cluster.owners().size === 4, 5_000);
  t.deepEqual([...new Set(cluster.owners().values())].sort(), [0, 1]);
  cluster.child.kill('SIGTERM');
  const [code] = (await once(cluster.child, 'exit')) as [number | null];
  t.is(code, 0, cluster.log());
  t.false(existsSync(path), 'the listen socket is removed with the last worker');
});

test('a worker that cannot start stops the cluster: exit 3 with its error, no worker left', async (t) => {
  const port = await freePort();
  const blocker: Server = createServer().listen(port, '127.0.0.1');
  await once(blocker, 'listening');
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const cluster = await startCluster(t, ['--apps', 'l2-learning', '--listen', `127.0.0.1:${port}`], { waitRunning: false });
  const [code] = (await Promise.race([once(cluster.child, 'exit'), new Promise((r) => setTimeout(() => r([undefined]), 20_000))])) as [number | undefined];
  t.is(code, 3, cluster.log());
  t.regex(cluster.stderr, /^zonemesh run: worker [01]: .*EADDRINUSE/);
  t.true(cluster.workerPids.length >= 1 && cluster.workerPids.length <= 2, 'no worker was started again');
  t.deepEqual(cluster.workerPids.filter(alive), []);
  t.false(existsSync(cluster.control));
});

test('--workers 1 is the one process of old: no primary, no worker', async (t) => {
  const dir = tempDir(t, 'zm-workers-');
  const child = spawnTracked(process.execPath, [CLI, 'run', '--workers', '1', '--listen', '127.0.0.1:0', '--control', `unix:${join(dir, 'control.sock')}`]);
  const cluster = new Cluster(child, join(dir, 'control.sock'), dir);
  t.teardown(() => void (cluster.exited || child.kill('SIGKILL')));
  const running = await cluster.waitFor('running', (l) => l.msg === 'running');
  t.is(running.pid, child.pid!);
  t.true(cluster.lines.every((l) => l.pid === child.pid && l.role === undefined && l.worker === undefined));
  child.kill('SIGTERM');
  t.deepEqual(await once(child, 'exit'), [0, null]);
});

test('bad --workers values are refused with the reason', async (t) => {
  for (const [value, problem] of [
    ['0', 'workers: 0 is not a whole number from 1 to 64'],
    ['65', 'workers: 65 is not a whole number from 1 to 64'],
    ['x', 'workers: "x" is not a whole number from 1 to 64'],
  ] as const) {
    const r = await runCliAsync('run', '--workers', value, '--listen', '127.0.0.1:0');
    t.is(r.status, 2, `${value}: a malformed flag is bad usage`);
    t.is(r.stderr.trim(), `zonemesh run: command line: ${problem}; try 'zonemesh run --help'`);
  }
  const dir = tempDir(t, 'zm-workers-');
  writeFileSync(join(dir, 'run.yaml'), 'workers: 1.5\n');
  const file = await runCliAsync('run', '--config', join(dir, 'run.yaml'));
  t.is(file.status, 3, 'a bad config file: the command failed');
  t.is(file.stderr.trim(), `zonemesh run: ${join(dir, 'run.yaml')}: workers: 1.5 is not a whole number from 1 to 64`);
  const missing = await runCliAsync('run', '--workers');
  t.is(missing.status, 2);
  t.regex(missing.stderr, /--workers/);
});

test('merging worker replies: lists concatenate, one dpid comes from whoever has it, silence is named', (t) => {
  const sw = (dpid: string): SwitchFlows => ({ dpid, tables: [], desired: [], installed: [], diff: { deletes: 0, modifies: 0, adds: 0 }, role: 'EQUAL' });
  const ok = (...dpids: string[]): WorkerReply => ({ ok: true, switches: dpids.map(sw), connected: dpids });
  const silent: WorkerReply = { ok: false, error: 'no answer within 10000 ms' };
  t.deepEqual(mergeFlows(undefined, [{ worker: 0, reply: ok('02', '03') }, { worker: 1, reply: ok('01') }]), { ok: true, switches: [sw('01'), sw('02'), sw('03')] });
  t.deepEqual(mergeFlows(undefined, []), { ok: true, switches: [] });
  t.deepEqual(mergeFlows(undefined, [{ worker: 0, reply: ok('02') }, { worker: 1, reply: silent }]), { ok: false, error: 'not every worker answered (worker 1: no answer within 10000 ms)' });
  // one dpid: the reply with the switch wins, even next to a silent worker
  t.deepEqual(mergeFlows(2n, [{ worker: 0, reply: ok() }, { worker: 1, reply: silent }, { worker: 2, reply: { ok: true, switches: [sw(hex(2n))], connected: [hex(2n), hex(5n)] } }]), {
    ok: true,
    switches: [sw(hex(2n))],
  });
  t.deepEqual(mergeFlows(9n, [{ worker: 0, reply: ok(hex(3n)) }, { worker: 1, reply: ok(hex(1n)) }]), {
    ok: false,
    error: `switch ${hex(9n)} is not connected (connected: ${hex(1n)}, ${hex(3n)})`,
  });
  t.deepEqual(mergeFlows(9n, [{ worker: 0, reply: ok(hex(3n)) }, { worker: 1, reply: silent }]), { ok: false, error: 'not every worker answered (worker 1: no answer within 10000 ms)' });
  // installed flows for trace: every worker's switches in dpid order, the model from any; silence fails it
  const inst = (...dpids: string[]): WorkerReply => ({ ok: true, installed: { ok: true, model: null, switches: dpids.map((dpid) => ({ dpid, tables: [], ports: [], flowStats: [] })) } });
  const merged = mergeInstalled([{ worker: 0, reply: inst('02') }, { worker: 1, reply: inst('01', '03') }]);
  t.deepEqual(merged.ok && merged.switches.map((s) => s.dpid), ['01', '02', '03']);
  t.deepEqual(mergeInstalled([{ worker: 0, reply: inst('02') }, { worker: 1, reply: silent }]), { ok: false, error: 'not every worker answered (worker 1: no answer within 10000 ms)' });
});
