import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Exit statuses every subcommand shares. */
export const EXIT = { ok: 0, problems: 1, usage: 2, failed: 3 } as const;
export type ExitName = keyof typeof EXIT;

/** What each status means, unless a command says more precisely (Command.exits). */
export const EXIT_MEANINGS: Record<ExitName, string> = {
  ok: 'ok',
  problems: 'the input had problems (reported)',
  usage: 'bad usage: an unknown command or option, a missing or malformed value',
  failed: 'the command failed',
};

/** The command line was wrong: the message says what to write instead. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The command could not do its job (unreadable or unrecognised input): one line for stderr. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

interface OptionBase {
  /** the long name, without '--' */
  readonly name: string;
  readonly short?: string;
  /** the value's placeholder in help (FILE, N); an option without one is a flag */
  readonly value?: string;
  readonly description: string;
  /** may be given more than once; the values are collected in order */
  readonly repeatable?: boolean;
}

/**
 * One command-line option. The parser's configuration and the help line are both generated from it,
 * so no option can be parsed but undocumented, or documented but not parsed.
 * `default` is what applies when the option is absent, as help shows it.
 */
export type OptionSpec = OptionBase & ({ readonly default: string; readonly required?: never } | { readonly required: true; readonly default?: never });

/** Every command takes it; main.ts answers it before the command runs. */
export const HELP_OPTION = { name: 'help', short: 'h', description: 'prints this help and exits', default: 'off' } as const satisfies OptionSpec;

type OptionValue<O> = O extends { value: string } ? (O extends { repeatable: true } ? string[] : string) : boolean;
/** The parsed values of a table declared `as const`: typed by each option's value and repeatability. */
export type OptionValues<T extends readonly OptionSpec[]> = { [O in T[number] as O['name']]?: OptionValue<O> };

export interface CommandLine<T extends readonly OptionSpec[]> {
  values: OptionValues<T> & { help?: boolean };
  positionals: string[];
  /** as given, for a command that hands them on (run to its workers) */
  args: readonly string[];
}

/** The node:util parseArgs configuration a table stands for, with --help added. */
export function parserOptions(table: readonly OptionSpec[]): NonNullable<ParseArgsConfig['options']> {
  return Object.fromEntries(
    [...table, HELP_OPTION].map((o: OptionSpec) => [
      o.name,
      { type: o.value === undefined ? 'boolean' : 'string', ...(o.short !== undefined && { short: o.short }), ...(o.repeatable && { multiple: true }) },
    ]),
  );
}

/**
 * Parses `args` by `table`. node:util parseArgs (built in, strict, typed) does the parsing: with the
 * table generating both its configuration and the help, commander or yargs would add a dependency
 * and a second way to declare options without adding anything these commands need.
 */
export function parseCommandLine<const T extends readonly OptionSpec[]>(table: T, args: readonly string[], allowPositionals: boolean): CommandLine<T> {
  try {
    const { values, positionals } = parseArgs({ args: [...args], options: parserOptions(table), allowPositionals, strict: true });
    return { values: values as CommandLine<T>['values'], positionals, args };
  } catch (e) {
    // parseArgs appends advice on positionals that start with '-'; its first sentence says it all
    throw new UsageError((e as Error).message.split('. ')[0]!);
  }
}

/** A subcommand form such as `model import FILE`, for help. */
export interface Subcommand {
  /** its name and operands: 'import FILE' */
  readonly usage: string;
  readonly summary: string;
}

/** What every zonemesh subcommand provides to the dispatcher in main.ts, which parses by `options` and answers --help. */
export interface Command {
  readonly name: string;
  /** what follows the name in the synopsis, before the options: 'FILE', 'add|move|rm|show NAME' */
  readonly operands?: string;
  /** one line, for `zonemesh help` */
  readonly summary: string;
  /** a few sentences, for `zonemesh help COMMAND` */
  readonly description: string;
  readonly subcommands?: readonly Subcommand[];
  readonly options: readonly OptionSpec[];
  /** whether it takes operands; the others refuse any */
  readonly positionals: boolean;
  /** what a status means for this command, where it says more than EXIT_MEANINGS */
  readonly exits?: Partial<Record<ExitName, string>>;
  /** resolves with the exit status */
  run(line: CommandLine<readonly OptionSpec[]>): Promise<number>;
}

/** A Command whose `run` sees its options typed by its table (declared `as const`). */
export function defineCommand<const T extends readonly OptionSpec[]>(spec: Omit<Command, 'options' | 'run'> & { options: T; run(line: CommandLine<T>): Promise<number> }): Command {
  // main.ts parses by this same table before it calls run
  return spec as unknown as Command;
}
