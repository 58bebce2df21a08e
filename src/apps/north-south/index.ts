export * from './flows';
export * from './app';
export * from './bgp';
