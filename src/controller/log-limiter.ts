import type { Level, Logger } from 'pino';
import { ControllerError, formatDpid } from './errors';

export interface LogLimits {
  /** lines of one kind about one subject logged per interval; the rest are counted (default 10) */
  perInterval?: number;
  /** default 10000 */
  intervalMs?: number;
  /** (subject, kind) pairs counted at once (default 1024): a peer can invent dpids and addresses */
  maxKeys?: number;
}

/** What one (subject, kind) pair logged this interval. */
interface Tally {
  logged: number;
  suppressed: number;
  /** the first line's logger and level, so the summary carries the same bindings */
  readonly log: Logger;
  readonly level: Level;
  readonly subject: string;
}

/** stands for every subject once maxKeys pairs are counted */
const OTHERS = 'other subjects (too many to count apart)';
const OTHERS_KEY = Symbol(OTHERS);

/**
 * Rate limiting for log lines a peer can repeat at will (one per message it sends): per (subject,
 * kind), the first `perInterval` lines of each interval are logged, the rest only counted, and one
 * summary line per interval says how many were held back: "suppressed 80763 'message dropped' from
 * 0000000000000005". Memory is bounded by `maxKeys`; the pairs past it share one tally per kind.
 */
export class LogLimiter {
  readonly perInterval: number;
  readonly intervalMs: number;
  readonly maxKeys: number;
  /** kind → subject → tally, for the current interval */
  private readonly tallies = new Map<string, Map<string | bigint | typeof OTHERS_KEY, Tally>>();
  private keys = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(limits: LogLimits = {}) {
    this.perInterval = limits.perInterval ?? 10;
    this.intervalMs = limits.intervalMs ?? 10_000;
    this.maxKeys = limits.maxKeys ?? 1024;
  }

  /**
   * Logs `msg` (default: `kind`) with `fields` at `level` on `log`, unless `kind` about `subject`
   * (a dpid, or a peer address) has had its lines this interval. `kind` must come from a small
   * set (a constant, an error class name): it is a key. A level `log` does not write counts for nothing.
   */
  log(log: Logger, level: Level, subject: string | bigint, kind: string, fields: object, msg = kind): void {
    if (this.allow(log, level, subject, kind)) log[level](fields, msg);
  }

  private allow(log: Logger, level: Level, subject: string | bigint, kind: string): boolean {
    if (!log.isLevelEnabled(level)) return false;
    let bySubject = this.tallies.get(kind);
    if (!bySubject) this.tallies.set(kind, (bySubject = new Map()));
    let tally = bySubject.get(subject);
    if (!tally) {
      if (this.keys < this.maxKeys) {
        this.keys++;
        bySubject.set(subject, (tally = this.newTally(log, level, typeof subject === 'bigint' ? formatDpid(subject) : subject)));
      } else {
        tally = bySubject.get(OTHERS_KEY);
        if (!tally) bySubject.set(OTHERS_KEY, (tally = this.newTally(log, level, OTHERS)));
      }
    }
    if (tally.logged < this.perInterval) {
      tally.logged++;
      return true;
    }
    tally.suppressed++;
    return false;
  }

  private newTally(log: Logger, level: Level, subject: string): Tally {
    this.timer ??= setTimeout(() => this.flush(), this.intervalMs).unref();
    return { logged: 0, suppressed: 0, log, level, subject };
  }

  /** Logs the summaries of the interval now and starts a new one (the limiter's owner calls it when it closes). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const [kind, bySubject] of this.tallies) {
      for (const t of bySubject.values()) {
        if (t.suppressed > 0) t.log[t.level]({ suppressed: t.suppressed, kind, subject: t.subject, intervalMs: this.intervalMs }, `suppressed ${t.suppressed} '${kind}' from ${t.subject}`);
      }
    }
    this.tallies.clear();
    this.keys = 0;
  }
}

/**
 * How a log line describes an error. The typed errors a peer causes (malformed input, refused
 * sends, switch errors) are expected: their message already names the dpid, xid and type, and a
 * stack trace says nothing about them. Anything else is a bug here, and keeps its stack.
 */
export function errorFields(e: unknown): Record<string, unknown> {
  if (!(e instanceof ControllerError)) return { err: e };
  // the error's own plain fields (a budget's name and limit, a switch error's type and code) stay queryable
  const fields: Record<string, unknown> = { errorType: e.name, error: e.message };
  for (const [key, value] of Object.entries(e)) {
    if (key !== 'name' && (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')) fields[key] = value;
  }
  return fields;
}
