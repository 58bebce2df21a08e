import { OBJECT_SCHEMAS, OPENAPI_PATH, RESOURCES, REVISION_SCHEMA, type Resource } from './schemas';

type Schema = Record<string, unknown>;

const PROBLEM: Schema = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, problem: { type: 'string' } } } },
    revision: { type: 'integer', description: "on 409: the object's revision now (0: it does not exist)" },
  },
};

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } });
const json = (description: string, schema: Schema) => ({ description, content: { 'application/json': { schema } } });

/** `/v1/vpcs/:vpc/acls` → `/v1/vpcs/{vpc}/acls` */
export const openApiPath = (route: string): string => route.replace(/:(\w+)/g, '{$1}');

function parameters(route: string): Schema[] {
  return [...route.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string', minLength: 1 } }));
}

/** The object as read and written: the model's object with its revision; an ACL list is `{ vpc, rules, revision }`. */
function representation(r: Resource): Schema {
  if (r.kind === 'acls') return { type: 'object', required: ['rules'], properties: { vpc: { type: 'string', readOnly: true }, rules: OBJECT_SCHEMAS.acls, revision: REVISION_SCHEMA }, additionalProperties: false };
  const s = OBJECT_SCHEMAS[r.kind];
  return { ...s, properties: { ...(s.properties as Schema), revision: REVISION_SCHEMA } };
}

const AUTH_PROBLEMS = {
  '401': problem('no or a wrong bearer token (writes, and reads from another host than this one)'),
  '403': problem('the API takes no writes: it runs without a token and without a client CA'),
};
const COMMON = { '413': problem('body over the limit (1 MiB)'), '503': problem('etcd has no quorum or cannot be reached, or other writes kept changing the model') };
const IF_MATCH = { name: 'If-Match', in: 'header', required: false, schema: { type: 'string' }, description: 'the revision read (its ETag); instead of the revision field' };

/** The OpenAPI 3.1 document of every route in RESOURCES. */
export function openApiDocument(): Schema {
  const paths: Record<string, Record<string, Schema>> = {};
  for (const r of RESOURCES) {
    const ref = { $ref: `#/components/schemas/${r.kind}` };
    const etag = { ETag: { schema: { type: 'string' }, description: 'the revision, quoted' } };
    if (r.collection) {
      paths[openApiPath(r.collection)] = {
        get: {
          summary: `every ${r.what}`,
          parameters: parameters(r.collection),
          responses: { '200': json(`the ${r.kind} and the store revision they were read at`, { type: 'object', properties: { items: { type: 'array', items: ref }, revision: { type: 'integer' } } }), '404': problem('no such VPC'), ...AUTH_PROBLEMS, ...COMMON },
        },
        post: {
          summary: `creates a ${r.what} (${r.nameField ?? 'name'} in the body; revision absent or 0)`,
          parameters: parameters(r.collection),
          requestBody: { required: true, content: { 'application/json': { schema: ref } } },
          responses: {
            '201': { ...json(`the ${r.what} as stored, with its revision`, ref), headers: { ...etag, Location: { schema: { type: 'string' } } } },
            '400': problem('not a JSON object, or a revision other than 0'),
            '404': problem('no such VPC'),
            '409': problem('it exists already'),
            '415': problem('not application/json'),
            '422': problem('the model would be invalid: errors name each field and why'),
            ...AUTH_PROBLEMS,
            ...COMMON,
          },
        },
      };
    }
    const revisionQuery = { name: 'revision', in: 'query', required: false, schema: { type: 'integer', minimum: 1 }, description: 'the revision read; instead of If-Match' };
    paths[openApiPath(r.item)] = {
      get: { summary: `one ${r.what}`, parameters: parameters(r.item), responses: { '200': { ...json(`the ${r.what} and its revision`, ref), headers: etag }, '404': problem('no such object'), ...AUTH_PROBLEMS, ...COMMON } },
      put: {
        summary: `replaces the ${r.what}; revision (or If-Match) is the one read, 0 creates`,
        parameters: [...parameters(r.item), IF_MATCH],
        requestBody: { required: true, content: { 'application/json': { schema: ref } } },
        responses: {
          '200': { ...json(`the ${r.what} as stored, with its new revision`, ref), headers: etag },
          '400': problem('not a JSON object, or a malformed revision'),
          '404': problem('no such object (or VPC)'),
          '409': problem('stale revision: the object changed since it was read; the problem carries the revision now'),
          '415': problem('not application/json'),
          '422': problem('the model would be invalid: errors name each field and why'),
          '428': problem('no revision given'),
          ...AUTH_PROBLEMS,
          ...COMMON,
        },
      },
      delete: {
        summary: r.kind === 'acls' ? 'removes every rule of the VPC' : `deletes the ${r.what}`,
        parameters: [...parameters(r.item), IF_MATCH, revisionQuery],
        responses: {
          '204': { description: 'deleted' },
          '404': problem('no such object'),
          '409': problem('stale revision'),
          '422': problem('other objects still refer to it'),
          '428': problem('no revision given'),
          ...AUTH_PROBLEMS,
          ...COMMON,
        },
      },
    };
  }
  paths[OPENAPI_PATH] = { get: { summary: 'this document', responses: { '200': json('OpenAPI 3.1', { type: 'object' }) } } };
  return {
    openapi: '3.1.0',
    info: { title: 'zonemesh model API', version: '1', description: 'The network model in etcd, one object at a time (docs/api.md).' },
    components: {
      schemas: { Problem: PROBLEM, ...Object.fromEntries(RESOURCES.map((r) => [r.kind, representation(r)])) },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    },
    security: [{ bearer: [] }, {}],
    paths,
  };
}
