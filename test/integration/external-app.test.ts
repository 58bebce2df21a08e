/**
 * An app from outside the repository: examples/port-allowlist, its own package on `zonemesh/sdk`,
 * builds with its own tsconfig, passes its own tests, and runs under `zonemesh run --app` against a
 * real Open vSwitch bridge, whose flows then carry the app's id in their cookies.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PIPELINE_APP_ID, appOfCookie } from '../../src/sdk';
import { ExamplePackage } from '../helpers/example-package';
import { assertOvsRunning, dumpFlows, vsctl } from '../helpers/ovs';
import { ControllerProcess, testDir, until } from '../helpers/restart';
import { freePort } from '../helpers/run';

const BRIDGE = 'zms-ext';
const PORT = 'zms-ext-web1';
const MACS = ['02:00:00:00:00:01', '02:00:00:00:00:02'];
const EXAMPLE_APP_ID = 50;

test.before(assertOvsRunning);

test.serial('examples/port-allowlist builds, passes its tests, and its flows reach OVS through zonemesh run --app', async (t) => {
  t.timeout(300_000);
  const example = new ExamplePackage('port-allowlist');
  await example.build();
  const tested = await example.test();
  t.regex(tested.stdout, /3 tests passed/, tested.stdout);

  const dir = testDir('external-app');
  const port = await freePort();
  const config = join(dir, 'run.yaml');
  writeFileSync(config, [`listen: ['tcp:127.0.0.1:${port}']`, `control: ${join(dir, 'control.sock')}`, 'settings:', '  port-allowlist:', '    ports:', `      ${PORT}: [${MACS.map((m) => `'${m}'`).join(', ')}]`, ''].join('\n'));
  const ctl = new ControllerProcess(t, ['--config', config, '--app', join(example.dir, 'dist', 'src', 'app.js')]);
  const started = await ctl.waitFor('apps started', (l) => l.msg === 'apps started', 60_000);
  t.deepEqual(started.apps, [`port-allowlist#${EXAMPLE_APP_ID}`]);

  const cleanup = () => vsctl(['--if-exists', 'del-br', BRIDGE]);
  await cleanup();
  t.teardown(cleanup);
  await vsctl([
    '--', 'add-br', BRIDGE,
    '--', 'set', 'bridge', BRIDGE, 'datapath_type=netdev', 'fail_mode=secure', 'protocols=OpenFlow13',
    '--', 'set-controller', BRIDGE, `tcp:127.0.0.1:${port}`,
    '--', 'set', 'controller', BRIDGE, 'max_backoff=1000',
    '--', 'add-port', BRIDGE, PORT, '--', 'set', 'interface', PORT, 'type=internal', 'ofport_request=7',
  ]);
  await ctl.fullSync(60_000);
  const flows = await until('the allowlist flows on the bridge', 30_000, async () => {
    const dumped = await dumpFlows(BRIDGE);
    return dumped.filter((f) => appOfCookie(f.cookie) === EXAMPLE_APP_ID).length === MACS.length ? dumped : undefined;
  });
  t.deepEqual(
    flows.map((f) => ({ app: appOfCookie(f.cookie), table: f.table, priority: f.priority })).sort((a, b) => b.priority - a.priority),
    [...MACS.map(() => ({ app: EXAMPLE_APP_ID, table: 0, priority: 100 })), { app: PIPELINE_APP_ID, table: 0, priority: 0 }],
    'one flow per allowed MAC, with the app id in the cookie, and the table-miss drop',
  );
  t.deepEqual(ctl.problems(), []);
});
