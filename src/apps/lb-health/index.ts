export * from './app';
export * from './board';
export * from './checker';
export * from './targets';
