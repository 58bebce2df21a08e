import test from 'ava';
import {
  OFPBRC,
  OFPET,
  OFPP,
  OFPG_ANY,
  OFPTT_ALL,
  OFPMPF_REPLY_MORE,
  decodeWireFlowStats,
  wireFlowStats,
  type FlowMod,
  type FlowStats,
} from '../../src/openflow';
import {
  ConnectionError,
  OfSwitchError,
  SessionBudgetError,
  RequestTimeoutError,
  SessionClosedError,
  XidInUseError,
  forSwitch,
} from '../../src/controller';
import { FakeSwitch, fakePort } from '../../src/testing';
import { connectSwitch, next, nextWhere, startController, until } from './util';

const BAD_ROLE = 2; // OFPRRFC_BAD_ROLE

function flowMod(priority: number, ethDst: string, extra: Partial<FlowMod> = {}): FlowMod {
  return {
    type: 'FLOW_MOD', xid: 0, cookie: 0n, cookieMask: 0n, tableId: 0, command: 'add', idleTimeout: 0, hardTimeout: 0,
    priority, bufferId: 0xffffffff, outPort: OFPP.ANY, outGroup: OFPG_ANY, flags: 0,
    match: [{ field: 'eth_dst', value: ethDst }],
    instructions: [{ type: 'apply_actions', actions: [{ type: 'output', port: 1, maxLen: 0 }] }],
    ...extra,
  };
}

test('a request answered with OFPT_ERROR rejects with OfSwitchError carrying dpid, xid and request type', async (t) => {
  const { controller, port } = await startController(t);
  const { session } = await connectSwitch(t, controller, port, {
    dpid: 0x11n,
    errorFor: (m) => (m.type === 'ROLE_REQUEST' ? { errType: OFPET.ROLE_REQUEST_FAILED, code: BAD_ROLE } : undefined),
  });
  const e = await t.throwsAsync(session.request({ type: 'ROLE_REQUEST', xid: 0, role: 2, generationId: 1n }), { instanceOf: OfSwitchError });
  t.is(e.dpid, 0x11n);
  t.is(e.msgType, 'ROLE_REQUEST');
  t.true(e.xid! > 0);
  t.is(e.errType, OFPET.ROLE_REQUEST_FAILED);
  t.is(e.code, BAD_ROLE);
  t.is(e.data.readUInt32BE(4), e.xid!, 'the echoed offending header carries the same xid');
  t.regex(e.message, /dpid=0000000000000011/);
  // the session survives and correlates the next request normally
  const reply = await session.request({ type: 'GET_CONFIG_REQUEST', xid: 0 });
  t.is(reply.missSendLen, 128);
});

test('concurrent requests each resolve with the reply carrying their xid', async (t) => {
  const { controller, port } = await startController(t);
  const { session } = await connectSwitch(t, controller, port);
  const [a, b, c] = await Promise.all([
    session.request({ type: 'ECHO_REQUEST', xid: 1001, data: Buffer.from('a') }),
    session.request({ type: 'ECHO_REQUEST', xid: 1002, data: Buffer.from('b') }),
    session.request({ type: 'ECHO_REQUEST', xid: 1003, data: Buffer.from('c') }),
  ]);
  t.deepEqual([a.xid, b.xid, c.xid], [1001, 1002, 1003]);
  t.deepEqual([a, b, c].map((r) => r.data.toString()), ['a', 'b', 'c']);
});

test('an xid that is still awaited cannot be reused', async (t) => {
  const { controller, port } = await startController(t);
  const { sw, session } = await connectSwitch(t, controller, port, { unanswered: ['ECHO_REQUEST'] });
  const first = session.request({ type: 'ECHO_REQUEST', xid: 42, data: Buffer.alloc(0) }, { timeoutMs: 200 });
  await t.throwsAsync(session.request({ type: 'ECHO_REQUEST', xid: 42, data: Buffer.alloc(0) }), { instanceOf: XidInUseError });
  await t.throwsAsync(first, { instanceOf: RequestTimeoutError });
  t.is(sw.count('ECHO_REQUEST'), 1);
});

test('a request without reply rejects with RequestTimeoutError; the session stays up', async (t) => {
  const { controller, port } = await startController(t);
  const { sw, session } = await connectSwitch(t, controller, port, { dpid: 0x22n, unanswered: ['BARRIER_REQUEST'] });
  const started = Date.now();
  const e = await t.throwsAsync(session.barrier({ timeoutMs: 150 }), { instanceOf: RequestTimeoutError });
  t.true(Date.now() - started >= 140);
  t.is(e.dpid, 0x22n);
  t.is(e.msgType, 'BARRIER_REQUEST');
  t.is(e.timeoutMs, 150);
  t.is(session.state, 'READY');
  sw.unanswered.clear();
  await t.notThrowsAsync(session.barrier());
});

