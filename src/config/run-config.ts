import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { OPENFLOW_PORT, parseDialTarget, type ListenSpec } from '../controller';
import { OVSDB_TARGET, type HypervisorAccess } from '../model';

/** How `zonemesh run` runs: which apps, where switches connect, and each app's settings. */
export interface RunConfig {
  /** app names, resolved through src/apps/registry.ts; order is table order within a stage */
  readonly apps: readonly string[];
  /** where switches connect to us: 'tcp:0.0.0.0:6653', '127.0.0.1:6653', 'unix:/run/zm.sock' */
  readonly listen: readonly ListenSpec[];
  /** switches' passive listeners we connect to: 'unix:/var/run/openvswitch/br-int.mgmt', 'tcp:10.0.0.5:6653' */
  readonly dial: readonly string[];
  /** network model file (YAML or JSON), watched for changes */
  readonly model?: string;
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
  /** app name → that app's own settings; each app validates its part */
  readonly settings: Readonly<Record<string, unknown>>;
}

export const MAX_WORKERS = 64;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ConfigIssue {
  /** where in the document, e.g. `listen[1]` */
  path: string;
  problem: string;
}

/** A run config that cannot be used, with every problem found. */
export class RunConfigError extends Error {
  override readonly name = 'RunConfigError';
  constructor(
    readonly source: string,
    readonly issues: readonly ConfigIssue[],
  ) {
    super(issues.length === 1 ? `${source}: ${issues[0]!.path}: ${issues[0]!.problem}` : `${source}: ${issues.length} problems\n${issues.map((i) => `  ${i.path}: ${i.problem}`).join('\n')}`);
  }
}

/**
 * 'unix:PATH', or '[tcp:]HOST:PORT' ('tcp:[::1]:6653'); a bare ':PORT' listens on every address.
 * Returns a problem text instead of throwing, so a config reports all its problems at once.
 */
export function parseListenTarget(text: string): ListenSpec | string {
  if (text.startsWith('unix:')) return text.length > 5 ? { transport: 'unix', path: text.slice(5) } : `'${text}' names no socket path`;
  const m = /^(?:tcp:)?(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || !(port >= 0 && port < 65536)) return `'${text}' is not 'unix:PATH' or '[tcp:]HOST:PORT'`;
  const host = m[1] ?? m[2];
  return { transport: 'tcp', port, ...(host && { host }) };
}

/** The config of a run with no file and no flags: no apps, listening on every address at 6653. */
export const DEFAULT_LISTEN: ListenSpec = { transport: 'tcp', port: OPENFLOW_PORT };

type Obj = Record<string, unknown>;

/** Checks a parsed config document; `source` names it in errors (a file path, '--apps'). */
export function validateRunConfig(doc: unknown, source: string): RunConfig {
  const issues: ConfigIssue[] = [];
  const problem = (path: string, text: string) => issues.push({ path, problem: text });
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new RunConfigError(source, [{ path: '(document)', problem: 'must be a mapping' }]);
  const o = doc as Obj;
  const known = new Set(['apps', 'listen', 'dial', 'model', 'hypervisors', 'control', 'logLevel', 'settings', 'workers']);
  for (const key of Object.keys(o)) if (!known.has(key)) problem(key, `unknown key (known: ${[...known].join(', ')})`);

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

  const apps = strings('apps');
  const seen = new Set<string>();
  apps.forEach((name, i) => {
    if (seen.has(name)) problem(`apps[${i}]`, `'${name}' is listed twice`);
    seen.add(name);
  });
  const listen: ListenSpec[] = [];
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
  const control = optionalString('control');
  const hypervisors = hypervisorAccess(o.hypervisors, problem);
  const workers = o.workers;
  if (workers !== undefined && !(Number.isInteger(workers) && (workers as number) >= 1 && (workers as number) <= MAX_WORKERS)) {
    problem('workers', `${JSON.stringify(workers)} is not a whole number from 1 to ${MAX_WORKERS}`);
  }

  if (issues.length) throw new RunConfigError(source, issues);
  return {
    apps,
    listen,
    dial,
    ...(model !== undefined && { model }),
    ...(hypervisors !== undefined && { hypervisors }),
    ...(control !== undefined && { control }),
    logLevel: logLevel as LogLevel,
    ...(workers !== undefined && { workers: workers as number }),
    settings: settings as Record<string, unknown>,
  };
}

/** `hypervisors: { hv1: { ovsdb: 'unix:/run/zm/hv1/db.sock' } }` */
function hypervisorAccess(v: unknown, problem: (path: string, text: string) => void): Record<string, HypervisorAccess> | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    problem('hypervisors', 'must be a mapping of hypervisor name to { ovsdb }');
    return undefined;
  }
  const out: Record<string, HypervisorAccess> = {};
  for (const [name, entry] of Object.entries(v)) {
    const path = `hypervisors.${name}`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problem(path, 'must be a mapping such as { ovsdb: unix:/run/zm/hv1/db.sock }');
      continue;
    }
    const e = entry as Obj;
    for (const key of Object.keys(e)) if (key !== 'ovsdb') problem(`${path}.${key}`, 'unknown key (known: ovsdb)');
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
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new RunConfigError(path, [{ path: '(file)', problem: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }]);
  }
  let doc: unknown;
  try {
    doc = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new RunConfigError(path, [{ path: '(syntax)', problem: (e as Error).message.split('\n')[0]! }]);
  }
  return validateRunConfig(doc, path);
}
