import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { NUMERIC_OPTIONS, OPENFLOW_PORT, parseDialTarget, type ListenSpec, type NumericOption } from '../controller';
import { DocumentError, OVSDB_TARGET, parseEtcdUrl, unknownKeyProblem, type DocumentIssue, type HypervisorAccess } from '../model';
import { parseMetricsAddress } from './metrics-server';
import { absoluteModule } from './app-loader';

/** A built-in app's name, or an app module: a path (absolute once the config is read) or a package name. */
export type AppRef = string | { readonly module: string };

/** 'l2-learning', or the module's path or package name */
export function appRefName(ref: AppRef): string {
  return typeof ref === 'string' ? ref : ref.module;
}

/** How `zonemesh run` runs: which apps, where switches connect, and each app's settings. */
export interface RunConfig {
  /**
   * the apps: built-in ones by name (src/apps/registry.ts), others as `{ module }`, a file or npm
   * package whose default export is the app class (docs/writing-apps.md); order is table order within a stage
   */
  readonly apps: readonly AppRef[];
  /**
   * where switches connect to us: 'tcp:0.0.0.0:6653', '127.0.0.1:6653', 'unix:/run/zm.sock', 'tls::6653';
   * a TLS listener carries the PEM contents of the `tls` files, as strings (the config crosses IPC as JSON)
   */
  readonly listen: readonly ListenSpec[];
  /** the files of the `tls:` listen targets, as given */
  readonly tls?: TlsFiles;
  /** switches' passive listeners we connect to: 'unix:/var/run/openvswitch/br-int.mgmt', 'tcp:10.0.0.5:6653' */
  readonly dial: readonly string[];
  /** network model file (YAML or JSON), watched for changes */
  readonly model?: string;
  /** the largest model file read, in bytes (default DEFAULT_MODEL_MAX_BYTES); also '32MiB' in a file or flag */
  readonly modelMaxBytes?: number;
  /** the model in etcd instead of a file: 'etcd://HOST:PORT[,HOST:PORT...]' (docs/etcd-store.md) */
  readonly store?: string;
  /**
   * hypervisor name → how this deployment reaches it (`ovsdb`), merged into the model's hypervisor
   * of that name: the model stays the desired network, free of one site's socket paths
   */
  readonly hypervisors?: Readonly<Record<string, HypervisorAccess>>;
  /** Unix socket of the control endpoint that `zonemesh flows` asks */
  readonly control?: string;
  readonly logLevel: LogLevel;
  /** processes sharing the switches (`zonemesh run --workers`), 1..MAX_WORKERS; absent means 1: one process, no cluster */
  readonly workers?: number;
  /**
   * this controller's OpenFlow master generation id on every switch (ROLE_REQUEST MASTER), 1 or more;
   * absent: no role request, EQUAL as a lone controller (see docs/mastership.md)
   */
  readonly generationId?: number;
  /**
   * the zone this controller runs in: with an etcd `store`, it joins the mastership election in etcd
   * and prefers the switches of its zone (docs/mastership.md); not with `generationId`
   */
  readonly zone?: string;
  /** this controller's name in the election (default hostname:pid) */
  readonly controllerId?: string;
  /** the election's timers: `leaseTtl` in whole seconds (default 2), `preemptDelay` in seconds (default 10) */
  readonly election?: ElectionSettings;
  /** app name → that app's own settings; each app validates its part */
  readonly settings: Readonly<Record<string, unknown>>;
  /** the controller's limits and timers (ControllerOptions: packetInRate, maxMultipartBytes …); each key replaces its default */
  readonly controller?: ControllerSettings;
  /** serve Prometheus metrics (`zonemesh run --metrics HOST:PORT`); only with one worker */
  readonly metrics?: MetricsSettings;
  /** serve the live topology page (`zonemesh run --http HOST:PORT`, docs/live-page.md); only with one worker */
  readonly http?: HttpSettings;
}

