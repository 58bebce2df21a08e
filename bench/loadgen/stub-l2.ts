/**
 * The l2-learning app's logic written straight on the zonemesh runtime (src/controller), without
 * the SDK: the same MacTable, the same one-field learned flow (eth_dst -> output, idle 60 s), the
 * same PACKET_OUT. Its distance to the product is what the SDK layer costs per packet-in (app
 * wiring, RxJS, the flow builder and its checks, cookies); it is NOT the product.
 *
 *   node dist/bench/loadgen/stub-l2.js --listen 127.0.0.1:PORT
 */
import {
  OFP_NO_BUFFER,
  OFPCML_NO_BUFFER,
  OFPG_ANY,
  OFPP,
  formatMac,
  type FlowMod,
  type PacketOut,
} from '../../src/openflow';
import { Controller, silentLogger } from '../../src/controller';
import { MacTable } from '../../src/sdk';

const learned = (mac: string, port: number): FlowMod => ({
  type: 'FLOW_MOD', xid: 0, cookie: 0n, cookieMask: 0n, tableId: 0, command: 'add', idleTimeout: 60, hardTimeout: 0,
  priority: 100, bufferId: OFP_NO_BUFFER, outPort: OFPP.ANY, outGroup: OFPG_ANY, flags: 0,
  match: [{ field: 'eth_dst', value: mac }],
  instructions: [{ type: 'apply_actions', actions: [{ type: 'output', port, maxLen: 0 }] }],
});

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const i = args.indexOf('--listen');
  const m = /^(.+):(\d+)$/.exec(i >= 0 ? (args[i + 1] ?? '') : '127.0.0.1:6653');
  if (!m) {
    console.error('usage: stub-l2 --listen HOST:PORT');
    process.exit(2);
  }
  const controller = new Controller({ logger: silentLogger(), packetInRate: 1e8 }); // over the default limit, as the driver does for the product
  const tables = new Map<bigint, MacTable>();

  controller.switchUp$.subscribe(({ dpid, session }) => {
    tables.set(dpid, new MacTable());
    const tableMiss: FlowMod = {
      type: 'FLOW_MOD', xid: 0, cookie: 0n, cookieMask: 0n, tableId: 0, command: 'add', idleTimeout: 0, hardTimeout: 0,
      priority: 0, bufferId: OFP_NO_BUFFER, outPort: OFPP.ANY, outGroup: OFPG_ANY, flags: 0, match: [],
      instructions: [{ type: 'apply_actions', actions: [{ type: 'output', port: OFPP.CONTROLLER, maxLen: OFPCML_NO_BUFFER }] }],
    };
    session.send(tableMiss);
  });
  controller.switchDown$.subscribe(({ dpid }) => tables.delete(dpid));

  controller.packetIn$.subscribe(({ dpid, session, message }) => {
    const data = message.data;
    if (data.length < 14) return;
    const inPortTlv = message.match.find((t) => t.field === 'in_port');
    if (!inPortTlv) return;
    const inPort = inPortTlv.value as number;
    const table = tables.get(dpid);
    if (!table) return;
    if ((data[6]! & 1) === 0 && table.set(data, 6, inPort)) session.send(learned(formatMac(data, 6), inPort));
    const out = table.get(data, 0);
    if (out === inPort) return;
    if (out !== undefined) session.send(learned(formatMac(data, 0), out));
    const po: PacketOut = { type: 'PACKET_OUT', xid: 0, bufferId: OFP_NO_BUFFER, inPort, actions: [{ type: 'output', port: out ?? OFPP.FLOOD, maxLen: 0 }], data };
    session.send(po);
  });

  await controller.listen({ transport: 'tcp', host: m[1], port: Number(m[2]) });
  console.log(`stub-l2 listening on ${m[1]}:${m[2]}`);
  const stop = () => void controller.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
