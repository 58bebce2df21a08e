import test, { type ExecutionContext } from 'ava';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { silentLogger } from '../../src/controller';
import { NX_CT_F_COMMIT, NX_NAT_F_DST, type Action } from '../../src/openflow';
import { Runtime, type SyncReport } from '../../src/runtime';
import { APP_SETTINGS, bucket, groupIdOf, inject, injectable, type AppContext, type AppSettings, type Group, type TableSpec, type ZonemeshApp } from '../../src/sdk';
import { assertOvsRunning, ofctl, vsctl, withBridge } from '../helpers/ovs';
import { freePort } from '../helpers/run';

/**
 * Groups against a real Open vSwitch: select groups whose buckets do ct(commit, nat(dst)) and continue
 * in a later table (the load balancer's shape) must read back as desired, so a restart sends no
 * group-mod; a changed bucket is a modify; a group nobody wants goes after the flow that used it.
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
