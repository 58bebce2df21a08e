export * from './types';
export * from './families';
export * from './errors';
export * from './addressing';
export * from './validate';
export * from './store';
export * from './parse';
export * from './watch-file';
export * from './derived';
export * from './equal';
export * from './intern';
export { unknownKeyProblem } from './suggest';
export * from './document';
export * from './etcd-layout';
export * from './etcd-url';
// The etcd store (etcd-store.ts, etcd-transfer.ts) is imported by path, and lazily: its client takes
// half a second to load, which no command without --store etcd:// should pay.
export * from './ipv6';
