import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUILTIN_APPS } from '../../src/apps/registry';
import { silentLogger } from '../../src/controller';
import { AppLoadError, AppWiringError, Runtime, loadRunConfig, type AppRef } from '../../src/runtime';
import { runCli } from '../cli/run-cli';
import { REPO_ROOT } from '../helpers/paths';
import { tempDir } from '../helpers/run';

/** '2, 3, 16, …': every built-in app's id, as the refusals list them */
const BUILTIN_IDS = [...BUILTIN_APPS.reservedAppIds.keys()].sort((a, b) => a - b).join(', ');

const SDK = JSON.stringify(join(REPO_ROOT, 'dist', 'src', 'sdk'));
const dir = tempDir(test, 'zm-app-loader-');

/** a CommonJS app module in `dir`: `body` is the class body after name and appId */
function appModule(
  file: string,
  { name = 'my-app', appId = 60, tables = "[{ name: 'my-app.t', stage: 'l2', miss: 'drop', matches: ['eth_dst'] }]", eventCounters = 'undefined', exportAs = 'exports.default = MyApp;' } = {},
): string {
  const path = join(dir, file);
  writeFileSync(
    path,
    `const sdk = require(${SDK});
class MyApp {
  constructor() { this.name = ${JSON.stringify(name)}; this.appId = ${appId}; this.tables = ${tables}; this.eventCounters = ${eventCounters}; }
  start(ctx) { ctx.on(ctx.events.switchUp$, () => undefined); }
}
${exportAs}
`,
  );
  return path;
}

function runtimeWith(apps: readonly AppRef[], metrics?: { listen: string }): Runtime {
  return new Runtime({ config: { apps, listen: [], dial: [], logLevel: 'silent', settings: {}, ...(metrics && { metrics }) }, ...BUILTIN_APPS, logger: silentLogger() });
}

function refusal(t: import('ava').ExecutionContext, apps: readonly AppRef[]): AppLoadError {
  const e = t.throws(() => runtimeWith(apps), { instanceOf: AppLoadError })!;
  return e as AppLoadError;
}

test('a module whose default export is an app class runs beside the built-in apps, its tables in the pipeline', (t) => {
  const runtime = runtimeWith(['l2-learning', { module: appModule('good.js') }]);
  t.deepEqual(runtime.apps.map((a) => `${a.name}#${a.appId}`), ['l2-learning#2', 'my-app#60']);
  t.true(runtime.pipeline.has('my-app.t'));
});

