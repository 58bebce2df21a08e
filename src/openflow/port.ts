import type { MacAddr } from './oxm';
import { formatMac, parseMac } from './addr';
import type { Reader, Writer } from './wire';

export const OFP_PORT_LEN = 64;
export const OFP_MAX_PORT_NAME_LEN = 16;

/** port config bits */
export const OFPPC_PORT_DOWN = 1 << 0;
export const OFPPC_NO_RECV = 1 << 2;
export const OFPPC_NO_FWD = 1 << 5;
export const OFPPC_NO_PACKET_IN = 1 << 6;
/** port state bits */
export const OFPPS_LINK_DOWN = 1 << 0;
export const OFPPS_BLOCKED = 1 << 1;
export const OFPPS_LIVE = 1 << 2;
/** port-status reasons (enum ofp_port_reason) */
export const OFPPR = { ADD: 0, DELETE: 1, MODIFY: 2 } as const;

/** struct ofp_port */
export interface Port {
  portNo: number;
  hwAddr: MacAddr;
  name: string;
  config: number;
  state: number;
  curr: number;
  advertised: number;
  supported: number;
  peer: number;
  currSpeed: number;
  maxSpeed: number;
}

export function decodePort(r: Reader): Port {
  r.need(OFP_PORT_LEN, 'ofp_port');
  const portNo = r.u32();
  r.skip(4);
  const hwAddr = formatMac(r.bytes(6));
  r.skip(2);
  const name = r.str(OFP_MAX_PORT_NAME_LEN);
  return {
    portNo,
    hwAddr,
    name,
    config: r.u32(),
    state: r.u32(),
    curr: r.u32(),
    advertised: r.u32(),
    supported: r.u32(),
    peer: r.u32(),
    currSpeed: r.u32(),
    maxSpeed: r.u32(),
  };
}

export function encodePort(w: Writer, p: Port): void {
  w.u32(p.portNo).zeros(4).bytes(parseMac(p.hwAddr)).zeros(2);
  w.str(p.name, OFP_MAX_PORT_NAME_LEN, 'port.name');
  w.u32(p.config).u32(p.state).u32(p.curr).u32(p.advertised).u32(p.supported).u32(p.peer);
  w.u32(p.currSpeed).u32(p.maxSpeed);
}

/** True when the port can carry traffic (link up and not administratively down). */
export function isPortUp(p: Port): boolean {
  return (p.state & OFPPS_LINK_DOWN) === 0 && (p.config & OFPPC_PORT_DOWN) === 0;
}
