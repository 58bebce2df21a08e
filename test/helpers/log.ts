import pino, { type Logger } from 'pino';

/** A pino logger whose lines are kept, as written, for a test to read. */
export function captureLog(level: pino.Level = 'debug'): { log: Logger; text: string[]; lines: () => Array<Record<string, unknown>> } {
  const text: string[] = [];
  const log = pino({ level }, { write: (line: string) => void text.push(line) });
  return { log, text, lines: () => text.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

type LogLine = Record<string, unknown>;
/** a line with this message */
export const ofKind = (msg: string) => (l: LogLine) => l.msg === msg;
/** a LogLimiter summary of the lines of this kind */
export const summaryOf = (kind: string) => (l: LogLine) => l.kind === kind && typeof l.suppressed === 'number';
