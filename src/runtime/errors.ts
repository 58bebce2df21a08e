/** Apps that cannot run together: an unknown name, a clash of names or app ids, a dependency not enabled. */
export class AppWiringError extends Error {
  override readonly name = 'AppWiringError';
  constructor(
    message: string,
    readonly context: { app?: string } = {},
    options?: { cause?: unknown },
  ) {
    super(context.app ? `app ${context.app}: ${message}` : message, options);
  }
}

/** An app's start() threw; the runtime does not run half-started. */
export class AppStartError extends Error {
  override readonly name = 'AppStartError';
  constructor(
    readonly app: string,
    cause: unknown,
  ) {
    super(`app ${app}: start failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/** An exception in an app's event handler: logged and reported, the app's subscription goes on. */
export class AppHandlerError extends Error {
  override readonly name = 'AppHandlerError';
  constructor(
    readonly app: string,
    /** the switch the event was about, if any */
    readonly dpid: bigint | undefined,
    /** what was being handled: the OpenFlow message type, or the event's kind */
    readonly event: string,
    cause: unknown,
  ) {
    super(`app ${app}: handler for ${event}${dpid === undefined ? '' : ` (dpid=${dpid.toString(16).padStart(16, '0')})`} threw: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/** The control socket cannot be opened or trusted at its path. */
export class ControlSocketError extends Error {
  override readonly name = 'ControlSocketError';
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
  }
}
