import test from 'ava';
import { Subject } from 'rxjs';
import type { PortStatusEvent, SwitchUpEvent } from '../../src/controller';
import type { Port } from '../../src/openflow';
import { SwitchPortPlacement } from '../../src/runtime';
import type { PortNumbers } from '../../src/sdk';

test('switch placement: a reconnect with the same ports emits nothing; with other ports, the new list', (t) => {
  const switchUp$ = new Subject<SwitchUpEvent>();
  const placement = new SwitchPortPlacement({ switchUp$, portStatus$: new Subject<PortStatusEvent>() });
  const seen: PortNumbers[] = [];
  placement.placement$.subscribe((p) => seen.push(p));
  const up = (dpid: bigint, ports: [string, number][]) => switchUp$.next({ dpid, ports: ports.map(([name, portNo]) => ({ name, portNo }) as Port) } as unknown as SwitchUpEvent);
  up(0x11n, [['web1', 1], ['zm-tun', 4000]]);
  up(0x11n, [['zm-tun', 4000], ['web1', 1]]); // the same ports, in another order
  t.is(seen.length, 2, 'the initial empty placement and the first connect');
  up(0x11n, [['web1', 2], ['zm-tun', 4000]]);
  up(0x11n, [['web1', 2]]);
  up(0x22n, [['web1', 2]]); // another switch with the same ports is news
  t.deepEqual(
    seen.map((p) => [...p].map(([dpid, ports]) => [dpid, Object.fromEntries(ports)])),
    [
      [],
      [[0x11n, { web1: 1, 'zm-tun': 4000 }]],
      [[0x11n, { web1: 2, 'zm-tun': 4000 }]],
      [[0x11n, { web1: 2 }]],
      [[0x11n, { web1: 2 }], [0x22n, { web1: 2 }]],
    ],
  );
});