/** An HTTP endpoint that shows the switches' counters: the metrics, or the live page. */
export interface HttpSettings {
  /** 'HOST:PORT', '[IPv6]:PORT' or ':PORT' (every address) */
  readonly listen: string;
  /** mean time between two stats polls of one switch (default 15000); one poll feeds both endpoints, at the shorter interval */
  readonly pollIntervalMs?: number;
}

export type MetricsSettings = HttpSettings;

export interface ElectionSettings {
  readonly leaseTtl?: number;
  readonly preemptDelay?: number;
}

export type ControllerSettings = Readonly<Partial<Record<NumericOption, number>>>;

export const MAX_WORKERS = 64;

/** The PEM files of `tls:` listen targets. */
export interface TlsFiles {
  /** the controller's private key */
  readonly key?: string;
  /** the controller's certificate, presented to switches */
  readonly cert?: string;
  /**
   * the CA(s) that sign switch certificates: a switch must present a certificate one of them signed.
   * Without it no certificate is asked for: the connection is encrypted, the switch not authenticated.
   */
  readonly ca?: string;
}

const TLS_PARTS = ['key', 'cert', 'ca'] as const;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type ConfigIssue = DocumentIssue;

/** A run config that cannot be used, with every problem found. */
export class RunConfigError extends DocumentError {
  override readonly name = 'RunConfigError';
}

/** A listen target as written: a `tls:` one gets its key, certificate and CA from the `tls` section. */
export type ListenTarget = Exclude<ListenSpec, { transport: 'tls' }> | { transport: 'tls'; host?: string; port: number };

const LISTEN_FORMS = "'unix:PATH', '[tcp:]HOST:PORT' or 'tls:HOST:PORT'";

/**
 * 'unix:PATH', '[tcp:]HOST:PORT' ('tcp:[::1]:6653') or 'tls:HOST:PORT'; an empty HOST (':6653',
 * 'tls::6653') listens on every address. Returns a problem text instead of throwing, so a config
 * reports all its problems at once.
 */
export function parseListenTarget(text: string): ListenTarget | string {
  if (text.startsWith('unix:')) return text.length > 5 ? { transport: 'unix', path: text.slice(5) } : `'${text}' names no socket path`;
  const transport = text.startsWith('tls:') ? 'tls' : 'tcp';
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(text.replace(/^(?:tcp|tls):/, ''));
  const port = Number(m?.[3]);
  if (!m || !(port >= 0 && port < 65536)) return `'${text}' is not ${LISTEN_FORMS}`;
  const host = m[1] ?? m[2];
  return { transport, port, ...(host && { host }) };
}

/** A listen target or spec as `parseListenTarget` reads it ('tls:[::1]:6653'); never the key or certificates. */
export function formatListenTarget(spec: ListenTarget | ListenSpec): string {
  if (spec.transport === 'unix') return `unix:${spec.path}`;
  const host = spec.host === undefined ? '' : spec.host.includes(':') ? `[${spec.host}]` : spec.host;
  return `${spec.transport}:${host}:${spec.port ?? OPENFLOW_PORT}`;
}

/** The config of a run with no file and no flags: no apps, listening on every address at 6653. */
export const DEFAULT_LISTEN: Extract<ListenSpec, { transport: 'tcp' }> = { transport: 'tcp', port: OPENFLOW_PORT };

type Obj = Record<string, unknown>;

/**
 * A run config document checked by itself: its `tls:` listen targets do not have their key and
 * certificates yet. A config given in parts (a file, then command-line flags over it) is checked part
 * by part with `checkRunConfig`, merged, and completed once with `completeRunConfig`.
 */
export interface RunConfigDraft extends Omit<RunConfig, 'listen'> {
  readonly listen: readonly ListenTarget[];
}

type Problem = (path: string, text: string) => void;

/** Checks a parsed config document; `source` names it in errors (a file path, 'command line'). The whole check: see `RunConfigDraft` for configs given in parts. */
export function validateRunConfig(doc: unknown, source: string, baseDir = process.cwd()): RunConfig {
  const issues: ConfigIssue[] = [];
  const problem: Problem = (path, text) => issues.push({ path, problem: text });
  const draft = checkDocument(doc, source, problem, baseDir);
  // a malformed tls section or listen list has been reported: no follow-on "missing" or "unused"
  const config = completeDraft(draft, problem, { crossCheck: !issues.some((i) => /^(tls|listen)\b/.test(i.path)) });
  if (issues.length) throw new RunConfigError(source, issues);
  return config;
}

