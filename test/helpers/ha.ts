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
import { join } from 'node:path';
import { startEtcd, type EtcdCluster } from './etcd';
import { ZONEMESH_MAIN, OVERLAY_APPS, type OverlayScenario, type HypervisorState } from './overlay';
import { REPO_ROOT } from './paths';
import { parseFlowDump, type Dumped, type LogLine } from './restart';
import { run } from './run';

export const HA_MODEL = join(REPO_ROOT, 'models', 'ha-three-zones.yaml');
export const LEASE_TTL_S = 3;

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
    writeFileSync(`${this.logFile}.pid`, `${this.child.pid}\n`);
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
