import type { LayerType } from './layers';

/** Why bytes could not be decoded as a packet. */
export type PacketParseErrorKind =
  | 'truncated' // fewer bytes than a header or a length field promises
  | 'bad_length' // a length field that contradicts its container
  | 'bad_value'; // a field outside its domain (IP version, IHL, TCP data offset, Geneve version)

/** Every failure to decode a packet is one of these; the parser never raises anything else. */
export class PacketParseError extends Error {
  override readonly name = 'PacketParseError';
  constructor(
    readonly kind: PacketParseErrorKind,
    /** the layer being decoded */
    readonly layer: LayerType,
    /** byte offset from the start of the frame where the problem was found */
    readonly offset: number,
    message: string,
  ) {
    super(`${layer} at offset ${offset}: ${message}`);
  }
}

/** A layer stack or a field value that cannot be put on the wire. */
export class PacketBuildError extends Error {
  override readonly name = 'PacketBuildError';
  constructor(
    readonly layer: LayerType,
    message: string,
    readonly field?: string,
  ) {
    super(`${layer}${field ? `.${field}` : ''}: ${message}`);
  }
}
