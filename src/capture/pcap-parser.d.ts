/** The part of pcap-parser 0.2 (untyped, CommonJS) that src/capture/pcap.ts uses. */
declare module 'pcap-parser' {
  import type { EventEmitter } from 'node:events';
  import type { Readable } from 'node:stream';

  export interface GlobalHeader {
    magicNumber: number;
    majorVersion: number;
    minorVersion: number;
    gmtOffset: number;
    timestampAccuracy: number;
    snapshotLength: number;
    linkLayerType: number;
  }

  export interface PacketHeader {
    timestampSeconds: number;
    /** nanoseconds when the file has the nanosecond magic (the parser does not know) */
    timestampMicroseconds: number;
    capturedLength: number;
    originalLength: number;
  }

  export interface Parser extends EventEmitter {
    on(event: 'globalHeader', listener: (h: GlobalHeader) => void): this;
    on(event: 'packet', listener: (p: { header: PacketHeader; data: Buffer }) => void): this;
    on(event: 'packetHeader', listener: (h: PacketHeader) => void): this;
    on(event: 'error', listener: (e: Error) => void): this;
    on(event: 'end', listener: () => void): this;
  }

  export function parse(input: string | Readable): Parser;
}
