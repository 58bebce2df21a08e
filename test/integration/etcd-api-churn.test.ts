/**
 * Issue 10's "etcd members killed and restarted under a stream of 1,000 API changes" and "quorum
 * loss", on one scenario: a 3-member etcd cluster, a controller replica (a Runtime with the overlay
 * apps on the etcd store) connected to three real OVS bridges of the system Open vSwitch (one per
 * hypervisor of the model), and the REST API in this process with its own etcd client.
 *
 * The bridges are plain netdev bridges, not Mininet hypervisors: the VM interfaces are patch ports
 * (they get an ofport and a port-desc entry, which is all placement reads, and need no peer), the
 * tunnel port too; no hypervisor has an `ovsdb`, so tunnel-mesh provisions nothing. Traffic is not
 * the point here: the flows are.
 *
 * "Full compile": a fresh controller (a second Runtime, cold, reading the model from etcd) connects
 * to every bridge as a second EQUAL controller and does a full sync by diff; it must find nothing
 * to send, and the `ovs-ofctl dump-flows` of each bridge (cookie, table, priority, match, actions)
 * must be the same before and after it, with the same number of flows as it desires.
 */
import test, { type ExecutionContext } from 'ava';
import type { Etcd3 } from 'etcd3';
import { filter } from 'rxjs';
import { parse as parseYaml } from 'yaml';
import { APP_REGISTRY, bindAppServices } from '../../src/apps/registry';
import { type ApiServer, startApi } from '../../src/api/server';
import { validateModel } from '../../src/model';
import { connectEtcd } from '../../src/model/etcd-client';
import type { EtcdModelStore } from '../../src/model/etcd-store';
import { exportModel, importModel } from '../../src/model/etcd-transfer';
import { Runtime, localFlows, validateRunConfig, type SyncReport } from '../../src/runtime';
import { type EtcdCluster, membersLeaderFirst, startEtcd } from '../helpers/etcd';
import { captureLog } from '../helpers/log';
import { OVERLAY_APPS } from '../helpers/overlay';
import { assertOvsRunning, vsctl } from '../helpers/ovs';
import { delay, dump, until, type Dumped } from '../helpers/restart';
import { freePort } from '../helpers/run';

const PREFIX = 'zmhr';
const CHANGES = 1_000;
const SLOTS = 6;
/** how long two of the three members stay down during the churn */
const QUORUM_GAP_MS = 2_000;
const TOKEN = 'churn-token-0123456789abcdef';

/** three hypervisors in two zones; one VPC with two tiers and an ACL list the client edits */
const MODEL = `zones:
  - { name: a, underlay: 172.29.1.0/24 }
  - { name: b, underlay: 172.29.2.0/24 }
hypervisors:
  - { name: h1, zone: a, tunnelIp: 172.29.1.11, datapathId: "0x7a01" }
  - { name: h2, zone: a, tunnelIp: 172.29.1.12, datapathId: "0x7a02" }
  - { name: h3, zone: b, tunnelIp: 172.29.2.13, datapathId: "0x7a03" }
vpcs:
  - name: blue
    vni: 4242
    subnets:
      - { name: web, cidr: 10.42.1.0/24, gateway: 10.42.1.1 }
      - { name: db, cidr: 10.42.2.0/24, gateway: 10.42.2.1 }
    acls:
      - { name: web-to-db-ping, subnet: db, direction: ingress, action: allow, protocol: icmp, remote: { subnet: web } }
ports: []
`;
const HVS = ['h1', 'h2', 'h3'] as const;
const bridgeOf = (hv: number) => `${PREFIX}-br${hv + 1}`;
/** the VM interface in slot s of hypervisor hv: a patch port with ofport s+1 */
const slotName = (hv: number, s: number) => `${PREFIX}${hv + 1}v${s}`;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** the scenario every test of this file shares (they run in order) */
let etcd: EtcdCluster;
let client: Etcd3;
let api: ApiServer;
let runtime: Runtime;
let listenPort: number;
const runtimeLog = captureLog('info');

