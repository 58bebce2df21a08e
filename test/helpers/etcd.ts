import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, rmdirSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { NFT, freePort, run, spawnTracked } from './run';

/** One etcd member we run: its client endpoint, and kill/restart for failure tests. */
export interface EtcdMember {
  readonly name: string;
  /** HOST:PORT of its client URL */
  readonly endpoint: string;
  /** the port of its peer URL (on 127.0.0.1) */
  readonly peerPort: number;
  /** its process id while it runs */
  readonly pid: number | undefined;
  /** SIGKILL, and wait for the process to go */
  kill(): Promise<void>;
  /** starts it again on its data dir; resolves when it reports healthy */
  restart(): Promise<void>;
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  /** `etcd://` URL of every member */
  readonly url: string;
  readonly endpoints: string[];
  stop(): Promise<void>;
}

// tmpfs when there is one: fsync on a disk would make each write cost milliseconds
const DATA_ROOT = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

function healthy(endpoint: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(`http://${endpoint}/health`, { timeout: 500 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(/"health":\s*"true"/.test(body)));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

async function waitHealthy(endpoint: string, child: () => ChildProcess | undefined, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child()?.exitCode !== null) throw new Error(`etcd at ${endpoint} exited: ${stderr().slice(-2000)}`);
    if (await healthy(endpoint)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`etcd at ${endpoint} not healthy after 15 s: ${stderr().slice(-2000)}`);
}

/**
 * Starts an etcd cluster of `size` members on 127.0.0.1 with free ports and a fresh data dir each
 * (every process tracked, for test.sh to kill). Short heartbeats so a lost leader is replaced quickly.
 */
export async function startEtcd(size = 1, options: { partitionable?: boolean } = {}): Promise<EtcdCluster> {
  const dir = mkdtempSync(join(DATA_ROOT, 'zm-etcd-'));
  const ports = await Promise.all(Array.from({ length: size * 2 }, () => freePort()));
  const names = Array.from({ length: size }, (_, i) => `m${i}`);
  const peers = names.map((n, i) => `${n}=http://127.0.0.1:${ports[2 * i + 1]}`).join(',');
  if (options.partitionable) for (let i = 0; i < size; i++) mkdirSync(cgroupOf(ports[2 * i + 1]!), { recursive: true });
  const members = names.map((name, i) => {
    const endpoint = `127.0.0.1:${ports[2 * i]}`;
    const peer = `http://127.0.0.1:${ports[2 * i + 1]}`;
    const args = [
      `--name=${name}`,
      `--data-dir=${join(dir, name)}`,
      `--listen-client-urls=http://${endpoint}`,
      `--advertise-client-urls=http://${endpoint}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=${peers}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=zm-${ports[0]}`,
      '--heartbeat-interval=50',
      '--election-timeout=500',
      '--logger=zap',
      '--log-level=error',
    ];
    let child: ChildProcess | undefined;
    let stderr = '';
    const start = () => {
      stderr = '';
      // a partitionable member runs in a cgroup of its own from the start: nftables tells its sockets by it
      child = options.partitionable ? spawnTracked('sh', ['-c', `echo $$ > ${cgroupOf(ports[2 * i + 1]!)}/cgroup.procs && exec etcd "$@"`, 'etcd', ...args]) : spawnTracked('etcd', args);
      child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-20_000)));
      child.stdout?.resume();
    };
    const kill = async () => {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await gone;
    };
    start();
    const member: EtcdMember = {
      name,
      endpoint,
      peerPort: ports[2 * i + 1]!,
      get pid() {
        return child?.exitCode === null ? child.pid : undefined;
      },
      kill,
      restart: async () => {
        await kill();
        start();
        await waitHealthy(endpoint, () => child, () => stderr);
      },
    };
    return { member, ready: () => waitHealthy(endpoint, () => child, () => stderr) };
  });
  const endpoints = members.map((m) => m.member.endpoint);
  const stop = async () => {
    await Promise.all(members.map((m) => m.member.kill()));
    rmSync(dir, { recursive: true, force: true });
    if (options.partitionable) for (const m of members) rmdirSync(cgroupOf(m.member.peerPort));
  };
  try {
    await Promise.all(members.map((m) => m.ready()));
  } catch (e) {
    await stop();
    throw e;
  }
  return { members: members.map((m) => m.member), endpoints, url: `etcd://${endpoints.join(',')}`, stop };
}

/** The members, the current leader first: a fault sequence that starts with it kills the member clients are most likely on. */
export async function membersLeaderFirst(cluster: EtcdCluster): Promise<EtcdMember[]> {
  const { connectEtcd } = await import('../../src/model/etcd-client');
  const ids = await Promise.all(
    cluster.members.map(async (m) => {
      const one = connectEtcd([m.endpoint]);
      try {
        const status = await one.maintenance.status();
        return { m, isLeader: status.header.member_id === status.leader };
      } finally {
        one.close();
      }
    }),
  );
  return [...ids.filter((x) => x.isLeader), ...ids.filter((x) => !x.isLeader)].map((x) => x.m);
}

/**
 * Cuts `member` of a `partitionable` cluster off from the other members (not from its clients):
 * nftables drops what its cgroup's sockets send to the others' peer ports, and everything to or
 * from its own peer port. Resolves with the function that heals the partition.
 */
export async function partitionMember(cluster: EtcdCluster, member: EtcdMember): Promise<() => Promise<void>> {
  const cgroup = cgroupOf(member.peerPort);
  if (!existsSync(cgroup)) throw new Error(`etcd member ${member.name} is not partitionable: start the cluster with { partitionable: true }`);
  const table = `zm_etcd_part_${member.peerPort}`;
  const others = cluster.members.filter((m) => m !== member).map((m) => m.peerPort);
  const rules = [
    `add table inet ${table}`,
    `add chain inet ${table} out { type filter hook output priority 0; }`,
    `add rule inet ${table} out socket cgroupv2 level 1 "${relative('/sys/fs/cgroup', cgroup)}" tcp dport { ${others.join(', ')} } drop`,
    `add rule inet ${table} out tcp dport ${member.peerPort} drop`,
    `add rule inet ${table} out tcp sport ${member.peerPort} drop`,
  ];
  await run(NFT, ['-f', '-'], { input: rules.join('\n') });
  return () => run(NFT, ['delete', 'table', 'inet', table]).then(() => undefined);
}

/** the cgroup v2 hierarchy: /sys/fs/cgroup itself, or its 'unified' part on a hybrid host */
const CGROUP2 = existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
/** the cgroup of the partitionable member with this peer port */
const cgroupOf = (peerPort: number) => join(CGROUP2, `zm-etcd-${peerPort}`);
