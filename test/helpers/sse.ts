/** Reading a server-sent event stream in tests, over node:http (so a test can also stop reading). */
import { get, type ClientRequest, type IncomingMessage } from 'node:http';

export interface ServerSentEvent {
  readonly event: string;
  readonly data: string;
}

/** One GET of an event stream; its events are queued until `next` takes them. */
export class EventStream {
  private readonly events: ServerSentEvent[] = [];
  private readonly waiters: (() => void)[] = [];
  private buffer = '';
  private ended = false;

  private constructor(
    private readonly request: ClientRequest,
    readonly response: IncomingMessage,
  ) {
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => this.take(chunk));
    response.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  /** Resolves once the response headers are in, whatever the status. */
  static open(url: string): Promise<EventStream> {
    return new Promise((resolve, reject) => {
      const request = get(url, { headers: { accept: 'text/event-stream' } }, (res) => resolve(new EventStream(request, res)));
      request.once('error', reject);
    });
  }

  get status(): number {
    return this.response.statusCode ?? 0;
  }

  /** The next event named `name` (others before it are skipped); rejects after `ms` or when the stream ends. */
  async next(name: string, ms = 5_000): Promise<ServerSentEvent> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.events.findIndex((e) => e.event === name);
      if (i >= 0) return this.events.splice(0, i + 1).pop()!;
      this.events.length = 0;
      if (this.ended) throw new Error(`the stream ended before a '${name}' event`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no '${name}' event within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The next `name` event's data, parsed as JSON, that `accept` takes. */
  async nextJson<T>(name: string, accept: (data: T) => boolean = () => true, ms = 5_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const data = JSON.parse((await this.next(name, Math.max(1, deadline - Date.now()))).data) as T;
      if (accept(data)) return data;
    }
  }

  close(): void {
    this.request.destroy();
  }

  private take(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length) this.events.push({ event, data: data.join('\n') });
    }
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
