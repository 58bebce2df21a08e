/**
 * lb-health against a real Open vSwitch: the checks leave the controller as PACKET_OUTs into the
 * backend VM's port and its answers come back through the app's flow on the same (netdev) bridge.
 * A namespace runs Python's http.server: its HTTP and TCP checks go up; stopped, they are down within
 * interval × fall + 0.5 s; started again, up within interval × rise + 0.5 s (the bounds of issue 12).
 * The VM gone silent is down within interval × fall + 0.5 s too, with the recommended 0.3 s timeout. A server answering 500 is
 * down. Every transition arrives on BACKEND_HEALTH's health$, in order.
 */
import test from 'ava';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { bindAppServices } from '../../src/apps/registry';
import { CHECK_TABLE, LbHealthApp, type BackendHealthBoard } from '../../src/apps/lb-health';
import { BACKEND_HEALTH, type BackendHealth } from '../../src/sdk';
import { TestModelStore, runApps } from '../../src/testing';
import { assertOvsRunning, dumpFlows, vsctl } from '../helpers/ovs';
import { createLab, until } from '../helpers/restart';
import { TEST_STATE_DIR, run, spawnTracked } from '../helpers/run';

test.before(assertOvsRunning);

const GATEWAY = '10.0.0.254';
/** the recommended timings (docs/load-balancers.md): a 0.3 s timeout keeps a silent backend within the bound */
const CHECK = { intervalSeconds: 1, timeoutSeconds: 0.3, rise: 2, fall: 2 };
const BOUND_SLACK_MS = 500;

/** the lab's bridge as hypervisor hv1; vm1 (zmlh-h1, 10.0.0.1) answers 500 on 8081, vm2 (zmlh-h2, 10.0.0.2) serves HTTP on 8080 */
function modelDoc(datapathId: string) {
  return {
    zones: [{ name: 'lab', underlay: '172.16.99.0/24' }],
    hypervisors: [{ name: 'hv1', zone: 'lab', tunnelIp: '172.16.99.1', datapathId }],
    vpcs: [
      {
        name: 'blue',
        vni: 99,
        subnets: [{ name: 'web', cidr: '10.0.0.0/24', gateway: GATEWAY }],
        loadBalancers: [
          { name: 'web-http', subnet: 'web', vip: '10.0.0.100', ports: [80], backends: [{ port: 'vm2', targetPort: 8080 }], healthCheck: { type: 'http', path: '/', ...CHECK } },
          { name: 'web-tcp', subnet: 'web', vip: '10.0.0.101', ports: [8080], backends: [{ port: 'vm2' }], healthCheck: { type: 'tcp', ...CHECK } },
          { name: 'broken', subnet: 'web', vip: '10.0.0.102', ports: [80], backends: [{ port: 'vm1', targetPort: 8081 }], healthCheck: { type: 'http', ...CHECK } },
        ],
      },
    ],
    ports: [1, 2].map((i) => ({ name: `vm${i}`, vpc: 'blue', subnet: 'web', mac: `02:00:00:00:00:0${i}`, ip: `10.0.0.${i}`, hypervisor: 'hv1', interface: `zmlh${i}` })),
  };
}

/** answers every GET with 500 */
const ERROR_SERVER = `
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_error(500)
http.server.HTTPServer(('10.0.0.1', 8081), H).serve_forever()
`;

