/**
 * DHCPv6 (RFC 8415) client/server messages, as far as a stateless server needs them (RFC 8415 §6.1):
 * identifiers, the option request, status codes, and the DNS options of RFC 3646. A UDP payload
 * decoded to plain data and encoded back. Pure, no I/O.
 */
import { formatIpv6, parseIpv6 } from '../openflow/addr';

export const DHCP6_CLIENT_PORT = 546;
export const DHCP6_SERVER_PORT = 547;
/** All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1): where a client on the link sends */
export const ALL_DHCP_SERVERS = 'ff02::1:2';

export const Dhcp6MessageType = {
  SOLICIT: 1,
  ADVERTISE: 2,
  REQUEST: 3,
  CONFIRM: 4,
  RENEW: 5,
  REBIND: 6,
  REPLY: 7,
  RELEASE: 8,
  DECLINE: 9,
  RECONFIGURE: 10,
  INFORMATION_REQUEST: 11,
  RELAY_FORW: 12,
  RELAY_REPL: 13,
} as const;

/** The option codes this codec decodes into named fields (RFC 8415 §21, RFC 3646). */
export const Dhcp6OptionCode = {
  CLIENT_ID: 1,
  SERVER_ID: 2,
  IA_NA: 3,
  IA_TA: 4,
  ORO: 6,
  ELAPSED_TIME: 8,
  STATUS_CODE: 13,
  RAPID_COMMIT: 14,
  DNS_SERVERS: 23,
  DOMAIN_LIST: 24,
  IA_PD: 25,
} as const;

/** RFC 8415 §21.13 */
export const Dhcp6Status = { SUCCESS: 0, UNSPEC_FAIL: 1, NO_ADDRS_AVAIL: 2, NO_BINDING: 3, NOT_ON_LINK: 4, USE_MULTICAST: 5 } as const;

/** the message type and transaction id */
const HEADER_LEN = 4;
/** RFC 8415 §11.1: a DUID is a 2-byte type and at most 128 bytes */
const MAX_DUID_LEN = 130;
/** RFC 8415 §11.4 DUID-LL: type 3, hardware type 1 (Ethernet), the MAC */
const DUID_LL = 3;
const HARDWARE_ETHERNET = 1;

export interface Dhcp6Options {
  clientId?: Buffer;
  serverId?: Buffer;
  /** IA_NA, IA_TA and IA_PD options: what the client asks to be assigned; the body (IAID first) is kept undecoded */
  identityAssociations?: { code: number; body: Buffer }[];
  /** the option codes the client asks for */
  requestedOptions?: number[];
  /** hundredths of a second since the client began */
  elapsedTime?: number;
  status?: { code: number; message: string };
  rapidCommit?: boolean;
  dnsServers?: string[];
  /** the domain search list, as names without the trailing dot */
  domainList?: string[];
  /** any other option, in wire order */
  other?: { code: number; data: Buffer }[];
}

export interface Dhcp6Message {
  messageType: number;
  /** 24 bits */
  transactionId: number;
  options: Dhcp6Options;
}

/** Why a UDP payload is not a DHCPv6 message this codec accepts. */
export class Dhcp6ParseError extends Error {
  override readonly name = 'Dhcp6ParseError';
  constructor(
    /** byte offset in the DHCPv6 payload */
    readonly offset: number,
    message: string,
  ) {
    super(`dhcpv6 at offset ${offset}: ${message}`);
  }
}

/** A field value that cannot be encoded. */
export class Dhcp6BuildError extends Error {
  override readonly name = 'Dhcp6BuildError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`dhcpv6.${field}: ${message}`);
  }
}

/** The server's DUID-LL from a MAC: the same on every controller and after every restart. */
export function duidFromMac(mac: string): Buffer {
  const bytes = mac.split(':').map((h) => (/^[0-9a-f]{2}$/i.test(h) ? parseInt(h, 16) : NaN));
  if (bytes.length !== 6 || bytes.some(Number.isNaN)) throw new Dhcp6BuildError('serverId', `'${mac}' is not a MAC address`);
  return Buffer.from([0, DUID_LL, 0, HARDWARE_ETHERNET, ...bytes]);
}

