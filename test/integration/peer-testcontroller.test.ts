/**
 * The Mininet harness proven without our controller: mininet/tree.py's tree,depth=2,fanout=3
 * (4 switches on the system OVS, userspace datapath, OpenFlow 1.3) pings all pairs through
 * Open vSwitch's own learning controller, ovs-testcontroller (Debian openvswitch-testcontroller),
 * and loses nothing. If this fails, the l2-learning tests cannot be trusted either.
 */
import test from 'ava';
import { join } from 'node:path';
import { assertOvsRunning } from '../helpers/ovs';
import { freePort, TEST_STATE_DIR } from '../helpers/run';
import { bridgesWithPrefix, cleanupTree, runTree, spawnCollected, stopProcess, treeResult, waitListening } from './peer-tree';

const PREFIX = 'zmpt';
const HOST_PREFIX = 'zmph';

test('tree,depth=2,fanout=3 pingall through ovs-testcontroller: 0% loss, flows kept', async (t) => {
  t.timeout(180_000);
  await assertOvsRunning();
  await cleanupTree(PREFIX);
  const port = await freePort();
  const tc = spawnCollected('ovs-testcontroller', [
    '-O', 'OpenFlow13',
    `ptcp:${port}:127.0.0.1`,
    `--unixctl=${join(TEST_STATE_DIR, `testcontroller-${port}.ctl`)}`,
    '-vconsole:warn',
  ]);
  try {
    await waitListening(port, 15_000, tc.child);
    const run = await runTree({ controller: `127.0.0.1:${port}`, prefix: PREFIX, hostPrefix: HOST_PREFIX, rounds: 2 });
    const r = treeResult(t, run);
    if (!r) return;
    t.true(r.connected, 'every switch connected to ovs-testcontroller');
    t.is(r.sent, 72, '9 hosts: 72 ordered pairs');
    t.is(r.rounds[0]!.loss_pct, 0, `first pingall lost ${r.rounds[0]!.lost.join(' ')}`);
    t.is(r.loss_pct, 0, 'second pingall');
    t.is(run.status, 0);
    // the controller is the one Mininet set at add-br time, on all 4 switches, start to end
    const expected = `tcp:127.0.0.1:${port}`;
    t.deepEqual(Object.values(r.controller_targets ?? {}), [expected, expected, expected, expected]);
    t.deepEqual(r.controller_targets_end, r.controller_targets);
    // the learning controller's flows stay installed: nothing flushed them between the rounds
    for (const [sw, n] of Object.entries(r.rounds[0]!.flows)) {
      t.true(n > 1, `${sw} holds learned flows after the first pingall (${n})`);
      t.true(r.rounds[1]!.flows[sw]! >= n, `${sw} lost flows between the rounds`);
    }
  } finally {
    await stopProcess(tc);
    await cleanupTree(PREFIX);
  }
  t.deepEqual(await bridgesWithPrefix(PREFIX), [], 'no zmpt* bridge left');
});
