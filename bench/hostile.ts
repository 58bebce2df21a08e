/**
 * Hostile peers against `zonemesh run --apps l2-learning` (issue 9), longer than the unit tests:
 *
 *   node dist/bench/hostile.js [--attacks bomb,flood] [--peers 4] [--seconds 20] [--cli PATH] [--summary FILE]
 *
 * For each attack: a fresh controller process, a canary switch timing an echo every 10 ms, and `--peers`
 * attackers in a process of their own (test/helpers/hostile.ts): multipart bombs (FLOW replies whose
 * parts never end) or PACKET_IN floods (as fast as loopback takes them). Reports the controller's peak
 * RSS, the canary's echo RTT, PACKET_INs dropped and sessions closed by a budget. `--cli` runs another
 * build (e.g. a copy of an older dist/) for comparison.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ATTACK_KINDS, Canary, ControllerProcess, attackFromChild, type AttackKind } from '../test/helpers/hostile';
import { freePort } from '../test/helpers/run';

const { values } = parseArgs({
  options: {
    attacks: { type: 'string', default: ATTACK_KINDS.join(',') },
    peers: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '20' },
    cli: { type: 'string' },
    summary: { type: 'string' },
  },
});
const attacks = values.attacks.split(',') as AttackKind[];
const peers = Number(values.peers);
const seconds = Number(values.seconds);

async function measure(kind: AttackKind): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'zm-bench-hostile-'));
  const port = await freePort();
  const proc = await ControllerProcess.start(port, join(dir, 'control.sock'), values.cli);
  const canary = new Canary();
  try {
    await canary.connect(port);
    canary.start();
    const result = await attackFromChild(kind, port, peers, seconds);
    await new Promise((r) => setTimeout(r, 300)); // the attackers' sessions close and log their counters
    const up = proc.running;
    const rtt = await canary.stop().catch(() => undefined);
    const closes = Object.entries(proc.budgetCloses()).map(([budget, n]) => `${n} ${budget}`).join(', ') || '0';
    const crashed = /heap out of memory/.test(proc.stderr) ? ' (heap out of memory)' : '';
    const ms = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(1));
    const rate = Math.round(result.messagesSent / seconds).toLocaleString('en-US');
    const load = kind === 'bomb' ? `${(result.bytesSent / 2 ** 20 / seconds).toFixed(0)} MiB/s of REPLY_MORE parts` : kind === 'malformed' ? `${rate} malformed messages/s` : `${rate} PACKET_INs/s`;
    const logKb = (proc.logBytes / 1024).toFixed(0);
    const stopMs = (await proc.stop()).toFixed(0);
    const row = `| ${kind} | ${peers} | ${seconds} | ${load} | ${result.connections} | ${up ? 'yes' : `no${crashed}`} | ${(proc.peakRssKb / 1024).toFixed(0)} | ${ms(rtt?.p50)} / ${ms(rtt?.p99)} / ${ms(rtt?.max)} (${rtt?.samples ?? 0}) | ${proc.packetInsDropped().toLocaleString('en-US')} | ${closes} | ${logKb} | ${stopMs} |`;
    console.log(row);
    return row;
  } finally {
    await canary.stop().catch(() => undefined);
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(`hostile peers against ${values.cli ?? 'dist/src/cli/main.js'}: ${peers} per attack, ${seconds} s each; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const header = [
    '| attack | peers | seconds | attack load | attacking connections | controller up | peak RSS MB | canary echo RTT ms p50 / p99 / max (samples) | PACKET_INs dropped | sessions closed by budget | log KiB | SIGTERM ms |',
    '|---|---:|---:|---|---:|---|---:|---|---:|---|---:|---:|',
  ];
  console.log(header.join('\n'));
  const rows: string[] = [];
  for (const kind of attacks) rows.push(await measure(kind));
  if (values.summary) writeFileSync(values.summary, `${[...header, ...rows].join('\n')}\n`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
