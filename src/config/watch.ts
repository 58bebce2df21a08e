import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { Subject } from 'rxjs';
import { RunConfigError, loadRunConfig, type RunConfig } from './run-config';

/**
 * A run config file watched for edits. Every valid edit is emitted whole on `changes$`; an invalid
 * one is reported on `rejected$` and changes nothing. An empty file (an editor that truncates before
 * it writes) is skipped: the watch fires again when the write lands. What a running controller may
 * take from a new config (today: `settings`) is its caller's business.
 */
export class RunConfigFile {
  private readonly changeSubject = new Subject<RunConfig>();
  private readonly rejectedSubject = new Subject<RunConfigError>();
  private watcher?: FSWatcher;
  private debounce?: NodeJS.Timeout;
  private closed = false;
  readonly changes$ = this.changeSubject.asObservable();
  readonly rejected$ = this.rejectedSubject.asObservable();

  constructor(readonly path: string) {}

  /** Re-reads the file now. */
  reload(): void {
    if (this.closed) return;
    try {
      if (readFileSync(this.path, 'utf8').trim() === '') return;
    } catch {
      // loadRunConfig reports why the file cannot be read
    }
    let config: RunConfig;
    try {
      config = loadRunConfig(this.path);
    } catch (e) {
      if (!(e instanceof RunConfigError)) throw e;
      this.rejectedSubject.next(e);
      return;
    }
    this.changeSubject.next(config);
  }

  /** Watch the file's directory (editors replace files by rename), debounced. */
  watch(debounceMs = 100): this {
    if (this.watcher || this.closed) return this;
    const name = basename(this.path);
    this.watcher = watch(dirname(this.path), (_event, file) => {
      if (file !== null && file !== name) return;
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => this.reload(), debounceMs);
    });
    return this;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.debounce);
    this.watcher?.close();
    this.changeSubject.complete();
    this.rejectedSubject.complete();
  }
}
