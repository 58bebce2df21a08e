/** The worker thread of `parseModelInWorker`: parses one document and answers once. */
import { parentPort, workerData } from 'node:worker_threads';
import { ModelValidationError } from './errors';
import { parseModel, type ParseReply } from './parse';

const { bytes, source } = workerData as { bytes: Uint8Array; source: string };
let reply: ParseReply;
try {
  reply = { model: parseModel(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'), source) };
} catch (e) {
  if (!(e instanceof ModelValidationError)) throw e;
  reply = { issues: [...e.issues] };
}
parentPort!.postMessage(reply);
