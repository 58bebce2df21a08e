/** Why a byte sequence could not be decoded. */
export type DecodeErrorKind =
  | 'truncated' // fewer bytes than a header or length field promises
  | 'bad_version' // not OpenFlow 1.3 where 1.3 is required
  | 'bad_length' // a length field that is impossible (too short, not aligned, past its container)
  | 'unknown_type' // a message, multipart, action, instruction or property type we do not know
  | 'bad_oxm' // a malformed or unknown OXM TLV
  | 'bad_action'
  | 'bad_instruction'
  | 'bad_value'; // a field whose value is out of its domain

/** Context a decode error carries, so a log line can name the switch and the message. */
export interface ErrorContext {
  /** byte offset from the start of the message (or stream) where the problem was found */
  offset?: number;
  /** OFPT_* code of the enclosing message, when known */
  msgType?: number;
  xid?: number;
  dpid?: bigint;
}

/** Every failure to decode OpenFlow bytes is one of these; nothing else escapes the decoder. */
export class OfDecodeError extends Error {
  override readonly name = 'OfDecodeError';
  constructor(
    readonly kind: DecodeErrorKind,
    message: string,
    readonly context: ErrorContext = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** A copy with more context (outer layers know the message type and xid, inner ones the offset). */
  withContext(extra: ErrorContext): OfDecodeError {
    return new OfDecodeError(this.kind, this.message, { ...extra, ...this.context }, { cause: this.cause });
  }

  override toString(): string {
    const c = this.context;
    const parts = [`${this.name}[${this.kind}]: ${this.message}`];
    if (c.msgType !== undefined) parts.push(`type=${c.msgType}`);
    if (c.xid !== undefined) parts.push(`xid=${c.xid}`);
    if (c.offset !== undefined) parts.push(`offset=${c.offset}`);
    if (c.dpid !== undefined) parts.push(`dpid=0x${c.dpid.toString(16).padStart(16, '0')}`);
    return parts.join(' ');
  }
}

/** A value that cannot be put on the wire (out of range, too long, inconsistent). */
export class OfEncodeError extends Error {
  override readonly name = 'OfEncodeError';
  constructor(
    message: string,
    readonly context: ErrorContext & { field?: string } = {},
  ) {
    super(message);
  }
}
