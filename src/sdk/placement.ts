import { BehaviorSubject, combineLatest, takeUntil, type Observable } from 'rxjs';
import { EMPTY_MODEL, type Hypervisor, type NetworkModel, type VmPort } from '../model/types';

/** Which OpenFlow port each interface has on each switch: dpid → interface name → ofport. */
export type PortNumbers = ReadonlyMap<bigint, ReadonlyMap<string, number>>;

/**
 * The switches' port numbers as they connect and change (the runtime's, from their port lists and
 * port-status messages). Injected as PORT_PLACEMENT; apps usually read `ctx.placement` instead.
 */
export interface PortPlacement {
  readonly placement$: Observable<PortNumbers>;
}

/** DI token of the runtime's PortPlacement. */
export const PORT_PLACEMENT = Symbol.for('zonemesh.portPlacement');

/** A model port that is plugged in: its switch and its OpenFlow port number are known. */
export interface PlacedPort {
  readonly port: VmPort;
  readonly hypervisor: Hypervisor;
  readonly dpid: bigint;
  readonly ofport: number;
}

/**
 * `ctx.placement`: where the model's hypervisors and ports are on the switches. A hypervisor is the
 * switch whose datapath id the model gives it; a port's OpenFlow number is the one its `interface`
 * has on that switch now, or the model's pinned `ofport` while the switch has not said.
 */
export interface Placement {
  hypervisorOf(dpid: bigint): Hypervisor | undefined;
  dpidOf(hypervisor: string): bigint | undefined;
  /** the port number of an interface on a switch, as the switch reported it */
  ofport(dpid: bigint, interfaceName: string): number | undefined;
  /** the port with its switch and number, or undefined while it is not plugged in */
  place(port: VmPort): PlacedPort | undefined;
  /** the model's ports that are plugged into this switch */
  portsOn(dpid: bigint): readonly PlacedPort[];
  /** the placement whenever the model or a switch's ports change (now, on subscription) */
  readonly changes$: Observable<Placement>;
}

/** One snapshot: a model version and the port numbers of that moment. */
class PlacementSnapshot {
  private readonly byDpid = new Map<bigint, Hypervisor>();
  private readonly byName = new Map<string, Hypervisor>();
  private readonly onSwitch = new Map<bigint, PlacedPort[]>();

  constructor(
    private readonly model: NetworkModel,
    private readonly numbers: PortNumbers,
  ) {
    for (const h of model.hypervisors) {
      this.byDpid.set(h.datapathId, h);
      this.byName.set(h.name, h);
    }
  }

  hypervisorOf(dpid: bigint): Hypervisor | undefined {
    return this.byDpid.get(dpid);
  }

  dpidOf(hypervisor: string): bigint | undefined {
    return this.byName.get(hypervisor)?.datapathId;
  }

  ofport(dpid: bigint, interfaceName: string): number | undefined {
    return this.numbers.get(dpid)?.get(interfaceName);
  }

  place(port: VmPort): PlacedPort | undefined {
    const hypervisor = this.byName.get(port.hypervisor);
    if (!hypervisor) return undefined;
    const ofport = this.ofport(hypervisor.datapathId, port.interface) ?? port.ofport;
    return ofport === undefined ? undefined : { port, hypervisor, dpid: hypervisor.datapathId, ofport };
  }

  portsOn(dpid: bigint): readonly PlacedPort[] {
    let placed = this.onSwitch.get(dpid);
    if (!placed) {
      const hypervisor = this.byDpid.get(dpid);
      placed = hypervisor ? this.model.ports.filter((p) => p.hypervisor === hypervisor.name).flatMap((p) => this.place(p) ?? []) : [];
      this.onSwitch.set(dpid, placed);
    }
    return placed;
  }
}

/**
 * Placement of a model against the switches' port numbers, kept current from both streams until
 * `until$` emits (both must emit their current value on subscription, as the runtime's do).
 */
export class ModelPlacement implements Placement {
  private snapshot = new PlacementSnapshot(EMPTY_MODEL, new Map());
  private readonly subject: BehaviorSubject<Placement> = new BehaviorSubject<Placement>(this);
  readonly changes$: Observable<Placement> = this.subject.asObservable();

  constructor(model$: Observable<NetworkModel>, numbers$: Observable<PortNumbers>, until$: Observable<unknown>) {
    combineLatest([model$, numbers$])
      .pipe(takeUntil(until$))
      .subscribe({
        next: ([model, numbers]) => {
          this.snapshot = new PlacementSnapshot(model, numbers);
          this.subject.next(this);
        },
        complete: () => this.subject.complete(),
      });
  }

  hypervisorOf(dpid: bigint): Hypervisor | undefined {
    return this.snapshot.hypervisorOf(dpid);
  }
  dpidOf(hypervisor: string): bigint | undefined {
    return this.snapshot.dpidOf(hypervisor);
  }
  ofport(dpid: bigint, interfaceName: string): number | undefined {
    return this.snapshot.ofport(dpid, interfaceName);
  }
  place(port: VmPort): PlacedPort | undefined {
    return this.snapshot.place(port);
  }
  portsOn(dpid: bigint): readonly PlacedPort[] {
    return this.snapshot.portsOn(dpid);
  }
}
