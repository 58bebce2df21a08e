/**
 * The high-availability scenario (issue 10): the multi-zone Mininet scenario with one etcd member
 * and one `zonemesh run` per zone, every br-int connected to every controller. The etcd members
 * and the controllers run in the root namespace (etcd on 127.0.0.1); each controller listens on a
 * unix socket in every hypervisor's run directory (RUNDIR/ctl-ZONE.sock), and each br-int has one
 * primary controller connection per socket: OpenFlow roles apply only to primary connections, not
 * to the passive br-int.mgmt service socket that dial mode uses.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startEtcd, type EtcdCluster } from './etcd';
import { ZONEMESH_MAIN, OVERLAY_APPS, waitFor, type ContinuousPing, type HypervisorState, type OverlayScenario, type PingRun } from './overlay';
import { REPO_ROOT } from './paths';
import { parseFlowDump, type Dumped, type LogLine } from './restart';
import { freePort, run, spawnTracked } from './run';

export const HA_MODEL = join(REPO_ROOT, 'models', 'ha-three-zones.yaml');
export const LEASE_TTL_S = 2;

/** One controller of the HA scenario, zone Z's: `ctl-Z`. */
export class HaController {
  private child?: ChildProcess;

  constructor(
    readonly id: string,
    readonly zone: string,
    readonly configFile: string,
    readonly logFile: string,
  ) {}

  start(): void {
    const log = openSync(this.logFile, 'a');
    this.child = spawn(process.execPath, [ZONEMESH_MAIN, 'run', '--config', this.configFile], { stdio: ['ignore', log, log], cwd: REPO_ROOT });
    closeSync(log);
    writeFileSync(join(dirname(this.logFile), 'zonemesh.pid'), `${this.child.pid}\n`);
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL (default) or SIGTERM, and wait until it is gone */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const c = this.child;
    if (!c || !this.alive) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill(signal);
    await gone;
  }

  lines(): LogLine[] {
    let text = '';
    try {
      text = readFileSync(this.logFile, 'utf8');
    } catch {
      return [];
    }
    return text.split('\n').flatMap((l) => {
      try {
        return l.startsWith('{') ? [JSON.parse(l) as LogLine] : [];
      } catch {
        return []; // a line cut by a concurrent write
      }
    });
  }

  /** The times (ms since the epoch) this controller's switch `dpid` acked it as MASTER. */
  masterSince(dpid: string): number[] {
    const msg = new RegExp(`^master of ${dpid} with generation \\d+$`);
    return this.lines().filter((l) => l.component === 'mastership' && msg.test(l.msg)).map((l) => l.time);
  }
}

export interface HaCluster {
  etcd: EtcdCluster;
  /** zone -> the etcd member of that zone */
  etcdOf: Record<string, EtcdCluster['members'][number]>;
  controllers: Record<string, HaController>;
  stop(): Promise<void>;
}

/** '0x' and 16 hex digits, as the mastership log writes a dpid */
export const dpidText = (hv: HypervisorState): string => `0x${BigInt(hv.datapathId).toString(16).padStart(16, '0')}`;

/** the socket where zone `zone`'s controller listens for `hv`'s bridge */
const controllerSocket = (hv: HypervisorState, zone: string) => join(hv.rundir, `ctl-${zone}.sock`);

/**
 * Starts one etcd member per zone, imports the model, starts `ctl-Z` per zone on the etcd store
 * with the overlay apps, and connects every br-int to every controller.
 */