test.serial('HTTP and TCP checks through OVS: up, down within interval × fall + 0.5 s of the server stopping or the VM going silent, up within interval × rise + 0.5 s of its start; 500 is down', async (t) => {
  t.timeout(90_000);
  const lab = await createLab(t, 'zmlh');
  const [h1, h2] = lab.hosts;
  // a placeholder datapath id until the bridge exists and says its own
  const store = new TestModelStore(modelDoc('0x1'));
  const routerMac = store.current().subnets[0]!.routerMac;
  for (const ns of lab.hosts) {
    // the userspace datapath does not complete the partial checksums a veth hands it
    await run('ip', ['netns', 'exec', ns, 'ethtool', '-K', 'eth0', 'tx', 'off']);
    // the VMs answer their gateway: resolving it is arp-responder's job, not this test's
    await run('ip', ['netns', 'exec', ns, 'ip', 'neigh', 'replace', GATEWAY, 'lladdr', routerMac, 'dev', 'eth0']);
  }
  const www = join(TEST_STATE_DIR, 'zmlh-www');
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, 'index.html'), 'vm2\n');
  const startServer = async () => {
    const child = spawnTracked('ip', ['netns', 'exec', h2, 'python3', '-u', '-m', 'http.server', '8080', '--bind', '10.0.0.2', '--directory', www]);
    t.teardown(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await until('http.server listening', 10_000, () => (out.includes('Serving HTTP') ? true : undefined));
    return child;
  };
  const errorServer = spawnTracked('ip', ['netns', 'exec', h1, 'python3', '-c', ERROR_SERVER]);
  t.teardown(() => errorServer.kill('SIGKILL'));
  let server = await startServer();

  const apps = await runApps({ apps: { 'lb-health': LbHealthApp }, model: store, bindServices: bindAppServices });
  t.teardown(() => apps.stop());
  const board: BackendHealthBoard = apps.runtime.container.get(BACKEND_HEALTH);
  const seen: BackendHealth[] = [];
  board.health$.subscribe((h) => seen.push(h));
  const next = (loadBalancer: string, state: BackendHealth['state'], timeoutMs: number) => firstValueFrom(board.health$.pipe(filter((h) => h.loadBalancer === loadBalancer && h.state === state), timeout(timeoutMs)));
  const synced = firstValueFrom(apps.runtime.reconciler.synced$.pipe(filter((r) => r.kind === 'full'), timeout(20_000)));
  await lab.addBridge(`tcp:127.0.0.1:${apps.runtime.listening[0]!.port}`);
  t.like(await synced, { errors: 0 });
  const dpid = (await vsctl(['get', 'bridge', lab.bridge, 'datapath_id'])).trim().replaceAll('"', '');
  const upHttp = next('web-http', 'up', 15_000);
  const upTcp = next('web-tcp', 'up', 15_000);
  const broken = next('broken', 'down', 15_000);
  t.true(store.setDocument(modelDoc(`0x${dpid}`)));
  await Promise.all([upHttp, upTcp]);
  t.like(await broken, { port: 'vm1', reason: 'HTTP status 500, expected 200' });
  const tableId = apps.runtime.pipeline.table(CHECK_TABLE).id;
  const checkFlows = (await dumpFlows(lab.bridge)).filter((f) => f.table === tableId && f.priority === 100);
  t.is(checkFlows.length, 2, 'one per checked VM and port: vm2:8080 (its http and tcp checks share it) and vm1:8081');

  // the server stops: the kernel refuses the next SYNs
  const downHttp = next('web-http', 'down', 10_000);
  const downTcp = next('web-tcp', 'down', 10_000);
  const exited = once(server, 'exit');
  server.kill('SIGTERM');
  await exited;
  const stoppedAt = Date.now();
  const downBound = CHECK.intervalSeconds * 1000 * CHECK.fall + BOUND_SLACK_MS;
  for (const [name, down] of [['http', await downHttp], ['tcp', await downTcp]] as const) {
    const after = down.at - stoppedAt;
    t.log(`${name} check: down ${after} ms after the server stopped (bound ${downBound} ms): ${down.reason}`);
    t.true(after <= downBound, `${name}: ${after} ms`);
  }
  t.regex((await downTcp).reason!, /^refused/);

  const upHttpAgain = next('web-http', 'up', 10_000);
  const upTcpAgain = next('web-tcp', 'up', 10_000);
  server = await startServer();
  const startedAt = Date.now();
  const upBound = CHECK.intervalSeconds * 1000 * CHECK.rise + BOUND_SLACK_MS;
  for (const [name, up] of [['http', await upHttpAgain], ['tcp', await upTcpAgain]] as const) {
    const after = up.at - startedAt;
    t.log(`${name} check: up ${after} ms after the server started (bound ${upBound} ms)`);
    t.true(after <= upBound, `${name}: ${after} ms`);
  }

  // the VM goes silent (its interface down): each check times out, within the same bound
  const silentHttp = next('web-http', 'down', 10_000);
  const silentTcp = next('web-tcp', 'down', 10_000);
  await run('ip', ['netns', 'exec', h2, 'ip', 'link', 'set', 'eth0', 'down']);
  const silencedAt = Date.now();
  for (const [name, down] of [['http', await silentHttp], ['tcp', await silentTcp]] as const) {
    const after = down.at - silencedAt;
    t.log(`${name} check: down ${after} ms after the VM went silent (bound ${downBound} ms): ${down.reason}`);
    t.true(after <= downBound, `${name}: ${after} ms`);
    t.regex(down.reason!, /^timeout/);
  }

  // health$ carried exactly the transitions, in order, per backend
  const of = (lb: string) => seen.filter((h) => h.loadBalancer === lb).map((h) => h.state);
  t.deepEqual(of('web-http'), ['up', 'down', 'up', 'down']);
  t.deepEqual(of('web-tcp'), ['up', 'down', 'up', 'down']);
  t.deepEqual(of('broken'), ['down']);
  t.deepEqual(board.snapshot().map((h) => `${h.loadBalancer} ${h.state}`).sort(), ['broken down', 'web-http down', 'web-tcp down']);
});
