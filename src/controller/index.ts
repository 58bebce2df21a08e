/** zonemesh OpenFlow 1.3 runtime: connections, handshake, keepalive, request/reply, events. */
export { Controller } from './controller';
export { NUMERIC_OPTIONS, silentLogger, type ControllerOptions, type ControllerConfig, type NumericOption } from './config';
export * from './errors';
export * from './events';
export * from './role';
export { LogLimiter, errorFields, type LogLimits } from './log-limiter';
export { LOG_BUFFER_BYTES, createLogger } from './logger';
export {
  SwitchSession,
  type BarrierResult,
  type CloseInfo,
  type HeldTotals,
  type MultipartReplyFor,
  type ReplyTo,
  type RequestMessage,
  type RequestOptions,
  type RequestType,
  type SessionOrigin,
  type SessionState,
  type SessionStats,
} from './session';
export { Dialer, OPENFLOW_PORT, parseDialTarget, removeStaleSocket, socketIsLive, type DialOptions, type DialTarget, type Listener, type ListenSpec } from './transport';
