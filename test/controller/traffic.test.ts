import test from 'ava';
import { OFP_NO_BUFFER, OFPFF_SEND_FLOW_REM, OFPG_ANY, OFPP, type FlowMod, type OfMessage, type PacketOut } from '../../src/openflow';
import { SendBufferFullError, forSwitch } from '../../src/controller';
import { fakePort } from '../../src/testing';
import { connectSwitch, delay, next, startController, until } from './util';

function packetOut(inPort: number, data: Buffer): PacketOut {
  return { type: 'PACKET_OUT', xid: 0, bufferId: OFP_NO_BUFFER, inPort, actions: [{ type: 'output', port: OFPP.FLOOD, maxLen: 0 }], data };
}

test('packetIn$ carries dpid and session; a packet-out answer reaches the switch', async (t) => {
  const { controller, port } = await startController(t);
  const { sw } = await connectSwitch(t, controller, port, { dpid: 0x81n });
  const sub = controller.packetIn$.pipe(forSwitch(0x81n)).subscribe(({ session, message }) => {
    session.send(packetOut(1, message.data));
  });
  t.teardown(() => sub.unsubscribe());
  const frame = Buffer.from('ffffffffffff0200000000010806', 'hex');
  const event = next(controller.packetIn$);
  sw.send({ type: 'PACKET_IN', xid: 0, bufferId: OFP_NO_BUFFER, totalLen: frame.length, reason: 0, tableId: 0, cookie: 0n, match: [{ field: 'in_port', value: 1 }], data: frame });
  const e = await event;
  t.is(e.dpid, 0x81n);
  t.deepEqual(e.message.data, frame);
  const out = await sw.firstMessage('PACKET_OUT');
  t.deepEqual(out.data, frame);
  t.is(out.inPort, 1);
});

test('portStatus$ is emitted and session.ports follows adds, modifies and deletes', async (t) => {
  const { controller, port } = await startController(t);
  const { sw, session } = await connectSwitch(t, controller, port, { dpid: 0x82n });
  const added = next(controller.portStatus$);
  sw.send({ type: 'PORT_STATUS', xid: 0, reason: 0, desc: fakePort(9, 'tap9') });
  t.is((await added).message.desc.name, 'tap9');
  t.is(session.ports.get(9)?.name, 'tap9');
  const deleted = next(controller.portStatus$);
  sw.send({ type: 'PORT_STATUS', xid: 0, reason: 1, desc: fakePort(1) });
  await deleted;
  t.deepEqual([...session.ports.keys()].sort((a, b) => a - b), [2, 9]);
});

test('flowRemoved$ reports flows the switch removed', async (t) => {
  const { controller, port } = await startController(t);
  const { session } = await connectSwitch(t, controller, port, { dpid: 0x83n });
  const removed = next(controller.flowRemoved$.pipe(forSwitch(0x83n)));
  const base: Omit<FlowMod, 'cookie' | 'command' | 'flags'> = {
    type: 'FLOW_MOD', xid: 0, cookieMask: 0n, tableId: 3, idleTimeout: 0, hardTimeout: 0, priority: 10,
    bufferId: OFP_NO_BUFFER, outPort: OFPP.ANY, outGroup: OFPG_ANY, match: [], instructions: [],
  };
  session.send({ ...base, cookie: 0x5n, command: 'add', flags: OFPFF_SEND_FLOW_REM });
  session.send({ ...base, cookie: 0n, command: 'delete', flags: 0 });
  const e = await removed;
  t.is(e.message.cookie, 0x5n);
  t.is(e.message.tableId, 3);
  t.is(e.message.reason, 2);
});

test('messages sent in one tick leave in one socket write and arrive in a few chunks', async (t) => {
  const { controller, port } = await startController(t);
  const { sw, session } = await connectSwitch(t, controller, port);
  await session.barrier();
  await delay(20);
  const writesBefore = session.sendStats.socketWrites;
  const chunksBefore = sw.receivedChunks;
  const echoesBefore = sw.count('ECHO_REQUEST');
  const n = 1000;
  for (let i = 0; i < n; i++) session.send({ type: 'ECHO_REQUEST', xid: 0, data: Buffer.alloc(24, i) });
  t.is(session.sendStats.socketWrites, writesBefore, 'nothing is written synchronously');
  await until(() => sw.count('ECHO_REQUEST') >= echoesBefore + n);
  t.is(session.sendStats.socketWrites - writesBefore, 1);
  const chunks = sw.receivedChunks - chunksBefore;
  t.true(chunks <= 3, `${n} messages (${n * 32} bytes) arrived in ${chunks} chunks`);
});

test('backpressure: a switch that stops reading makes send return false, then throw at the limit; nothing is lost', async (t) => {
  const highWaterMarkBytes = 64 * 1024;
  const maxBufferedBytes = 512 * 1024;
  const { controller, port } = await startController(t, { highWaterMarkBytes, maxBufferedBytes, echoIntervalMs: 60_000 });
  const { sw, session } = await connectSwitch(t, controller, port, { record: false });
  sw.pauseReading();
  const msg: OfMessage = { type: 'EXPERIMENTER', xid: 0, experimenter: 0x2320, expType: 0xffff, data: Buffer.alloc(16 * 1024) };
  let sent = 0;
  let sawBackpressure = false;
  let refused: unknown;
  let maxBuffered = 0;
  const deadline = Date.now() + 10_000;
  while (refused === undefined && Date.now() < deadline) {
    try {
      const below = session.send(msg);
      sent++;
      maxBuffered = Math.max(maxBuffered, session.bufferedBytes);
      if (!below) {
        sawBackpressure = true;
        await Promise.race([session.drained(), delay(5)]);
      }
    } catch (e) {
      refused = e;
    }
  }
  t.true(sawBackpressure, 'send returned false above the high-water mark');
  t.true(refused instanceof SendBufferFullError, `send refused past the limit (${String(refused)})`);
  t.true(maxBuffered <= maxBufferedBytes + msg.data.length + 64, `queued bytes peaked at ${maxBuffered}`);
  const drained = session.drained();
  sw.resumeReading();
  await drained;
  await session.barrier({ timeoutMs: 20_000 });
  t.is(sw.count('EXPERIMENTER'), sent, 'every accepted message arrived');
});

test('sendAll waits for drain instead of failing when the switch is slow', async (t) => {
  const { controller, port } = await startController(t, { highWaterMarkBytes: 32 * 1024, maxBufferedBytes: 64 * 1024, echoIntervalMs: 60_000 });
  const { sw, session } = await connectSwitch(t, controller, port, { record: false });
  sw.pauseReading();
  const n = 2_000;
  const messages = Array.from({ length: n }, (): OfMessage => ({ type: 'ECHO_REQUEST', xid: 0, data: Buffer.alloc(4096) }));
  let finished = false;
  const done = session.sendAll(messages).then(() => (finished = true));
  await delay(100);
  t.false(finished, 'sendAll is waiting for the switch');
  t.true(session.bufferedBytes <= 64 * 1024 + 4200);
  sw.resumeReading();
  await done;
  await session.barrier({ timeoutMs: 20_000 });
  t.is(sw.count('ECHO_REQUEST'), n);
});
