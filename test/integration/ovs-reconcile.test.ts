import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { filter, firstValueFrom, timeout } from 'rxjs';
import pino from 'pino';
import { silentLogger } from '../../src/controller';
import type { SyncReport } from '../../src/runtime/reconciler';
import { NX_CT_F_COMMIT, OFPCML_NO_BUFFER, OFPP, fieldRef, type Action } from '../../src/openflow';
import { APP_SETTINGS, cidr, inject, injectable, type AppContext, type AppSettings, type Flow, type TableSpec, type ZonemeshApp } from '../../src/sdk';
import { Runtime } from '../../src/runtime';
import { assertOvsRunning, ofctl, vsctl } from '../helpers/ovs';
import { REPO_ROOT } from '../helpers/paths';
import { freePort, spawnTracked, TEST_STATE_DIR } from '../helpers/run';

/**
 * Restart safety against a real Open vSwitch: what we install must read back as what we desire (or a
 * restarted controller would rewrite it), and a restart must send only the difference. Flows only;
 * the ping-through-a-restart test lives elsewhere.
 */

const BRIDGE = 'zm-rec';
test.before(assertOvsRunning);
test.afterEach.always(() => vsctl(['--if-exists', 'del-br', BRIDGE]));

const output = (port: number): Action => ({ type: 'output', port, maxLen: port === OFPP.CONTROLLER ? OFPCML_NO_BUFFER : 0 });
const setField = (field: string, value: number | bigint | string): Action => ({ type: 'set_field', field: { field, value } } as Action);
const move = (src: string, dst: string, nBits: number): Action => ({ type: 'reg_move', src: fieldRef(src), dst: fieldRef(dst), nBits, srcOfs: 0, dstOfs: 0 });

const TABLES: TableSpec[] = [
  { name: 'canon.classify', stage: 'classify', miss: 'drop', matches: ['in_port', 'tunnel_id', 'vlan_vid', 'eth_type'], next: ['canon.l3'] },
  {
    name: 'canon.l3',
    stage: 'l3',
    miss: 'next',
    matches: ['metadata', 'eth_type', 'ipv4_dst', 'ip_proto', 'tcp_dst', 'ct_state', 'arp_op', 'arp_tpa', 'reg0', 'eth_dst'],
    maskable: ['metadata', 'ipv4_dst', 'ct_state', 'eth_dst'],
  },
  { name: 'canon.out', stage: 'output', miss: 'controller', matches: ['reg0', 'eth_type'] },
];

/**
 * Flows in the shapes the overlay apps build: goto and write_metadata, set_field on tunnel and ARP
 * fields, reg_move, ct with a register zone and recirculation, dec_ttl, masked matches, VLANs.
 * `version: 2` drops one flow, changes one flow's actions and adds one.
 */
@injectable()
class CanonApp implements ZonemeshApp {
  readonly name = 'canon';
  readonly appId = 40;
  readonly tables = TABLES;
  private readonly version: number;

  constructor(@inject(APP_SETTINGS) settings: AppSettings) {
    this.version = (settings.canon as { version: number }).version;
  }

  start(ctx: AppContext): void {
    ctx.on(ctx.events.switchUp$, ({ dpid }) => {
      for (const [owner, flows] of this.flows(ctx)) ctx.setFlows(dpid, owner, flows);
    });
  }

