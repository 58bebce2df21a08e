#!/usr/bin/env node
import { apiCommand } from './api';
import { CliError, EXIT, UsageError, parseCommandLine, type Command } from './command';
import { decodeCommand } from './decode';
import { fipCommand } from './fip';
import { flowsCommand } from './flows';
import { commandHelp, overviewHelp, packageVersion } from './help';
import { modelCommand } from './model';
import { portCommand } from './port';
import { runCommand } from './run';
import { traceCommand } from './trace';

/** The subcommands, in the order help lists them; each lives in its own module. Exported for tests. */
export const COMMANDS: readonly Command[] = [decodeCommand, runCommand, flowsCommand, traceCommand, modelCommand, apiCommand, portCommand, fipCommand];

const commandNamed = (name: string | undefined): Command | undefined => COMMANDS.find((c) => c.name === name);

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined) {
    console.error(overviewHelp(COMMANDS));
    return EXIT.usage;
  }
  if (name === '-h' || name === '--help' || (name === 'help' && args.length === 0)) {
    console.log(overviewHelp(COMMANDS));
    return EXIT.ok;
  }
  if (name === '-V' || name === '--version') {
    console.log(packageVersion());
    return EXIT.ok;
  }
  if (name === 'help') {
    const command = commandNamed(args[0]);
    if (command === undefined || args.length > 1) return usageError('zonemesh help', `no command named '${args.join(' ')}'`, 'zonemesh --help');
    console.log(commandHelp(command));
    return EXIT.ok;
  }
  const command = commandNamed(name);
  if (!command) return usageError('zonemesh', `unknown command '${name}'`, 'zonemesh --help');
  try {
    const line = parseCommandLine(command.options, args, command.positionals);
    if (line.values.help) {
      console.log(commandHelp(command));
      return EXIT.ok;
    }
    return await command.run(line);
  } catch (e) {
    if (e instanceof UsageError) return usageError(`zonemesh ${name}`, e.message, `zonemesh ${name} --help`);
    // One line, never a stack trace: the user needs the reason, not our internals.
    const reason = e instanceof CliError ? e.message : `internal error: ${(e as Error)?.message ?? String(e)}`;
    console.error(`zonemesh ${name}: ${reason}`);
    return EXIT.failed;
  }
}

/** One line on stderr: what was wrong, and where to look. */
function usageError(who: string, problem: string, help: string): number {
  console.error(`${who}: ${problem}; try '${help}'`);
  return EXIT.usage;
}

if (require.main === module) {
  // `zonemesh decode big.pcap | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => process.exit(e.code === 'EPIPE' ? EXIT.ok : EXIT.failed));
  void main(process.argv.slice(2)).then((status) => {
    process.exitCode = status;
  });
}
