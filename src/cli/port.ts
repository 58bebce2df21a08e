import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { CliError, EXIT, UsageError, defineCommand } from './command';

export const DEFAULT_API = 'http://127.0.0.1:8181';
const TIMEOUT_MS = 10_000;
/**
 * How often a write the API answered 503 to is sent, in all, its Retry-After apart (1 s, at most 5):
 * etcd answers again once it has elected a leader, which after a member's loss takes about a second.
 */
const WRITE_ATTEMPTS = 5;
const MAX_RETRY_AFTER_S = 5;

/** The options of every command that calls the API. */
export const API_OPTIONS = [
  { name: 'api', value: 'URL', description: "the API of 'zonemesh api' (http:// or https://)", default: DEFAULT_API },
  { name: 'token-file', value: 'FILE', description: 'a file holding the bearer token that writes need', default: 'none' },
  { name: 'ca', value: 'FILE', description: "a PEM CA that signed an https API's certificate", default: "the system's CAs" },
] as const;

/** `zonemesh port add|move|rm|show`: the API's port calls from the command line. */
export const portCommand = defineCommand({
  name: 'port',
  operands: 'add|move|rm|show NAME',
  summary: "creates, moves, deletes or shows a port through the API of 'zonemesh api'",
  description: "Creates, moves to another hypervisor, deletes or shows a port through the API of 'zonemesh api'; prints the port as stored, or the problem.",
  subcommands: [
    { usage: 'add NAME', summary: 'creates the port; needs --vpc, --subnet, --mac, --hypervisor and (unless the subnet is IPv6-only) --ip, takes --ipv6 and --interface' },
    { usage: 'move NAME', summary: 'moves the port to the hypervisor --hypervisor names' },
    { usage: 'rm NAME', summary: 'deletes the port' },
    { usage: 'show NAME', summary: 'prints the port' },
  ],
  options: [
    { name: 'vpc', value: 'VPC', description: 'add: the VPC of the port', default: 'none' },
    { name: 'subnet', value: 'SUBNET', description: 'add: its subnet in the VPC', default: 'none' },
    { name: 'mac', value: 'MAC', description: 'add: its MAC address', default: 'none' },
    { name: 'ip', value: 'IP', description: 'add: its IPv4 address in the subnet (none on an IPv6-only subnet)', default: 'none' },
    { name: 'ipv6', value: 'IP6', description: "add: its IPv6 address in the subnet's prefix", default: 'EUI-64 of the MAC on a SLAAC subnet' },
    { name: 'hypervisor', value: 'HV', description: 'add, move: the hypervisor it is on', default: 'none' },
    { name: 'interface', value: 'IF', description: "add: its interface name on the hypervisor's bridge", default: 'the port NAME' },
    ...API_OPTIONS,
  ] as const,
  positionals: true,
  exits: { problems: 'the API refused the change (4xx)', failed: 'the API could not be asked, or failed (5xx)' },
  run: async ({ values: v, positionals: [action, ...positionals] }) => {
    if (!['add', 'move', 'rm', 'show'].includes(action ?? '')) throw new UsageError(`'port ${action ?? ''}': say add, move, rm or show`);
    if (positionals.length !== 1) throw new UsageError(`port ${action} takes one NAME`);
    const name = positionals[0]!;
    const api = new ApiClient(v.api ?? DEFAULT_API, v['token-file'], v.ca);
    const path = `/v1/ports/${encodeURIComponent(name)}`;
    const portFields = ['vpc', 'subnet', 'mac', 'ip', 'ipv6', 'hypervisor', 'interface'] as const;
    // the model decides whether the subnet needs ip, and says so
    const optional: readonly string[] = ['ip', 'ipv6', 'interface'];
    const given = portFields.filter((f) => v[f] !== undefined);
    let res: ApiResponse;
    if (action === 'add') {
      const missing = portFields.filter((f) => !optional.includes(f) && v[f] === undefined);
      if (missing.length) throw new UsageError(`port add needs ${missing.map((f) => `--${f}`).join(', ')}`);
      const asked: Record<string, unknown> = { name, ...Object.fromEntries(given.map((f) => [f, v[f]])) };
      // a resend that meets the port already there: it is ours if it is what was asked
      res = await api.write('POST', '/v1/ports', asked, {}, (stored) => Object.entries(asked).every(([k, x]) => stored[k] === x), path);
    } else {
      if (action === 'move' && (v.hypervisor === undefined || given.length > 1)) throw new UsageError('port move takes --hypervisor HV (and nothing else of the port)');
      if (action !== 'move' && given.length) throw new UsageError(`port ${action} takes no --${given[0]}`);
      res = await api.call('GET', path);
      if (res.status === 200 && action === 'move') {
        // the revision read goes with the write: a change made meanwhile gets 409, not overwritten
        res = await api.write('PUT', path, { ...(res.body as Record<string, unknown>), hypervisor: v.hypervisor }, {}, (stored) => stored.hypervisor === v.hypervisor);
      } else if (res.status === 200 && action === 'rm') {
        const revision = (res.body as { revision: number }).revision;
        res = await api.write('DELETE', path, undefined, { 'If-Match': `"${revision}"` }, undefined);
        if (res.status === 204) console.log(`deleted port ${name} (was at revision ${revision})`);
      }
    }
    return reported('port', res);
  },
});