/** Checks one part of a config (a file, the command line's flags); throws a RunConfigError with every problem. */
/** `baseDir`: what relative app module paths are relative to (the config file's directory) */
export function checkRunConfig(doc: unknown, source: string, baseDir = process.cwd()): RunConfigDraft {
  const issues: ConfigIssue[] = [];
  const draft = checkDocument(doc, source, (path, text) => issues.push({ path, problem: text }), baseDir);
  if (issues.length) throw new RunConfigError(source, issues);
  return draft;
}

/**
 * Gives the `tls:` listen targets of a checked (and merged) config their key, certificate and CA:
 * reads the `tls` files, and refuses a `tls:` target without key or certificate, and `tls` files
 * that no `tls:` target uses. Throws a RunConfigError with every problem.
 */
export function completeRunConfig(draft: RunConfigDraft, source: string): RunConfig {
  const issues: ConfigIssue[] = [];
  const config = completeDraft(draft, (path, text) => issues.push({ path, problem: text }), { crossCheck: true });
  if (issues.length) throw new RunConfigError(source, issues);
  return config;
}

/**
 * `apps`: names and `{ module }` mappings, each once. A relative module path is resolved against
 * `baseDir` (the config file's directory, or the working directory for the command line).
 */
function appRefs(value: unknown, baseDir: string, problem: Problem): AppRef[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    problem('apps', 'must be a list of app names and { module: PATH|PACKAGE } entries');
    return [];
  }
  const seen = new Set<string>();
  return value.flatMap((item: unknown, i): AppRef[] => {
    let ref: AppRef;
    if (typeof item === 'string' && item !== '') ref = item;
    else if (typeof item === 'object' && item !== null && !Array.isArray(item) && typeof (item as Obj).module === 'string' && (item as Obj).module !== '') {
      const extra = Object.keys(item).filter((k) => k !== 'module');
      if (extra.length) problem(`apps[${i}].${extra[0]}`, unknownKeyProblem(extra[0]!, new Set(['module'])));
      ref = { module: absoluteModule((item as Obj).module as string, baseDir) };
    } else {
      problem(`apps[${i}]`, 'must be an app name or { module: PATH|PACKAGE }');
      return [];
    }
    const key = appRefName(ref);
    if (seen.has(key)) problem(`apps[${i}]`, `'${key}' is listed twice`);
    seen.add(key);
    return [ref];
  });
}

