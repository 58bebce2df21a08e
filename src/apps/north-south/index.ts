export * from './flows';
export * from './groups';
export * from './snat';
export * from './app';
export * from './bgp';
