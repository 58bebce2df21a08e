/**
 * The fake switches of bench/api-latency.ts, in a worker thread: their flow tables (about 4 KB a
 * flow) stay out of the controller's heap and GC pauses, and they answer on their own event loop,
 * as a switch would. The main thread asks; each request is answered with its id.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OFPPR } from '../src/openflow';
import { FakeSwitch, fakePort } from '../src/testing/fake-switch';

/** what the main thread passes: the controller's port and each switch's dpid and ports (interface name, number) */
export interface SwitchesData {
  ofPort: number;
  switches: { dpid: bigint; ports: [string, number][] }[];
}

export type SwitchesRequest =
  /** connects switches [from, to) */
  | { op: 'connect'; from: number; to: number }
  /** a new interface on a switch, announced with PORT_STATUS */
  | { op: 'plug'; dpid: bigint; name: string }
  /** how many of these switches hold no flow matching the MAC or IP */
  | { op: 'missing'; dpids: bigint[]; mac: string; ip: string }
  | { op: 'flows' }
  | { op: 'close' };

function holdsFlowFor(sw: FakeSwitch, mac: string, ip: string): boolean {
  return sw.flowTable.flows().some((f) => f.match.some((tlv) => tlv.field !== 'unknown' && (tlv.value === mac || tlv.value === ip)));
}

const data = workerData as SwitchesData;
const switches = new Map(data.switches.map((s) => [s.dpid, new FakeSwitch({ dpid: s.dpid, ports: s.ports.map(([name, no]) => fakePort(no, name)), record: false })]));

async function handle(req: SwitchesRequest): Promise<number> {
  switch (req.op) {
    case 'connect':
      await Promise.all(data.switches.slice(req.from, req.to).map((s) => switches.get(s.dpid)!.connect({ transport: 'tcp', port: data.ofPort })));
      return req.to - req.from;
    case 'plug': {
      const sw = switches.get(req.dpid)!;
      const desc = fakePort(Math.max(...sw.ports.map((p) => p.portNo)) + 1, req.name);
      sw.ports.push(desc);
      sw.send({ type: 'PORT_STATUS', xid: 0, reason: OFPPR.ADD, desc });
      return desc.portNo;
    }
    case 'missing':
      return req.dpids.filter((d) => !holdsFlowFor(switches.get(d)!, req.mac, req.ip)).length;
    case 'flows':
      return [...switches.values()].reduce((n, sw) => n + sw.flowTable.size, 0);
    case 'close':
      await Promise.all([...switches.values()].map((sw) => sw.close()));
      return 0;
  }
}

parentPort!.on('message', ({ id, req }: { id: number; req: SwitchesRequest }) => {
  handle(req).then(
    (result) => parentPort!.postMessage({ id, result }),
    (e: unknown) => parentPort!.postMessage({ id, error: String(e) }),
  );
});