function checkDocument(doc: unknown, source: string, problem: Problem, baseDir: string): RunConfigDraft {
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new RunConfigError(source, [{ path: '(document)', problem: 'must be a mapping' }]);
  const o = doc as Obj;
  const known = new Set(['apps', 'listen', 'tls', 'dial', 'model', 'store', 'modelMaxBytes', 'hypervisors', 'control', 'logLevel', 'settings', 'workers', 'controller', 'generationId', 'metrics', 'http', 'zone', 'controllerId', 'election']);
  for (const key of Object.keys(o)) if (!known.has(key)) problem(key, unknownKeyProblem(key, known));

  const strings = (key: string): string[] => {
    const v = o[key];
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      problem(key, 'must be a list of strings');
      return [];
    }
    return v.filter((item, i) => (typeof item === 'string' && item !== '') || (problem(`${key}[${i}]`, 'must be a non-empty string'), false)) as string[];
  };
  const optionalString = (key: string): string | undefined => {
    const v = o[key];
    if (v === undefined || (typeof v === 'string' && v !== '')) return v;
    problem(key, 'must be a non-empty string');
    return undefined;
  };

  const apps = appRefs(o.apps, baseDir, problem);
  const listen: ListenTarget[] = [];
  strings('listen').forEach((text, i) => {
    const spec = parseListenTarget(text);
    if (typeof spec === 'string') problem(`listen[${i}]`, spec);
    else listen.push(spec);
  });
  const dial = strings('dial');
  dial.forEach((target, i) => {
    try {
      parseDialTarget(target);
    } catch (e) {
      problem(`dial[${i}]`, (e as Error).message);
    }
  });
  const logLevel = optionalString('logLevel') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) problem('logLevel', `'${logLevel}' is not one of ${LOG_LEVELS.join(', ')}`);
  const settings = o.settings ?? {};
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) problem('settings', 'must be a mapping of app name to settings');
  const model = optionalString('model');
  const modelMaxBytes = byteSize(o.modelMaxBytes);
  if (modelMaxBytes === null) problem('modelMaxBytes', `${JSON.stringify(o.modelMaxBytes)} is not a size in bytes such as 16777216 or '16MiB'`);
  const store = optionalString('store');
  const endpoints = store === undefined ? undefined : parseEtcdUrl(store);
  if (typeof endpoints === 'string') problem('store', endpoints);
  const control = optionalString('control');
  const hypervisors = hypervisorAccess(o.hypervisors, problem);
  const tls = tlsFiles(o.tls, problem);
  const controller = controllerSettings(o.controller, problem);
  const metrics = httpSettings(o.metrics, 'metrics', 'serve /metrics on', problem);
  const http = httpSettings(o.http, 'http', 'serve the page on', problem);
  const workers = o.workers;
  if (workers !== undefined && !(Number.isInteger(workers) && (workers as number) >= 1 && (workers as number) <= MAX_WORKERS)) {
    problem('workers', `${JSON.stringify(workers)} is not a whole number from 1 to ${MAX_WORKERS}`);
  }
  const generationId = o.generationId;
  if (generationId !== undefined && !(Number.isSafeInteger(generationId) && (generationId as number) >= 1)) {
    problem('generationId', `${JSON.stringify(generationId)} is not a whole number from 1 to ${Number.MAX_SAFE_INTEGER} (0 fences nobody)`);
  }
  const zone = optionalString('zone');
  const controllerId = optionalString('controllerId');
  const election = electionSettings(o.election, problem);

  return {
    apps,
    listen,
    ...(tls !== undefined && { tls }),
    dial,
    ...(model !== undefined && { model }),
    ...(modelMaxBytes != null && { modelMaxBytes }),
    ...(store !== undefined && { store }),
    ...(hypervisors !== undefined && { hypervisors }),
    ...(control !== undefined && { control }),
    logLevel: logLevel as LogLevel,
    ...(workers !== undefined && { workers: workers as number }),
    ...(generationId !== undefined && { generationId: generationId as number }),
    ...(zone !== undefined && { zone }),
    ...(controllerId !== undefined && { controllerId }),
    ...(election !== undefined && { election }),
    settings: settings as Record<string, unknown>,
    ...(controller !== undefined && { controller }),
    ...(metrics !== undefined && { metrics }),
    ...(http !== undefined && { http }),
  };
}

const HTTP_KEYS = ['listen', 'pollIntervalMs'] as const;
/** polls closer than this would cost switches more than they tell */
const MIN_POLL_INTERVAL_MS = 1_000;

/** `v` as a mapping at `path`; undefined (and a problem naming `example`) when it is anything else */
function mappingAt(v: unknown, path: string, example: string, problem: Problem): Obj | undefined {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Obj;
  problem(path, `must be a mapping ${example}`);
  return undefined;
}