/** Prints what the API answered: the object (exit 0), or the problem (exit 1 for 4xx; a CliError, exit 3, for 5xx). */
export function reported(command: string, res: ApiResponse): number {
  if (res.status < 300) {
    if (res.body !== undefined) console.log(JSON.stringify(res.body, null, 2));
    return EXIT.ok;
  }
  const problem = (res.body ?? {}) as { title?: string; detail?: string; errors?: { path: string; problem: string }[] };
  const lines = [`${res.status} ${problem.title ?? 'error'}${problem.detail ? `: ${problem.detail}` : ''}`, ...(problem.errors ?? []).map((e) => `  ${e.path}: ${e.problem}`)];
  if (res.status >= 500) throw new CliError(lines.join('\n'));
  console.error(`zonemesh ${command}: ${lines.join('\n')}`);
  return EXIT.problems;
}

export interface ApiResponse {
  status: number;
  body: unknown;
  /** the Retry-After header's seconds, on a 503 */
  retryAfter?: number;
}

/** Whether what is stored now (the object read) is the result of the write sent. */
export type OwnWrite = (stored: Record<string, unknown>) => boolean;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A minimal client of the API: JSON in and out, the bearer token, and a CA for https. */
export class ApiClient {
  private readonly base: URL;
  private readonly token: string | undefined;
  private readonly ca: string | undefined;

  constructor(base: string, tokenFile: string | undefined, caFile: string | undefined) {
    try {
      this.base = new URL(base);
    } catch {
      throw new UsageError(`--api: '${base}' is not a URL such as ${DEFAULT_API}`);
    }
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') throw new UsageError(`--api: '${base}' is not http:// or https://`);
    const read = (flag: string, file: string) => {
      try {
        return readFileSync(file, 'utf8');
      } catch (e) {
        throw new CliError(`--${flag}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
    };
    this.token = tokenFile === undefined ? undefined : read('token-file', tokenFile).trim();
    this.ca = caFile === undefined ? undefined : read('ca', caFile);
  }

  /**
   * Sends a write, and sends it again while the API answers 503 (etcd unavailable, or busy), each
   * time after its Retry-After, WRITE_ATTEMPTS times in all. A 503 can hide a write that went
   * through with its answer lost: a resend then meets its result and is refused (409: the object is
   * there, or its revision moved on; 404: it is gone). Only then is the object read again: when
   * `own` says it is this write's result (a delete's is the object's absence: `own` undefined), that
   * read is the answer, as if the first had arrived.
   */
  async write(method: string, path: string, body: unknown, headers: Record<string, string>, own: OwnWrite | undefined, readPath = path): Promise<ApiResponse> {
    let res = await this.call(method, path, body, headers);
    for (let attempt = 1; attempt < WRITE_ATTEMPTS && res.status === 503; attempt++) {
      await pause(Math.min(res.retryAfter ?? 1, MAX_RETRY_AFTER_S) * 1000);
      res = await this.call(method, path, body, headers);
      if (res.status !== 409 && res.status !== 404) continue;
      const now = await this.call('GET', readPath);
      if (own === undefined ? now.status === 404 : now.status === 200 && own(now.body as Record<string, unknown>)) return own === undefined ? { status: 204, body: undefined } : now;
    }
    return res;
  }

  call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
    const url = new URL(path, this.base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          timeout: TIMEOUT_MS,
          headers: {
            accept: 'application/json',
            ...headers,
            ...(this.token !== undefined && { authorization: `Bearer ${this.token}` }),
            ...(payload && { 'content-type': 'application/json', 'content-length': String(payload.length) }),
          },
          ...(this.ca !== undefined && { ca: this.ca }),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              parsed = { title: text.slice(0, 200) };
            }
            const retryAfter = Number(res.headers['retry-after']);
            resolve({ status: res.statusCode ?? 0, body: parsed, ...(Number.isFinite(retryAfter) && retryAfter >= 0 && { retryAfter }) });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS / 1000} s`)));
      req.on('error', (e) => reject(new CliError(`cannot ask the API at ${this.base.origin}: ${e.message} (is 'zonemesh api' running there?)`)));
      req.end(payload);
    });
  }
}
