import { type Observable, combineLatest, filter, scan, shareReplay } from 'rxjs';
import type { ModelStore, NetworkModel } from '../../model';
import { MODEL_STORE } from '../../sdk/app';
import { inject, injectable } from '../../sdk/di';
import { PORT_PLACEMENT, type PortNumbers as Placement, type PortPlacement } from '../../sdk';
import { type OverlayView, buildOverlayView } from './view';

/**
 * The overlay view every overlay app compiles from, built once per model or placement change and
 * shared (bind it in singleton scope), so all apps see the same interned views.
 */
@injectable()
export class OverlayViews {
  readonly view$: Observable<OverlayView>;

  constructor(@inject(MODEL_STORE) store: ModelStore, @inject(PORT_PLACEMENT) placement: PortPlacement) {
    this.view$ = combineLatest([store.model$, placement.placement$]).pipe(
      scan<[NetworkModel, Placement], OverlayView | undefined>((previous, [model, where]) => buildOverlayView(model, where, previous), undefined),
      filter((v): v is OverlayView => v !== undefined),
      shareReplay({ bufferSize: 1, refCount: true }),
    );
  }
}