/** `metrics: { listen: '127.0.0.1:9464', pollIntervalMs: 15000 }`, or the same under `http` */
function httpSettings(v: unknown, key: 'metrics' | 'http', serve: string, problem: Problem): HttpSettings | undefined {
  if (v === undefined) return undefined;
  const m = mappingAt(v, key, "such as { listen: '127.0.0.1:9464', pollIntervalMs: 15000 }", problem);
  if (!m) return undefined;
  for (const k of Object.keys(m)) if (!(HTTP_KEYS as readonly string[]).includes(k)) problem(`${key}.${k}`, unknownKeyProblem(k, HTTP_KEYS));
  const address = typeof m.listen === 'string' ? parseMetricsAddress(m.listen) : `missing: the HOST:PORT to ${serve}`;
  if (typeof address === 'string') problem(`${key}.listen`, address);
  const interval = m.pollIntervalMs;
  if (interval !== undefined && !(typeof interval === 'number' && Number.isInteger(interval) && interval >= MIN_POLL_INTERVAL_MS)) {
    problem(`${key}.pollIntervalMs`, `${JSON.stringify(interval)} is not a whole number of milliseconds >= ${MIN_POLL_INTERVAL_MS}`);
  }
  if (typeof address === 'string') return undefined;
  return { listen: m.listen as string, ...(typeof interval === 'number' && { pollIntervalMs: interval }) };
}

