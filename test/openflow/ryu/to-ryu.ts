// Converts our decoded messages into Ryu's JSON shape (`{ClassName: {...}}`), for comparison with the vectors.
// Each family's converter lives beside this file and is owned with that family's codec.
import type { OfMessage } from '../../../src/openflow';
import { basicToRyu } from './messages';
import { multipartToRyu } from './multipart';

export function toRyu(msg: OfMessage): unknown {
  return basicToRyu(msg) ?? multipartToRyu(msg) ?? { unconverted: msg.type };
}
