/** The zonemesh SDK: what an app is written with. See docs/writing-apps.md. */
export * from './app';
export * from './cookie';
export * from './counters';
export * from './errors';
export * from './flow';
export * from './match';
export * from './pipeline';
export * from './incremental';
export * from './sim';
export * from './di';
export * from './mac-table';
