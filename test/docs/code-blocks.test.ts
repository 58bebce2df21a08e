/**
 * Every ```ts block in docs/*.md and README.md is a complete snippet importing from 'zonemesh/sdk'
 * or 'zonemesh/testing', and it compiles against the SDK: a doc naming an API that does not exist
 * fails here. A block meant to be partial is fenced ```ts skip-check (keep that rare).
 */
import test from 'ava';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from '../helpers/paths';

interface Block {
  /** 'docs/writing-apps.md:120' */
  readonly where: string;
  readonly code: string;
  readonly skipped: boolean;
}

const FENCE = /^( *)```ts( skip-check)?\n([\s\S]*?)^\1```$/gm;

function blocksOf(file: string): Block[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(FENCE)].map((m) => {
    const line = text.slice(0, m.index).split('\n').length;
    const indent = m[1]!.length;
    const code = m[3]!.split('\n').map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length))).join('\n');
    return { where: `${relative(REPO_ROOT, file)}:${line}`, code, skipped: m[2] !== undefined };
  });
}

const DOCS = [join(REPO_ROOT, 'README.md'), ...readdirSync(join(REPO_ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(REPO_ROOT, 'docs', f))];

/** Type-checks each block as its own module; returns 'where: message' per problem. */
function typeCheck(blocks: readonly Block[], name: string): string[] {
  // inside the repository, so that 'ava', 'rxjs' and @types/node resolve as from the example packages
  const dir = join(REPO_ROOT, 'dist', 'doc-blocks', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files = new Map(blocks.map((b, i) => [join(dir, `block${i}.ts`), b]));
  for (const [file, b] of files) writeFileSync(file, b.code);
  const program = ts.createProgram([...files.keys()], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    lib: ['lib.es2022.d.ts'],
    types: ['node'],
    strict: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    esModuleInterop: true,
    skipLibCheck: true,
    noEmit: true,
    baseUrl: REPO_ROOT,
    paths: { 'zonemesh/sdk': ['src/sdk/index.ts'], 'zonemesh/testing': ['src/testing/index.ts'] },
  });
  return ts.getPreEmitDiagnostics(program).flatMap((d) => {
    const block = d.file && files.get(d.file.fileName);
    if (d.file && !block) return []; // only the blocks' own problems
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : 0;
    const where = block ? block.where.replace(/:(\d+)$/, (_, l: string) => `:${Number(l) + 1 + line}`) : '(options)';
    return [`${where}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`];
  });
}

const blocks = DOCS.flatMap(blocksOf);
const checked = blocks.filter((b) => !b.skipped);

test('every ts block of the docs and the README compiles against zonemesh/sdk and zonemesh/testing', (t) => {
  t.true(checked.length >= 4, `${checked.length} blocks checked`);
  t.true(blocks.filter((b) => b.skipped).length <= 2, 'skip-check stays rare');
  t.deepEqual(typeCheck(checked, 'docs'), []);
});

test('blocks import zonemesh only by its public entry points', (t) => {
  const imports = checked.flatMap((b) => [...b.code.matchAll(/from '([^']+)'/g)].map((m) => ({ where: b.where, from: m[1]! })));
  t.deepEqual(imports.filter((i) => i.from.startsWith('.') || (i.from.startsWith('zonemesh') && !['zonemesh/sdk', 'zonemesh/testing'].includes(i.from))), []);
  t.true(checked.every((b) => /from 'zonemesh\/(sdk|testing)'/.test(b.code)), 'every block says where its names come from');
});

test('the check fails a block that names a missing API or misuses one', (t) => {
  const problems = typeCheck(
    [
      { where: 'x.md:1', code: "import { output } from 'zonemesh/sdk';\nexport const a = output('1');\n", skipped: false },
      { where: 'y.md:10', code: "import { noSuchHelper } from 'zonemesh/sdk';\nexport const b = noSuchHelper;\n", skipped: false },
    ],
    'self-test',
  );
  t.is(problems.length, 2, problems.join('\n'));
  t.regex(problems[0]!, /^x\.md:3: Argument of type 'string' is not assignable to parameter of type 'number'/);
  t.regex(problems[1]!, /^y\.md:11: Module '"zonemesh\/sdk"' has no exported member 'noSuchHelper'/);
});

test('the port-allowlist block of writing-apps.md is the example package’s app file', (t) => {
  const example = readFileSync(join(REPO_ROOT, 'examples', 'port-allowlist', 'src', 'app.ts'), 'utf8');
  t.true(checked.some((b) => b.where.startsWith('docs/writing-apps.md') && b.code === example));
});
