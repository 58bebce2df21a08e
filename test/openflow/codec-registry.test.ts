/** This file imports the codec module alone, never the openflow index: the registry must not depend on import order. */
import test from 'ava';
import { decodeMessage, encodeMessage } from '../../src/openflow/codec';

test('the codec module alone decodes and encodes every registered type: no registration by side effect of another import', (t) => {
  const hello = decodeMessage(Buffer.from([4, 0, 0, 8, 0, 0, 0, 1]));
  t.true(hello.ok);
  t.is(hello.ok && hello.message.type, 'HELLO');
  const barrier = encodeMessage({ type: 'BARRIER_REQUEST', xid: 9 });
  t.deepEqual([...barrier], [4, 20, 0, 8, 0, 0, 0, 9]);
  t.is(require.cache[require.resolve('../../src/openflow/index')], undefined, 'the index was never loaded');
});
