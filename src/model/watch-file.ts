import { type FSWatcher, closeSync, fstatSync, lstatSync, openSync, readSync, readlinkSync, realpathSync, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { Subject } from 'rxjs';

/** A file that could not be read whole: missing, unreadable, or larger than its reader allows. */
export class FileReadError extends Error {
  override readonly name = 'FileReadError';
  constructor(
    readonly path: string,
    /** what went wrong, without the path: 'cannot read: ENOENT' */
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`);
  }
}

/** A file larger than the cap its reader was given. */
export class FileTooLargeError extends FileReadError {
  constructor(
    path: string,
    readonly size: number,
    readonly maxBytes: number,
  ) {
    super(path, `is ${formatBytes(size)}, over the limit of ${formatBytes(maxBytes)}`);
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const [value, unit] = n < 1024 ** 2 ? [n / 1024, 'KiB'] : n < 1024 ** 3 ? [n / 1024 ** 2, 'MiB'] : [n / 1024 ** 3, 'GiB'];
  return `${Number(value.toFixed(1))} ${unit}`;
}

/**
 * Reads a whole file, refusing one over `maxBytes` before reading it (and one that grows past the
 * cap while being read). Throws FileReadError.
 */
export function readFileCapped(path: string, maxBytes = Infinity): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new FileReadError(path, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    const size = fstatSync(fd).size;
    if (size > maxBytes) throw new FileTooLargeError(path, size, maxBytes);
    // to the end, which may have moved since the stat; one byte past the cap is enough to refuse it
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(Math.max(size - length, 64 * 1024), maxBytes + 1 - length));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) return Buffer.concat(chunks, length);
      chunks.push(chunk.subarray(0, n));
      length += n;
      if (length > maxBytes) throw new FileTooLargeError(path, length, maxBytes);
    }
  } catch (e) {
    if (e instanceof FileReadError) throw e;
    throw new FileReadError(path, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  } finally {
    closeSync(fd);
  }
}

/** What a watch hands over: the file's bytes, or why it could not be read. */
export type FileContent = Buffer | FileReadError;

function sameContent(a: FileContent | undefined, b: FileContent): boolean {
  if (a instanceof FileReadError || b instanceof FileReadError) return a instanceof FileReadError && b instanceof FileReadError && a.problem === b.problem;
  return a !== undefined && a.equals(b);
}

export interface WatchFileOptions {
  /** quiet time after the last change event before the file is read (default 100 ms) */
  debounceMs?: number;
  /**
   * a change is handed over only once two reads this far apart agree (default 250 ms): a file
   * still being written (even one that is valid half-way) differs between them
   */
  settleMs?: number;
  /** reads refuse a file larger than this (FileTooLargeError); default no cap */
  maxBytes?: number;
  /** what the caller has already, so that reading it again hands nothing over */
  current?: FileContent;
}

/** A watch of one file, closed with `close()`. */
export interface FileWatch {
  close(): void;
}

/**
 * The directories whose entries decide what `path` reads, keyed by their real path (what a watch
 * follows), each with the entry names that matter: the file, every symlink on the way to it, and
 * every symlinked directory above one of them (the `..data` a Kubernetes ConfigMap volume swaps).
 */
function watchPoints(path: string): Map<string, Set<string>> {
  const points = new Map<string, Set<string>>();
  const isSymlink = (p: string) => {
    try {
      return lstatSync(p).isSymbolicLink();
    } catch {
      return false;
    }
  };
  const add = (entry: string) => {
    let dir: string;
    try {
      dir = realpathSync(dirname(entry));
    } catch {
      return; // the directory is gone: the watch above it sees it come back
    }
    const names = points.get(dir) ?? new Set<string>();
    points.set(dir, names.add(basename(entry)));
  };
  let p = resolve(path);
  // 40: the kernel's own limit on symlinks followed in one lookup
  for (let hop = 0; hop < 40; hop++) {
    add(p);
    for (let d = dirname(p); d !== dirname(d); d = dirname(d)) if (isSymlink(d)) add(d);
    if (!isSymlink(p)) break;
    try {
      p = resolve(dirname(p), readlinkSync(p));
    } catch {
      break; // swapped while we looked: the watch of its directory sees the swap
    }
  }
  return points;
}

/**
 * Hands `onChange` each new content of `path` once it is stable: change events are debounced, then
 * the file is read until two reads `settleMs` apart agree, and handed over if it differs from the
 * last content handed over. One change is handled at a time (`onChange`'s promise is awaited);
 * events meanwhile lead to one more round. Watches directories, not the file: editors replace
 * files by rename, which ends a watch on the file itself; and follows symlinks, so a swapped
 * symlink on the way (Kubernetes ConfigMaps swap `..data`) counts as a change.
 */
export function watchFile(path: string, options: WatchFileOptions, onChange: (content: FileContent) => void | Promise<void>): FileWatch {
  const { debounceMs = 100, settleMs = 250, maxBytes } = options;
  let last = options.current;
  let names = new Map<string, Set<string>>();
  const watchers = new Map<string, FSWatcher>();
  let debounce: NodeJS.Timeout | undefined;
  let settle: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  let closed = false;

  const changed = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void handle(), debounceMs);
  };
  const rewatch = () => {
    names = watchPoints(path);
    for (const [dir, watcher] of watchers) {
      if (names.has(dir)) continue;
      watcher.close();
      watchers.delete(dir);
    }
    for (const dir of names.keys()) {
      if (watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, (_event, file) => {
          if (file === null || names.get(dir)?.has(file)) changed();
        });
        // a watched directory removed or unreadable: watch again from where the path leads now
        watcher.on('error', () => {
          watcher.close();
          watchers.delete(dir);
          changed();
        });
        watchers.set(dir, watcher);
      } catch {
        // gone between resolving and watching: the watch of its parent sees what replaces it
      }
    }
  };
  const read = (): FileContent => {
    try {
      return readFileCapped(path, maxBytes);
    } catch (e) {
      if (e instanceof FileReadError) return e;
      throw e;
    }
  };
  const readStable = async (): Promise<FileContent | undefined> => {
    let previous = read();
    for (;;) {
      await new Promise((done) => (settle = setTimeout(done, settleMs)));
      if (closed) return undefined;
      const now = read();
      if (sameContent(previous, now)) return now;
      previous = now;
    }
  };
  const handle = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        rewatch();
        const content = await readStable();
        if (content === undefined || closed) return;
        if (sameContent(last, content)) continue;
        last = content;
        await onChange(content);
      } while (again && !closed);
    } finally {
      running = false;
    }
  };

  rewatch();
  return {
    close() {
      closed = true;
      clearTimeout(debounce);
      clearTimeout(settle);
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}

export interface WatchedDocumentOptions<T, E extends Error> {
  /** the document in `content`; throws what `rejection` turns into a typed refusal */
  parse(content: Buffer, signal: AbortSignal): T | Promise<T>;
  /** the refusal for an error `parse` threw or a FileReadError; undefined for anything else, which is a bug and thrown on */
  rejection(error: unknown): E | undefined;
  /** the largest file read (default no cap) */
  maxBytes?: number;
  /** see WatchFileOptions.settleMs */
  settleMs?: number;
  /** what the owner has already read: the watch hands over only content that differs */
  current?: Buffer;
}

/**
 * A file that holds a document (the model, the run config): each stable new content is parsed and
 * emitted whole on `accepted$`; content that cannot be read or parsed is emitted on `rejected$`
 * and changes nothing. Reloads run one at a time, in order.
 */
export class WatchedDocument<T, E extends Error> {
  private readonly acceptedSubject = new Subject<T>();
  private readonly rejectedSubject = new Subject<E>();
  private reloads: Promise<unknown> = Promise.resolve();
  private readonly closing = new AbortController();
  private watcher?: FileWatch;
  readonly accepted$ = this.acceptedSubject.asObservable();
  readonly rejected$ = this.rejectedSubject.asObservable();

  constructor(
    readonly path: string,
    private readonly options: WatchedDocumentOptions<T, E>,
  ) {}

  /** Re-reads the file now, after any reload under way; resolves to whether its content was accepted. */
  reload(): Promise<boolean> {
    return this.apply(() => readFileCapped(this.path, this.options.maxBytes));
  }

  private apply(content: () => FileContent): Promise<boolean> {
    const done = this.reloads.then(async () => {
      if (this.closing.signal.aborted) return false;
      let document: T;
      try {
        const bytes = content();
        if (bytes instanceof FileReadError) throw bytes;
        document = await this.options.parse(bytes, this.closing.signal);
      } catch (e) {
        const refusal = this.options.rejection(e);
        if (refusal === undefined) throw e;
        if (!this.closing.signal.aborted) this.rejectedSubject.next(refusal);
        return false;
      }
      if (this.closing.signal.aborted) return false;
      this.acceptedSubject.next(document);
      return true;
    });
    this.reloads = done.catch(() => undefined);
    return done;
  }

  /** Watch the file (see `watchFile`: debounced, applied once stable, symlinks followed). */
  watch(debounceMs = 100): this {
    if (this.watcher || this.closing.signal.aborted) return this;
    const { settleMs, maxBytes, current } = this.options;
    this.watcher = watchFile(
      this.path,
      { debounceMs, ...(settleMs !== undefined && { settleMs }), ...(maxBytes !== undefined && { maxBytes }), ...(current && { current }) },
      async (content) => void (await this.apply(() => content)),
    );
    return this;
  }

  close(): void {
    this.closing.abort();
    this.watcher?.close();
    this.acceptedSubject.complete();
    this.rejectedSubject.complete();
  }
}
