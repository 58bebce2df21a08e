import type { Socket } from 'node:net';
import { Writer, encodeMessageInto, type OfMessage } from '../openflow';

const MIN_BATCH_BYTES = 4096;
const MAX_INITIAL_BATCH_BYTES = 1 << 16;

interface DrainWaiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * One switch's outbound bytes. Messages queued during one event-loop turn are encoded into one
 * buffer and handed to the socket with a single write on setImmediate (per-message writes cost
 * about 20x). Messages are encoded when queued, so an encode error reaches the caller of `send`.
 * The owner bounds memory by refusing to enqueue past its limit (see SwitchSession.send).
 */
export class OutboundQueue {
  private batch = new Writer(MIN_BATCH_BYTES);
  private flushScheduled = false;
  private closed = false;
  private drainWaiters: DrainWaiter[] = [];
  private closeError: Error | undefined;
  /** socket.write calls made, messages queued, bytes written: for tests and metrics */
  socketWrites = 0;
  messages = 0;
  bytesWritten = 0;

  constructor(
    private readonly socket: Socket,
    private readonly highWaterMark: number,
  ) {
    socket.on('drain', () => this.wakeDrainWaiters());
  }

  /** bytes not yet taken by the kernel: this turn's batch plus the socket's own buffer */
  get bufferedBytes(): number {
    return this.batch.pos + this.socket.writableLength;
  }

  get belowHighWaterMark(): boolean {
    return this.bufferedBytes < this.highWaterMark;
  }

  /** Encodes `msg` into the current batch with `xid` in its header. On an encode error the batch is left as it was. */
  enqueue(msg: OfMessage, xid: number): void {
    const w = this.batch;
    const start = w.pos;
    try {
      encodeMessageInto(w, msg);
    } catch (e) {
      w.pos = start;
      throw e;
    }
    if (xid !== msg.xid) w.buf.writeUInt32BE(xid, start + 4);
    this.messages++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Hands the batch to the socket now. Bound once, so scheduling allocates no closure. */
  readonly flush = (): void => {
    this.flushScheduled = false;
    const w = this.batch;
    if (w.pos === 0 || this.closed) return;
    const bytes = w.finish();
    this.batch = new Writer(Math.min(Math.max(bytes.length, MIN_BATCH_BYTES), MAX_INITIAL_BATCH_BYTES));
    this.socketWrites++;
    this.bytesWritten += bytes.length;
    this.socket.write(bytes);
    if (this.drainWaiters.length > 0) this.wakeDrainWaiters();
  };

  /** Resolves once the queued bytes are below the high-water mark. */
  drained(): Promise<void> {
    if (this.closeError) return Promise.reject(this.closeError);
    if (this.belowHighWaterMark) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
  }

  /** Stops writing; with `flush`, what is queued goes out first. Pending drain waits reject with `error`. */
  close(error: Error, flush: boolean): void {
    if (this.closed) return;
    if (flush) this.flush();
    this.closed = true;
    this.closeError = error;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w.reject(error);
  }

  private wakeDrainWaiters(): void {
    if (this.closed || !this.belowHighWaterMark) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w.resolve();
  }
}
