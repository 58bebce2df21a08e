import test from 'ava';
import { Subject } from 'rxjs';
import { LogLimiter, SendBufferFullError, type SwitchSession } from '../../src/controller';
import type { OfMessage } from '../../src/openflow';
import { RuntimeAppContext, type ContextHost } from '../../src/runtime';
import { Pipeline } from '../../src/sdk';
import { captureLog, ofKind, summaryOf } from '../helpers/log';

test('a flood of sends switches cannot take logs 10 "message dropped" per switch and one summary with the count, without stacks', (t) => {
  const { log, text, lines } = captureLog();
  const limiter = new LogLimiter({ perInterval: 10, intervalMs: 60_000 });
  const full = (dpid: bigint) =>
    ({
      state: 'READY',
      send: (msg: OfMessage) => {
        throw new SendBufferFullError(8 << 20, 8 << 20, { dpid, msgType: msg.type, xid: 1 });
      },
    }) as unknown as SwitchSession;
  const none = new Subject<never>();
  const host: ContextHost = {
    pipeline: new Pipeline([]),
    events: { switchUp$: none, switchDown$: none, packetIn$: none, portStatus$: none, flowRemoved$: none },
    desired: undefined as never,
    stopped$: none,
    logLimiter: limiter,
    session: full,
    settled: async () => undefined,
    writable: () => true,
    handlerFailed: () => undefined,
  };
  const ctx = new RuntimeAppContext({ name: 'flooder', appId: 99, tables: [], start: () => undefined }, log, host);
  const msg: OfMessage = { type: 'BARRIER_REQUEST', xid: 0 };
  let refused = 0;
  for (let i = 0; i < 80_773; i++) refused += ctx.send(5n, msg) ? 0 : 1;
  for (let i = 0; i < 50; i++) refused += ctx.send(6n, msg) ? 0 : 1;
  t.is(refused, 80_823);
  t.is(lines.filter(ofKind('message dropped')).length, 20);
  limiter.flush();
  const summaries = lines.filter(summaryOf('message dropped'));
  t.deepEqual(
    summaries.map((l) => [l.subject, l.suppressed, l.msg]),
    [
      ['0000000000000005', 80_763, "suppressed 80763 'message dropped' from 0000000000000005"],
      ['0000000000000006', 40, "suppressed 40 'message dropped' from 0000000000000006"],
    ],
  );
  t.like(lines.find(ofKind('message dropped')), { errorType: 'SendBufferFullError', dpid: '0000000000000005', msgType: 'BARRIER_REQUEST' });
  t.is(lines.length, 22);
  t.false(text.some((l) => l.includes('stack')));
});
