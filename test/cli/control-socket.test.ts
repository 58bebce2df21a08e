import test, { type ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTROL_IDLE_TIMEOUT_MS, ControlServer, defaultControlDir } from '../../src/runtime';
import { silentLogger } from '../../src/controller';
import { until } from '../controller/util';
import { freePort } from '../helpers/run';
import { createThrowawayUser, type ThrowawayUser } from '../helpers/user';
import { runCliAsync, startRun } from './run-cli';

/** The control socket as another local user sees it (issue 9, items 10 and 11). Needs root. */

let other: ThrowawayUser;
let base: string;
test.before(async () => {
  other = await createThrowawayUser();
  base = mkdtempSync(join(tmpdir(), 'zm-control-'));
  chmodSync(base, 0o755); // the other user may look inside; what it may do there is up to each test
});
test.after.always(async () => {
  rmSync(base, { recursive: true, force: true });
  await other?.remove();
});

let dirs = 0;
/** a control socket path in a fresh directory that does not exist yet */
const freshControl = () => join(base, `ctl-${++dirs}`, 'control.sock');

/** `zonemesh run` with a control socket, up and 'running'; killed when the test ends. `umask` applies to it. */
async function startRunWithControl(t: ExecutionContext, control: string, umask = '022'): Promise<{ child: ChildProcess; log: () => string }> {
  return startRun(t, ['--apps', 'l2-learning', '--listen', `127.0.0.1:${await freePort()}`, '--control', `unix:${control}`], umask);
}

/** what `net.connect(path)` gives the other user: 'connected' or the error code */
const connectAsOther = (path: string) =>
  other.run(process.execPath, ['-e', `require('net').connect(process.argv[1]).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => console.log(e.code))`, path]).then((s) => s.trim());

const isSocket = (path: string) => statSync(path, { throwIfNoEntry: false })?.isSocket() === true;

/** `zonemesh run` failed at startup with one line on stderr and no stack */
function refusedWith(t: ExecutionContext, r: { status: number | null; stderr: string }, pattern: RegExp): void {
  t.is(r.status, 3, r.stderr);
  t.regex(r.stderr, pattern);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.notRegex(r.stderr, /\n\s+at /);
}

test('the default directory is /run/zonemesh for root, else the user runtime directory, else a private one under tmp', (t) => {
  t.is(defaultControlDir(0, { XDG_RUNTIME_DIR: '/run/user/0' }), '/run/zonemesh');
  t.is(defaultControlDir(1000, { XDG_RUNTIME_DIR: '/run/user/1000' }), '/run/user/1000/zonemesh');
  t.is(defaultControlDir(1000, {}), join(tmpdir(), 'zonemesh-1000'));
});

test('the socket is 0600 in a 0700 directory whatever the umask; another user cannot connect to it', async (t) => {
  const control = freshControl();
  await startRunWithControl(t, control, '000');
  t.is(statSync(join(control, '..')).mode & 0o777, 0o700);
  t.is(statSync(control).mode & 0o777, 0o600);
  t.is(await connectAsOther(control), 'EACCES', 'the directory keeps the other user out');
  chmodSync(join(control, '..'), 0o755);
  t.is(await connectAsOther(control), 'EACCES', 'and so does the socket itself');
  const flows = await runCliAsync('flows', '--control', control);
  t.is(flows.status, 0, 'its owner asks as before');
});

test('a directory another user created makes run refuse, and flows refuse to trust what answers there', async (t) => {
  const dir = join(tmpdir(), `zm-control-${other.name}`);
  rmSync(dir, { recursive: true, force: true });
  await other.run('mkdir', ['-m', '0700', dir]);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const control = join(dir, 'control.sock');
  refusedWith(t, await runCliAsync('run', '--apps', 'l2-learning', '--listen', '127.0.0.1:0', '--control', `unix:${control}`), new RegExp(`^zonemesh run: refusing the control socket ${control}: its directory ${dir} is owned by uid ${other.uid}, not by this user \\(uid 0\\) or root\\n$`));
  // the other user answers "in sync" there, as the forged listener of the issue did
  const forger = other.run(process.execPath, ['-e', `require('net').createServer((s) => s.end('{"ok":true,"switches":[]}\\n')).listen(process.argv[1]); setTimeout(() => process.exit(0), 4000)`, control], 15_000);
  t.teardown(() => forger.catch(() => undefined));
  await until(() => isSocket(control), 5_000);
  const flows = await runCliAsync('flows', '--control', control);
  t.is(flows.status, 3);
  t.regex(flows.stderr, new RegExp(`^zonemesh flows: refusing the control socket ${control}: its directory ${dir} is owned by uid ${other.uid}`));
  t.is(flows.stdout, '', 'nothing it said was printed');
});

test('a directory others can write to is refused', async (t) => {
  const control = freshControl();
  mkdirSync(join(control, '..'), { mode: 0o700 });
  chmodSync(join(control, '..'), 0o777);
  refusedWith(t, await runCliAsync('run', '--apps', 'l2-learning', '--listen', '127.0.0.1:0', '--control', `unix:${control}`), /is writable by other users \(mode 777\)\n$/);
});

test('a regular file at the control path is a clear error', async (t) => {
  const control = freshControl();
  mkdirSync(join(control, '..'), { mode: 0o700 });
  writeFileSync(control, 'not a socket');
  refusedWith(t, await runCliAsync('run', '--apps', 'l2-learning', '--listen', '127.0.0.1:0', '--control', `unix:${control}`), new RegExp(`^zonemesh run: ${control} exists and is not a socket; remove it or choose another path`));
});

test('a second run given the same --control refuses, and the first keeps answering', async (t) => {
  const control = freshControl();
  await startRunWithControl(t, control);
  refusedWith(t, await runCliAsync('run', '--apps', 'l2-learning', '--listen', '127.0.0.1:0', '--control', `unix:${control}`), new RegExp(`^zonemesh run: the control socket ${control} is in use by another 'zonemesh run'; stop that one or choose another --control\\n$`));
  t.is((await runCliAsync('flows', '--control', control)).status, 0);
});

test('an idle control client does not delay SIGTERM', async (t) => {
  const control = freshControl();
  const { child, log } = await startRunWithControl(t, control);
  const idle = connect(control);
  await once(idle, 'connect');
  const cutOff = once(idle, 'close');
  const start = Date.now();
  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number | null];
  const ms = Date.now() - start;
  t.is(code, 0, log());
  t.true(ms < 2_000, `stopped after ${ms} ms`);
  await cutOff;
});

test('a client that sends no request is cut off after the idle timeout', async (t) => {
  const control = freshControl();
  mkdirSync(join(control, '..'), { mode: 0o700 });
  const server = await ControlServer.serve(control, () => Promise.resolve({ ok: true, switches: [] }), silentLogger());
  t.teardown(() => server.close());
  const idle = connect(control);
  await once(idle, 'connect');
  const start = Date.now();
  await once(idle, 'close');
  const ms = Date.now() - start;
  t.true(ms >= CONTROL_IDLE_TIMEOUT_MS - 100 && ms < CONTROL_IDLE_TIMEOUT_MS + 2_000, `cut off after ${ms} ms`);
});