/** RFC 1035 §3.1 names, uncompressed (RFC 8415 §10): labels of at most 63 bytes, a name of at most 255 */
function parseDomainList(data: Buffer, offset: number): string[] {
  const names: string[] = [];
  let labels: string[] = [];
  let nameStart = 0;
  for (let at = 0; at < data.length; ) {
    const len = data[at]!;
    if (len === 0) {
      if (labels.length === 0) throw new Dhcp6ParseError(offset + at, 'empty domain name');
      names.push(labels.join('.'));
      labels = [];
      at++;
      nameStart = at;
      continue;
    }
    if (len > 63) throw new Dhcp6ParseError(offset + at, `label length ${len} (compressed or over 63 bytes)`);
    if (at + 1 + len > data.length) throw new Dhcp6ParseError(offset + at, 'label runs past the option');
    if (at + 1 + len - nameStart > 254) throw new Dhcp6ParseError(offset + nameStart, 'domain name over 255 bytes');
    labels.push(data.toString('latin1', at + 1, at + 1 + len));
    at += 1 + len;
  }
  if (labels.length) throw new Dhcp6ParseError(offset + nameStart, 'domain name without its root label');
  return names;
}

function encodeDomainList(names: readonly string[]): number[] {
  return names.flatMap((name) => {
    const labels = name.replace(/\.$/, '').split('.');
    if (name.length > 253 || labels.some((l) => l.length === 0 || l.length > 63 || !/^[\x21-\x7e]+$/.test(l))) {
      throw new Dhcp6BuildError('domainList', `'${name}' is not a domain name`);
    }
    return [...labels.flatMap((l) => [l.length, ...Buffer.from(l, 'latin1')]), 0];
  });
}

/** Decodes a DHCPv6 client or server message (a UDP payload; relay messages are refused). */
export function parseDhcp6(buf: Buffer): Dhcp6Message {
  if (buf.length < HEADER_LEN) throw new Dhcp6ParseError(0, `${buf.length} bytes is shorter than a DHCPv6 message`);
  const messageType = buf[0]!;
  if (messageType === Dhcp6MessageType.RELAY_FORW || messageType === Dhcp6MessageType.RELAY_REPL) {
    throw new Dhcp6ParseError(0, 'relay messages are not accepted (the server is on the link)');
  }
  const o: Dhcp6Options = {};
  const seen = new Set<number>();
  for (let at = HEADER_LEN; at < buf.length; ) {
    if (at + 4 > buf.length) throw new Dhcp6ParseError(at, 'option header runs past the message');
    const code = buf.readUInt16BE(at);
    const len = buf.readUInt16BE(at + 2);
    if (at + 4 + len > buf.length) throw new Dhcp6ParseError(at, `option ${code} (${len} bytes) runs past the message`);
    const data = buf.subarray(at + 4, at + 4 + len);
    const isIa = code === Dhcp6OptionCode.IA_NA || code === Dhcp6OptionCode.IA_TA || code === Dhcp6OptionCode.IA_PD;
    const named = (Object.values(Dhcp6OptionCode) as number[]).includes(code);
    // RFC 8415 §21: each of these appears once in a message; only IAs repeat (one per IAID)
    if (named && !isIa && seen.has(code)) throw new Dhcp6ParseError(at, `option ${code} appears twice`);
    seen.add(code);
    const need = (ok: boolean, what: string) => {
      if (!ok) throw new Dhcp6ParseError(at, `option ${code} is ${len} bytes: ${what}`);
    };
    switch (code) {
      case Dhcp6OptionCode.CLIENT_ID:
      case Dhcp6OptionCode.SERVER_ID:
        need(len >= 3 && len <= MAX_DUID_LEN, `a DUID is 3 to ${MAX_DUID_LEN} bytes`);
        o[code === Dhcp6OptionCode.CLIENT_ID ? 'clientId' : 'serverId'] = data;
        break;
      case Dhcp6OptionCode.IA_NA:
      case Dhcp6OptionCode.IA_TA:
      case Dhcp6OptionCode.IA_PD:
        need(len >= 4, 'an IA starts with a 4-byte IAID');
        (o.identityAssociations ??= []).push({ code, body: data });
        break;
      case Dhcp6OptionCode.ORO:
        need(len % 2 === 0, 'not a list of 2-byte codes');
        o.requestedOptions = Array.from({ length: len / 2 }, (_, i) => data.readUInt16BE(i * 2));
        break;
      case Dhcp6OptionCode.ELAPSED_TIME:
        need(len === 2, 'not 2');
        o.elapsedTime = data.readUInt16BE(0);
        break;
      case Dhcp6OptionCode.STATUS_CODE:
        need(len >= 2, 'a status is at least its 2-byte code');
        o.status = { code: data.readUInt16BE(0), message: data.toString('utf8', 2) };
        break;
      case Dhcp6OptionCode.RAPID_COMMIT:
        need(len === 0, 'not 0');
        o.rapidCommit = true;
        break;
      case Dhcp6OptionCode.DNS_SERVERS:
        need(len > 0 && len % 16 === 0, 'not a list of 16-byte addresses');
        o.dnsServers = Array.from({ length: len / 16 }, (_, i) => formatIpv6(data, i * 16));
        break;
      case Dhcp6OptionCode.DOMAIN_LIST:
        o.domainList = parseDomainList(data, at + 4);
        break;
      default:
        (o.other ??= []).push({ code, data });
    }
    at += 4 + len;
  }
  return { messageType, transactionId: buf.readUIntBE(1, 3), options: o };
}

