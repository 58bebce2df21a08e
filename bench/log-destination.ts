/**
 * Log lines per second on stdout through pino's synchronous destination, the asynchronous one
 * without a bound (pino's default before createLogger) and createLogger's bounded asynchronous
 * one; and what each holds in memory when nothing reads stdout. One 'malformed message' line
 * (about 400 bytes, no stack) per write; results on stderr.
 *
 *   npx tsc -p . && for m in sync async bounded; do node dist/bench/log-destination.js $m > /dev/null; done
 *   for m in sync async bounded; do node dist/bench/log-destination.js $m | cat > /dev/null; done
 *   # a reader that never reads: what the process holds after 3 s of logging
 *   for m in async bounded; do node dist/bench/log-destination.js $m --seconds 3 | sleep 6; done
 */
import { parseArgs } from 'node:util';
import pino, { type Logger } from 'pino';
import { createLogger } from '../src/controller/logger';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { seconds: { type: 'string', default: '2' }, batch: { type: 'string', default: '1000' } } });
const mode = positionals[0] ?? 'bounded';
const seconds = Number(values.seconds);
/** lines per event-loop turn */
const perTurn = Number(values.batch);

function logger(): Logger {
  if (mode === 'sync') return pino({ name: 'zonemesh' }, pino.destination({ dest: 1, sync: true }));
  if (mode === 'async') return pino({ name: 'zonemesh' }, pino.destination({ dest: 1, sync: false }));
  return createLogger();
}

const log = logger().child({ session: 12, remote: '127.0.0.1:40312', origin: 'accepted', dpid: '00000000000000a1' });
const fields = {
  errorType: 'MalformedMessageError',
  error: 'malformed message from switch: OfDecodeError[bad_length]: ofp_port_status: body is 8 bytes, expected 72 type=12 xid=1 offset=8 (dpid=00000000000000a1 type=PORT_STATUS xid=1 remote=127.0.0.1:40312)',
  xid: 1,
  msgType: 12,
  kind: 'bad_length',
};
let lines = 0;
let peakRss = 0;
const end = Date.now() + seconds * 1000;
// yielding between batches so that asynchronous writes can complete
const batch = (): void => {
  for (let i = 0; i < perTurn; i++) log.warn(fields, 'malformed message from switch');
  lines += perTurn;
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  if (Date.now() < end) return void setImmediate(batch);
  const mib = (n: number) => (n / 2 ** 20).toFixed(0);
  process.stderr.write(`${mode}: ${Math.round(lines / seconds)} lines/s logged for ${seconds} s (${perTurn} per event-loop turn), peak RSS ${mib(peakRss)} MiB\n`);
};
batch();
