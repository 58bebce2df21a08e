import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BehaviorSubject, filter, firstValueFrom, timeout } from 'rxjs';
import { silentLogger } from '../../src/controller';
import { NX_CT_F_COMMIT, NX_NAT_F_DST, OFPP, type Action } from '../../src/openflow';
import { Runtime, type SyncReport } from '../../src/runtime';
import { APP_SETTINGS, bucket, groupIdOf, inject, injectable, type AppContext, type AppSettings, type Group, type TableSpec, type ZonemeshApp } from '../../src/sdk';
import { assertOvsRunning, ofctl, vsctl, withBridge } from '../helpers/ovs';
import { createLab, until } from '../helpers/restart';
import { TEST_STATE_DIR, freePort, run, spawnTracked } from '../helpers/run';

/**
 * Groups against a real Open vSwitch: select groups whose buckets do ct(commit, nat(dst)) and continue
 * in a later table (the load balancer's shape) must read back as desired, so a restart sends no
 * group-mod; a changed bucket is a modify; a group nobody wants goes after the flow that used it. And
 * with traffic: such a group spreads connections to a VIP over its backends, the replies are
 * un-NATed in the same zone, and a backend taken out of the group keeps its established connections.
 */

test.before(assertOvsRunning);

const TABLES: TableSpec[] = [
  { name: 'grp.vip', stage: 'l3', miss: 'next', matches: ['eth_type', 'ipv4_dst', 'ip_proto', 'tcp_dst'] },
  { name: 'grp.out', stage: 'output', miss: 'drop', matches: ['ipv4_dst'] },
];

@injectable()
class GroupApp implements ZonemeshApp {
  readonly name = 'grp';
  readonly appId = 41;
  readonly tables = TABLES;
  private readonly version: number;

  constructor(@inject(APP_SETTINGS) settings: AppSettings) {
    this.version = (settings.grp as { version: number }).version;
  }

  start(ctx: AppContext): void {
    ctx.on(ctx.events.switchUp$, ({ dpid }) => {
      const v2 = this.version === 2;
      this.vip(ctx, dpid, 'web', '10.1.1.100', v2 ? ['10.1.1.11', '10.1.1.13'] : ['10.1.1.11', '10.1.1.12']);
      this.vip(ctx, dpid, 'db', '10.1.1.101', v2 ? [] : ['10.1.1.21']);
    });
  }

  /** a select group with one ct-nat bucket per backend, and the flow that sends the VIP's traffic to it */
  private vip(ctx: AppContext, dpid: bigint, owner: string, vip: string, backends: string[]): void {
    const groupId = ctx.groupId(`vip:${vip}`);
    const after = ctx.pipeline.table('grp.out').id;
    const nat = (ip: string): Action => ({ type: 'ct', flags: NX_CT_F_COMMIT, zone: 7, recircTable: after, alg: 0, actions: [{ type: 'nat', flags: NX_NAT_F_DST, ipv4Min: ip, protoMin: 8080 }] });
    const groups: Group[] = backends.length ? [{ groupId, groupType: 'select', buckets: backends.map((ip) => bucket([nat(ip)], 100)) }] : [];
    ctx.setGroups(dpid, owner, groups);
    ctx.setFlows(dpid, owner, backends.length ? [ctx.flow('grp.vip', owner).priority(100).match({ eth_type: 0x0800, ipv4_dst: vip, ip_proto: 6, tcp_dst: 80 }).apply({ type: 'group', groupId }).build()] : []);
  }
}

async function startRuntime(t: ExecutionContext, port: number, version: number): Promise<{ runtime: Runtime; report: Promise<SyncReport> }> {
  const runtime = new Runtime({
    config: { apps: ['grp'], listen: [{ transport: 'tcp', host: '127.0.0.1', port }], dial: [], logLevel: 'silent', settings: { grp: { version } } },
    registry: { grp: GroupApp },
    logger: silentLogger(),
  });
  const report = firstValueFrom(runtime.reconciler.synced$.pipe(filter((r) => r.kind === 'full'), timeout(20_000)));
  runtime.reconciler.errors$.subscribe((e) => t.log(e.message));
  t.teardown(() => runtime.stop());
  await runtime.start();
  return { runtime, report };
}

