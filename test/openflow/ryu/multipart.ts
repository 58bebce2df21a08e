// Owner: multipart helper. Returns undefined for messages this family does not convert.
import type { OfMessage } from '../../../src/openflow';

export function multipartToRyu(_msg: OfMessage): unknown {
  return undefined;
}
