import { OFP_VERSION, OFPT, decodeMessage } from '../openflow';

export type Negotiation = { ok: true } | { ok: false; reason: string };

/**
 * Decides whether a peer's HELLO lets us speak OpenFlow 1.3, the only version we offer
 * (OF1.3.5 §6.3.1): with a version bitmap on both sides the common versions decide;
 * without one, the lower of the two header versions is used, so it must be 1.3 or above.
 */
export function negotiateVersion(hello: Buffer): Negotiation {
  const peerVersion = hello[0]!;
  if (hello[1] !== OFPT.HELLO) return { ok: false, reason: `expected HELLO, got message type ${hello[1]}` };
  const bitmap = peerVersionBitmap(hello);
  if (bitmap) {
    return bitmap.includes(OFP_VERSION)
      ? { ok: true }
      : { ok: false, reason: `peer supports versions [${bitmap.map(hex).join(', ')}], we need ${hex(OFP_VERSION)}` };
  }
  return peerVersion >= OFP_VERSION
    ? { ok: true }
    : { ok: false, reason: `peer speaks version ${hex(peerVersion)}, we need ${hex(OFP_VERSION)}` };
}

/**
 * The codec decodes only version-1.3 headers; HELLO elements have the same layout in every version
 * that has them, so the HELLO is decoded as if it were 1.3. A HELLO whose elements do not decode
 * counts as one without a bitmap (the spec says to ignore what we do not understand).
 */
function peerVersionBitmap(hello: Buffer): number[] | undefined {
  const asOf13 = Buffer.from(hello);
  asOf13[0] = OFP_VERSION;
  const res = decodeMessage(asOf13);
  if (!res.ok || res.message.type !== 'HELLO') return undefined;
  for (const el of res.message.elements) if (el.type === 'versionbitmap') return el.versions;
  return undefined;
}

function hex(v: number): string {
  return `0x${v.toString(16).padStart(2, '0')}`;
}
