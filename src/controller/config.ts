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
  /** queued bytes above which `send` throws SendBufferFullError (default 8 MiB) */
  maxBufferedBytes?: number;
  /** a reassembled multipart reply larger than this fails its request (default 256 MiB) */
  maxMultipartReplyBytes?: number;
  /** how many lines a switch can make us log per kind and interval (see LogLimiter) */
  logLimits?: LogLimits;
}

export type ControllerConfig = Required<Omit<ControllerOptions, 'logLimits'>> & {
  /** shared by every session, and by the runtime for its own per-message lines */
  readonly logLimiter: LogLimiter;
};

export function resolveConfig(o: ControllerOptions): ControllerConfig {
  const config: ControllerConfig = {
    logger: o.logger ?? createLogger(),
    echoIntervalMs: o.echoIntervalMs ?? 5_000,
    maxMissedEchoes: o.maxMissedEchoes ?? 3,
    requestTimeoutMs: o.requestTimeoutMs ?? 10_000,
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? 10_000,
    highWaterMarkBytes: o.highWaterMarkBytes ?? 1 << 20,
    maxBufferedBytes: o.maxBufferedBytes ?? 8 << 20,
    maxMultipartReplyBytes: o.maxMultipartReplyBytes ?? 256 << 20,
    logLimiter: new LogLimiter(o.logLimits),
  };
  for (const key of ['echoIntervalMs', 'maxMissedEchoes', 'requestTimeoutMs', 'handshakeTimeoutMs', 'highWaterMarkBytes', 'maxMultipartReplyBytes'] as const) {
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