test('multipart replies split with REPLY_MORE are reassembled into one reply', async (t) => {
  const { controller, port } = await startController(t);
  const ports = Array.from({ length: 40 }, (_, i) => fakePort(i + 1));
  // 64-byte ports: at most 3 per 216-byte message, so 14 parts
  const { sw, session } = await connectSwitch(t, controller, port, { ports, maxReplyBytes: 16 + 3 * 64 });
  t.is(session.ports.size, 40, 'the handshake reassembled PORT_DESC too');
  const body = await session.multipart({ mpType: 'PORT_DESC' });
  t.deepEqual(body.ports.map((p) => p.portNo), ports.map((p) => p.portNo));

  for (let i = 0; i < 25; i++) session.send(flowMod(100, `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`));
  const flows = await session.multipart({
    mpType: 'FLOW', tableId: OFPTT_ALL, outPort: OFPP.ANY, outGroup: OFPG_ANY, cookie: 0n, cookieMask: 0n, match: [],
  });
  t.is(flows.flows.length, 25);
  t.is(sw.flowTable.size, 25);

  // the same reply undecoded: every part's bytes, in order, read in place to the same flows
  const frames = await session.multipartFrames({ mpType: 'FLOW', tableId: OFPTT_ALL, outPort: OFPP.ANY, outGroup: OFPG_ANY, cookie: 0n, cookieMask: 0n, match: [] });
  t.true(frames.length > 1, `${frames.length} parts`);
  t.deepEqual(frames.map((f) => (f.readUInt16BE(10) & OFPMPF_REPLY_MORE) !== 0), frames.map((_, i) => i < frames.length - 1));
  const timeless = ({ durationSec: _s, durationNsec: _n, ...f }: FlowStats) => f;
  t.deepEqual(wireFlowStats(frames).map(decodeWireFlowStats).map(timeless), flows.flows.map(timeless));
  t.is(controller.totals.multipartBytes, 0, 'the parts held are released');
});

test('a multipart reply that grows past maxMultipartBytes closes the session with SessionBudgetError', async (t) => {
  const { controller, port } = await startController(t, { maxMultipartBytes: 2_000 });
  const ports = Array.from({ length: 40 }, (_, i) => fakePort(i + 1)); // 40 parts of 80 bytes
  const overBudget = nextWhere(controller.errors$, (e) => e instanceof SessionBudgetError);
  const sw = new FakeSwitch({ ports, maxReplyBytes: 16 + 64 });
  t.teardown(() => sw.close());
  await sw.connect({ transport: 'tcp', port });
  const e = (await overBudget) as SessionBudgetError;
  t.is(e.budget, 'maxMultipartBytes');
  t.is(e.limit, 2_000);
  t.true(e.amount > 2_000 && e.amount <= 2_080, `held ${e.amount}`);
  t.is(e.msgType, 'MULTIPART_REPLY');
  await sw.waitClosed();
  t.is(controller.totals.multipartBytes, 0, 'what the session held is released');
});

test('an error for a fire-and-forget message goes to errors$ with context and to the next barrier', async (t) => {
  const { controller, port } = await startController(t);
  const { session } = await connectSwitch(t, controller, port, {
    dpid: 0x33n,
    errorFor: (m) => (m.type === 'FLOW_MOD' && m.priority === 666 ? { errType: OFPET.FLOW_MOD_FAILED, code: 5 } : undefined),
  });
  const reported = next(controller.errors$.pipe(forSwitch(0x33n)));
  session.send(flowMod(100, '02:00:00:00:00:01'));
  session.send(flowMod(666, '02:00:00:00:00:02', { xid: 4242 }));
  session.send(flowMod(100, '02:00:00:00:00:03'));
  const { errors } = await session.barrier();
  t.is(errors.length, 1);
  t.is(errors[0]!.xid, 4242);
  t.is(errors[0]!.msgType, 'FLOW_MOD');
  const e = await reported;
  t.true(e instanceof OfSwitchError);
  t.is(e.xid, 4242);
  t.is(e.dpid, 0x33n);
  // a later barrier starts from a clean slate
  t.deepEqual((await session.barrier()).errors, []);
});

test('send assigns an xid when it is 0 and keeps the caller\'s otherwise', async (t) => {
  const { controller, port } = await startController(t);
  const { sw, session } = await connectSwitch(t, controller, port);
  session.send({ type: 'SET_CONFIG', xid: 0, flags: 0, missSendLen: 128 });
  session.send({ type: 'SET_CONFIG', xid: 777, flags: 0, missSendLen: 128 });
  await session.barrier();
  const sets = sw.received.filter((m) => m.type === 'SET_CONFIG' && m.missSendLen === 128);
  t.is(sets.length, 2);
  t.not(sets[0]!.xid, 0);
  t.is(sets[1]!.xid, 777);
});

