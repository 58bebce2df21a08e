// System test (real OVS, tcpdump, port 6653): the file name makes scripts/test.sh run it serially.
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertOvsRunning, vsctl, withBridge } from '../helpers/ovs';
import { run, spawnTracked } from '../helpers/run';
import { runCli } from './run-cli';

const BRIDGE = 'zmtest-cap';
const CONTROLLER = 'tcp:127.0.0.1:6653';

/** Resolves once `child` has written `pattern` to stderr; rejects if it exits first or takes too long. */
function stderrShows(child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${what}: no ${pattern} within ${timeoutMs} ms; stderr: ${seen}`)), timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      seen += d.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before ${pattern}: ${seen}`));
    });
    child.once('error', reject);
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function listening(port: number): Promise<boolean> {
  return (await run('ss', ['-Hltn', `sport = :${port}`])).stdout.trim() !== '';
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))]);
}

test('a fresh capture of OVS talking to ovs-testcontroller decodes with no errors', async (t) => {
  await assertOvsRunning();
  if (await listening(6653)) return t.fail('port 6653 is already in use; this test needs it for ovs-testcontroller');
  const dir = mkdtempSync(join(tmpdir(), 'zm-ovs-capture-'));
  const pcap = join(dir, 'of13.pcap');
  let tcpdump: ChildProcess | undefined;
  let controller: ChildProcess | undefined;
  try {
    tcpdump = spawnTracked('tcpdump', ['-U', '-s', '0', '-i', 'lo', '-w', pcap, 'tcp port 6653']);
    await stderrShows(tcpdump, /listening on lo/, 'tcpdump');
    controller = spawnTracked('ovs-testcontroller', ['-O', 'OpenFlow13', 'ptcp:6653:127.0.0.1']);
    const controllerFailed = new Promise<never>((_, reject) => controller!.once('exit', (c) => reject(new Error(`ovs-testcontroller exited (${c})`))));
    controllerFailed.catch(() => {}); // raced below
    await Promise.race([until('ovs-testcontroller to listen on 6653', () => listening(6653)), controllerFailed]);

    await withBridge(BRIDGE, { controller: CONTROLLER }, async () => {
      await until('the bridge to connect to its controller', async () =>
        (await vsctl(['--bare', '--columns=is_connected', 'find', 'controller', `target="${CONTROLLER}"`])).includes('true'),
      );
      // ARP requests out of the bridge's own port miss every flow: PACKET_INs, then PACKET_OUTs
      await run('ip', ['link', 'set', BRIDGE, 'up']);
      await run('ip', ['addr', 'add', '10.254.77.1/24', 'dev', BRIDGE]);
      await run('ping', ['-c', '2', '-i', '0.3', '-W', '1', '10.254.77.2']).catch(() => undefined); // nobody answers
      await sleep(1000);
    });
    await stop(tcpdump);
    await stop(controller);

    const r = runCli('decode', pcap);
    const lines = r.lines.map((l) => JSON.parse(l) as { message?: { type: string }; error?: unknown });
    t.is(r.status, 0, r.stderr);
    t.deepEqual(lines.filter((l) => l.error), []);
    const types = new Set(lines.map((l) => l.message?.type));
    for (const type of ['HELLO', 'FEATURES_REQUEST', 'FEATURES_REPLY', 'FLOW_MOD', 'PACKET_IN', 'PACKET_OUT']) {
      t.true(types.has(type), `no ${type} among ${[...types].join(', ')}`);
    }
    const text = runCli('decode', '--text', pcap);
    t.is(text.status, 0, text.stderr);
    t.is(text.lines.length, lines.length);
  } finally {
    await stop(tcpdump);
    await stop(controller);
    rmSync(dir, { recursive: true, force: true });
  }
});
