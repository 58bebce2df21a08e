/**
 * The load generator's ceiling: a controller that decodes nothing. It does the handshake and
 * answers every PACKET_IN with simple_switch_13's two messages (FLOW_MOD in_port/eth_dst/eth_src
 * -> output, then a PACKET_OUT carrying the frame), copied from pre-encoded templates with the
 * packet's in_port, MACs and frame patched in, one socket write per chunk read.
 * Whatever rate the generator reports against it is the most it can measure on this machine.
 *
 *   node dist/bench/loadgen/null-controller.js --listen 127.0.0.1:PORT
 */
import { createServer, type Socket } from 'node:net';
import { OFP_VERSION, encodeMessage } from '../../src/openflow';
import { FRAME_LEN, T, packetInTemplate, responseTemplate } from './templates';

const rt = responseTemplate();
const pin = packetInTemplate();
const PAIR_LEN = rt.flowMod.length + rt.packetOut.length;
const FM_LEN = rt.flowMod.length;
/** packet-in offsets relative to the frame start (fixed: in_port is the match's only field) */
const PIN_DATA_FROM_END = FRAME_LEN;
const PIN_IN_PORT_AT = pin.inPortAt;

function serve(socket: Socket): void {
  socket.setNoDelay(true);
  let pending: Buffer | null = null;
  let xid = 1;
  socket.write(encodeMessage({ type: 'HELLO', xid: xid++, elements: [{ type: 'versionbitmap', versions: [OFP_VERSION] }] }));
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    let buf = chunk;
    if (pending) {
      buf = Buffer.concat([pending, chunk]);
      pending = null;
    }
    // first pass: count packet-ins so the answer is one allocation and one write
    let off = 0;
    let pins = 0;
    const end = buf.length;
    while (end - off >= 8) {
      const len = (buf[off + 2]! << 8) | buf[off + 3]!;
      if (len < 8 || end - off < len) break;
      if (buf[off + 1] === T.PACKET_IN) pins++;
      off += len;
    }
    const out = pins > 0 ? Buffer.allocUnsafe(pins * PAIR_LEN) : null;
    let o = 0;
    const control: Buffer[] = [];
    off = 0;
    while (end - off >= 8) {
      const len = (buf[off + 2]! << 8) | buf[off + 3]!;
      if (len < 8) return socket.destroy();
      if (end - off < len) break;
      const type = buf[off + 1]!;
      if (type === T.PACKET_IN) {
        // only our generator's packet-ins are expected: in_port at the template's offset, 64-byte frame
        const frame = off + len - PIN_DATA_FROM_END;
        const inPort = buf.readUInt32BE(off + PIN_IN_PORT_AT);
        // flow_mod: in_port, eth_dst, eth_src; out port = a port other than in_port
        rt.flowMod.copy(out!, o);
        out!.writeUInt32BE(xid++, o + 4);
        out!.writeUInt32BE(inPort, o + rt.fmInPortAt);
        buf.copy(out!, o + rt.fmDstAt, frame, frame + 6);
        buf.copy(out!, o + rt.fmSrcAt, frame + 6, frame + 12);
        out!.writeUInt32BE(inPort === 1 ? 2 : 1, o + rt.fmOutPortAt);
        // packet_out with the frame
        const p = o + FM_LEN;
        rt.packetOut.copy(out!, p);
        out!.writeUInt32BE(xid++, p + 4);
        out!.writeUInt32BE(inPort, p + rt.poInPortAt);
        out!.writeUInt32BE(inPort === 1 ? 2 : 1, p + rt.poOutPortAt);
        buf.copy(out!, p + rt.poDataAt, frame, frame + FRAME_LEN);
        o += PAIR_LEN;
      } else if (type === T.HELLO) {
        control.push(encodeMessage({ type: 'FEATURES_REQUEST', xid: xid++ }));
      } else if (type === 6 /* FEATURES_REPLY */) {
        control.push(encodeMessage({ type: 'MULTIPART_REQUEST', xid: xid++, flags: 0, body: { mpType: 'PORT_DESC' } }));
      } else if (type === T.ECHO_REQUEST) {
        const r = Buffer.from(buf.subarray(off, off + len));
        r[1] = T.ECHO_REPLY;
        control.push(r);
      }
      off += len;
    }
    if (off < end) pending = Buffer.from(buf.subarray(off));
    for (const c of control) socket.write(c);
    if (out) socket.write(o === out.length ? out : out.subarray(0, o));
    if (xid > 0x7fffffff) xid = 1;
  });
}

function main(): void {
  const args = process.argv.slice(2);
  const i = args.indexOf('--listen');
  const m = /^(.+):(\d+)$/.exec(i >= 0 ? (args[i + 1] ?? '') : '127.0.0.1:6653');
  if (!m) {
    console.error('usage: null-controller --listen HOST:PORT');
    process.exit(2);
  }
  const server = createServer(serve);
  server.listen(Number(m[2]), m[1], () => console.log(`null-controller listening on ${m[1]}:${m[2]}`));
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
