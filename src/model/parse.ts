import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ModelValidationError, type ModelIssue } from './errors';
import { type ContentKeys, type ModelMatch, assembleModel, modelKeys } from './intern';
import { EMPTY_MODEL, type NetworkModel } from './types';
import { validateModel } from './validate';

/** Parses and validates a model document, JSON when `source` ends in `.json`, else YAML. Throws ModelValidationError. */
export function parseModel(text: string, source: string): NetworkModel {
  let doc: unknown;
  try {
    doc = source.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ModelValidationError(source, [{ path: '(syntax)', problem: (e as Error).message.split('\n')[0]! }]);
  }
  return validateModel(doc, source);
}

/** what the worker is given: the document, and the content keys of the version it may replace */
export interface ParseRequest {
  bytes: Uint8Array;
  source: string;
  previous?: ContentKeys;
}

/** what the worker answers: the model matched against the previous version (only its new objects travel), or the problems */
export type ParseReply = { match: ModelMatch } | { issues: ModelIssue[] };

/**
 * `parseModel` in a worker thread: parsing a large document takes seconds of CPU and many times
 * its size in memory, which must neither stall the event loop (the sessions' echoes) nor exhaust
 * the process. The worker's heap is capped at `heapMb`; a document that needs more is refused.
 * The model resolved is interned against `previous` (internModel): the worker computes the content
 * keys and matches them, so this thread only receives the objects that changed and puts the
 * previous version's in their places.
 */
export function parseModelInWorker(bytes: Uint8Array, source: string, heapMb: number, signal?: AbortSignal, previous?: NetworkModel): Promise<NetworkModel> {
  return new Promise((resolve, reject) => {
    const request: ParseRequest = { bytes, source, ...(previous && { previous: modelKeys(previous) }) };
    const worker = new Worker(join(__dirname, 'parse-worker.js'), { workerData: request, resourceLimits: { maxOldGenerationSizeMb: heapMb } });
    const fail = (problem: string) => reject(new ModelValidationError(source, [{ path: '(file)', problem }]));
    const abort = () => void worker.terminate();
    signal?.addEventListener('abort', abort, { once: true });
    worker.once('exit', () => signal?.removeEventListener('abort', abort));
    worker.once('message', (reply: ParseReply) => {
      if ('match' in reply) resolve(assembleModel(reply.match, previous ?? EMPTY_MODEL));
      else reject(new ModelValidationError(source, reply.issues));
    });
    worker.once('error', (e: NodeJS.ErrnoException) => {
      fail(e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `parsing it needs more than the ${heapMb} MiB of memory allowed for a model` : `could not be parsed: ${e.message}`);
    });
    // after a reply or an error the promise is settled and this does nothing
    worker.once('exit', (code) => fail(signal?.aborted ? 'parsing was abandoned' : `the parser stopped (exit code ${code}) without an answer`));
  });
}
