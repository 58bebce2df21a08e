/**
 * Bgpd.start (test/helpers/frr.ts) on real FRR: two routers in two namespaces joined by a veth,
 * eBGP with BFD as the north-south tests run it. A start must resolve only once bgpd and bfdd are
 * zebra's clients and bfdd holds every configured BFD peer. The second start reuses the directories
 * of a SIGKILLed first one, as a crashed run leaves them: zserv.api and the vty sockets still exist
 * with nobody listening, the case where a start that waited for the file let bgpd miss zebra and
 * never register its BFD sessions. A daemon that cannot start is a FrrStartError, and startAll
 * takes down the routers it started beside it.
 */
import test from 'ava';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Bgpd, FrrStartError, edgeBgpConfig } from '../helpers/frr';
import { waitFor } from '../helpers/overlay';
import { TEST_STATE_DIR, run } from '../helpers/run';

const PREFIX = 'zmfrr';
const dir = join(TEST_STATE_DIR, 'frr-start');
const ROUTERS = [
  { name: 'a', netns: `${PREFIX}a`, ip: '10.255.0.1', as: 65000 },
  { name: 'b', netns: `${PREFIX}b`, ip: '10.255.0.2', as: 65001 },
] as const;
const BFD = { multiplier: 3, intervalMs: 100 } as const;

const running: Bgpd[] = [];

test.before(async () => {
  rmSync(dir, { recursive: true, force: true });
  for (const r of ROUTERS) {
    await run('ip', ['netns', 'del', r.netns]).catch(() => undefined);
    await run('ip', ['netns', 'add', r.netns]);
  }
  const [a, b] = ROUTERS;
  await run('ip', ['-n', a.netns, 'link', 'add', `${PREFIX}-a`, 'type', 'veth', 'peer', 'name', `${PREFIX}-b`, 'netns', b.netns]);
  for (const r of ROUTERS) {
    await run('ip', ['-n', r.netns, 'addr', 'add', `${r.ip}/30`, 'dev', `${PREFIX}-${r.name}`]);
    await run('ip', ['-n', r.netns, 'link', 'set', `${PREFIX}-${r.name}`, 'up']);
  }
});

test.after.always(async () => {
  for (const d of running) await d.kill();
  for (const r of ROUTERS) await run('ip', ['netns', 'del', r.netns]).catch(() => undefined);
});

/** both routers at once, each peering with the other */
function startRouters(): Promise<Bgpd[]> {
  return Bgpd.startAll(
    ROUTERS.map((r) => {
      const peer = ROUTERS.find((p) => p !== r)!;
      const config = edgeBgpConfig({ localAs: r.as, routerId: r.ip, gatewayAs: peer.as, gateways: [peer.ip], keepaliveSeconds: 1, holdSeconds: 3, maximumPaths: 1, bfd: BFD });
      return { netns: r.netns, dir: join(dir, r.name), config, opts: { bfd: true } };
    }),
  );
}

async function bfdPeers(router: Bgpd): Promise<{ peer: string; status: string }[]> {
  return JSON.parse(await router.vtysh('show bfd peers json')) as { peer: string; status: string }[];
}

test.serial('a daemon that cannot start is a FrrStartError naming the namespace, the daemon and what the start waited for; the routers started beside it are killed', async (t) => {
  const missing = `${PREFIX}none`;
  const beside = join(dir, 'beside');
  const err = await t.throwsAsync(
    Bgpd.startAll([
      { netns: ROUTERS[0].netns, dir: beside, config: `router bgp ${ROUTERS[0].as}\n` },
      { netns: missing, dir: join(dir, 'none'), config: '', opts: { bfd: true } },
    ]),
    { instanceOf: FrrStartError },
  );
  t.is(err?.netns, missing);
  t.is(err?.daemon, 'zebra');
  t.regex(err?.message ?? '', /zebra exited/);
  const pid = readFileSync(join(beside, 'bgpd.pid'), 'utf8').trim();
  t.false(existsSync(`/proc/${pid}`), `the bgpd started beside it (pid ${pid}) is gone`);
});

test.serial('a start resolves with bgpd and bfdd connected to zebra and the BFD peer registered, also over the sockets of a SIGKILLed start', async (t) => {
  const first = await startRouters();
  for (const d of first) await d.kill();
  for (const r of ROUTERS) t.true(existsSync(join(dir, r.name, 'zserv.api')), "the killed zebra's socket is left behind");

  const routers = await startRouters();
  running.push(...routers);
  for (const [i, router] of routers.entries()) {
    const peer = ROUTERS[1 - i]!.ip;
    const clients = await router.vtysh('show zebra client summary');
    t.regex(clients, /^bgp /m, `${ROUTERS[i]!.name}: bgpd is zebra's client`);
    t.regex(clients, /^bfd /m, `${ROUTERS[i]!.name}: bfdd is zebra's client`);
    t.deepEqual((await bfdPeers(router)).map((p) => p.peer), [peer], `${ROUTERS[i]!.name}: bfdd holds the session bgpd asked for`);
  }
  // and BFD runs: both ends see the session up
  for (const router of routers) {
    const peers = await waitFor(`BFD up in ${router.netns}`, () => bfdPeers(router), (p) => p.every((x) => x.status === 'up'), { timeoutMs: 20_000, intervalMs: 100 });
    t.is(peers[0]!.status, 'up');
  }
});
