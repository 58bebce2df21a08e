/**
 * The northbound REST API against a real etcd (one for the file; the tests share it and run in
 * order): every route's happy path and its refusals, each refusal checked to have written nothing.
 */
import test, { type ExecutionContext } from 'ava';
import type { Etcd3 } from 'etcd3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openApiPath } from '../../src/api/openapi';
import { OBJECT_SCHEMAS, RESOURCES } from '../../src/api/schemas';
import { ApiConfigError, type ApiServer, startApi } from '../../src/api/server';
import { CURRENT_KEY, loadModelFile } from '../../src/model';
import { connectEtcd } from '../../src/model/etcd-client';
import { exportModel, importModel } from '../../src/model/etcd-transfer';
import { type EtcdCluster, startEtcd } from '../helpers/etcd';
import { captureLog } from '../helpers/log';
import { REPO_ROOT } from '../helpers/paths';
import { makePkiFiles } from '../helpers/pki';
import { run } from '../helpers/run';

const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');
const TOKEN = 'test-token-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'zm-api-'));
const tokenFile = join(dir, 'token');
writeFileSync(tokenFile, `${TOKEN}\n`);

let cluster: EtcdCluster;
let client: Etcd3;
let api: ApiServer;
const logged = captureLog('info');

test.before(async () => {
  cluster = await startEtcd(1);
  client = connectEtcd(cluster.endpoints);
  // the default model without its way out and its load balancers: the tests below build them through the API
  await importModel(client, { ...loadModelFile(join(REPO_ROOT, 'models/two-zones.yaml')), externalNetworks: [], floatingIps: [], egress: [], loadBalancers: [] });
  api = await startApi({ client, host: '127.0.0.1', port: 0, token: TOKEN, log: logged.log, requestTimeoutMs: 2000 });
});

