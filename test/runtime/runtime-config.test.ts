import test from 'ava';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseStaticFlowsSettings } from '../../src/apps/static-flows';
import { runConfig } from '../../src/cli/run';
import { RunConfigError, RunConfigFile, loadRunConfig, parseDpid, parseListenTarget, validateRunConfig } from '../../src/runtime';
import { configProblems } from '../helpers/config';
import { configMapVolume, firstMatching } from '../helpers/model';
import { tempDir } from '../helpers/run';
import { OFPP } from '../../src/openflow';


test('a run config file is read, checked and completed with defaults', (t) => {
  const dir = tempDir(t, 'zm-config-');
  const path = join(dir, 'run.yaml');
  writeFileSync(path, "apps: [l2-learning]\nlisten: ['tcp:127.0.0.1:6653', ':6633', 'unix:/run/zm.sock', '[::1]:6653']\ndial: ['unix:/var/run/openvswitch/br0.mgmt']\n");
  t.deepEqual(loadRunConfig(path), {
    apps: ['l2-learning'],
    listen: [
      { transport: 'tcp', host: '127.0.0.1', port: 6653 },
      { transport: 'tcp', port: 6633 },
      { transport: 'unix', path: '/run/zm.sock' },
      { transport: 'tcp', host: '::1', port: 6653 },
    ],
    dial: ['unix:/var/run/openvswitch/br0.mgmt'],
    logLevel: 'info',
    settings: {},
  });
  t.deepEqual(validateRunConfig(undefined, 'empty.yaml'), { apps: [], listen: [], dial: [], logLevel: 'info', settings: {} });
});

test('every problem of a run config is reported at once, with its path', (t) => {
  const doc = { apps: ['a', 'a', 7], listen: ['nowhere'], dial: ['tcp:host'], logLevel: 'loud', settings: [], colour: 'blue' };
  t.deepEqual(configProblems(() => validateRunConfig(doc, 'run.yaml')), [
    'colour: unknown key (known: apps, listen, tls, dial, model, store, modelMaxBytes, hypervisors, control, logLevel, settings, workers, controller, generationId, metrics, http, zone, controllerId, election)',
    "apps[1]: 'a' is listed twice",
    'apps[2]: must be an app name or { module: PATH|PACKAGE }',
    "listen[0]: 'nowhere' is not 'unix:PATH', '[tcp:]HOST:PORT' or 'tls:HOST:PORT'",
    "dial[0]: dial target 'tcp:host' is not 'unix:/path' or 'tcp:host:port'",
    "logLevel: 'loud' is not one of trace, debug, info, warn, error, fatal, silent",
    'settings: must be a mapping of app name to settings',
  ]);
  t.deepEqual(configProblems(() => validateRunConfig({ logLevl: 'info', tls: { cart: 'c.pem' }, controller: { packetInRat: 5 } }, 'run.yaml')), [
    'logLevl: unknown key; did you mean logLevel?',
    'tls.cart: unknown key; did you mean cert?',
    'controller.packetInRat: unknown key; did you mean packetInRate?',
  ]);
  const missing = join(tmpdir(), 'no-such-zonemesh.yaml');
  t.throws(() => loadRunConfig(missing), { instanceOf: RunConfigError, message: `${missing}: (file): cannot read: ENOENT` });
});

test('store: an etcd:// URL of HOST:PORT endpoints, and not together with model', (t) => {
  t.is(validateRunConfig({ store: 'etcd://127.0.0.1:2379,etcd-2.local:2379,[::1]:2379' }, 'run.yaml').store, 'etcd://127.0.0.1:2379,etcd-2.local:2379,[::1]:2379');
  t.deepEqual(configProblems(() => validateRunConfig({ store: 'http://127.0.0.1:2379' }, 'run.yaml')), ["store: 'http://127.0.0.1:2379' is not etcd://HOST:PORT[,HOST:PORT...]"]);
  t.deepEqual(configProblems(() => validateRunConfig({ store: 'etcd://a:1,b' }, 'run.yaml')), ["store: 'b' in etcd://a:1,b is not HOST:PORT"]);
  t.deepEqual(configProblems(() => validateRunConfig({ store: 'etcd://a:1', model: 'm.yaml' }, 'run.yaml')), ['store: the model comes from one place: model m.yaml or store etcd://a:1, not both']);
});

test('workers: a whole number from 1 to 64; absent means one process', (t) => {
  t.is(validateRunConfig({ workers: 4 }, 'run.yaml').workers, 4);
  t.false('workers' in validateRunConfig({}, 'run.yaml'));
  for (const bad of [0, 65, 1.5, '2', null]) {
    t.deepEqual(configProblems(() => validateRunConfig({ workers: bad }, 'run.yaml')), [`workers: ${JSON.stringify(bad)} is not a whole number from 1 to 64`]);
  }
});