/** Encodes a DHCPv6 message; options in ISC dhclient's order (identifiers, request, elapsed time, IAs), then the server's. */
export function buildDhcp6(m: Dhcp6Message): Buffer {
  if (!Number.isInteger(m.transactionId) || m.transactionId < 0 || m.transactionId > 0xffffff) {
    throw new Dhcp6BuildError('transactionId', `${m.transactionId} is not a 24-bit number`);
  }
  const C = Dhcp6OptionCode;
  const o = m.options;
  const parts: Buffer[] = [Buffer.from([m.messageType, m.transactionId >>> 16, (m.transactionId >>> 8) & 0xff, m.transactionId & 0xff])];
  const add = (code: number, data: Buffer | readonly number[], field: string) => {
    if (data.length > 0xffff) throw new Dhcp6BuildError(field, `${data.length} bytes do not fit one option`);
    const header = Buffer.alloc(4);
    header.writeUInt16BE(code, 0);
    header.writeUInt16BE(data.length, 2);
    parts.push(header, Buffer.from(data));
  };
  const u16 = (n: number) => [(n >>> 8) & 0xff, n & 0xff];
  if (o.clientId) add(C.CLIENT_ID, o.clientId, 'clientId');
  if (o.serverId) add(C.SERVER_ID, o.serverId, 'serverId');
  if (o.requestedOptions) add(C.ORO, o.requestedOptions.flatMap(u16), 'requestedOptions');
  if (o.elapsedTime !== undefined) add(C.ELAPSED_TIME, u16(o.elapsedTime), 'elapsedTime');
  for (const { code, body } of o.identityAssociations ?? []) add(code, body, 'identityAssociations');
  if (o.rapidCommit) add(C.RAPID_COMMIT, [], 'rapidCommit');
  if (o.status) add(C.STATUS_CODE, [...u16(o.status.code), ...Buffer.from(o.status.message, 'utf8')], 'status');
  if (o.dnsServers) {
    const addresses = o.dnsServers.map((ip) => {
      try {
        return parseIpv6(ip);
      } catch {
        throw new Dhcp6BuildError('dnsServers', `'${ip}' is not an IPv6 address`);
      }
    });
    add(C.DNS_SERVERS, Buffer.concat(addresses), 'dnsServers');
  }
  if (o.domainList) add(C.DOMAIN_LIST, encodeDomainList(o.domainList), 'domainList');
  for (const { code, data } of o.other ?? []) add(code, data, `other[${code}]`);
  return Buffer.concat(parts);
}
