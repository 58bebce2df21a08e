import type { ExecutionContext } from 'ava';
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { until } from '../controller/util';
import { REPO_ROOT } from '../helpers/paths';
import { spawnTracked } from '../helpers/run';

export const CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
  lines: string[];
}

/** Runs `zonemesh ARGS` as a child process, as a user would. */
export function runCli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stdout.split('\n').filter((l) => l !== '') };
}

/** `runCli` without blocking this process (an in-process fake switch must keep answering meanwhile). */
export function runCliAsync(...args: string[]): Promise<Omit<CliResult, 'lines'>> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

/**
 * `zonemesh run ARGS` as a child process, resolved once it logs 'running'; killed when the test ends.
 * `umask` (octal text) applies to it. Throws with its output if it exits first.
 */
export async function startRun(t: ExecutionContext, args: readonly string[], umask?: string): Promise<{ child: ChildProcess; log: () => string }> {
  const child =
    umask === undefined
      ? spawnTracked(process.execPath, [CLI, 'run', ...args])
      : spawnTracked('sh', ['-c', `umask ${umask} && exec "$0" "$@"`, process.execPath, CLI, 'run', ...args]);
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await until(() => log.includes('"msg":"running"') || child.exitCode !== null, 15_000);
  if (child.exitCode !== null) throw new Error(`zonemesh run exited: ${log}`);
  return { child, log: () => log };
}

/** The JSON a decode line carries for a decoded value: 64-bit integers as "0x…", bytes as hex. */
export function asDecodeJson(value: unknown): unknown {
  if (typeof value === 'bigint') return `0x${value.toString(16)}`;
  if (Buffer.isBuffer(value)) return value.toString('hex');
  if (Array.isArray(value)) return value.map(asDecodeJson);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, asDecodeJson(v)]));
  }
  return value;
}
