import { BehaviorSubject, type Observable } from 'rxjs';
import { ModelValidationError } from './errors';
import { modelKeys } from './intern';
import { parseModel, parseModelInWorker } from './parse';
import type { Hypervisor, HypervisorAccess, NetworkModel } from './types';
import { FileReadError, FileTooLargeError, WatchedDocument, readFileCapped } from './watch-file';

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

/**
 * The default cap on a model file's size. Parsed YAML takes about 90 times its size in memory and
 * 10,000 ports take 1.1 MiB (BENCHMARKS.md, model load): the cap lets about 70,000 ports through,
 * seven times that, while a parse stays under a gigabyte. `maxBytes` raises it.
 */
export const DEFAULT_MODEL_MAX_BYTES = 8 * 1024 * 1024;

/** The heap a reload's parse may take: what a file of the cap's size needs (see above), with a margin. */
function parseHeapMb(maxBytes: number): number {
  return Math.ceil(64 + (128 * maxBytes) / (1024 * 1024));
}

/** A model file that cannot be read, as the model error users see: the cap and how to raise it named. */
function modelReadError(e: FileReadError): ModelValidationError {
  const raise = e instanceof FileTooLargeError ? ' (raise it with modelMaxBytes in the run config, or --model-max-bytes)' : '';
  return new ModelValidationError(e.path, [{ path: '(file)', problem: `${e.problem}${raise}` }]);
}

function readModelFile(path: string, maxBytes: number): Buffer {
  try {
    return readFileCapped(path, maxBytes);
  } catch (e) {
    throw e instanceof FileReadError ? modelReadError(e) : e;
  }
}

/** Reads and validates a YAML or JSON model document, here on the calling thread. Throws ModelValidationError. */
export function loadModelFile(path: string, maxBytes = DEFAULT_MODEL_MAX_BYTES): NetworkModel {
  return parseModel(readModelFile(path, maxBytes).toString('utf8'), path);
}

/** How many objects of each kind a model has, for logs. */
export function modelSize(model: NetworkModel): Record<keyof NetworkModel, number> {
  const { zones, hypervisors, vpcs, subnets, ports, acls, externalNetworks, floatingIps, egress, loadBalancers } = model;
  return {
    zones: zones.length,
    hypervisors: hypervisors.length,
    vpcs: vpcs.length,
    subnets: subnets.length,
    ports: ports.length,
    acls: acls.length,
    externalNetworks: externalNetworks.length,
    floatingIps: floatingIps.length,
    egress: egress.length,
    loadBalancers: loadBalancers.length,
  };
}

/** per access settings, each hypervisor as read → the same with them merged in */
const mergedOf = new WeakMap<object, WeakMap<Hypervisor, Hypervisor>>();

/**
 * The model with each hypervisor's access settings merged in (those of hypervisors the model does
 * not have wait until it does). Hypervisors that get nothing keep their object; one that does gets
 * the same merged object in every version that has its very object as read (a store's unchanged
 * one), so versions still compare by identity.
 */
export function withHypervisorAccess(model: NetworkModel, access: Readonly<Record<string, HypervisorAccess>> | undefined): NetworkModel {
  if (!access || !model.hypervisors.some((h) => Object.hasOwn(access, h.name))) return model;
  let merged = mergedOf.get(access);
  if (!merged) mergedOf.set(access, (merged = new WeakMap()));
  const withAccess = (h: Hypervisor) => {
    let m = merged!.get(h);
    if (!m) merged!.set(h, (m = { ...h, ...access[h.name] }));
    return m;
  };
  return { ...model, hypervisors: model.hypervisors.map((h) => (Object.hasOwn(access, h.name) ? withAccess(h) : h)) };
}

export interface FileModelStoreOptions {
  /** hypervisor name → how this deployment reaches it, merged into every version of the model read */
  hypervisors?: Readonly<Record<string, HypervisorAccess>>;
  /** the largest model file read, in bytes (default DEFAULT_MODEL_MAX_BYTES); a larger one is refused, naming the cap */
  maxBytes?: number;
  /** how long an edited file must stay unchanged before it is applied (default 250 ms; see `watchFile`) */
  settleMs?: number;
}

/**
 * A model file, validated on load and on every change; invalid edits are rejected whole. The
 * first load (at startup, before any switch is served) parses on the calling thread; every reload
 * parses in a worker thread with a capped heap, so a large edit neither stalls the sessions nor
 * takes the process's memory. Each version is interned against the one before (internModel, the
 * matching done in the worker): every unchanged object is the previous version's very object.
 */
export class FileModelStore implements ModelStore {
  private readonly subject: BehaviorSubject<NetworkModel>;
  private readonly file: WatchedDocument<NetworkModel, ModelValidationError>;
  /** the last version accepted, as read (before access settings are merged): the next one is matched against it */
  private read: NetworkModel;
  readonly model$: Observable<NetworkModel>;
  readonly rejected$: Observable<ModelValidationError>;

  /** throws ModelValidationError when the initial file is invalid */
  constructor(
    readonly path: string,
    options: FileModelStoreOptions = {},
  ) {
    const maxBytes = options.maxBytes ?? DEFAULT_MODEL_MAX_BYTES;
    const loaded = readModelFile(path, maxBytes);
    this.read = parseModel(loaded.toString('utf8'), path);
    // at startup, before any switch is served: the first reload then has the keys to match against
    modelKeys(this.read);
    this.subject = new BehaviorSubject(withHypervisorAccess(this.read, options.hypervisors));
    this.model$ = this.subject.asObservable();
    this.file = new WatchedDocument(path, {
      parse: (bytes, signal) => parseModelInWorker(bytes, path, parseHeapMb(maxBytes), signal, this.read),
      rejection: (e) => (e instanceof FileReadError ? modelReadError(e) : e instanceof ModelValidationError ? e : undefined),
      maxBytes,
      current: loaded,
      ...(options.settleMs !== undefined && { settleMs: options.settleMs }),
    });
    this.file.accepted$.subscribe((model) => {
      this.read = model;
      this.subject.next(withHypervisorAccess(model, options.hypervisors));
    });
    this.rejected$ = this.file.rejected$;
  }

  current(): NetworkModel {
    return this.subject.value;
  }

  /** Re-reads the file now, after any reload under way; resolves to whether the new model was accepted. */
  reload(): Promise<boolean> {
    return this.file.reload();
  }

  /** Watch the file (see `watchFile`: debounced, applied once stable, symlinks followed). */
  watch(debounceMs = 100): this {
    this.file.watch(debounceMs);
    return this;
  }

  close(): void {
    this.file.close();
    this.subject.complete();
  }
}
