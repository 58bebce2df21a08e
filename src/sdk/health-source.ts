import { Subject, type Observable } from 'rxjs';

/** What a health-measuring app publishes and others read: tunnels (TUNNEL_HEALTH), backends (BACKEND_HEALTH). */
export interface HealthSource<T> {
  /** whether a measuring app runs and publishes here: an inactive source has no measurements */
  readonly active: boolean;
  readonly health$: Observable<T>;
  /** the latest measurement of everything measured */
  snapshot(): readonly T[];
}

/**
 * The board a measuring app publishes to and readers hold: the latest measurement per key, and each
 * one as it comes. Each health kind subclasses it with its key (TUNNEL_HEALTH, BACKEND_HEALTH).
 */
export class HealthBoard<T> implements HealthSource<T> {
  private readonly latest = new Map<string, T>();
  private readonly subject = new Subject<T>();
  readonly health$ = this.subject.asObservable();
  /** set by the measuring app while it runs */
  active = false;

  constructor(private readonly keyOf: (health: T) => string) {}

  snapshot(): readonly T[] {
    return [...this.latest.values()];
  }

  publish(health: T): void {
    this.latest.set(this.keyOf(health), health);
    this.subject.next(health);
  }

  /** What is no longer measured (the model dropped it) leaves the snapshot. */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.latest.keys()) if (!keys.has(key)) this.latest.delete(key);
  }
}
