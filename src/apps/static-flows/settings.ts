import { OFPP, ValueKind, allFieldSpecs, fieldSpec, parseIpv4, parseIpv6, parseMac, type Action, type OxmFieldName, type OxmTlv } from '../../openflow';
import { AppSettingsError, cidr, type MatchSpec, type MissBehaviour, type SettingsIssue } from '../../sdk';

const STATIC_FLOWS = 'static-flows';

/** One configured flow: plain data, the same on every run. */
export interface StaticFlowSpec {
  /** unique: the flow's owner, so its cookie stays the same across restarts */
  name: string;
  /** only on this switch; every switch when absent */
  dpid?: bigint;
  priority: number;
  match: MatchSpec;
  actions: Action[];
}

export interface StaticFlowsSettings {
  miss: MissBehaviour;
  flows: StaticFlowSpec[];
}

const NAMED_PORTS: Record<string, number> = {
  in_port: OFPP.IN_PORT,
  controller: OFPP.CONTROLLER,
  flood: OFPP.FLOOD,
  all: OFPP.ALL,
  local: OFPP.LOCAL,
  normal: OFPP.NORMAL,
};
const MISS: readonly MissBehaviour[] = ['drop', 'controller', 'next'];
/** every named field may be matched, masked or not: the config is the schema */
export const ALL_FIELDS: readonly OxmFieldName[] = allFieldSpecs().map((s) => s.name);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks an address (or address/mask) string with the codec's own parser; throws the problem text. */
function address(field: string, raw: unknown, parse: (s: string) => Buffer): string {
  if (typeof raw !== 'string') throw `${field} must be an address string`;
  try {
    parse(raw);
  } catch {
    throw `${field}: '${raw}' is not an address`;
  }
  return raw;
}

/**
 * A field value as the codec types it. Addresses may carry a mask ('02:00:00:00:00:00/ff:00:00:00:00:00')
 * or, for IPv4 and IPv6, a prefix length ('10.0.0.0/24'). Throws the problem text.
 */
function fieldValue(field: string, raw: unknown): MatchSpec[OxmFieldName] {
  const spec = fieldSpec(field);
  if (!spec) throw `unknown field '${field}'`;
  const masked = typeof raw === 'string' ? raw.split('/') : [];
  switch (spec.kind) {
    case ValueKind.Mac:
      if (masked.length === 2) return { value: address(field, masked[0], parseMac), mask: address(field, masked[1], parseMac) };
      return address(field, raw, parseMac);
    case ValueKind.Ipv4:
    case ValueKind.Ipv6: {
      const parse = spec.kind === ValueKind.Ipv4 ? parseIpv4 : parseIpv6;
      if (masked.length !== 2) return address(field, raw, parse);
      address(field, masked[0], parse);
      if (/^\d+$/.test(masked[1]!)) return cidr(raw as string);
      return { value: masked[0]!, mask: address(field, masked[1], parse) };
    }
    case ValueKind.U64:
    case ValueKind.U128:
      if ((typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 0) && (typeof raw !== 'string' || !/^(0x[0-9a-f]+|\d+)$/i.test(raw))) throw `${field} must be a non-negative integer`;
      return BigInt(raw);
    default: {
      const n = typeof raw === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(raw) ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > spec.maxNumber) throw `${field} must be an integer 0..${spec.maxNumber}`;
      return n;
    }
  }
}

function action(raw: unknown): Action {
  if (!isObj(raw) || Object.keys(raw).length !== 1) throw `an action is one of {output: PORT} or {set_field: {FIELD: VALUE}}`;
  if ('output' in raw) {
    const port = typeof raw.output === 'string' ? NAMED_PORTS[raw.output] : raw.output;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0) throw `output: '${String(raw.output)}' is not a port number or one of ${Object.keys(NAMED_PORTS).join(', ')}`;
    return { type: 'output', port, maxLen: port === OFPP.CONTROLLER ? 0xffff : 0 };
  }
  if ('set_field' in raw && isObj(raw.set_field) && Object.keys(raw.set_field).length === 1) {
    const [field, value] = Object.entries(raw.set_field)[0]!;
    const v = fieldValue(field, value);
    if (typeof v === 'object') throw `set_field ${field}: a masked value cannot be set`;
    return { type: 'set_field', field: { field, value: v } as OxmTlv };
  }
  throw `unknown action ${JSON.stringify(raw)}`;
}

function dpidOf(raw: unknown): bigint {
  if (typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0) return BigInt(raw);
  if (typeof raw === 'string' && /^(0x[0-9a-f]+|[0-9a-f]{16})$/i.test(raw)) return BigInt(raw.startsWith('0x') ? raw : `0x${raw}`);
  throw `dpid must be an integer, '0x…' or 16 hex digits`;
}

/** Checks the `settings.static-flows` part of the run config; every problem is reported at once. */
export function parseStaticFlowsSettings(raw: unknown): StaticFlowsSettings {
  const issues: SettingsIssue[] = [];
  const at = <T>(path: string, f: () => T): T | undefined => {
    try {
      return f();
    } catch (e) {
      issues.push({ path, problem: typeof e === 'string' ? e : (e as Error).message });
      return undefined;
    }
  };
  const o = raw ?? {};
  if (!isObj(o)) throw new AppSettingsError(STATIC_FLOWS, [{ path: '(settings)', problem: 'must be a mapping with flows: [...]' }]);
  const miss = (o.miss ?? 'drop') as MissBehaviour;
  if (!MISS.includes(miss)) issues.push({ path: 'miss', problem: `'${String(o.miss)}' is not one of ${MISS.join(', ')}` });
  const list = o.flows ?? [];
  if (!Array.isArray(list)) throw new AppSettingsError(STATIC_FLOWS, [{ path: 'flows', problem: 'must be a list' }]);
  const names = new Set<string>();
  const flows: StaticFlowSpec[] = [];
  list.forEach((f: unknown, i) => {
    const path = `flows[${i}]`;
    if (!isObj(f)) return void issues.push({ path, problem: 'must be a mapping' });
    const name = f.name;
    if (typeof name !== 'string' || name === '') issues.push({ path: `${path}.name`, problem: 'is required (a unique string)' });
    else if (names.has(name)) issues.push({ path: `${path}.name`, problem: `'${name}' is used twice` });
    else names.add(name);
    const priority = f.priority ?? 0x8000;
    if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > 0xffff) issues.push({ path: `${path}.priority`, problem: 'must be an integer 0..65535' });
    const dpid = f.dpid === undefined ? undefined : at(`${path}.dpid`, () => dpidOf(f.dpid));
    const match: MatchSpec = {};
    if (f.match !== undefined && !isObj(f.match)) issues.push({ path: `${path}.match`, problem: 'must be a mapping of field to value' });
    for (const [field, value] of Object.entries(isObj(f.match) ? f.match : {})) {
      const v = at(`${path}.match.${field}`, () => fieldValue(field, value));
      if (v !== undefined) (match as Record<string, unknown>)[field] = v;
    }
    const rawActions = f.actions ?? [];
    if (!Array.isArray(rawActions)) issues.push({ path: `${path}.actions`, problem: 'must be a list (empty: drop)' });
    const actions = (Array.isArray(rawActions) ? rawActions : []).map((a, j) => at(`${path}.actions[${j}]`, () => action(a)));
    flows.push({ name: String(name), ...(dpid !== undefined && { dpid }), priority: Number(priority), match, actions: actions.filter((a): a is Action => a !== undefined) });
  });
  if (issues.length) throw new AppSettingsError(STATIC_FLOWS, issues);
  return { miss, flows };
}
