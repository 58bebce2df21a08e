/**
 * DHCP (RFC 2131) messages and the options of RFC 2132 and RFC 3442 (classless static routes) a
 * server answers with: a UDP payload decoded to plain data and encoded back. Pure, no I/O.
 */

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;

export const BootpOp = { REQUEST: 1, REPLY: 2 } as const;

export const DhcpMessageType = { DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8 } as const;

/** The option codes this codec decodes into named fields (RFC 2132, RFC 3442). */
export const DhcpOptionCode = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS_SERVERS: 6,
  HOST_NAME: 12,
  DOMAIN_NAME: 15,
  INTERFACE_MTU: 26,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_LIST: 55,
  MESSAGE: 56,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  CLIENT_ID: 61,
  CLASSLESS_ROUTES: 121,
  END: 255,
} as const;

/** the fixed BOOTP part: op..file */
export const DHCP_FIXED_LEN = 236;
const MAGIC_COOKIE = 0x63825363;
/** RFC 2131 §2: the smallest BOOTP message some relays and old clients accept */
const BOOTP_MIN_LEN = 300;
const BROADCAST_FLAG = 0x8000;

/** A classless static route (option 121): packets for `cidr` go through `via`. */
export interface DhcpRoute {
  /** 'A.B.C.D/N', no host bits */
  cidr: string;
  via: string;
}

export interface DhcpOptions {
  messageType?: number;
  subnetMask?: string;
  routers?: string[];
  dnsServers?: string[];
  hostName?: string;
  domainName?: string;
  interfaceMtu?: number;
  requestedIp?: string;
  /** seconds */
  leaseTime?: number;
  renewalTime?: number;
  rebindingTime?: number;
  serverId?: string;
  parameterList?: number[];
  /** a NAK's reason (option 56) */
  message?: string;
  clientId?: Buffer;
  classlessRoutes?: DhcpRoute[];
  /** any other option, in wire order: its code and data */
  other?: { code: number; data: Buffer }[];
}

export interface DhcpMessage {
  op: number;
  /** 1: Ethernet */
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  /** the BROADCAST flag: the client cannot receive unicast before it has its address */
  broadcast: boolean;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** the client's MAC (hlen 6) */
  chaddr: string;
  options: DhcpOptions;
}

/** Why a UDP payload is not a DHCP message. */
export class DhcpParseError extends Error {
  override readonly name = 'DhcpParseError';
  constructor(
    /** byte offset in the DHCP payload */
    readonly offset: number,
    message: string,
  ) {
    super(`dhcp at offset ${offset}: ${message}`);
  }
}

/** A field value that cannot be encoded. */
export class DhcpBuildError extends Error {
  override readonly name = 'DhcpBuildError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`dhcp.${field}: ${message}`);
  }
}

const ipText = (b: Buffer, at: number): string => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

function ipBytes(ip: string, field: string): number[] {
  const parts = ip.split('.');
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (bytes.length !== 4 || bytes.some((n) => !(n <= 255))) throw new DhcpBuildError(field, `'${ip}' is not an IPv4 address`);
  return bytes;
}

function ipList(data: Buffer, offset: number, code: number): string[] {
  if (data.length === 0 || data.length % 4 !== 0) throw new DhcpParseError(offset, `option ${code} is ${data.length} bytes, not a multiple of 4`);
  return Array.from({ length: data.length / 4 }, (_, i) => ipText(data, i * 4));
}

function fixedLength(data: Buffer, offset: number, code: number, length: number): Buffer {
  if (data.length !== length) throw new DhcpParseError(offset, `option ${code} is ${data.length} bytes, not ${length}`);
  return data;
}

/** RFC 3442: prefix width, the significant octets of the destination, the router. */
function parseClasslessRoutes(data: Buffer, offset: number): DhcpRoute[] {
  const routes: DhcpRoute[] = [];
  for (let at = 0; at < data.length; ) {
    const width = data[at]!;
    const significant = Math.ceil(width / 8);
    if (width > 32 || at + 1 + significant + 4 > data.length) throw new DhcpParseError(offset + at, `bad classless route (width ${width})`);
    const dest = Buffer.alloc(4);
    data.copy(dest, 0, at + 1, at + 1 + significant);
    routes.push({ cidr: `${ipText(dest, 0)}/${width}`, via: ipText(data, at + 1 + significant) });
    at += 1 + significant + 4;
  }
  return routes;
}

