export * from './flows';
export * from './app';
