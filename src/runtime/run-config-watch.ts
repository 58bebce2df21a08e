import { FileReadError, WatchedDocument } from '../model/watch-file';
import { RunConfigError, parseRunConfig, type RunConfig } from './run-config';

/**
 * A run config file watched for edits, as the model is (`WatchedDocument`: read once stable,
 * symlinks followed). Every valid edit is emitted whole on `changes$`; an invalid one (an empty
 * file too) is reported on `rejected$` and changes nothing. What a running controller may take
 * from a new config (today: `settings`) is its caller's business. `parse` reads the file's text
 * into a config: `zonemesh run` completes it with its command-line flags, as at startup.
 */
export class RunConfigFile {
  private readonly file: WatchedDocument<RunConfig, RunConfigError>;
  readonly changes$;
  readonly rejected$;

  constructor(
    readonly path: string,
    parse: (text: string, path: string) => RunConfig = parseRunConfig,
  ) {
    this.file = new WatchedDocument(path, {
      parse: (bytes) => parse(bytes.toString('utf8'), path),
      rejection: (e) =>
        e instanceof RunConfigError ? e : e instanceof FileReadError ? new RunConfigError(path, [{ path: '(file)', problem: e.problem }]) : undefined,
    });
    this.changes$ = this.file.accepted$;
    this.rejected$ = this.file.rejected$;
  }

  /** Re-reads the file now. */
  reload(): Promise<boolean> {
    return this.file.reload();
  }

  /** Watch the file (debounced); each stable change is read again. */
  watch(debounceMs = 100): this {
    this.file.watch(debounceMs);
    return this;
  }

  close(): void {
    this.file.close();
  }
}