function encodeClasslessRoutes(routes: readonly DhcpRoute[]): number[] {
  return routes.flatMap(({ cidr, via }) => {
    const [net, len] = cidr.split('/');
    const width = Number(len);
    if (!Number.isInteger(width) || width < 0 || width > 32) throw new DhcpBuildError('classlessRoutes', `'${cidr}' is not a CIDR`);
    return [width, ...ipBytes(net ?? '', 'classlessRoutes').slice(0, Math.ceil(width / 8)), ...ipBytes(via, 'classlessRoutes')];
  });
}

/** The options area, after the magic cookie. Repeated options are concatenated (RFC 3396). */
function parseOptions(buf: Buffer, start: number): DhcpOptions {
  const raw = new Map<number, { offset: number; data: Buffer }>();
  const order: number[] = [];
  let at = start;
  for (;;) {
    if (at >= buf.length) throw new DhcpParseError(at, 'options end without an END option');
    const code = buf[at]!;
    if (code === DhcpOptionCode.END) break;
    if (code === DhcpOptionCode.PAD) {
      at++;
      continue;
    }
    if (at + 2 > buf.length || at + 2 + buf[at + 1]! > buf.length) throw new DhcpParseError(at, `option ${code} runs past the message`);
    const data = buf.subarray(at + 2, at + 2 + buf[at + 1]!);
    const seen = raw.get(code);
    if (seen) seen.data = Buffer.concat([seen.data, data]);
    else {
      raw.set(code, { offset: at, data });
      order.push(code);
    }
    at += 2 + data.length;
  }
  const o: DhcpOptions = {};
  for (const code of order) {
    const { offset, data } = raw.get(code)!;
    const u8 = () => fixedLength(data, offset, code, 1)[0]!;
    const u16 = () => fixedLength(data, offset, code, 2).readUInt16BE(0);
    const u32 = () => fixedLength(data, offset, code, 4).readUInt32BE(0);
    const ip = () => ipText(fixedLength(data, offset, code, 4), 0);
    const text = () => data.toString('latin1');
    switch (code) {
      case DhcpOptionCode.MESSAGE_TYPE: o.messageType = u8(); break;
      case DhcpOptionCode.SUBNET_MASK: o.subnetMask = ip(); break;
      case DhcpOptionCode.ROUTER: o.routers = ipList(data, offset, code); break;
      case DhcpOptionCode.DNS_SERVERS: o.dnsServers = ipList(data, offset, code); break;
      case DhcpOptionCode.HOST_NAME: o.hostName = text(); break;
      case DhcpOptionCode.DOMAIN_NAME: o.domainName = text(); break;
      case DhcpOptionCode.INTERFACE_MTU: o.interfaceMtu = u16(); break;
      case DhcpOptionCode.REQUESTED_IP: o.requestedIp = ip(); break;
      case DhcpOptionCode.LEASE_TIME: o.leaseTime = u32(); break;
      case DhcpOptionCode.RENEWAL_TIME: o.renewalTime = u32(); break;
      case DhcpOptionCode.REBINDING_TIME: o.rebindingTime = u32(); break;
      case DhcpOptionCode.SERVER_ID: o.serverId = ip(); break;
      case DhcpOptionCode.PARAMETER_LIST: o.parameterList = [...data]; break;
      case DhcpOptionCode.MESSAGE: o.message = text(); break;
      case DhcpOptionCode.CLIENT_ID: o.clientId = data; break;
      case DhcpOptionCode.CLASSLESS_ROUTES: o.classlessRoutes = parseClasslessRoutes(data, offset + 2); break;
      default: (o.other ??= []).push({ code, data });
    }
  }
  return o;
}

/** Decodes a DHCP message (a UDP payload). Throws DhcpParseError for anything else. */
export function parseDhcp(buf: Buffer): DhcpMessage {
  if (buf.length < DHCP_FIXED_LEN + 4) throw new DhcpParseError(0, `${buf.length} bytes is shorter than a DHCP message`);
  if (buf.readUInt32BE(DHCP_FIXED_LEN) !== MAGIC_COOKIE) throw new DhcpParseError(DHCP_FIXED_LEN, 'no DHCP magic cookie');
  const hlen = buf[2]!;
  if (buf[1] !== 1 || hlen !== 6) throw new DhcpParseError(1, `hardware type ${buf[1]}/length ${hlen} is not Ethernet`);
  return {
    op: buf[0]!,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    broadcast: (buf.readUInt16BE(10) & BROADCAST_FLAG) !== 0,
    ciaddr: ipText(buf, 12),
    yiaddr: ipText(buf, 16),
    siaddr: ipText(buf, 20),
    giaddr: ipText(buf, 24),
    chaddr: [...buf.subarray(28, 34)].map((b) => b.toString(16).padStart(2, '0')).join(':'),
    options: parseOptions(buf, DHCP_FIXED_LEN + 4),
  };
}

