/** The worker thread of `parseModelInWorker`: parses one document, matches it against the previous version's keys, and answers once. */
import { parentPort, workerData } from 'node:worker_threads';
import { ModelValidationError } from './errors';
import { matchModel } from './intern';
import { parseModel, type ParseReply, type ParseRequest } from './parse';

const { bytes, source, previous } = workerData as ParseRequest;
let reply: ParseReply;
try {
  reply = { match: matchModel(parseModel(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'), source), previous) };
} catch (e) {
  if (!(e instanceof ModelValidationError)) throw e;
  reply = { issues: [...e.issues] };
}
parentPort!.postMessage(reply);
