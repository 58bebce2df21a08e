/**
 * The l2-learning app end to end: `zonemesh run --apps l2-learning` controls Mininet's
 * tree,depth=2,fanout=3 (mininet/tree.py: 4 switches on the system OVS, userspace datapath,
 * OpenFlow 1.3), and pingall loses nothing, twice, with the learned flows kept in between.
 * peer-testcontroller.test.ts runs the same harness with ovs-testcontroller, so a failure here
 * that does not show there is ours.
 * After the last round, every learned flow on every switch must carry l2-learning's cookie for
 * the port it outputs to.
 */
import test from 'ava';
import { join } from 'node:path';
import { L2_LEARNING_APP_ID } from '../../src/apps/l2-learning';
import { makeCookie } from '../../src/sdk';
import { assertOvsRunning } from '../helpers/ovs';
import { REPO_ROOT } from '../helpers/paths';
import { bridgesWithPrefix, cleanupTree, runTree, spawnCollected, stopProcess, treeResult, waitListening } from './peer-tree';
import { freePort } from '../helpers/run';

const CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
const PREFIX = 'zml';
const HOST_PREFIX = 'zmlh';

/** The one line that says how the product is started. */
const controllerArgv = (port: number) => [CLI, 'run', '--apps', 'l2-learning', '--listen', `127.0.0.1:${port}`];

test('l2-learning: tree,depth=2,fanout=3 pingall loses nothing and the learned flows stay', async (t) => {
  t.timeout(180_000);
  await assertOvsRunning();
  await cleanupTree(PREFIX);
  const port = await freePort();
  const ctl = spawnCollected(process.execPath, controllerArgv(port));
  try {
    await waitListening(port, 20_000, ctl.child);
    const run = await runTree({ controller: `127.0.0.1:${port}`, prefix: PREFIX, hostPrefix: HOST_PREFIX, rounds: 2 });
    const r = treeResult(t, run);
    if (!r) return;
    t.true(r.connected, 'every switch connected to zonemesh');
    t.is(r.sent, 72);
    t.is(r.rounds[0]!.loss_pct, 0, `first pingall lost ${r.rounds[0]!.lost.join(' ')}\ncontroller log:\n${ctl.stdout().slice(-4000)}`);
    t.is(r.loss_pct, 0, 'second pingall');
    t.is(run.status, 0);
    // whatever the app installs on connect (a table-miss flow at least) is still there after
    // both rounds: the controller was set at add-br time, nothing flushed the tables later
    for (const [sw, n] of Object.entries(r.flows_after_connect ?? {})) {
      t.true(n >= 1, `${sw}: the app installed its table-miss flow on connect`);
      t.true(r.rounds[0]!.flows[sw]! >= n && r.rounds[1]!.flows[sw]! >= n, `${sw} lost flows`);
    }
    // the learned flows carry our cookies: app l2-learning, ephemeral, owned by their output port
    let learned = 0;
    for (const [sw, lines] of Object.entries(r.flow_dumps ?? {})) {
      const mine = lines.filter((l) => /\bpriority=100\b/.test(l));
      t.true(mine.length > 0, `${sw} holds learned flows after pingall`);
      for (const line of mine) {
        const cookie = BigInt(/cookie=(0x[0-9a-f]+)/.exec(line)?.[1] ?? '0');
        const port = /actions=output:(\d+)/.exec(line)?.[1];
        t.truthy(port, `a learned flow outputs to one port: ${line}`);
        t.is(cookie, makeCookie(L2_LEARNING_APP_ID, `port:${port}`, true), `${sw}: ${line}`);
        t.regex(line, /idle_timeout=60\b.*\bdl_dst=[0-9a-f:]{17}\b/, `an exact eth_dst match that idles out: ${line}`);
      }
      learned += mine.length;
    }
    t.true(learned >= 9, `learned flows on the tree: ${learned}`);
    t.true(ctl.child.exitCode === null, 'the controller is still running');
  } finally {
    await stopProcess(ctl);
    await cleanupTree(PREFIX);
  }
  t.deepEqual(await bridgesWithPrefix(PREFIX), [], 'no zml* bridge left');
});
