/**
 * `zonemesh port` and `zonemesh fip` against a scripted API: a write answered 503 is sent again after
 * its Retry-After, and a resend that meets the first write's result (its answer was lost) reports
 * that result. The API's side of a lost answer is tested on etcd (test/integration/api-lost-reply.test.ts).
 */
import test from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCliAsync } from './run-cli';

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** An API answering the calls in order, each `METHOD PATH` as scripted; records what it was asked. */
async function scriptedApi(t: { teardown(fn: () => void): void }, script: [string, Answer][]): Promise<{ url: string; asked: string[] }> {
  const asked: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const call = `${req.method} ${req.url}`;
    asked.push(call);
    req.resume();
    req.on('end', () => {
      const [expected, answer] = script.shift() ?? [call, { status: 500, body: { title: 'script ran out' } }];
      const { status, body, headers } = expected === call ? answer : { status: 500, body: { title: `expected ${expected}` }, headers: {} };
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked };
}

const unavailable: Answer = { status: 503, body: { title: 'etcd unavailable', detail: "etcd's answer to the write of ports/web9 was lost" }, headers: { 'retry-after': '0' } };
const PORT = { name: 'web9', vpc: 'blue', subnet: 'web', mac: '02:00:00:00:00:09', ip: '10.1.1.9', hypervisor: 'hv1' };
const add = (api: string) => runCliAsync('port', 'add', 'web9', '--vpc', 'blue', '--subnet', 'web', '--mac', PORT.mac, '--ip', PORT.ip, '--hypervisor', 'hv1', '--api', api);

test('port add: a 503 is sent again; the resend meets the port the first made (answer lost), which is reported as made', async (t) => {
  const api = await scriptedApi(t, [
    ['POST /v1/ports', unavailable],
    ['POST /v1/ports', { status: 409, body: { title: 'stale revision' } }],
    ['GET /v1/ports/web9', { status: 200, body: { ...PORT, revision: 7 } }],
  ]);
  const r = await add(api.url);
  t.is(r.status, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { ...PORT, revision: 7 });
  t.deepEqual(api.asked, ['POST /v1/ports', 'POST /v1/ports', 'GET /v1/ports/web9']);
});

test("port add: a port found after a 503 that is not the one asked for is someone else's: the 409 is reported", async (t) => {
  const api = await scriptedApi(t, [
    ['POST /v1/ports', unavailable],
    ['POST /v1/ports', { status: 409, body: { title: 'stale revision' } }],
    ['GET /v1/ports/web9', { status: 200, body: { ...PORT, mac: '02:00:00:00:00:99', revision: 7 } }],
  ]);
  const r = await add(api.url);
  t.is(r.status, 1);
  t.regex(r.stderr, /409 stale revision/);
});

test('port add: 503 every time is sent five times in all, then fails with the last answer (exit 3)', async (t) => {
  const api = await scriptedApi(t, Array.from({ length: 5 }, () => ['POST /v1/ports', unavailable] as [string, Answer]));
  const r = await add(api.url);
  t.is(r.status, 3);
  t.regex(r.stderr, /503 etcd unavailable: etcd's answer to the write of ports\/web9 was lost/);
  t.is(api.asked.length, 5);
});

test('port rm: a delete answered 503 whose resend finds the port gone reports it deleted', async (t) => {
  const api = await scriptedApi(t, [
    ['GET /v1/ports/web9', { status: 200, body: { ...PORT, revision: 3 } }],
    ['DELETE /v1/ports/web9', unavailable],
    ['DELETE /v1/ports/web9', { status: 404, body: { title: 'not found' } }],
    ['GET /v1/ports/web9', { status: 404, body: { title: 'not found' } }],
  ]);
  const r = await runCliAsync('port', 'rm', 'web9', '--api', api.url);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /deleted port web9 \(was at revision 3\)/);
});

test('fip bind: a rebind answered 503 whose resend meets a moved revision is ours when the floating IP is bound to the port asked', async (t) => {
  const fip = { ip: '198.51.100.10', vpc: 'blue', zone: 'zone-a' };
  const api = await scriptedApi(t, [
    ['GET /v1/floatingIps/198.51.100.10', { status: 200, body: { ...fip, port: 'web1', revision: 4 } }],
    ['PUT /v1/floatingIps/198.51.100.10', unavailable],
    ['PUT /v1/floatingIps/198.51.100.10', { status: 409, body: { title: 'stale revision' } }],
    ['GET /v1/floatingIps/198.51.100.10', { status: 200, body: { ...fip, port: 'web9', revision: 9 } }],
  ]);
  const r = await runCliAsync('fip', 'bind', '198.51.100.10', '--port', 'web9', '--api', api.url);
  t.is(r.status, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { port: 'web9', revision: 9 });
});
