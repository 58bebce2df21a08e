/**
 * The etcd model store against real etcd (the Debian package's /usr/bin/etcd): each test starts its
 * own members on free ports and stops them.
 */
import test from 'ava';
import type { Etcd3 } from 'etcd3';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { runConfig } from '../../src/cli/run';
import { type NetworkModel, type VmPort, CURRENT_KEY, ModelValidationError, generationPrefix, loadModelFile, validateModel } from '../../src/model';
import { connectEtcd, readPrefix } from '../../src/model/etcd-client';
import { EtcdModelStore, type StoreLog } from '../../src/model/etcd-store';
import { exportModel, importModel } from '../../src/model/etcd-transfer';
import { Runtime } from '../../src/runtime';
import { APP_REGISTRY } from '../../src/apps/registry';
import { type EtcdCluster, membersLeaderFirst, startEtcd } from '../helpers/etcd';
import { REPO_ROOT } from '../helpers/paths';
import { TEST_STATE_DIR, freePort, run } from '../helpers/run';

const TWO_ZONES = join(REPO_ROOT, 'models/two-zones.yaml');
const THREE_ZONES = join(REPO_ROOT, 'models/three-zones.yaml');
const NORTH_SOUTH = join(REPO_ROOT, 'models/north-south.yaml');
const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');

/** The etcd store lists objects in key (name) order; only ACL order within a VPC means anything. */
function canonical(m: NetworkModel): NetworkModel {
  const byName = <T extends { name: string }>(xs: readonly T[]) => [...xs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const byVpc = <T extends { vpc: string }>(xs: readonly T[]) => [...xs].sort((a, b) => (a.vpc < b.vpc ? -1 : a.vpc > b.vpc ? 1 : 0));
  return {
    zones: byName(m.zones),
    hypervisors: byName(m.hypervisors),
    vpcs: byName(m.vpcs),
    subnets: byVpc(byName(m.subnets)),
    ports: byName(m.ports),
    acls: byVpc(m.acls),
    externalNetworks: byName(m.externalNetworks),
    floatingIps: [...m.floatingIps].sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0)),
    egress: byVpc(m.egress),
    loadBalancers: byVpc(byName(m.loadBalancers)),
  };
}

/** A log that keeps its lines, for asserting what the store said. */
function memoryLog(): StoreLog & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (_f, m) => lines.push(m), warn: (_f, m) => lines.push(m) };
}

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function withEtcd(size: number, body: (cluster: EtcdCluster, client: Etcd3) => Promise<void>): Promise<void> {
  const cluster = await startEtcd(size);
  const client = connectEtcd(cluster.endpoints);
  try {
    await body(cluster, client);
  } finally {
    client.close();
    await cluster.stop();
  }
}

async function currentGeneration(client: Etcd3): Promise<string> {
  return (await client.kv.range({ key: Buffer.from(CURRENT_KEY) })).kvs[0]!.value.toString();
}

/** Calls fn until it does not fail with an etcd error (a member may be down), for at most 10 s. */
async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (const deadline = Date.now() + 10_000; ; ) {
    try {
      return await fn();
    } catch (e) {
      if (!/UNAVAILABLE|DEADLINE|Broken|circuit|leader|timed out/i.test(String(e)) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Puts a key unless it moved since `modRevision` (0: absent); returns the revision it went in at.
 * A retry of a put that went through finds our value there, rather than putting it twice.
 */
function putOnce(client: Etcd3, key: string, value: string, modRevision: number): Promise<number> {
  return retrying(async () => {
    const res = await client.kv.txn({
      compare: [{ key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: modRevision }],
      success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(value) } }],
    });
    if (res.succeeded) return Number(res.header.revision);
    const now = (await client.kv.range({ key: Buffer.from(key) })).kvs[0];
    if (now?.value.toString() === value) return Number(now.mod_revision);
    throw new Error(`${key} was changed by someone else`);
  });
}

