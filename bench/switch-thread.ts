/**
 * The main thread's handle on the fake switches' worker threads (bench/api-latency-switches.ts):
 * switch i lives in thread i % threads; every request goes to every thread, each answers for its
 * own switches, and the answers are summed.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { SwitchesData, SwitchesRequest, ThreadData } from './api-latency-switches';

class SwitchThread {
  readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (n: number) => void; reject: (e: Error) => void }>();
  private nextId = 1;

  constructor(data: ThreadData) {
    this.worker = new Worker(join(__dirname, 'api-latency-switches.js'), { workerData: data });
    this.worker.on('message', ({ id, result, error }: { id: number; result?: number; error?: string }) => {
      const w = this.waiting.get(id)!;
      this.waiting.delete(id);
      if (error === undefined) w.resolve(result!);
      else w.reject(new Error(`fake switches: ${error}`));
    });
    this.worker.on('error', (e) => this.waiting.forEach((w) => w.reject(e)));
  }

  ask(req: SwitchesRequest): Promise<number> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, req });
    });
  }
}

export class Switches {
  private readonly threads: SwitchThread[];

  constructor(data: SwitchesData, threads = 1) {
    const n = Math.max(1, Math.min(threads, data.switches.length));
    const indexed = data.switches.map((s, index) => ({ ...s, index }));
    this.threads = Array.from({ length: n }, (_, k) => new SwitchThread({ ofPorts: data.ofPorts, switches: indexed.filter((s) => s.index % n === k) }));
  }

  async ask(req: SwitchesRequest): Promise<number> {
    const answers = await Promise.all(this.threads.map((t) => t.ask(req)));
    return answers.reduce((a, b) => a + b, 0);
  }

  /** How busy each thread's event loop has been since `since` (or since it started), 0 to 1. */
  utilization(since?: readonly EventLoopUtilization[]): EventLoopUtilization[] {
    return this.threads.map((t, k) => t.worker.performance.eventLoopUtilization(since?.[k]));
  }

  async close(): Promise<void> {
    await this.ask({ op: 'close' }).catch(() => undefined);
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}

type EventLoopUtilization = ReturnType<Worker['performance']['eventLoopUtilization']>;