/** `ovs-ofctl dump-groups`, one line per group, sorted */
async function dumpGroups(bridge: string): Promise<string[]> {
  const out = await ofctl(['dump-groups', bridge]);
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('group_id='))
    .sort();
}

test.serial('groups read back as desired: a restart sends no group-mod; a change modifies, an unwanted group goes after its flow', async (t) => {
  const port = await freePort();
  await withBridge('zmlb-grp', { controller: `tcp:127.0.0.1:${port}` }, async (bridge) => {
    await vsctl(['set', 'controller', bridge, 'max_backoff=1000']); // reconnect within a second of each restart
    const first = await startRuntime(t, port, 1);
    t.like(await first.report, { adds: 2 + TABLES.length, groupMods: 2, via: 'bundle', errors: 0 });
    const installed = await dumpGroups(bridge);
    t.is(installed.length, 2);
    t.true(installed.some((g) => g.includes('type=select') && g.includes('nat(dst=10.1.1.12:8080)')), installed.join('\n'));
    await first.runtime.stop();

    const second = await startRuntime(t, port, 1);
    t.like(await second.report, { adds: 0, modifies: 0, deletes: 0, groupMods: 0, via: 'none', errors: 0 }, 'OVS reports the groups as we desire them');
    t.deepEqual(await dumpGroups(bridge), installed);
    await second.runtime.stop();

    const third = await startRuntime(t, port, 2);
    t.like(await third.report, { deletes: 1, adds: 0, groupMods: 2, errors: 0 });
    const changed = await dumpGroups(bridge);
    t.is(changed.length, 1, changed.join('\n'));
    t.true(changed[0]!.includes('nat(dst=10.1.1.13:8080)') && !changed[0]!.includes('10.1.1.12'), changed[0]);
    const flows = await ofctl(['dump-flows', bridge]);
    t.regex(flows, new RegExp(`nw_dst=10\\.1\\.1\\.100.*actions=group:${groupIdOf(41, 'vip:10.1.1.100')}`), 'the web VIP flow still points at its group');
    t.false(flows.includes('10.1.1.101'), 'the db VIP flow is gone');
    await third.runtime.stop();
  });
});

// ---- the load balancer's primitive, with traffic ----

const VIP = '10.0.0.100';
const BACKEND_PORTS = [8081, 8082];
/** a conntrack zone no overlay test uses (the netdev datapath's conntrack is shared by every bridge) */
const NAT_ZONE = 4242;
/** the backend ports the VIP's group sends new connections to */
const inRotation = new BehaviorSubject<number[]>(BACKEND_PORTS);

/**
 * One VIP in front of two servers on host 2 (10.0.0.2:8081 and :8082): host 1's connections to
 * VIP:80 go to a select group whose buckets NAT them in conntrack zone NAT_ZONE and go on to table 1, which
 * outputs them to host 2; host 2's replies meet ct(nat) in the same zone, which gives them the VIP back.
 */
@injectable()
class NatApp implements ZonemeshApp {
  readonly name = 'nat';
  readonly appId = 42;
  readonly tables: TableSpec[] = [
    { name: 'nat.in', stage: 'classify', miss: 'drop', matches: ['in_port', 'eth_type', 'ipv4_dst', 'ip_proto', 'tcp_dst'], next: ['nat.to-backend', 'nat.to-client'] },
    { name: 'nat.to-backend', stage: 'l3', miss: 'drop', matches: ['eth_type'] },
    { name: 'nat.to-client', stage: 'output', miss: 'drop', matches: ['eth_type'] },
  ];

