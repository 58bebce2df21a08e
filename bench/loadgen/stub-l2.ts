/**
 * simple_switch_13 written directly on the zonemesh runtime (src/controller), for the
 * controller-throughput benchmark while the real l2-learning app and the `zonemesh run`
 * command are not there yet. It measures the runtime and the codec (decode of every
 * PACKET_IN, encode of every FLOW_MOD/PACKET_OUT, per-turn batched writes) under the same
 * logic as bench/osken_l2.py; it is NOT the product's l2-learning app.
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

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const i = args.indexOf('--listen');
  const m = /^(.+):(\d+)$/.exec(i >= 0 ? (args[i + 1] ?? '') : '127.0.0.1:6653');
  if (!m) {
    console.error('usage: stub-l2 --listen HOST:PORT');
    process.exit(2);
  }
  const controller = new Controller({ logger: silentLogger() });
  /** per switch: MAC (48-bit number) -> port */
  const tables = new Map<bigint, Map<number, number>>();

  controller.switchUp$.subscribe(({ dpid, session }) => {
    tables.set(dpid, new Map());
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
    if (data.readUInt16BE(12) === 0x88cc) return; // LLDP
    const table = tables.get(dpid);
    if (!table) return;
    const dstKey = data.readUIntBE(0, 6);
    const srcKey = data.readUIntBE(6, 6);
    table.set(srcKey, inPort);
    const out = table.get(dstKey);
    const outPort = out ?? OFPP.FLOOD;
    const actions = [{ type: 'output' as const, port: outPort, maxLen: 0 }];
    if (out !== undefined) {
      const fm: FlowMod = {
        type: 'FLOW_MOD', xid: 0, cookie: 0n, cookieMask: 0n, tableId: 0, command: 'add', idleTimeout: 0, hardTimeout: 0,
        priority: 1, bufferId: OFP_NO_BUFFER, outPort: OFPP.ANY, outGroup: OFPG_ANY, flags: 0,
        match: [
          { field: 'in_port', value: inPort },
          { field: 'eth_dst', value: formatMac(data.subarray(0, 6)) },
          { field: 'eth_src', value: formatMac(data.subarray(6, 12)) },
        ],
        instructions: [{ type: 'apply_actions', actions }],
      };
      session.send(fm);
    }
    const po: PacketOut = { type: 'PACKET_OUT', xid: 0, bufferId: OFP_NO_BUFFER, inPort, actions, data };
    session.send(po);
  });

  await controller.listen({ transport: 'tcp', host: m[1], port: Number(m[2]) });
  console.log(`stub-l2 listening on ${m[1]}:${m[2]}`);
  const stop = () => void controller.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
