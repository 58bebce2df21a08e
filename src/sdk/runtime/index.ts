/** The runtime that makes apps run: DI wiring, pipeline realization, app contexts, control endpoint. */
export * from './di';
export * from './errors';
export { RuntimeAppContext, type ContextHost } from './context';
export {
  ControlServer,
  checkControlRequest,
  formatFlowLine,
  localFlows,
  notConnected,
  parseDpid,
  queryControl,
  type CheckedControlRequest,
  type ControlRequest,
  type ControlResponse,
  type ControlSource,
  type SwitchFlows,
} from './control';
export { Runtime, type AppRegistry, type RuntimeOptions } from './runtime';
