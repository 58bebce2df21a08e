import pino, { type Logger } from 'pino';

/** the most log output held in memory while stdout is not keeping up */
export const LOG_BUFFER_BYTES = 4 << 20;
const DROP_REPORT_MS = 1_000;

/**
 * zonemesh's JSON logger on stdout. Writes are asynchronous (a stalled reader of stdout never stops
 * the event loop, and with it the switches' keepalives) into a buffer of at most LOG_BUFFER_BYTES:
 * the lines that do not fit are dropped and counted, and the count is logged once a second while
 * lines are being dropped. Pino flushes the buffer on exit.
 */
export function createLogger(level = 'info'): Logger {
  const destination = pino.destination({ dest: 1, sync: false, maxLength: LOG_BUFFER_BYTES });
  let dropped = 0;
  destination.on('drop', () => dropped++);
  const log = pino({ name: 'zonemesh', level }, destination);
  setInterval(() => {
    if (dropped === 0) return;
    const lines = dropped;
    dropped = 0;
    log.error({ droppedLines: lines, bufferBytes: LOG_BUFFER_BYTES }, `dropped ${lines} log lines: stdout did not keep up`);
  }, DROP_REPORT_MS).unref();
  return log;
}
