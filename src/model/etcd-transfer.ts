import { randomBytes } from 'node:crypto';
import type { Etcd3, IRequestOp } from 'etcd3';
import { type ModelDocument, documentOf } from './document';
import { prefixEnd, readPrefix } from './etcd-client';
import { CURRENT_KEY, ETCD_ROOT, entriesOf, generationOfKey, generationPrefix } from './etcd-layout';
import { StoredModel } from './etcd-model';
import type { NetworkModel } from './types';

/**
 * Operations per transaction while staging a generation: etcd's default --max-txn-ops. Staging needs
 * no atomicity (nothing reads a generation before the pointer names it), so any etcd takes an
 * import of any size; the switch-over is one transaction of a few operations.
 */
const STAGE_OPS = 128;

/** The generation in etcd changed while an import staged its own (another import won). */
export class EtcdImportConflictError extends Error {
  override readonly name = 'EtcdImportConflictError';
}

export interface ImportResult {
  generation: string;
  /** the revision at which the new generation took over */
  revision: number;
  keys: number;
}

/** a fresh generation id: the time, and random bits so two writers never pick the same one */
export const newGenerationId = (): string => `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;

/**
 * Writes a valid model into etcd as a new generation and switches the pointer to it in one
 * transaction that also deletes every other generation: readers see the old model, then the new
 * one, never a mix. Fails with EtcdImportConflictError (and removes what it staged) when the
 * pointer moved meanwhile.
 */
export async function importModel(client: Etcd3, model: NetworkModel): Promise<ImportResult> {
  const before = await readPrefix(client, ETCD_ROOT, { keysOnly: true });
  const pointer = (await client.kv.range({ key: Buffer.from(CURRENT_KEY), revision: before.revision })).kvs[0];
  const others = new Set(before.kvs.map((kv) => generationOfKey(kv.key.toString())).filter((g): g is string => g !== undefined));
  const generation = newGenerationId();
  const entries = [...entriesOf(model, generation)];
  const put = ([key, value]: [string, string]): IRequestOp => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } });
  const dropGeneration = (g: string): IRequestOp => ({ request_delete_range: { key: Buffer.from(generationPrefix(g)), range_end: prefixEnd(generationPrefix(g)) } });
  try {
    for (let i = 0; i < entries.length; i += STAGE_OPS) {
      await client.kv.txn({ success: entries.slice(i, i + STAGE_OPS).map(put) });
    }
    const switched = await client.kv.txn({
      compare: [{ key: Buffer.from(CURRENT_KEY), target: 'Mod', result: 'Equal', mod_revision: pointer?.mod_revision ?? 0 }],
      success: [put([CURRENT_KEY, generation]), ...[...others].map(dropGeneration)],
    });
    if (switched.succeeded) return { generation, revision: Number(switched.header.revision), keys: entries.length };
    // A retried switch-over that had gone through fails its compare: the pointer then names us.
    const now = (await client.kv.range({ key: Buffer.from(CURRENT_KEY) })).kvs[0];
    if (now?.value.toString() === generation) return { generation, revision: Number(now.mod_revision), keys: entries.length };
    throw new EtcdImportConflictError(`the model in etcd changed during the import (generation ${now?.value.toString() ?? '(none)'} now); nothing was changed`);
  } catch (e) {
    // what we staged goes, unless (a lost answer) the pointer names it after all
    const ours = { key: Buffer.from(CURRENT_KEY), target: 'Value', result: 'Equal', value: Buffer.from(generation) } as const;
    await client.kv.txn({ compare: [ours], failure: [dropGeneration(generation)] }).catch(() => undefined);
    throw e;
  }
}

/** The model in etcd as a document in the shape of models/*.yaml; throws ModelValidationError when it is invalid. */
export async function exportModel(client: Etcd3): Promise<{ document: ModelDocument; revision: number }> {
  const read = await readPrefix(client, ETCD_ROOT);
  return { document: documentOf(new StoredModel(read.kvs).model), revision: read.revision };
}
