/**
 * The runtime's ovs-vsctl runner (ExecVsctl) against a private ovsdb-server of its own: no
 * ovs-vswitchd, so writes use --no-wait; the system OVS is not touched.
 */
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { VsctlError } from '../../src/sdk';
import { ExecVsctl } from '../../src/runtime/vsctl';
import { TEST_STATE_DIR, run, spawnTracked } from '../helpers/run';

const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

mkdirSync(TEST_STATE_DIR, { recursive: true });
const dir = mkdtempSync(join(TEST_STATE_DIR, 'ovs-vsctl-'));
const hv = { name: 'hv1', ovsdb: `unix:${join(dir, 'db.sock')}` };
const vsctl = new ExecVsctl();
let server: ChildProcess | undefined;

test.before(async () => {
  await run('ovsdb-tool', ['create', join(dir, 'conf.db'), SCHEMA]);
  server = spawnTracked('ovsdb-server', [join(dir, 'conf.db'), `--remote=punix:${join(dir, 'db.sock')}`, `--unixctl=${join(dir, 'ovsdb-server.ctl')}`, '--no-chdir', '-vconsole:off']);
  for (let waited = 0; !existsSync(join(dir, 'db.sock')); waited += 20) {
    if (waited > 10_000 || server.exitCode !== null) throw new Error(`ovsdb-server did not open ${hv.ovsdb}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await vsctl.run(hv, ['--no-wait', 'init']);
});

test.after.always(() => {
  server?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

test.serial('a transaction goes to the hypervisor\'s OVSDB and a read answers with ovs-vsctl\'s output', async (t) => {
  t.is(await vsctl.run(hv, ['--no-wait', '--', 'add-br', 'br-int', '--', 'add-br', 'br-phy']), '');
  t.is(await vsctl.run(hv, ['list-br']), 'br-int\nbr-phy\n');
});

test.serial('a refused transaction is a VsctlError with the hypervisor, the whole command and ovs-vsctl\'s stderr', async (t) => {
  const e = await t.throwsAsync(vsctl.run(hv, ['--no-wait', 'add-br', 'br-int']), { instanceOf: VsctlError });
  t.is(e!.hypervisor, 'hv1');
  t.deepEqual(e!.command, ['ovs-vsctl', `--db=${hv.ovsdb}`, '--timeout=10', '--no-wait', 'add-br', 'br-int']);
  t.regex(e!.reason, /a bridge named br-int already exists/);
  t.regex(e!.message, /^hypervisor hv1: ovs-vsctl --db=unix:\S+ --timeout=10 --no-wait add-br br-int failed: ovs-vsctl: .*already exists$/);
});

test.serial('an OVSDB that is not there is a VsctlError naming it, not a hang', async (t) => {
  const gone = { name: 'hv9', ovsdb: `unix:${join(dir, 'missing.sock')}` };
  const e = await t.throwsAsync(vsctl.run(gone, ['list-br']), { instanceOf: VsctlError });
  t.is(e!.hypervisor, 'hv9');
  t.true(e!.command.includes(`--db=${gone.ovsdb}`));
  t.regex(e!.reason, /missing\.sock/);
});
