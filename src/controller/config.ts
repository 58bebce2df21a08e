import pino, { type Logger } from 'pino';
import { ControllerConfigError } from './errors';
import { LogLimiter, type LogLimits } from './log-limiter';
import { createLogger } from './logger';

export interface ControllerOptions {
  /** structured logger; defaults to createLogger() (bounded, on stdout). Tests pass `silentLogger()`. */
  logger?: Logger;
  /** how often we send ECHO_REQUEST to a READY switch (default 5000) */
  echoIntervalMs?: number;
  /** consecutive echo intervals without any traffic from the switch before it is declared dead (default 3) */
  maxMissedEchoes?: number;
  /** default timeout of `request`, `barrier` and `multipart` (default 10000); restarts on every multipart part */
  requestTimeoutMs?: number;
  /** from connection to READY (default 10000) */
  handshakeTimeoutMs?: number;
  /** queued bytes above which `send` returns false and `drained()` waits (default 1 MiB) */
  highWaterMarkBytes?: number;
  /** queued bytes above which `send` throws SendBufferFullError (default 8 MiB); a switch whose echo or error reply no longer fits is closed (SessionBudgetError) */
  maxBufferedBytes?: number;
  /**
   * queued bytes of all sessions together (default 256 MiB); past it, a session whose own queue is above
   * highWaterMarkBytes and that queues more is closed. Sessions below their high-water mark are never blamed.
   */
  maxTotalBufferedBytes?: number;
  /**
   * wire bytes of unfinished multipart replies one session may hold (default 32 MiB: a 100k-flow dump of
   * OVS is about 15 MiB). Parts are held as their wire bytes and decoded once the last part arrives.
   */
  maxMultipartBytes?: number;
  /** the same for all sessions together (default 256 MiB) */
  maxTotalMultipartBytes?: number;
  /** requests awaiting a reply on one session (default 4096) */
  maxPendingRequests?: number;
  /** the same for all sessions together (default 65536) */
  maxTotalPendingRequests?: number;
  /**
   * PACKET_INs per second taken from one switch (default 10000); more are dropped before decoding and
   * counted in `stats.packetInsDropped`. One core answers about 500k/s with l2-learning, so one switch at
   * the limit takes about 2 % of it.
   */
  packetInRate?: number;
  /** PACKET_INs a switch may send at once above packetInRate (default 5000) */
  packetInBurst?: number;
  /**
   * a connection that claims the dpid of a live session: the old one gets an echo, and keeps its dpid if it
   * answers within this time (default 1500); otherwise it is replaced
   */
  dpidProbeTimeoutMs?: number;
  /** how many lines a switch can make us log per kind and interval (see LogLimiter) */
  logLimits?: LogLimits;
}

export type ControllerConfig = Required<Omit<ControllerOptions, 'logLimits'>> & {
  /** shared by every session, and by the runtime for its own per-message lines */
  readonly logLimiter: LogLimiter;
};

/** the numeric options (all but the logger): each must be > 0; the run config's `controller` section takes them */
export const NUMERIC_OPTIONS = [
  'echoIntervalMs',
  'maxMissedEchoes',
  'requestTimeoutMs',
  'handshakeTimeoutMs',
  'highWaterMarkBytes',
  'maxBufferedBytes',
  'maxTotalBufferedBytes',
  'maxMultipartBytes',
  'maxTotalMultipartBytes',
  'maxPendingRequests',
  'maxTotalPendingRequests',
  'packetInRate',
  'packetInBurst',
  'dpidProbeTimeoutMs',
] as const;
export type NumericOption = (typeof NUMERIC_OPTIONS)[number];

export function resolveConfig(o: ControllerOptions): ControllerConfig {
  const config: ControllerConfig = {
    logger: o.logger ?? createLogger(),
    echoIntervalMs: o.echoIntervalMs ?? 5_000,
    maxMissedEchoes: o.maxMissedEchoes ?? 3,
    requestTimeoutMs: o.requestTimeoutMs ?? 10_000,
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? 10_000,
    highWaterMarkBytes: o.highWaterMarkBytes ?? 1 << 20,
    maxBufferedBytes: o.maxBufferedBytes ?? 8 << 20,
    maxTotalBufferedBytes: o.maxTotalBufferedBytes ?? 256 << 20,
    maxMultipartBytes: o.maxMultipartBytes ?? 32 << 20,
    maxTotalMultipartBytes: o.maxTotalMultipartBytes ?? 256 << 20,
    maxPendingRequests: o.maxPendingRequests ?? 4096,
    maxTotalPendingRequests: o.maxTotalPendingRequests ?? 65_536,
    packetInRate: o.packetInRate ?? 10_000,
    packetInBurst: o.packetInBurst ?? 5_000,
    dpidProbeTimeoutMs: o.dpidProbeTimeoutMs ?? 1_500,
    logLimiter: new LogLimiter(o.logLimits),
  };
  for (const key of NUMERIC_OPTIONS) {
    if (!(config[key] > 0)) throw new ControllerConfigError(`${key} must be > 0, got ${config[key]}`);
  }
  if (!(config.maxBufferedBytes >= config.highWaterMarkBytes)) {
    throw new ControllerConfigError(`maxBufferedBytes (${config.maxBufferedBytes}) must be >= highWaterMarkBytes (${config.highWaterMarkBytes})`);
  }
  return config;
}

/** A logger that drops everything, for tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
