export * from './flows';
export * from './announce';
export * from './app';
