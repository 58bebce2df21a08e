import test, { type ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { OFPP } from '../../src/openflow';
import { PIPELINE_APP_ID, makeCookie } from '../../src/sdk';
import { until } from '../controller/util';
import { FakeSwitch } from '../../src/testing';
import { makePkiFiles, type PkiFiles } from '../helpers/pki';
import {  } from '../helpers/restart';
import { freePort, spawnTracked, tempDir } from '../helpers/run';
import { CLI, runCliAsync } from './run-cli';

/** `zonemesh run --listen tls:…` as a user runs it, with fake switches connecting over TLS. */

const TABLE_MISS_COOKIE = makeCookie(PIPELINE_APP_ID, 'table-miss');

interface LogLine {
  msg: string;
  level: number;
  role?: string;
  worker?: number;
  workerPid?: number;
  listen?: unknown;
}

class Run {
  readonly lines: LogLine[] = [];
  raw = '';
  private partial = '';
  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.raw += chunk;
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop()!;
      for (const line of parts) if (line.trim()) this.lines.push(JSON.parse(line) as LogLine);
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.raw += chunk));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitFor(what: string, predicate: (l: LogLine) => boolean, ms = 15_000): Promise<LogLine> {
    try {
      await until(() => this.lines.some(predicate) || !this.running, ms);
    } catch {
      throw new Error(`no log line '${what}' within ${ms} ms:\n${this.raw}`);
    }
    const line = this.lines.find(predicate);
    if (!line) throw new Error(`zonemesh run exited before '${what}':\n${this.raw}`);
    return line;
  }

  count(predicate: (l: LogLine) => boolean): number {
    return this.lines.filter(predicate).length;
  }
}

