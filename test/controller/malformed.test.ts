import test from 'ava';
import { randomBytes } from 'node:crypto';
import { OFPBRC, OFPET, OFPT } from '../../src/openflow';
import { MalformedMessageError, forSwitch } from '../../src/controller';
import { rawHeader } from '../../src/testing';
import { connectSwitch, next, nextWhere, startController } from './util';

const isMalformed = (e: unknown): e is MalformedMessageError => e instanceof MalformedMessageError;

test('an unknown message type gets OFPT_ERROR BAD_REQUEST/BAD_TYPE and the session stays READY', async (t) => {
  const { controller, port } = await startController(t);
  const { sw, session } = await connectSwitch(t, controller, port, { dpid: 0x51n });
  const reported = nextWhere(controller.errors$, isMalformed);
  const garbage = rawHeader(0xc8, 12, 501);
  sw.sendRaw(garbage);
  const reply = await sw.firstMessage('ERROR', (m) => m.xid === 501);
  t.is(reply.errType, OFPET.BAD_REQUEST);
  t.is(reply.code, OFPBRC.BAD_TYPE);
  t.deepEqual(reply.data, garbage, 'the offending message is echoed');
  const e = (await reported) as MalformedMessageError;
  t.is(e.dpid, 0x51n);
  t.is(e.xid, 501);
  t.false(e.fatal);
  t.is(e.decodeError.kind, 'unknown_type');
  t.is(session.state, 'READY');
  await t.notThrowsAsync(session.barrier());
});

test('a length inside the body that does not fit gets BAD_REQUEST/BAD_LEN and the session stays READY', async (t) => {
  const { controller, port } = await startController(t);
  const { sw, session } = await connectSwitch(t, controller, port);
  // PORT_STATUS needs 72 body bytes; this one has 8
  sw.sendRaw(rawHeader(OFPT.PORT_STATUS, 16, 502));
  const reply = await sw.firstMessage('ERROR', (m) => m.xid === 502);
  t.is(reply.errType, OFPET.BAD_REQUEST);
  t.is(reply.code, OFPBRC.BAD_LEN);
  // a hello element whose length overruns the message
  const hello = Buffer.from('0400001000000203' + '000100ff00000010', 'hex');
  sw.sendRaw(hello);
  t.is((await sw.firstMessage('ERROR', (m) => m.xid === 0x203)).code, OFPBRC.BAD_LEN);
  t.is(session.state, 'READY');
  t.is(session.stats.malformed, 2);
  await t.notThrowsAsync(session.barrier());
});

test('a message with another version after negotiation gets BAD_REQUEST/BAD_VERSION', async (t) => {
  const { controller, port } = await startController(t);
  const { sw, session } = await connectSwitch(t, controller, port);
  sw.sendRaw(rawHeader(OFPT.ECHO_REQUEST, 8, 503, 0x01));
  const reply = await sw.firstMessage('ERROR', (m) => m.xid === 503);
  t.is(reply.code, OFPBRC.BAD_VERSION);
  t.is(session.state, 'READY');
});

test('a malformed OFPT_ERROR is reported but never answered with an error', async (t) => {
  const { controller, port } = await startController(t);
  const { sw, session } = await connectSwitch(t, controller, port, { dpid: 0x52n });
  const reported = nextWhere(controller.errors$, isMalformed);
  sw.sendRaw(rawHeader(OFPT.ERROR, 10, 504)); // needs at least 12 bytes
  t.is((await reported).xid, 504);
  await session.barrier();
  t.is(sw.count('ERROR'), 0);
});

test('a malformed reply to an awaited request fails that request at once instead of timing out', async (t) => {
  const { controller, port } = await startController(t);
  const { sw, session } = await connectSwitch(t, controller, port, { unanswered: ['GET_CONFIG_REQUEST'] });
  const pending = session.request({ type: 'GET_CONFIG_REQUEST', xid: 9000 }, { timeoutMs: 10_000 });
  await sw.firstMessage('GET_CONFIG_REQUEST');
  sw.sendRaw(rawHeader(OFPT.GET_CONFIG_REPLY, 10, 9000)); // body must be 4 bytes
  const e = await t.throwsAsync(pending, { instanceOf: MalformedMessageError });
  t.is(e.xid, 9000);
  t.is(session.state, 'READY');
});

test('a length below 8 breaks framing: that session closes cleanly, another switch is unaffected', async (t) => {
  const { controller, port } = await startController(t);
  const bad = await connectSwitch(t, controller, port, { dpid: 0x61n });
  const good = await connectSwitch(t, controller, port, { dpid: 0x62n });
  const down = next(controller.switchDown$.pipe(forSwitch(0x61n)));
  const reported = nextWhere(controller.errors$, isMalformed);
  bad.sw.sendRaw(rawHeader(OFPT.ECHO_REQUEST, 4, 505));
  const event = await down;
  t.is(event.reason, 'framing_error');
  const e = (await reported) as MalformedMessageError;
  t.true(e.fatal);
  t.is(e.dpid, 0x61n);
  await bad.sw.waitClosed();
  t.is(good.session.state, 'READY');
  await t.notThrowsAsync(good.session.barrier());
  t.is(controller.session(0x62n), good.session);
});

test('a stream of random but well-framed messages never crashes the session or other switches', async (t) => {
  const { controller, port } = await startController(t);
  const victim = await connectSwitch(t, controller, port, { dpid: 0x71n });
  const bystander = await connectSwitch(t, controller, port, { dpid: 0x72n });
  const errors: unknown[] = [];
  const sub = controller.errors$.subscribe((e) => errors.push(e));
  t.teardown(() => sub.unsubscribe());
  const frames: Buffer[] = [];
  for (let i = 0; i < 500; i++) {
    const body = randomBytes(Math.floor(Math.random() * 120));
    const frame = Buffer.concat([rawHeader(Math.floor(Math.random() * 32), 8 + body.length, 100_000 + i), body]);
    frame.writeUInt16BE(frame.length, 2);
    frames.push(frame);
  }
  victim.sw.sendRaw(Buffer.concat(frames));
  await victim.session.barrier();
  t.is(victim.session.state, 'READY');
  t.true(errors.length > 0);
  await t.notThrowsAsync(bystander.session.barrier());
});
