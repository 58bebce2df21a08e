import type { ExecutionContext } from 'ava';
import { filter, firstValueFrom, take, timeout, type Observable } from 'rxjs';
import { Controller, forSwitch, silentLogger, type ControllerOptions, type SwitchSession } from '../../src/controller';
import { FakeSwitch, type FakeSwitchOptions } from '../../src/testing';

/** A controller on an ephemeral loopback TCP port, closed when the test ends. */
export async function startController(t: ExecutionContext, options: ControllerOptions = {}): Promise<{ controller: Controller; port: number }> {
  const controller = new Controller({ logger: silentLogger(), ...options });
  t.teardown(() => controller.close());
  const listener = await controller.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 });
  return { controller, port: listener.port! };
}

/** The first value of `source`, or a rejection after `ms`. */
export function next<T>(source: Observable<T>, ms = 5_000): Promise<T> {
  return firstValueFrom(source.pipe(take(1), timeout(ms)));
}

/** The first value matching `predicate`. */
export function nextWhere<T>(source: Observable<T>, predicate: (v: T) => boolean, ms = 5_000): Promise<T> {
  return next(source.pipe(filter(predicate)), ms);
}

/** A fake switch connected over TCP and READY at the controller. */
export async function connectSwitch(
  t: ExecutionContext,
  controller: Controller,
  port: number,
  options: FakeSwitchOptions = {},
): Promise<{ sw: FakeSwitch; session: SwitchSession }> {
  const sw = new FakeSwitch(options);
  t.teardown(() => sw.close());
  const up = next(controller.switchUp$.pipe(forSwitch(sw.dpid)));
  await sw.connect({ transport: 'tcp', port });
  const { session } = await up;
  return { sw, session };
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `condition` until it holds; rejects after `ms`. */
export async function until(condition: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms: ${condition.toString()}`);
    await delay(5);
  }
}
