import { BehaviorSubject, type Observable } from 'rxjs';
import { OFPPR } from '../../openflow';
import type { AppEvents } from '../../sdk/app';

/** Which OpenFlow port each interface has on each switch: dpid → interface name → ofport. */
export type Placement = ReadonlyMap<bigint, ReadonlyMap<string, number>>;

/**
 * Where VM interfaces are plugged in. Ports the model pins with `ofport` need no placement;
 * every other port gets local flows only once its interface appears here.
 */
export interface PortPlacement {
  readonly placement$: Observable<Placement>;
}

/** DI token for the PortPlacement the overlay apps share. */
export const PORT_PLACEMENT = Symbol.for('zonemesh.portPlacement');

/** Placement learned from the switches: their port lists on connect, then port-status updates. */
export class SwitchPortPlacement implements PortPlacement {
  private readonly subject = new BehaviorSubject<Placement>(new Map());
  readonly placement$ = this.subject.asObservable();

  constructor(events: Pick<AppEvents, 'switchUp$' | 'portStatus$'>) {
    events.switchUp$.subscribe((e) => this.replace(e.dpid, new Map(e.ports.map((p) => [p.name, p.portNo]))));
    events.portStatus$.subscribe((e) => {
      const { name, portNo } = e.message.desc;
      const known = this.subject.value.get(e.dpid);
      const deleted = e.message.reason === OFPPR.DELETE;
      if (deleted ? !known?.has(name) : known?.get(name) === portNo) return; // link flaps change nothing here
      const ports = new Map(known);
      if (deleted) ports.delete(name);
      else ports.set(name, portNo);
      this.replace(e.dpid, ports);
    });
  }

  private replace(dpid: bigint, ports: ReadonlyMap<string, number>): void {
    const next = new Map(this.subject.value);
    next.set(dpid, ports);
    this.subject.next(next);
  }
}
