export * from './types';
export * from './errors';
export * from './addressing';
export * from './validate';
export * from './store';
export * from './parse';
export * from './watch-file';
export * from './derived';
