/** What every zonemesh subcommand provides to the dispatcher in main.ts. */
export interface Command {
  usage: string;
  summary: string;
  /** resolves with the exit status */
  run(args: string[]): Promise<number>;
}

/** Exit statuses every subcommand shares. */
export const EXIT = { ok: 0, problems: 1, usage: 2, failed: 3 } as const;

/** The command line was wrong: the message says what to write instead. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The command could not do its job (unreadable or unrecognised input): one line for stderr. */
export class CliError extends Error {
  override readonly name = 'CliError';
}
