export * from './flows';
export * from './tunnel-port';
export * from './app';