  private flows(ctx: AppContext): Map<string, Flow[]> {
    const v2 = this.version === 2;
    const f = (table: string, owner: string) => ctx.flow(table, owner);
    const flows: [string, Flow][] = [
      ['port1', f('canon.classify', 'port1').priority(100).match({ in_port: 1 }).writeMetadata(5n, 0xffn).goto('canon.l3').build()],
      ['tunnel', f('canon.classify', 'tunnel').priority(90).match({ tunnel_id: 0x64n }).apply(setField('reg0', 5)).goto('canon.l3').build()],
      ['vlan', f('canon.classify', 'vlan').priority(80).match({ vlan_vid: 0x1000 | 100 }).apply({ type: 'pop_vlan' }).goto('canon.l3').build()],
      [
        'subnet',
        f('canon.l3', 'subnet')
          .priority(200)
          .match({ metadata: { value: 5n, mask: 0xffn }, eth_type: 0x0800, ipv4_dst: cidr('10.0.0.0/24') })
          .apply(
            { type: 'dec_nw_ttl' },
            setField('eth_src', '02:00:00:00:00:01'),
            setField('eth_dst', '02:00:00:00:00:02'),
            { type: 'ct', flags: NX_CT_F_COMMIT, zone: { field: fieldRef('reg6'), ofs: 0, nBits: 16 }, recircTable: ctx.pipeline.table('canon.out').id, alg: 0, actions: [] },
          )
          .build(),
      ],
      ['established', f('canon.l3', 'established').priority(150).match({ ct_state: { value: 0x22, mask: 0x22 }, eth_type: 0x0800 }).apply(output(2)).build()],
      [
        'arp',
        f('canon.l3', 'arp')
          .priority(300)
          .match({ eth_type: 0x0806, arp_op: 1, arp_tpa: '10.0.0.1' })
          .apply(
            move('eth_src', 'eth_dst', 48),
            setField('eth_src', '02:00:00:00:00:01'),
            setField('arp_op', 2),
            move('arp_sha', 'arp_tha', 48),
            move('arp_spa', 'arp_tpa', 32),
            setField('arp_sha', '02:00:00:00:00:01'),
            setField('arp_spa', '10.0.0.1'),
            output(OFPP.IN_PORT),
          )
          .build(),
      ],
      ['remote', f('canon.l3', 'remote').priority(120).match({ reg0: 5 }).apply(setField('tun_ipv4_dst', '192.168.1.7'), setField('tunnel_id', 0x55n), output(v2 ? 7 : 3)).build()],
      ['web', f('canon.l3', 'web').priority(110).match({ eth_type: 0x0800, ip_proto: 6, tcp_dst: 80 }).apply(output(OFPP.CONTROLLER)).build()],
      ['multicast', f('canon.l3', 'multicast').priority(100).match({ eth_dst: { value: '01:00:00:00:00:00', mask: '01:00:00:00:00:00' } }).apply(output(OFPP.FLOOD)).build()],
      [
        'tagged',
        f('canon.l3', 'tagged').priority(90).match({ eth_type: 0x0800, ip_proto: 17 }).apply({ type: 'push_vlan', ethertype: 0x8100 }, setField('vlan_vid', 0x1000 | 10), output(4)).build(),
      ],
      ['ct-out', f('canon.out', 'ct-out').priority(10).match({ reg0: 7, eth_type: 0x0800 }).apply({ type: 'ct', flags: 0, zone: 3, recircTable: 255, alg: 0, actions: [] }, output(5)).build()],
    ];
    if (v2) flows.push(['late', f('canon.out', 'late').priority(20).match({ reg0: 8 }).apply(output(6)).build()]);
    const byOwner = new Map<string, Flow[]>();
    for (const [owner, flow] of flows) if (!(v2 && owner === 'web')) byOwner.set(owner, [...(byOwner.get(owner) ?? []), flow]);
    return byOwner;
  }
}


/** The bridge and its controller in one transaction: a bridge's first controller flushes its flows. */
async function createBridge(port: number): Promise<void> {
  await vsctl([
    '--if-exists', 'del-br', BRIDGE,
    '--', 'add-br', BRIDGE,
    '--', 'set', 'bridge', BRIDGE, 'datapath_type=netdev', 'fail_mode=secure', 'protocols=OpenFlow13',
    '--', 'set-controller', BRIDGE, `tcp:127.0.0.1:${port}`,
    // reconnect within a second of the controller coming back
    '--', 'set', 'controller', BRIDGE, 'max_backoff=1000',
  ]);
}

async function startRuntime(t: ExecutionContext, port: number, version: number): Promise<{ runtime: Runtime; report: Promise<SyncReport> }> {
  const runtime = new Runtime({
    config: { apps: ['canon'], listen: [{ transport: 'tcp', host: '127.0.0.1', port }], dial: [], logLevel: 'silent', settings: { canon: { version } } },
    registry: { canon: CanonApp },
    logger: process.env.ZM_DEBUG ? pino({ level: 'debug' }, pino.destination(2)) : silentLogger(),
  });
  const report = firstValueFrom(runtime.reconciler.synced$.pipe(filter((r) => r.kind === 'full'), timeout(20_000)));
  runtime.reconciler.errors$.subscribe((e) => t.log(e.message));
  t.teardown(() => runtime.stop());
  await runtime.start();
  return { runtime, report };
}

interface DumpedFlow {
  cookie: string;
  durationS: number;
  /** the line without its counters and duration */
  rule: string;
}