test('import, then the store loads what loadModelFile reads; run --store serves it; export round-trips through import', async (t) => {
  await withEtcd(1, async (cluster, client) => {
    const result = await importModel(client, loadModelFile(TWO_ZONES));
    t.is(result.keys, 26); // 2 zones, 4 hypervisors, 2 VPCs (with their egress), 4 subnets, 1 ACL list, 7 ports, 2 external networks, 2 floating IPs, 2 load balancers

    const store = await EtcdModelStore.open(cluster.endpoints);
    t.teardown(() => store.close());
    t.deepEqual(canonical(store.current()), canonical(loadModelFile(TWO_ZONES)));
    t.is(store.revision, result.revision);

    // what `zonemesh run --store` does with its config
    const { config } = runConfig(['--store', cluster.url, '--listen', '127.0.0.1:0', '--control', join(TEST_STATE_DIR, 'etcd-run.sock')]);
    const runtime = await Runtime.create({ config, registry: APP_REGISTRY });
    t.teardown(() => runtime.stop());
    t.deepEqual(canonical(runtime.modelStore!.current()), canonical(loadModelFile(TWO_ZONES)));

    // export of another model, through the command, and its import again
    await run('node', [CLI, 'model', 'import', THREE_ZONES, '--store', cluster.url]);
    const exported = (await run('node', [CLI, 'model', 'export', '--store', cluster.url])).stdout;
    t.deepEqual(canonical(validateModel(parseYaml(exported), 'export')), canonical(loadModelFile(THREE_ZONES)));
    mkdirSync(TEST_STATE_DIR, { recursive: true });
    const file = join(TEST_STATE_DIR, 'etcd-exported.yaml');
    writeFileSync(file, exported);
    const before = await currentGeneration(client);
    await run('node', [CLI, 'model', 'import', file, '--store', cluster.url]);
    t.not(await currentGeneration(client), before, 'a new generation');
    t.deepEqual((await exportModel(client)).document, parseYaml(exported.replace(/^#.*\n/, '')), 'export of the import of an export is the same document');
    const generations = new Set((await readPrefix(client, '/zonemesh/v1/g/', { keysOnly: true })).kvs.map((kv) => kv.key.toString().split('/')[4]));
    t.deepEqual([...generations], [await currentGeneration(client)], 'the old generations are gone');
  });
});

test('north-south objects and load balancers: model import puts them in etcd, the store loads them, export gives them back', async (t) => {
  await withEtcd(1, async (cluster, client) => {
    const lb = { name: 'web-lb', subnet: 'web', vip: '10.1.1.100', protocol: 'tcp', ports: [80], backends: [{ port: 'web1', weight: 1 }, { port: 'web2', weight: 2 }], zoneAffinity: false };
    const doc = parseYaml(readFileSync(NORTH_SOUTH, 'utf8')) as { vpcs: Record<string, unknown>[] };
    doc.vpcs[0]!.loadBalancers = [lb];
    const model = validateModel(doc, NORTH_SOUTH);
    mkdirSync(TEST_STATE_DIR, { recursive: true });
    const file = join(TEST_STATE_DIR, 'etcd-north-south.yaml');
    writeFileSync(file, stringifyYaml(doc));
    await run('node', [CLI, 'model', 'import', file, '--store', cluster.url]);
    const keys = (await readPrefix(client, generationPrefix(await currentGeneration(client)), { keysOnly: true })).kvs.map((kv) => kv.key.toString().split('/').slice(5, 7).join('/'));
    t.true(keys.includes('externalNetworks/ext-a') && keys.includes('floatingIps/198.51.100.10') && keys.includes('loadBalancers/blue'), keys.join(' '));

    const store = await EtcdModelStore.open(cluster.endpoints);
    t.teardown(() => store.close());
    t.deepEqual(canonical(store.current()), canonical(model));
    const exported = (await run('node', [CLI, 'model', 'export', '--store', cluster.url])).stdout;
    t.deepEqual(canonical(validateModel(parseYaml(exported), 'export')), canonical(model));
  });
});

test('an invalid file is refused with its problems and writes nothing; an unreachable etcd is one line and exit 3', async (t) => {
  await withEtcd(1, async (cluster, client) => {
    await importModel(client, loadModelFile(TWO_ZONES));
    const before = await readPrefix(client, '/zonemesh/v1/');
    const bad = join(TEST_STATE_DIR, 'etcd-bad.yaml');
    mkdirSync(TEST_STATE_DIR, { recursive: true });
    writeFileSync(bad, 'zones: []\nhypervisors: []\nvpcs: []\nports:\n  - { name: p, vpc: nope, subnet: s, mac: "02:00:00:00:00:01", ip: 10.0.0.5, hypervisor: hv9 }\n');
    const refused = await run('node', [CLI, 'model', 'import', bad, '--store', cluster.url]).then(() => undefined, (e: { details: { code: number; stderr: string } }) => e.details);
    t.is(refused?.code, 1);
    t.regex(refused?.stderr ?? '', /etcd-bad\.yaml: ports\[0\]\.vpc: unknown VPC 'nope'/);
    const after = await readPrefix(client, '/zonemesh/v1/');
    t.is(after.revision, before.revision, 'nothing written');
  });
  for (const args of [
    ['model', 'export', '--store', 'etcd://127.0.0.1:9'],
    ['run', '--store', 'etcd://127.0.0.1:9,127.0.0.1:7', '--listen', '127.0.0.1:0', '--control', join(TEST_STATE_DIR, 'etcd-down.sock')],
  ]) {
    const failed = await run('node', [CLI, ...args]).then(() => undefined, (e: { details: { code: number; stderr: string } }) => e.details);
    t.is(failed?.code, 3, args.join(' '));
    const lines = failed?.stderr.trim().split('\n') ?? [];
    t.is(lines.length, 1, failed?.stderr);
    t.regex(lines[0]!, new RegExp(`^zonemesh ${args[0]}: cannot reach etcd at ${args[args.indexOf('--store') + 1]!.slice(7)}: .*ECONNREFUSED`));
  }
});

test('an invalid change written into etcd is refused whole with its key, the model kept; the fix is taken', async (t) => {
  await withEtcd(1, async (cluster, client) => {
    await importModel(client, loadModelFile(TWO_ZONES));
    const gen = await currentGeneration(client);
    const store = await EtcdModelStore.open(cluster.endpoints);
    t.teardown(() => store.close());
    const rejected: ModelValidationError[] = [];
    store.rejected$.subscribe((e) => rejected.push(e));
    const kept = store.current();
    const keptRevision = store.revision;

    const bad: VmPort = { name: 'bad', vpc: 'blue', subnet: 'web', mac: '02:00:00:09:09:09', ip: '10.9.9.9', hypervisor: 'hv1', interface: 'bad' };
    const badKey = `${generationPrefix(gen)}ports/bad`;
    await client.put(badKey).value(JSON.stringify(bad));
    await client.put(`${generationPrefix(gen)}zones/zone-c`).value('{not json');
    await until('two rejections', () => rejected.length === 2);
    t.true(rejected[0] instanceof ModelValidationError);
    t.regex(rejected[0]!.message, new RegExp(`etcd: ${badKey}: ip: 10\\.9\\.9\\.9 is outside subnet web \\(10\\.1\\.1\\.0/24\\)`));
    t.regex(rejected[1]!.message, /zones\/zone-c: \(syntax\): not JSON/);
    t.is(store.current(), kept, 'the running model is the one before');
    t.is(store.revision, keptRevision);

    await client.delete().key(`${generationPrefix(gen)}zones/zone-c`);
    const fixed = await client.put(badKey).value(JSON.stringify({ ...bad, ip: '10.1.1.99' })).exec();
    await until('the fixed model', () => store.revision === Number(fixed.header.revision));
    t.deepEqual(store.current().ports.find((p) => p.name === 'bad')?.ip, '10.1.1.99');
    t.is(rejected.length, 3, 'with bad still invalid, deleting zone-c was refused too');
  });
});

test('300 changes while each of 3 members is killed and restarted in turn: one model per revision, in order, none missed or repeated', async (t) => {
  await withEtcd(3, async (cluster, client) => {
    await importModel(client, loadModelFile(TWO_ZONES));
    const gen = await currentGeneration(client);
    const log = memoryLog();
    const store = await EtcdModelStore.open(cluster.endpoints, { log });
    t.teardown(() => store.close());
    /** port name → hypervisor, in name order */
    const placement = (ps: Iterable<VmPort>) => Object.fromEntries([...ps].map((p) => [p.name, p.hypervisor]).sort(([a], [b]) => (a! < b! ? -1 : 1)));
    const seen: { revision: number; ports: Record<string, string> }[] = [];
    store.model$.subscribe((m) => seen.push({ revision: store.revision, ports: placement(m.ports) }));
    const rejected: Error[] = [];
    store.rejected$.subscribe((e) => rejected.push(e));

    // expected: the ports after each write, and the revision it went in at
    const ports = new Map(store.current().ports.map((p) => [p.name, p]));
    const modRevision = new Map<string, number>([...ports.keys()].map((n) => [n, 0]));
    for (const kv of (await readPrefix(client, `${generationPrefix(gen)}ports/`)).kvs) modRevision.set(JSON.parse(kv.value.toString()).name, Number(kv.mod_revision));
    const expected: typeof seen = [];
    const hypervisors = ['hv1', 'hv2', 'hv3', 'hv4'];
    // the leader first, then the others: so the member the store watches on is killed at some point
    const order = await membersLeaderFirst(cluster);
    const faults = new Map<number, () => Promise<void>>(order.flatMap((m, k) => [[40 + 90 * k, () => m.kill()] as const, [80 + 90 * k, () => m.restart()] as const]));

    const started = Date.now();
    for (let i = 0; i < 300; i++) {
      await faults.get(i)?.();
      let port: VmPort;
      if (i % 3 === 0) {
        const k = i / 3;
        port = { name: `s${k}`, vpc: 'blue', subnet: 'db', mac: `02:00:00:09:00:${k.toString(16).padStart(2, '0')}`, ip: `10.1.3.${20 + k}`, hypervisor: hypervisors[k % 4]!, interface: `s${k}` };
      } else {
        const names = [...ports.keys()];
        const p = ports.get(names[i % names.length]!)!;
        port = { ...p, hypervisor: hypervisors[(hypervisors.indexOf(p.hypervisor) + 1) % 4]! };
      }
      const revision = await putOnce(client, `${generationPrefix(gen)}ports/${port.name}`, JSON.stringify(port), modRevision.get(port.name) ?? 0);
      modRevision.set(port.name, revision);
      ports.set(port.name, port);
      expected.push({ revision, ports: placement(ports.values()) });
    }
    t.log(`300 changes and 3 member restarts in ${Date.now() - started} ms`);
    const last = expected[expected.length - 1]!.revision;
    await until(`the store at revision ${last} (at ${store.revision})`, () => store.revision === last, 20_000);

    t.deepEqual(rejected, []);
    t.deepEqual(
      seen.slice(1).map((s) => s.revision),
      expected.map((e) => e.revision),
      'one model per revision',
    );
    t.deepEqual(seen.slice(1), expected, 'each model is the one of its revision');
    const inEtcd = await retrying(() => exportModel(client));
    t.deepEqual(canonical(store.current()), canonical(validateModel(inEtcd.document, 'etcd')));
    t.true(log.lines.some((l) => l.startsWith('etcd unreachable')), log.lines.join('\n'));
    t.true(log.lines.some((l) => l.startsWith('etcd reachable again')), log.lines.join('\n'));
  });
});

/** A TCP relay to one etcd member that the test can cut and restore: the store's only way in. */
class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async open(): Promise<void> {
    const server = createServer((inbound) => {
      const outbound = connect(this.target.port, this.target.host);
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }
}

test('a compaction past the revision the store had when it lost etcd makes it read the whole model again', async (t) => {
  await withEtcd(1, async (cluster, client) => {
    await importModel(client, loadModelFile(TWO_ZONES));
    const gen = await currentGeneration(client);
    const [host, port] = cluster.endpoints[0]!.split(':');
    const relay = new Relay(await freePort(), { host: host!, port: Number(port) });
    await relay.open();
    const log = memoryLog();
    t.teardown(() => relay.cut());
    const store = await EtcdModelStore.open([`127.0.0.1:${relay.port}`], { log });
    t.teardown(() => store.close());
    const emitted: number[] = [];
    store.model$.subscribe(() => emitted.push(store.revision));

    await relay.cut();
    await until('the store to notice', () => log.lines.some((l) => l.startsWith('etcd unreachable')));
    // db1, not web2: removing a port that a floating IP is bound to makes the model invalid
    const removed = await client.delete().key(`${generationPrefix(gen)}ports/db1`).exec();
    let latest = Number(removed.header.revision);
    for (const name of ['web1', 'app1']) {
      const key = `${generationPrefix(gen)}ports/${name}`;
      const p = JSON.parse((await client.get(key))!) as VmPort;
      latest = Number((await client.put(key).value(JSON.stringify({ ...p, hypervisor: 'hv2' })).exec()).header.revision);
    }
    await client.kv.compact({ revision: latest, physical: true });
    await relay.open();

    await until('the re-read model', () => store.revision === latest);
    t.true(log.lines.some((l) => new RegExp(`^revision \\d+ was compacted: read the whole model again at revision ${latest}$`).test(l)), log.lines.join('\n'));
    t.deepEqual(emitted.slice(1), [latest], 'one model for the re-read, none for the revisions it could not see');
    const m = store.current();
    t.false(m.ports.some((p) => p.name === 'db1'));
    t.deepEqual(m.ports.filter((p) => p.name === 'web1' || p.name === 'app1').map((p) => p.hypervisor), ['hv2', 'hv2']);
    t.deepEqual(canonical(m), canonical(validateModel((await exportModel(client)).document, 'etcd')));
    // and it watches again: a later change arrives as usual
    const later = await client.delete().key(`${generationPrefix(gen)}ports/red2`).exec();
    await until('the next change', () => store.revision === Number(later.header.revision));
    t.false(store.current().ports.some((p) => p.name === 'red2'));
  });
});
