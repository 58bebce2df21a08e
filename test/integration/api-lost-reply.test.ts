/**
 * "Write landed, reply lost": an API write whose etcd transaction committed but whose answer never
 * came back (the connection broke after the commit; the etcd3 package then resends the transaction,
 * whose compare fails). The API must answer success with the revision it committed at, and the write
 * must be applied once. A real etcd, and a client wrapper that loses the answer of the next commit.
 */
import test from 'ava';
import type { Etcd3 } from 'etcd3';
import { join } from 'node:path';
import { type ApiServer, startApi } from '../../src/api/server';
import { CURRENT_KEY, WRITE_MARK_KEY, loadModelFile } from '../../src/model';
import { connectEtcd } from '../../src/model/etcd-client';
import { importModel } from '../../src/model/etcd-transfer';
import { ModelWriter } from '../../src/model/etcd-writer';
import { type EtcdCluster, startEtcd } from '../helpers/etcd';
import { captureLog } from '../helpers/log';
import { REPO_ROOT } from '../helpers/paths';

const TOKEN = 'lost-reply-token-0123456789';

/**
 * What happens to the next API commit (a transaction that puts the write mark): its answer is lost
 * (an UNAVAILABLE error after etcd applied it), it is sent again and the second answer returned, or
 * (`request lost`) it never reaches etcd. `meanwhile` runs between the commit and the lost answer.
 */
type Fault = { kind: 'answer lost' | 'resent'; meanwhile?: () => Promise<void> } | { kind: 'request lost' };

/** The client with `kv.txn` wrapped; `arm` sets the fault of the next commit, `fired` counts faults done. */
function faultyClient(client: Etcd3): { client: Etcd3; arm(f: Fault): void; fired: number } {
  const state = { next: undefined as Fault | undefined, fired: 0 };
  const unavailable = () => Object.assign(new Error('14 UNAVAILABLE: read ECONNRESET (the test lost the answer)'), { code: 14 });
  const txn: Etcd3['kv']['txn'] = async (req, options) => {
    const fault = state.next;
    const commit = req.success?.some((op) => op.request_put?.key?.toString() === WRITE_MARK_KEY);
    if (!fault || !commit) return client.kv.txn(req, options);
    state.next = undefined;
    state.fired++;
    if (fault.kind === 'request lost') throw unavailable();
    const first = await client.kv.txn(req, options);
    if (!first.succeeded) throw new Error('the test meant to lose the answer of a commit, but the transaction failed');
    await fault.meanwhile?.();
    if (fault.kind === 'resent') return client.kv.txn(req, options);
    throw unavailable();
  };
  const kv = new Proxy(client.kv, { get: (target, prop) => (prop === 'txn' ? txn : Reflect.get(target, prop, target)) });
  const wrapped = new Proxy(client, { get: (target, prop) => (prop === 'kv' ? kv : Reflect.get(target, prop, target)) });
  return {
    client: wrapped,
    arm: (f) => (state.next = f),
    get fired() {
      return state.fired;
    },
  };
}

let cluster: EtcdCluster;
let client: Etcd3;
let faulty: ReturnType<typeof faultyClient>;
let api: ApiServer;

test.before(async () => {
  cluster = await startEtcd(1);
  client = connectEtcd(cluster.endpoints);
  await importModel(client, loadModelFile(join(REPO_ROOT, 'models/two-zones.yaml')));
  faulty = faultyClient(client);
  api = await startApi({ client: faulty.client, host: '127.0.0.1', port: 0, token: TOKEN, log: captureLog('info').log });
});

test.after.always(async () => {
  await api?.close();
  client?.close();
  await cluster?.stop();
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, any> }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await fetch(`${api.url}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined && { 'content-type': 'application/json' }), ...headers }, ...(body !== undefined && { body: JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {} };
}

const head = async (): Promise<number> => Number((await client.kv.range({ key: Buffer.from(CURRENT_KEY) })).header.revision);
const modRevision = async (path: string): Promise<number> => ((await call('GET', path)).body.revision as number | undefined) ?? 0;

const PORT = { name: 'web3', vpc: 'blue', subnet: 'web', mac: '02:00:00:01:01:0d', ip: '10.1.1.13', hypervisor: 'hv2' };

test.serial('create, move and delete whose answers are lost (then resent) report success at the revision they committed at, applied once', async (t) => {
  for (const kind of ['answer lost', 'resent'] as const) {
    const before = await head();
    faulty.arm({ kind });
    const created = await call('POST', '/v1/ports', PORT);
    t.is(created.status, 201, `${kind}: ${JSON.stringify(created.body)}`);
    t.is(created.body.revision, before + 1, `${kind}: one commit`);
    t.is(await modRevision('/v1/ports/web3'), created.body.revision);

    faulty.arm({ kind });
    const moved = await call('PUT', '/v1/ports/web3', { ...created.body, hypervisor: 'hv3' });
    t.is(moved.status, 200, `${kind}: ${JSON.stringify(moved.body)}`);
    t.is(moved.body.revision, before + 2);
    t.is((await call('GET', '/v1/ports/web3')).body.hypervisor, 'hv3');

    faulty.arm({ kind });
    const deleted = await call('DELETE', '/v1/ports/web3', undefined, { 'If-Match': `"${moved.body.revision}"` });
    t.is(deleted.status, 204, `${kind}: ${JSON.stringify(deleted.body)}`);
    t.is(await head(), before + 3, `${kind}: three writes, three revisions`);
    t.is((await call('GET', '/v1/ports/web3')).status, 404);
  }
  t.is(faulty.fired, 6);
});

test.serial('an answer lost while other writes commit after it: the write is found at its revision among theirs', async (t) => {
  const other = new ModelWriter(client);
  t.teardown(() => other.close());
  const before = await head();
  let othersAt = 0;
  faulty.arm({
    kind: 'answer lost',
    meanwhile: async () => {
      const zone = await other.write({ ref: { kind: 'zones', name: 'zone-x' }, revision: 0, value: { name: 'zone-x', underlay: '172.16.9.0/24' } }, new Date(Date.now() + 5000));
      const again = await other.write({ ref: { kind: 'zones', name: 'zone-x' }, revision: zone.object!.revision, value: { name: 'zone-x', underlay: '172.16.8.0/24' } }, new Date(Date.now() + 5000));
      othersAt = again.storeRevision;
    },
  });
  const created = await call('POST', '/v1/ports', PORT);
  t.is(created.status, 201, JSON.stringify(created.body));
  t.is(created.body.revision, before + 1);
  t.is(othersAt, before + 3, 'two writes committed after it, before the answer was lost');
  t.is(await modRevision('/v1/ports/web3'), before + 1);
  t.is((await call('DELETE', `/v1/ports/web3?revision=${created.body.revision}`)).status, 204);
});

test.serial('a request lost before etcd got it: 503, nothing written, and the same write then goes through', async (t) => {
  const before = await head();
  faulty.arm({ kind: 'request lost' });
  const lost = await call('POST', '/v1/ports', PORT);
  t.is(lost.status, 503, JSON.stringify(lost.body));
  t.regex(lost.body.detail, /etcd did not answer.*nothing was written/);
  t.is(await head(), before, 'nothing written');
  const again = await call('POST', '/v1/ports', PORT);
  t.is(again.status, 201, JSON.stringify(again.body));
});