test.before(async () => {
  await assertOvsRunning();
  etcd = await startEtcd(3);
  client = connectEtcd(etcd.endpoints);
  await importModel(client, validateModel(parseYaml(MODEL), 'churn model'));
  api = await startApi({ client, host: '127.0.0.1', port: 0, token: TOKEN, log: captureLog('warn').log, requestTimeoutMs: 2000 });
  listenPort = await freePort();
  runtime = await controller(listenPort, runtimeLog.log);
  await runtime.start();
  for (const [hv] of HVS.entries()) {
    const bridge = bridgeOf(hv);
    const slots = Array.from({ length: SLOTS }, (_, s) => ['--', 'add-port', bridge, slotName(hv, s), '--', 'set', 'interface', slotName(hv, s), 'type=patch', `options:peer=${slotName(hv, s)}x`, `ofport_request=${s + 1}`]).flat();
    await vsctl([
      '--if-exists', 'del-br', bridge,
      '--', 'add-br', bridge,
      '--', 'set', 'bridge', bridge, 'datapath_type=netdev', 'protocols=OpenFlow13', 'fail_mode=secure', `other-config:datapath-id=${(0x7a01 + hv).toString(16).padStart(16, '0')}`,
      ...slots,
      '--', 'add-port', bridge, `${PREFIX}${hv + 1}tun`, '--', 'set', 'interface', `${PREFIX}${hv + 1}tun`, 'type=patch', `options:peer=${PREFIX}${hv + 1}tunx`, 'ofport_request=4000',
      '--', 'set-controller', bridge, `tcp:127.0.0.1:${listenPort}`,
    ]);
  }
  await until('every bridge connected', 20_000, () => (runtime.controller.switches.size === HVS.length ? true : undefined));
});

test.after.always(async () => {
  for (const [hv] of HVS.entries()) await vsctl(['--if-exists', 'del-br', bridgeOf(hv)]).catch(() => undefined);
  await runtime?.stop();
  await api?.close();
  client?.close();
  await etcd?.stop();
});

/** a controller replica with the overlay apps on the etcd store, listening on 127.0.0.1:port */
function controller(port: number, log: ReturnType<typeof captureLog>['log']): Promise<Runtime> {
  const config = validateRunConfig({ apps: [...OVERLAY_APPS], listen: [`tcp:127.0.0.1:${port}`], store: etcd.url }, 'test');
  return Runtime.create({ config, registry: APP_REGISTRY, bindServices: bindAppServices, logger: log });
}

// ---------------------------------------------------------------- the client

interface Reply {
  /** 0: no answer (connection refused or reset, timeout) */
  status: number;
  headers?: Headers;
  body: Json;
}

