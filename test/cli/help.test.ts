import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT, HELP_OPTION, parseCommandLine, parserOptions, UsageError, type Command, type OptionSpec } from '../../src/cli/command';
import { COMMANDS } from '../../src/cli/main';
import { REPO_ROOT } from '../helpers/paths';
import { CLI, runCliAsync } from './run-cli';

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A command line giving every option of the table once (twice when repeatable). */
function everyOption(table: readonly OptionSpec[]): string[] {
  return table.flatMap((o) => {
    const once = o.value === undefined ? [`--${o.name}`] : [`--${o.name}`, `${o.name}-value`];
    return o.repeatable ? [...once, ...once] : once;
  });
}

/** `stderr` is one line naming `problem` and pointing at `help`. */
function oneLineHint(t: import('ava').ExecutionContext, stderr: string, problem: RegExp, help: string): void {
  t.is(stderr.split('\n').filter(Boolean).length, 1, stderr);
  t.regex(stderr, problem);
  t.true(stderr.includes(`try '${help}'`), stderr);
}

test('each command parses exactly its option table, plus --help', (t) => {
  for (const c of COMMANDS) {
    const names = c.options.map((o) => o.name);
    t.deepEqual(Object.keys(parserOptions(c.options)), [...names, HELP_OPTION.name], c.name);
    const { values } = parseCommandLine(c.options, everyOption(c.options), c.positionals);
    for (const o of c.options) {
      const expected = o.value === undefined ? true : o.repeatable ? [`${o.name}-value`, `${o.name}-value`] : `${o.name}-value`;
      t.deepEqual((values as Record<string, unknown>)[o.name], expected, `${c.name} --${o.name}`);
      if (o.value !== undefined) t.throws(() => parseCommandLine(c.options, [`--${o.name}`], c.positionals), { instanceOf: UsageError, message: /argument missing/ }, `${c.name} --${o.name} takes a value`);
      else t.throws(() => parseCommandLine(c.options, [`--${o.name}=x`], c.positionals), { instanceOf: UsageError }, `${c.name} --${o.name} is a flag`);
    }
    t.throws(() => parseCommandLine(c.options, ['--no-such-option'], c.positionals), { instanceOf: UsageError, message: "Unknown option '--no-such-option'" });
  }
});

test('no command parses its arguments any other way than by its table', (t) => {
  const dir = join(REPO_ROOT, 'src', 'cli');
  const parsers = readdirSync(dir).filter((f) => f.endsWith('.ts') && /\bparseArgs\b/.test(readFileSync(join(dir, f), 'utf8')));
  t.deepEqual(parsers, ['command.ts']);
});

/** `zonemesh NAME --help`, checked against the command's table. */
async function checkHelp(t: import('ava').ExecutionContext, c: Command): Promise<void> {
  const r = await runCliAsync(c.name, '--help');
  t.is(r.status, EXIT.ok, r.stderr);
  t.is(r.stderr, '');
  const lines = r.stdout.split('\n');
  t.regex(lines[0]!, new RegExp(`^usage: zonemesh ${c.name}\\b.*\\[OPTIONS\\]$`));
  for (const o of [...c.options, HELP_OPTION] as OptionSpec[]) {
    const form = `--${o.name}${o.value === undefined ? '' : ` ${o.value}`}${o.repeatable ? ' ...' : ''}`;
    const tail = o.required ? '(required)' : `(default: ${o.default})`;
    const line = lines.filter((l) => new RegExp(`^ {2}(-\\w, )?${escape(form)} `).test(l));
    t.is(line.length, 1, `${c.name}: one line for --${o.name}:\n${r.stdout}`);
    t.true(line[0]?.endsWith(` ${tail}`), `${c.name} --${o.name}: ${line[0]} should end with ${tail}`);
    if (o.required) t.true(lines[0]!.includes(form), `${c.name}: the synopsis shows the required --${o.name}`);
  }
  for (const s of c.subcommands ?? []) t.true(lines.some((l) => l.startsWith(`  ${c.name} ${s.usage}  `)), `${c.name} lists ${s.usage}`);
  const exits = lines.slice(lines.indexOf('exit status:') + 1).filter(Boolean);
  t.deepEqual(exits.map((l) => Number(l.trim().split(' ')[0])), Object.values(EXIT));
  t.is((await runCliAsync('help', c.name)).stdout, r.stdout, `zonemesh help ${c.name} says the same`);
  const everything = await runCliAsync(c.name, ...everyOption(c.options), '-h');
  t.is(everything.status, EXIT.ok, `${c.name} accepts every option of its table: ${everything.stderr}`);
}