export async function startHaCluster(scenario: OverlayScenario, modelFile: string): Promise<HaCluster> {
  const st = scenario.state();
  const zones = Object.keys(st.router.zones).sort();
  const etcd = await startEtcd(zones.length);
  const etcdOf = Object.fromEntries(zones.map((z, i) => [z, etcd.members[i]!]));
  const controllers: Record<string, HaController> = {};
  const stop = async () => {
    await Promise.all(Object.values(controllers).map((c) => c.stop('SIGTERM')));
    await etcd.stop();
  };
  try {
    await run(process.execPath, [ZONEMESH_MAIN, 'model', 'import', modelFile, '--store', etcd.url]);
    const hvs = Object.values(st.hypervisors);
    for (const zone of zones) {
      const dir = join(scenario.stateDir, 'ha', `ctl-${zone}`);
      mkdirSync(dir, { recursive: true });
      const config = {
        apps: [...OVERLAY_APPS],
        store: etcd.url,
        zone,
        controllerId: `ctl-${zone}`,
        election: { leaseTtl: LEASE_TTL_S, preemptDelay: 10 },
        listen: hvs.map((hv) => `unix:${controllerSocket(hv, zone)}`),
        hypervisors: Object.fromEntries(Object.entries(st.hypervisors).map(([name, hv]) => [name, { ovsdb: hv.ovsdb }])),
        control: join(dir, 'control.sock'),
        logLevel: 'info',
      };
      const configFile = join(dir, 'run.json');
      writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
      controllers[zone] = new HaController(`ctl-${zone}`, zone, configFile, join(dir, 'zonemesh.log'));
      controllers[zone].start();
    }
    // one transaction per bridge: a Controller row per zone, max_backoff 1 s so a bridge reconnects quickly
    await Promise.all(
      Object.entries(st.hypervisors).map(([name, hv]) => {
        const rows = zones.flatMap((z) => ['--', `--id=@${z}`, 'create', 'Controller', `target="unix:${controllerSocket(hv, z)}"`, 'max_backoff=1000']);
        return scenario.exec(name, ['ovs-vsctl', '--timeout=20', ...rows, '--', 'set', 'bridge', hv.bridge, `controller=${zones.map((z) => `@${z}`).join(',')}`]).then((r) => {
          if (r.code !== 0) throw new Error(`set controllers on ${name}: ${r.stderr}`);
        });
      }),
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { etcd, etcdOf, controllers, stop };
}

/** the ID of the controller OVS reports MASTER of a hypervisor's bridge ('' when none) */
export async function bridgeMaster(scenario: OverlayScenario, hvName: string): Promise<string> {
  const r = await scenario.exec(hvName, ['ovs-vsctl', '--timeout=5', '--format=json', '--columns=target,role', 'list', 'controller']);
  if (r.code !== 0) throw new Error(`ovs-vsctl list controller on ${hvName}: ${r.stderr}`);
  const rows = (JSON.parse(r.stdout) as { data: [string, string | [string, unknown[]]][] }).data;
  const master = rows.find(([, role]) => role === 'master');
  return master ? (/(ctl-[a-z0-9]+)\.sock$/.exec(master[0])?.[1] ?? master[0]) : '';
}

/** `ovs-ofctl dump-flows` of a hypervisor's br-int */
export async function hvFlows(scenario: OverlayScenario, hvName: string): Promise<Dumped[]> {
  const hv = scenario.state().hypervisors[hvName]!;
  const r = await scenario.exec(hvName, ['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows', '--no-names', hv.bridge]);
  if (r.code !== 0) throw new Error(`dump-flows on ${hvName}: ${r.stderr}`);
  return parseFlowDump(r.stdout);
}

/**
 * Kills everything of a zone at once: its controller and etcd member (SIGKILL), its hypervisors'
 * ovs-vswitchd and ovsdb-server (SIGKILL, by their pidfiles) and their uplinks (down, in the
 * underlay router). Resolves with the moment the kill began.
 */
export async function killZone(scenario: OverlayScenario, cluster: HaCluster, zone: string): Promise<number> {
  const st = scenario.state();
  const hvs = Object.entries(st.hypervisors).filter(([, hv]) => hv.zone === zone);
  const at = Date.now();
  await Promise.all([
    cluster.controllers[zone]!.stop('SIGKILL'),
    cluster.etcdOf[zone]!.kill(),
    ...hvs.map(([name, hv]) =>
      run('sh', ['-c', `kill -9 $(cat ${hv.rundir}/ovs-vswitchd.pid) $(cat ${hv.rundir}/ovsdb-server.pid)`]).then(() =>
        scenario.exec('router', ['ip', 'link', 'set', st.router.uplinks[name]!, 'down']),
      ),
    ),
  ]);
  return at;
}

export const percentile = (xs: readonly number[], p: number): number => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

// ---- the failures, measured (test/integration/ha-zone-death.test.ts asserts, scripts/demo-ha.ts prints) ----

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const hvsOf = (scenario: OverlayScenario, zone: string) =>
  Object.entries(scenario.state().hypervisors).filter(([, hv]) => hv.zone === zone).map(([name]) => name);
/** the model's VMs: tier web or db, one of each per zone ('webb', 'dbc') */
const vm = (tier: 'web' | 'db', zone: string) => `${tier}${zone}`;

/** hypervisor -> the controller OVS reports master of its bridge */
export async function masters(scenario: OverlayScenario, hvs: readonly string[] = Object.keys(scenario.state().hypervisors)): Promise<Record<string, string>> {
  return Object.fromEntries(await Promise.all(hvs.map(async (hv) => [hv, await bridgeMaster(scenario, hv)] as const)));
}

/** Waits until every bridge has its own zone's controller as master and a VM of zone b reaches one of zone c. */
export async function waitHaReady(scenario: OverlayScenario, timeoutMs = 60_000): Promise<void> {
  const st = scenario.state();
  const own = Object.fromEntries(Object.entries(st.hypervisors).map(([name, hv]) => [name, `ctl-${hv.zone}`]));
  await waitFor('every bridge mastered by its own zone\'s controller', () => masters(scenario), (m) => Object.entries(own).every(([hv, c]) => m[hv] === c), { timeoutMs, intervalMs: 500 });
  await waitFor(`${vm('web', 'b')} reaching ${vm('db', 'c')}`, () => scenario.ping(vm('web', 'b'), vm('db', 'c'), 1), (r) => r.ok, { timeoutMs });
}

/** Waits until OVS reports a master other than `not` on a hypervisor's bridge; resolves with it. */
const newMaster = (scenario: OverlayScenario, hv: string, not: string) =>
  waitFor(`a master of ${hv} other than ${not}`, () => bridgeMaster(scenario, hv), (m) => m !== '' && m !== not, { timeoutMs: 15_000, intervalMs: 200 });

/** From the kill to the log line of `controller` saying `hv`'s bridge acked it as MASTER. */
function takeoverMs(scenario: OverlayScenario, controller: HaController, hv: string, killedAt: number): number {
  const at = controller.masterSince(dpidText(scenario.state().hypervisors[hv]!)).find((t) => t >= killedAt);
  if (at === undefined) throw new Error(`${controller.id} is master of ${hv} but logged no mastership of it since the kill`);
  return at - killedAt;
}

/** Pings (50 pps) between the VMs of two zones, in both tiers and both directions the ACLs allow. */
function startPings(scenario: OverlayScenario, z1: string, z2: string): Promise<ContinuousPing[]> {
  const pairs: [string, string][] = [[vm('web', z1), vm('db', z2)], [vm('web', z2), vm('db', z1)], [vm('web', z1), vm('web', z2)], [vm('db', z1), vm('db', z2)]];
  return Promise.all(pairs.map(([src, dst]) => scenario.startPing(src, dst, 20)));
}

export const describePing = (p: PingRun): string => `${p.src} -> ${p.ip}: ${p.received}/${p.sent} replies, lost ${p.lost.length}, longest gap ${p.longestGapMs} ms`;

interface FlowSnapshot {
  at: number;
  flows: Record<string, Dumped[]>;
}

async function snapshot(scenario: OverlayScenario, hvs: readonly string[]): Promise<FlowSnapshot> {
  const at = Date.now();
  return { at, flows: Object.fromEntries(await Promise.all(hvs.map(async (hv) => [hv, await hvFlows(scenario, hv)] as const))) };
}

/** A flow's identity in OVS: cookie, table, priority and match; a flow-mod MODIFY changes its actions, not its identity nor its duration. */
const flowKey = (f: Dumped) => f.rule.slice(0, f.rule.indexOf(' actions='));

/** What became of one bridge's flows between two snapshots. */
export interface FlowsKept {
  hv: string;
  /** flows of the first snapshot */
  before: number;
  /** of those, still there with new actions (modified in place) */
  modified: number;
  /** flows of the second snapshot that were not in the first */
  added: number;
  /** flows deleted, or deleted and added again (their duration restarted): should be none */
  problems: string[];
  elapsedS: number;
}

function flowsKept(before: FlowSnapshot, after: FlowSnapshot): FlowsKept[] {
  const elapsedS = (after.at - before.at) / 1000;
  return Object.entries(before.flows).map(([hv, flows]) => {
    const now = new Map(after.flows[hv]!.map((f) => [flowKey(f), f]));
    const problems = flows.flatMap((f) => {
      const g = now.get(flowKey(f));
      if (!g) return [`deleted: ${f.rule}`];
      return g.durationS + 1 < f.durationS + elapsedS ? [`re-added (duration ${f.durationS}s, then ${g.durationS}s): ${f.rule}`] : [];
    });
    const keys = new Set(flows.map(flowKey));
    return {
      hv,
      before: flows.length,
      modified: flows.filter((f) => now.has(flowKey(f)) && now.get(flowKey(f))!.rule !== f.rule).length,
      added: after.flows[hv]!.filter((g) => !keys.has(flowKey(g))).length,
      problems,
      elapsedS,
    };
  });
}

export const describeFlows = (f: FlowsKept): string =>
  `${f.hv}: ${f.before - f.problems.length} of ${f.before} flows kept over ${f.elapsedS.toFixed(1)} s (${f.modified} with new actions), ${f.added} added, ${f.problems.length} deleted or re-added`;

export interface ControllerDeath {
  zone: string;
  /** the zone whose controller took the dead controller's zone */
  heir: string;
  /** hypervisor of the zone -> its new master */
  masters: Record<string, string>;
  takeoverMs: Record<string, number>;
  pings: PingRun[];
  flows: FlowsKept[];
}

/** SIGKILL of zone `zone`'s controller alone, while the zone's VMs ping another zone's. */
export async function killController(scenario: OverlayScenario, cluster: HaCluster, zone: string, pingZone: string): Promise<ControllerDeath> {
  const all = Object.keys(scenario.state().hypervisors);
  const pings = await startPings(scenario, zone, pingZone);
  const before = await snapshot(scenario, all);
  await sleep(1_000);
  const killedAt = Date.now();
  await cluster.controllers[zone]!.stop('SIGKILL');
  const zoneHvs = hvsOf(scenario, zone);
  const newMasters = Object.fromEntries(await Promise.all(zoneHvs.map(async (hv) => [hv, await newMaster(scenario, hv, `ctl-${zone}`)] as const)));
  const heir = newMasters[zoneHvs[0]!]!.slice('ctl-'.length);
  const takeover = Object.fromEntries(zoneHvs.map((hv) => [hv, takeoverMs(scenario, cluster.controllers[newMasters[hv]!.slice('ctl-'.length)]!, hv, killedAt)]));
  await sleep(1_000);
  const runs = await Promise.all(pings.map((p) => p.stop()));
  return { zone, heir, masters: newMasters, takeoverMs: takeover, pings: runs, flows: flowsKept(before, await snapshot(scenario, all)) };
}

export const STREAM_LINES = 200;
const STREAM_PORT = 5001;

/** A TCP stream of STREAM_LINES numbered lines, one per 50 ms, from `src` to `dst`'s port 5001 (allowed web -> db). */
function startStream(scenario: OverlayScenario, src: string, dst: string) {
  const ip = scenario.state().vms[dst]!.ip;
  const server = scenario.exec(dst, ['sh', '-c', `nc -l ${STREAM_PORT} | wc -l`], 120_000);
  const client = sleep(500).then(() => // the listener first
    scenario.exec(src, ['sh', '-c', `i=0; while [ $i -lt ${STREAM_LINES} ]; do echo $i; i=$((i+1)); sleep 0.05; done | nc -N ${ip} ${STREAM_PORT}; echo "exit $?"`], 120_000),
  );
  return Promise.all([server, client]).then(([s, c]) => ({ src, dst, received: Number(s.stdout.trim()), client: c.stdout.trim() }));
}

export interface ZoneDeath {
  dead: string;
  /** the zone left with its own controller */
  last: string;
  /** survivors' masters before and after */
  mastersBefore: Record<string, string>;
  mastersAfter: Record<string, string>;
  killMs: number;
  /** surviving hypervisor whose master was in the dead zone -> ms from the kill to its new master's ack */
  takeoverMs: Record<string, number>;
  pings: PingRun[];
  stream: { src: string; dst: string; received: number; client: string };
  flows: FlowsKept[];
  /** the port added through the API right after the kill */
  port: { name: string; ip: string; hypervisor: string; callMs: number; seenMs: Record<string, number> };
}

const API_TOKEN = 'ha-scenario-token-0123456789';

/**
 * Kills zone `dead` whole while zone b's and zone `last`'s VMs ping each other and stream TCP;
 * right after the kill, adds a port on b's first hypervisor through `zonemesh port add` against a
 * `zonemesh api` on the surviving etcd members, and measures until its IP is in every surviving
 * bridge's flows (every survivor has a VM of its VPC).
 */
export async function killWholeZone(scenario: OverlayScenario, cluster: HaCluster, dead: string, last: string): Promise<ZoneDeath> {
  const survivors = [...hvsOf(scenario, 'b'), ...hvsOf(scenario, last)];
  const dir = join(scenario.stateDir, 'ha');
  const tokenFile = join(dir, 'api-token');
  writeFileSync(tokenFile, `${API_TOKEN}\n`);
  const apiUrl = `http://127.0.0.1:${await freePort()}`;
  const api = spawnTracked(process.execPath, [ZONEMESH_MAIN, 'api', '--store', `etcd://${cluster.etcdOf.b!.endpoint},${cluster.etcdOf[last]!.endpoint}`, '--listen', apiUrl.slice('http://'.length), '--token-file', tokenFile]);
  api.stdout?.resume();
  api.stderr?.resume();
  try {
    await waitFor('the API answering', () => fetch(`${apiUrl}/v1/zones`).then((r) => r.status, () => 0), (s) => s === 200, { timeoutMs: 15_000, intervalMs: 200 });
    // the new VM is plugged into br-int before the API is told about it, as a hypervisor agent would
    const port = { name: 'webn', vpc: 'app', subnet: 'web', mac: '02:41:01:00:0b:09', ip: '10.41.1.19', hypervisor: hvsOf(scenario, 'b')[0]! };
    const plug = await scenario.exec(port.hypervisor, ['sh', '-c', `ip link add ${port.name} type veth peer name ${port.name}-vm && ip link set ${port.name} up && ovs-vsctl --timeout=10 add-port br-int ${port.name}`]);
    if (plug.code !== 0) throw new Error(`plugging ${port.name} into ${port.hypervisor}: ${plug.stderr}`);

    const mastersBefore = await masters(scenario, survivors);
    const pings = await startPings(scenario, 'b', last);
    const stream = startStream(scenario, vm('web', 'b'), vm('db', last));
    const before = await snapshot(scenario, survivors);
    await sleep(2_000);

    const killedAt = await killZone(scenario, cluster, dead);
    const killMs = Date.now() - killedAt;
    const callAt = Date.now();
    await run(process.execPath, [ZONEMESH_MAIN, 'port', 'add', port.name, '--vpc', port.vpc, '--subnet', port.subnet, '--mac', port.mac, '--ip', port.ip, '--hypervisor', port.hypervisor, '--api', apiUrl, '--token-file', tokenFile]);
    const callMs = Date.now() - callAt;
    const orphans = survivors.filter((hv) => mastersBefore[hv] === `ctl-${dead}`);
    const takeover: Record<string, number> = {};
    const seenMs: Record<string, number> = {};
    await Promise.all([
      ...orphans.map(async (hv) => {
        const m = await newMaster(scenario, hv, `ctl-${dead}`);
        takeover[hv] = takeoverMs(scenario, cluster.controllers[m.slice('ctl-'.length)]!, hv, killedAt);
      }),
      ...survivors.map(async (hv) => {
        await waitFor(`${port.ip} in ${hv}'s flows`, () => hvFlows(scenario, hv), (fs) => fs.some((f) => f.rule.includes(port.ip)), { timeoutMs: 15_000, intervalMs: 100 });
        seenMs[hv] = Date.now() - callAt;
      }),
    ]);
    await sleep(2_000);
    const mastersAfter = await masters(scenario, survivors);
    const after = await snapshot(scenario, survivors);
    const streamResult = await stream;
    const runs = await Promise.all(pings.map((p) => p.stop()));
    return {
      dead, last, mastersBefore, mastersAfter, killMs, takeoverMs: takeover, pings: runs, stream: streamResult,
      flows: flowsKept(before, after),
      port: { name: port.name, ip: port.ip, hypervisor: port.hypervisor, callMs, seenMs },
    };
  } finally {
    api.kill('SIGTERM');
  }
}
