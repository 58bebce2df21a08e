import test from 'ava';
import { Pipeline, PipelineError } from '../../src/sdk';

const pipeline = new Pipeline([
  { name: 'out', stage: 'output', miss: 'drop', matches: [] },
  { name: 'l2.b', stage: 'l2', miss: 'next', matches: [] },
  { name: 'probe', stage: 'probe', miss: 'next', matches: [] },
  { name: 'l2.a', stage: 'l2', miss: 'next', matches: [] },
]);

test("entryOf: a stage's first table; a stage without tables hands on to the next stage that has one", (t) => {
  t.is(pipeline.entryOf('l2').name, 'l2.b', 'registration order within the stage');
  t.is(pipeline.entryOf('nat').name, 'l2.b');
  t.is(pipeline.entryOf('acl').name, 'out');
  t.is(pipeline.entryOf('intercept').name, 'probe');
});

test('entryOf: past the last table is a typed error naming the stage', (t) => {
  const short = new Pipeline([{ name: 'probe', stage: 'probe', miss: 'next', matches: [] }]);
  t.throws(() => short.entryOf('l2'), { instanceOf: PipelineError, message: /stage 'l2'/ });
});
