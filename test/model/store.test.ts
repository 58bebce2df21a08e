import test, { type ExecutionContext } from 'ava';
import { appendFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { firstValueFrom } from 'rxjs';
import { parse, stringify } from 'yaml';
import { FileModelStore, ModelValidationError, validateModel, type FileModelStoreOptions, type NetworkModel } from '../../src/model';
import { configMapVolume, firstMatching, generatedModel, minimalModel } from '../helpers/model';
import { tempDir } from '../helpers/run';

function modelFile(t: ExecutionContext, doc: unknown = minimalModel()): string {
  const file = join(tempDir(t), 'model.yaml');
  writeFileSync(file, stringify(doc));
  return file;
}

/** a store watching `file`, quick to settle unless told otherwise, closed when the test ends */
function watchedStore(t: ExecutionContext, file: string, options: FileModelStoreOptions = {}): FileModelStore {
  const store = new FileModelStore(file, { settleMs: 50, ...options }).watch(20);
  t.teardown(() => store.close());
  return store;
}

test('the file store applies valid edits and rejects invalid ones whole, keeping the running model', async (t) => {
  const file = modelFile(t);
  const store = watchedStore(t, file);

  const rejected = firstValueFrom(store.rejected$);
  const broken = minimalModel();
  broken.ports[0]!.subnet = 'missing';
  writeFileSync(`${file}.tmp`, stringify(broken));
  renameSync(`${file}.tmp`, file); // editors replace by rename
  const err = await rejected;
  t.regex(err.message, /ports\[0\]\.subnet: unknown subnet 'missing'/);
  t.is(store.current().ports[0]!.subnet, 's');

  const moved = minimalModel();
  moved.ports[0]!.ip = '10.0.0.6';
  const next = firstMatching(store.model$, (m) => m.ports[0]!.ip === '10.0.0.6');
  writeFileSync(file, stringify(moved));
  t.is((await next).ports[0]!.ip, '10.0.0.6');
});

test("the file store merges this deployment's hypervisor access into every version of the model", async (t) => {
  const doc = minimalModel();
  doc.hypervisors.push({ name: 'hv2', zone: 'a', tunnelIp: '172.16.1.12', datapathId: '0x12' });
  const file = modelFile(t, doc);
  const store = watchedStore(t, file, { hypervisors: { hv1: { ovsdb: 'unix:/run/zm/hv1/db.sock' }, hv9: { ovsdb: 'unix:/run/zm/hv9/db.sock' } } });
  t.deepEqual(store.current().hypervisors.map((h) => [h.name, h.ovsdb]), [['hv1', 'unix:/run/zm/hv1/db.sock'], ['hv2', undefined]]);
  t.false(store.current().hypervisors.some((h) => h.name === 'hv9'), 'access for a hypervisor the model lacks adds none');

  const next = firstMatching(store.model$, (m) => m.hypervisors.some((h) => h.name === 'hv9'));
  doc.hypervisors.push({ name: 'hv9', zone: 'a', tunnelIp: '172.16.1.19', datapathId: '0x19' });
  writeFileSync(file, stringify(doc));
  t.deepEqual((await next).hypervisors.map((h) => h.ovsdb), ['unix:/run/zm/hv1/db.sock', undefined, 'unix:/run/zm/hv9/db.sock']);
});

test('every bad model file is refused with its file, path and problem, and nothing of it is applied', async (t) => {
  const maxBytes = 4096;
  const file = modelFile(t);
  const store = watchedStore(t, file, { maxBytes });
  const before = store.current();
  const applied: NetworkModel[] = [];
  store.model$.subscribe((m) => applied.push(m));

  const edit = (change: (doc: any) => void) => {
    const doc = minimalModel();
    change(doc);
    return stringify(doc);
  };
  const cases: { name: string; text: string | undefined; path: string; problem: RegExp }[] = [
    { name: 'syntax error', text: 'zones: [\n', path: '(syntax)', problem: /flow sequence/i },
    { name: 'empty file', text: '', path: '(root)', problem: /^must be an object$/ },
    { name: 'a list, not a model', text: '- zones\n- ports\n', path: '(root)', problem: /^must be an object$/ },
    { name: 'address out of range', text: edit((d) => (d.ports[0].ip = '10.0.0.300')), path: 'ports[0].ip', problem: /^'10\.0\.0\.300' is not an IPv4 address$/ },
    {
      name: 'mistyped key',
      text: edit((d) => ((d.hypervisors[0].datapathID = '0x11'), delete d.hypervisors[0].datapathId)),
      path: 'hypervisors[0].datapathID',
      problem: /^unknown key; did you mean datapathId\?$/,
    },
    { name: 'over the size cap', text: edit(() => undefined) + `# ${'x'.repeat(maxBytes)}\n`, path: '(file)', problem: /^is 4\.\d KiB, over the limit of 4 KiB \(raise it with modelMaxBytes in the run config, or --model-max-bytes\)$/ },
    { name: 'file removed', text: undefined, path: '(file)', problem: /^cannot read: ENOENT$/ },
  ];
  for (const c of cases) {
    const rejected = firstMatching(store.rejected$, (e) => e.issues.some((i) => i.path === c.path));
    if (c.text === undefined) unlinkSync(file);
    else writeFileSync(file, c.text);
    const e = await rejected;
    t.true(e instanceof ModelValidationError);
    t.is(e.source, file, c.name);
    const issue = e.issues.find((i) => i.path === c.path)!;
    t.regex(issue.problem, c.problem, c.name);
    t.true(e.message.includes(`${file}: ${issue.path}: ${issue.problem}`), `${c.name}: the message names file, path and problem`);
  }
  t.is(applied.length, 1, 'only the model loaded at startup');
  t.is(store.current(), before);
});

test('a re-read file is handed on interned: unchanged objects and lists are the previous version\'s very objects, access merged or not', async (t) => {
  const doc = generatedModel(100);
  const file = modelFile(t, doc);
  const store = new FileModelStore(file, { hypervisors: { [doc.hypervisors[0]!.name]: { ovsdb: 'unix:/run/zm/hv1/db.sock' } } });
  t.teardown(() => store.close());
  const before = store.current();
  doc.ports[5]!.mac = '02:00:00:ff:ff:01';
  writeFileSync(file, stringify(doc));
  t.true(await store.reload());
  const after = store.current();
  t.is(after.ports[5]!.mac, '02:00:00:ff:ff:01');
  t.not(after.ports[5], before.ports[5]);
  after.ports.forEach((p, i) => i === 5 || t.is(p, before.ports[i], `ports[${i}]`));
  after.hypervisors.forEach((h, i) => t.is(h, before.hypervisors[i], `hypervisors[${i}], the one with access merged included`));
  t.is(after.hypervisors[0]!.ovsdb, 'unix:/run/zm/hv1/db.sock');
  t.is(after.subnets, before.subnets);
});

test('a model file over the size cap is refused at startup too, before it is parsed', (t) => {
  const file = modelFile(t, generatedModel(50));
  const e = t.throws(() => new FileModelStore(file, { maxBytes: 1000 }), { instanceOf: ModelValidationError });
  t.regex(e!.message, new RegExp(`^${file}: 1 problem\\(s\\)\\n  ${file}: \\(file\\): is \\d+(\\.\\d)? KiB, over the limit of 1000 bytes \\(raise it with modelMaxBytes`));
});

test('a reload parses in a worker thread: the event loop keeps turning while 10,000 ports parse', async (t) => {
  const file = modelFile(t);
  const store = new FileModelStore(file);
  t.teardown(() => store.close());
  writeFileSync(file, stringify(generatedModel(10_000)));
  let turns = 0;
  let reloading = true;
  const turn = () => {
    if (!reloading) return;
    turns++;
    setImmediate(turn);
  };
  setImmediate(turn);
  t.true(await store.reload());
  reloading = false;
  t.is(store.current().ports.length, 10_000);
  // parsed on the event loop, the reload would leave no turn to anything else
  t.true(turns > 100, `${turns} turns of the event loop during the reload`);
});

test('a half-written file that happens to be valid is not applied: only the finished file is', async (t) => {
  const file = modelFile(t);
  const done = minimalModel();
  for (const n of [2, 3]) done.ports.push({ ...done.ports[0]!, name: `p${n}`, mac: `02:00:00:00:00:0${n}`, ip: `10.0.0.${4 + n}` });
  const text = stringify(done);
  const cut = text.indexOf('  - name: p3');
  t.is(validateModel(parse(text.slice(0, cut)), 'half').ports.length, 2, 'the first half is a valid model by itself');

  const store = watchedStore(t, file, { settleMs: 1000 });
  const applied: number[] = [];
  store.model$.subscribe((m) => applied.push(m.ports.length));
  const finished = firstMatching(store.model$, (m) => m.ports.length === 3);
  writeFileSync(file, text.slice(0, cut));
  await delay(150); // longer than the debounce, well within the settle time
  appendFileSync(file, text.slice(cut));
  await finished;
  t.deepEqual(applied, [1, 3]);
});

const configMapModel = test.macro({
  async exec(t, path: string) {
    const dir = tempDir(t);
    const publish = configMapVolume(dir, { 'model.yaml': stringify(minimalModel()) });
    const store = watchedStore(t, join(dir, path));
    for (const ip of ['10.0.0.6', '10.0.0.7']) {
      const doc = minimalModel();
      doc.ports[0]!.ip = ip;
      const applied = firstMatching(store.model$, (m) => m.ports[0]!.ip === ip, 5000);
      publish({ 'model.yaml': stringify(doc) });
      t.is((await applied).ports[0]!.ip, ip);
    }
  },
  title: (_, path) => `a model in a ConfigMap volume, read as ${path}, is followed through the kubelet's atomic ..data swaps`,
});
test(configMapModel, 'model.yaml');
test(configMapModel, '..data/model.yaml');
