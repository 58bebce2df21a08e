/**
 * `zonemesh run --api HOST:PORT`: the REST API in the controller's process, with the options of
 * `zonemesh api` (token, TLS, client certificates) under `--api-`; against a real etcd.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelFile } from '../../src/model';
import { connectEtcd } from '../../src/model/etcd-client';
import { importModel } from '../../src/model/etcd-transfer';
import { until } from '../controller/util';
import { runCliAsync, startRun } from '../cli/run-cli';
import { startEtcd } from '../helpers/etcd';
import { REPO_ROOT } from '../helpers/paths';
import { makePkiFiles } from '../helpers/pki';
import { TEST_STATE_DIR, freePort } from '../helpers/run';

const TOKEN = 'run-api-token-0123456789abcdef';

test('run --api serves the API with its token and TLS in the run process, whose controller follows the writes; SIGTERM stops both', async (t) => {
  const etcd = await startEtcd(1);
  t.teardown(() => etcd.stop());
  const client = connectEtcd(etcd.endpoints);
  await importModel(client, loadModelFile(join(REPO_ROOT, 'models/two-zones.yaml')));
  client.close();
  const dir = mkdtempSync(join(tmpdir(), 'zm-run-api-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pki = makePkiFiles(dir);
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`);
  const port = await freePort();

  const { child, log } = await startRun(t, [
    '--store', etcd.url, '--listen', 'tcp:127.0.0.1:0', '--control', join(TEST_STATE_DIR, 'run-api.sock'),
    '--api', `127.0.0.1:${port}`, '--api-token-file', tokenFile, '--api-tls-key', pki.serverKey, '--api-tls-cert', pki.serverCert, '--api-tls-ca', pki.caCert,
  ]);
  t.regex(log(), new RegExp(`"url":"https://127\\.0\\.0\\.1:${port}".*"msg":"api listening"`));

  const https = (method: string, path: string, body?: unknown, auth: { token?: string; key?: string; cert?: string } = {}) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const headers = { 'content-type': 'application/json', ...(auth.token && { authorization: `Bearer ${auth.token}` }) };
      const req = httpsRequest(`https://127.0.0.1:${port}${path}`, { method, ca: pki.read(pki.caCert), headers, ...(auth.key && { key: pki.read(auth.key), cert: pki.read(auth.cert!) }) }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });

  t.is((await https('GET', '/v1/ports/web1')).status, 200, 'a read from this host needs no token');
  const web3 = { name: 'web3', vpc: 'blue', subnet: 'web', mac: '02:00:00:01:01:0d', ip: '10.1.1.13', hypervisor: 'hv2' };
  t.is((await https('POST', '/v1/ports', web3)).status, 401, 'a write without credentials');
  t.is((await https('POST', '/v1/ports', web3, { token: 'wrong-token-0123456789' })).status, 401, 'a write with the wrong token');
  t.is((await https('POST', '/v1/ports', web3, { token: TOKEN })).status, 201, 'a write with the token');
  const web4 = { ...web3, name: 'web4', mac: '02:00:00:01:01:0e', ip: '10.1.1.14' };
  t.is((await https('POST', '/v1/ports', web4, { key: pki.clientKey, cert: pki.clientCert })).status, 201, 'a write with a client certificate the CA signed');
  // the controller of the same process applied them (two-zones has 7 ports)
  await until(() => log().includes('"ports":9,'), 10_000);

  child.kill('SIGTERM');
  await until(() => child.exitCode !== null, 10_000);
  t.is(child.exitCode, 0);
  const refused = await new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => (s.destroy(), resolve(false)));
    s.on('error', () => resolve(true));
  });
  t.true(refused, 'the API stopped with the controller');
});

test('run --api: bad usage is one line and exit 2', async (t) => {
  for (const [args, problem] of [
    [['--api-token-file', '/nonexistent'], /--api-token-file without --api HOST:PORT/],
    [['--api', '127.0.0.1:8181', '--model', join(REPO_ROOT, 'models/two-zones.yaml')], /--api serves the model in etcd: it needs --store etcd:\/\/HOST:PORT/],
    [['--api', 'nowhere', '--store', 'etcd://127.0.0.1:2379'], /--api: 'nowhere' is not HOST:PORT/],
    [['--api', '0.0.0.0:8181', '--store', 'etcd://127.0.0.1:9', '--api-tls-key', '/k.pem'], /--api-tls-key and --api-tls-cert go together/],
  ] as const) {
    const r = await runCliAsync('run', ...args);
    t.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, problem);
  }
});
