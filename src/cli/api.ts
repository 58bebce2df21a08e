import { readFileSync } from 'node:fs';
import { createLogger } from '../controller';
import { parseEtcdUrl } from '../model';
import { LOG_LEVELS, parseListenTarget, readTlsFiles } from '../runtime';
import { CliError, EXIT, UsageError, defineCommand } from './command';

const DEFAULT_API_PORT = 8181;
const DEFAULT_API_LISTEN = `127.0.0.1:${DEFAULT_API_PORT}`;

/** `zonemesh api`: the northbound REST API on the model in etcd (docs/api.md). */
export const apiCommand = defineCommand({
  name: 'api',
  summary: 'serves the model in etcd as a REST API (docs/api.md)',
  description:
    'Serves the model in etcd as a REST API (OpenAPI at /v1/openapi.json). Writes need the bearer token in --token-file, ' +
    'or a client certificate --tls-ca signed; reads without them come only from this host. ' +
    'A listen address other than loopback needs --tls-key and --tls-cert. SIGINT/SIGTERM stop it.',
  options: [
    { name: 'store', value: 'etcd://HOST:PORT[,...]', required: true, description: 'the etcd cluster that holds the model' },
    { name: 'listen', value: 'HOST:PORT', description: 'where the API listens', default: DEFAULT_API_LISTEN },
    { name: 'token-file', value: 'FILE', description: 'a file holding the bearer token writes need (16 characters or more)', default: 'none' },
    { name: 'tls-key', value: 'FILE', description: 'the PEM key of --tls-cert: serves https (without them, plain http)', default: 'none' },
    { name: 'tls-cert', value: 'FILE', description: 'the PEM certificate the API presents (with --tls-key)', default: 'none' },
    { name: 'tls-ca', value: 'FILE', description: 'a PEM CA: clients with a certificate it signed may write', default: 'none' },
    { name: 'log-level', value: 'LEVEL', description: `one of ${LOG_LEVELS.join(', ')}`, default: 'info' },
  ] as const,
  positionals: false,
  exits: { failed: 'it could not listen, or read a --token-file or --tls-* file' },
  run: async ({ values }) => {
    if (values.store === undefined) throw new UsageError('--store etcd://HOST:PORT is required');
    const endpoints = parseEtcdUrl(values.store);
    if (typeof endpoints === 'string') throw new UsageError(`--store: ${endpoints}`);
    const listen = parseListenTarget(values.listen ?? DEFAULT_API_LISTEN);
    if (typeof listen === 'string' || listen.transport !== 'tcp' || listen.host === undefined) throw new UsageError(`--listen: '${values.listen}' is not HOST:PORT`);
    const level = values['log-level'] ?? 'info';
    if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`--log-level: one of ${LOG_LEVELS.join(', ')}`);
    const token = values['token-file'] === undefined ? undefined : readToken(values['token-file']);
    const tls = tlsOf(values['tls-key'], values['tls-cert'], values['tls-ca']);

    // loaded only here: the etcd client takes half a second to load
    const [{ connectEtcd }, { startApi, ApiConfigError }] = await Promise.all([import('../model/etcd-client'), import('../api/server')]);
    const log = createLogger(level);
    const client = connectEtcd(endpoints);
    let server;
    try {
      server = await startApi({ client, host: listen.host, port: listen.port ?? DEFAULT_API_PORT, log, ...(token !== undefined && { token }), ...(tls && { tls }) });
    } catch (e) {
      client.close();
      if (e instanceof ApiConfigError) throw new UsageError(e.message);
      throw new CliError(`cannot listen on ${values.listen ?? DEFAULT_API_LISTEN}: ${(e as Error).message}`);
    }
    log.info({ url: server.url, store: values.store, writes: token !== undefined || tls?.ca !== undefined }, 'api listening');
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        log.info({ signal }, 'stopping');
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await server.close();
    client.close();
    return EXIT.ok;
  },
});

function readToken(path: string): string {
  let text;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (e) {
    throw new CliError(`--token-file: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (text.length < 16 || /\s/.test(text)) throw new CliError(`--token-file: ${path} must hold one token of at least 16 characters, without spaces`);
  return text;
}

function tlsOf(key: string | undefined, cert: string | undefined, ca: string | undefined): { key: string; cert: string; ca?: string } | undefined {
  if (key === undefined && cert === undefined && ca === undefined) return undefined;
  if (key === undefined || cert === undefined) throw new UsageError('--tls-key and --tls-cert go together (and --tls-ca needs both)');
  const problems: string[] = [];
  const pem = readTlsFiles({ key, cert, ...(ca !== undefined && { ca }) }, (path, text) => problems.push(`--${path.replace('.', '-')}: ${text}`));
  if (problems.length) throw new CliError(problems.join('; '));
  return { key: pem.key!, cert: pem.cert!, ...(pem.ca !== undefined && { ca: pem.ca }) };
}