let pki: PkiFiles;
let dir: string;
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'zm-run-tls-'));
  pki = makePkiFiles(dir);
});
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Starts `zonemesh run --apps l2-learning ARGS --control …` and waits for 'running'; killed (workers too) when the test ends. */
async function startRun(t: ExecutionContext, args: string[]): Promise<{ run: Run; control: string }> {
  const control = join(tempDir(t, 'zm-run-tls-ctl-'), 'control.sock');
  const child = spawnTracked(process.execPath, [CLI, 'run', '--apps', 'l2-learning', '--control', `unix:${control}`, ...args]);
  const run = new Run(child);
  t.teardown(() => {
    if (run.running) child.kill('SIGKILL');
    for (const l of run.lines) {
      if (l.msg !== 'worker started' || l.workerPid === undefined) continue;
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${l.workerPid}/cmdline`, 'utf8');
      } catch {
        continue; // gone
      }
      if (cmdline.includes(CLI)) process.kill(l.workerPid, 'SIGKILL');
    }
  });
  await run.waitFor('running', (l) => l.msg === 'running' && l.worker === undefined);
  return { run, control };
}

/** TLS options of a fake switch connecting to the controller at 127.0.0.1:port, which it verifies against our CA */
function switchTls(port: number, creds: { key?: string; cert?: string } = {}): ConnectionOptions {
  return {
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ca: pki.read(pki.caCert),
    ...(creds.key && { key: pki.read(creds.key) }),
    ...(creds.cert && { cert: pki.read(creds.cert) }),
  };
}

/** l2-learning's one flow on a fresh switch: table 0's miss to the controller, owned by the pipeline */
function hasTableMiss(sw: FakeSwitch): boolean {
  const flows = sw.flowTable.flows();
  if (flows.length !== 1) return false;
  const f = flows[0]!;
  const actions = f.instructions.flatMap((i) => (i.type === 'apply_actions' ? i.actions : []));
  return f.cookie === TABLE_MISS_COOKIE && f.tableId === 0 && f.priority === 0 && f.match.length === 0 && actions.some((a) => a.type === 'output' && a.port === OFPP.CONTROLLER);
}

async function connectAndReconcile(t: ExecutionContext, dpid: bigint, options: ConnectionOptions): Promise<FakeSwitch> {
  const sw = new FakeSwitch({ dpid });
  t.teardown(() => sw.close());
  await sw.connect({ transport: 'tls', options });
  await until(() => hasTableMiss(sw), 10_000);
  return sw;
}


/** the dpids `zonemesh flows` sees connected (READY sessions only) */
async function connectedDpids(control: string): Promise<string[]> {
  const r = await runCliAsync('flows', '--control', `unix:${control}`, '--json');
  if (r.status !== 0) throw new Error(`zonemesh flows: exit ${r.status}: ${r.stderr}${r.stdout}`);
  return (JSON.parse(r.stdout) as { dpid: string }[]).map((s) => s.dpid);
}

const hex = (dpid: bigint): string => dpid.toString(16).padStart(16, '0');

test('--tls-ca: a switch with a CA-signed certificate gets its flows; one without, or from another CA, is refused and the controller runs on', async (t) => {
  const port = await freePort();
  const { run, control } = await startRun(t, ['--listen', `tls:127.0.0.1:${port}`, '--tls-key', pki.serverKey, '--tls-cert', pki.serverCert, '--tls-ca', pki.caCert]);

  const good = await connectAndReconcile(t, 0x1n, switchTls(port, { key: pki.clientKey, cert: pki.clientCert }));
  t.true(hasTableMiss(good), 'the table-miss flow with the pipeline cookie');
  t.deepEqual(await connectedDpids(control), [hex(0x1n)], 'READY: the controller lists it');

  for (const [label, dpid, creds, why] of [
    ['a certificate from another CA', 0x66n, { key: pki.rogueKey, cert: pki.rogueCert }, /^TLS handshake failed: the switch certificate is not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\) \(remote=127\.0\.0\.1:\d+\)$/],
    ['no certificate', 0x67n, {}, /^TLS handshake failed: the switch presented no certificate \(remote=127\.0\.0\.1:\d+\)$/],
  ] as const) {
    const refusalsBefore = run.count((l) => l.msg.startsWith('TLS handshake failed'));
    const intruder = new FakeSwitch({ dpid });
    t.teardown(() => intruder.close());
    // With TLS 1.3 the client learns of the refusal only after its side of the handshake.
    await intruder.connect({ transport: 'tls', options: switchTls(port, creds) }).catch(() => undefined);
    await until(() => run.count((l) => l.msg.startsWith('TLS handshake failed')) > refusalsBefore, 10_000);
    await intruder.waitClosed();
    t.is(intruder.count('HELLO'), 0, `${label}: the controller never spoke OpenFlow to it`);
    t.is(intruder.flowTable.size, 0, `${label}: no flows`);
    const refusal = run.lines.filter((l) => l.msg.startsWith('TLS handshake failed')).at(-1)!;
    t.regex(refusal.msg, why, `${label}: the log says why, and who`);
    t.is(refusal.level, 40, `${label}: a warning`);
    t.true(run.running, `${label}: the controller runs on`);
  }

  const second = await connectAndReconcile(t, 0x2n, switchTls(port, { key: pki.clientKey, cert: pki.clientCert }));
  t.true(hasTableMiss(second), 'switches still get in after the refusals');
  t.deepEqual(await connectedDpids(control), [hex(0x1n), hex(0x2n)], 'only the switches with good certificates');
});

test('without --tls-ca: a switch with no certificate is accepted, over TLS', async (t) => {
  const port = await freePort();
  const { control } = await startRun(t, ['--listen', `tls:127.0.0.1:${port}`, '--tls-key', pki.serverKey, '--tls-cert', pki.serverCert]);
  const sw = await connectAndReconcile(t, 0x3n, switchTls(port));
  t.true(hasTableMiss(sw));
  t.deepEqual(await connectedDpids(control), [hex(0x3n)]);
  // a plain TCP client is no switch here: the listener speaks TLS only
  const plain = new FakeSwitch({ dpid: 0x4n });
  t.teardown(() => plain.close());
  await plain.connect({ transport: 'tcp', port });
  await plain.waitClosed(15_000);
  t.is(plain.count('HELLO'), 0, 'no OpenFlow in the clear');
});

test('--workers 2: the TLS listener reaches the workers intact, and no log line carries the key', async (t) => {
  const port = await freePort();
  const { run, control } = await startRun(t, ['--workers', '2', '--listen', `tls:127.0.0.1:${port}`, '--tls-key', pki.serverKey, '--tls-cert', pki.serverCert, '--tls-ca', pki.caCert]);
  const running = run.lines.find((l) => l.role === 'primary' && l.msg === 'running')!;
  t.deepEqual(running.listen, [`tls:127.0.0.1:${port}`]);
  const switches = [];
  for (const dpid of [0x11n, 0x12n]) switches.push(await connectAndReconcile(t, dpid, switchTls(port, { key: pki.clientKey, cert: pki.clientCert })));
  t.true(switches.every(hasTableMiss));
  t.deepEqual(await connectedDpids(control), [hex(0x11n), hex(0x12n)]);
  t.is(run.count((l) => l.msg === 'worker running'), 2);
  const key = pki.read(pki.serverKey);
  const keyBody = key.split('\n')[1]!;
  t.false(run.raw.includes('PRIVATE KEY') || run.raw.includes(keyBody), 'the private key is never logged');
  run.child.kill('SIGTERM');
  const [code] = (await once(run.child, 'exit')) as [number | null];
  t.is(code, 0);
});

test('a tls: listener without key and certificate stops run at startup, exit 3, every problem named', async (t) => {
  const r = await runCliAsync('run', '--listen', `tls:127.0.0.1:0`, '--tls-ca', join(dir, 'missing-ca.pem'));
  t.is(r.status, 3);
  t.is(
    r.stderr,
    'zonemesh run: command line: 3 problems\n' +
      `  tls.ca: cannot read ${join(dir, 'missing-ca.pem')}: ENOENT\n` +
      "  tls.key: missing: listen[0] 'tls:127.0.0.1:0' needs the controller's private key (--tls-key FILE, or tls.key in the config file)\n" +
      "  tls.cert: missing: listen[0] 'tls:127.0.0.1:0' needs the controller's certificate (--tls-cert FILE, or tls.cert in the config file)\n",
  );
});
