import { readFileSync } from 'node:fs';
import { BehaviorSubject, type Observable, Subject } from 'rxjs';
import { parse as parseYaml } from 'yaml';
import { ModelValidationError } from './errors';
import type { HypervisorAccess, NetworkModel } from './types';
import { validateModel } from './validate';
import { type FileWatch, watchFile } from './watch-file';

/**
 * Where the desired network comes from. The file store is the default; a distributed store
 * only has to offer the same two streams.
 */
export interface ModelStore {
  /** the current valid model, then every accepted change */
  readonly model$: Observable<NetworkModel>;
  /** rejected changes; the running model stays as it was */
  readonly rejected$: Observable<ModelValidationError>;
  current(): NetworkModel;
}

/** Reads and validates a YAML or JSON model document. */
export function loadModelFile(path: string): NetworkModel {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ModelValidationError(path, [{ path: '(file)', problem: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }]);
  }
  let doc: unknown;
  try {
    doc = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ModelValidationError(path, [{ path: '(syntax)', problem: (e as Error).message.split('\n')[0]! }]);
  }
  return validateModel(doc, path);
}

/**
 * The model with each hypervisor's access settings merged in (those of hypervisors the model does
 * not have wait until it does). Hypervisors that get nothing keep their object.
 */
export function withHypervisorAccess(model: NetworkModel, access: Readonly<Record<string, HypervisorAccess>> | undefined): NetworkModel {
  if (!access || !model.hypervisors.some((h) => Object.hasOwn(access, h.name))) return model;
  return { ...model, hypervisors: model.hypervisors.map((h) => (Object.hasOwn(access, h.name) ? { ...h, ...access[h.name] } : h)) };
}

export interface FileModelStoreOptions {
  /** hypervisor name → how this deployment reaches it, merged into every version of the model read */
  hypervisors?: Readonly<Record<string, HypervisorAccess>>;
}

/** A model file, validated on load and on every change; invalid edits are rejected whole. */
export class FileModelStore implements ModelStore {
  private readonly subject: BehaviorSubject<NetworkModel>;
  private readonly rejectedSubject = new Subject<ModelValidationError>();
  private watcher?: FileWatch;
  readonly model$: Observable<NetworkModel>;
  readonly rejected$ = this.rejectedSubject.asObservable();

  /** throws ModelValidationError when the initial file is invalid */
  constructor(
    readonly path: string,
    private readonly options: FileModelStoreOptions = {},
  ) {
    this.subject = new BehaviorSubject(this.load());
    this.model$ = this.subject.asObservable();
  }

  current(): NetworkModel {
    return this.subject.value;
  }

  private load(): NetworkModel {
    return withHypervisorAccess(loadModelFile(this.path), this.options.hypervisors);
  }

  /** Re-reads the file now; returns whether the new model was accepted. */
  reload(): boolean {
    try {
      this.subject.next(this.load());
      return true;
    } catch (e) {
      if (!(e instanceof ModelValidationError)) throw e;
      this.rejectedSubject.next(e);
      return false;
    }
  }

  /** Watch the file (debounced); each burst of changes re-reads it. */
  watch(debounceMs = 100): this {
    if (this.watcher) return this;
    this.watcher = watchFile(this.path, debounceMs, () => this.reload());
    return this;
  }

  close(): void {
    this.watcher?.close();
    this.subject.complete();
    this.rejectedSubject.complete();
  }
}
