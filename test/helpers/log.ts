import pino, { type Logger } from 'pino';

type LogLine = Record<string, unknown>;

/** A pino logger whose lines are kept for a test to read: as written (`text`) and parsed (`lines`), both live. */
export function captureLog(level: pino.LevelWithSilent = 'debug'): { log: Logger; text: string[]; lines: LogLine[] } {
  const text: string[] = [];
  const lines: LogLine[] = [];
  const log = pino(
    { level },
    {
      write: (line: string) => {
        text.push(line);
        lines.push(JSON.parse(line) as LogLine);
      },
    },
  );
  return { log, text, lines };
}

/** a line with this message */
export const ofKind = (msg: string) => (l: LogLine) => l.msg === msg;
/** a LogLimiter summary of the lines of this kind */
export const summaryOf = (kind: string) => (l: LogLine) => l.kind === kind && typeof l.suppressed === 'number';
