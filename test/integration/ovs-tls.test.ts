/**
 * `zonemesh run --listen tls:…` with a real Open vSwitch as the switch, as README's "TLS, with
 * `ovs-pki`" tells users to set it up: ovs-pki makes a controller CA and a switch CA, OVS gets the
 * switch's key and certificate and the controller CA (`ovs-vsctl set-ssl`), zonemesh gets its own
 * key and certificate and the switch CA (`--tls-ca`). A bridge with `ssl:` as controller connects
 * and gets l2-learning's table-miss flow; a bridge whose certificate another PKI's switch CA signed
 * is refused. SSL is global to ovs-vswitchd: the test sets it and deletes it again (`del-ssl`).
 */
import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PIPELINE_APP_ID, makeCookie } from '../../src/sdk';
import { assertOvsRunning, vsctl } from '../helpers/ovs';
import { ControllerProcess, dump, testDir, until, zonemeshFlows } from '../helpers/restart';
import { freePort, run, TEST_STATE_DIR } from '../helpers/run';

const BRIDGE = 'zm-tls';
const ROGUE_BRIDGE = 'zm-tls-rogue';
const TABLE_MISS_COOKIE = `0x${makeCookie(PIPELINE_APP_ID, 'table-miss').toString(16)}`;

test.before(assertOvsRunning);

/** `ovs-vsctl get-ssl`: empty when OVS has no SSL configuration */
async function sslConfig(): Promise<string> {
  return (await vsctl(['get-ssl'])).trim();
}

async function controllerState(bridge: string): Promise<{ connected: boolean; status: string }> {
  const [connected, status] = (await vsctl(['get', 'controller', bridge, 'is_connected', 'status'])).trim().split('\n');
  return { connected: connected === 'true', status: status ?? '' };
}

