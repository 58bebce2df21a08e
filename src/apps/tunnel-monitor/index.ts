export * from './app';
export * from './board';
export * from './monitor';
export * from './probe';
export * from './settings';
