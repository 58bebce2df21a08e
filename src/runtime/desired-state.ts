import { Subject } from 'rxjs';
import type { Flow } from '../sdk/flow';

/** One owner's flows on one switch changed from `before` to `after`. */
export interface DesiredChange {
  dpid: bigint;
  cookie: bigint;
  before: readonly Flow[];
  after: readonly Flow[];
}

/**
 * The desired flows of all apps, per switch and per owner cookie. Keyed by owner so that a change to
 * one object (a port, a rule) is diffed against that object's previous flows only (OVN-style incremental).
 */
export class DesiredState {
  private readonly bySwitch = new Map<bigint, Map<bigint, readonly Flow[]>>();
  private readonly changeSubject = new Subject<DesiredChange>();
  readonly changes$ = this.changeSubject.asObservable();
  private lastChecked?: readonly Flow[];
  private lastCookie?: bigint;

  /** Replace the flows that `cookie` owns on `dpid`. Every flow must carry that cookie. */
  set(dpid: bigint, cookie: bigint, flows: readonly Flow[]): void {
    // an owner's list usually goes to many switches in a row: check it once
    if (flows !== this.lastChecked || cookie !== this.lastCookie) {
      for (const f of flows) {
        if (f.cookie !== cookie) throw new RangeError(`flow in table ${f.table} carries cookie 0x${f.cookie.toString(16)}, not its owner's 0x${cookie.toString(16)}`);
      }
      this.lastChecked = flows;
      this.lastCookie = cookie;
    }
    let owners = this.bySwitch.get(dpid);
    if (!owners) this.bySwitch.set(dpid, (owners = new Map()));
    const before = owners.get(cookie) ?? [];
    if (flows.length) owners.set(cookie, flows);
    else owners.delete(cookie);
    if (before.length || flows.length) this.changeSubject.next({ dpid, cookie, before, after: flows });
  }

  clear(dpid: bigint, cookie: bigint): void {
    this.set(dpid, cookie, []);
  }

  /** every desired flow on a switch */
  flows(dpid: bigint): Flow[] {
    const owners = this.bySwitch.get(dpid);
    return owners ? [...owners.values()].flat() : [];
  }

  /** how many flows are desired on a switch */
  count(dpid: bigint): number {
    let n = 0;
    for (const flows of this.bySwitch.get(dpid)?.values() ?? []) n += flows.length;
    return n;
  }

  owned(dpid: bigint, cookie: bigint): readonly Flow[] {
    return this.bySwitch.get(dpid)?.get(cookie) ?? [];
  }

  get switches(): bigint[] {
    return [...this.bySwitch.keys()];
  }
}
