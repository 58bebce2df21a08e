import { AppSettingsError } from '../../sdk';
import type { PairSelection } from './probe';

/** `settings.tunnel-monitor` (docs/tunnel-monitor.md explains the defaults). */
export interface TunnelMonitorSettings {
  /** time between two probes of one pair */
  readonly intervalMs: number;
  /** the sliding window the loss ratio and mean RTT are computed over */
  readonly windowMs: number;
  /** a pair whose loss ratio over the window reaches this is lossy (0..1) */
  readonly lossThreshold: number;
  /** a probe not back after this long is lost */
  readonly replyTimeoutMs: number;
  /** a pair with no reply for this long is down */
  readonly downAfterMs: number;
  /** probes per second over all pairs (so packet-ins per second): past it, every pair's interval stretches */
  readonly maxProbesPerSecond: number;
  /** which hypervisor pairs are probed */
  readonly pairs: PairSelection;
}

export const DEFAULT_TUNNEL_MONITOR_SETTINGS: TunnelMonitorSettings = {
  intervalMs: 10,
  windowMs: 20_000,
  lossThreshold: 0.005,
  replyTimeoutMs: 1_000,
  downAfterMs: 2_000,
  maxProbesPerSecond: 2_000,
  pairs: 'shared-vpc',
};

const APP = 'tunnel-monitor';
type Issue = { path: string; problem: string };

function integerIn(s: Record<string, unknown>, key: keyof TunnelMonitorSettings, min: number, max: number, issues: Issue[]): number {
  const v = s[key] ?? DEFAULT_TUNNEL_MONITOR_SETTINGS[key];
  if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
  issues.push({ path: key, problem: `must be an integer in ${min}..${max}` });
  return NaN;
}

/** Reads `settings.tunnel-monitor`; throws AppSettingsError naming every bad field. */
export function parseTunnelMonitorSettings(raw: unknown): TunnelMonitorSettings {
  if (raw !== undefined && (typeof raw !== 'object' || raw === null || Array.isArray(raw))) {
    throw new AppSettingsError(APP, [{ path: '', problem: 'must be a mapping of settings' }]);
  }
  const s = (raw ?? {}) as Record<string, unknown>;
  const known = Object.keys(DEFAULT_TUNNEL_MONITOR_SETTINGS);
  const issues: Issue[] = Object.keys(s)
    .filter((k) => !known.includes(k))
    .map((k) => ({ path: k, problem: `is not a setting of ${APP} (known: ${known.join(', ')})` }));
  const intervalMs = integerIn(s, 'intervalMs', 5, 60_000, issues);
  const windowMs = integerIn(s, 'windowMs', 1_000, 3_600_000, issues);
  const replyTimeoutMs = integerIn(s, 'replyTimeoutMs', 10, 60_000, issues);
  const downAfterMs = integerIn(s, 'downAfterMs', 100, 600_000, issues);
  const maxProbesPerSecond = integerIn(s, 'maxProbesPerSecond', 1, 100_000, issues);
  const lossThreshold = s.lossThreshold ?? DEFAULT_TUNNEL_MONITOR_SETTINGS.lossThreshold;
  if (typeof lossThreshold !== 'number' || !(lossThreshold > 0 && lossThreshold < 1)) issues.push({ path: 'lossThreshold', problem: 'must be a number between 0 and 1 (exclusive)' });
  const pairs = s.pairs ?? DEFAULT_TUNNEL_MONITOR_SETTINGS.pairs;
  if (pairs !== 'all' && pairs !== 'shared-vpc') issues.push({ path: 'pairs', problem: "must be 'all' or 'shared-vpc'" });
  // relations, once each value is valid on its own
  if (issues.length === 0) {
    if (windowMs < 10 * intervalMs) issues.push({ path: 'windowMs', problem: `must hold at least 10 probes (10 × intervalMs = ${10 * intervalMs})` });
    if (replyTimeoutMs > downAfterMs) issues.push({ path: 'replyTimeoutMs', problem: `must not exceed downAfterMs (${downAfterMs})` });
    if (downAfterMs < 2 * intervalMs) issues.push({ path: 'downAfterMs', problem: `must span at least two probes (2 × intervalMs = ${2 * intervalMs})` });
  }
  if (issues.length) throw new AppSettingsError(APP, issues);
  return { intervalMs, windowMs, lossThreshold: lossThreshold as number, replyTimeoutMs, downAfterMs, maxProbesPerSecond, pairs: pairs as PairSelection };
}
