import { isAbsolute, resolve } from 'node:path';
import { fieldSpec } from '../openflow';
import type { ZonemeshApp } from '../sdk/app';
import type { EventCounter } from '../sdk/counters';
import type { Newable } from '../sdk/di';
import { STAGES, type TableSpec } from '../sdk/pipeline';

/** An app module (`--app`, `apps: [{ module }]`) that cannot be run, with the module named. */
export class AppLoadError extends Error {
  override readonly name = 'AppLoadError';
  constructor(
    /** the module as the config or command line gave it */
    readonly module: string,
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`app module ${module}: ${problem}`, options);
  }
}

/** A path ('./my-app.js', '/opt/x.js') rather than a package name ('zonemesh-app-foo', '@org/app'). */
export function isModulePath(spec: string): boolean {
  return spec.startsWith('.') || isAbsolute(spec);
}

/** `spec` made independent of the working directory: a path resolved against `baseDir`, a package name as it is. */
export function absoluteModule(spec: string, baseDir: string): string {
  return isModulePath(spec) ? resolve(baseDir, spec) : spec;
}

function isClass(value: unknown): value is Newable<ZonemeshApp> {
  return typeof value === 'function' && /^class\b/.test(Function.prototype.toString.call(value));
}

/**
 * Loads the app class a module exports as its default export (`export default class MyApp …`).
 * A path is loaded as it is; a package name is looked up from `baseDir` as Node's `require` would.
 * Throws AppLoadError naming the module for a module that cannot be found, fails to load, or
 * whose default export is not a class.
 */
export function loadAppModule(spec: string, baseDir = process.cwd()): Newable<ZonemeshApp> {
  let path: string;
  try {
    path = require.resolve(absoluteModule(spec, baseDir), { paths: [baseDir] });
  } catch (e) {
    throw new AppLoadError(spec, isModulePath(spec) ? 'no such file' : `no package of that name reachable from ${baseDir}`, { cause: e });
  }
  let exported: Record<string, unknown>;
  try {
    exported = require(path) as Record<string, unknown>;
  } catch (e) {
    throw new AppLoadError(spec, `failed to load: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
  const app = exported?.default;
  if (app === undefined) {
    const names = Object.keys(exported ?? {});
    throw new AppLoadError(spec, `has no default export (it exports ${names.length ? names.join(', ') : 'nothing'}); write \`export default class … implements ZonemeshApp\``);
  }
  if (!isClass(app)) throw new AppLoadError(spec, `its default export is a ${typeof app}, not a class`);
  return app;
}

const MISSES: readonly string[] = ['drop', 'controller', 'next'];
/** a Prometheus metric or label name part: snake_case */
const METRIC_WORD = /^[a-z][a-z0-9_]*[a-z0-9]$/;
/** the labels the runtime puts on every EventCounter's series */
export const SWITCH_LABELS: readonly string[] = ['dpid', 'hypervisor'];

/** What is wrong with an app instance's shape (name, start, tables, event counters), or undefined; ids are checked by the runtime. */
export function appShapeProblem(app: unknown): string | undefined {
  const a = app as Partial<ZonemeshApp> | null;
  if (typeof a !== 'object' || a === null) return 'is not an object';
  if (typeof a.name !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/.test(a.name)) return `name ${JSON.stringify(a.name)} is not a lower-case word such as 'port-allowlist'`;
  if (typeof a.start !== 'function') return 'has no start(ctx) method';
  if (!Array.isArray(a.tables)) return 'tables is not a list';
  for (const [i, t] of (a.tables as unknown[]).entries()) {
    const table = t as Partial<TableSpec> | null;
    const where = `tables[${i}]`;
    if (typeof table !== 'object' || table === null) return `${where} is not an object`;
    if (typeof table.name !== 'string' || table.name === '') return `${where}.name is not a non-empty string`;
    if (!(STAGES as readonly unknown[]).includes(table.stage)) return `${where} (${table.name}): stage ${JSON.stringify(table.stage)} is not one of ${STAGES.join(', ')}`;
    if (!MISSES.includes(table.miss as string)) return `${where} (${table.name}): miss ${JSON.stringify(table.miss)} is not one of ${MISSES.join(', ')}`;
    for (const key of ['matches', 'maskable'] as const) {
      const fields = table[key];
      if (fields === undefined && key === 'maskable') continue;
      if (!Array.isArray(fields)) return `${where} (${table.name}): ${key} is not a list of match fields`;
      const unknown = fields.find((f) => typeof f !== 'string' || fieldSpec(f) === undefined);
      if (unknown !== undefined) return `${where} (${table.name}): ${key} names unknown match field ${JSON.stringify(unknown)}`;
    }
  }
  if (a.eventCounters !== undefined) {
    if (!Array.isArray(a.eventCounters)) return 'eventCounters is not a list';
    for (const [i, c] of (a.eventCounters as unknown[]).entries()) {
      const counter = c as Partial<EventCounter> | null;
      const where = `eventCounters[${i}]`;
      if (typeof counter !== 'object' || counter === null) return `${where} is not an object`;
      if (typeof counter.name !== 'string' || !METRIC_WORD.test(counter.name) || counter.name.endsWith('_total')) return `${where}.name ${JSON.stringify(counter.name)} is not snake_case without _total, such as 'dhcp_unanswered'`;
      if (typeof counter.label !== 'string' || !METRIC_WORD.test(counter.label) || SWITCH_LABELS.includes(counter.label)) return `${where} (${counter.name}): label ${JSON.stringify(counter.label)} is not a snake_case word other than ${SWITCH_LABELS.join(', ')}`;
      if (typeof counter.help !== 'string' || typeof counter.read !== 'function') return `${where} (${counter.name}): needs help (a string) and read()`;
    }
  }
  return undefined;
}