test.after.always(async () => {
  await api?.close();
  client?.close();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Reply {
  status: number;
  headers: Headers;
  body: Json;
}

/** A request with the token (unless `token` says otherwise) and a JSON body. */
async function call(method: string, path: string, body?: unknown, opts: { token?: string | null; headers?: Record<string, string>; raw?: string | Buffer } = {}): Promise<Reply> {
  const token = opts.token === undefined ? TOKEN : opts.token;
  const payload = opts.raw ?? (body === undefined ? undefined : JSON.stringify(body));
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: { ...(payload !== undefined && { 'content-type': 'application/json' }), ...(token !== null && { authorization: `Bearer ${token}` }), ...opts.headers },
    ...(payload !== undefined && { body: payload }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Json) : {} };
}

const etcdRevision = async (): Promise<number> => Number((await client.kv.range({ key: Buffer.from(CURRENT_KEY) })).header.revision);

/** The request is refused with `status` as problem+json, and etcd's revision has not moved. */
async function refused(t: ExecutionContext, status: number, request: () => Promise<Reply>): Promise<Reply> {
  const before = await etcdRevision();
  const res = await request();
  t.is(res.status, status, JSON.stringify(res.body));
  t.is(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  t.is(res.body.status, status);
  t.is(typeof res.body.title, 'string');
  t.is(await etcdRevision(), before, 'nothing written');
  return res;
}

const errorAt = (res: Reply, path: string): string | undefined => (res.body.errors as { path: string; problem: string }[] | undefined)?.find((e) => e.path === path)?.problem;

const NEW_PORT = { name: 'web3', vpc: 'blue', subnet: 'web', mac: '02:00:00:01:01:0d', ip: '10.1.1.13', hypervisor: 'hv2' };

test.serial('the OpenAPI document lists every route the server has, and no other', async (t) => {
  const doc = (await call('GET', '/v1/openapi.json', undefined, { token: null })).body;
  t.is(doc.openapi, '3.1.0');
  const served = new Set(api.routes.map((r) => r.replace(/^(\w+) (.*)$/, (_, m: string, p: string) => `${m.toLowerCase()} ${openApiPath(p)}`)));
  const documented = new Set(Object.entries(doc.paths as Json).flatMap(([path, ops]) => Object.keys(ops as Json).map((m) => `${m} ${path}`)));
  t.deepEqual([...documented].sort(), [...served].sort());
  t.true(served.has('put /v1/vpcs/{vpc}/acls'));
  t.true(served.size >= 27);
});

test.serial("each object schema names exactly the keys the model's validator knows", async (t) => {
  for (const r of RESOURCES.filter((x) => x.collection && x.kind !== 'acls')) {
    const keys = Object.keys((OBJECT_SCHEMAS[r.kind] as { properties: Json }).properties);
    // every key present (junk values): none is unknown to the validator
    const field = r.nameField ?? 'name';
    const all = await refused(t, 422, () => call('POST', r.collection!.replace(':vpc', 'blue'), Object.fromEntries(keys.map((k) => [k, k === field ? 'zz-junk' : true]))));
    t.false(JSON.stringify(all.body.errors).includes('unknown key'), `${r.kind}: ${JSON.stringify(all.body.errors)}`);
    const extra = await refused(t, 422, () => call('POST', r.collection!.replace(':vpc', 'blue'), { [field]: 'zz-junk', colour: 'red' }));
    t.regex(errorAt(extra, 'colour') ?? '', /unknown key/, r.kind);
  }
});

test.serial('ports: create, read, list, move with the revision read, delete', async (t) => {
  const created = await call('POST', '/v1/ports', NEW_PORT);
  t.is(created.status, 201, JSON.stringify(created.body));
  t.is(created.headers.get('location'), '/v1/ports/web3');
  t.deepEqual(created.body, { ...NEW_PORT, interface: 'web3', revision: created.body.revision });
  t.is(created.headers.get('etag'), `"${created.body.revision}"`);

  const read = await call('GET', '/v1/ports/web3', undefined, { token: null });
  t.deepEqual(read.body, created.body);
  const list = await call('GET', '/v1/ports', undefined, { token: null });
  t.deepEqual(list.body.items.map((p: Json) => p.name), ['app1', 'app2', 'db1', 'red1', 'red2', 'web1', 'web2', 'web3']);
  t.true(list.body.revision >= created.body.revision);

  const moved = await call('PUT', '/v1/ports/web3', { ...read.body, hypervisor: 'hv3' });
  t.is(moved.status, 200, JSON.stringify(moved.body));
  t.is(moved.body.hypervisor, 'hv3');
  t.true(moved.body.revision > created.body.revision);

  const movedByIfMatch = await call('PUT', '/v1/ports/web3', { ...NEW_PORT, hypervisor: 'hv4' }, { headers: { 'If-Match': `"${moved.body.revision}"` } });
  t.is(movedByIfMatch.status, 200);
  t.is(movedByIfMatch.body.hypervisor, 'hv4');

  const deleted = await call('DELETE', '/v1/ports/web3', undefined, { headers: { 'If-Match': `"${movedByIfMatch.body.revision}"` } });
  t.is(deleted.status, 204);
  await refused(t, 404, () => call('GET', '/v1/ports/web3', undefined, { token: null }));
});

test.serial('ports: bad input gets a clear 4xx naming the field, and nothing is written', async (t) => {
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/ports', { ...NEW_PORT, ip: 42 })), 'ip') ?? '', /must be a non-empty string/);
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/ports', { ...NEW_PORT, hypervisr: 'hv1' })), 'hypervisr') ?? '', /did you mean hypervisor/);
  t.is(errorAt(await refused(t, 422, () => call('POST', '/v1/ports', { ...NEW_PORT, ip: '10.1.9.9' })), 'ip'), '10.1.9.9 is outside subnet web (10.1.1.0/24)');
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/ports', { ...NEW_PORT, mac: '02:00:00:01:01:0b' })), 'mac') ?? '', /duplicate MAC in the VPC 'blue\/02:00:00:01:01:0b' \(first at ports\/web1: mac\)/);
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/ports', { ...NEW_PORT, subnet: 'nope' })), 'subnet') ?? '', /unknown subnet 'nope'/);
  t.is(errorAt(await refused(t, 422, () => call('POST', '/v1/ports', { vpc: 'blue' })), 'name'), 'is required');
  const web1 = (await call('GET', '/v1/ports/web1')).body;
  t.regex(errorAt(await refused(t, 422, () => call('PUT', '/v1/ports/web1', { ...web1, name: 'web9' })), 'name') ?? '', /not the name in the path/);
  const exists = await refused(t, 409, () => call('POST', '/v1/ports', { ...web1, revision: undefined }));
  t.is(exists.body.revision, web1.revision);
  const stale = await refused(t, 409, () => call('PUT', '/v1/ports/web1', { ...web1, hypervisor: 'hv2', revision: web1.revision - 1 }));
  t.is(stale.body.revision, web1.revision, 'the 409 carries the revision now');
  await refused(t, 409, () => call('DELETE', `/v1/ports/web1?revision=${web1.revision - 1}`));
  await refused(t, 428, () => call('PUT', '/v1/ports/web1', { ...web1, revision: undefined }));
  await refused(t, 428, () => call('DELETE', '/v1/ports/web1'));
  await refused(t, 400, () => call('PUT', '/v1/ports/web1', web1, { headers: { 'If-Match': `"${web1.revision + 1}"` } }));
  await refused(t, 400, () => call('PUT', '/v1/ports/web1', { ...web1, revision: 'two' }));
  await refused(t, 400, () => call('POST', '/v1/ports', { ...NEW_PORT, revision: 7 }));
  await refused(t, 404, () => call('PUT', '/v1/ports/nope', { ...NEW_PORT, name: 'nope', revision: 5 }));

  await refused(t, 400, () => call('POST', '/v1/ports', undefined, { raw: '{"name": ' }));
  await refused(t, 400, () => call('POST', '/v1/ports', [NEW_PORT]));
  await refused(t, 415, () => call('POST', '/v1/ports', undefined, { raw: 'name=web3', headers: { 'content-type': 'text/plain' } }));
  const big = await refused(t, 413, () => call('POST', '/v1/ports', undefined, { raw: JSON.stringify({ ...NEW_PORT, pad: 'x'.repeat(10 << 20) }) }));
  t.regex(big.body.detail, /body/i);
  await refused(t, 404, () => call('GET', '/v1/nothing'));
});

test.serial('concurrent writes never commit a model that validation did not see: of two ports with one MAC, one is refused', async (t) => {
  const a = { ...NEW_PORT, name: 'race-a', ip: '10.1.1.21', mac: '02:00:00:01:01:21' };
  const b = { ...a, name: 'race-b', ip: '10.1.1.22' };
  const results = await Promise.all([call('POST', '/v1/ports', a), call('POST', '/v1/ports', b)]);
  t.deepEqual(results.map((r) => r.status).sort(), [201, 422], JSON.stringify(results.map((r) => r.body)));
  const winner = results.find((r) => r.status === 201)!.body;
  t.regex(JSON.stringify(results.find((r) => r.status === 422)!.body.errors), /duplicate MAC/);
  t.is((await call('DELETE', `/v1/ports/${winner.name}?revision=${winner.revision}`)).status, 204);
});

test.serial('writes need the token; reads without one only from loopback; refusals are logged', async (t) => {
  const none = await refused(t, 401, () => call('POST', '/v1/ports', NEW_PORT, { token: null }));
  t.is(none.headers.get('www-authenticate'), 'Bearer');
  await refused(t, 401, () => call('POST', '/v1/ports', NEW_PORT, { token: 'wrong-token-0123456789' }));
  await refused(t, 401, () => call('DELETE', '/v1/ports/web1?revision=1', undefined, { token: null }));
  await refused(t, 401, () => call('GET', '/v1/ports', undefined, { token: 'wrong-token-0123456789' }));
  t.is((await call('GET', '/v1/ports', undefined, { token: null })).status, 200);

  const remote = await api.inject({ method: 'GET', url: '/v1/ports', remoteAddress: '192.0.2.7' });
  t.is(remote.statusCode, 401);
  t.regex(remote.json().detail, /another host/);
  const remoteWithToken = await api.inject({ method: 'GET', url: '/v1/ports/web1', remoteAddress: '192.0.2.7', headers: { authorization: `Bearer ${TOKEN}` } });
  t.is(remoteWithToken.statusCode, 200);

  const lines = logged.lines.filter((l) => l.msg === 'api request refused');
  t.true(lines.some((l) => l.remote === '192.0.2.7' && l.route === '/v1/ports' && l.status === 401));
  t.true(lines.some((l) => l.method === 'POST' && l.route === '/v1/ports' && l.remote === '127.0.0.1'));
  t.true(lines.some((l) => l.method === 'DELETE' && l.route === '/v1/ports/:name'));
  t.false(logged.text.join('').includes('wrong-token'), 'a wrong token is never logged');
});

test.serial('an API without a token takes no writes (403), and plain HTTP beyond loopback is refused', async (t) => {
  const readOnly = await startApi({ client, host: '127.0.0.1', port: 0, log: logged.log });
  try {
    const res = await fetch(`${readOnly.url}/v1/vpcs/blue`, { method: 'DELETE', headers: { 'If-Match': '"1"' } });
    t.is(res.status, 403);
    t.is((await fetch(`${readOnly.url}/v1/vpcs/blue`)).status, 200);
  } finally {
    await readOnly.close();
  }
  await t.throwsAsync(startApi({ client, host: '0.0.0.0', port: 0, token: TOKEN, log: logged.log }), { instanceOf: ApiConfigError, message: /needs TLS/ });
});

test.serial('TLS: a client certificate the CA signed may write; without it or the token, 401', async (t) => {
  const pki = makePkiFiles(mkdtempSync(join(dir, 'pki-')));
  const tlsApi = await startApi({ client, host: '127.0.0.1', port: 0, log: logged.log, tls: { key: pki.read(pki.serverKey), cert: pki.read(pki.serverCert), ca: pki.read(pki.caCert) } });
  const https = (method: string, path: string, body: unknown, cert?: { key: string; cert: string }) =>
    new Promise<number>((resolve, reject) => {
      const req = httpsRequest(`${tlsApi.url}${path}`, { method, ca: pki.read(pki.caCert), ...cert, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  try {
    t.true(tlsApi.url.startsWith('https://'));
    const zone = { name: 'zone-c', underlay: '172.16.3.0/24' };
    t.is(await https('POST', '/v1/zones', zone), 401);
    t.is(await https('POST', '/v1/zones', zone, { key: pki.read(pki.rogueKey), cert: pki.read(pki.rogueCert) }), 401);
    t.is(await https('POST', '/v1/zones', zone, { key: pki.read(pki.clientKey), cert: pki.read(pki.clientCert) }), 201);
  } finally {
    await tlsApi.close();
  }
});

test.serial('zones and hypervisors: create, refuse what the model refuses, delete', async (t) => {
  const zone = await call('GET', '/v1/zones/zone-c');
  t.is(zone.status, 200, 'created over TLS by the test before');
  const hv = { name: 'hv5', zone: 'zone-c', tunnelIp: '172.16.3.15', datapathId: '0x15' };
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/hypervisors', { ...hv, tunnelIp: '172.16.9.15' })), 'tunnelIp') ?? '', /outside zone zone-c's underlay/);
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/hypervisors', { ...hv, datapathId: '0x11' })), 'datapathId') ?? '', /duplicate datapath id/);
  const created = await call('POST', '/v1/hypervisors', hv);
  t.is(created.status, 201, JSON.stringify(created.body));
  t.is(created.body.datapathId, '0x15');
  // a hypervisor or zone still in use stays
  const inUse = await refused(t, 422, () => call('DELETE', `/v1/zones/zone-c?revision=${zone.body.revision}`));
  t.regex(errorAt(inUse, 'hypervisors/hv5: zone') ?? '', /unknown zone 'zone-c'/);
  const hv1 = (await call('GET', '/v1/hypervisors/hv1')).body;
  t.regex(errorAt(await refused(t, 422, () => call('DELETE', `/v1/hypervisors/hv1?revision=${hv1.revision}`)), 'ports/web1: hypervisor') ?? '', /unknown hypervisor 'hv1'/);
  t.is((await call('DELETE', `/v1/hypervisors/hv5?revision=${created.body.revision}`)).status, 204);
  t.is((await call('DELETE', `/v1/zones/zone-c?revision=${zone.body.revision}`)).status, 204);
  await refused(t, 404, () => call('GET', '/v1/zones/zone-c'));
});

test.serial('VPCs and subnets: create, refuse overlaps and dangling references, delete', async (t) => {
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/vpcs', { name: 'green', vni: 101 })), 'vni') ?? '', /duplicate VNI '101'/);
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/vpcs', { name: 'green', vni: 303, subnets: [] })), 'subnets') ?? '', /objects of their own/);
  const vpc = await call('POST', '/v1/vpcs', { name: 'green', vni: 303 });
  t.is(vpc.status, 201, JSON.stringify(vpc.body));
  t.deepEqual(vpc.body, { name: 'green', vni: 303, revision: vpc.body.revision });

  await refused(t, 404, () => call('POST', '/v1/vpcs/nope/subnets', { name: 'a', cidr: '10.9.0.0/24', gateway: '10.9.0.1' }));
  await refused(t, 404, () => call('GET', '/v1/vpcs/nope/subnets'));
  const subnet = await call('POST', '/v1/vpcs/green/subnets', { name: 'web', cidr: '10.3.1.0/24', gateway: '10.3.1.1' });
  t.is(subnet.status, 201, JSON.stringify(subnet.body));
  t.is(subnet.headers.get('location'), '/v1/vpcs/green/subnets/web');
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/vpcs/green/subnets', { name: 'db', cidr: '10.3.0.0/16', gateway: '10.3.0.1' })), 'cidr') ?? '', /overlaps 10.3.1.0\/24/);
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/vpcs/green/subnets', { name: 'db', cidr: '10.3.2.0/24', gateway: '10.3.3.1' })), 'gateway') ?? '', /outside 10.3.2.0\/24/);
  t.deepEqual((await call('GET', '/v1/vpcs/green/subnets')).body.items.map((s: Json) => s.name), ['web']);

  const blueWeb = (await call('GET', '/v1/vpcs/blue/subnets/web')).body;
  const dangling = await refused(t, 422, () => call('DELETE', `/v1/vpcs/blue/subnets/web?revision=${blueWeb.revision}`));
  t.regex(errorAt(dangling, 'ports/web1: subnet') ?? '', /unknown subnet 'web' in VPC blue/);
  t.regex(errorAt(await refused(t, 422, () => call('DELETE', `/v1/vpcs/green?revision=${vpc.body.revision}`)), 'subnets') ?? '', /still has subnets web/);

  const renumbered = await call('PUT', '/v1/vpcs/green', { name: 'green', vni: 304, revision: vpc.body.revision });
  t.is(renumbered.status, 200, JSON.stringify(renumbered.body));
  t.deepEqual((await call('GET', '/v1/vpcs/green/subnets/web')).body, subnet.body, 'a VPC keeps its subnets when it is replaced');
  t.is((await call('DELETE', `/v1/vpcs/green/subnets/web?revision=${subnet.body.revision}`)).status, 204);
  t.is((await call('DELETE', `/v1/vpcs/green?revision=${renumbered.body.revision}`)).status, 204);
  await refused(t, 404, () => call('GET', '/v1/vpcs/green'));
});

test.serial("ACL rules: a VPC's ordered list, read and replaced whole with its revision", async (t) => {
  const blue = await call('GET', '/v1/vpcs/blue/acls', undefined, { token: null });
  t.is(blue.status, 200);
  t.is(blue.body.vpc, 'blue');
  t.deepEqual(blue.body.rules.map((r: Json) => r.name), ['web-to-app-http', 'web-to-app-ping', 'web-to-app-ping6', 'app-to-db-sql', 'app-to-db-ping', 'app-to-db-ping6', 'http-from-anywhere', 'ping-web-from-anywhere']);
  const reordered = [...blue.body.rules].reverse();
  const put = await call('PUT', '/v1/vpcs/blue/acls', { rules: reordered, revision: blue.body.revision });
  t.is(put.status, 200, JSON.stringify(put.body));
  t.deepEqual((await call('GET', '/v1/vpcs/blue/acls')).body.rules.map((r: Json) => r.name), reordered.map((r: Json) => r.name));

  const bad = await refused(t, 422, () => call('PUT', '/v1/vpcs/blue/acls', { rules: [{ ...reordered[0], subnet: 'nope' }, { ...reordered[0], name: 'icmp-with-ports', ports: 80 }], revision: put.body.revision }));
  t.regex(errorAt(bad, 'rules[0].subnet') ?? '', /unknown subnet 'nope'/);
  t.regex(errorAt(bad, 'rules[1].ports') ?? '', /need protocol tcp or udp/);
  await refused(t, 409, () => call('PUT', '/v1/vpcs/blue/acls', { rules: reordered, revision: blue.body.revision }));
  t.regex(errorAt(await refused(t, 422, () => call('PUT', '/v1/vpcs/blue/acls', { rule: reordered, revision: put.body.revision })), 'rule') ?? '', /did you mean rules/);
  t.is(errorAt(await refused(t, 422, () => call('PUT', '/v1/vpcs/blue/acls', { rules: 'allow all', revision: put.body.revision })), 'rules'), 'must be a list');

  const red = await call('GET', '/v1/vpcs/red/acls');
  t.deepEqual(red.body, { vpc: 'red', rules: [], revision: 0 });
  const rule = { name: 'red-web-in', subnet: 'web', direction: 'ingress', action: 'allow', protocol: 'tcp', ports: '80-81', remote: { cidr: '0.0.0.0/0' } };
  const created = await call('PUT', '/v1/vpcs/red/acls', { rules: [rule], revision: 0 });
  t.is(created.status, 200, JSON.stringify(created.body));
  t.deepEqual(created.body.rules, [rule]);
  t.is((await call('DELETE', '/v1/vpcs/red/acls', undefined, { headers: { 'If-Match': String(created.body.revision) } })).status, 204);
  t.deepEqual((await call('GET', '/v1/vpcs/red/acls')).body, { vpc: 'red', rules: [], revision: 0 });
  await refused(t, 404, () => call('GET', '/v1/vpcs/nope/acls'));
});

test.serial('zonemesh port add|move|rm calls the API and exits non-zero on a refusal', async (t) => {
  const cli = (...args: string[]) => run('node', [CLI, 'port', ...args, '--api', api.url, '--token-file', tokenFile]).then((r) => ({ ...r, code: 0 }), (e: { details: { code: number; stdout: string; stderr: string } }) => ({ ...e.details }));
  const added = await cli('add', 'web4', '--vpc', 'blue', '--subnet', 'web', '--mac', '02:00:00:01:01:0e', '--ip', '10.1.1.14', '--hypervisor', 'hv1');
  t.is(added.code, 0, added.stderr);
  t.is(JSON.parse(added.stdout).hypervisor, 'hv1');
  const moved = await cli('move', 'web4', '--hypervisor', 'hv3');
  t.is(moved.code, 0, moved.stderr);
  t.is((await call('GET', '/v1/ports/web4')).body.hypervisor, 'hv3');

  const before = await etcdRevision();
  const outside = await cli('add', 'web5', '--vpc', 'blue', '--subnet', 'web', '--mac', '02:00:00:01:01:0f', '--ip', '10.1.7.15', '--hypervisor', 'hv1');
  t.is(outside.code, 1);
  t.regex(outside.stderr, /422 the model would be invalid.*\n\s+ip: 10.1.7.15 is outside subnet web/);
  const unknownHv = await cli('move', 'web4', '--hypervisor', 'hv9');
  t.is(unknownHv.code, 1);
  t.regex(unknownHv.stderr, /hypervisor: unknown hypervisor 'hv9'/);
  const noToken = await run('node', [CLI, 'port', 'rm', 'web4', '--api', api.url]).catch((e: { details: { code: number; stderr: string } }) => e.details);
  t.is((noToken as { code: number }).code, 1);
  t.is(await etcdRevision(), before, 'nothing written');

  const removed = await cli('rm', 'web4');
  t.is(removed.code, 0, removed.stderr);
  t.regex(removed.stdout, /deleted port web4/);
  t.is((await cli('rm', 'web4')).code, 1, 'no such port');
});

const LB = { name: 'web-lb', subnet: 'web', vip: '10.1.1.100', protocol: 'tcp', ports: [80], backends: [{ port: 'web1', weight: 1 }, { port: 'web2', weight: 2 }], zoneAffinity: false };

test.serial("load balancers: a VPC's objects, created, read, listed, replaced with the revision read, refused as the model refuses them, deleted", async (t) => {
  const created = await call('POST', '/v1/vpcs/blue/loadBalancers', LB);
  t.is(created.status, 201, JSON.stringify(created.body));
  t.is(created.headers.get('location'), '/v1/vpcs/blue/loadBalancers/web-lb');
  t.deepEqual(created.body, { ...LB, revision: created.body.revision });
  t.deepEqual((await call('GET', '/v1/vpcs/blue/loadBalancers/web-lb', undefined, { token: null })).body, created.body);
  t.deepEqual((await call('GET', '/v1/vpcs/blue/loadBalancers')).body.items.map((x: Json) => x.name), ['web-lb']);
  t.deepEqual((await exportModel(client)).document.vpcs.find((v) => v.name === 'blue')!.loadBalancers, [LB], 'in the model as a file has it');

  t.is(errorAt(await refused(t, 422, () => call('POST', '/v1/vpcs/blue/loadBalancers', { ...LB, name: 'lb2', vip: '10.1.1.11' })), 'vip'), '10.1.1.11 is the address of port web1 in VPC blue');
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/vpcs/blue/loadBalancers', { ...LB, name: 'lb2', vip: '10.1.9.100' })), 'vip') ?? '', /outside subnet web/);
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/vpcs/blue/loadBalancers', { ...LB, name: 'lb2' })), 'ports') ?? '', /10.1.1.100 tcp port 80 is already served by vpcs\/blue\/loadBalancers\/web-lb/);
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/vpcs/blue/loadBalancers', { ...LB, name: 'lb2', vip: '10.1.1.101', backends: [{ port: 'red1' }] })), 'backends[0].port') ?? '', /in VPC red, not in blue/);
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/vpcs/blue/loadBalancers', { ...LB, name: 'lb2', vip: '10.1.1.101', ports: 'http' })), 'ports') ?? '', /must be a port or a list/);
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/vpcs/blue/loadBalancers', { ...LB, name: 'lb2', vip: '10.1.1.101', colour: 'red' })), 'colour') ?? '', /unknown key/);
  await refused(t, 404, () => call('POST', '/v1/vpcs/nope/loadBalancers', LB));
  await refused(t, 409, () => call('POST', '/v1/vpcs/blue/loadBalancers', LB));
  // a backend port, or the VPC, still in use stays
  const web1 = (await call('GET', '/v1/ports/web1')).body;
  t.regex(errorAt(await refused(t, 422, () => call('DELETE', `/v1/ports/web1?revision=${web1.revision}`)), 'vpcs/blue/loadBalancers/web-lb: backends[0].port') ?? '', /unknown port 'web1'/);
  const blueRead = (await call('GET', '/v1/vpcs/blue')).body;
  t.regex(errorAt(await refused(t, 422, () => call('PUT', '/v1/vpcs/blue', { ...blueRead, loadBalancers: [LB] })), 'loadBalancers') ?? '', /objects of their own/);

  const replaced = await call('PUT', '/v1/vpcs/blue/loadBalancers/web-lb', { ...created.body, ports: [80, 443] });
  t.is(replaced.status, 200, JSON.stringify(replaced.body));
  t.deepEqual(replaced.body.ports, [80, 443]);
  const stale = await refused(t, 409, () => call('PUT', '/v1/vpcs/blue/loadBalancers/web-lb', { ...created.body, ports: [8080] }));
  t.is(stale.body.revision, replaced.body.revision);
  // the VPC replaced keeps it: it is a key of its own
  const blue = (await call('GET', '/v1/vpcs/blue')).body;
  t.is((await call('PUT', '/v1/vpcs/blue', blue)).status, 200);
  t.is((await call('GET', '/v1/vpcs/blue/loadBalancers/web-lb')).body.revision, replaced.body.revision);
  t.is((await call('DELETE', `/v1/vpcs/blue/loadBalancers/web-lb?revision=${replaced.body.revision}`)).status, 204);
  await refused(t, 404, () => call('GET', '/v1/vpcs/blue/loadBalancers/web-lb'));
});

const EXT_A = { name: 'ext-a', zone: 'zone-a', cidr: '198.51.100.0/26', nextHop: '198.51.100.1', gateways: [{ hypervisor: 'hv1', ip: '198.51.100.2' }] };

test.serial('external networks and floating IPs: created, bound, rebound and unbound with the revision read, refused as the model refuses them', async (t) => {
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/externalNetworks', { ...EXT_A, gateways: [{ hypervisor: 'hv3', ip: '198.51.100.2' }] })), 'gateways[0].hypervisor') ?? '', /hv3 is in zone zone-b, not zone-a/);
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/externalNetworks', { ...EXT_A, nextHop: '198.51.100.99' })), 'nextHop') ?? '', /outside 198.51.100.0\/26/);
  const net = await call('POST', '/v1/externalNetworks', EXT_A);
  t.is(net.status, 201, JSON.stringify(net.body));
  t.deepEqual(net.body, { ...EXT_A, gateways: [{ ...EXT_A.gateways[0]!, interface: 'ext-a' }], revision: net.body.revision }, "a gateway's segment port defaults to the network's name");
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/externalNetworks', { ...EXT_A, name: 'ext-b', zone: 'zone-b', cidr: '198.51.100.0/24', gateways: [{ hypervisor: 'hv3', ip: '198.51.100.66' }] })), 'cidr') ?? '', /overlaps 198.51.100.0\/26 \(externalNetworks\/ext-a\)/);

  const fip = await call('POST', '/v1/floatingIps', { ip: '198.51.100.10', network: 'ext-a', port: 'web1' });
  t.is(fip.status, 201, JSON.stringify(fip.body));
  t.is(fip.headers.get('location'), '/v1/floatingIps/198.51.100.10');
  t.deepEqual(fip.body, { ip: '198.51.100.10', network: 'ext-a', port: 'web1', revision: fip.body.revision });
  t.deepEqual((await call('GET', '/v1/floatingIps', undefined, { token: null })).body.items.map((f: Json) => f.ip), ['198.51.100.10']);
  // what the model refuses: a port with a second one, a port in a zone without external network, an address taken or off the network
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/floatingIps', { ip: '198.51.100.11', network: 'ext-a', port: 'web1' })), 'port') ?? '', /web1 is already bound to floating IP 198.51.100.10/);
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/floatingIps', { ip: '198.51.100.11', network: 'ext-a', port: 'web2' })), 'port') ?? '', /web2 is in zone zone-b, which has no external network/);
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/floatingIps', { ip: '198.51.100.2', network: 'ext-a' })), '(the object)') ?? '', /external address 198.51.100.2 is already externalNetworks\/ext-a/);
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/floatingIps', { ip: '203.0.113.5', network: 'ext-a' })), 'ip') ?? '', /outside external network ext-a/);
  t.regex(errorAt(await refused(t, 422, () => call('POST', '/v1/floatingIps', { ip: '198.51.100.11', network: 'nope' })), 'network') ?? '', /unknown external network 'nope'/);
  t.is(errorAt(await refused(t, 422, () => call('POST', '/v1/floatingIps', { network: 'ext-a' })), 'ip'), 'is required');
  t.regex(errorAt(await refused(t, 422, () => call('PUT', '/v1/floatingIps/198.51.100.10', { ...fip.body, ip: '198.51.100.12' })), 'ip') ?? '', /not the ip in the path/);
  await refused(t, 409, () => call('POST', '/v1/floatingIps', { ip: '198.51.100.10', network: 'ext-a' }));
  // the network and the bound port stay while the floating IP refers to them
  t.regex(errorAt(await refused(t, 422, () => call('DELETE', `/v1/externalNetworks/ext-a?revision=${net.body.revision}`)), 'floatingIps/198.51.100.10: network') ?? '', /unknown external network 'ext-a'/);

  // rebinding is replacing its port, with the revision read: one of two rebinds from the same read wins
  const rebound = await call('PUT', '/v1/floatingIps/198.51.100.10', { ...fip.body, port: 'app1' });
  t.is(rebound.status, 200, JSON.stringify(rebound.body));
  t.is(rebound.body.port, 'app1');
  const lost = await refused(t, 409, () => call('PUT', '/v1/floatingIps/198.51.100.10', { ...fip.body, port: 'db1' }));
  t.is(lost.body.revision, rebound.body.revision);
  const { port: _, ...unbound } = rebound.body;
  const freed = await call('PUT', '/v1/floatingIps/198.51.100.10', unbound);
  t.is(freed.status, 200, JSON.stringify(freed.body));
  t.false('port' in freed.body);

  t.is((await call('DELETE', `/v1/floatingIps/198.51.100.10?revision=${freed.body.revision}`)).status, 204);
  t.is((await call('DELETE', `/v1/externalNetworks/ext-a?revision=${net.body.revision}`)).status, 204);
  await refused(t, 404, () => call('GET', '/v1/floatingIps/198.51.100.10'));
});

test.serial('zonemesh fip bind|unbind|show rebinds a floating IP through the API with the revision read', async (t) => {
  const fip = (...args: string[]) => run('node', [CLI, 'fip', ...args, '--api', api.url, '--token-file', tokenFile]).then((r) => ({ ...r, code: 0 }), (e: { details: { code: number; stdout: string; stderr: string } }) => ({ ...e.details }));
  const net = await call('POST', '/v1/externalNetworks', EXT_A);
  const created = await call('POST', '/v1/floatingIps', { ip: '198.51.100.10', network: 'ext-a' });
  t.is(created.status, 201, JSON.stringify(created.body));
  const bound = await fip('bind', '198.51.100.10', '--port', 'web1');
  t.is(bound.code, 0, bound.stderr);
  t.is(JSON.parse(bound.stdout).port, 'web1');
  const rebound = await fip('bind', '198.51.100.10', '--port', 'app1');
  t.is(rebound.code, 0, rebound.stderr);
  t.is((await call('GET', '/v1/floatingIps/198.51.100.10')).body.port, 'app1');
  const before = await etcdRevision();
  const elsewhere = await fip('bind', '198.51.100.10', '--port', 'web2');
  t.is(elsewhere.code, 1);
  t.regex(elsewhere.stderr, /422 the model would be invalid.*\n\s+port: web2 is in zone zone-b, which has no external network/);
  t.is((await fip('bind', '198.51.100.10')).code, 2, 'bind without --port is bad usage');
  t.is((await fip('show', '198.51.100.99')).code, 1, 'no such floating IP');
  t.is(await etcdRevision(), before, 'nothing written');
  const unbound = await fip('unbind', '198.51.100.10');
  t.is(unbound.code, 0, unbound.stderr);
  const now = (await call('GET', '/v1/floatingIps/198.51.100.10')).body;
  t.false('port' in now);
  t.is((await call('DELETE', `/v1/floatingIps/198.51.100.10?revision=${now.revision}`)).status, 204);
  t.is((await call('DELETE', `/v1/externalNetworks/ext-a?revision=${net.body.revision}`)).status, 204);
});

test.serial("a VPC's egress is part of the VPC: its SNAT address on an external network", async (t) => {
  const net = await call('POST', '/v1/externalNetworks', EXT_A);
  const blue = (await call('GET', '/v1/vpcs/blue')).body;
  t.regex(errorAt(await refused(t, 422, () => call('PUT', '/v1/vpcs/blue', { ...blue, egress: { snat: [{ network: 'ext-a', ip: '198.51.100.2' }] } })), 'egress.snat[0]') ?? '', /external address 198.51.100.2 is already/);
  const egress = { routes: ['0.0.0.0/0'], snat: [{ network: 'ext-a', ip: '198.51.100.20' }] };
  const put = await call('PUT', '/v1/vpcs/blue', { ...blue, egress });
  t.is(put.status, 200, JSON.stringify(put.body));
  t.deepEqual(put.body.egress, egress);
  t.regex(errorAt(await refused(t, 422, () => call('DELETE', `/v1/externalNetworks/ext-a?revision=${net.body.revision}`)), 'vpcs/blue: egress.snat[0].network') ?? '', /unknown external network 'ext-a'/);
  t.is((await call('PUT', '/v1/vpcs/blue', { ...blue, revision: put.body.revision })).status, 200);
  t.is((await call('DELETE', `/v1/externalNetworks/ext-a?revision=${net.body.revision}`)).status, 204);
});

test.serial('etcd gone: reads and writes answer 503 problem+json within the request timeout', async (t) => {
  await cluster.members[0]!.kill();
  for (const [method, path, body] of [
    ['GET', '/v1/ports/web1', undefined],
    ['GET', '/v1/ports', undefined],
    ['POST', '/v1/ports', NEW_PORT],
  ] as const) {
    const started = Date.now();
    const res = await call(method, path, body);
    t.is(res.status, 503, JSON.stringify(res.body));
    t.is(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    t.regex(res.body.detail, /etcd did not answer.*no quorum/);
    t.true(Date.now() - started < 5000, `answered in ${Date.now() - started} ms`);
  }
});

test.serial('no quorum (2 of 3 members down): 503 within the request timeout', async (t) => {
  const three = await startEtcd(3);
  const c = connectEtcd(three.endpoints);
  const server = await startApi({ client: c, host: '127.0.0.1', port: 0, token: TOKEN, log: logged.log, requestTimeoutMs: 2000 });
  try {
    await importModel(c, loadModelFile(join(REPO_ROOT, 'models/two-zones.yaml')));
    t.is((await fetch(`${server.url}/v1/ports/web1`)).status, 200);
    await three.members[1]!.kill();
    await three.members[2]!.kill();
    const started = Date.now();
    const res = await fetch(`${server.url}/v1/ports/web1`);
    t.is(res.status, 503);
    t.regex(((await res.json()) as Json).detail, /no quorum/);
    t.true(Date.now() - started < 5000, `answered in ${Date.now() - started} ms`);
  } finally {
    await server.close();
    c.close();
    await three.stop();
  }
});