async function dump(): Promise<DumpedFlow[]> {
  const out = await ofctl(['dump-flows', '--no-names', BRIDGE]);
  return out
    .split('\n')
    .filter((l) => l.startsWith(' cookie='))
    .map((l) => ({
      cookie: /cookie=(0x[0-9a-f]+)/.exec(l)![1]!,
      durationS: Number(/duration=([\d.]+)s/.exec(l)![1]),
      rule: l.replace(/ duration=[\d.]+s,| n_packets=\d+,| n_bytes=\d+,/g, '').trim(),
    }))
    .sort((a, b) => a.rule.localeCompare(b.rule));
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MISS_FLOWS = TABLES.length;
const V1_FLOWS = 11 + MISS_FLOWS;

test.serial('what we install reads back as what we desire: a restarted controller sends nothing, a changed one only the difference', async (t) => {
  const port = await freePort();
  const first = await startRuntime(t, port, 1);
  await createBridge(port);
  t.like(await first.report, { deletes: 0, modifies: 0, adds: V1_FLOWS, via: 'bundle', errors: 0 });
  const installed = await dump();
  t.is(installed.length, V1_FLOWS);
  await first.runtime.stop();

  await delay(1_100); // durations must visibly grow across the restart
  const second = await startRuntime(t, port, 1);
  t.like(await second.report, { deletes: 0, modifies: 0, adds: 0, via: 'none', errors: 0 }, 'the switch already holds exactly the desired flows');
  const after = await dump();
  t.deepEqual(after.map((f) => f.rule), installed.map((f) => f.rule));
  after.forEach((f, i) => t.true(f.durationS > installed[i]!.durationS + 1, `duration kept growing: ${f.rule}`));
  await second.runtime.stop();

  const third = await startRuntime(t, port, 2);
  t.like(await third.report, { deletes: 1, modifies: 1, adds: 1, errors: 0 });
  const changed = await dump();
  t.is(changed.length, V1_FLOWS);
  const byRule = new Map(installed.map((f) => [f.rule, f]));
  const kept = changed.filter((f) => byRule.has(f.rule));
  t.is(kept.length, V1_FLOWS - 2, 'all but the removed and the modified flow are untouched');
  for (const f of kept) t.true(f.durationS > 1, `untouched flow kept its duration: ${f.rule}`);
  t.true(changed.some((f) => f.rule.includes('reg0=0x8') && f.durationS < 1), 'the new flow was added');
  t.true(changed.some((f) => f.rule.includes('output:7') && f.durationS > 1), 'modify_strict keeps the modified flow (and its duration)');
  t.false(changed.some((f) => f.rule.includes('tp_dst=80')), 'the flow no longer desired is gone');
  await third.runtime.stop();
});

test.serial('zonemesh run with static flows survives kill -9: the restart sends nothing and durations keep growing', async (t) => {
  const port = await freePort();
  const config = join(TEST_STATE_DIR, 'ovs-reconcile.yaml');
  writeFileSync(
    config,
    [
      'apps: [static-flows]',
      `listen: ['tcp:127.0.0.1:${port}']`,
      `control: ${join(TEST_STATE_DIR, 'ovs-reconcile.sock')}`,
      'settings:',
      '  static-flows:',
      '    flows:',
      '      - { name: p1-to-p2, priority: 100, match: { in_port: 1 }, actions: [{ output: 2 }] }',
      '      - { name: p2-to-p1, priority: 100, match: { in_port: 2 }, actions: [{ output: 1 }] }',
      '      - { name: arp, priority: 50, match: { eth_type: 0x0806 }, actions: [{ output: flood }] }',
      '      - { name: to-gw, priority: 60, match: { eth_type: 0x0800, ipv4_dst: 10.0.0.0/24 }, actions: [{ set_field: { eth_dst: "02:00:00:00:00:09" } }, { output: 2 }] }',
      '',
    ].join('\n'),
  );
  const startController = async () => {
    const child = spawnTracked(process.execPath, [join(REPO_ROOT, 'dist/src/cli/main.js'), 'run', '--config', config]);
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let log = '';
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const deadline = Date.now() + 20_000;
    const synced = () => log.split('\n').find((l) => l.includes('"kind":"full"'));
    while (!synced()) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`controller did not sync; its log ends:\n${log.slice(-3000)}`);
      await delay(50);
    }
    return { child, sync: JSON.parse(synced()!) as Record<string, unknown> };
  };

  const first = startController();
  await delay(300);
  await createBridge(port);
  const one = await first;
  t.like(one.sync, { adds: 5, deletes: 0, modifies: 0 });
  const before = await dump();
  t.is(before.length, 5);
  one.child.kill('SIGKILL');
  await once(one.child, 'exit');

  await delay(1_100);
  const two = await startController();
  t.like(two.sync, { adds: 0, deletes: 0, modifies: 0, msg: 'in sync; nothing to send' });
  const after = await dump();
  t.deepEqual(after.map((f) => f.rule), before.map((f) => f.rule));
  after.forEach((f, i) => t.true(f.durationS > before[i]!.durationS + 1, `duration kept growing: ${f.rule}`));
  two.child.kill('SIGTERM');
  const [code] = (await once(two.child, 'exit')) as [number | null];
  t.is(code, 0, 'SIGTERM stops the controller cleanly');
  t.is((await dump()).length, 5, 'a stopped controller leaves the flows in place (fail_mode=secure)');
});
