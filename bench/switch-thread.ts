/**
 * The main thread's handle on the fake switches' worker thread (bench/api-latency-switches.ts):
 * one request at a time per call, each answered with its id.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { SwitchesData, SwitchesRequest } from './api-latency-switches';

export class Switches {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (n: number) => void; reject: (e: Error) => void }>();
  private nextId = 1;

  constructor(data: SwitchesData) {
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

  async close(): Promise<void> {
    await this.ask({ op: 'close' }).catch(() => undefined);
    await this.worker.terminate();
  }
}
