/**
 * The runtime hosts apps: DI wiring, pipeline realization, app contexts, desired state and the
 * reconciler, the run config and its watcher, the control endpoint.
 */
export * from './errors';
export * from './app-loader';
export { RuntimeAppContext, type ContextHost } from './context';
export { SwitchPortPlacement } from './placement';
export {
  CONTROL_IDLE_TIMEOUT_MS,
  ControlServer,
  checkControlDir,
  checkControlRequest,
  defaultControlDir,
  formatFlowLine,
  answerInstalled,
  answerPacketOut,
  localFlows,
  localInstalled,
  notConnected,
  parseDpid,
  prepareControlDir,
  queryControl,
  type CheckedControlRequest,
  type ControlRequest,
  type ControlResponse,
  type ControlSource,
  type AnyControlResponse,
  type InstalledResponse,
  type PacketOutResponse,
  type ResponseTo,
  type InstalledSwitch,
  type SwitchFlows,
} from './control';
export { Runtime, type AppRegistry, type RuntimeOptions } from './runtime';
export { DesiredState, type DesiredChange } from './desired-state';
export * from './reconciler';
export * from './mastership';
export * from './run-config';
export * from './run-config-watch';
export * from './metrics';
export * from './metrics-server';
export * from './stats-poller';
export * from './page-server';
export * from './topology';
