/**
 * Harness for the Mininet tree tests (peer-*.test.ts, l2-*.test.ts): runs mininet/tree.py
 * against a controller, tracks every process it starts, and removes only its own switches.
 * Not a test file itself.
 */
import type { ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/paths';
import { run, spawnTracked } from '../helpers/run';

/** Mininet imports only under the Debian python. */
export const MININET_PYTHON = '/usr/bin/python3';
export const TREE_PY = join(REPO_ROOT, 'mininet', 'tree.py');

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitListening(port: number, timeoutMs = 15_000, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`the controller exited (status ${child.exitCode}) before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Output of a process, collected as it runs. */
export interface Collected {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

export function spawnCollected(command: string, args: readonly string[], env?: NodeJS.ProcessEnv): Collected {
  const child = spawnTracked(command, args, env ? { env: { ...process.env, ...env } } : {});
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 1 << 20) err = err.slice(-(1 << 19));
  });
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(-1));
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopProcess(p: Collected, graceMs = 5_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
}

export interface TreeOptions {
  controller: string;
  depth?: number;
  fanout?: number;
  /** switch name prefix, zm + letters (switches PREFIX1..n) */
  prefix: string;
  hostPrefix: string;
  rounds?: number;
  timeoutMs?: number;
}

export interface TreeRound {
  sent: number;
  received: number;
  loss_pct: number;
  flows: Record<string, number>;
  lost: string[];
}

export interface TreeResult {
  connected: boolean;
  loss_pct: number;
  sent: number;
  received: number;
  rounds: TreeRound[];
  flows_after_connect?: Record<string, number>;
  /** every switch's `dump-flows` lines after the last round */
  flow_dumps?: Record<string, string[]>;
  controller_targets?: Record<string, string>;
  controller_targets_end?: Record<string, string>;
  error?: string;
}

export interface TreeRun {
  status: number | null;
  result: TreeResult | undefined;
  stdout: string;
  stderr: string;
}

/** Mininet builds 9 hosts and 4 switches in a few seconds; past this it is stuck, not slow. */
const BRING_UP_LIMIT_MS = 45_000;

/**
 * Runs mininet/tree.py to completion (SIGTERM at the timeout, which still stops Mininet).
 * Mininet's own bring-up has been seen to hang on this shared machine before any switch exists
 * (no ZM_TOPO line); such a run is stopped and started once more, and `bringUpRetries` says so.
 * Nothing after bring-up is ever retried.
 */
export async function runTree(o: TreeOptions): Promise<TreeRun & { bringUpRetries: number }> {
  for (let retries = 0; ; retries++) {
    const run = await runTreeOnce(o);
    const stuckInBringUp = run.result?.error?.startsWith('terminated') === true && !run.stdout.includes('ZM_TOPO');
    if (!stuckInBringUp || retries === 1) return { ...run, bringUpRetries: retries };
    await cleanupTree(o.prefix);
  }
}

async function runTreeOnce(o: TreeOptions): Promise<TreeRun> {
  const args = [
    TREE_PY,
    '--controller', o.controller,
    '--depth', String(o.depth ?? 2),
    '--fanout', String(o.fanout ?? 3),
    '--prefix', o.prefix,
    '--host-prefix', o.hostPrefix,
    '--rounds', String(o.rounds ?? 1),
  ];
  const p = spawnCollected(MININET_PYTHON, args);
  const bringUp = setTimeout(() => {
    if (!p.stdout().includes('ZM_TOPO')) void stopProcess(p, 15_000);
  }, BRING_UP_LIMIT_MS);
  const timer = setTimeout(() => void stopProcess(p, 15_000), o.timeoutMs ?? 120_000);
  const status = await p.exited;
  clearTimeout(bringUp);
  clearTimeout(timer);
  const line = p
    .stdout()
    .split('\n')
    .find((l) => l.startsWith('ZM_RESULT '));
  const result = line ? (JSON.parse(line.slice('ZM_RESULT '.length)) as TreeResult) : undefined;
  return { status, result, stdout: p.stdout(), stderr: p.stderr() };
}

/**
 * The checks every tree test starts with: tree.py reported a result without error. Logs its
 * ZM_ lines (and any bring-up restart); returns the result, or undefined after a failed check.
 */
export function treeResult(t: ExecutionContext, run: TreeRun & { bringUpRetries: number }): TreeResult | undefined {
  const r = run.result;
  t.truthy(r, `tree.py printed no ZM_RESULT (status ${run.status})\n${run.stdout}\n${run.stderr.slice(-4000)}`);
  if (!r) return undefined;
  t.log(run.stdout.split('\n').filter((l) => l.startsWith('ZM_') && !l.startsWith('ZM_RESULT')).join('\n'));
  if (run.bringUpRetries) t.log(`Mininet bring-up hung and was restarted ${run.bringUpRetries}×`);
  t.is(r.error, undefined, `tree.py: ${r.error}\n${run.stdout}\n${run.stderr.slice(-4000)}`);
  return r;
}

/** Deletes the bridges PREFIX<n> and links PREFIX<n>-eth<k> a killed run may have left, and nothing else. */
export async function cleanupTree(prefix: string): Promise<void> {
  await run(MININET_PYTHON, [TREE_PY, '--cleanup', '--prefix', prefix], { timeoutMs: 60_000 });
}

/** Bridges on the system OVS whose names are PREFIX<digits>. */
export async function bridgesWithPrefix(prefix: string): Promise<string[]> {
  const { stdout } = await run('ovs-vsctl', ['--timeout=10', 'list-br']);
  const re = new RegExp(`^${prefix}\\d+$`);
  return stdout.split('\n').filter((b) => re.test(b));
}
