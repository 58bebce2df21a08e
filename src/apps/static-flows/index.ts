export * from './app';
export * from './settings';
