/**
 * The northbound REST API (docs/api.md): the model in etcd, one object at a time, on fastify.
 * Writes need the bearer token (or a client certificate the --tls-ca signed); reads without one
 * are served to loopback clients only. Every refused attempt is logged, rate-limited per address.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Etcd3 } from 'etcd3';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { LogLimiter } from '../controller';
import { ModelValidationError, unknownKeyProblem } from '../model';
import {
  EtcdRequestError,
  ModelContentionError,
  ModelWriter,
  ObjectNotFoundError,
  RevisionConflictError,
  StoredModelInvalidError,
  WriteOutcomeUnknownError,
  listObjects,
  objectPath,
  readObject,
  type ObjectRef,
  type StoredObject,
} from '../model/etcd-writer';
import { openApiDocument } from './openapi';
import { HttpProblem, PROBLEM_TYPE } from './problem';
import { OPENAPI_PATH, RESOURCES, type Resource } from './schemas';

export interface ApiOptions {
  /** the etcd client; the caller closes it */
  client: Etcd3;
  host: string;
  /** 0: any free port */
  port: number;
  /** the bearer token writes need; without it (and without tls.ca) the API takes no writes */
  token?: string;
  /** PEM contents; with `ca`, a client certificate that CA signed authorizes as the token does */
  tls?: { key: string; cert: string; ca?: string };
  log: Logger;
  /** how long one request may wait for etcd before it gets 503 (default 2 s) */
  requestTimeoutMs?: number;
  /** the largest request body (default 1 MiB); a larger one gets 413 */
  bodyLimit?: number;
}

export interface ApiServer {
  /** where it listens, e.g. http://127.0.0.1:8181 */
  readonly url: string;
  /** every route it serves, as `METHOD /path/:param` */
  readonly routes: readonly string[];
  /** a request that comes from no socket (light-my-request), e.g. as if from another host */
  readonly inject: FastifyInstance['inject'];
  close(): Promise<void>;
}

/** A configuration the API refuses to start with. */
export class ApiConfigError extends Error {
  override readonly name = 'ApiConfigError';
}

export const DEFAULT_API_PORT = 8181;
export const DEFAULT_REQUEST_TIMEOUT_MS = 2000;
export const DEFAULT_BODY_LIMIT = 1 << 20;

