/**
 * Issue 9: the whole controller (`zonemesh run` in a child process) under attack from fake switches
 * in a process of their own. In the serial system phase, so that no other test file loads the machine
 * while the canary's echo times are measured. No OVS needed.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CANARY_P50_BOUND_MS, CANARY_P99_BOUND_MS, Canary, ControllerProcess, attackFromChild } from '../helpers/hostile';
import { freePort } from '../helpers/run';
import { delay } from '../controller/util';

/** the bound the issue asks for on the controller's RSS under attack */
const RSS_BOUND_KB = 300 * 1024;
const ATTACK_SECONDS = 3;
/**
 * What the controller may log during one attack: about 10 lines per switch, kind and 10 s plus the
 * connection lines (before issue 9's fix a malformed flood wrote 1.5-3.3 KB per message, megabytes a second).
 */
const LOG_BOUND_BYTES = 256 * 1024;
/** the bound on SIGTERM after an attack (it took 16-29 s) */
const STOP_BOUND_MS = 2_000;


/** `zonemesh run` in a child process, with a canary switch timing its echoes; both stopped when the test ends. */
async function controllerUnderWatch(t: ExecutionContext): Promise<{ proc: ControllerProcess; canary: Canary; port: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'zm-hostile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const proc = await ControllerProcess.start(port, join(dir, 'control.sock'));
  t.teardown(() => proc.stop());
  const canary = new Canary();
  t.teardown(() => canary.stop());
  await canary.connect(port);
  canary.start();
  return { proc, canary, port };
}

for (const kind of ['bomb', 'flood'] as const) {
  test.serial(`zonemesh run under ${kind} attack from 4 peers stays up, under ${RSS_BOUND_KB / 1024} MB RSS, with a canary's echo p50 under ${CANARY_P50_BOUND_MS} ms`, async (t) => {
    const { proc, canary, port } = await controllerUnderWatch(t);
    const result = await attackFromChild(kind, port, 4, ATTACK_SECONDS);
    await delay(200); // the attackers' sessions close and log their counters
    const rtt = await canary.stop();
    const closes = proc.budgetCloses();
    t.log(`${kind}: ${JSON.stringify(result)}; peak RSS ${(proc.peakRssKb / 1024).toFixed(0)} MB; canary RTT p50 ${rtt.p50.toFixed(1)} p99 ${rtt.p99.toFixed(1)} max ${rtt.max.toFixed(1)} ms (${rtt.samples}); budget closes ${JSON.stringify(closes)}; packet-ins dropped ${proc.packetInsDropped()}`);
    t.true(proc.running, `the controller is up: ${proc.stderr.slice(-500)}`);
    t.true(result.connections >= 4, `${result.connections} attacking connections`);
    t.true(proc.peakRssKb > 0 && proc.peakRssKb < RSS_BOUND_KB, `peak RSS ${proc.peakRssKb} kB`);
    t.true(rtt.samples >= 50, `${rtt.samples} echoes`);
    t.true(rtt.p50 < CANARY_P50_BOUND_MS && rtt.p99 < CANARY_P99_BOUND_MS, `canary echo RTT p50 ${rtt.p50.toFixed(1)} ms, p99 ${rtt.p99.toFixed(1)} ms`);
    if (kind === 'bomb') {
      t.true((closes.maxMultipartBytes ?? 0) >= 4, `sessions closed by budget: ${JSON.stringify(closes)}`);
    } else {
      t.true(proc.packetInsDropped() > result.messagesSent / 2, `${proc.packetInsDropped()} of ${result.messagesSent} PACKET_INs dropped`);
    }
  });
}

for (const kind of ['deaf', 'malformed'] as const) {
  const what = kind === 'deaf' ? 'PACKET_INs from switches that never read' : 'messages of no known type';
  test.serial(`zonemesh run under a flood of ${what}: RSS, canary echoes and log volume bounded; SIGTERM done within 2 s`, async (t) => {
    const { proc, canary, port } = await controllerUnderWatch(t);
    const logBefore = proc.logBytes;
    const result = await attackFromChild(kind, port, 4, ATTACK_SECONDS);
    const rtt = await canary.stop();
    const logged = proc.logBytes - logBefore;
    const stopMs = await proc.stop();
    t.log(`${kind}: ${JSON.stringify(result)}; peak RSS ${(proc.peakRssKb / 1024).toFixed(0)} MB; canary RTT p50 ${rtt.p50.toFixed(1)} p99 ${rtt.p99.toFixed(1)} ms; logged ${logged} bytes; SIGTERM took ${stopMs.toFixed(0)} ms`);
    t.true(result.messagesSent > 100_000, `${result.messagesSent} messages sent`);
    t.true(proc.peakRssKb > 0 && proc.peakRssKb < RSS_BOUND_KB, `peak RSS ${proc.peakRssKb} kB`);
    t.true(rtt.samples >= 50 && rtt.p50 < CANARY_P50_BOUND_MS && rtt.p99 < CANARY_P99_BOUND_MS, `canary echo RTT p50 ${rtt.p50.toFixed(1)} ms, p99 ${rtt.p99.toFixed(1)} ms over ${rtt.samples}`);
    t.true(logged < LOG_BOUND_BYTES, `${logged} bytes logged during the attack`);
    t.false(proc.lines.some((l) => JSON.stringify(l).includes('"stack"')), 'no stack trace in the log');
    t.true(stopMs < STOP_BOUND_MS, `SIGTERM took ${stopMs.toFixed(0)} ms`);
  });
}

