/**
 * The etcd client the model store uses: the `etcd3` package (Microsoft's client on etcd's v3 gRPC
 * API). Chosen over a client of our own because it is maintained, spreads calls over every
 * endpoint with per-host circuit breakers, re-opens watch streams after a reconnect, and has the
 * leases, locks and elections that controller mastership will need. Its watch resumes from the
 * last response's header revision, which can skip events (see etcd-store.ts), so the store resumes
 * watches from its own last applied revision.
 */
import { ConsecutiveBreaker, circuitBreaker, handleWhen, type IBackoff } from 'cockatiel';
import { Etcd3, isRecoverableError, type IKeyValue } from 'etcd3';

/** etcd did not answer at any endpoint. */
export class EtcdUnreachableError extends Error {
  override readonly name = 'EtcdUnreachableError';
  constructor(
    readonly endpoints: readonly string[],
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`cannot reach etcd at ${endpoints.join(',')}: ${reason}`, options);
  }
}

/** the first line of an error's message: gRPC errors carry their whole status */
export const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.replace(/\.?\s*Resolution note:.*$/, '');

/**
 * A client for the endpoints. A host that failed 3 calls in a row is skipped for a second (the
 * package's default is 5 s); watch streams re-open after 100 ms doubling to 2 s (default: up to 30 s).
 */
export function connectEtcd(endpoints: readonly string[]): Etcd3 {
  return new Etcd3({
    hosts: [...endpoints],
    dialTimeout: 3000,
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
      watchBackoff: watchBackoff(100),
    },
  });
}

const watchBackoff = (duration: number): IBackoff<unknown> => ({ duration, next: () => watchBackoff(Math.min(2 * duration, 2000)) });

/** the end of the key range of every key that starts with prefix */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1]!++;
  return end;
}

/** Keys per range request: 1000 objects stay far below gRPC's 4 MiB message limit. */
const PAGE = 1000;

/** Every key under prefix at one revision (the latest unless given), read in pages. */
export async function readPrefix(client: Etcd3, prefix: string, options: { revision?: number; keysOnly?: boolean; deadlineMs?: number } = {}): Promise<{ revision: number; kvs: IKeyValue[] }> {
  const kvs: IKeyValue[] = [];
  const end = prefixEnd(prefix);
  let from = Buffer.from(prefix);
  let revision = options.revision;
  for (;;) {
    const deadline = options.deadlineMs === undefined ? undefined : new Date(Date.now() + options.deadlineMs);
    const res = await client.kv.range({ key: from, range_end: end, limit: PAGE, keys_only: options.keysOnly ?? false, ...(revision !== undefined && { revision }) }, deadline && { deadline });
    revision ??= Number(res.header.revision);
    kvs.push(...res.kvs);
    if (!res.more || res.kvs.length === 0) return { revision, kvs };
    from = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
  }
}
