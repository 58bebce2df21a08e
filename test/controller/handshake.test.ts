import test from 'ava';
import { OFPET, OFPHFC } from '../../src/openflow';
import { HandshakeError, forSwitch, type SessionState } from '../../src/controller';
import { FakeSwitch, fakePort, of10Hello } from '../../src/testing';
import { connectSwitch, next, nextWhere, startController } from './util';

test('handshake: HELLO, FEATURES and PORT_DESC lead to READY and switchUp$ with dpid, features and ports', async (t) => {
  const { controller, port } = await startController(t);
  const ports = [fakePort(1, 'vm1'), fakePort(2, 'vm2'), fakePort(0xfffffffe, 'br-int')];
  const { sw, session } = await connectSwitch(t, controller, port, { dpid: 0xabcdn, ports, nTables: 64 });
  t.is(session.state, 'READY');
  t.is(session.dpid, 0xabcdn);
  t.is(session.features?.nTables, 64);
  t.deepEqual([...session.ports.keys()], [1, 2, 0xfffffffe]);
  t.is(session.ports.get(1)?.name, 'vm1');
  t.is(controller.session(0xabcdn), session);
  // Our HELLO carried the 1.3 version bitmap; the handshake then asked for features and ports.
  const hello = await sw.firstMessage('HELLO');
  t.deepEqual(hello.elements, [{ type: 'versionbitmap', versions: [4] }]);
  t.is(sw.count('FEATURES_REQUEST'), 1);
  t.truthy(await sw.firstMessage('MULTIPART_REQUEST', (m) => m.body.mpType === 'PORT_DESC'));
});

test('a HELLO offering only OF1.0 gets HELLO_FAILED/INCOMPATIBLE and a clean close', async (t) => {
  const { controller, port } = await startController(t);
  const failure = next(controller.errors$);
  const sw = new FakeSwitch({ helloBytes: of10Hello(77) });
  t.teardown(() => sw.close());
  await sw.connect({ transport: 'tcp', port });
  const error = await sw.firstMessage('ERROR');
  t.is(error.errType, OFPET.HELLO_FAILED);
  t.is(error.code, OFPHFC.INCOMPATIBLE);
  t.is(error.xid, 77);
  t.regex(error.data.toString('ascii'), /0x01/);
  await sw.waitClosed();
  const e = await failure;
  t.true(e instanceof HandshakeError);
  t.is((e as HandshakeError).failure, 'version_mismatch');
  t.is(controller.switches.size, 0);
});

test('a HELLO with a version bitmap including 1.3 negotiates 1.3 even with a higher header version', async (t) => {
  const { controller, port } = await startController(t);
  // version 0x06 header, bitmap {0x01, 0x04, 0x06}
  const hello = Buffer.from('0600001000000001' + '0001000800000052', 'hex');
  const sw = new FakeSwitch({ dpid: 9n, helloBytes: hello });
  t.teardown(() => sw.close());
  const up = next(controller.switchUp$);
  await sw.connect({ transport: 'tcp', port });
  t.is((await up).dpid, 9n);
});

test('a bitmap without 1.3 is refused even when the header version is 1.3', async (t) => {
  const { controller, port } = await startController(t);
  const hello = Buffer.from('0400001000000005' + '0001000800000040', 'hex'); // bitmap {0x06}
  const sw = new FakeSwitch({ helloBytes: hello });
  t.teardown(() => sw.close());
  await sw.connect({ transport: 'tcp', port });
  t.is((await sw.firstMessage('ERROR')).errType, OFPET.HELLO_FAILED);
  await sw.waitClosed();
  t.is(controller.switches.size, 0);
});

test('state transitions are HELLO -> FEATURES -> PORT_DESC -> READY, then CLOSED on disconnect', async (t) => {
  const { controller, port } = await startController(t);
  const { sw, session } = await connectSwitch(t, controller, port, { dpid: 3n });
  const seen: SessionState[] = [session.state];
  const down = next(controller.switchDown$.pipe(forSwitch(3n)));
  sw.disconnect();
  const event = await down;
  seen.push(session.state);
  t.deepEqual(seen, ['READY', 'CLOSED']);
  t.is(event.reason, 'peer_closed');
  t.is((await session.closed).reason, 'peer_closed');
  t.is(controller.session(3n), undefined);
});

test('auxiliary connections are rejected without disturbing the main connection', async (t) => {
  const { controller, port } = await startController(t);
  const { session } = await connectSwitch(t, controller, port, { dpid: 5n });
  const rejected = nextWhere(controller.errors$, (e) => e instanceof HandshakeError && e.failure === 'auxiliary_rejected');
  const aux = new FakeSwitch({ dpid: 5n, auxiliaryId: 1 });
  t.teardown(() => aux.close());
  await aux.connect({ transport: 'tcp', port });
  const e = await rejected;
  t.is(e.dpid, 5n);
  await aux.waitClosed();
  t.is(controller.session(5n), session);
  t.is(session.state, 'READY');
  await t.notThrowsAsync(session.barrier());
});

test('a peer that never sends HELLO is dropped after handshakeTimeoutMs', async (t) => {
  const { controller, port } = await startController(t, { handshakeTimeoutMs: 150 });
  const failure = nextWhere(controller.errors$, (e) => e instanceof HandshakeError);
  const sw = new FakeSwitch({ helloBytes: Buffer.alloc(0) });
  t.teardown(() => sw.close());
  await sw.connect({ transport: 'tcp', port });
  t.is(((await failure) as HandshakeError).failure, 'timeout');
  await sw.waitClosed();
});

test('200 switches connected at once all reach READY', async (t) => {
  const { controller, port } = await startController(t);
  const n = 200;
  const ups = new Set<bigint>();
  const allUp = new Promise<void>((resolve) => {
    const sub = controller.switchUp$.subscribe((e) => {
      ups.add(e.dpid);
      if (ups.size === n) {
        sub.unsubscribe();
        resolve();
      }
    });
  });
  const switches = Array.from({ length: n }, (_, i) => new FakeSwitch({ dpid: BigInt(i + 1), record: false }));
  t.teardown(() => Promise.all(switches.map((s) => s.close())));
  await Promise.all(switches.map((s) => s.connect({ transport: 'tcp', port })));
  await allUp;
  t.is(controller.switches.size, n);
  t.true([...controller.switches.values()].every((s) => s.state === 'READY'));
  // and each of them answers a round trip
  await Promise.all([...controller.switches.values()].map((s) => s.barrier()));
});

test('close() takes every switch down with controller_shutdown and completes the streams', async (t) => {
  const { controller, port } = await startController(t);
  const a = await connectSwitch(t, controller, port, { dpid: 0x100n });
  await connectSwitch(t, controller, port, { dpid: 0x101n });
  const downs: string[] = [];
  let completed = false;
  controller.switchDown$.subscribe({ next: (e) => downs.push(`${e.dpid}:${e.reason}`), complete: () => (completed = true) });
  await controller.close();
  t.deepEqual(downs.sort(), ['256:controller_shutdown', '257:controller_shutdown']);
  t.true(completed);
  await a.sw.waitClosed();
});
