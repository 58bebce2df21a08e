import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { createLogger } from '../controller';
import { parseEtcdUrl } from '../model';
import { LOG_LEVELS, parseListenTarget, readTlsFiles } from '../runtime';
import { CliError, EXIT, UsageError, defineCommand } from './command';

const DEFAULT_API_PORT = 8181;
const DEFAULT_API_LISTEN = `127.0.0.1:${DEFAULT_API_PORT}`;

/**
 * The API's options, as `zonemesh api` names them; `zonemesh run` takes the same with `api-` in
 * front (its own --tls-* are its switch listeners').
 */
const API_OPTIONS = [
  { name: 'token-file', value: 'FILE', description: 'a file holding the bearer token writes need (16 characters or more)', default: 'none' },
  { name: 'tls-key', value: 'FILE', description: 'the PEM key of --tls-cert: serves https (without them, plain http)', default: 'none' },
  { name: 'tls-cert', value: 'FILE', description: 'the PEM certificate the API presents (with --tls-key)', default: 'none' },
  { name: 'tls-ca', value: 'FILE', description: 'a PEM CA: clients with a certificate it signed may write', default: 'none' },
] as const;

type ApiOptionName = (typeof API_OPTIONS)[number]['name'];

/** The API's options for `zonemesh run`: `--api-token-file` and so on. */
export const RUN_API_OPTIONS = API_OPTIONS.map((o) => ({
  ...o,
  name: `api-${o.name}` as const,
  description: `with --api: ${o.description.replace(/--(tls-\w+)/g, '--api-$1')}`,
}));

/** Where and how the API serves: checked flags, with the token and TLS files read. */
export interface ApiServing {
  host: string;
  port: number;
  /** as given, for messages */
  listen: string;
  token?: string;
  tls?: { key: string; cert: string; ca?: string };
}

/**
 * Checks the API's flags and reads its files; `prefix` is how the command names them ('' for
 * `zonemesh api`, 'api-' for `zonemesh run`). Throws UsageError or CliError.
 */
export function apiServing(listenText: string, values: Partial<Record<ApiOptionName, string>>, prefix: '' | 'api-'): ApiServing {
  const listen = parseListenTarget(listenText);
  const listenFlag = prefix === '' ? '--listen' : '--api';
  if (typeof listen === 'string' || listen.transport !== 'tcp' || listen.host === undefined) throw new UsageError(`${listenFlag}: '${listenText}' is not HOST:PORT`);
  const token = values['token-file'] === undefined ? undefined : readToken(values['token-file'], `--${prefix}token-file`);
  const tls = tlsOf(values['tls-key'], values['tls-cert'], values['tls-ca'], prefix);
  return { host: listen.host, port: listen.port ?? DEFAULT_API_PORT, listen: listenText, ...(token !== undefined && { token }), ...(tls && { tls }) };
}

/** A running API with its own etcd client. */
export interface ServedApi {
  readonly url: string;
  close(): Promise<void>;
}

/** Starts the API on the etcd cluster at `endpoints`; throws UsageError (plain HTTP beyond loopback) or CliError (listen failed). */
export async function serveApi(endpoints: string[], serving: ApiServing, log: Logger, store: string): Promise<ServedApi> {
  // loaded only here: the etcd client takes half a second to load
  const [{ connectEtcd }, { startApi, ApiConfigError }] = await Promise.all([import('../model/etcd-client'), import('../api/server')]);
  const client = connectEtcd(endpoints);
  let server;
  try {
    server = await startApi({ client, host: serving.host, port: serving.port, log, ...(serving.token !== undefined && { token: serving.token }), ...(serving.tls && { tls: serving.tls }) });
  } catch (e) {
    client.close();
    if (e instanceof ApiConfigError) throw new UsageError(e.message);
    throw new CliError(`cannot listen on ${serving.listen}: ${(e as Error).message}`);
  }
  log.info({ url: server.url, store, writes: serving.token !== undefined || serving.tls?.ca !== undefined }, 'api listening');
  return {
    url: server.url,
    close: async () => {
      await server.close();
      client.close();
    },
  };
}

/** `zonemesh api`: the northbound REST API on the model in etcd (docs/api.md). */
export const apiCommand = defineCommand({
  name: 'api',
  summary: 'serves the model in etcd as a REST API (docs/api.md)',
  description:
    'Serves the model in etcd as a REST API (OpenAPI at /v1/openapi.json). Writes need the bearer token in --token-file, ' +
    'or a client certificate --tls-ca signed; reads without them come only from this host. ' +
    "A listen address other than loopback needs --tls-key and --tls-cert. SIGINT/SIGTERM stop it. 'zonemesh run --api' serves the same API in the controller's process.",
  options: [
    { name: 'store', value: 'etcd://HOST:PORT[,...]', required: true, description: 'the etcd cluster that holds the model' },
    { name: 'listen', value: 'HOST:PORT', description: 'where the API listens', default: DEFAULT_API_LISTEN },
    ...API_OPTIONS,
    { name: 'log-level', value: 'LEVEL', description: `one of ${LOG_LEVELS.join(', ')}`, default: 'info' },
  ] as const,
  positionals: false,
  exits: { failed: 'it could not listen, or read a --token-file or --tls-* file' },
  run: async ({ values }) => {
    if (values.store === undefined) throw new UsageError('--store etcd://HOST:PORT is required');
    const endpoints = parseEtcdUrl(values.store);
    if (typeof endpoints === 'string') throw new UsageError(`--store: ${endpoints}`);
    const level = values['log-level'] ?? 'info';
    if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`--log-level: one of ${LOG_LEVELS.join(', ')}`);
    const serving = apiServing(values.listen ?? DEFAULT_API_LISTEN, values, '');
    const log = createLogger(level);
    const api = await serveApi(endpoints, serving, log, values.store);
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        log.info({ signal }, 'stopping');
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await api.close();
    return EXIT.ok;
  },
});

function readToken(path: string, flag: string): string {
  let text;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (e) {
    throw new CliError(`${flag}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (text.length < 16 || /\s/.test(text)) throw new CliError(`${flag}: ${path} must hold one token of at least 16 characters, without spaces`);
  return text;
}

function tlsOf(key: string | undefined, cert: string | undefined, ca: string | undefined, prefix: string): { key: string; cert: string; ca?: string } | undefined {
  if (key === undefined && cert === undefined && ca === undefined) return undefined;
  if (key === undefined || cert === undefined) throw new UsageError(`--${prefix}tls-key and --${prefix}tls-cert go together (and --${prefix}tls-ca needs both)`);
  const problems: string[] = [];
  const pem = readTlsFiles({ key, cert, ...(ca !== undefined && { ca }) }, (path, text) => problems.push(`--${prefix}${path.replace('.', '-')}: ${text}`));
  if (problems.length) throw new CliError(problems.join('; '));
  return { key: pem.key!, cert: pem.cert!, ...(pem.ca !== undefined && { ca: pem.ca }) };
}
