import test from 'ava';
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Controller, ConnectionError, ControllerConfigError, forSwitch, parseDialTarget, silentLogger } from '../../src/controller';
import { FakeSwitch } from '../../src/testing';
import { makePkiFiles } from '../helpers/pki';
import { tempDir } from '../helpers/run';
import { next, nextWhere } from './util';

function newController(t: { teardown(fn: () => Promise<void>): void }): Controller {
  const controller = new Controller({ logger: silentLogger() });
  t.teardown(() => controller.close());
  return controller;
}

test('dial targets parse as ovs-vsctl spells them', (t) => {
  t.deepEqual(parseDialTarget('unix:/var/run/openvswitch/br-int.mgmt'), { transport: 'unix', path: '/var/run/openvswitch/br-int.mgmt' });
  t.deepEqual(parseDialTarget('tcp:10.0.0.5:6653'), { transport: 'tcp', host: '10.0.0.5', port: 6653 });
  t.deepEqual(parseDialTarget('tcp:[::1]:6653'), { transport: 'tcp', host: '::1', port: 6653 });
  for (const bad of ['ssl:1.2.3.4:6653', 'tcp:host', 'tcp:host:0', 'unix:', '/tmp/x']) {
    t.throws(() => parseDialTarget(bad), { instanceOf: ControllerConfigError }, bad);
  }
});

test('dial mode: connects to a switch listening on a Unix socket and reconnects after the switch restarts', async (t) => {
  const path = join(tempDir(t), 'br-int.mgmt');
  const controller = newController(t);
  const first = new FakeSwitch({ dpid: 0x91n });
  t.teardown(() => first.close());
  await first.listen({ transport: 'unix', path });

  const up1 = next(controller.switchUp$.pipe(forSwitch(0x91n)));
  const dialer = controller.dial(`unix:${path}`, { minBackoffMs: 20, maxBackoffMs: 200 });
  const e1 = await up1;
  t.is(e1.session.origin, 'dialed');
  t.is(e1.session.remote, `unix:${path}`);
  t.is(dialer.session, e1.session);

  // The switch restarts: its listener and connection go away, and come back a little later.
  const down = next(controller.switchDown$.pipe(forSwitch(0x91n)));
  const failedDial = nextWhere(controller.errors$, (e) => e instanceof ConnectionError);
  await first.close();
  t.is((await down).reason, 'peer_closed');
  await failedDial; // at least one redial found nobody listening
  const second = new FakeSwitch({ dpid: 0x91n });
  t.teardown(() => second.close());
  const up2 = next(controller.switchUp$.pipe(forSwitch(0x91n)));
  await second.listen({ transport: 'unix', path });
  const e2 = await up2;
  t.not(e2.session, e1.session);
  t.is(controller.session(0x91n), e2.session);
  await t.notThrowsAsync(e2.session.barrier());

  // Stopping the dialer closes the session and stops redialing.
  const stopped = next(controller.switchDown$.pipe(forSwitch(0x91n)));
  dialer.stop();
  t.is((await stopped).reason, 'closed_by_controller');
  await second.waitClosed();
  const connections = second.connections;
  await new Promise((r) => setTimeout(r, 100));
  t.is(second.connections, connections, 'no redial after stop');
});

test('dial mode over TCP', async (t) => {
  const controller = newController(t);
  const sw = new FakeSwitch({ dpid: 0x92n });
  t.teardown(() => sw.close());
  const port = await sw.listen({ transport: 'tcp', port: 0 });
  const up = next(controller.switchUp$);
  controller.dial(`tcp:127.0.0.1:${port}`);
  t.is((await up).dpid, 0x92n);
});

test('listening on a Unix socket replaces a stale socket file but never a live one', async (t) => {
  const path = join(tempDir(t), 'zonemesh.sock');
  // a process that died without cleaning up leaves its socket file behind
  execFileSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`]);
  t.true(lstatSync(path).isSocket());
  const controller = newController(t);
  await controller.listen({ transport: 'unix', path });
  const sw = new FakeSwitch({ dpid: 0x93n });
  t.teardown(() => sw.close());
  const up = next(controller.switchUp$);
  await sw.connect({ transport: 'unix', path });
  const e = await up;
  t.is(e.dpid, 0x93n);
  t.is(e.session.origin, 'accepted');

  const rival = newController(t);
  await t.throwsAsync(rival.listen({ transport: 'unix', path }), { instanceOf: ControllerConfigError, message: /in use/ });
  await t.notThrowsAsync(e.session.barrier());
});

/** the throwaway PKI's files, read as the TLS options take them */
function makePki(dir: string): Record<'caCert' | 'serverKey' | 'serverCert' | 'clientKey' | 'clientCert' | 'rogueKey' | 'rogueCert', Buffer> {
  const files = makePkiFiles(dir);
  const read = (path: string) => readFileSync(path);
  return {
    caCert: read(files.caCert),
    serverKey: read(files.serverKey),
    serverCert: read(files.serverCert),
    clientKey: read(files.clientKey),
    clientCert: read(files.clientCert),
    rogueKey: read(files.rogueKey),
    rogueCert: read(files.rogueCert),
  };
}

test('TLS with client certificates: a switch with a CA-signed cert gets through, others are rejected', async (t) => {
  const pki = makePki(tempDir(t));
  const controller = newController(t);
  const listener = await controller.listen({
    transport: 'tls', host: '127.0.0.1', port: 0, key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert,
  });
  const server = { host: '127.0.0.1', port: listener.port!, servername: 'localhost', ca: pki.caCert };

  const good = new FakeSwitch({ dpid: 0xa1n });
  t.teardown(() => good.close());
  const up = next(controller.switchUp$);
  await good.connect({ transport: 'tls', options: { ...server, key: pki.clientKey, cert: pki.clientCert } });
  t.is((await up).dpid, 0xa1n);
  await t.notThrowsAsync(controller.session(0xa1n)!.barrier());

  for (const [label, creds] of [
    ['no certificate', {}],
    ['a certificate from another CA', { key: pki.rogueKey, cert: pki.rogueCert }],
  ] as const) {
    const rejected = nextWhere(controller.errors$, (e) => e instanceof ConnectionError && /TLS/.test(e.message));
    const intruder = new FakeSwitch({ dpid: 0xa2n });
    t.teardown(() => intruder.close());
    // With TLS 1.3 the client learns of the rejection only after its side of the handshake.
    await intruder.connect({ transport: 'tls', options: { ...server, ...creds } }).catch(() => undefined);
    await rejected;
    await intruder.waitClosed();
    t.is(controller.session(0xa2n), undefined, label);
  }
  t.is(controller.switches.size, 1);
});
