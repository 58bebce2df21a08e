#!/usr/bin/env node
import { apiCommand } from './api';
import { CliError, EXIT, UsageError, type Command } from './command';
import { decodeCommand } from './decode';
import { flowsCommand } from './flows';
import { modelCommand } from './model';
import { portCommand } from './port';
import { runCommand } from './run';

/** Subcommands by name; each lives in its own module. */
const commands: Record<string, Command> = {
  decode: decodeCommand,
  run: runCommand,
  flows: flowsCommand,
  model: modelCommand,
  api: apiCommand,
  port: portCommand,
};

function help(): string {
  const lines = Object.values(commands).map((c) => `  zonemesh ${c.usage}\n      ${c.summary}`);
  return ['usage:', ...lines, '', 'exit status: 0 ok, 1 the input had problems (reported), 2 bad usage, 3 the command failed'].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    console.log(help());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = commands[name];
  if (!command) {
    console.error(`zonemesh: unknown command '${name}'; try 'zonemesh --help'`);
    return EXIT.usage;
  }
  try {
    return await command.run(args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`zonemesh ${name}: ${e.message}\nusage: zonemesh ${command.usage}`);
      return EXIT.usage;
    }
    // One line, never a stack trace: the user needs the reason, not our internals.
    const reason = e instanceof CliError ? e.message : `internal error: ${(e as Error)?.message ?? String(e)}`;
    console.error(`zonemesh ${name}: ${reason}`);
    return EXIT.failed;
  }
}

if (require.main === module) {
  // `zonemesh decode big.pcap | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => process.exit(e.code === 'EPIPE' ? EXIT.ok : EXIT.failed));
  void main(process.argv.slice(2)).then((status) => {
    process.exitCode = status;
  });
}
