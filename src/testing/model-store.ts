import { BehaviorSubject, Subject } from 'rxjs';
import { ModelValidationError, internModel, validateModel, type ModelStore, type NetworkModel } from '../model';

/**
 * A model store a test drives: `set` applies a model as an accepted edit would, `setDocument`
 * validates a document as a model file's content (YAML's parsed form) and applies it as the file
 * store would (its unchanged objects the current model's) or reports it on `rejected$` as a
 * refused edit, leaving the model as it was.
 */
export class TestModelStore implements ModelStore {
  private readonly subject: BehaviorSubject<NetworkModel>;
  private readonly rejections = new Subject<ModelValidationError>();
  readonly model$;
  readonly rejected$ = this.rejections.asObservable();

  /** `initial`: a model, or a document validated as `setDocument` does (throws ModelValidationError) */
  constructor(initial: NetworkModel | object) {
    this.subject = new BehaviorSubject(isModel(initial) ? initial : validateModel(initial, 'test model'));
    this.model$ = this.subject.asObservable();
  }

  current(): NetworkModel {
    return this.subject.value;
  }

  set(model: NetworkModel): void {
    this.subject.next(model);
  }

  /** true when the document was a valid model and is now the current one */
  setDocument(doc: unknown, source = 'test model'): boolean {
    try {
      this.subject.next(internModel(validateModel(doc, source), this.subject.value));
      return true;
    } catch (e) {
      if (!(e instanceof ModelValidationError)) throw e;
      this.rejections.next(e);
      return false;
    }
  }
}

/** a validated model has its derived fields (a subnet's routerMac, a hypervisor's bigint datapathId) */
function isModel(value: object): value is NetworkModel {
  const hv = (value as Partial<NetworkModel>).hypervisors;
  return Array.isArray(hv) && hv.every((h) => typeof h?.datapathId === 'bigint');
}
