import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';

/** A debounced watch of one file, closed with `close()`. */
export interface FileWatch {
  close(): void;
}

/**
 * Calls `onChange` once per burst of changes to `path`. Watches the directory, because editors
 * replace files by rename, which ends a watch on the file itself.
 */
export function watchFile(path: string, debounceMs: number, onChange: () => void): FileWatch {
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  const watcher: FSWatcher = watch(dirname(path), (_event, file) => {
    if (file !== null && file !== name) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
