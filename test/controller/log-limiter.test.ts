import test from 'ava';
import { LogLimiter } from '../../src/controller';
import { OFPT } from '../../src/openflow';
import { rawHeader } from '../../src/testing';
import { captureLog, ofKind, summaryOf } from '../helpers/log';
import { connectSwitch, delay, startController, until } from './util';


test('a flood of malformed messages logs the first 10 per switch and one summary each, without stacks', async (t) => {
  const { log, text, lines } = captureLog();
  const { controller, port } = await startController(t, { logger: log, logLimits: { perInterval: 10, intervalMs: 60_000 } });
  const a = await connectSwitch(t, controller, port, { dpid: 0xa1n });
  const b = await connectSwitch(t, controller, port, { dpid: 0xb2n });
  for (let i = 1; i <= 1000; i++) a.sw.sendRaw(rawHeader(0xc8, 12, i));
  for (let i = 1; i <= 300; i++) b.sw.sendRaw(rawHeader(OFPT.PORT_STATUS, 16, i));
  await until(() => a.sw.count('ERROR') === 1000 && b.sw.count('ERROR') === 300, 20_000);
  t.is(a.session.stats.malformed, 1000);
  const kind = 'malformed message from switch';
  t.is(lines.filter(ofKind(kind)).length, 20);
  t.is(lines.filter(summaryOf(kind)).length, 0, 'summaries come once the interval ends');
  await controller.close(); // ends the interval
  const summaries = lines.filter(summaryOf(kind));
  t.deepEqual(summaries.map((l) => [l.subject, l.suppressed]).sort(), [['00000000000000a1', 990], ['00000000000000b2', 290]]);
  t.is(summaries.find((l) => l.subject === '00000000000000a1')!.msg, `suppressed 990 '${kind}' from 00000000000000a1`);
  const first = lines.find(ofKind(kind))!;
  t.like(first, { errorType: 'MalformedMessageError', xid: 1 });
  t.regex(String(first.error), /\(dpid=00000000000000(a1|b2) type=\w+ xid=1 remote=127\.0\.0\.1:\d+\)$/, 'the context is in the message');
  t.false(text.some((l) => l.includes('stack')), 'no line carries a stack');
});

test('subjects past maxKeys share one tally per kind: a peer inventing dpids cannot grow the limiter or the log', (t) => {
  const { log, lines } = captureLog();
  const limiter = new LogLimiter({ perInterval: 2, intervalMs: 60_000, maxKeys: 100 });
  for (let dpid = 1n; dpid <= 3000n; dpid++) for (let i = 0; i < 3; i++) limiter.log(log, 'warn', dpid, 'bad thing', { n: i });
  t.is(lines.length, 100 * 2 + 2, 'two lines for each of the 100 counted subjects, two for all the others');
  limiter.flush();
  const summaries = lines.filter(summaryOf('bad thing'));
  t.is(summaries.length, 101);
  t.is(summaries.find((l) => l.subject === '0000000000000001')!.suppressed, 1);
  t.is(summaries.find((l) => String(l.subject).startsWith('other subjects'))!.suppressed, 2900 * 3 - 2);
  limiter.log(log, 'warn', 1n, 'bad thing', {});
  t.is(lines.length, 100 * 2 + 2 + 101 + 1, 'a new interval logs again');
});

test('the interval ends by itself; a level the logger does not write is not counted', async (t) => {
  const { log, lines } = captureLog('info');
  const limiter = new LogLimiter({ perInterval: 1, intervalMs: 50 });
  for (let i = 0; i < 5; i++) {
    limiter.log(log, 'warn', 'tcp:10.0.0.1', 'noisy', {});
    limiter.log(log, 'debug', 'tcp:10.0.0.1', 'quiet', {});
  }
  t.is(lines.length, 1);
  await delay(150);
  t.deepEqual(lines.map((l) => l.msg), ['noisy', "suppressed 4 'noisy' from tcp:10.0.0.1"]);
  t.is(lines[1]!.level, 40, 'the summary has the level of the lines it stands for');
});