async function call(method: string, path: string, body?: unknown): Promise<Reply> {
  try {
    const res = await fetch(`${api.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(5_000),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Json) : {} };
  } catch {
    return { status: 0, body: {} };
  }
}

/** every key of `sent` has its value in `stored` (the API fills in defaults and the revision) */
const holds = (stored: Json, sent: Json) => Object.entries(sent).every(([k, v]) => JSON.stringify(stored[k]) === JSON.stringify(v));

const retryable = (r: Reply) => r.status === 0 || r.status === 503;

/** What the client's retries found. */
interface Tally {
  /** answers 503 or none, each followed by a retry */
  retries: number;
  /** writes whose retry found them already written (the first attempt landed, its answer was lost) */
  landedUnseen: number;
}

/**
 * One change, retried on 503 and on no answer until it is known to have landed exactly once: a retry
 * sends the same revision the change was based on, so a write that landed makes the retry fail with
 * 409 (or 404 for a delete, or "exists" for a create), and the object read then shows our value.
 * Resolves with the object's new revision (0 after a delete).
 */
async function change(tally: Tally, method: 'POST' | 'PUT' | 'DELETE', path: string, itemPath: string, sent: Json | undefined, revision: number): Promise<number> {
  const deadline = Date.now() + 30_000;
  let retried = false;
  for (;;) {
    const target = method === 'DELETE' ? `${path}?revision=${revision}` : path;
    const r = await call(method, target, sent === undefined ? undefined : method === 'POST' ? sent : { ...sent, revision });
    if (r.status === 200 || r.status === 201) return r.body.revision as number;
    if (r.status === 204) return 0;
    if (retryable(r)) {
      if (Date.now() > deadline) throw new Error(`${method} ${path}: no answer but ${r.status} for 30 s`);
      tally.retries++;
      retried = true;
      await new Promise((res) => setTimeout(res, 100));
      continue;
    }
    if (retried && (r.status === 409 || r.status === 404)) {
      const now = await readBack(itemPath);
      if (method === 'DELETE' ? now === undefined : now !== undefined && holds(now, sent!) && now.revision > revision) {
        tally.landedUnseen++;
        return now?.revision ?? 0;
      }
    }
    throw new Error(`${method} ${path} (revision ${revision}, retried: ${retried}): ${r.status} ${JSON.stringify(r.body)}`);
  }
}

/** the object at `path` (undefined when there is none), retried while etcd does not answer */
async function readBack(path: string): Promise<Json | undefined> {
  return until(`GET ${path}`, 30_000, async () => {
    const r = await call('GET', path);
    if (r.status === 200) return { found: r.body };
    if (r.status === 404) return { found: undefined };
    if (retryable(r)) return undefined;
    throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  }, 100).then((x) => x.found);
}

/** a deterministic sequence, so that a failure can be replayed */
function lcg(seed: number): (n: number) => number {
  let s = seed;
  return (n) => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s >>> 16) % n; // the low bits of an LCG have short periods
  };
}

interface LivePort {
  body: Json;
  revision: number;
  hv: number;
  slot: number;
}

// ---------------------------------------------------------------- the checks

const rules = (flows: readonly Dumped[]) => flows.map((f) => f.rule);

/**
 * A cold controller compiles the model it reads from etcd and syncs every bridge by diff: nothing to
 * send, and every bridge's dump (cookie, table, priority, match, actions) is the same before and
 * after, one flow per desired flow.
 */
async function assertFullCompile(t: ExecutionContext, label: string): Promise<void> {
  const before = await Promise.all(HVS.map((_, hv) => dump(bridgeOf(hv))));
  const port = await freePort();
  const fresh = await controller(port, captureLog('warn').log);
  const reports: SyncReport[] = [];
  fresh.reconciler.synced$.pipe(filter((r) => r.kind === 'full')).subscribe((r) => reports.push(r));
  await fresh.start();
  try {
    for (const [hv] of HVS.entries()) await vsctl(['set-controller', bridgeOf(hv), `tcp:127.0.0.1:${listenPort}`, `tcp:127.0.0.1:${port}`]);
    await until(`${label}: the fresh controller's full sync of every bridge`, 20_000, () => (new Set(reports.map((r) => r.dpid)).size === HVS.length ? true : undefined));
    for (const [hv] of HVS.entries()) {
      const dpid = BigInt(0x7a01 + hv);
      const first = reports.find((r) => r.dpid === dpid)!;
      t.like(first, { adds: 0, deletes: 0, modifies: 0, errors: 0 }, `${label}: ${bridgeOf(hv)} is what a full compile of the model in etcd wants`);
      const after = await dump(bridgeOf(hv));
      t.deepEqual(rules(after.flows), rules(before[hv]!.flows), `${label}: ${bridgeOf(hv)}'s flows unchanged by the fresh controller`);
      t.is(after.flows.length, fresh.desired.flows(dpid).length, `${label}: ${bridgeOf(hv)} holds one flow per desired flow`);
    }
    t.log(`${label}: flows per bridge ${before.map((d) => d.flows.length).join(', ')}, each what a cold controller compiles`);
  } finally {
    for (const [hv] of HVS.entries()) await vsctl(['set-controller', bridgeOf(hv), `tcp:127.0.0.1:${listenPort}`]);
    await fresh.stop();
  }
}

/** the replica has applied the model at `revision` or later and every bridge is in sync with it */
async function converged(label: string, revision: number): Promise<void> {
  const store = runtime.modelStore as EtcdModelStore;
  await until(`${label}: the replica at revision ${revision} (at ${store.revision})`, 30_000, () => (store.revision >= revision ? true : undefined));
  await until(`${label}: every bridge in sync`, 30_000, async () => {
    const switches = await localFlows(runtime.controlSource);
    return switches.length === HVS.length && switches.every((s) => s.diff.adds + s.diff.deletes + s.diff.modifies === 0) ? true : undefined;
  }, 200);
}

// ---------------------------------------------------------------- the tests

test.serial(`${CHANGES} API changes while each etcd member is killed and restarted in turn: none lost or repeated, the flows a full compile of the final model`, async (t) => {
  t.timeout(150_000);
  const tally: Tally = { retries: 0, landedUnseen: 0 };
  const next = lcg(10);
  const live = new Map<string, LivePort>();
  const used = new Set<string>(); // hv:slot
  const ips = new Set<string>();
  let acl = (await readBack('/v1/vpcs/blue/acls'))!;
  let aclPort = 5000;
  let serial = 0;
  const counts = { add: 0, move: 0, remove: 0, acl: 0 };

  const freeSlot = (except?: number) => {
    const free = HVS.flatMap((_, hv) => (hv === except ? [] : Array.from({ length: SLOTS }, (_, s) => [hv, s] as const))).filter(([hv, s]) => !used.has(`${hv}:${s}`));
    return free.length ? free[next(free.length)]! : undefined;
  };
  const freeIp = (subnet: 'web' | 'db') => {
    const base = subnet === 'web' ? '10.42.1.' : '10.42.2.';
    for (let i = 0; ; i++) {
      const ip = `${base}${10 + ((serial + i) % 200)}`;
      if (!ips.has(ip)) return ip;
    }
  };

  // one member at a time, the leader first: killed, then restarted while the client goes on
  const order = await membersLeaderFirst(etcd);
  const faults = new Map<number, () => Promise<void>>();
  let restarting: Promise<void> = Promise.resolve();
  for (const [k, m] of order.entries()) {
    faults.set(100 + 250 * k, async () => {
      await restarting;
      await m.kill();
    });
    faults.set(200 + 250 * k, async () => {
      restarting = m.restart();
    });
  }
  // and one window without quorum: writes in flight then may commit after their 503, which the retries must find
  faults.set(850, async () => {
    await restarting;
    const two = order.slice(1);
    await Promise.all(two.map((m) => m.kill()));
    restarting = delay(QUORUM_GAP_MS).then(async () => {
      await Promise.all(two.map((m) => m.restart()));
    });
  });

  const started = Date.now();
  for (let i = 0; i < CHANGES; i++) {
    await faults.get(i)?.();
    const kind = i % 10 === 9 ? 'acl' : live.size < 4 ? 'add' : (['add', 'move', 'move', 'remove'] as const)[next(4)]!;
    if (kind === 'acl') {
      aclPort = aclPort === 5000 ? 5432 : 5000;
      const value = { rules: [...(acl.rules as Json[]).filter((r) => r.name !== 'web-to-db-tcp'), { name: 'web-to-db-tcp', subnet: 'db', direction: 'ingress', action: 'allow', protocol: 'tcp', ports: aclPort, remote: { subnet: 'web' } }] };
      const revision = await change(tally, 'PUT', '/v1/vpcs/blue/acls', '/v1/vpcs/blue/acls', value, acl.revision as number);
      acl = { ...value, revision };
      counts.acl++;
      continue;
    }
    const slot = kind === 'add' ? freeSlot() : undefined;
    if (kind === 'add' && slot) {
      const name = `c${serial}`;
      const subnet = serial % 2 ? 'db' : 'web';
      const body = { name, vpc: 'blue', subnet, mac: `02:00:00:7a:${((serial >> 8) & 0xff).toString(16).padStart(2, '0')}:${(serial & 0xff).toString(16).padStart(2, '0')}`, ip: freeIp(subnet), hypervisor: HVS[slot[0]]!, interface: slotName(...slot) };
      serial++;
      const revision = await change(tally, 'POST', '/v1/ports', `/v1/ports/${name}`, body, 0);
      live.set(name, { body, revision, hv: slot[0], slot: slot[1] });
      used.add(`${slot[0]}:${slot[1]}`);
      ips.add(body.ip);
      counts.add++;
      continue;
    }
    const names = [...live.keys()];
    const victim = live.get(names[next(names.length)]!)!;
    const target = freeSlot(victim.hv);
    if (kind === 'move' && target) {
      const body: Json = { ...victim.body, hypervisor: HVS[target[0]]!, interface: slotName(...target) };
      const revision = await change(tally, 'PUT', `/v1/ports/${body.name}`, `/v1/ports/${body.name}`, body, victim.revision);
      used.delete(`${victim.hv}:${victim.slot}`);
      used.add(`${target[0]}:${target[1]}`);
      live.set(body.name, { body, revision, hv: target[0], slot: target[1] });
      counts.move++;
      continue;
    }
    await change(tally, 'DELETE', `/v1/ports/${victim.body.name}`, `/v1/ports/${victim.body.name}`, undefined, victim.revision);
    live.delete(victim.body.name);
    used.delete(`${victim.hv}:${victim.slot}`);
    ips.delete(victim.body.ip);
    counts.remove++;
  }
  await restarting;
  const elapsed = Date.now() - started;
  t.log(`${CHANGES} changes (${JSON.stringify(counts)}) in ${elapsed} ms with 3 member kills and restarts and a window of ${QUORUM_GAP_MS} ms without quorum; ${tally.retries} retries, ${tally.landedUnseen} writes found landed on retry`);
  t.true(tally.retries > 0, 'the window without quorum was felt by the client');

  // nothing lost, nothing repeated: etcd holds exactly the client's view
  const exported = validateModel((await exportModel(client)).document, 'etcd');
  const byName = (ps: readonly Json[]) => [...ps].map((p) => JSON.stringify([p.name, p.hypervisor, p.interface, p.ip, p.mac])).sort();
  t.deepEqual(byName(exported.ports), byName([...live.values()].map((l) => l.body)), 'the ports in etcd are the client\'s');
  t.deepEqual((await readBack('/v1/vpcs/blue/acls'))!.rules, acl.rules, 'the ACL list is the client\'s last');

  await converged('after the churn', (await readBack('/v1/ports'))!.revision as number);
  await assertFullCompile(t, 'after the churn');
});

test.serial('quorum loss: every bridge keeps its flows, the API answers 503 problem+json, the controller changes nothing; after it, an API change reaches the bridge', async (t) => {
  t.timeout(90_000);
  const store = runtime.modelStore as EtcdModelStore;
  const revisionBefore = store.revision;
  const writes: SyncReport[] = [];
  const watching = runtime.reconciler.synced$.pipe(filter((r) => r.adds + r.deletes + r.modifies > 0)).subscribe((r) => writes.push(r));
  t.teardown(() => watching.unsubscribe());
  const before = await Promise.all(HVS.map((_, hv) => dump(bridgeOf(hv))));

  // a free slot for the port added once quorum is back
  const taken = new Set(((await readBack('/v1/ports'))!.items as Json[]).map((p) => p.interface as string));
  const [hv, slot] = HVS.flatMap((_, h) => Array.from({ length: SLOTS }, (_, s) => [h, s] as const)).find(([h, s]) => !taken.has(slotName(h, s)))!;
  const port = { name: 'after-quorum', vpc: 'blue', subnet: 'web', mac: '02:00:00:7a:ff:01', ip: '10.42.1.250', hypervisor: HVS[hv]!, interface: slotName(hv, slot) };

  const down = etcd.members.slice(1);
  await Promise.all(down.map((m) => m.kill()));
  for (const [method, path, body] of [['GET', '/v1/ports', undefined], ['POST', '/v1/ports', port]] as const) {
    const r = await call(method, path, body);
    t.is(r.status, 503, `${method} ${path} without quorum: ${JSON.stringify(r.body)}`);
    t.is(r.headers?.get('content-type'), 'application/problem+json; charset=utf-8');
    t.is(r.headers?.get('retry-after'), '1');
    t.like(r.body, { status: 503, title: 'etcd unavailable' });
    t.regex(String(r.body.detail), /no quorum/);
  }
  // nothing can happen, so the proof is a window in which nothing did: longer than a lease TTL and the API timeout
  await delay(4_000);
  const during = await Promise.all(HVS.map((_, hv) => dump(bridgeOf(hv))));
  for (const [h] of HVS.entries()) {
    const [b, d] = [before[h]!, during[h]!];
    t.deepEqual(rules(d.flows), rules(b.flows), `${bridgeOf(h)} keeps every flow`);
    const elapsed = (d.at.start - b.at.end) / 1000;
    const byRule = new Map(b.flows.map((f) => [f.rule, f]));
    t.true(d.flows.every((f) => f.durationS >= byRule.get(f.rule)!.durationS + elapsed - 0.01), `${bridgeOf(h)}: every duration grew by the ${elapsed.toFixed(1)} s (none deleted and added again)`);
  }
  t.deepEqual(writes, [], 'the controller sent no flow change');
  t.is(store.revision, revisionBefore, 'and applied no model');

  await Promise.all(down.map((m) => m.restart()));
  const calledAt = Date.now();
  const revision = await change({ retries: 0, landedUnseen: 0 }, 'POST', '/v1/ports', `/v1/ports/${port.name}`, port, 0);
  const answeredAt = Date.now();
  const onBridge = await until(`${port.name} in ${bridgeOf(hv)}'s flows`, 10_000, async () => ((await dump(bridgeOf(hv))).flows.some((f) => f.rule.includes(port.mac)) ? Date.now() : undefined), 20);
  t.log(`after quorum returned: the API took the change in ${answeredAt - calledAt} ms; its flows were on ${bridgeOf(hv)} ${onBridge - calledAt} ms after the call`);
  await converged('after quorum returned', revision);
  await assertFullCompile(t, 'after quorum returned');
});