test('refusals name the module and the problem', (t) => {
  const missing = join(dir, 'nope.js');
  t.is(refusal(t, [{ module: missing }]).message, `app module ${missing}: no such file`);
  t.is(refusal(t, [{ module: 'zonemesh-no-such-package' }]).message, `app module zonemesh-no-such-package: no package of that name reachable from ${process.cwd()}`);

  const named = appModule('named.js', { exportAs: 'exports.app = MyApp;' });
  t.is(refusal(t, [{ module: named }]).message, `app module ${named}: has no default export (it exports app); write \`export default class … implements ZonemeshApp\``);
  const fn = appModule('function.js', { exportAs: 'exports.default = () => new MyApp();' });
  t.is(refusal(t, [{ module: fn }]).message, `app module ${fn}: its default export is a function, not a class`);
  const broken = join(dir, 'broken.js');
  writeFileSync(broken, 'throw new Error("boom at load");\n');
  t.is(refusal(t, [{ module: broken }]).message, `app module ${broken}: failed to load: boom at load`);

  const builtinId = appModule('builtin-id.js', { appId: 2 });
  t.is(refusal(t, [{ module: builtinId }]).message, `app module ${builtinId}: app id 2 is the built-in app l2-learning's; choose another (built-in ids: ${BUILTIN_IDS})`);
  const pipelineId = appModule('pipeline-id.js', { appId: 1 });
  t.is(refusal(t, [{ module: pipelineId }]).message, `app module ${pipelineId}: app id 1 outside 2..255`);
  const builtinName = appModule('builtin-name.js', { name: 'acl' });
  t.is(refusal(t, [{ module: builtinName }]).message, `app module ${builtinName}: its name 'acl' is a built-in app's`);
  const stage = appModule('stage.js', { tables: "[{ name: 'my-app.t', stage: 'l7', miss: 'drop', matches: [] }]" });
  t.is(refusal(t, [{ module: stage }]).message, `app module ${stage}: tables[0] (my-app.t): stage "l7" is not one of intercept, probe, classify, spoofguard, arp, nat, l3, l2, acl, output`);
  const field = appModule('field.js', { tables: "[{ name: 'my-app.t', stage: 'l2', miss: 'drop', matches: ['eth_dest'] }]" });
  t.is(refusal(t, [{ module: field }]).message, `app module ${field}: tables[0] (my-app.t): matches names unknown match field "eth_dest"`);

  const counterName = appModule('counter-name.js', { eventCounters: "[{ name: 'my-app-hits', help: 'h', label: 'reason', read: () => [] }]" });
  t.is(refusal(t, [{ module: counterName }]).message, `app module ${counterName}: eventCounters[0].name "my-app-hits" is not snake_case without _total, such as 'dhcp_unanswered'`);
  const counterLabel = appModule('counter-label.js', { eventCounters: "[{ name: 'my_app_hits', help: 'h', label: 'dpid', read: () => [] }]" });
  t.is(refusal(t, [{ module: counterLabel }]).message, `app module ${counterLabel}: eventCounters[0] (my_app_hits): label "dpid" is not a snake_case word other than dpid, hypervisor`);
  // a name another app serves: refused when metrics are served
  const taken = appModule('counter-taken.js', { eventCounters: "[{ name: 'dhcp_replies', help: 'h', label: 'type', read: () => [] }]" });
  t.notThrows(() => runtimeWith([{ module: taken }], { listen: '127.0.0.1:0' }));
  t.throws(() => runtimeWith(['dhcp-responder', { module: taken }], { listen: '127.0.0.1:0' }), {
    instanceOf: AppWiringError,
    message: 'app my-app: event counter zonemesh_dhcp_replies_total is already served (by the runtime or another app)',
  });

  const twin = appModule('twin.js', { name: 'twin', appId: 60 });
  t.is(refusal(t, [{ module: appModule('first.js') }, { module: twin }]).message, `app module ${twin}: app id 60 is also my-app's; cookies would mix`);
  // a built-in app keeps its own error type
  t.throws(() => runtimeWith(['no-such-app']), { instanceOf: AppWiringError, message: /no app named 'no-such-app'/ });
});

test('apps: [{ module }] in a config file is relative to the file; an entry takes no other key', (t) => {
  const sub = join(dir, 'conf');
  mkdirSync(sub, { recursive: true });
  const file = join(sub, 'run.yaml');
  writeFileSync(file, "apps: [l2-learning, { module: ../good.js }]\n");
  t.deepEqual(loadRunConfig(file).apps, ['l2-learning', { module: join(dir, 'good.js') }]);
  writeFileSync(file, "apps: [{ module: ./x.js, modul: y }, { path: ./z.js }]\n");
  t.throws(() => loadRunConfig(file), { message: /apps\[0\]\.modul: unknown key; did you mean module\?[\s\S]*apps\[1\]: must be an app name or \{ module: PATH\|PACKAGE \}/ });
});

test('zonemesh run --app refuses a bad module in one line, exit status 3, before listening', (t) => {
  const clash = appModule('cli-clash.js', { appId: 19 });
  const r = runCli('run', '--app', clash, '--listen', '127.0.0.1:0', '--control', `unix:${join(dir, 'control.sock')}`, '--log-level', 'silent');
  t.is(r.status, 3);
  t.is(r.stderr, `zonemesh run: app module ${clash}: app id 19 is the built-in app acl's; choose another (built-in ids: ${BUILTIN_IDS})\n`);
});