test('generationId: the static OpenFlow master generation, 1 or more; absent means no role request', (t) => {
  t.is(validateRunConfig({ generationId: 3 }, 'run.yaml').generationId, 3);
  t.false('generationId' in validateRunConfig({}, 'run.yaml'));
  for (const bad of [0, -1, 1.5, '2', 2 ** 53]) {
    t.deepEqual(configProblems(() => validateRunConfig({ generationId: bad }, 'run.yaml')), [
      `generationId: ${JSON.stringify(bad)} is not a whole number from 1 to ${Number.MAX_SAFE_INTEGER} (0 fences nobody)`,
    ]);
  }
});

test('zone: the etcd mastership election, with an etcd store, one process and no static generation', (t) => {
  const ok = validateRunConfig({ store: 'etcd://127.0.0.1:2379', zone: 'a', controllerId: 'ctl-a', election: { leaseTtl: 5, preemptDelay: 0 } }, 'run.yaml');
  t.like(ok, { zone: 'a', controllerId: 'ctl-a', election: { leaseTtl: 5, preemptDelay: 0 } });
  t.deepEqual(configProblems(() => validateRunConfig({ zone: 'a', generationId: 2, workers: 2 }, 'run.yaml')), [
    'zone: the mastership election runs in etcd: zone a needs store: etcd://HOST:PORT',
    'generationId: the election gives the generation ids: not with zone a',
    'workers: the mastership election runs in one process: workers 1 with zone',
  ]);
  t.deepEqual(configProblems(() => validateRunConfig({ controllerId: 'x', election: { leaseTtl: 0, preemptDelay: -1, lease: 3 } }, 'run.yaml')), [
    'election.leaseTtl: 0 is not a whole number of seconds from 1 to 60',
    'election.preemptDelay: -1 is not a number of seconds from 0 to 3600',
    'election.lease: unknown key (known: leaseTtl, preemptDelay)',
    'controllerId: names this controller in the mastership election, which runs with zone: set zone too',
    'election: tunes the mastership election, which runs with zone: set zone too',
  ]);
});

test("hypervisors: each hypervisor's OVSDB target for this deployment, checked like the model's", (t) => {
  const ok = validateRunConfig({ hypervisors: { hv1: { ovsdb: 'unix:/run/zm/hv1/db.sock' }, hv2: { ovsdb: 'tcp:10.0.0.2:6640' }, hv3: {} } }, 'run.yaml');
  t.deepEqual(ok.hypervisors, { hv1: { ovsdb: 'unix:/run/zm/hv1/db.sock' }, hv2: { ovsdb: 'tcp:10.0.0.2:6640' }, hv3: {} });
  t.false('hypervisors' in validateRunConfig({}, 'run.yaml'));
  t.deepEqual(configProblems(() => validateRunConfig({ hypervisors: { hv1: { ovsdb: '/run/db.sock', dial: 'x' }, hv2: 'unix:/x' } }, 'run.yaml')), [
    'hypervisors.hv1.dial: unknown key (known: ovsdb)',
    `hypervisors.hv1.ovsdb: "/run/db.sock" is not an OVSDB target such as 'unix:/run/zm/hv1/db.sock'`,
    'hypervisors.hv2: must be a mapping such as { ovsdb: unix:/run/zm/hv1/db.sock }',
  ]);
  t.deepEqual(configProblems(() => validateRunConfig({ hypervisors: ['hv1'] }, 'run.yaml')), ['hypervisors: must be a mapping of hypervisor name to { ovsdb }']);
});

test('listen targets and datapath ids parse the ways users write them', (t) => {
  t.deepEqual(parseListenTarget('0.0.0.0:6653'), { transport: 'tcp', host: '0.0.0.0', port: 6653 });
  t.is(parseListenTarget('unix:'), "'unix:' names no socket path");
  t.is(parseListenTarget('tcp:1.2.3.4:70000'), "'tcp:1.2.3.4:70000' is not 'unix:PATH', '[tcp:]HOST:PORT' or 'tls:HOST:PORT'");
  t.is(parseDpid('00000000000000ff'), 255n, '16 hex digits, as ovs-ofctl prints them');
  t.is(parseDpid('0xff'), 255n);
  t.is(parseDpid('255'), 255n);
  t.is(parseDpid('zz'), undefined);
});

