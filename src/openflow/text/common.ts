import { OFPP, OFPTT_ALL } from '../constants';

export const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

/** reserved ports by name (IN_PORT, CONTROLLER…), others as numbers */
export function portName(port: number): string {
  return port >= OFPP.MAX && OFPP[port] !== undefined ? OFPP[port]! : String(port);
}

export function tableName(tableId: number): string {
  return tableId === OFPTT_ALL ? 'all' : String(tableId);
}

/** Names of the set bits of `value`, then any unnamed remainder in hex; `none` when 0. */
export function bitNames(value: number, names: readonly (readonly [number, string])[]): string {
  const out: string[] = [];
  let rest = value;
  for (const [bit, name] of names) {
    if (value & bit) {
      out.push(name);
      rest &= ~bit;
    }
  }
  if (rest) out.push(hex(rest >>> 0));
  return out.length ? out.join(',') : 'none';
}
