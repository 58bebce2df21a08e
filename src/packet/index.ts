/** zonemesh packets: parse and build Ethernet frames for packet-in and packet-out. Pure, no I/O. */
export * from './constants';
export * from './errors';
export * from './layers';
export { internetChecksum, verifyChecksums } from './checksum';
export type { ChecksumCheck, ChecksumReport, ChecksummedLayer } from './checksum';
export * from './parse';
export * from './build';
export * from './frames';
export * from './dhcp';
export * from './dhcp6';