function option(code: number, data: readonly number[], field: string): number[] {
  if (data.length > 255) throw new DhcpBuildError(field, `${data.length} bytes do not fit one option`);
  return [code, data.length, ...data];
}

const u16Bytes = (n: number) => [(n >>> 8) & 0xff, n & 0xff];
const u32Bytes = (n: number) => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const textBytes = (s: string) => [...Buffer.from(s, 'latin1')];

/** Options in the order servers conventionally send them: message type and server id first. */
function encodeOptions(o: DhcpOptions): number[] {
  const C = DhcpOptionCode;
  const out: number[] = [];
  const add = <T>(value: T | undefined, code: number, field: string, bytes: (v: T) => number[]) => {
    if (value !== undefined) out.push(...option(code, bytes(value), field));
  };
  add(o.messageType, C.MESSAGE_TYPE, 'messageType', (v) => [v]);
  add(o.serverId, C.SERVER_ID, 'serverId', (v) => ipBytes(v, 'serverId'));
  add(o.requestedIp, C.REQUESTED_IP, 'requestedIp', (v) => ipBytes(v, 'requestedIp'));
  add(o.leaseTime, C.LEASE_TIME, 'leaseTime', u32Bytes);
  add(o.renewalTime, C.RENEWAL_TIME, 'renewalTime', u32Bytes);
  add(o.rebindingTime, C.REBINDING_TIME, 'rebindingTime', u32Bytes);
  add(o.subnetMask, C.SUBNET_MASK, 'subnetMask', (v) => ipBytes(v, 'subnetMask'));
  add(o.routers, C.ROUTER, 'routers', (v) => v.flatMap((ip) => ipBytes(ip, 'routers')));
  add(o.dnsServers, C.DNS_SERVERS, 'dnsServers', (v) => v.flatMap((ip) => ipBytes(ip, 'dnsServers')));
  add(o.hostName, C.HOST_NAME, 'hostName', textBytes);
  add(o.domainName, C.DOMAIN_NAME, 'domainName', textBytes);
  add(o.interfaceMtu, C.INTERFACE_MTU, 'interfaceMtu', u16Bytes);
  add(o.classlessRoutes, C.CLASSLESS_ROUTES, 'classlessRoutes', encodeClasslessRoutes);
  add(o.parameterList, C.PARAMETER_LIST, 'parameterList', (v) => v);
  add(o.clientId, C.CLIENT_ID, 'clientId', (v) => [...v]);
  add(o.message, C.MESSAGE, 'message', textBytes);
  for (const { code, data } of o.other ?? []) out.push(...option(code, [...data], `other[${code}]`));
  out.push(C.END);
  return out;
}

/** Encodes a DHCP message, padded to the 300 bytes of a BOOTP message. */
export function buildDhcp(m: DhcpMessage): Buffer {
  const options = encodeOptions(m.options);
  const buf = Buffer.alloc(Math.max(DHCP_FIXED_LEN + 4 + options.length, BOOTP_MIN_LEN));
  buf[0] = m.op;
  buf[1] = m.htype;
  buf[2] = m.hlen;
  buf[3] = m.hops;
  buf.writeUInt32BE(m.xid >>> 0, 4);
  buf.writeUInt16BE(m.secs, 8);
  buf.writeUInt16BE(m.broadcast ? BROADCAST_FLAG : 0, 10);
  [m.ciaddr, m.yiaddr, m.siaddr, m.giaddr].forEach((ip, i) => Buffer.from(ipBytes(ip, ['ciaddr', 'yiaddr', 'siaddr', 'giaddr'][i]!)).copy(buf, 12 + 4 * i));
  const mac = m.chaddr.split(':').map((h) => parseInt(h, 16));
  if (mac.length !== 6 || mac.some((b) => !(b >= 0 && b <= 255))) throw new DhcpBuildError('chaddr', `'${m.chaddr}' is not a MAC address`);
  Buffer.from(mac).copy(buf, 28);
  buf.writeUInt32BE(MAGIC_COOKIE, DHCP_FIXED_LEN);
  Buffer.from(options).copy(buf, DHCP_FIXED_LEN + 4);
  return buf;
}
