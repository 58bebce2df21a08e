import { readFileSync } from 'node:fs';
import { Subject } from 'rxjs';
import { RunConfigError, loadRunConfig, type RunConfig } from './run-config';
import { type FileWatch, watchFile } from '../model/watch-file';

/**
 * A run config file watched for edits, as the model is (`watchFile`: read once stable, symlinks
 * followed). Every valid edit is emitted whole on `changes$`; an invalid one is reported on
 * `rejected$` and changes nothing. An empty file (an editor that truncates before it writes) is
 * skipped: the watch fires again when the write lands. What a running controller may
 * take from a new config (today: `settings`) is its caller's business. `load` reads the file into a
 * config: `zonemesh run` completes it with its command-line flags, as at startup.
 */
export class RunConfigFile {
  private readonly changeSubject = new Subject<RunConfig>();
  private readonly rejectedSubject = new Subject<RunConfigError>();
  private watcher?: FileWatch;
  private closed = false;
  readonly changes$ = this.changeSubject.asObservable();
  readonly rejected$ = this.rejectedSubject.asObservable();

  constructor(
    readonly path: string,
    private readonly load: (path: string) => RunConfig = loadRunConfig,
  ) {}

  /** Re-reads the file now. */
  reload(): void {
    if (this.closed) return;
    try {
      if (readFileSync(this.path, 'utf8').trim() === '') return;
    } catch {
      // `load` reports why the file cannot be read
    }
    let config: RunConfig;
    try {
      config = this.load(this.path);
    } catch (e) {
      if (!(e instanceof RunConfigError)) throw e;
      this.rejectedSubject.next(e);
      return;
    }
    this.changeSubject.next(config);
  }

  /** Watch the file (debounced); each burst of changes re-reads it. */
  watch(debounceMs = 100): this {
    if (this.watcher || this.closed) return this;
    this.watcher = watchFile(this.path, { debounceMs }, () => this.reload());
    return this;
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.changeSubject.complete();
    this.rejectedSubject.complete();
  }
}
