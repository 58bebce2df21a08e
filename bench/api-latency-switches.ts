/**
 * The fake switches of bench/api-latency.ts and bench/scale.ts, in worker threads: their flow
 * tables (about 4 KB a flow) stay out of the controller's heap and GC pauses, and they answer on
 * their own event loops, as switches would. The main thread (bench/switch-thread.ts) deals the
 * switches out over the threads and asks every thread; each answers for its own switches, with the
 * request's id.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OFPG_ANY, OFPP, OFPPR } from '../src/openflow';
import { FakeSwitch, fakePort } from '../src/testing/fake-switch';

/**
 * What the main thread passes: the controllers' ports (switch i connects to ofPorts[i % length], as
 * `run --workers` deals connections round-robin) and each switch's dpid and ports (interface name, number).
 */
export interface SwitchesData {
  ofPorts: number[];
  switches: { dpid: bigint; ports: [string, number][] }[];
}

/** One thread's share: its switches, each with its index in SwitchesData.switches */
export interface ThreadData {
  ofPorts: number[];
  switches: (SwitchesData['switches'][number] & { index: number })[];
}

export type SwitchesRequest =
  /** connects switches [from, to) (indexes in SwitchesData.switches) */
  | { op: 'connect'; from: number; to: number }
  /** a new interface on a switch, announced with PORT_STATUS */
  | { op: 'plug'; dpid: bigint; name: string }
  /** how many of these switches hold no flow matching the MAC or IP */
  | { op: 'missing'; dpids: bigint[]; mac: string; ip: string }
  /** flows held by these switches, or by all */
  | { op: 'flows'; dpids?: bigint[] }
  /** every switch drops its connection and connects again at once, keeping its flows; resolves when all are connected */
  | { op: 'reconnect' }
  /** these switches lose every other flow they hold (as after a crash of their datapath); answers how many went */
  | { op: 'cut'; dpids: bigint[] }
  | { op: 'close' };

function holdsFlowFor(sw: FakeSwitch, mac: string, ip: string): boolean {
  return sw.flowTable.flows().some((f) => f.match.some((tlv) => tlv.field !== 'unknown' && (tlv.value === mac || tlv.value === ip)));
}

/** removes every other flow of a switch's table behind the controller's back */
function cutHalf(sw: FakeSwitch): number {
  const gone = sw.flowTable.flows().filter((_, i) => i % 2 === 0);
  for (const f of gone) {
    sw.flowTable.apply({
      type: 'FLOW_MOD', xid: 0, cookie: 0n, cookieMask: 0n, tableId: f.tableId, command: 'delete_strict', idleTimeout: 0, hardTimeout: 0,
      priority: f.priority, bufferId: 0xffffffff, outPort: OFPP.ANY, outGroup: OFPG_ANY, flags: 0, match: f.match, instructions: [],
    });
  }
  return gone.length;
}

const data = workerData as ThreadData;
const ofPortOf = new Map(data.switches.map((s) => [s.dpid, data.ofPorts[s.index % data.ofPorts.length]!]));
const switches = new Map(data.switches.map((s) => [s.dpid, new FakeSwitch({ dpid: s.dpid, ports: s.ports.map(([name, no]) => fakePort(no, name)), record: false })]));

async function handle(req: SwitchesRequest): Promise<number> {
  switch (req.op) {
    case 'connect': {
      const mine = data.switches.filter((s) => s.index >= req.from && s.index < req.to);
      await Promise.all(mine.map((s) => switches.get(s.dpid)!.connect({ transport: 'tcp', port: ofPortOf.get(s.dpid)! })));
      return mine.length;
    }
    case 'plug': {
      const sw = switches.get(req.dpid);
      if (!sw) return 0; // another thread's
      const desc = fakePort(Math.max(...sw.ports.map((p) => p.portNo)) + 1, req.name);
      sw.ports.push(desc);
      sw.send({ type: 'PORT_STATUS', xid: 0, reason: OFPPR.ADD, desc });
      return desc.portNo;
    }
    case 'missing':
      return req.dpids.filter((d) => switches.has(d) && !holdsFlowFor(switches.get(d)!, req.mac, req.ip)).length;
    case 'flows':
      return (req.dpids ?? [...switches.keys()]).reduce((n, dpid) => n + (switches.get(dpid)?.flowTable.size ?? 0), 0);
    case 'reconnect':
      for (const sw of switches.values()) sw.disconnect();
      await Promise.all([...switches.values()].map((sw) => sw.connect({ transport: 'tcp', port: ofPortOf.get(sw.dpid)! })));
      return switches.size;
    case 'cut':
      return req.dpids.reduce((n, dpid) => n + (switches.has(dpid) ? cutHalf(switches.get(dpid)!) : 0), 0);
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
