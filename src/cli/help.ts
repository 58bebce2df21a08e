import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EXIT, EXIT_MEANINGS, HELP_OPTION, type Command, type ExitName, type OptionSpec } from './command';

/** The version in the package.json above this module (not the cwd's): the installed zonemesh's own. */
export function packageVersion(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = up;
  }
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

/** `--name VALUE ...` as the option list and the synopsis show it */
function optionForm(o: OptionSpec): string {
  const long = `--${o.name}${o.value === undefined ? '' : ` ${o.value}`}${o.repeatable ? ' ...' : ''}`;
  return o.short === undefined ? long : `-${o.short}, ${long}`;
}

/** Rows of two columns, the first padded to its widest entry. */
function columns(rows: ReadonlyArray<readonly [string, string]>): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`);
}

function exitLines(exits: Partial<Record<ExitName, string>> = {}): string[] {
  return columns((Object.keys(EXIT) as ExitName[]).map((name) => [String(EXIT[name]), exits[name] ?? EXIT_MEANINGS[name]]));
}

/** where help wraps prose (the option lists stay one line per option) */
const WIDTH = 100;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const word of text.split(' ')) {
    const last = lines.at(-1);
    if (last !== undefined && last.length + 1 + word.length <= width) lines[lines.length - 1] = `${last} ${word}`;
    else lines.push(word);
  }
  return lines;
}

/** `zonemesh NAME OPERANDS --required VALUE [OPTIONS]` */
export function synopsis(c: Command): string {
  const required = c.options.filter((o) => o.required).map(optionForm);
  return ['zonemesh', c.name, c.operands, ...required, '[OPTIONS]'].filter(Boolean).join(' ');
}

/** `zonemesh help COMMAND`: synopsis, description, subcommands, one option per line with its default, exit statuses. */
export function commandHelp(c: Command): string {
  const options = [...c.options, HELP_OPTION].map((o: OptionSpec) => [optionForm(o), `${o.description} (${o.required ? 'required' : `default: ${o.default}`})`] as const);
  return [
    `usage: ${synopsis(c)}`,
    '',
    ...wrap(c.description, WIDTH),
    ...(c.subcommands ? ['', 'subcommands:', ...columns(c.subcommands.map((s) => [`${c.name} ${s.usage}`, s.summary]))] : []),
    '',
    'options:',
    ...columns(options),
    '',
    'exit status:',
    ...exitLines(c.exits),
  ].join('\n');
}

/** `zonemesh help`: the commands, one line each. */
export function overviewHelp(commands: readonly Command[]): string {
  return [
    'usage: zonemesh COMMAND [OPTIONS]',
    '       zonemesh help [COMMAND]     (or zonemesh COMMAND --help: its options and their defaults)',
    '       zonemesh --version',
    '',
    'commands:',
    ...columns(commands.map((c) => [c.name, c.summary])),
    '',
    'options:',
    ...columns([
      ['-h, --help', 'prints this help and exits'],
      ['-V, --version', 'prints the version and exits'],
    ]),
    '',
    'exit status:',
    ...exitLines(),
  ].join('\n');
}