export const isLoopback = (address: string | undefined): boolean => address !== undefined && /^(127\.|::1$|::ffff:127\.)/.test(address);

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/** Starts the API; throws ApiConfigError for a token sent in clear over the network, and the listen error. */
export async function startApi(o: ApiOptions): Promise<ApiServer> {
  // a token or model sent in clear beyond this host is a token and a model given away
  if (!o.tls && !isLoopback(o.host) && o.host !== 'localhost') throw new ApiConfigError(`listening on ${o.host} needs TLS (--tls-key and --tls-cert): only a loopback address may serve plain HTTP`);
  const timeoutMs = o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const tokenDigest = o.token === undefined ? undefined : digest(o.token);
  const limiter = new LogLimiter();
  const log = o.log.child({ component: 'api' });
  const app: FastifyInstance = Fastify({
    logger: false,
    bodyLimit: o.bodyLimit ?? DEFAULT_BODY_LIMIT,
    exposeHeadRoutes: false,
    ...(o.tls && { https: { key: o.tls.key, cert: o.tls.cert, ...(o.tls.ca !== undefined && { ca: o.tls.ca, requestCert: true, rejectUnauthorized: false }) } }),
  });
  // JSON only: a text/plain body would otherwise reach the handlers as a string
  app.removeContentTypeParser('text/plain');
  const routes: string[] = [];
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) routes.push(`${m} ${r.url}`);
  });

  /** refuses what the caller may not do; the attempt is logged */
  app.addHook('onRequest', async (req) => {
    const write = req.method !== 'GET';
    const header = req.headers.authorization;
    const bearer = /^Bearer (.+)$/i.exec(header ?? '')?.[1];
    const certified = o.tls?.ca !== undefined && (req.raw.socket as TLSSocket).authorized === true;
    const tokenOk = bearer !== undefined && tokenDigest !== undefined && timingSafeEqual(digest(bearer), tokenDigest);
    if (certified || tokenOk || (!write && header === undefined && isLoopback(req.ip))) return;
    const writable = tokenDigest !== undefined || o.tls?.ca !== undefined;
    const refusal =
      header !== undefined && writable
        ? new HttpProblem(401, 'wrong credentials', { detail: 'the bearer token is not the one this API takes' }, { 'WWW-Authenticate': 'Bearer error="invalid_token"' })
        : !writable && write
          ? new HttpProblem(403, 'this API takes no writes', { detail: 'it runs without --token-file and without --tls-ca' })
          : new HttpProblem(401, 'credentials needed', { detail: write ? 'writes need Authorization: Bearer TOKEN' : 'reads from another host than this one need Authorization: Bearer TOKEN' }, { 'WWW-Authenticate': 'Bearer' });
    const route = req.routeOptions.url ?? req.url.split('?')[0]!;
    limiter.log(log, 'warn', req.ip, 'api request refused', { remote: req.ip, method: req.method, route, status: refusal.status, reason: refusal.extra.detail });
    throw refusal;
  });

  app.setErrorHandler((err: FastifyError | Error, req, reply) => {
    const problem = asProblem(err, log, req);
    void reply.code(problem.status).headers(problem.headers).type(PROBLEM_TYPE).send(problem.body);
  });
  app.setNotFoundHandler((req, reply) => {
    const p = new HttpProblem(404, 'no such route', { detail: `${req.method} ${req.url.split('?')[0]}; the routes are in ${OPENAPI_PATH}` });
    void reply.code(404).type(PROBLEM_TYPE).send(p.body);
  });

  const deadline = () => new Date(Date.now() + timeoutMs);
  const document = openApiDocument();
  app.get(OPENAPI_PATH, async () => document);
  const writer = new ModelWriter(o.client);
  // an API that takes writes reads the model before it listens, so that no write waits for that read
  // (when etcd does not answer, it listens anyway: each write tries again, or answers 503)
  if (tokenDigest !== undefined || o.tls?.ca !== undefined) await writer.open().catch(() => undefined);
  for (const r of RESOURCES) registerResource(app, r, o.client, writer, deadline, log);

  try {
    await app.listen({ host: o.host, port: o.port });
  } catch (e) {
    await writer.close();
    throw e;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `${o.tls ? 'https' : 'http'}://${host}:${port}`,
    routes,
    inject: app.inject.bind(app),
    close: async () => {
      limiter.flush();
      await app.close();
      await writer.close();
    },
  };
}

type Params = { name?: string; vpc?: string; ip?: string };
type Body = Record<string, unknown>;

const ITEM_PARAMS = (route: string) => ({
  type: 'object',
  properties: Object.fromEntries([...route.matchAll(/:(\w+)/g)].map((m) => [m[1], { type: 'string', minLength: 1 }])),
});
/** A body is checked by the model's validator; fastify only makes sure it is a JSON object. */
const OBJECT_BODY = { type: 'object' };

function refOf(r: Resource, p: Params, name = p[r.nameField ?? 'name']!): ObjectRef {
  if (r.kind === 'subnets' || r.kind === 'loadBalancers') return { kind: r.kind, vpc: p.vpc!, name };
  if (r.kind === 'acls') return { kind: 'acls', vpc: p.vpc! };
  return { kind: r.kind, name };
}

/** the API's path of an object */
const apiPath = (ref: ObjectRef) => `/v1/${objectPath(ref).split('/').map(encodeURIComponent).join('/')}`;

function present(ref: ObjectRef, o: StoredObject): Body {
  return ref.kind === 'acls' ? { vpc: ref.vpc, rules: o.value, revision: o.revision } : { ...(o.value as Body), revision: o.revision };
}

const etag = (revision: number) => `"${revision}"`;