for (const c of COMMANDS) test(`zonemesh ${c.name} --help: the synopsis, every option with its default, the exit statuses`, (t) => checkHelp(t, c));

test('the subcommands of model, port and fip are listed', (t) => {
  const usages = (name: string) => COMMANDS.find((c) => c.name === name)!.subcommands!.map((s) => s.usage.split(' ')[0]);
  t.deepEqual(usages('model'), ['import', 'export']);
  t.deepEqual(usages('port'), ['add', 'move', 'rm', 'show']);
  t.deepEqual(usages('fip'), ['bind', 'unbind', 'show']);
});

test('zonemesh help, --help and -h list every command and exit 0', async (t) => {
  for (const args of [['help'], ['--help'], ['-h']]) {
    const r = await runCliAsync(...args);
    t.is(r.status, EXIT.ok, args.join(' '));
    for (const c of COMMANDS) t.regex(r.stdout, new RegExp(`^ {2}${c.name} +${escape(c.summary)}$`, 'm'));
    t.regex(r.stdout, /^exit status:\n {2}0 {2}ok\n/m);
  }
  const bare = await runCliAsync();
  t.is(bare.status, EXIT.usage, 'no command is bad usage');
  t.regex(bare.stderr, /^usage: zonemesh COMMAND/);
});

test('--version and -V print the package version, wherever they run', (t) => {
  const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  t.regex(version, /^\d+\.\d+\.\d+/);
  for (const flag of ['--version', '-V']) {
    const r = spawnSync(process.execPath, [CLI, flag], { encoding: 'utf8', cwd: tmpdir() });
    t.is(r.status, EXIT.ok);
    t.is(r.stdout, `${version}\n`);
  }
});

test('bad usage exits 2 with one line saying what and where to look', async (t) => {
  const unknownCommand = await runCliAsync('frobnicate');
  t.is(unknownCommand.status, EXIT.usage);
  oneLineHint(t, unknownCommand.stderr, /^zonemesh: unknown command 'frobnicate'/, 'zonemesh --help');

  const unknownHelp = await runCliAsync('help', 'frobnicate');
  t.is(unknownHelp.status, EXIT.usage);
  oneLineHint(t, unknownHelp.stderr, /^zonemesh help: no command named 'frobnicate'/, 'zonemesh --help');

  const unknownOption = await runCliAsync('decode', '--frobnicate', 'x.pcap');
  t.is(unknownOption.status, EXIT.usage);
  oneLineHint(t, unknownOption.stderr, /^zonemesh decode: Unknown option '--frobnicate'/, 'zonemesh decode --help');

  const missingValue = await runCliAsync('flows', '--control');
  t.is(missingValue.status, EXIT.usage);
  oneLineHint(t, missingValue.stderr, /^zonemesh flows: Option '--control <value>' argument missing/, 'zonemesh flows --help');

  const missingOperand = await runCliAsync('decode');
  t.is(missingOperand.status, EXIT.usage);
  oneLineHint(t, missingOperand.stderr, /^zonemesh decode: no FILE given/, 'zonemesh decode --help');

  const missingRequired = await runCliAsync('model', 'export');
  t.is(missingRequired.status, EXIT.usage);
  oneLineHint(t, missingRequired.stderr, /^zonemesh model: --store etcd:\/\/HOST:PORT is required/, 'zonemesh model --help');

  const malformedValue = await runCliAsync('flows', '--dpid', 'zz');
  t.is(malformedValue.status, EXIT.usage);
  oneLineHint(t, malformedValue.stderr, /^zonemesh flows: --dpid: 'zz' is not a datapath id/, 'zonemesh flows --help');

  const malformedRunFlag = await runCliAsync('run', '--workers', 'many');
  t.is(malformedRunFlag.status, EXIT.usage);
  oneLineHint(t, malformedRunFlag.stderr, /^zonemesh run: command line: workers: "many" is not a whole number/, 'zonemesh run --help');
});
