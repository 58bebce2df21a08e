import test, { type ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { flowMod, makeCookie } from '../../src/sdk';
import { runCliAsync, startRun } from '../cli/run-cli';
import { FakeSwitch } from '../../src/testing';
import { freePort, tempDir } from '../helpers/run';
import { until } from '../controller/util';

/** `zonemesh run` and `zonemesh flows` as a user runs them, against a fake switch. */


const CONFIG = `
apps: [static-flows]
settings:
  static-flows:
    flows:
      - { name: a-to-b, priority: 100, match: { in_port: 1 }, actions: [{ output: 2 }] }
      - { name: b-to-a, priority: 100, match: { in_port: 2 }, actions: [{ output: 1 }] }
      - { name: only-on-7, dpid: 7, priority: 10, match: { eth_type: 0x0806 }, actions: [{ output: flood }] }
`;




async function runController(t: ExecutionContext): Promise<{ child: ChildProcess; port: number; control: string; log: () => string }> {
  const dir = tempDir(t, 'zm-cli-');
  writeFileSync(join(dir, 'run.yaml'), CONFIG);
  const port = await freePort();
  const control = join(dir, 'control.sock');
  const { child, log } = await startRun(t, ['--config', join(dir, 'run.yaml'), '--listen', `127.0.0.1:${port}`, '--control', `unix:${control}`]);
  return { child, port, control, log };
}

async function connectSwitch(t: ExecutionContext, port: number, dpid: bigint, flows: number): Promise<FakeSwitch> {
  const sw = new FakeSwitch({ dpid });
  t.teardown(() => sw.close());
  await sw.connect({ transport: 'tcp', port });
  await until(() => sw.flowTable.size === flows, 10_000);
  return sw;
}

test('zonemesh flows prints desired and installed flows of each switch, ovs-ofctl style', async (t) => {
  const { port, control } = await runController(t);
  await connectSwitch(t, port, 7n, 4);
  await connectSwitch(t, port, 8n, 3);
  const r = await runCliAsync('flows', '--control', `unix:${control}`, '--dpid', '0000000000000007');
  t.is(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  t.is(lines[0], 'switch 0000000000000007 (role EQUAL): in sync');
  t.deepEqual(lines.slice(1, 4), ['pipeline:', '  table 0 static-flows.flows [classify] miss=drop', 'desired flows (4):']);
  const cookie = `0x${makeCookie(3, 'a-to-b').toString(16)}`;
  t.true(lines.includes(` cookie=${cookie}, table=0, priority=100,in_port=1 actions=output:2`), r.stdout);
  t.true(lines.includes('installed flows (4):'));
  t.true(lines.some((l) => new RegExp(`^ cookie=${cookie}, duration=\\d+\\.\\d{3}s, table=0, n_packets=0, n_bytes=0, priority=100,in_port=1 actions=output:2$`).test(l)), r.stdout);
  t.true(lines.some((l) => /priority=10,arp actions=FLOOD/.test(l)), 'the flow pinned to dpid 7 is there');

  const all = await runCliAsync('flows', '--control', control, '--json');
  t.is(all.status, 0);
  const switches = JSON.parse(all.stdout) as { dpid: string; desired: string[] }[];
  t.deepEqual(switches.map((s) => [s.dpid, s.desired.length]).sort(), [['0000000000000007', 4], ['0000000000000008', 3]]);
});

test('zonemesh flows shows the role at each switch and its generation id, as the switch last told them', async (t) => {
  const dir = tempDir(t, 'zm-cli-');
  writeFileSync(join(dir, 'run.yaml'), `${CONFIG}generationId: 7\n`);
  const port = await freePort();
  const control = join(dir, 'control.sock');
  await startRun(t, ['--config', join(dir, 'run.yaml'), '--listen', `127.0.0.1:${port}`, '--control', `unix:${control}`]);
  const sw = await connectSwitch(t, port, 8n, 3);
  const head = async () => (await runCliAsync('flows', '--control', control)).stdout.split('\n')[0];
  t.is(await head(), 'switch 0000000000000008 (role MASTER, generation 7): in sync');
  // another controller claims the switch with a newer generation: OVS demotes us with a role status
  sw.otherControllerBecomesMaster(9n);
  let shown = await head();
  for (const deadline = Date.now() + 5_000; shown.includes('MASTER') && Date.now() < deadline; ) shown = await head();
  t.is(shown, 'switch 0000000000000008 (role SLAVE, generation 9): in sync');
  const json = JSON.parse((await runCliAsync('flows', '--control', control, '--json')).stdout) as { role: string; generationId: string }[];
  t.like(json[0], { role: 'SLAVE', generationId: '9' });
});

test('zonemesh flows exits 1 and says what differs when a switch is out of sync', async (t) => {
  const { port, control } = await runController(t);
  const sw = await connectSwitch(t, port, 8n, 3);
  const stray = { tableId: 0, priority: 5, match: [], instructions: [], cookie: makeCookie(3, 'stray'), idleTimeout: 0, hardTimeout: 0, flags: 0 };
  sw.flowTable.apply(flowMod('add', stray));
  const r = await runCliAsync('flows', '--control', control);
  t.is(r.status, 1);
  t.regex(r.stdout, /^switch 0000000000000008 \(role EQUAL\): out of sync: 1 to delete, 0 to modify, 0 to add/);
});

test('zonemesh flows names what went wrong: unknown switch, no controller', async (t) => {
  const { control } = await runController(t);
  const unknown = await runCliAsync('flows', '--control', control, '--dpid', '0x99');
  t.is(unknown.status, 3);
  t.regex(unknown.stderr, /switch 0000000000000099 is not connected \(connected: none\)/);
  const none = await runCliAsync('flows', '--control', join(control, '..', 'no-such-zonemesh.sock'));
  t.is(none.status, 3);
  t.regex(none.stderr, /cannot ask the controller at .*no-such-zonemesh\.sock/);
});

test('zonemesh run logs JSON on stdout and stops cleanly on SIGTERM, leaving the flows', async (t) => {
  const { child, port, log } = await runController(t);
  const sw = await connectSwitch(t, port, 7n, 4);
  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number | null];
  t.is(code, 0);
  await sw.waitClosed();
  t.is(sw.flowTable.size, 4);
  const entries = log().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; level: number });
  t.true(entries.some((e) => e.msg === 'apps started'));
  t.true(entries.some((e) => e.msg === 'sent the difference'));
  t.is(entries.at(-1)!.msg, 'stopped');
});

test('zonemesh run refuses bad configs with one line saying why', async (t) => {
  const unknown = await runCliAsync('run', '--apps', 'nope', '--listen', '127.0.0.1:0');
  t.is(unknown.status, 3);
  t.regex(unknown.stderr, /^zonemesh run: no app named 'nope' \(known: .*l2-learning.*static-flows/);
  const listen = await runCliAsync('run', '--listen', 'bogus');
  t.is(listen.status, 2, 'a malformed flag value is bad usage');
  t.regex(listen.stderr, /command line: listen\[0\]: 'bogus' is not 'unix:PATH', '\[tcp:\]HOST:PORT' or 'tls:HOST:PORT'/);
  const flag = await runCliAsync('run', '--frobnicate');
  t.is(flag.status, 2);
  t.regex(flag.stderr, /Unknown option '--frobnicate'/);
});