/**
 * The revision the client read: If-Match, the body's `revision` or the query's `?revision=`;
 * undefined when none is given. Two that disagree are refused.
 */
function clientRevision(req: FastifyRequest): number | undefined {
  const given: [string, unknown][] = [];
  const ifMatch = req.headers['if-match'];
  if (ifMatch !== undefined) {
    const m = /^"?(\d+)"?$/.exec(ifMatch.trim());
    given.push(['If-Match', m ? Number(m[1]) : ifMatch]);
  }
  const body = req.body as Body | undefined;
  if (body && typeof body === 'object' && 'revision' in body) given.push(['revision', body.revision]);
  const query = (req.query as Record<string, unknown>).revision;
  if (query !== undefined) given.push(['?revision', /^\d+$/.test(String(query)) ? Number(query) : query]);
  for (const [where, v] of given) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new HttpProblem(400, 'malformed revision', { detail: `${where}: ${JSON.stringify(v)} is not a revision (an integer ≥ 0, as read)` });
  }
  if (new Set(given.map(([, v]) => v)).size > 1) throw new HttpProblem(400, 'revisions disagree', { detail: given.map(([w, v]) => `${w} ${String(v)}`).join(', ') });
  return given[0]?.[1] as number | undefined;
}

function withoutRevision(body: Body): Body {
  const { revision: _, ...rest } = body;
  return rest;
}

/** The rules of an ACL list body `{ rules: [...], revision? }`. */
function rulesOf(body: Body): unknown {
  const unknown = Object.keys(body).filter((k) => k !== 'rules' && k !== 'revision' && k !== 'vpc');
  const errors = unknown.map((k) => ({ path: k, problem: unknownKeyProblem(k, ['rules', 'revision']) }));
  if (!Array.isArray(body.rules)) errors.push({ path: 'rules', problem: body.rules === undefined ? 'is required (a list)' : 'must be a list' });
  if (errors.length) throw new ModelValidationError('request', errors);
  return body.rules;
}

/** the problems of an ACL list (`[2].subnet`) at the body's field (`rules[2].subnet`) */
function inRules(e: unknown): unknown {
  if (!(e instanceof ModelValidationError)) return e;
  return new ModelValidationError(e.source, e.issues.map((i) => (i.path.startsWith('[') ? { ...i, path: `rules${i.path}` } : i)));
}