test('the handshake asks for whole packets on miss (a dialed OVS service connection sends nothing otherwise)', async (t) => {
  const { controller, port } = await startController(t);
  const { sw } = await connectSwitch(t, controller, port);
  const set = sw.received.find((m) => m.type === 'SET_CONFIG');
  t.is(set?.type === 'SET_CONFIG' ? set.missSendLen : undefined, 0xffff);
});

test('request$ is a cold observable that sends on subscription', async (t) => {
  const { controller, port } = await startController(t);
  const { sw, session } = await connectSwitch(t, controller, port);
  const reply$ = session.request$({ type: 'GET_CONFIG_REQUEST', xid: 0 });
  t.is(sw.count('GET_CONFIG_REQUEST'), 0);
  const reply = await next(reply$);
  t.is(reply.type, 'GET_CONFIG_REPLY');
  t.is(sw.count('GET_CONFIG_REQUEST'), 1);
});

test('echo keepalive: a switch that stops answering is declared dead after maxMissedEchoes intervals', async (t) => {
  const { controller, port } = await startController(t, { echoIntervalMs: 40, maxMissedEchoes: 3 });
  const { sw, session } = await connectSwitch(t, controller, port, { dpid: 0x44n });
  await until(() => sw.count('ECHO_REQUEST') >= 5);
  t.is(session.state, 'READY', 'an answering switch stays up');
  const pending = session.request({ type: 'GET_CONFIG_REQUEST', xid: 0 }, { timeoutMs: 10_000 });
  sw.unanswered.add('ECHO_REQUEST').add('GET_CONFIG_REQUEST');
  const down = next(controller.switchDown$.pipe(forSwitch(0x44n)));
  const dead = nextWhere(controller.errors$, (e) => e instanceof ConnectionError);
  const started = Date.now();
  const event = await down;
  const elapsed = Date.now() - started;
  t.is(event.reason, 'echo_timeout');
  t.true(elapsed >= 80 && elapsed < 2_000, `declared dead after ${elapsed} ms`);
  t.is((await dead).dpid, 0x44n);
  const e = await t.throwsAsync(pending, { instanceOf: SessionClosedError });
  t.is(e.reason, 'echo_timeout');
  await sw.waitClosed();
});

test('any traffic from the switch counts as liveness, even without echo replies', async (t) => {
  const { controller, port } = await startController(t, { echoIntervalMs: 30, maxMissedEchoes: 2 });
  const { sw, session } = await connectSwitch(t, controller, port, { unanswered: ['ECHO_REQUEST'] });
  const chatter = setInterval(() => sw.send({ type: 'PORT_STATUS', xid: 0, reason: 2, desc: fakePort(1) }), 10);
  await until(() => sw.count('ECHO_REQUEST') >= 8);
  clearInterval(chatter);
  t.is(session.state, 'READY');
  const event = await next(controller.switchDown$);
  t.is(event.reason, 'echo_timeout', 'once the chatter stops, the missing echo replies count');
});

test('the controller answers the switch\'s ECHO_REQUEST with its xid and data', async (t) => {
  const { controller, port } = await startController(t);
  const { sw } = await connectSwitch(t, controller, port);
  sw.send({ type: 'ECHO_REQUEST', xid: 0, data: Buffer.from('ping') });
  sw.send({ type: 'ECHO_REQUEST', xid: 99, data: Buffer.from('pong') });
  const zero = await sw.firstMessage('ECHO_REPLY', (m) => m.data.toString() === 'ping');
  t.is(zero.xid, 0, 'xid 0 is echoed, not replaced');
  t.is((await sw.firstMessage('ECHO_REPLY', (m) => m.xid === 99)).data.toString(), 'pong');
});

test('requests pending when the session closes reject with SessionClosedError; later sends throw it', async (t) => {
  const { controller, port } = await startController(t);
  const { sw, session } = await connectSwitch(t, controller, port, { unanswered: ['BARRIER_REQUEST'] });
  const pending = session.barrier();
  sw.disconnect();
  const e = await t.throwsAsync(pending, { instanceOf: SessionClosedError });
  t.is(e.reason, 'peer_closed');
  t.is(e.msgType, 'BARRIER_REQUEST');
  t.throws(() => session.send({ type: 'BARRIER_REQUEST', xid: 0 }), { instanceOf: SessionClosedError });
  await t.throwsAsync(session.barrier(), { instanceOf: SessionClosedError });
});

test('a bad multipart type from the switch side is answered as BAD_MULTIPART by the fake', async (t) => {
  const { controller, port } = await startController(t);
  const { session } = await connectSwitch(t, controller, port);
  const e = await t.throwsAsync(session.multipart({ mpType: 'TABLE' }), { instanceOf: OfSwitchError });
  t.is(e.errType, OFPET.BAD_REQUEST);
  t.is(e.code, OFPBRC.BAD_MULTIPART);
  t.is(e.msgType, 'MULTIPART_REQUEST');
});
