// Owner: OXM helper. Converts a Match into Ryu's {"OFPMatch": {...}} shape.
import type { Match } from '../../../src/openflow';

export function matchToRyu(_m: Match): unknown {
  throw new Error('not implemented');
}