function registerResource(app: FastifyInstance, r: Resource, client: Etcd3, writer: ModelWriter, deadline: () => Date, log: Logger): void {
  const notFound = (ref: ObjectRef) => new HttpProblem(404, 'not found', { detail: `no ${objectPath(ref)}` });
  const written = (req: FastifyRequest, ref: ObjectRef, revision: number) => log.info({ remote: req.ip, method: req.method, object: objectPath(ref), revision }, 'model object written');
  const item = { schema: { params: ITEM_PARAMS(r.item) } };
  const itemBody = { schema: { params: ITEM_PARAMS(r.item), body: OBJECT_BODY } };

  app.get<{ Params: Params }>(r.item, item, async (req, reply) => {
    const ref = refOf(r, req.params);
    const { object } = await readObject(client, ref, deadline());
    if (!object) throw notFound(ref);
    return reply.header('ETag', etag(object.revision)).send(present(ref, object));
  });

  app.put<{ Params: Params; Body: Body }>(r.item, itemBody, async (req, reply) => {
    const ref = refOf(r, req.params);
    const revision = clientRevision(req);
    if (revision === undefined) throw new HttpProblem(428, 'revision needed', { detail: 'give the revision read as If-Match or as the revision field (0 creates)' });
    const value = r.kind === 'acls' ? rulesOf(req.body) : withoutRevision(req.body);
    const { object, storeRevision } = await writer.write({ ref, revision, value }, deadline()).catch((e: unknown) => {
      throw r.kind === 'acls' ? inRules(e) : e;
    });
    written(req, ref, storeRevision);
    return reply.header('ETag', etag(object!.revision)).send(present(ref, object!));
  });

  app.delete<{ Params: Params }>(r.item, item, async (req, reply) => {
    const ref = refOf(r, req.params);
    const revision = clientRevision(req);
    if (revision === undefined) throw new HttpProblem(428, 'revision needed', { detail: 'give the revision read as If-Match or as ?revision=N' });
    const { storeRevision } = await writer.write({ ref, revision }, deadline());
    written(req, ref, storeRevision);
    return reply.code(204).send();
  });

  if (!r.collection || r.kind === 'acls') return;
  const kind = r.kind;
  const collection = { schema: { params: ITEM_PARAMS(r.collection) } };
  app.get<{ Params: Params }>(r.collection, collection, async (req) => {
    const { objects, storeRevision } = await listObjects(client, kind, req.params.vpc, deadline());
    if (!objects) throw notFound({ kind: 'vpcs', name: req.params.vpc! });
    return { items: objects.map((o) => ({ ...(o.value as Body), revision: o.revision })), revision: storeRevision };
  });

  app.post<{ Params: Params; Body: Body }>(r.collection, { schema: { params: ITEM_PARAMS(r.collection), body: OBJECT_BODY } }, async (req, reply) => {
    const field = r.nameField ?? 'name';
    const name = req.body[field];
    if (typeof name !== 'string' || name === '') throw new ModelValidationError('request', [{ path: field, problem: name === undefined ? 'is required' : 'must be a non-empty string' }]);
    const revision = clientRevision(req) ?? 0;
    if (revision !== 0) throw new HttpProblem(400, 'a new object has no revision', { detail: `revision ${revision}: POST creates (revision 0 or none); PUT replaces` });
    const ref = refOf(r, req.params, name);
    const { object, storeRevision } = await writer.write({ ref, revision: 0, value: withoutRevision(req.body) }, deadline());
    written(req, ref, storeRevision);
    return reply.code(201).header('Location', apiPath(ref)).header('ETag', etag(object!.revision)).send(present(ref, object!));
  });
}

/** What a failed request answers. */
function asProblem(err: FastifyError | Error, log: Logger, req: FastifyRequest): HttpProblem {
  if (err instanceof HttpProblem) return err;
  if (err instanceof ModelValidationError) return new HttpProblem(422, 'the model would be invalid', { detail: `${err.issues.length} problem(s); nothing was written`, errors: err.issues });
  if (err instanceof RevisionConflictError) return new HttpProblem(409, 'stale revision', { detail: err.message, revision: err.current });
  if (err instanceof ObjectNotFoundError) return new HttpProblem(404, 'not found', { detail: err.message });
  // the same title as below: etcd is unavailable either way; the detail says the write may have landed
  if (err instanceof WriteOutcomeUnknownError) return new HttpProblem(503, 'etcd unavailable', { detail: `${err.message}; etcd is unavailable (no quorum, or no member reachable)` }, { 'Retry-After': '1' });
  if (err instanceof EtcdRequestError) return new HttpProblem(503, 'etcd unavailable', { detail: `${err.message} (no quorum, or no member reachable); nothing was written` }, { 'Retry-After': '1' });
  if (err instanceof ModelContentionError) return new HttpProblem(503, 'busy', { detail: err.message }, { 'Retry-After': '1' });
  if (err instanceof StoredModelInvalidError) return new HttpProblem(500, 'the model in etcd is invalid', { detail: err.message, errors: err.issues });
  const f = err as FastifyError;
  if (f.validation) return new HttpProblem(400, 'bad request', { detail: f.message, errors: f.validation.map((v) => ({ path: v.instancePath.replace(/^\//, '').replace(/\//g, '.') || f.validationContext || '(body)', problem: v.message ?? 'invalid' })) });
  if (typeof f.statusCode === 'number' && f.statusCode >= 400 && f.statusCode < 500) return new HttpProblem(f.statusCode, f.code ?? 'bad request', { detail: f.message });
  log.error({ err, method: req.method, url: req.url }, 'api internal error');
  return new HttpProblem(500, 'internal error', { detail: err.message });
}
