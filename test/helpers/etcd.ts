import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnTracked } from './run';

/** One etcd member we run: its client endpoint, and kill/restart for failure tests. */
export interface EtcdMember {
  readonly name: string;
  /** HOST:PORT of its client URL */
  readonly endpoint: string;
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
export async function startEtcd(size = 1): Promise<EtcdCluster> {
  const dir = mkdtempSync(join(DATA_ROOT, 'zm-etcd-'));
  const ports = await Promise.all(Array.from({ length: size * 2 }, () => freePort()));
  const names = Array.from({ length: size }, (_, i) => `m${i}`);
  const peers = names.map((n, i) => `${n}=http://127.0.0.1:${ports[2 * i + 1]}`).join(',');
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
      child = spawnTracked('etcd', args);
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