  start(ctx: AppContext): void {
    const groupId = ctx.groupId(`vip:${VIP}:80`);
    const table = (name: string) => ctx.pipeline.table(name).id;
    const nat = (port: number): Action => ({ type: 'ct', flags: NX_CT_F_COMMIT, zone: NAT_ZONE, recircTable: table('nat.to-backend'), alg: 0, actions: [{ type: 'nat', flags: NX_NAT_F_DST, ipv4Min: '10.0.0.2', protoMin: port }] });
    const dpids = new Set<bigint>();
    const setGroup = (dpid: bigint) => ctx.setGroups(dpid, 'vip', [{ groupId, groupType: 'select', buckets: inRotation.value.map((port) => bucket([nat(port)], 1)) }]);
    // a backend out of rotation changes the group alone, as a health check will
    ctx.on(inRotation, () => dpids.forEach(setGroup));
    ctx.on(ctx.events.switchUp$, ({ dpid }) => {
      dpids.add(dpid);
      setGroup(dpid);
      const out = (port: number): Action => ({ type: 'output', port, maxLen: 0 });
      const f = (name: string) => ctx.flow(name, 'vip');
      ctx.setFlows(dpid, 'vip', [
        f('nat.in').priority(200).match({ in_port: 1, eth_type: 0x0800, ipv4_dst: VIP, ip_proto: 6, tcp_dst: 80 }).apply({ type: 'group', groupId }).build(),
        f('nat.in').priority(100).match({ in_port: 2, eth_type: 0x0800 }).apply({ type: 'ct', flags: 0, zone: NAT_ZONE, recircTable: table('nat.to-client'), alg: 0, actions: [{ type: 'nat', flags: 0 }] }).build(),
        f('nat.in').priority(50).match({ eth_type: 0x0806 }).apply(out(OFPP.FLOOD)).build(),
        f('nat.to-backend').priority(100).match({ eth_type: 0x0800 }).apply(out(2)).build(),
        f('nat.to-client').priority(100).match({ eth_type: 0x0800 }).apply(out(1)).build(),
      ]);
    });
  }
}

/**
 * A client that keeps one HTTP/1.1 connection to the VIP: prints the body of a first GET /name, then
 * for each line on stdin sends another GET on the same connection and prints its body. A reset or a
 * close ends it with a traceback and a non-zero status.
 */
const KEEPALIVE_CLIENT = `
import http.client, sys
c = http.client.HTTPConnection('${VIP}', 80, timeout=5)
def get():
    c.request('GET', '/name')
    print(c.getresponse().read().decode(), flush=True)
get()
for _ in sys.stdin:
    get()
`;

