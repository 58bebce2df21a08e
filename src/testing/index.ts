/**
 * `zonemesh/testing`: what an app's tests need besides the SDK. A fake OpenFlow switch with an
 * OVS-like flow table, the flow simulator, a model store to drive, and the runtime to host the app.
 */
export * from './fake-switch';
export * from './model-store';
export * from './run-apps';
export * from './addresses';
export { CT_STATE, FlowTableSim, SimUnsupportedError, type SimOptions, type SimOutput, type SimPacket, type SimGroupStep, type SimResult, type SimStep } from '../sdk/sim';