/** A positive size: a whole number of bytes, or one of KiB, MiB or GiB ('16MiB'); null when it is none of these. */
function byteSize(v: unknown): number | null | undefined {
  if (v === undefined) return undefined;
  const m = typeof v === 'number' ? [String(v), String(v), ''] : typeof v === 'string' ? /^(\d+)\s*(KiB|MiB|GiB)?$/.exec(v) : null;
  const n = m ? Number(m[1]) * { '': 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[m[2] ?? '']! : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/** `controller: { packetInRate: 20000, maxMultipartBytes: 67108864 }`: numbers > 0 for ControllerOptions keys */
function controllerSettings(v: unknown, problem: Problem): ControllerSettings | undefined {
  const m = v === undefined ? undefined : mappingAt(v, 'controller', 'such as { packetInRate: 20000 }', problem);
  if (!m) return undefined;
  const out: Partial<Record<NumericOption, number>> = {};
  for (const [key, value] of Object.entries(m)) {
    if (!(NUMERIC_OPTIONS as readonly string[]).includes(key)) problem(`controller.${key}`, unknownKeyProblem(key, NUMERIC_OPTIONS));
    else if (typeof value !== 'number' || !(value > 0)) problem(`controller.${key}`, `${JSON.stringify(value)} is not a number > 0`);
    else out[key as NumericOption] = value;
  }
  return out;
}

/** `election: { leaseTtl: 3, preemptDelay: 10 }`: a lease TTL of whole seconds from 1 to 60, a delay of seconds >= 0 */
function electionSettings(v: unknown, problem: Problem): ElectionSettings | undefined {
  const m = v === undefined ? undefined : mappingAt(v, 'election', 'such as { leaseTtl: 3, preemptDelay: 10 }', problem);
  if (!m) return undefined;
  const out: { -readonly [K in keyof ElectionSettings]: number } = {};
  for (const [key, value] of Object.entries(m)) {
    if (key === 'leaseTtl' && Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 60) out.leaseTtl = value as number;
    else if (key === 'leaseTtl') problem('election.leaseTtl', `${JSON.stringify(value)} is not a whole number of seconds from 1 to 60`);
    else if (key === 'preemptDelay' && typeof value === 'number' && value >= 0 && value <= 3600) out.preemptDelay = value;
    else if (key === 'preemptDelay') problem('election.preemptDelay', `${JSON.stringify(value)} is not a number of seconds from 0 to 3600`);
    else problem(`election.${key}`, unknownKeyProblem(key, ['leaseTtl', 'preemptDelay']));
  }
  return out;
}

/** `tls: { key: PATH, cert: PATH, ca: PATH }`, every part optional here: `completeDraft` says what is missing. */
function tlsFiles(v: unknown, problem: Problem): TlsFiles | undefined {
  const m = v === undefined ? undefined : mappingAt(v, 'tls', 'such as { key: ctl-privkey.pem, cert: ctl-cert.pem, ca: switchca/cacert.pem }', problem);
  if (!m) return undefined;
  const out: { -readonly [K in keyof TlsFiles]: string } = {};
  for (const [part, path] of Object.entries(m)) {
    if (!(TLS_PARTS as readonly string[]).includes(part)) problem(`tls.${part}`, unknownKeyProblem(part, TLS_PARTS));
    else if (typeof path !== 'string' || path === '') problem(`tls.${part}`, 'must be the path of a PEM file');
    else out[part as keyof TlsFiles] = path;
  }
  return out;
}

/** what each part of `tls` is, for messages */
const TLS_PART: Record<keyof TlsFiles, { what: string; flag: string }> = {
  key: { what: 'private key', flag: '--tls-key' },
  cert: { what: 'certificate', flag: '--tls-cert' },
  ca: { what: 'CA certificate', flag: '--tls-ca' },
};

/**
 * Reads the PEM files of `files` and checks that each holds what it should (an unencrypted key, a
 * certificate, CA certificates) and that the key is the certificate's; problems at `tls.PART`.
 */
export function readTlsFiles(files: TlsFiles, problem: (path: string, text: string) => void): { -readonly [K in keyof TlsFiles]: string } {
  const pem: { -readonly [K in keyof TlsFiles]: string } = {};
  const parsed: { key?: KeyObject; cert?: X509Certificate } = {};
  for (const part of TLS_PARTS) {
    const path = files[part];
    if (path === undefined) continue;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      problem(`tls.${part}`, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      continue;
    }
    try {
      // checked here, so a bad file is named at startup rather than when the listener opens
      if (part === 'key') parsed.key = createPrivateKey(text);
      else if (part === 'cert') parsed.cert = new X509Certificate(text);
      else new X509Certificate(text);
    } catch {
      // PKCS#8 and the traditional OpenSSL form; OpenSSL fails on them for want of a passphrase prompt
      const encrypted = part === 'key' && /^-----BEGIN ENCRYPTED PRIVATE KEY-----$|^Proc-Type: 4,ENCRYPTED$/m.test(text);
      problem(`tls.${part}`, encrypted ? `${path} is encrypted; zonemesh takes an unencrypted private key` : `${path} holds no PEM ${TLS_PART[part].what}`);
      continue;
    }
    pem[part] = text;
  }
  if (parsed.key && parsed.cert && !parsed.cert.checkPrivateKey(parsed.key)) {
    problem('tls.key', `${files.key} is not the private key of the certificate ${files.cert}`);
  }
  return pem;
}

/**
 * Reads the `tls` files (as text: the config crosses to `--workers` processes as JSON) and hands
 * them to the `tls:` listen targets. With `ca`, a switch must present a certificate the CA signed;
 * without, no switch certificate is asked for. `crossCheck: false` skips the checks between `tls`
 * and `listen`, for a document whose `tls` or `listen` is already reported broken.
 */
function completeDraft(draft: RunConfigDraft, problem: Problem, { crossCheck }: { crossCheck: boolean }): RunConfig {
  const files = draft.tls ?? {};
  const pem = readTlsFiles(files, problem);
  const tlsTargets = draft.listen.flatMap((l, i) => (l.transport === 'tls' ? [`listen[${i}] '${formatListenTarget(l)}'`] : []));
  if (crossCheck && tlsTargets.length === 0) {
    const unused = TLS_PARTS.filter((part) => files[part] !== undefined);
    if (unused.length) problem('tls', `${unused.join(', ')} given, but no listen target is 'tls:HOST:PORT' to use ${unused.length > 1 ? 'them' : 'it'}`);
  }
  if (crossCheck && tlsTargets.length > 0) {
    for (const part of ['key', 'cert'] as const) {
      if (files[part] === undefined) problem(`tls.${part}`, `missing: ${tlsTargets.join(', ')} needs the controller's ${TLS_PART[part].what} (${TLS_PART[part].flag} FILE, or tls.${part} in the config file)`);
    }
  }
  if (draft.model !== undefined && draft.store !== undefined) problem('store', `the model comes from one place: model ${draft.model} or store ${draft.store}, not both`);
  if (crossCheck && draft.metrics !== undefined && (draft.workers ?? 1) > 1) {
    // each worker would count only its own switches, and summing them breaks on a worker restart: see docs/metrics.md
    problem('metrics', `needs workers: 1 (workers is ${draft.workers}): each worker sees only its own switches; run one process to serve metrics`);
  }
  if (crossCheck && draft.http !== undefined && (draft.workers ?? 1) > 1) {
    problem('http', `needs workers: 1 (workers is ${draft.workers}): each worker sees only its own switches; run one process to serve the page`);
  }
  if (draft.zone !== undefined) {
    // the election maps each switch to its zone through the model in etcd, and campaigns there
    if (draft.store === undefined) problem('zone', `the mastership election runs in etcd: zone ${draft.zone} needs store: etcd://HOST:PORT`);
    if (draft.generationId !== undefined) problem('generationId', `the election gives the generation ids: not with zone ${draft.zone}`);
    if ((draft.workers ?? 1) > 1) problem('workers', 'the mastership election runs in one process: workers 1 with zone');
  } else {
    if (draft.controllerId !== undefined) problem('controllerId', 'names this controller in the mastership election, which runs with zone: set zone too');
    if (draft.election !== undefined) problem('election', 'tunes the mastership election, which runs with zone: set zone too');
  }
  // by the ca named, not the ca read: fails closed even if a caller went on despite a problem
  const verify = files.ca !== undefined ? { ca: pem.ca ?? '', requestCert: true, rejectUnauthorized: true } : { requestCert: false, rejectUnauthorized: false };
  return {
    ...draft,
    // with a problem reported above the config is not to be used: '' stands in for what is missing
    listen: draft.listen.map((l): ListenSpec => (l.transport === 'tls' ? { ...l, key: pem.key ?? '', cert: pem.cert ?? '', ...verify } : l)),
  };
}

/** `hypervisors: { hv1: { ovsdb: 'unix:/run/zm/hv1/db.sock' } }` */
function hypervisorAccess(v: unknown, problem: Problem): Record<string, HypervisorAccess> | undefined {
  const m = v === undefined ? undefined : mappingAt(v, 'hypervisors', 'of hypervisor name to { ovsdb }', problem);
  if (!m) return undefined;
  const out: Record<string, HypervisorAccess> = {};
  for (const [name, entry] of Object.entries(m)) {
    const path = `hypervisors.${name}`;
    const e = mappingAt(entry, path, 'such as { ovsdb: unix:/run/zm/hv1/db.sock }', problem);
    if (!e) continue;
    for (const key of Object.keys(e)) if (key !== 'ovsdb') problem(`${path}.${key}`, unknownKeyProblem(key, ['ovsdb']));
    if (e.ovsdb === undefined) {
      out[name] = {};
    } else if (typeof e.ovsdb !== 'string' || !OVSDB_TARGET.re.test(e.ovsdb)) {
      problem(`${path}.ovsdb`, `${JSON.stringify(e.ovsdb)} is not ${OVSDB_TARGET.what}`);
    } else {
      out[name] = { ovsdb: e.ovsdb };
    }
  }
  return out;
}

/** Reads a YAML or JSON run config file. */
export function loadRunConfig(path: string): RunConfig {
  return parseRunConfig(readRunConfigText(path), path);
}

/** A run config document's text (YAML, or JSON when `path` ends in .json), checked whole. */
export function parseRunConfig(text: string, path: string): RunConfig {
  return validateRunConfig(parseRunConfigDocument(text, path), path, dirname(resolve(path)));
}

/** Reads and checks a YAML or JSON run config file that other parts (command-line flags) complete: see `RunConfigDraft`. */
export function loadRunConfigDraft(path: string): RunConfigDraft {
  return parseRunConfigDraft(readRunConfigText(path), path);
}

export function parseRunConfigDraft(text: string, path: string): RunConfigDraft {
  return checkRunConfig(parseRunConfigDocument(text, path), path, dirname(resolve(path)));
}

function readRunConfigText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new RunConfigError(path, [{ path: '(file)', problem: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }]);
  }
}

function parseRunConfigDocument(text: string, path: string): unknown {
  try {
    return path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new RunConfigError(path, [{ path: '(syntax)', problem: (e as Error).message.split('\n')[0]! }]);
  }
}
