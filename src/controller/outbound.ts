import type { Socket } from 'node:net';
import type { OfMessage } from '../openflow';
// from the modules themselves: names used through the openflow index go through a getter
// (CommonJS `export *`) that costs about 20 ns per use, and enqueue runs for every message
import { encodeMessageInto } from '../openflow/codec';
import { Writer } from '../openflow/wire';

/**
 * Under half of Buffer.poolSize, so a small batch is a slice of Node's shared pool: a batch of
 * its own ArrayBuffer per event-loop turn took ~4% of the CPU when each turn carries one reply.
 */
const MIN_BATCH_BYTES = 2048;
/**
 * A batch this large is written at once, without waiting for the end of the turn: a larger
 * write saves nothing, and the switch gets to work on it while the rest is still being encoded.
 */
const FLUSH_BYTES = 1 << 15;
/** room for a full batch and the message that filled it, so a busy session's batch never grows (and is never copied) */
const MAX_BATCH_BYTES = 2 * FLUSH_BYTES;

interface DrainWaiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * One switch's outbound bytes. Messages queued during one event-loop turn are encoded into one
 * buffer and handed to the socket with a single write on setImmediate, or every FLUSH_BYTES when
 * more is queued (per-message writes cost about 20x). Messages are encoded when queued, so an
 * encode error reaches the caller of `send`.
 * The owner bounds memory by refusing to enqueue past its limit (see SwitchSession.send); every
 * queue keeps its share of `totals.bufferedBytes` current, for the controller-wide limit.
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

  /** this queue's bytes as last added to `totals.bufferedBytes` */
  private counted = 0;

  constructor(
    private readonly socket: Socket,
    private readonly highWaterMark: number,
    private readonly totals: { bufferedBytes: number },
  ) {
    socket.on('drain', () => {
      this.recount();
      this.wakeDrainWaiters();
    });
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
      encodeMessageInto(w, msg, xid);
    } catch (e) {
      w.pos = start;
      throw e;
    }
    this.messages++;
    this.recount();
    if (w.pos >= FLUSH_BYTES) {
      this.write();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Hands the batch to the socket now. Bound once, so scheduling allocates no closure. */
  readonly flush = (): void => {
    this.flushScheduled = false;
    this.write();
  };

  private write(): void {
    const w = this.batch;
    if (w.pos === 0 || this.closed) return;
    const bytes = w.finish();
    // sized like this batch, with room to spare: a batch that outgrows its buffer is copied
    this.batch = new Writer(Math.min(Math.max(2 * bytes.length, MIN_BATCH_BYTES), MAX_BATCH_BYTES));
    this.socketWrites++;
    this.bytesWritten += bytes.length;
    this.socket.write(bytes, this.recount);
    if (this.drainWaiters.length > 0) this.wakeDrainWaiters();
  }

  /** Brings `totals` up to date; runs when bytes are queued and when the kernel took some. Bound once: a write callback. */
  private readonly recount = (): void => {
    if (this.closed) return;
    const now = this.bufferedBytes;
    this.totals.bufferedBytes += now - this.counted;
    this.counted = now;
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
    this.totals.bufferedBytes -= this.counted;
    this.counted = 0;
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