test.serial('a select group of ct(commit,nat(dst)) buckets spreads connections to a VIP over the backends; replies come back from the VIP; a group change keeps established connections', async (t) => {
  const lab = await createLab(t, 'zmlbn');
  // teardowns run last first: this one while the bridge, and so the datapath, is still there. OVS 3.1's
  // flush-conntrack refuses a datapath name beside zone=, so it works when the netdev datapath is the only one.
  t.teardown(() => run('ovs-appctl', ['dpctl/flush-conntrack', `zone=${NAT_ZONE}`]).catch((e: Error) => t.log(`conntrack zone ${NAT_ZONE} not flushed: ${e.message}`)));
  const [client, server] = lab.hosts;
  // each backend serves a file `name` that holds its own name
  const root = join(TEST_STATE_DIR, 'zmlbn-www');
  for (const [i, port] of BACKEND_PORTS.entries()) {
    mkdirSync(join(root, String(port)), { recursive: true });
    writeFileSync(join(root, String(port), 'name'), `b${i + 1}`);
    const child = spawnTracked('ip', ['netns', 'exec', server, 'python3', '-m', 'http.server', '--protocol', 'HTTP/1.1', String(port), '--bind', '10.0.0.2', '--directory', join(root, String(port))]);
    t.teardown(() => child.kill('SIGKILL'));
  }
  // the userspace datapath does not complete the partial checksums a veth hands it: TCP fails without this
  for (const ns of lab.hosts) await run('ip', ['netns', 'exec', ns, 'ethtool', '-K', 'eth0', 'tx', 'off']);
  // host 1 reaches the VIP at host 2's MAC: ARP for the VIP is the app's job, not this test's
  await run('ip', ['netns', 'exec', client, 'ip', 'neigh', 'replace', VIP, 'lladdr', '02:00:00:00:00:02', 'dev', 'eth0']);
  const port = await freePort();
  const runtime = new Runtime({
    config: { apps: ['nat'], listen: [{ transport: 'tcp', host: '127.0.0.1', port }], dial: [], logLevel: 'silent', settings: {} },
    registry: { nat: NatApp },
    logger: silentLogger(),
  });
  const report = firstValueFrom(runtime.reconciler.synced$.pipe(filter((r) => r.kind === 'full'), timeout(20_000)));
  runtime.reconciler.errors$.subscribe((e) => t.log(e.message));
  t.teardown(() => runtime.stop());
  await runtime.start();
  await lab.addBridge(`tcp:127.0.0.1:${port}`);
  t.like(await report, { groupMods: 1, errors: 0 });

  const requests = async (n: number): Promise<Map<string, number>> => {
    const served = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      // curl fails unless the reply comes from VIP:80, the connection it opened
      const { stdout } = await run('ip', ['netns', 'exec', client, 'curl', '-sS', '--max-time', '5', '--retry', '5', '--retry-connrefused', `http://${VIP}/name`]);
      served.set(stdout, (served.get(stdout) ?? 0) + 1);
    }
    t.log(`${n} requests to ${VIP}:80 served by ${JSON.stringify(Object.fromEntries(served))}`);
    return served;
  };
  t.deepEqual([...(await requests(40)).keys()].sort(), ['b1', 'b2'], 'every request answered, by one of the backends, and both backends served some');

  // a long-lived connection, then its backend out of the group: new connections avoid it, the old one goes on
  const keeper = spawnTracked('ip', ['netns', 'exec', client, 'python3', '-c', KEEPALIVE_CLIENT], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => keeper.kill('SIGKILL'));
  let printed = '';
  keeper.stdout!.on('data', (d: Buffer) => (printed += d.toString()));
  keeper.stderr!.on('data', (d: Buffer) => (printed += d.toString()));
  const lines = () => printed.split('\n').filter(Boolean);
  await until('the long-lived connection answered', 10_000, () => (lines().length > 0 ? true : undefined));
  const kept = lines()[0]!;
  t.regex(kept, /^b[12]$/, printed);
  const other = kept === 'b1' ? 'b2' : 'b1';
  const changed = firstValueFrom(runtime.reconciler.synced$.pipe(timeout(10_000)));
  inRotation.next(BACKEND_PORTS.filter((_, i) => `b${i + 1}` !== kept));
  t.like(await changed, { kind: 'incremental', groupMods: 1, adds: 0, deletes: 0, modifies: 0, errors: 0 }, 'one group modify, no flow touched');
  t.deepEqual([...(await requests(10)).keys()], [other], `new connections go to ${other} only`);
  const exited = once(keeper, 'exit');
  keeper.stdin!.end('again\n');
  const [code] = await exited;
  t.is(code, 0, printed);
  t.deepEqual(lines(), [kept, kept], `the connection established before the change still reaches ${kept}, through its conntrack NAT`);
  const conntrack = (await run('ovs-appctl', ['dpctl/dump-conntrack', 'netdev@ovs-netdev', `zone=${NAT_ZONE}`])).stdout;
  t.regex(conntrack, new RegExp(`dst=${VIP.replace(/\./g, '\\.')},sport=\\d+,dport=80\\),reply=\\(src=10\\.0\\.0\\.2,dst=10\\.0\\.0\\.1,sport=808[12]`), 'conntrack holds the VIP connection with the backend as its reply side');
});
