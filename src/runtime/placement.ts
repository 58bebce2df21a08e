import { BehaviorSubject } from 'rxjs';
import { OFPPR } from '../openflow';
import type { AppEvents } from '../sdk/app';
import type { PortNumbers, PortPlacement } from '../sdk/placement';

/** Port numbers learned from the switches: their port lists on connect, then port-status updates. */
export class SwitchPortPlacement implements PortPlacement {
  private readonly subject = new BehaviorSubject<PortNumbers>(new Map());
  readonly placement$ = this.subject.asObservable();

  constructor(events: Pick<AppEvents, 'switchUp$' | 'portStatus$'>) {
    events.switchUp$.subscribe((e) => {
      const ports = new Map(e.ports.map((p) => [p.name, p.portNo]));
      // a reconnect with the ports it had changes nothing: no app recomputes (a storm of them would each time)
      if (!sameNumbers(this.subject.value.get(e.dpid), ports)) this.replace(e.dpid, ports);
    });
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

function sameNumbers(known: ReadonlyMap<string, number> | undefined, ports: ReadonlyMap<string, number>): boolean {
  if (known?.size !== ports.size) return false;
  for (const [name, portNo] of ports) if (known.get(name) !== portNo) return false;
  return true;
}
