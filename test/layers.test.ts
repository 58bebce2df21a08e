/**
 * The architecture as a test: every import under src/ goes to its own layer or a lower one, and
 * the SDK an app author imports reaches no I/O module at run time.
 */
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { REPO_ROOT } from './helpers/paths';

const SRC = join(REPO_ROOT, 'src');

/** Lowest first. A folder may import its own layer and those before it, never one after it. */
const LAYERS: readonly (readonly string[])[] = [
  ['openflow'],
  ['packet'],
  ['model', 'capture'],
  ['controller'],
  ['sdk'],
  ['runtime', 'api'],
  ['testing'],
  ['apps'],
  ['cli'],
];

/** Node modules that do I/O: none may be reached from the SDK's entry point at run time. */
const IO_MODULES = /^(node:)?(fs|fs\/promises|net|tls|dgram|http|https|http2|child_process|cluster|worker_threads|readline)$/;

interface Import {
  readonly specifier: string;
  /** erased at compile time: an architectural edge, but no code loaded */
  readonly typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const IMPORT_RE = /^\s*(import|export)\s+(type\s+)?(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/gm;

function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT_RE)].map((m) => ({ specifier: m[3]!, typeOnly: m[2] !== undefined }));
}

/** `src/<folder>/...` → the folder; undefined for a file outside src/ */
function folderOf(file: string): string | undefined {
  const rel = relative(SRC, file);
  return rel.startsWith('..') ? undefined : rel.split('/')[0];
}

function rankOf(folder: string): number {
  const rank = LAYERS.findIndex((layer) => layer.includes(folder));
  if (rank < 0) throw new Error(`src/${folder} is in no layer: add it to LAYERS in test/layers.test.ts`);
  return rank;
}

function resolveLocal(from: string, specifier: string): string {
  const base = resolve(dirname(from), specifier);
  for (const candidate of [`${base}.ts`, join(base, 'index.ts')]) {
    try {
      readFileSync(candidate);
      return candidate;
    } catch {
      // the other form
    }
  }
  throw new Error(`${relative(REPO_ROOT, from)}: cannot resolve ${specifier}`);
}

interface Edge {
  readonly file: string;
  readonly specifier: string;
  readonly from: string;
  /** undefined: outside src/ */
  readonly to: string | undefined;
}

function edgesOf(files: readonly string[]): Edge[] {
  return files.flatMap((file) =>
    importsOf(file)
      .filter(({ specifier }) => specifier.startsWith('.'))
      .map(({ specifier }) => ({ file: relative(REPO_ROOT, file), specifier, from: folderOf(file)!, to: folderOf(resolveLocal(file, specifier)) })),
  );
}

function violations(edges: readonly Edge[]): string[] {
  return edges.flatMap(({ file, specifier, from, to }) => {
    if (to === undefined) return [`${file} imports ${specifier}, outside src/`];
    if (to === from || rankOf(to) < rankOf(from)) return [];
    return [`${file} (${from}) imports ${specifier} (${to}), a layer ${rankOf(to) === rankOf(from) ? 'beside' : 'above'} it`];
  });
}

test('every folder of src/ has a layer, and no import goes to a layer above or beside its own', (t) => {
  const folders = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  for (const folder of folders) t.notThrows(() => rankOf(folder), `src/${folder}`);
  const edges = edgesOf(sourceFiles(SRC));
  t.true(edges.length > 300, `${edges.length} imports checked`);
  t.deepEqual(violations(edges), []);
});

test('the check reports an import up, beside and out of src/, and passes one down', (t) => {
  const edge = (from: string, to: string | undefined): Edge => ({ file: `src/${from}/x.ts`, specifier: `../${to}`, from, to });
  t.deepEqual(violations([edge('sdk', 'openflow'), edge('cli', 'runtime'), edge('apps', 'apps')]), []);
  t.deepEqual(violations([edge('controller', 'runtime'), edge('model', 'capture'), edge('sdk', undefined)]), [
    'src/controller/x.ts (controller) imports ../runtime (runtime), a layer above it',
    'src/model/x.ts (model) imports ../capture (capture), a layer beside it',
    'src/sdk/x.ts imports ../undefined, outside src/',
  ]);
});

test('the SDK reaches no I/O module at run time (type-only imports are erased)', (t) => {
  const seen = new Set<string>();
  const reached: string[] = [];
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const { specifier, typeOnly } of importsOf(file)) {
      if (typeOnly) continue;
      if (specifier.startsWith('.')) visit(resolveLocal(file, specifier));
      else if (IO_MODULES.test(specifier)) reached.push(`${relative(REPO_ROOT, file)} → ${specifier}`);
    }
  };
  visit(join(SRC, 'sdk', 'index.ts'));
  t.true(seen.size > 10, `followed ${seen.size} files`);
  t.deepEqual(reached, []);
});

/** Shipped apps written on the public SDK alone, as an app outside the repository would be. */
const SDK_ONLY_APPS = ['dhcp-responder', 'north-south', 'lb-health'];

test('SDK-only apps import nothing but the SDK', (t) => {
  for (const app of SDK_ONLY_APPS) {
    const dir = join(SRC, 'apps', app);
    const foreign = sourceFiles(dir).flatMap((file) =>
      importsOf(file)
        .filter(({ specifier }) => specifier.startsWith('.') && !resolveLocal(file, specifier).startsWith(dir) && resolveLocal(file, specifier) !== join(SRC, 'sdk', 'index.ts'))
        .map(({ specifier }) => `${relative(REPO_ROOT, file)} imports ${specifier}`),
    );
    t.deepEqual(foreign, [], app);
    t.true(sourceFiles(dir).length > 0, `src/apps/${app} has files`);
  }
});