/** the bridge's datapath id, 16 hex digits as zonemesh logs it */
async function dpidOf(bridge: string): Promise<string> {
  return (await vsctl(['get', 'bridge', bridge, 'datapath_id'])).trim().replace(/"/g, '');
}

/** A netdev OpenFlow 1.3 bridge in fail_mode=secure with its ssl: controller set in the add-br transaction. */
async function addBridge(bridge: string, port: number): Promise<void> {
  await vsctl([
    '--', '--if-exists', 'del-br', bridge,
    '--', 'add-br', bridge,
    '--', 'set', 'bridge', bridge, 'datapath_type=netdev', 'protocols=OpenFlow13', 'fail_mode=secure',
    '--', 'set-controller', bridge, `ssl:127.0.0.1:${port}`,
    '--', 'set', 'controller', bridge, 'max_backoff=1000',
  ]);
}

/** what to look at when OVS does not connect: the controller records and ovs-vswitchd's SSL and rconn lines */
async function ovsDiagnosis(): Promise<string> {
  let log = '';
  try {
    log = readFileSync('/var/log/openvswitch/ovs-vswitchd.log', 'utf8')
      .split('\n')
      .filter((l) => /stream_ssl|rconn|zm-tls/.test(l))
      .slice(-20)
      .join('\n');
  } catch (e) {
    log = `(no ovs-vswitchd log: ${(e as Error).message})`;
  }
  return `${await vsctl(['list', 'controller']).catch((e: Error) => e.message)}\n${await sslConfig().catch((e: Error) => e.message)}\n${log}`;
}

test.serial('OVS connects over ssl: with the switch CA-signed certificate; a switch certificate from another PKI is refused', async (t: ExecutionContext) => {
  t.timeout(180_000);
  const dir = testDir('ovs-tls');
  // SSL is global to ovs-vswitchd: replace only what an earlier run of this test left
  const before = await sslConfig();
  if (before !== '' && !before.includes(TEST_STATE_DIR)) throw new Error(`the system OVS has an SSL configuration of its own; not replacing it:\n${before}`);
  t.teardown(async () => {
    await vsctl(['--', '--if-exists', 'del-br', BRIDGE, '--', '--if-exists', 'del-br', ROGUE_BRIDGE]).catch((e: Error) => t.log(`del-br: ${e.message}`));
    await vsctl(['del-ssl']).catch((e: Error) => t.log(`del-ssl: ${e.message}`));
  });

  // ovs-pki: a controller CA and a switch CA; the rogue switch's certificate comes from another PKI's switch CA
  const ovsPki = (pkiDir: string, ...args: string[]) => run('ovs-pki', [`--dir=${join(dir, pkiDir)}`, `--log=${join(dir, 'ovs-pki.log')}`, ...args], { cwd: dir, timeoutMs: 120_000 });
  await ovsPki('pki', 'init');
  await ovsPki('pki', '--batch', 'req+sign', 'ctl', 'controller');
  await ovsPki('pki', '--batch', 'req+sign', 'sc', 'switch');
  await ovsPki('pki-rogue', 'init');
  await ovsPki('pki-rogue', '--batch', 'req+sign', 'rogue', 'switch');
  const file = (name: string) => join(dir, name);
  const controllerCa = join(dir, 'pki', 'controllerca', 'cacert.pem');
  const switchCa = join(dir, 'pki', 'switchca', 'cacert.pem');

  const port = await freePort();
  const control = file('control.sock');
  const ctl = new ControllerProcess(t, [
    '--apps', 'l2-learning',
    '--listen', `tls:127.0.0.1:${port}`,
    '--tls-key', file('ctl-privkey.pem'), '--tls-cert', file('ctl-cert.pem'), '--tls-ca', switchCa,
    '--control', `unix:${control}`,
  ]);
  await ctl.waitFor('"running"', (l) => l.msg === 'running', 60_000);

  // 1. the switch's certificate is signed by the switch CA that zonemesh trusts
  await vsctl(['set-ssl', file('sc-privkey.pem'), file('sc-cert.pem'), controllerCa]);
  await addBridge(BRIDGE, port);
  const dpid = await dpidOf(BRIDGE);
  const ready = await ctl.waitFor(`${BRIDGE} READY`, (l) => l.to === 'READY' && l.dpid === dpid, 30_000).catch(async (e: Error) => {
    throw new Error(`${e.message}\nOVS says:\n${await ovsDiagnosis()}`);
  });
  t.regex(String(ready.remote), /^127\.0\.0\.1:\d+$/);
  await until(`${BRIDGE}: is_connected`, 30_000, async () => ((await controllerState(BRIDGE)).connected ? true : undefined)).catch(async (e: Error) => {
    throw new Error(`${e.message}\nOVS says:\n${await ovsDiagnosis()}`);
  });
  t.regex((await controllerState(BRIDGE)).status, /state=ACTIVE/, 'OVS: the ssl: controller connection is up');
  const flows = await until(`the table-miss flow on ${BRIDGE}`, 30_000, async () => {
    const d = await dump(BRIDGE);
    return d.flows.length > 0 ? d.flows : undefined;
  });
  t.deepEqual(
    flows.map((f) => f.rule),
    [`cookie=${TABLE_MISS_COOKIE}, table=0, priority=0 actions=CONTROLLER:65535`],
    "l2-learning's table-miss flow, with the pipeline's cookie",
  );
  const asked = await zonemeshFlows(control);
  t.is(asked.status, 0, 'zonemesh flows: in sync');
  t.deepEqual(asked.switches.map((s) => s.dpid), [dpid]);

  // 2. another PKI's switch CA signed this one's certificate (OVS still trusts our controller CA)
  await vsctl(['set-ssl', file('rogue-privkey.pem'), file('rogue-cert.pem'), controllerCa]);
  const mark = ctl.lines.length;
  await addBridge(ROGUE_BRIDGE, port);
  const rogueDpid = await dpidOf(ROGUE_BRIDGE);
  const refused = await ctl.waitFor('the refusal of the rogue bridge', (l) => l.msg.startsWith('TLS handshake failed'), 30_000, mark).catch(async (e: Error) => {
    throw new Error(`${e.message}\nOVS says:\n${await ovsDiagnosis()}`);
  });
  t.regex(refused.msg, /^TLS handshake failed: the switch certificate is not trusted \(\w+\) \(remote=127\.0\.0\.1:\d+\)$/);
  // OVS retries with backoff; every attempt is refused the same way
  await ctl.waitFor('a second refusal', (l) => l.msg.startsWith('TLS handshake failed') && l !== refused, 30_000, mark);
  t.false((await controllerState(ROGUE_BRIDGE)).connected, 'OVS: the rogue bridge is not connected');
  t.deepEqual((await dump(ROGUE_BRIDGE)).flows, [], 'the rogue bridge got no flow');
  t.false(ctl.lines.some((l) => l.dpid === rogueDpid), 'zonemesh never learned the rogue datapath id (no OpenFlow was spoken)');
  t.true(ctl.running, 'the controller runs on');
  t.false((await zonemeshFlows(control)).switches.some((s) => s.dpid === rogueDpid));

  t.deepEqual(
    ctl.problems().filter((l) => !l.msg.startsWith('TLS handshake failed: the switch certificate is not trusted')),
    [],
    'no other warning or error in the controller log',
  );
  await ctl.kill('SIGTERM');
  t.is(ctl.child.exitCode, 0, 'SIGTERM stops the controller cleanly');
});