test('static-flows settings become match specs and actions', (t) => {
  const settings = parseStaticFlowsSettings({
    miss: 'next',
    flows: [
      { name: 'web', dpid: '0x7', priority: 10, match: { eth_type: '0x0800', ipv4_dst: '10.0.0.0/24', tcp_dst: 80, ip_proto: 6 }, actions: [{ output: 'controller' }] },
      { name: 'mark', match: { eth_src: '02:00:00:00:00:00/ff:00:00:00:00:00', metadata: '0x10' }, actions: [{ set_field: { reg0: 5 } }, { output: 3 }] },
      { name: 'drop' },
    ],
  });
  t.is(settings.miss, 'next');
  t.deepEqual(settings.flows[0], {
    name: 'web',
    dpid: 7n,
    priority: 10,
    match: { eth_type: 0x800, ipv4_dst: { value: '10.0.0.0', mask: '255.255.255.0' }, tcp_dst: 80, ip_proto: 6 },
    actions: [{ type: 'output', port: OFPP.CONTROLLER, maxLen: 0xffff }],
  });
  t.deepEqual(settings.flows[1]!.match, { eth_src: { value: '02:00:00:00:00:00', mask: 'ff:00:00:00:00:00' }, metadata: 0x10n });
  t.deepEqual(settings.flows[1]!.actions, [{ type: 'set_field', field: { field: 'reg0', value: 5 } }, { type: 'output', port: 3, maxLen: 0 }]);
  t.deepEqual(settings.flows[2], { name: 'drop', priority: 0x8000, match: {}, actions: [] });
});

test('static-flows settings report every bad flow with its path', (t) => {
  const bad = {
    miss: 'flood',
    flows: [
      { name: 'x', match: { eth_src: 'not-a-mac', in_port: -1, bogus: 1 }, actions: [{ output: 'nowhere' }, { set_field: { ipv4_dst: '10.0.0.0/8' } }] },
      { name: 'x', priority: 70000, dpid: 'seven' },
      'flow',
    ],
  };
  t.deepEqual(configProblems(() => parseStaticFlowsSettings(bad)), [
    "miss: 'flood' is not one of drop, controller, next",
    "flows[0].match.eth_src: eth_src: 'not-a-mac' is not an address",
    'flows[0].match.in_port: in_port must be an integer 0..4294967295',
    "flows[0].match.bogus: unknown field 'bogus'",
    "flows[0].actions[0]: output: 'nowhere' is not a port number or one of in_port, controller, flood, all, local, normal",
    'flows[0].actions[1]: set_field ipv4_dst: a masked value cannot be set',
    "flows[1].name: 'x' is used twice",
    'flows[1].priority: must be an integer 0..65535',
    "flows[1].dpid: dpid must be an integer, '0x…' or 16 hex digits",
    'flows[2]: must be a mapping',
  ]);
});

test('modelMaxBytes: bytes, or KiB, MiB or GiB, in the file or as --model-max-bytes', (t) => {
  t.is(validateRunConfig({ modelMaxBytes: 1000 }, 'run.yaml').modelMaxBytes, 1000);
  t.is(validateRunConfig({ modelMaxBytes: '32MiB' }, 'run.yaml').modelMaxBytes, 32 * 1024 * 1024);
  t.is(runConfig(['--model-max-bytes', '64KiB']).config.modelMaxBytes, 64 * 1024);
  t.is(runConfig(['--model-max-bytes', '5000']).config.modelMaxBytes, 5000);
  t.deepEqual(configProblems(() => validateRunConfig({ modelMaxBytes: 0 }, 'run.yaml')), ["modelMaxBytes: 0 is not a size in bytes such as 16777216 or '16MiB'"]);
  t.deepEqual(configProblems(() => validateRunConfig({ modelMaxBytes: '16 MB' }, 'run.yaml')), ['modelMaxBytes: "16 MB" is not a size in bytes such as 16777216 or \'16MiB\'']);
});

test("a watched run config file is followed through a ConfigMap volume's atomic ..data swap, as the model is", async (t) => {
  const dir = tempDir(t);
  const publish = configMapVolume(dir, { 'run.yaml': 'settings: { static-flows: { miss: drop } }\n' });
  const file = new RunConfigFile(join(dir, 'run.yaml')).watch(20);
  t.teardown(() => file.close());
  const changed = firstMatching(file.changes$, (c) => JSON.stringify(c.settings) === '{"static-flows":{"miss":"controller"}}', 5000);
  publish({ 'run.yaml': 'settings: { static-flows: { miss: controller } }\n' });
  t.deepEqual((await changed).settings, { 'static-flows': { miss: 'controller' } });
});
