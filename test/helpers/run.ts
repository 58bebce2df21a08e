import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A command that failed to start, exited non-zero, was killed, or ran past its timeout. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly details: {
      code?: number | string | null;
      signal?: NodeJS.Signals | null;
      timedOut: boolean;
      stdout: string;
      stderr: string;
    },
  ) {
    const how = details.timedOut
      ? 'timed out'
      : details.signal
        ? `was killed by ${details.signal}`
        : `failed (exit ${details.code})`;
    const stderr = details.stderr.trim();
    super(`${[command, ...args].join(' ')} ${how}${stderr ? `: ${stderr.slice(-2000)}` : ''}`);
  }
}

export interface RunOptions {
  /** default 30 s; the process gets SIGKILL when it runs longer */
  timeoutMs?: number;
  /** written to the process's stdin, which is then closed */
  input?: string | Buffer;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

const MAX_OUTPUT = 256 * 1024 * 1024; // tshark's JSON for a large batch is tens of MB

/** Runs a command to completion; rejects with CommandError unless it exits 0. */
export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      {
        encoding: 'utf8',
        timeout: opts.timeoutMs ?? 30_000,
        killSignal: 'SIGKILL',
        maxBuffer: MAX_OUTPUT,
        cwd: opts.cwd,
        env: opts.env,
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: NodeJS.Signals | null };
        reject(
          new CommandError(command, args, {
            code: e.code,
            signal: e.signal,
            timedOut: e.killed === true && e.signal === 'SIGKILL',
            stdout,
            stderr: stderr || e.message,
          }),
        );
      },
    );
    child.stdin?.on('error', () => {
      // the command may exit without reading its input; the exit status tells what happened
    });
    child.stdin?.end(opts.input);
  });
}

/** nftables by its path: under npm and npx, node_modules/.bin comes first in PATH, and @vercel/nft has a bin named nft */
export const NFT = '/usr/sbin/nft';

/** A fresh directory in the OS's temporary folder, removed when the test (or, given `test`, the file) ends. */
export function tempDir(t: { teardown(fn: () => void): void } | { after: { always(fn: () => void): void } }, prefix = 'zm-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  if ('teardown' in t) t.teardown(remove);
  else t.after.always(remove);
  return dir;
}

/** Directory whose *.pid files scripts/test.sh kills at cleanup, whatever way the tests ended. */
export const TEST_STATE_DIR = process.env.ZONEMESH_TEST_STATE ?? '/tmp/zonemesh-test';

/**
 * Starts a long-running process and records its pid under TEST_STATE_DIR/pids, so that a
 * crashed or timed-out test cannot leave it behind. The pidfile goes away when it exits.
 */
export function spawnTracked(command: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (child.pid === undefined) return child; // the 'error' event reports why
  const dir = join(TEST_STATE_DIR, 'pids');
  mkdirSync(dir, { recursive: true });
  const pidfile = join(dir, `${child.pid}.pid`);
  writeFileSync(pidfile, `${child.pid}\n`);
  child.once('exit', () => rmSync(pidfile, { force: true }));
  return child;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
